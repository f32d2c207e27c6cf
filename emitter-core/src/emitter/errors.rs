//! The error channel's fan-out and running totals.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::lag_queue::LagQueue;
use crate::report::{ErrorCounts, ErrorKind, ErrorReport};

#[derive(Default)]
pub(crate) struct ErrorChannel {
    subscribers: Mutex<Vec<Arc<LagQueue<ErrorReport>>>>,
    totals: [AtomicU64; 6],
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
    pub(crate) fn subscribe(&self, capacity: usize) -> Arc<LagQueue<ErrorReport>> {
        let queue = Arc::new(LagQueue::new(capacity));
        self.subscribers.lock().push(Arc::clone(&queue));
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
        }
    }

    pub(crate) fn close(&self) {
        for q in self.subscribers.lock().drain(..) {
            q.close();
        }
    }
}
