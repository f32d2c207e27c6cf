//! The bounded send queue every transport puts between `send` and its writer.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use parking_lot::{Condvar, Mutex};
use tokio::sync::Notify;

use crate::Error;

/// The least a segment holds. Larger records get a segment of their own size.
const SEGMENT: usize = 64 * 1024;

/// A bounded queue between a transport's `send` and the writer that owns its socket,
/// written once for every transport.
///
/// - **`push` never waits.** Past the queue's byte or record limit the record is refused
///   with [`Error::SendQueueFull`], and a refused event is counted, so a stalled peer costs
///   only its own queue and nothing is lost without a report.
/// - **Records are encoded straight into the queue**, back to back in segments of at least
///   64 KiB that never grow: no allocation per record, and what a segment holds is bounded
///   by what was queued (a record never straddles two segments).
/// - **The writer takes batches**: [`drain`](SendQueue::drain) hands over whole records, up
///   to a byte limit, as one [`Bytes`] without copying. It is woken once when the queue
///   goes from empty to not empty ([`ready`](SendQueue::ready) for a task,
///   [`wait_blocking`](SendQueue::wait_blocking) for a thread).
/// - **A sender may wait for room** ([`wait_for_room`](SendQueue::wait_for_room)), which
///   is how [`Congestion::Block`](crate::Congestion::Block) holds an emitter back; it is
///   woken by each drain.
/// - **Closing flushes**: after [`close`](SendQueue::close) pushes are refused and the
///   writer drains what is left, then sees [`Drained::finished`].
///   [`discard`](SendQueue::discard) instead throws it away and says how many events that
///   lost.
///
/// ```
/// use demitter_core::{Error, SendQueue};
///
/// let queue = SendQueue::new(8, usize::MAX);
/// queue.push(b"hello", true).unwrap();
/// assert!(matches!(queue.push(b"world", true), Err(Error::SendQueueFull { .. })));
/// let batch = queue.drain(64 * 1024);
/// assert_eq!((&batch.bytes[..], batch.records), (&b"hello"[..], 1));
/// // The queue caught up after a drop: the writer is told, once.
/// assert_eq!(batch.dropped_events, Some(1));
/// queue.close();
/// assert!(queue.drain(64 * 1024).finished);
/// ```
#[derive(Debug)]
pub struct SendQueue {
    state: Mutex<State>,
    /// Wakes a writer task.
    ready: Notify,
    /// Wakes a writer thread.
    ready_blocking: Condvar,
    /// Wakes senders waiting for room.
    room: Notify,
    max_bytes: usize,
    max_records: usize,
}

#[derive(Debug, Default)]
struct State {
    /// The queued bytes, oldest segment first; records are written to the last.
    segments: VecDeque<BytesMut>,
    /// Each queued record, oldest first.
    records: VecDeque<Record>,
    /// The queued records' bytes.
    bytes: usize,
    /// Events refused since the last [`Drained::dropped_events`].
    dropped_events: u64,
    /// Bytes a thread in [`SendQueue::wait_blocking`] waits for (0: none waits).
    awaited_bytes: usize,
    /// No more pushes; the writer sends what is left and stops.
    closed: bool,
}

#[derive(Debug, Clone, Copy)]
struct Record {
    len: usize,
    is_event: bool,
    /// The last record of its segment: a drain stops after it.
    ends_segment: bool,
}

/// What one [`SendQueue::drain`] took.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Drained {
    /// The records' bytes, whole records only (empty if there were none).
    pub bytes: Bytes,
    /// How many records.
    pub records: usize,
    /// Set when the queue emptied after refusing events: that many were refused since the
    /// last time (the writer caught up, time to report them). A transport that already
    /// reported each refusal as `send`'s error ignores it.
    pub dropped_events: Option<u64>,
    /// The queue is closed and now empty: the writer is done.
    pub finished: bool,
}

impl SendQueue {
    /// A queue that holds at most `max_bytes` bytes and `max_records` records.
    pub fn new(max_bytes: usize, max_records: usize) -> Self {
        Self {
            state: Mutex::new(State::default()),
            ready: Notify::new(),
            ready_blocking: Condvar::new(),
            room: Notify::new(),
            max_bytes,
            max_records,
        }
    }

