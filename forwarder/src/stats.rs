//! [`ForwarderStats`]: what a running forwarder has done, and the counters behind it.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of a running forwarder.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ForwarderStats {
    /// Messages received from publishers.
    pub messages_in: u64,
    /// Messages queued to subscribers (one per subscriber reached).
    pub messages_out: u64,
    /// Messages dropped because a subscriber's queue was full.
    pub dropped: u64,
    /// Publishers connected now.
    pub publishers: u64,
    /// Subscribers connected now.
    pub subscribers: u64,
    /// Distinct topics subscribed now.
    pub topics: u64,
    /// Connections refused in the handshake (with CURVE: a NULL peer, a wrong server key,
    /// a key the allow list does not hold).
    pub refused: u64,
    /// Messages dropped because a CURVE publisher sent them under a name that is not the
    /// one its key is bound to.
    pub forged: u64,
}

/// The live counters behind [`ForwarderStats`], written by the forwarding loop.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) messages_in: AtomicU64,
    pub(crate) messages_out: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) publishers: AtomicU64,
    pub(crate) subscribers: AtomicU64,
    pub(crate) topics: AtomicU64,
    pub(crate) refused: AtomicU64,
    pub(crate) forged: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> ForwarderStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ForwarderStats {
            messages_in: get(&self.messages_in),
            messages_out: get(&self.messages_out),
            dropped: get(&self.dropped),
            publishers: get(&self.publishers),
            subscribers: get(&self.subscribers),
            topics: get(&self.topics),
            refused: get(&self.refused),
            forged: get(&self.forged),
        }
    }
}
