//! The transport-agnostic core of demitter, a distributed event emitter.
//!
//! - [`Emitter`]: `on` / `once` / `events` / `emit` across processes, with `+` / `#`
//!   patterns, bus-wide listener counts, sequence numbers with gap reports, bounded
//!   per-listener queues with lag reports, and an error channel.
//! - [`Transport`]: what a network must provide (frames in and out); transports live in
//!   their own crates. [`MemoryHub`] is an in-process transport for tests and for threads
//!   of one program.
//! - [`protocol`]: the presence and sequencing state machines, free of I/O.
//! - [`Pattern`], [`PatternIndex`], [`Frame`]: matching and the wire codec.
//!
//! ```
//! use demitter_core::{Emitter, Event, MemoryHub};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), demitter_core::Error> {
//! let hub = MemoryHub::new();
//! let (a, b) = (Emitter::new(hub.join())?, Emitter::new(hub.join())?);
//! let greeting = b.once::<String>("hello.+")?;
//! a.wait_for_listeners("hello.world", 1).await?;
//! a.emit("hello.world", "hi").await?;
//! let event: Event<String> = greeting.await?;
//! assert_eq!((&*event.name, event.data.as_str()), ("hello.world", "hi"));
//! # Ok(()) }
//! ```

mod backoff;
mod close_deadlines;
mod emitter;
mod error;
mod event;
pub mod faulty;
mod frame;
mod inbox;
mod index;
mod lag_queue;
mod memory;
mod name;
pub mod node;
mod node_id;
mod pattern;
mod payload;
mod peer_directory;
mod peer_info;
pub mod protocol;
pub mod record;
mod report;
mod send_queue;
mod transport;

pub use backoff::Backoff;
pub use close_deadlines::CloseDeadlines;
pub use emitter::{
    Congestion, CountStream, Emitter, EmitterConfig, ErrorStream, EventStream, ListenOptions,
    Listener, MAX_REQUESTS_IN_FLIGHT, Once, Responder,
};
pub use error::{Error, Result, TransportSource};
pub use event::{
    Delivery, Event, LISTENER_ADDED, LISTENER_REMOVED, ListenerChange, PEER_DOWN, PEER_UP,
    PeerChange, RECOVERED, RawEvent, Recovered,
};
pub use frame::{
    ControlFrame, DEFAULT_MAX_FRAME_BYTES, DecodeCache, EventFrame, FRAME_VERSION, Frame,
};
pub use inbox::{BatchInbox, InboxSender, Receive};
pub use index::PatternIndex;
pub use memory::{MemoryConfig, MemoryHub, MemoryTransport};
pub use name::{MAX_NAME_BYTES, SYSTEM_PREFIX, is_system, validate_name, validate_user_name};
pub use node::{BusListener, Readiness, validate_group};
pub use node_id::NodeId;
pub use pattern::Pattern;
pub use payload::{FromPayload, RawPayload, decode_payload, encode_payload};
pub use peer_directory::{
    AddressOrigin, DialTiming, MAX_DIRECTORY_ENTRIES, PeerDirectory, dials_first,
};
pub use peer_info::PeerInfo;
pub use report::{ERROR_EVENT, ErrorCounts, ErrorKind, ErrorReport};
pub use send_queue::{Drained, SendQueue};
pub use transport::{Capabilities, Destination, Incoming, Transport};

/// Re-exported so users name the same `Stream` trait the emitter's streams implement.
pub use futures_core::Stream;