    /// Queues a record of exactly `len` bytes that `encode` writes. Refused with
    /// [`Error::SendQueueFull`] if it does not fit (an event is then counted for
    /// [`Drained::dropped_events`]) or [`Error::Closed`] after [`close`](Self::close).
    ///
    /// `len` is what the limits and the segment are sized by; a debug build panics if
    /// `encode` writes another length (a release build counts what it wrote).
    pub fn push_with(
        &self,
        len: usize,
        is_event: bool,
        encode: impl FnOnce(&mut BytesMut),
    ) -> Result<(), Error> {
        let mut state = self.state.lock();
        if state.closed {
            return Err(Error::Closed);
        }
        if state.bytes + len > self.max_bytes || state.records.len() >= self.max_records {
            if is_event {
                state.dropped_events += 1;
            }
            return Err(Error::SendQueueFull {
                max_bytes: self.max_bytes,
                max_records: self.max_records,
            });
        }
        let was_empty = state.records.is_empty();
        let tail = state.tail_with_room(len);
        let before = tail.len();
        encode(tail);
        let written = tail.len() - before;
        debug_assert_eq!(written, len, "a record wrote other than its length");
        let len = written;
        let awaited = state.awaited_bytes;
        let had = state.bytes;
        state.bytes += len;
        state.records.push_back(Record {
            len,
            is_event,
            ends_segment: false,
        });
        drop(state);
        if was_empty {
            self.ready.notify_one();
        }
        if awaited > 0 && had < awaited && had + len >= awaited {
            self.ready_blocking.notify_one();
        }
        Ok(())
    }

    /// Queues a record already encoded; see [`push_with`](Self::push_with).
    pub fn push(&self, record: &[u8], is_event: bool) -> Result<(), Error> {
        self.push_with(record.len(), is_event, |buf| buf.put_slice(record))
    }

    /// Takes whole records from the front, at least one if any, and no more than `limit`
    /// bytes unless the first record alone is larger.
    pub fn drain(&self, limit: usize) -> Drained {
        let mut drained = Drained::default();
        let mut state = self.state.lock();
        let mut take = 0;
        let mut ends_segment = false;
        while let Some(&record) = state.records.front() {
            if take > 0 && take + record.len > limit {
                break;
            }
            take += record.len;
            state.records.pop_front();
            drained.records += 1;
            if record.ends_segment {
                ends_segment = true;
                break;
            }
        }
        if take > 0 {
            self.room.notify_waiters();
            state.bytes -= take;
            drained.bytes = if ends_segment {
                state.segments.pop_front().map(BytesMut::freeze)
            } else {
                state
                    .segments
                    .front_mut()
                    .map(|s| s.split_to(take).freeze())
            }
            .unwrap_or_default();
        }
        if state.records.is_empty() {
            if state.dropped_events > 0 {
                drained.dropped_events = Some(std::mem::take(&mut state.dropped_events));
            }
            drained.finished = state.closed;
        }
        drained
    }

    /// Waits until something may have been queued, or the queue closed. For one writer
    /// task; it drains, then waits again when the drain comes back empty.
    pub async fn ready(&self) {
        self.ready.notified().await;
    }

    /// The next batch for an async writer: whole records, at most `limit` bytes (or one
    /// larger record), waiting while the queue is empty; `None` once it is closed and
    /// empty. The loop of a writer that needs no more than the bytes.
    pub async fn next_batch(&self, limit: usize) -> Option<Bytes> {
        loop {
            let drained = self.drain(limit);
            if !drained.bytes.is_empty() {
                return Some(drained.bytes);
            }
            if drained.finished {
                return None;
            }
            self.ready().await;
        }
    }

    /// Waits, blocking the thread, until at least `min_bytes` are queued or the queue is
    /// closed (true), or `timeout` passes first (false). For a writer thread.
    pub fn wait_blocking(&self, min_bytes: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.state.lock();
        while state.bytes < min_bytes && !state.closed {
            state.awaited_bytes = min_bytes;
            if self
                .ready_blocking
                .wait_until(&mut state, deadline)
                .timed_out()
            {
                break;
            }
        }
        state.awaited_bytes = 0;
        state.bytes >= min_bytes || state.closed
    }

