//! The error channel's fan-out and running totals.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::lag_queue::LagQueue;
use crate::report::{ErrorCounts, ErrorKind, ErrorReport};

/// How many reports made before anyone listened are kept for the first stream.
pub(crate) const EARLY_REPORTS: usize = 64;

pub(crate) struct ErrorChannel {
    subscribers: Mutex<Vec<Arc<LagQueue<ErrorReport>>>>,
    /// Until the first stream is made, the first [`EARLY_REPORTS`] reports: what a
    /// transport says at once (a forwarder that refuses the connection, say) would
    /// otherwise be gone before `connect` has returned the emitter to listen on.
    early: Mutex<Option<Vec<ErrorReport>>>,
    totals: [AtomicU64; 6],
}

impl Default for ErrorChannel {
    fn default() -> Self {
        Self {
            subscribers: Mutex::default(),
            early: Mutex::new(Some(Vec::new())),
            totals: Default::default(),
        }
    }
}

fn slot(kind: ErrorKind) -> usize {
    match kind {
        ErrorKind::Deserialization => 0,
        ErrorKind::Network => 1,
        ErrorKind::Emission => 2,
        ErrorKind::Gap => 3,
        ErrorKind::Lagged => 4,
        ErrorKind::Refused => 5,
    }
}

impl ErrorChannel {
    /// A new stream's queue; the first one starts with the reports made before it.
    pub(crate) fn subscribe(&self, capacity: usize) -> Arc<LagQueue<ErrorReport>> {
        let queue = Arc::new(LagQueue::new(capacity));
        let mut subscribers = self.subscribers.lock();
        for report in self.early.lock().take().into_iter().flatten() {
            queue.push(report);
        }
        subscribers.push(Arc::clone(&queue));
        queue
    }

    /// Logs, counts and fans out one report. This is the one log line of every report:
    /// transports log at debug what they report here.
    pub(crate) fn publish(&self, report: ErrorReport) {
        if report.kind == ErrorKind::Lagged {
            tracing::debug!(%report, "listener lagged");
        } else {
            tracing::warn!(%report, "distributed error");
        }
        self.totals[slot(report.kind)].fetch_add(report.count, Ordering::Relaxed);
        let mut subscribers = self.subscribers.lock();
        if let Some(early) = self.early.lock().as_mut() {
            if early.len() < EARLY_REPORTS {
                early.push(report);
            }
            return;
        }
        subscribers.retain(|q| !q.is_closed());
        if let Some((last, rest)) = subscribers.split_last() {
            for q in rest {
                q.push(report.clone());
            }
            last.push(report);
        }
    }

    pub(crate) fn counts(&self) -> ErrorCounts {
        let get = |kind| self.totals[slot(kind)].load(Ordering::Relaxed);
        ErrorCounts {
            deserialization: get(ErrorKind::Deserialization),
            network: get(ErrorKind::Network),
            emission: get(ErrorKind::Emission),
            gap: get(ErrorKind::Gap),
            lagged: get(ErrorKind::Lagged),
            refused: get(ErrorKind::Refused),
            recovered: 0,
        }
    }

    pub(crate) fn close(&self) {
        for q in self.subscribers.lock().drain(..) {
            q.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(n: u64) -> ErrorReport {
        ErrorReport::new(ErrorKind::Network, n, format!("report {n}"))
    }

    /// The counts of the reports waiting in `queue`.
    fn drain(queue: &LagQueue<ErrorReport>) -> Vec<u64> {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        std::iter::from_fn(|| match queue.poll_pop(&mut cx) {
            std::task::Poll::Ready(Some(crate::lag_queue::Popped::Item(report))) => {
                Some(report.count)
            }
            _ => None,
        })
        .collect()
    }

    #[test]
    fn the_first_stream_gets_the_reports_made_before_it_and_later_ones_do_not() {
        let channel = ErrorChannel::default();
        for n in 1..=(EARLY_REPORTS as u64 + 10) {
            channel.publish(report(n));
        }
        assert_eq!(
            channel.counts().network,
            (1..=EARLY_REPORTS as u64 + 10).sum()
        );
        let first = channel.subscribe(1024);
        let second = channel.subscribe(1024);
        assert_eq!(
            drain(&first),
            (1..=EARLY_REPORTS as u64).collect::<Vec<_>>()
        );
        assert!(drain(&second).is_empty(), "only the first stream");
        channel.publish(report(1000));
        assert_eq!(drain(&first), [1000]);
        assert_eq!(drain(&second), [1000]);
    }
}
