//! The receive loop: one task per emitter that takes what the transport received, a batch
//! at a time, into the node, and wakes the node when its timers are due. It never waits on
//! a listener. On a transport that hands batches over directly, it only keeps the timers
//! and notices the transport's end.

use std::sync::Arc;
use std::time::Instant;

use crate::emitter::inner::Inner;
use crate::report::{ErrorKind, ErrorReport};

/// How many arrived items the loop takes per batch before it checks its timers and
/// cancellation again.
const DRAIN_BATCH: usize = 256;

pub(crate) async fn run(inner: Arc<Inner>) {
    let mut deadline = inner.poll_timeout();
    *inner.timer_deadline.lock() = deadline;
    let sleep = tokio::time::sleep_until(deadline.into());
    tokio::pin!(sleep);
    // Reused for every batch: taking what has arrived costs no allocation.
    let mut batch = Vec::with_capacity(DRAIN_BATCH);
    loop {
        let next: Instant = tokio::select! {
            biased;
            () = inner.cancel.cancelled() => break,
            () = &mut sleep => inner.handle_timeout(),
            () = inner.timer_moved.notified() => inner.poll_timeout(),
            open = inner.transport.recv_many(&mut batch, DRAIN_BATCH) => {
                if !open {
                    if !inner.cancel.is_cancelled() {
                        inner.report(ErrorReport::new(
                            ErrorKind::Network,
                            1,
                            "the transport stopped; this emitter receives nothing more",
                        ));
                    }
                    break;
                }
                let next = inner.handle_batch(&mut batch);
                // The listeners this batch woke run on this worker first (tokio's LIFO
                // slot); yielding once lets them, and lets more arrive, before the loop
                // waits again. Without it the worker parks after nearly every event and
                // the sender pays a wake-up each time: the memory hub then delivered
                // 0.77M/s where it delivers 1.06M/s with it (benches/README.md).
                tokio::task::yield_now().await;
                next
            }
        };
        // Waking early is harmless (the node finds nothing due and says when); only an
        // earlier deadline, or a fired one, needs the timer moved.
        if next < deadline || sleep.is_elapsed() {
            deadline = next;
            *inner.timer_deadline.lock() = deadline;
            sleep.as_mut().reset(deadline.into());
        }
    }
    tracing::debug!(id = %inner.id, "receive loop ended");
}
