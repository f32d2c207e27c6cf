//! Listener handles and options.

use std::sync::Weak;

use crate::emitter::inner::Inner;
use crate::emitter::sink::{Sink, Target};
use crate::error::Error;
use crate::node::ListenerFlags;
use crate::pattern::Pattern;

/// How to register a listener.
///
/// ```
/// use demitter_core::ListenOptions;
/// let opts = ListenOptions::default().spy().capacity(64).with_last();
/// assert!(opts.is_spy() && opts.is_with_last());
/// ```
#[derive(Debug, Clone, Default)]
pub struct ListenOptions {
    spy: bool,
    capacity: Option<usize>,
    last: bool,
    group: Option<std::sync::Arc<str>>,
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

    /// Makes the listener a member of listener group `name`: each event matching it
    /// reaches one member of the group on the whole bus, chosen by the event's sender in
    /// turn among the members it knows match (so members share alike, wherever they are),
    /// while listeners outside the group get every event as usual. `emit`'s
    /// [`Delivery`](crate::Delivery) counts a group once; `listener_count` counts each
    /// member, and [`Emitter::group_members`](crate::Emitter::group_members) says how many
    /// each group has. A member's events always come through its queue (`emit` does not
    /// wait for a member here). When a member's node is lost, its share goes to the other
    /// members, and the events sent to it that it had not yet taken are reported as a
    /// [`Network`](crate::ErrorKind::Network) error.
    ///
    /// A group name is non-empty, at most 255 bytes, without `.`, `+`, `#` or NUL, and does
    /// not start with `$` (else adding the listener fails with
    /// [`Error::InvalidGroup`](crate::Error::InvalidGroup)). A member is never a spy, and
    /// does not take [`with_last`](Self::with_last): adding one with either fails with
    /// [`Error::ConflictingListenOptions`](crate::Error::ConflictingListenOptions).
    ///
    /// ```
    /// use demitter_core::{Emitter, ListenOptions, MemoryHub};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), demitter_core::Error> {
    /// let hub = MemoryHub::new();
    /// let shop = Emitter::new(hub.join())?;
    /// let workers = Emitter::new(hub.join())?;
    /// let workers_b = Emitter::new(hub.join())?;
    /// let mut a = workers.events_with::<u32>("order.+", ListenOptions::default().group("packers"))?;
    /// let mut b = workers_b.events_with::<u32>("order.+", ListenOptions::default().group("packers"))?;
    /// shop.wait_for_listeners("order.new", 2).await?;
    /// for n in 0..2u32 {
    ///     let reached = shop.emit("order.new", &n).await?;
    ///     assert_eq!(reached.remote, 1, "the group counts once");
    /// }
    /// // One order each.
    /// let (x, y) = (a.recv().await.expect("open")?, b.recv().await.expect("open")?);
    /// assert_ne!(x.data, y.data);
    ///
    /// // A member takes no retained values: refused, not silently ignored.
    /// let refused = workers.events_with::<u32>("order.+", ListenOptions::default().group("packers").with_last());
    /// assert!(matches!(refused, Err(demitter_core::Error::ConflictingListenOptions { .. })));
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn group(mut self, name: &str) -> Self {
        self.group = Some(name.into());
        self
    }

    /// The group these options make a member of.
    pub fn group_name(&self) -> Option<&str> {
        self.group.as_deref()
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

    /// The driver's side of a listener on `pattern` with these options; options that
    /// contradict each other are refused: a group member takes no retained values (each
    /// event reaches only one member, so none can be brought up to date) and is never a
    /// spy (members are counted, so that senders know them).
    pub(crate) fn into_sink(self, pattern: Pattern, target: Target) -> Result<Sink, Error> {
        if let Some(group) = &self.group {
            let conflict = if self.last {
                Some(
                    "a group member takes no retained values (with_last): each event reaches one member, so no member can be brought up to date",
                )
            } else if self.spy {
                Some(
                    "a group member cannot be a spy: members are counted, so that senders know where to send",
                )
            } else {
                None
            };
            if let Some(reason) = conflict {
                return Err(Error::ConflictingListenOptions {
                    group: group.to_string(),
                    reason,
                });
            }
        }
        Ok(Sink {
            pattern,
            target,
            with_last: self.last,
            group: self.group,
        })
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

    /// Waits until the listener is subscribed: this node has heard the bus, and every peer
    /// on it has acknowledged the listener's interest. From then on every event a peer
    /// emits that the pattern matches reaches the listener exactly once or is reported
    /// lost, the very first included; before, a peer may not know of it yet. (NATS users
    /// know the need: a subscription that returns before the server has it loses the first
    /// messages.) Wrap it in a timeout; [`Error::Closed`] if the listener or its emitter is
    /// gone, [`Error::DuplicateId`] if the emitter gave way to another node with its id.
    ///
    /// ```
    /// # use demitter_core::{Emitter, Event, MemoryHub};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let hub = MemoryHub::new();
    /// let sender = Emitter::new(hub.join())?;
    /// let receiver = Emitter::new(hub.join())?;
    /// let listener = receiver.on("job.+", |_: Event<()>| async {})?;
    /// let wait = std::time::Duration::from_secs(5);
    /// tokio::time::timeout(wait, listener.subscribed()).await??;
    /// // The sender has acknowledged it: it knows the listener.
    /// assert_eq!(sender.listener_count("job.done")?, 1);
    /// # Ok(()) }
    /// ```
    pub async fn subscribed(&self) -> Result<(), Error> {
        let inner = self.inner.upgrade().ok_or(Error::Closed)?;
        inner.subscribed(&[self.id]).await
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::lag_queue::LagQueue;

    fn sink(options: ListenOptions) -> Result<Sink, Error> {
        let pattern = Pattern::new("order.+").expect("a pattern");
        options.into_sink(pattern, Target::Stream(Arc::new(LagQueue::new(4))))
    }

    #[test]
    fn a_group_member_with_last_values_or_as_a_spy_is_refused() {
        let member = ListenOptions::default().group("packers");
        assert!(sink(member.clone()).is_ok());
        for (options, words) in [
            (member.clone().with_last(), "takes no retained values"),
            (member.spy(), "cannot be a spy"),
        ] {
            match sink(options) {
                Err(e @ Error::ConflictingListenOptions { .. }) => {
                    assert!(e.to_string().contains(words), "{e}");
                }
                Err(other) => panic!("expected a conflict, got {other}"),
                Ok(_) => panic!("expected a refusal of {words}"),
            }
        }
        assert!(sink(ListenOptions::default().spy().with_last()).is_ok());
    }
}
