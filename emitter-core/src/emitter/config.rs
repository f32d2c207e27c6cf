//! Emitter settings.

use std::time::Duration;

use crate::node::RecoveryConfig;
use crate::protocol::PresenceConfig;

/// Settings of an [`Emitter`](crate::Emitter). Every field has a sensible default.
///
/// ```
/// use std::time::Duration;
/// use demitter_core::EmitterConfig;
/// let config = EmitterConfig {
///     id: Some("billing-1".into()),
///     listener_capacity: 4096,
///     ..EmitterConfig::default()
/// }
/// .with_heartbeat(Duration::from_millis(200), Duration::from_secs(1));
/// assert_eq!(config.presence.peer_timeout, Duration::from_secs(1));
/// ```
#[derive(Debug, Clone)]
pub struct EmitterConfig {
    /// This emitter's id (the `source` of its events). Default: the transport's
    /// authenticated identity if it has one, else a random id.
    pub id: Option<String>,
    /// Events each listener may have queued before the oldest are dropped and it is told
    /// it lagged.
    pub listener_capacity: usize,
    /// Reports each [`errors`](crate::Emitter::errors) stream may have queued.
    pub error_capacity: usize,
    /// Presence protocol timing and limits.
    pub presence: PresenceConfig,
    /// The most (source, event name) pairs whose sequence numbers are tracked.
    pub max_tracked_sequences: usize,
    /// How long `close` waits for listener tasks to finish before abandoning them.
    pub close_timeout: Duration,
    /// How often the last sequence number of each event name emitted lately is sent to the
    /// bus, so that receivers notice events lost at the end of a burst (a gap in the middle
    /// shows at the next event): every tick for names that moved, then repeated 1, 2, 4, 8
    /// and 16 ticks later while they stay still. Also sent once at close.
    pub sequence_mark_interval: Duration,
    /// What `emit` does when the transport's send queue is full: drop the event and report
    /// it (the default), or wait for room first.
    pub congestion: Congestion,
    /// Recovery of events lost on the way: how much of what this emitter emits it keeps
    /// for peers that lost it, and how long it waits for what it lost itself before
    /// reporting it. On by default ([`RecoveryConfig::ON`]); [`RecoveryConfig::OFF`]
    /// reports every loss at once, and keeps nothing.
    pub recovery: RecoveryConfig,
}

/// What [`emit`](crate::Emitter::emit) does when the transport's send queue is full, as
/// Zenoh offers it.
///
/// ```
/// use std::time::Duration;
/// use demitter_core::{Congestion, EmitterConfig};
/// let config = EmitterConfig {
///     congestion: Congestion::Block { deadline: Duration::from_secs(1) },
///     ..EmitterConfig::default()
/// };
/// assert_ne!(config.congestion, Congestion::Drop);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Congestion {
    /// `emit` never waits: an event that finds the queue full is dropped, and the loss is
    /// reported to the sender (as a send failure) and to the receivers (as a gap).
    #[default]
    Drop,
    /// `emit` first waits for room in the transport's queue (on QUIC, every peer's), up to
    /// `deadline`; if there is still none, the event is dropped and reported as with
    /// [`Drop`](Congestion::Drop). On a transport whose
    /// [`Capabilities::blocking_send`](crate::Capabilities::blocking_send) is false, it is
    /// the same as `Drop`.
    Block {
        /// The longest one `emit` waits.
        deadline: Duration,
    },
}

impl Default for EmitterConfig {
    fn default() -> Self {
        Self {
            id: None,
            listener_capacity: 1024,
            error_capacity: 1024,
            presence: PresenceConfig::default(),
            max_tracked_sequences: 100_000,
            close_timeout: Duration::from_secs(5),
            sequence_mark_interval: Duration::from_millis(100),
            congestion: Congestion::Drop,
            recovery: RecoveryConfig::ON,
        }
    }
}

impl EmitterConfig {
    /// The same settings with this heartbeat interval and peer timeout.
    #[must_use]
    pub fn with_heartbeat(mut self, interval: Duration, peer_timeout: Duration) -> Self {
        self.presence.heartbeat_interval = interval;
        self.presence.peer_timeout = peer_timeout;
        self
    }

    /// The same settings with this id.
    #[must_use]
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }
}
