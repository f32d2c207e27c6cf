//! demitter: a distributed event emitter for Rust.
//!
//! The familiar `on` / `emit` / `once` API, where an event emitted in one process reaches
//! the listeners in every connected process. This crate re-exports the core
//! ([`demitter_core`]) and, behind Cargo features, the transports.
//!
//! ```
//! use demitter::{Emitter, Event};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), demitter::Error> {
//! let a = demitter::connect("mem://quickstart").await?;
//! let b = demitter::connect("mem://quickstart").await?;
//! b.on("greet.+", |e: Event<String>| async move { println!("{} says {}", e.source, e.data) })?;
//! a.wait_for_listeners("greet.all", 1).await?;
//! assert_eq!(a.emit("greet.all", "hello").await?.remote, 1);
//! # Ok(()) }
//! ```

pub use demitter_core::*;

/// The README's code, compiled and run as a doctest so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// Connects an emitter to the bus named by `url`, with default settings.
///
/// | scheme | transport |
/// | --- | --- |
/// | `mem://NAME` | the in-process hub called `NAME` |
pub async fn connect(url: &str) -> Result<Emitter, Error> {
    connect_with(url, EmitterConfig::default()).await
}

/// [`connect`] with emitter settings.
// Async because network transports connect asynchronously; `mem://` happens not to wait.
#[allow(clippy::unused_async)]
pub async fn connect_with(url: &str, config: EmitterConfig) -> Result<Emitter, Error> {
    let (scheme, rest) = url.split_once("://").ok_or_else(|| Error::InvalidUrl {
        url: url.to_owned(),
        reason: "expected SCHEME://..., for example mem://my-bus".into(),
    })?;
    match scheme {
        "mem" => {
            if rest.is_empty() {
                return Err(Error::InvalidUrl {
                    url: url.to_owned(),
                    reason: "mem:// needs a hub name, for example mem://my-bus".into(),
                });
            }
            Emitter::with_config(MemoryHub::named(rest).join(), config)
        }
        other => Err(Error::InvalidUrl {
            url: url.to_owned(),
            reason: format!("unknown scheme `{other}`; this build supports: mem"),
        }),
    }
}