    /// Resolves once a record of `len` bytes would fit, or the queue is closed, or the
    /// record could never fit (it is then refused at once when pushed).
    pub async fn wait_for_room(&self, len: usize) {
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            // Registered before looking, so a drain in between is not missed.
            room.as_mut().enable();
            {
                let state = self.state.lock();
                if state.closed
                    || len > self.max_bytes
                    || (state.bytes + len <= self.max_bytes
                        && state.records.len() < self.max_records)
                {
                    return;
                }
            }
            room.await;
        }
    }

    /// Takes no more records; the writer sends what is queued and finishes.
    pub fn close(&self) {
        self.state.lock().closed = true;
        self.ready.notify_one();
        self.ready_blocking.notify_all();
        self.room.notify_waiters();
    }

    /// Closes and throws away what is queued. Returns how many events that lost: those
    /// queued, plus those refused and not yet reported.
    pub fn discard(&self) -> u64 {
        let mut state = self.state.lock();
        state.closed = true;
        let queued = state.records.iter().filter(|r| r.is_event).count() as u64;
        let lost = queued + std::mem::take(&mut state.dropped_events);
        state.records.clear();
        state.segments.clear();
        state.bytes = 0;
        drop(state);
        self.ready.notify_one();
        self.ready_blocking.notify_all();
        self.room.notify_waiters();
        lost
    }

    /// Bytes queued now.
    pub fn queued_bytes(&self) -> usize {
        self.state.lock().bytes
    }

    /// Whether [`close`](Self::close) or [`discard`](Self::discard) was called.
    pub fn is_closed(&self) -> bool {
        self.state.lock().closed
    }
}

