//! [`ByteBudget`]: a limit on the bytes a queue holds, shared by the side that fills it and
//! the side that empties it.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes in a queue, against a fixed limit. The filling side [`take`](Self::take)s before
/// queueing (refused when the limit would be passed, so the item is dropped and counted
/// instead of queued); the emptying side [`give_back`](Self::give_back)s once the bytes
/// have left (written to the network, not merely dequeued), so the limit bounds everything
/// still held in memory.
///
/// Transports use one per send queue: a queue bounded in messages alone holds 64 KiB events
/// as readily as 64 B ones, and a stalled peer could pin gigabytes.
///
/// ```
/// use demitter_core::ByteBudget;
/// let budget = ByteBudget::new(100);
/// assert!(budget.take(60));
/// assert!(!budget.take(60), "60 more would pass the limit: refused, nothing taken");
/// budget.give_back(60);
/// assert!(budget.take(100));
/// assert_eq!(budget.used(), 100);
/// ```
#[derive(Debug)]
pub struct ByteBudget {
    used: AtomicUsize,
    limit: usize,
}

impl ByteBudget {
    /// A budget of `limit` bytes, none used.
    pub const fn new(limit: usize) -> Self {
        Self {
            used: AtomicUsize::new(0),
            limit,
        }
    }

    /// Takes `bytes` from the budget if they fit; `false` (taking nothing) if they do not.
    pub fn take(&self, bytes: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|total| *total <= self.limit)
            })
            .is_ok()
    }

    /// Returns `bytes` taken earlier.
    pub fn give_back(&self, bytes: usize) {
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                Some(used.saturating_sub(bytes))
            });
    }

    /// Bytes taken and not yet given back.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    /// The limit.
    pub const fn limit(&self) -> usize {
        self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_takers_never_pass_the_limit() {
        let budget = std::sync::Arc::new(ByteBudget::new(1_000));
        let takers: Vec<_> = (0..4)
            .map(|_| {
                let budget = std::sync::Arc::clone(&budget);
                std::thread::spawn(move || (0..1_000).filter(|_| budget.take(7)).count())
            })
            .collect();
        let taken: usize = takers
            .into_iter()
            .map(|t| t.join().expect("no panic"))
            .sum();
        assert_eq!(taken, 1_000 / 7, "exactly as many 7-byte takes as fit");
        assert!(budget.used() <= budget.limit());
    }

    #[test]
    fn giving_back_more_than_taken_saturates() {
        let budget = ByteBudget::new(10);
        assert!(budget.take(4));
        budget.give_back(9);
        assert_eq!(budget.used(), 0);
        assert!(!budget.take(11));
        assert!(!budget.take(usize::MAX), "an overflowing take is refused");
    }
}
