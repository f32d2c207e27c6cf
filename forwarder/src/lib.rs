//! Demitter's forwarder: publishers connect to its XSUB side, subscribers to its XPUB
//! side, and every message reaches the subscribers whose subscriptions prefix its topic.
//! It speaks ZMTP 3.0, so libzmq, zmq.rs and Demitter peers can use it as well as
//! [`demitter_zmq::ZmqTransport`].
//!
//! Unlike a plain XSUB/XPUB proxy it keeps a count per topic (only the first subscribe and
//! the last cancel go upstream, and a subscriber that vanishes has its topics released),
//! and gives every subscriber its own bounded queue and writer: a subscriber that stalls
//! loses its own messages, counted and logged, and delays no one else.
//!
//! - [`Forwarder`]: an embedded forwarder, bound with a [`ForwarderConfig`] and watched
//!   through [`ForwarderStats`].
//! - With the `command` feature (on by default): [`ForwarderArgs`] and [`run`], the
//!   `demitter-forwarder` binary and `demitter forwarder`.
//!
//! The layout: `routing` holds the rules (a pure state machine, tested without sockets),
//! `switchboard` the one task that applies them, `connections` the sockets around it.
//!
//! ```
//! use demitter_forwarder::{Forwarder, ForwarderConfig};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), demitter_forwarder::ForwarderError> {
//! let forwarder = Forwarder::bind(ForwarderConfig::loopback_free_ports()).await?;
//! println!("publishers: {}", forwarder.xsub_addr());
//! forwarder.close().await;
//! # Ok(()) }
//! ```

mod census;
#[cfg(feature = "command")]
mod command;
mod config;
mod connections;
mod error;
mod forwarder;
mod refusals;
mod routing;
mod stats;
mod switchboard;

#[cfg(feature = "command")]
pub use command::{ForwarderArgs, init_logging, run};
pub use config::{ForwarderConfig, ForwarderCurve};
pub use error::ForwarderError;
pub use forwarder::Forwarder;
pub use stats::ForwarderStats;
