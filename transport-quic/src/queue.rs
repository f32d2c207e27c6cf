//! The bounded queue of records waiting for one peer's writer. `push` never waits: past
//! the byte limit a record is dropped and counted, so a stalled peer costs only its own
//! queue.

use std::collections::VecDeque;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::Notify;

/// Records for one peer, oldest first.
#[derive(Debug)]
pub(crate) struct PeerQueue {
    state: Mutex<State>,
    ready: Notify,
    max_bytes: usize,
}

#[derive(Debug, Default)]
struct State {
    records: VecDeque<(Bytes, bool)>,
    bytes: usize,
    /// Events dropped since the last report.
    dropped_events: u64,
    /// No more pushes; the writer sends what is left and stops.
    closed: bool,
}

/// What one [`PeerQueue::drain_into`] took.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Drained {
    /// Records appended to the buffer.
    pub(crate) records: usize,
    /// Set when the queue emptied after dropping events: that many were dropped since the
    /// last time (the peer caught up, time to report).
    pub(crate) dropped_events: Option<u64>,
    /// The queue is closed and now empty: the writer is done.
    pub(crate) finished: bool,
}

impl PeerQueue {
    pub(crate) fn new(max_bytes: usize) -> Self {
        Self {
            state: Mutex::new(State::default()),
            ready: Notify::new(),
            max_bytes,
        }
    }

    /// Queues a record; `false` if it was dropped (queue full or closed). Drops of events
    /// are counted and come back from [`drain_into`](Self::drain_into).
    pub(crate) fn push(&self, record: Bytes, is_event: bool) -> bool {
        let was_empty = {
            let mut state = self.state.lock();
            if state.closed {
                return false;
            }
            if state.bytes + record.len() > self.max_bytes {
                if is_event {
                    state.dropped_events += 1;
                }
                return false;
            }
            state.bytes += record.len();
            state.records.push_back((record, is_event));
            state.records.len() == 1
        };
        if was_empty {
            self.ready.notify_one();
        }
        true
    }

    /// Appends queued records to `out` until it holds at least `limit` bytes or the queue
    /// is empty.
    pub(crate) fn drain_into(&self, out: &mut Vec<u8>, limit: usize) -> Drained {
        let mut drained = Drained::default();
        let mut state = self.state.lock();
        while out.len() < limit {
            let Some((record, _)) = state.records.pop_front() else {
                break;
            };
            state.bytes -= record.len();
            out.extend_from_slice(&record);
            drained.records += 1;
        }
        if state.records.is_empty() {
            if state.dropped_events > 0 {
                drained.dropped_events = Some(std::mem::take(&mut state.dropped_events));
            }
            drained.finished = state.closed;
        }
        drained
    }

    /// Waits until something may have been queued (or the queue closed).
    pub(crate) async fn ready(&self) {
        self.ready.notified().await;
    }

    /// Takes no more records; the writer sends what is queued and finishes.
    pub(crate) fn close(&self) {
        self.state.lock().closed = true;
        self.ready.notify_one();
    }

    /// Closes and throws away what is queued: the events among it, plus those dropped and
    /// not yet reported, were not delivered.
    pub(crate) fn discard(&self) -> u64 {
        let mut state = self.state.lock();
        state.closed = true;
        let queued = state.records.iter().filter(|(_, event)| *event).count() as u64;
        state.records.clear();
        state.bytes = 0;
        let lost = queued + std::mem::take(&mut state.dropped_events);
        drop(state);
        self.ready.notify_one();
        lost
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_queue_drops_and_counts_until_it_catches_up() {
        let queue = PeerQueue::new(10);
        assert!(queue.push(Bytes::from_static(b"12345"), true));
        assert!(queue.push(Bytes::from_static(b"12345"), true));
        assert!(!queue.push(Bytes::from_static(b"1"), true), "full");
        assert!(!queue.push(Bytes::from_static(b"1"), false), "control too");
        let mut out = Vec::new();
        let first = queue.drain_into(&mut out, 5);
        assert_eq!((first.records, first.dropped_events), (1, None));
        let second = queue.drain_into(&mut out, 100);
        assert_eq!(
            (second.records, second.dropped_events, second.finished),
            (1, Some(1), false)
        );
        assert_eq!(out, b"1234512345");
        assert_eq!(queue.drain_into(&mut out, 100), Drained::default());
    }

    #[test]
    fn close_flushes_and_discard_counts_what_was_lost() {
        let queue = PeerQueue::new(100);
        assert!(queue.push(Bytes::from_static(b"a"), true));
        queue.close();
        assert!(!queue.push(Bytes::from_static(b"b"), true), "closed");
        let mut out = Vec::new();
        let drained = queue.drain_into(&mut out, 100);
        assert!(drained.finished && drained.records == 1);

        let queue = PeerQueue::new(2);
        assert!(queue.push(Bytes::from_static(b"a"), true));
        assert!(queue.push(Bytes::from_static(b"b"), false));
        assert!(!queue.push(Bytes::from_static(b"c"), true));
        assert_eq!(queue.discard(), 2, "one queued event and one dropped");
    }
}
