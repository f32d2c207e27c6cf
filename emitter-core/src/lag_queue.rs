//! A bounded single-consumer queue whose producer never waits: when the queue is full the
//! oldest item is dropped and the consumer is told how many it missed (tokio broadcast's
//! `Lagged(n)` contract), then keeps receiving.

use std::collections::VecDeque;
use std::task::{Context, Poll, Waker};

use parking_lot::Mutex;

/// What a push did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// Queued with room to spare.
    Queued,
    /// Queued; the oldest item was dropped to make room.
    DroppedOldest,
    /// The queue is closed; the item was dropped.
    Closed,
}

/// What the consumer receives.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Popped<T> {
    /// The next item.
    Item(T),
    /// This many items were dropped since the last pop; the next pop continues after them.
    Lagged(u64),
}

#[derive(Debug)]
struct State<T> {
    items: VecDeque<T>,
    lagged: u64,
    closed: bool,
    waker: Option<Waker>,
}

/// The queue. Share it behind an `Arc`.
#[derive(Debug)]
pub(crate) struct LagQueue<T> {
    capacity: usize,
    state: Mutex<State<T>>,
}

impl<T> LagQueue<T> {
    /// A queue holding at most `capacity` items (at least one).
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            capacity,
            state: Mutex::new(State {
                items: VecDeque::with_capacity(capacity.min(64)),
                lagged: 0,
                closed: false,
                waker: None,
            }),
        }
    }

    /// How many items it holds at most.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Adds an item without ever waiting.
    pub(crate) fn push(&self, item: T) -> Pushed {
        let (pushed, waker) = {
            let mut s = self.state.lock();
            if s.closed {
                return Pushed::Closed;
            }
            let pushed = if s.items.len() >= self.capacity {
                s.items.pop_front();
                s.lagged += 1;
                Pushed::DroppedOldest
            } else {
                Pushed::Queued
            };
            s.items.push_back(item);
            (pushed, s.waker.take())
        };
        if let Some(w) = waker {
            w.wake();
        }
        pushed
    }

    /// The next item, a lag notice, or `None` once closed and drained.
    pub(crate) fn poll_pop(&self, cx: &mut Context<'_>) -> Poll<Option<Popped<T>>> {
        let mut s = self.state.lock();
        if s.lagged > 0 {
            let n = std::mem::take(&mut s.lagged);
            return Poll::Ready(Some(Popped::Lagged(n)));
        }
        if let Some(item) = s.items.pop_front() {
            return Poll::Ready(Some(Popped::Item(item)));
        }
        if s.closed {
            return Poll::Ready(None);
        }
        if !s.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            s.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Waits for the next item or lag notice.
    pub(crate) async fn pop(&self) -> Option<Popped<T>> {
        std::future::poll_fn(|cx| self.poll_pop(cx)).await
    }

    /// Closes the queue: pushes are refused; what is queued can still be popped.
    pub(crate) fn close(&self) {
        let waker = {
            let mut s = self.state.lock();
            s.closed = true;
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Closes the queue and drops what it holds.
    pub(crate) fn close_and_clear(&self) {
        let dropped = {
            let mut s = self.state.lock();
            s.closed = true;
            (std::mem::take(&mut s.items), s.waker.take())
        };
        if let Some(w) = dropped.1 {
            w.wake();
        }
    }

    /// Whether [`close`](Self::close) was called.
    pub(crate) fn is_closed(&self) -> bool {
        self.state.lock().closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn full_queue_drops_oldest_and_reports_lag() {
        let q = LagQueue::new(2);
        assert_eq!(q.push(1), Pushed::Queued);
        assert_eq!(q.push(2), Pushed::Queued);
        assert_eq!(q.push(3), Pushed::DroppedOldest);
        assert_eq!(q.push(4), Pushed::DroppedOldest);
        assert_eq!(q.pop().await, Some(Popped::Lagged(2)));
        assert_eq!(q.pop().await, Some(Popped::Item(3)));
        assert_eq!(q.pop().await, Some(Popped::Item(4)));
        q.close();
        assert_eq!(q.push(5), Pushed::Closed);
        assert_eq!(q.pop().await, None);
    }

    #[tokio::test]
    async fn waiting_consumer_is_woken_by_push_and_close() {
        let q = Arc::new(LagQueue::new(4));
        let consumer = tokio::spawn({
            let q = Arc::clone(&q);
            async move { (q.pop().await, q.pop().await) }
        });
        tokio::task::yield_now().await;
        q.push(7);
        q.close();
        let got = tokio::time::timeout(Duration::from_secs(5), consumer)
            .await
            .expect("consumer woke")
            .expect("consumer ran");
        assert_eq!(got, (Some(Popped::Item(7)), None));
    }

    #[tokio::test]
    async fn close_and_clear_discards_items() {
        let q = LagQueue::new(4);
        q.push(1);
        q.close_and_clear();
        assert!(q.is_closed());
        assert_eq!(q.pop().await, None);
    }
}
