//! Listener handles and options.

use std::sync::Weak;

use crate::emitter::inner::Inner;
use crate::node::ListenerFlags;
use crate::pattern::Pattern;

/// How to register a listener.
///
/// ```
/// use demitter_core::ListenOptions;
/// let opts = ListenOptions::default().spy().capacity(64);
/// assert!(opts.is_spy());
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct ListenOptions {
    spy: bool,
    capacity: Option<usize>,
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
