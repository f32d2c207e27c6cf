//! The bounded queue of records waiting for one peer's writer. `push` never waits: past
//! the byte limit a record is dropped and counted, so a stalled peer costs only its own
//! queue. Records are encoded straight into one growing buffer, which the writer hands to
//! QUIC in chunks without copying: no allocation per record.

use std::collections::VecDeque;

use bytes::{BufMut, Bytes, BytesMut};
use parking_lot::Mutex;
use tokio::sync::Notify;

/// The least the buffer grows by, so that growing is rare.
const GROW: usize = 64 * 1024;

/// Records for one peer, oldest first.
#[derive(Debug)]
pub(crate) struct PeerQueue {
    state: Mutex<State>,
    ready: Notify,
    max_bytes: usize,
}

#[derive(Debug, Default)]
struct State {
    /// The queued records' bytes, back to back.
    buf: BytesMut,
    /// Each queued record's length and whether it is an event, oldest first.
    records: VecDeque<(usize, bool)>,
    /// Events dropped since the last report.
    dropped_events: u64,
    /// No more pushes; the writer sends what is left and stops.
    closed: bool,
}

/// What one [`PeerQueue::drain`] took.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Drained {
    /// The records' bytes, whole records only (empty if there were none).
    pub(crate) bytes: Bytes,
    /// How many records.
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

    /// Queues a record of `len` bytes that `encode` writes; `false` if it was dropped
    /// (queue full or closed). Drops of events are counted and come back from
    /// [`drain`](Self::drain).
    pub(crate) fn push_with(
        &self,
        len: usize,
        is_event: bool,
        encode: impl FnOnce(&mut BytesMut),
    ) -> bool {
        let was_empty = {
            let mut state = self.state.lock();
            if state.closed {
                return false;
            }
            if state.buf.len() + len > self.max_bytes {
                if is_event {
                    state.dropped_events += 1;
                }
                return false;
            }
            if state.buf.capacity() - state.buf.len() < len {
                state.buf.reserve(len.max(GROW));
            }
            let before = state.buf.len();
            encode(&mut state.buf);
            let written = state.buf.len() - before;
            state.records.push_back((written, is_event));
            state.records.len() == 1
        };
        if was_empty {
            self.ready.notify_one();
        }
        true
    }

    /// Queues a record already encoded.
    pub(crate) fn push(&self, record: &[u8], is_event: bool) -> bool {
        self.push_with(record.len(), is_event, |buf| buf.put_slice(record))
    }

    /// Takes whole records from the front, at least one if any, and no more than `limit`
    /// bytes unless the first record alone is larger.
    pub(crate) fn drain(&self, limit: usize) -> Drained {
        let mut drained = Drained::default();
        let mut state = self.state.lock();
        let mut take = 0;
        while let Some(&(len, _)) = state.records.front() {
            if take > 0 && take + len > limit {
                break;
            }
            take += len;
            state.records.pop_front();
            drained.records += 1;
        }
        drained.bytes = state.buf.split_to(take).freeze();
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
        state.buf = BytesMut::new();
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
        assert!(queue.push(b"12345", true));
        assert!(queue.push_with(5, true, |buf| buf.put_slice(b"67890")));
        assert!(!queue.push(b"1", true), "full");
        assert!(!queue.push(b"1", false), "control too");
        let first = queue.drain(5);
        assert_eq!(
            (&first.bytes[..], first.records, first.dropped_events),
            (&b"12345"[..], 1, None)
        );
        let second = queue.drain(100);
        assert_eq!(
            (&second.bytes[..], second.records, second.dropped_events),
            (&b"67890"[..], 1, Some(1))
        );
        assert!(!second.finished);
        assert_eq!(queue.drain(100), Drained::default());
    }

    #[test]
    fn drains_take_whole_records_up_to_the_limit() {
        let queue = PeerQueue::new(100);
        for record in [&b"aaa"[..], b"bbb", b"cccccccc"] {
            assert!(queue.push(record, true));
        }
        let first = queue.drain(7);
        assert_eq!((&first.bytes[..], first.records), (&b"aaabbb"[..], 2));
        let big = queue.drain(4);
        assert_eq!(
            (&big.bytes[..], big.records),
            (&b"cccccccc"[..], 1),
            "one oversize record still goes"
        );
    }

    #[test]
    fn close_flushes_and_discard_counts_what_was_lost() {
        let queue = PeerQueue::new(100);
        assert!(queue.push(b"a", true));
        queue.close();
        assert!(!queue.push(b"b", true), "closed");
        let drained = queue.drain(100);
        assert!(drained.finished && drained.records == 1);

        let queue = PeerQueue::new(2);
        assert!(queue.push(b"a", true));
        assert!(queue.push(b"b", false));
        assert!(!queue.push(b"c", true));
        assert_eq!(queue.discard(), 2, "one queued event and one dropped");
    }
}
