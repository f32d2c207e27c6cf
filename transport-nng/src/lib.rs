//! nng for demitter: a brokerless bus of nng bus0 sockets.
//!
//! Every node listens and dials the others; bus0 does not relay, so the bus is a full mesh,
//! and nodes learn each other from announcements (joining one known node yields the whole
//! bus). Frames are batched into messages; presence, listener counts and sequence numbers
//! come from the core.
//!
//! - [`NngConfig`], [`NngTransport`]: run a node.
//! - [`wire`]: the message format, documented in `docs/wire-format.md`.

mod config;
mod error;
mod handover;
mod transport;
pub mod wire;

pub use config::NngConfig;
pub use error::NngError;
pub use transport::NngTransport;
