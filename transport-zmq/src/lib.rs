//! ZeroMQ for demitter: the client transport ([`ZmqTransport`]), speaking ZMTP 3.0 so
//! that libzmq, zmq.rs and Demitter peers can use it, and the ZMTP pieces ([`conn`],
//! [`zmtp`]) the forwarder (the `demitter-forwarder` crate) is built from.

pub mod conn;
pub mod curve;
pub mod curve_keys;
mod error;
mod joining;
mod probe;
mod subscription_sync;
mod transport;
pub mod wire;
pub mod zmtp;

#[cfg(test)]
mod hostile_input;

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;

pub use error::ZmqError;
pub use probe::probe_forwarder;
pub use transport::{ZmqConfig, ZmqTransport};
