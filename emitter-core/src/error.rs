//! The crate's error type.

use std::sync::Arc;

/// Everything that can go wrong in `demitter-core`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An event name broke the naming rules.
    #[error("invalid event name {name:?}: {reason}")]
    InvalidName {
        /// The name (shortened if long).
        name: String,
        /// Which rule it broke.
        reason: &'static str,
    },
    /// A pattern broke the pattern rules.
    #[error("invalid pattern {pattern:?}: {reason}")]
    InvalidPattern {
        /// The pattern (shortened if long).
        pattern: String,
        /// Which rule it broke.
        reason: &'static str,
    },
    /// A listener group's name broke the rules (non-empty, at most 255 bytes, no `.`, `+`,
    /// `#` or NUL, not starting with `$`).
    #[error("invalid group name {group:?}: {reason}")]
    InvalidGroup {
        /// The name (shortened if long).
        group: String,
        /// Which rule it broke.
        reason: &'static str,
    },
    /// A listener's options contradict each other (a group member asked for retained
    /// values, or to be a spy).
    #[error("a member of group {group:?} cannot be added: {reason}")]
    ConflictingListenOptions {
        /// The group.
        group: String,
        /// Which options conflict, and why.
        reason: &'static str,
    },
    /// A user tried to emit a `$` system event.
    #[error(
        "event name {0:?} is reserved: names starting with `$` are emitted by the library only"
    )]
    ReservedName(String),
    /// A node id broke the rules (non-empty, at most 255 bytes, no NUL).
    #[error("invalid node id {id:?}: {reason}")]
    InvalidNodeId {
        /// The id (shortened if long).
        id: String,
        /// Which rule it broke.
        reason: &'static str,
    },
    /// The payload could not be encoded as MessagePack.
    #[error("could not encode the payload: {0}")]
    Encode(String),
    /// A payload could not be decoded into the type a listener asked for.
    #[error("could not decode the payload: {0}")]
    Decode(String),
    /// A frame is larger than the transport's limit.
    #[error("frame of {size} bytes exceeds the limit of {limit} bytes")]
    FrameTooLarge {
        /// The frame's size in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// A record (the framing around frames on QUIC and nng) declares a body larger than
    /// the limit: the stream it came on cannot go on.
    #[error("a record of {size} bytes, over the limit of {limit} bytes")]
    RecordTooLarge {
        /// The body size it declares.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// A record runs past the end of the message that carries it.
    #[error("a record runs past the end of its message ({left} bytes left)")]
    TruncatedRecord {
        /// The bytes that were left.
        left: usize,
    },
    /// A frame from the network did not follow the wire format.
    #[error("malformed frame: {0}")]
    MalformedFrame(String),
    /// A listener fell behind its bounded queue and missed this many events; it is still
    /// subscribed and receives what comes next.
    #[error("the listener fell behind and missed {missed} events")]
    Lagged {
        /// How many events were dropped.
        missed: u64,
    },
    /// No tokio runtime to run the emitter's tasks on.
    #[error("no tokio runtime: create emitters from within a tokio runtime")]
    NoRuntime,
    /// The emitter (or transport) was closed.
    #[error("the emitter is closed")]
    Closed,
    /// No node on the bus is known to serve requests for this name.
    #[error("no responder is known for {name:?}")]
    NoResponder {
        /// The request's name.
        name: String,
    },
    /// The responder's handler failed.
    #[error("the responder on {responder} failed: {message}")]
    ResponderFailed {
        /// The responder's node.
        responder: String,
        /// What its handler said.
        message: String,
    },
    /// The responder's node was lost before it answered.
    #[error("the responder on {responder} was lost before it answered")]
    ResponderLost {
        /// The responder's node.
        responder: String,
    },
    /// No answer within the timeout.
    #[error("no answer to {name:?} within {after:?}")]
    RequestTimedOut {
        /// The request's name.
        name: String,
        /// The timeout.
        after: std::time::Duration,
    },
    /// A transport's send queue had no room, so the frame was not sent: the peer (or the
    /// link to it) is slower than the emitter, or unreachable. Counted as a loss.
    #[error(
        "the send queue is full (it holds {max_bytes} bytes or {max_records} records): the peer is slower than the emitter, or unreachable; the frame was dropped"
    )]
    SendQueueFull {
        /// The queue's byte limit.
        max_bytes: usize,
        /// The queue's record limit.
        max_records: usize,
    },
    /// The in-memory hub dropped a frame for members whose inboxes were full (slower than
    /// the sender). Counted as a loss.
    #[error("the inboxes of {members} hub member(s) were full; the frame was dropped for them")]
    InboxesFull {
        /// How many members missed the frame.
        members: u64,
    },
    /// Some peers an event was addressed to disconnected as it was sent; the rest have it.
    /// Counted as a loss.
    #[error("{missing} of the peers the event was meant for just disconnected")]
    PeersGone {
        /// How many addressed peers were gone.
        missing: usize,
    },
    /// The transport failed.
    #[error("transport error: {0}")]
    Transport(String),
    /// A transport failed with an error of its own, kept as the source (downcast it with
    /// [`TransportSource::get_ref`] to the transport crate's error type).
    #[error("{transport} transport: {source}")]
    TransportFailed {
        /// Which transport (`"QUIC"`, `"nng"`, ...).
        transport: &'static str,
        /// The transport's error.
        #[source]
        source: TransportSource,
    },
    /// Another live node on the bus has this node's id, and was there first: this one gave
    /// way (it said goodbye and sends nothing more). Each node needs an id of its own.
    #[error(
        "another node on the bus already has the id {id:?}{}; this one gave way (each node needs an id of its own)",
        address.as_ref().map(|a| format!(" (at {a})")).unwrap_or_default()
    )]
    DuplicateId {
        /// The id.
        id: String,
        /// Where the other node is, where the transport knows.
        address: Option<String>,
    },
    /// A URL that `connect` cannot use.
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl Error {
    /// Wraps a transport crate's own error, keeping it as the source.
    ///
    /// ```
    /// use std::error::Error as _;
    /// let io = std::io::Error::other("socket gone");
    /// let e = demitter_core::Error::transport_failed("example", io);
    /// assert_eq!(e.to_string(), "example transport: socket gone");
    /// assert!(e.source().is_some());
    /// ```
    pub fn transport_failed(
        transport: &'static str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::TransportFailed {
            transport,
            source: TransportSource(Arc::new(source)),
        }
    }
}

/// A transport's own error inside [`Error::TransportFailed`]: shared, so that the error
/// stays `Clone`; two are equal when they are the same error.
#[derive(Debug, Clone)]
pub struct TransportSource(Arc<dyn std::error::Error + Send + Sync>);

impl TransportSource {
    /// The transport's error, for `downcast_ref`.
    pub fn get_ref(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.0
    }
}

impl std::fmt::Display for TransportSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for TransportSource {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl PartialEq for TransportSource {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for TransportSource {}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
