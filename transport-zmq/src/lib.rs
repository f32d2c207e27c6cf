//! ZeroMQ for demitter: the client transport ([`ZmqTransport`]) and the forwarder (an
//! XSUB/XPUB proxy that isolates slow subscribers and counts per topic) as a library,
//! speaking ZMTP 3.0 so that libzmq, zmq.rs and Demitter peers can use them.

mod conn;
mod error;
pub mod forwarder;
mod probe;
mod subscription_sync;
mod transport;
pub mod wire;
mod zmtp;

#[cfg(test)]
mod hostile_input;

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;

pub use error::ZmqError;
pub use forwarder::{Forwarder, ForwarderConfig, ForwarderStats};
pub use probe::probe_forwarder;
pub use transport::{ZmqConfig, ZmqTransport};
