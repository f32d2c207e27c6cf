//! The NATS client's events as reports: a lost connection at once, and the messages the
//! client dropped for a subscriber that did not keep up in one report at most every
//! [`SLOW_REPORT_INTERVAL`].
//!
//! async-nats drops a message when a subscription's channel is full and says so with one
//! `SlowConsumer` event per message, into an event channel that can itself overflow, so
//! its count is a lower bound. The exact count of what was lost comes from the sequence
//! gaps, per sender and name; this report says why.

use std::time::Duration;

use demitter_core::{ErrorKind, ErrorReport, InboxSender, Incoming};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// At most one slow-consumer report per this long.
pub(crate) const SLOW_REPORT_INTERVAL: Duration = Duration::from_secs(1);

/// When to report the client's slow-consumer drops. Time is passed in.
#[derive(Debug, Default)]
pub(crate) struct SlowReports {
    /// Drops not reported yet.
    pending: u64,
    /// No report before this.
    quiet_until: Option<Instant>,
}

impl SlowReports {
    /// `dropped` more messages at `now`: returns how many to report now, if it is time.
    pub(crate) fn dropped(&mut self, dropped: u64, now: Instant) -> Option<u64> {
        self.pending += dropped;
        self.due(now)
    }

    /// What to report at `now`, if anything is pending and the quiet time is over.
    pub(crate) fn due(&mut self, now: Instant) -> Option<u64> {
        if self.pending == 0 || self.quiet_until.is_some_and(|until| now < until) {
            return None;
        }
        self.quiet_until = Some(now + SLOW_REPORT_INTERVAL);
        Some(std::mem::take(&mut self.pending))
    }

    /// When [`due`](Self::due) has something to report, if it will.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        (self.pending > 0).then_some(self.quiet_until).flatten()
    }
}

/// Turns the client's events (first `early`, those seen while connecting) into reports
/// until cancelled.
pub(crate) async fn report_client_events(
    early: Vec<async_nats::Event>,
    mut events: mpsc::Receiver<async_nats::Event>,
    inbox: InboxSender,
    cancel: CancellationToken,
) {
    let mut slow = SlowReports::default();
    let mut early = early;
    loop {
        let deadline = slow.deadline();
        let event = if early.is_empty() {
            tokio::select! {
            () = cancel.cancelled() => break,
            () = sleep_until(deadline) => None,
            event = events.recv() => match event {
                Some(event) => Some(event),
                None => break,
            },
            }
        } else {
            None
        };
        let (mut dropped, mut disconnects, mut refused) = (0u64, 0u64, 0u64);
        let mut refusal = None;
        let waiting = std::iter::from_fn(|| events.try_recv().ok());
        for event in early.drain(..).chain(event).chain(waiting) {
            match event {
                async_nats::Event::SlowConsumer(_) => dropped += 1,
                async_nats::Event::Disconnected => disconnects += 1,
                async_nats::Event::ServerError(error) => {
                    refused += 1;
                    refusal = Some(error.to_string());
                }
                async_nats::Event::Connected => tracing::info!("connected to NATS"),
                other => tracing::debug!("NATS client event: {other}"),
            }
        }
        let mut reports = Vec::new();
        if let Some(refusal) = refusal {
            // A permission refused is a configuration to fix: the servers' permissions
            // and this node's certificate disagree.
            tracing::warn!("the NATS server refused this emitter ({refused} time(s)): {refusal}");
            reports.push(Incoming::Report(ErrorReport::new(
                ErrorKind::Refused,
                refused,
                format!("the NATS server refused this emitter: {refusal}"),
            )));
        }
        if disconnects > 0 {
            reports.push(Incoming::Report(ErrorReport::new(
                ErrorKind::Network,
                disconnects,
                "lost the connection to NATS; reconnecting (what was in flight is reported as gaps)",
            )));
        }
        if let Some(dropped) = slow.dropped(dropped, Instant::now()) {
            reports.push(Incoming::Report(ErrorReport::new(
                ErrorKind::Network,
                dropped,
                format!(
                    "the NATS client dropped at least {dropped} message(s) for this emitter, \
                     which did not keep up (the gaps count them exactly, per sender and name; \
                     this report comes at most once every {SLOW_REPORT_INTERVAL:?})"
                ),
            )));
        }
        if !reports.is_empty() && !inbox.send(reports).await {
            break;
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_are_reported_at_once_then_at_most_once_an_interval() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut slow = SlowReports::default();
        assert_eq!(slow.deadline(), None, "nothing to report");
        assert_eq!(slow.dropped(3, at(0)), Some(3), "the first drops at once");
        assert_eq!(slow.dropped(5, at(10)), None, "then quiet");
        assert_eq!(slow.dropped(2, at(500)), None);
        assert_eq!(
            slow.deadline(),
            Some(at(1000)),
            "until the interval is over"
        );
        assert_eq!(slow.due(at(999)), None);
        assert_eq!(
            slow.due(at(1000)),
            Some(7),
            "everything since, in one report"
        );
        assert_eq!(slow.deadline(), None, "nothing pending");
        assert_eq!(slow.due(at(5000)), None);
        assert_eq!(
            slow.dropped(1, at(5000)),
            Some(1),
            "a quiet time over: at once"
        );
        assert_eq!(slow.dropped(0, at(5001)), None, "no drops, no report");
    }
}
