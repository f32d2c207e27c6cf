//! Sequence numbers, both ways, in one place: numbering what this node emits and
//! announcing the last numbers (marks) on a timer; checking what arrives, settling the
//! marks peers announce, and forgetting what no longer matters.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::node_id::NodeId;
use crate::pattern::Pattern;
use crate::protocol::{
    Control, MAX_MARKS_PER_MESSAGE, SeqCheck, SequenceCounter, SequenceMark, SequenceTracker,
};
use crate::report::{ErrorKind, ErrorReport};

pub(crate) struct Sequencing {
    epoch: u64,
    outgoing: SequenceCounter,
    incoming: SequenceTracker,
    interval: Duration,
    next_marks: Instant,
}

impl Sequencing {
    pub(crate) fn new(epoch: u64, max_tracked: usize, interval: Duration, now: Instant) -> Self {
        let interval = interval.max(Duration::from_millis(1));
        Self {
            epoch,
            outgoing: SequenceCounter::default(),
            incoming: SequenceTracker::new(max_tracked),
            interval,
            next_marks: now + interval,
        }
    }

    // ---- outgoing ----------------------------------------------------------------------

    /// The shared name and the next number of an event this node emits.
    pub(crate) fn number(&mut self, name: &str) -> (Arc<str>, u64) {
        self.outgoing.next(name)
    }

    /// The shared name and the last number of an event this node emitted.
    pub(crate) fn last_number(&self, name: &str) -> Option<(Arc<str>, u64)> {
        self.outgoing.last(name)
    }

    /// When the next marks are due.
    pub(crate) fn next_deadline(&self) -> Instant {
        self.next_marks
    }

    /// The marks due at `now`, if their time has come.
    pub(crate) fn marks_due(&mut self, now: Instant) -> Option<Control> {
        if now < self.next_marks {
            return None;
        }
        self.next_marks = now + self.interval;
        self.marks_now()
    }

    /// The marks due at this tick, whatever the time (at close).
    pub(crate) fn marks_now(&mut self) -> Option<Control> {
        let before = self.outgoing.moves();
        let last = self.outgoing.take_marks();
        let moves = self.outgoing.moves();
        (!last.is_empty()).then_some(Control::Sequences {
            epoch: self.epoch,
            last,
            moved: if moves > before { moves } else { 0 },
        })
    }

    /// The number of the latest marks that announced a moved name, for the heartbeat.
    pub(crate) fn moves(&self) -> u64 {
        self.outgoing.moves()
    }

    /// Every name's last number, for a peer that came (back) up.
    pub(crate) fn all_marks(&self) -> Vec<Control> {
        self.outgoing
            .all_marks()
            .into_iter()
            .map(|last| Control::Sequences {
                epoch: self.epoch,
                last,
                moved: 0,
            })
            .collect()
    }

    /// Every name's last number, at most [`MAX_MARKS_PER_MESSAGE`] to a part.
    pub(crate) fn all_last(&self) -> Vec<Vec<SequenceMark>> {
        self.outgoing.all_marks()
    }

    /// The answer to `to`'s [`Control::MarksRequest`]: the last numbers of the names
    /// `patterns` (its interest) match that moved after announcement `after`.
    pub(crate) fn marks_for(&self, to: &NodeId, after: u64, patterns: &[Pattern]) -> Control {
        let (last, moved) = self
            .outgoing
            .moved_since(after, patterns, MAX_MARKS_PER_MESSAGE);
        Control::Marks {
            epoch: self.epoch,
            to: to.to_string(),
            after,
            moved,
            last,
        }
    }

    /// The last numbers of this node's names that one of `patterns` matches.
    pub(crate) fn starts_for(&self, patterns: &[Pattern]) -> Vec<SequenceMark> {
        if patterns.is_empty() {
            return Vec::new();
        }
        self.outgoing.matching(patterns)
    }

    /// Applies one of `source`'s starts: a name not followed yet is followed from there.
    pub(crate) fn start(&mut self, source: &NodeId, epoch: u64, mark: &SequenceMark) {
        self.incoming.start(source, epoch, &mark.name, mark.seq);
    }

    /// The report of `missed` events of `name` that `source` emitted after acknowledging
    /// this node's interest, before the first one that arrived.
    pub(crate) fn lost_before_ack(source: &NodeId, name: &str, missed: u64) -> ErrorReport {
        ErrorReport::new(
            ErrorKind::Gap,
            missed,
            format!(
                "{missed} event(s) `{name}` from `{source}` were lost after it acknowledged this node's interest"
            ),
        )
        .with_peer(source.as_str())
        .with_event(name)
    }

    /// Marks that were taken but never left: announced again at the next tick.
    pub(crate) fn unsent(&mut self, marks: &[SequenceMark]) {
        self.outgoing.unsent(marks);
    }

    // ---- incoming ----------------------------------------------------------------------

    /// Checks an arrived event's number.
    pub(crate) fn check(&mut self, source: &NodeId, epoch: u64, name: &str, seq: u64) -> SeqCheck {
        let verdict = self.incoming.observe(source, epoch, name, seq);
        if verdict == SeqCheck::Stale {
            tracing::debug!(%source, name, seq, "dropped a stale or duplicate event");
        }
        verdict
    }

    /// The report of `missed` events lost before `seq`.
    pub(crate) fn gap_report(source: &NodeId, name: &str, seq: u64, missed: u64) -> ErrorReport {
        ErrorReport::new(
            ErrorKind::Gap,
            missed,
            format!("{missed} event(s) `{name}` from `{source}` were lost before seq {seq}"),
        )
        .with_peer(source.as_str())
        .with_event(name)
    }

    /// Whether `name` from `source` (incarnation `epoch`) is followed.
    pub(crate) fn follows(&self, source: &NodeId, epoch: u64, name: &str) -> bool {
        self.incoming.follows(source, epoch, name)
    }

    /// The events `source` says it emitted that never arrived: for each name, the first
    /// and last missing numbers (the tracker now takes them as seen).
    pub(crate) fn settle(
        &mut self,
        source: &NodeId,
        epoch: u64,
        marks: &[SequenceMark],
    ) -> Vec<(String, u64, u64)> {
        marks
            .iter()
            .take(MAX_MARKS_PER_MESSAGE)
            .filter_map(|m| {
                let missed = self.incoming.settle(source, epoch, &m.name, m.seq)?;
                Some((m.name.clone(), m.seq - missed + 1, m.seq))
            })
            .collect()
    }

    /// The report of `missed` events of `name` at the tail of what `source` sent.
    pub(crate) fn tail_report(source: &NodeId, name: &str, missed: u64) -> ErrorReport {
        ErrorReport::new(
            ErrorKind::Gap,
            missed,
            format!("{missed} event(s) `{name}` from `{source}` were lost (the last ones it sent)"),
        )
        .with_peer(source.as_str())
        .with_event(name)
    }

    /// `source` left for good: its numbers are of no more use.
    pub(crate) fn forget_source(&mut self, source: &NodeId) {
        self.incoming.forget_source(source);
    }

    /// Forgets the names no listener here matches any more: what is missed while nobody
    /// listens is no loss.
    pub(crate) fn forget_unheard(&mut self, heard: impl FnMut(&str) -> bool) {
        self.incoming.retain_names(heard);
    }
}
