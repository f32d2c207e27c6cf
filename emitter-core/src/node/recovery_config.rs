//! How much a node keeps of what it emitted, to send again to a peer that lost it, and how
//! long a receiver waits for such a repair before it reports the loss.

use std::time::Duration;

/// Recovery of lost events: the sender's window and the receiver's patience.
///
/// A sender keeps each event it emits for `window_age`, and at most `window_bytes` of them
/// (the oldest leave first). A receiver that finds events of a (source, name) missing asks
/// the source for exactly those numbers and holds what arrives after them, so that its
/// listeners get everything in order; what the source no longer has, or what has not
/// come `repair_deadline` after the loss was seen, is reported lost (a `gap`), and the
/// held events are delivered.
///
/// `window_bytes: 0` keeps nothing and asks for nothing: every loss is reported at once,
/// as without recovery. An [`Emitter`](crate::Emitter) is on by default
/// ([`RecoveryConfig::ON`]); a bare [`Node`](crate::node::Node) is off unless told.
///
/// ```
/// use std::time::Duration;
/// use demitter_core::node::RecoveryConfig;
///
/// let on = RecoveryConfig {
///     window_bytes: 64 << 20,
///     window_age: Duration::from_secs(10),
///     repair_deadline: Duration::from_secs(1),
///     linger: Duration::from_secs(2),
/// };
/// assert!(on.is_on());
/// assert!(RecoveryConfig::ON.is_on());
/// assert!(!RecoveryConfig::OFF.is_on());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoveryConfig {
    /// The most bytes of emitted events kept (payload and name, plus a small overhead
    /// each); 0 turns recovery off.
    pub window_bytes: usize,
    /// How long an emitted event is kept.
    pub window_age: Duration,
    /// How long a receiver waits for the repair of a loss (asking again meanwhile) before
    /// it reports what is still missing and delivers what it held.
    pub repair_deadline: Duration,
    /// How long `close` waits, at most, for every peer that follows this node's names to
    /// say it has them all (answering their repairs meanwhile), as ZeroMQ's `LINGER`: a
    /// process that emits and exits loses nothing either. Zero: no waiting.
    pub linger: Duration,
}

impl RecoveryConfig {
    /// No window, no repairs: losses are reported at once.
    pub const OFF: Self = Self {
        window_bytes: 0,
        window_age: Duration::ZERO,
        repair_deadline: Duration::ZERO,
        linger: Duration::ZERO,
    };

    /// Recovery on, with settings for an ordinary bus: a window of 32 MiB and 10 s (at
    /// 10,000 events a second of 1 KiB, the last 3 s; far more at lower rates: it covers a
    /// NATS failover, about 125 ms, and a forwarder restarted in a second or two), 2 s
    /// for a repair once a loss is seen, and 2 s of linger at close.
    pub const ON: Self = Self {
        window_bytes: 32 << 20,
        window_age: Duration::from_secs(10),
        repair_deadline: Duration::from_secs(2),
        linger: Duration::from_secs(2),
    };

    /// Whether a window is kept and losses are asked for.
    pub fn is_on(&self) -> bool {
        self.window_bytes > 0 && !self.window_age.is_zero() && !self.repair_deadline.is_zero()
    }
}

impl Default for RecoveryConfig {
    fn default() -> Self {
        Self::OFF
    }
}