impl State {
    /// The segment to write a record of `len` bytes into: the last one if it has room
    /// without growing, else a new one (the last one sealed, or replaced if empty).
    fn tail_with_room(&mut self, len: usize) -> &mut BytesMut {
        let fits = self
            .segments
            .back()
            .is_some_and(|tail| tail.capacity() - tail.len() >= len);
        if !fits {
            let fresh = BytesMut::with_capacity(len.max(SEGMENT));
            match self.segments.back_mut() {
                Some(tail) if tail.is_empty() => *tail = fresh,
                Some(_) => {
                    if let Some(last) = self.records.back_mut() {
                        last.ends_segment = true;
                    }
                    self.segments.push_back(fresh);
                }
                None => self.segments.push_back(fresh),
            }
        }
        self.segments
            .back_mut()
            .expect("a segment was just made if there was none")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(result: &Result<(), Error>) -> bool {
        matches!(result, Err(Error::SendQueueFull { .. }))
    }

    #[test]
    fn full_queue_refuses_and_counts_events_until_it_catches_up() {
        let queue = SendQueue::new(10, usize::MAX);
        queue.push(b"12345", true).expect("room");
        queue
            .push_with(5, true, |buf| buf.put_slice(b"67890"))
            .expect("room");
        assert!(full(&queue.push(b"1", true)));
        assert!(
            full(&queue.push(b"1", false)),
            "control too, but not counted"
        );
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
    fn the_record_limit_holds_as_well_as_the_byte_limit() {
        let queue = SendQueue::new(1000, 2);
        queue.push(b"a", true).expect("room");
        queue.push(b"b", true).expect("room");
        assert!(full(&queue.push(b"c", true)));
        assert_eq!(queue.drain(1).records, 1);
        queue.push(b"c", true).expect("room");
    }

    #[test]
    fn drains_take_whole_records_up_to_the_limit() {
        let queue = SendQueue::new(100, usize::MAX);
        for record in [&b"aaa"[..], b"bbb", b"cccccccc"] {
            queue.push(record, true).expect("room");
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
    fn segments_never_grow_and_records_never_straddle_them() {
        let queue = SendQueue::new(1 << 20, usize::MAX);
        let record = vec![7u8; SEGMENT / 2 + 1];
        for _ in 0..3 {
            queue.push(&record, true).expect("room");
        }
        let big = vec![9u8; 3 * SEGMENT];
        queue.push(&big, true).expect("room");
        {
            let state = queue.state.lock();
            assert_eq!(state.segments.len(), 4, "one per record that did not fit");
            assert!(state.segments.iter().all(|s| s.len() <= s.capacity()));
            assert_eq!(state.segments[3].capacity(), 3 * SEGMENT);
        }
        // A drain stops at a segment's end, so each batch is one contiguous slice.
        for want in [&record[..], &record, &record, &big] {
            let drained = queue.drain(usize::MAX);
            assert_eq!((&drained.bytes[..], drained.records), (want, 1));
        }
        assert_eq!(queue.queued_bytes(), 0);
    }

    #[test]
    fn close_flushes_and_discard_counts_what_was_lost() {
        let queue = SendQueue::new(100, usize::MAX);
        queue.push(b"a", true).expect("room");
        queue.close();
        assert!(matches!(queue.push(b"b", true), Err(Error::Closed)));
        let drained = queue.drain(100);
        assert!(drained.finished && drained.records == 1);

        let queue = SendQueue::new(2, usize::MAX);
        queue.push(b"a", true).expect("room");
        queue.push(b"b", false).expect("room");
        assert!(full(&queue.push(b"c", true)));
        assert_eq!(queue.discard(), 2, "one queued event and one refused");
        assert_eq!(queue.queued_bytes(), 0);
    }

    #[test]
    fn a_writer_thread_wakes_when_enough_is_queued_or_the_queue_closes() {
        let queue = std::sync::Arc::new(SendQueue::new(100, usize::MAX));
        assert!(!queue.wait_blocking(1, Duration::ZERO), "nothing queued");
        let writer = {
            let queue = std::sync::Arc::clone(&queue);
            std::thread::spawn(move || {
                let woke = queue.wait_blocking(4, Duration::from_secs(20));
                let drained = queue.drain(100);
                let closed = queue.wait_blocking(1, Duration::from_secs(20));
                (woke, drained.bytes, closed)
            })
        };
        queue.push(b"ab", true).expect("room");
        queue.push(b"cd", true).expect("room");
        // The writer passes its first wait only once both are queued, and its second only
        // once the queue is closed, whenever it runs.
        queue.close();
        let (woke, bytes, closed) = writer.join().expect("the writer thread");
        assert!(woke && closed);
        assert_eq!(&bytes[..], b"abcd");
    }

    #[tokio::test]
    async fn a_sender_waits_for_room_until_a_drain_makes_it() {
        let queue = std::sync::Arc::new(SendQueue::new(4, usize::MAX));
        queue.push(b"abc", true).expect("room");
        queue.wait_for_room(1).await;
        let waiting = {
            let queue = std::sync::Arc::clone(&queue);
            tokio::spawn(async move { queue.wait_for_room(2).await })
        };
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "3 of 4 bytes are taken");
        assert_eq!(queue.drain(100).records, 1);
        tokio::time::timeout(Duration::from_secs(20), waiting)
            .await
            .expect("woken by the drain")
            .expect("the sender task");
        queue.wait_for_room(100).await; // never fits: no wait
        queue.push(b"abcd", true).expect("room");
        let closing = {
            let queue = std::sync::Arc::clone(&queue);
            tokio::spawn(async move { queue.wait_for_room(1).await })
        };
        queue.close();
        tokio::time::timeout(Duration::from_secs(20), closing)
            .await
            .expect("woken by the close")
            .expect("the sender task");
    }

    #[tokio::test]
    async fn next_batch_waits_for_records_and_ends_with_the_queue() {
        let queue = std::sync::Arc::new(SendQueue::new(100, usize::MAX));
        let writer = {
            let queue = std::sync::Arc::clone(&queue);
            tokio::spawn(async move {
                let mut batches = Vec::new();
                while let Some(batch) = queue.next_batch(4).await {
                    batches.push(batch);
                }
                batches
            })
        };
        queue.push(b"ab", true).expect("room");
        queue.push(b"cd", true).expect("room");
        queue.push(b"efg", true).expect("room");
        queue.close();
        let batches = tokio::time::timeout(Duration::from_secs(20), writer)
            .await
            .expect("ends once the queue is closed and empty")
            .expect("the writer task");
        let all: Vec<u8> = batches.iter().flat_map(|b| b.to_vec()).collect();
        assert_eq!(all, b"abcdefg", "every record, in order");
        assert!(batches.iter().all(|b| b.len() <= 4), "{batches:?}");
    }

    #[tokio::test]
    async fn a_writer_task_is_woken_by_the_first_push() {
        let queue = std::sync::Arc::new(SendQueue::new(100, usize::MAX));
        let waiting = {
            let queue = std::sync::Arc::clone(&queue);
            tokio::spawn(async move {
                queue.ready().await;
                queue.drain(100)
            })
        };
        queue.push(b"x", true).expect("room");
        let drained = tokio::time::timeout(Duration::from_secs(20), waiting)
            .await
            .expect("woken")
            .expect("the writer task");
        assert_eq!(&drained.bytes[..], b"x");
    }
}
