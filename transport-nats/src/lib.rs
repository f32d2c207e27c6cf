//! NATS for demitter: emitters on a NATS server or cluster ([`NatsTransport`]), so that a
//! bus outgrows one machine on an engine already run at scale, and keeps the emitter's
//! API, bus-wide listener counts and loss reports.
//!
//! Each frame travels on a subject under the bus's prefix ([`subject`] says how names
//! become subjects), alone in a NATS message or batched with the frames of the same
//! subject that waited behind it; each node receives control frames on one subscription and
//! events on one per pattern, read so that each name's events and sequence marks keep
//! the order they were sent in ([`NatsTransport`]).

pub mod authorization;
mod batch;
mod client_events;
mod config;
pub mod decode;
mod error;
pub mod local_server;
mod receive;
pub mod subject;
mod subscriptions;
mod transport;

pub use config::{NatsConfig, NatsIdentity};
pub use error::NatsError;
pub use transport::NatsTransport;
