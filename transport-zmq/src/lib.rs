//! ZeroMQ for demitter: the forwarder (an XSUB/XPUB proxy that isolates slow subscribers
//! and counts per topic) as a library, speaking ZMTP 3.0 so that libzmq, zmq.rs and
//! Demitter peers can use it.

mod conn;
mod error;
pub mod forwarder;
mod zmtp;

pub use error::ZmqError;
pub use forwarder::{Forwarder, ForwarderConfig, ForwarderStats};
