//! How long closing may take, written once for every transport.
//!
//! A transport closes in two steps, each with a deadline, so that a peer that stopped
//! answering delays a close by at most [`CloseDeadlines::total`]:
//!
//! 1. **flush**: what is queued (the goodbye among it) is written and, where the network
//!    says so, acknowledged;
//! 2. **leave**: the connection is closed in order (our end of stream after the data), and
//!    the peer is given time to close its side, since dropping a socket with unread input
//!    resets it and can lose what was written.
//!
//! ```
//! use std::time::Duration;
//! use demitter_core::CloseDeadlines;
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let deadlines = CloseDeadlines::default();
//! assert_eq!(deadlines.total(), deadlines.flush + deadlines.leave);
//! // A peer that never answers costs the deadline, not a hang.
//! let never = std::future::pending::<()>();
//! let quick = CloseDeadlines { flush: Duration::from_millis(1), ..deadlines };
//! assert!(!quick.flushed("the last frames", never).await);
//! # }
//! ```

use std::future::Future;
use std::time::Duration;

/// The deadlines of the two steps of a close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseDeadlines {
    /// How long the queued frames have to be written (and acknowledged, where the network
    /// acknowledges).
    pub flush: Duration,
    /// How long a peer has to close its side once ours is closed (or once it said it is
    /// leaving).
    pub leave: Duration,
}

impl Default for CloseDeadlines {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl CloseDeadlines {
    /// What every transport uses: two seconds to flush, two to leave.
    pub const DEFAULT: Self = Self {
        flush: Duration::from_secs(2),
        leave: Duration::from_secs(2),
    };

    /// The longest a close takes: both steps.
    pub fn total(&self) -> Duration {
        self.flush + self.leave
    }

    /// Runs the flush step: `true` if `flush` finished within [`flush`](Self::flush);
    /// otherwise it is dropped, `what` is logged at debug level, and `false`.
    pub async fn flushed(&self, what: &str, flush: impl Future) -> bool {
        within(self.flush, "flush", what, flush).await
    }

    /// Runs the leave step: `true` if `leave` finished within [`leave`](Self::leave);
    /// otherwise it is dropped, `what` is logged at debug level, and `false`.
    pub async fn left(&self, what: &str, leave: impl Future) -> bool {
        within(self.leave, "leave", what, leave).await
    }
}

async fn within(deadline: Duration, step: &str, what: &str, work: impl Future) -> bool {
    let done = tokio::time::timeout(deadline, work).await.is_ok();
    if !done {
        tracing::debug!("closing: {what} did not {step} within {deadline:?}");
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn each_step_waits_for_its_work_or_its_deadline() {
        let deadlines = CloseDeadlines {
            flush: Duration::from_secs(2),
            leave: Duration::from_secs(3),
        };
        let start = tokio::time::Instant::now();
        assert!(
            deadlines
                .flushed("a ready flush", std::future::ready(()))
                .await
        );
        assert_eq!(
            start.elapsed(),
            Duration::ZERO,
            "finished work does not wait"
        );
        assert!(
            !deadlines
                .left("a silent peer", std::future::pending::<()>())
                .await
        );
        assert_eq!(
            start.elapsed(),
            Duration::from_secs(3),
            "the leave deadline"
        );
        let slow = tokio::time::sleep(Duration::from_secs(1));
        assert!(deadlines.flushed("a slow flush", slow).await);
        assert_eq!(start.elapsed(), Duration::from_secs(4));
    }
}
