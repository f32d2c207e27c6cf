//! Listener handles and options.

use std::sync::Weak;

use crate::emitter::inner::Inner;
use crate::node::ListenerFlags;
use crate::pattern::Pattern;

/// How to register a listener.
///
/// ```
/// use demitter_core::ListenOptions;
/// let opts = ListenOptions::default().spy().capacity(64).with_last();
/// assert!(opts.is_spy() && opts.is_with_last());
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct ListenOptions {
    spy: bool,
    capacity: Option<usize>,
    last: bool,
}

impl ListenOptions {
    /// A spy receives events but is never counted (not in `listener_count`, not in what
    /// `emit` resolves to, not in the bus-wide counts).
    #[must_use]
    pub fn spy(mut self) -> Self {
        self.spy = true;
        self
    }

    /// This listener's queue size, instead of the emitter's `listener_capacity`.
    #[must_use]
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = Some(capacity.max(1));
        self
    }

    /// The listener first receives the retained value (see
    /// [`Emitter::emit_retained`](crate::Emitter::emit_retained)) of every matching name
    /// from every node that holds one: this node's at once, and each peer's (those known up
    /// when it is added, and those that come up later) before that peer's live events,
    /// sorted by name, with nothing twice and no false gap. A peer's live events that
    /// arrive before its answer wait for it, at most twice the presence `peer_timeout` (a
    /// peer that never answers is then reported as a
    /// [`Network`](crate::ErrorKind::Network) error); other sources' events flow meanwhile.
    /// A handler made so takes this node's own emits through its queue too, like remote
    /// events, so that none overtakes the values: `emit` does not wait for it.
    #[must_use]
    pub fn with_last(mut self) -> Self {
        self.last = true;
        self
    }

    /// Whether these options ask for the retained values first.
    pub fn is_with_last(&self) -> bool {
        self.last
    }

    /// Whether these options make a spy.
    pub fn is_spy(&self) -> bool {
        self.spy
    }

    /// The node's flags for a listener with these options.
    pub(crate) fn flags(&self, any: bool) -> ListenerFlags {
        ListenerFlags {
            spy: self.is_spy(),
            any,
        }
    }

    pub(crate) fn capacity_or(&self, default: usize) -> usize {
        self.capacity.unwrap_or(default)
    }
}

/// A registered handler. It stays registered until [`off`](Self::off) (or
/// [`Emitter::off`](crate::Emitter::off), `clear_listeners`, or the emitter closing); with
/// [`off_on_drop`](Self::off_on_drop), dropping the handle removes it too.
#[derive(Debug)]
pub struct Listener {
    id: u64,
    pattern: Pattern,
    inner: Weak<Inner>,
    off_on_drop: bool,
}

impl Listener {
    pub(crate) fn new(id: u64, pattern: Pattern, inner: Weak<Inner>) -> Self {
        Self {
            id,
            pattern,
            inner,
            off_on_drop: false,
        }
    }

    /// The listener's id, unique within its emitter.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The pattern it listens on.
    pub fn pattern(&self) -> &Pattern {
        &self.pattern
    }

    /// Removes the listener. Returns whether it was still registered.
    pub fn off(mut self) -> bool {
        self.off_on_drop = false;
        self.remove()
    }

    /// Makes dropping this handle remove the listener.
    #[must_use]
    pub fn off_on_drop(mut self) -> Self {
        self.off_on_drop = true;
        self
    }

    fn remove(&self) -> bool {
        self.inner
            .upgrade()
            .is_some_and(|inner| inner.remove_listener(self.id))
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if self.off_on_drop {
            self.remove();
        }
    }
}
