//! Sequence numbers per (source, event name): assigned on emit, checked on receipt, so a
//! lost event is reported as a gap with the number missed.

use foldhash::HashMap;
use foldhash::HashMapExt as _;
use std::sync::Arc;

use crate::node_id::NodeId;
use crate::protocol::SequenceMark;

/// Hands out the next sequence number per event name, from 1, and says which last numbers
/// to announce at each tick ([`take_marks`](Self::take_marks)).
///
/// A name's last number is announced at the first tick after it moved and then again,
/// while it stays still, 1, 2, 4, 8 and 16 ticks later: an announcement can be lost on the
/// way (a full send queue, a full forwarder queue), and the one after a burst is the only
/// way receivers learn of events lost at its tail. Receivers settle each mark once, so the
/// repeats cost a few small messages and report nothing twice.
#[derive(Debug, Default)]
pub struct SequenceCounter {
    /// Name -> its counter in `counters`.
    index: HashMap<Arc<str>, usize>,
    /// Per name: the shared name handed out with each number, the last number, and when
    /// it is next announced. Names are never forgotten.
    counters: Vec<Counter>,
    /// Names with an announcement still to come.
    listed: Vec<Arc<str>>,
    /// Ticks so far: calls of `take_marks`.
    tick: u64,
    /// Ticks so far that announced a name that had moved: each such announcement's
    /// number, from 1, which receivers check for none missed.
    moves: u64,
    /// The counter of the name numbered last: a run of emits of one name costs no hashing.
    hot: Option<usize>,
}

#[derive(Debug)]
struct Counter {
    name: Arc<str>,
    last: u64,
    /// The tick at which `last` is next announced.
    due: u64,
    /// Ticks between this announcement and the next one.
    gap: u64,
    listed: bool,
    /// The number of the announcement that first told of `last` (0: not yet told).
    moved_at: u64,
}

impl Counter {
    fn mark(&self) -> SequenceMark {
        SequenceMark {
            name: self.name.to_string(),
            seq: self.last,
        }
    }

    fn new(name: Arc<str>) -> Self {
        Self {
            name,
            last: 0,
            due: 0,
            gap: 1,
            listed: false,
            moved_at: 0,
        }
    }
}

/// The most marks one [`Control::Sequences`](crate::protocol::Control::Sequences) carries;
/// the rest wait for the next.
pub const MAX_MARKS_PER_MESSAGE: usize = 1024;

/// The widest gap between two announcements of a name that stays still; after it, the name
/// is announced no more until it moves.
const LAST_MARK_GAP: u64 = 16;

impl SequenceCounter {
    /// The shared name and its next sequence number.
    pub fn next(&mut self, name: &str) -> (Arc<str>, u64) {
        let at = match self.hot {
            Some(at) if *self.counters[at].name == *name => at,
            _ => {
                let at = match self.index.get(name) {
                    Some(&at) => at,
                    None => {
                        let key: Arc<str> = name.into();
                        self.counters.push(Counter::new(Arc::clone(&key)));
                        self.index.insert(key, self.counters.len() - 1);
                        self.counters.len() - 1
                    }
                };
                self.hot = Some(at);
                at
            }
        };
        let counter = &mut self.counters[at];
        counter.last += 1;
        counter.due = self.tick;
        counter.gap = 1;
        if !counter.listed {
            counter.listed = true;
            self.listed.push(Arc::clone(&counter.name));
        }
        (Arc::clone(&counter.name), counter.last)
    }

    /// The shared name and the last sequence number given to `name`, if it has one.
    pub fn last(&self, name: &str) -> Option<(Arc<str>, u64)> {
        let at = *self.index.get(name)?;
        self.counters.get(at).map(|c| (Arc::clone(&c.name), c.last))
    }

    fn counter_mut(&mut self, name: &str) -> Option<&mut Counter> {
        let at = *self.index.get(name)?;
        self.counters.get_mut(at)
    }

    /// One tick: the last number of each name due for an announcement (at most
    /// [`MAX_MARKS_PER_MESSAGE`]; the rest come at the next tick).
    pub fn take_marks(&mut self) -> Vec<SequenceMark> {
        self.tick += 1;
        let tick = self.tick;
        let next_move = self.moves + 1;
        let mut moved = false;
        let mut marks = Vec::new();
        // Names announced now go to the back, so a capped tick never starves the others.
        let mut waiting = Vec::with_capacity(self.listed.len());
        let mut announced = Vec::new();
        for name in std::mem::take(&mut self.listed) {
            let Some(counter) = self.counter_mut(&name) else {
                continue;
            };
            if counter.due > tick || marks.len() >= MAX_MARKS_PER_MESSAGE {
                waiting.push(name);
                continue;
            }
            marks.push(SequenceMark {
                name: name.to_string(),
                seq: counter.last,
            });
            if counter.gap == 1 {
                // Its first announcement since it moved.
                counter.moved_at = next_move;
                moved = true;
            }
            if counter.gap > LAST_MARK_GAP {
                counter.listed = false;
                continue;
            }
            counter.due = tick + counter.gap;
            counter.gap *= 2;
            announced.push(name);
        }
        waiting.append(&mut announced);
        self.listed = waiting;
        if moved {
            self.moves = next_move;
        }
        marks
    }

    /// The number of the latest tick that announced a name that had moved (0: none):
    /// what the heartbeat carries. A tick's [`take_marks`](Self::take_marks) moved it on
    /// when it announced one.
    pub fn moves(&self) -> u64 {
        self.moves
    }

    /// The last number of each name one of `patterns` matches whose latest move was
    /// announced after announcement `after`, oldest first, and the announcement number
    /// they cover up to: [`moves`](Self::moves) when all fit in `limit`, else the last
    /// announcement whose names all fit (at least one announcement's, which is never more
    /// than `limit` when `limit` is [`MAX_MARKS_PER_MESSAGE`]).
    pub fn moved_since(
        &self,
        after: u64,
        patterns: &[crate::pattern::Pattern],
        limit: usize,
    ) -> (Vec<SequenceMark>, u64) {
        let mut moved: Vec<&Counter> = self
            .counters
            .iter()
            .filter(|c| c.moved_at > after && patterns.iter().any(|p| p.matches(&c.name)))
            .collect();
        if moved.len() <= limit {
            moved.sort_unstable_by_key(|c| c.moved_at);
            let marks = moved.iter().map(|c| c.mark()).collect();
            return (marks, self.moves);
        }
        moved.sort_unstable_by_key(|c| c.moved_at);
        // Cut before the announcement that would not fit whole.
        let cut_at = moved[limit].moved_at;
        let keep = moved.iter().take_while(|c| c.moved_at < cut_at).count();
        let covered = if keep == 0 { after } else { cut_at - 1 };
        let marks = moved[..keep].iter().map(|c| c.mark()).collect();
        (marks, covered)
    }

    /// The last number of every name ever numbered, at most [`MAX_MARKS_PER_MESSAGE`] to
    /// a list: what a peer that comes back after an outage needs to tell what of it never
    /// arrived, however long ago the repeats ended.
    pub fn all_marks(&self) -> Vec<Vec<SequenceMark>> {
        self.counters
            .chunks(MAX_MARKS_PER_MESSAGE)
            .map(|chunk| {
                chunk
                    .iter()
                    .map(|c| SequenceMark {
                        name: c.name.to_string(),
                        seq: c.last,
                    })
                    .collect()
            })
            .collect()
    }

    /// The last number of every name numbered that one of `patterns` matches: where a
    /// peer that starts listening on them starts (names not listed start at 0).
    pub fn matching(&self, patterns: &[crate::pattern::Pattern]) -> Vec<SequenceMark> {
        self.counters
            .iter()
            .filter(|c| patterns.iter().any(|p| p.matches(&c.name)))
            .map(|c| SequenceMark {
                name: c.name.to_string(),
                seq: c.last,
            })
            .collect()
    }

    /// Marks taken but not sent (the transport refused them): announced again at the next
    /// tick.
    pub fn unsent(&mut self, marks: &[SequenceMark]) {
        let due = self.tick + 1;
        for mark in marks {
            let Some(&at) = self.index.get(mark.name.as_str()) else {
                continue;
            };
            let Some(counter) = self.counters.get_mut(at) else {
                continue;
            };
            counter.due = due;
            if !counter.listed {
                counter.listed = true;
                self.listed.push(Arc::clone(&counter.name));
            }
        }
    }
}

/// The verdict on one received event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqCheck {
    /// The first event seen from this (source, name), or an unsequenced one: deliver.
    Fresh,
    /// The next one expected: deliver.
    InOrder,
    /// Deliver, and report that this many events before it went missing.
    Gap(u64),
    /// Already seen or older than the last one: drop (delivery is at most once).
    Stale,
}

#[derive(Debug)]
struct Source {
    epoch: u64,
    last: HashMap<Arc<str>, u64>,
}

/// Remembers the last sequence number seen per (source, name).
///
/// Bounded: past `max_entries` pairs it forgets one to make room, which can at worst miss
/// reporting one gap for the forgotten pair.
#[derive(Debug)]
pub struct SequenceTracker {
    sources: HashMap<NodeId, Source>,
    entries: usize,
    max_entries: usize,
    /// The pair checked last, kept out of the maps while it stays the one checked: events
    /// come in runs from one source and name, and a run costs no hashing. Written back
    /// before anything else reads the maps.
    hot: Option<Hot>,
}

#[derive(Debug)]
struct Hot {
    source: NodeId,
    epoch: u64,
    name: Arc<str>,
    last: u64,
}

impl SequenceTracker {
    /// A tracker remembering at most `max_entries` (source, name) pairs.
    pub fn new(max_entries: usize) -> Self {
        Self {
            sources: HashMap::new(),
            entries: 0,
            max_entries: max_entries.max(1),
            hot: None,
        }
    }

    /// Writes the hot pair back into the maps.
    fn cool(&mut self) {
        let Some(hot) = self.hot.take() else {
            return;
        };
        if let Some(src) = self.sources.get_mut(&hot.source)
            && src.epoch == hot.epoch
            && let Some(last) = src.last.get_mut(&*hot.name)
        {
            *last = hot.last;
        }
    }

    /// Makes the pair just checked (present in the maps) the hot one.
    fn heat(&mut self, source: &NodeId, epoch: u64, name: &str) {
        if let Some(src) = self.sources.get(source)
            && let Some((key, last)) = src.last.get_key_value(name)
        {
            self.hot = Some(Hot {
                source: source.clone(),
                epoch,
                name: Arc::clone(key),
                last: *last,
            });
        }
    }

    /// Checks event `seq` of `name` from `source` in incarnation `epoch`.
    ///
    /// ```
    /// use demitter_core::NodeId;
    /// use demitter_core::protocol::{SeqCheck, SequenceTracker};
    /// let mut t = SequenceTracker::new(1024);
    /// let a = NodeId::new("a")?;
    /// assert_eq!(t.observe(&a, 1, "x", 1), SeqCheck::Fresh);
    /// assert_eq!(t.observe(&a, 1, "x", 2), SeqCheck::InOrder);
    /// assert_eq!(t.observe(&a, 1, "x", 5), SeqCheck::Gap(2));
    /// assert_eq!(t.observe(&a, 1, "x", 4), SeqCheck::Stale);
    /// # Ok::<(), demitter_core::Error>(())
    /// ```
    pub fn observe(&mut self, source: &NodeId, epoch: u64, name: &str, seq: u64) -> SeqCheck {
        if seq == 0 {
            return SeqCheck::Fresh;
        }
        if let Some(hot) = &mut self.hot
            && hot.epoch == epoch
            && hot.source == *source
            && *hot.name == *name
        {
            return Self::verdict(&mut hot.last, seq);
        }
        self.cool();
        let verdict = self.observe_cold(source, epoch, name, seq);
        self.heat(source, epoch, name);
        verdict
    }

    fn verdict(last: &mut u64, seq: u64) -> SeqCheck {
        let verdict = if seq == *last + 1 {
            SeqCheck::InOrder
        } else if seq <= *last {
            return SeqCheck::Stale;
        } else {
            SeqCheck::Gap(seq - *last - 1)
        };
        *last = seq;
        verdict
    }

    fn observe_cold(&mut self, source: &NodeId, epoch: u64, name: &str, seq: u64) -> SeqCheck {
        if let Some(src) = self.sources.get_mut(source)
            && src.epoch == epoch
            && let Some(last) = src.last.get_mut(name)
        {
            return Self::verdict(last, seq);
        }
        self.insert(source, epoch, name, seq);
        SeqCheck::Fresh
    }

    /// Applies a sender's mark "the last `name` I emitted was `seq`": if this tracker follows
    /// that name from that incarnation and has seen less, the difference was lost.
    pub fn settle(&mut self, source: &NodeId, epoch: u64, name: &str, seq: u64) -> Option<u64> {
        self.cool();
        let src = self.sources.get_mut(source)?;
        if src.epoch != epoch {
            return None;
        }
        let last = src.last.get_mut(name)?;
        if seq <= *last {
            return None;
        }
        let missed = seq - *last;
        *last = seq;
        Some(missed)
    }

    /// Applies a sender's start "the last `name` I emitted before your interest reached me
    /// was `seq`": a pair not followed is followed from `seq`, so that the next event owed
    /// is `seq + 1`. A pair followed already is left as it is: its events are on their way
    /// (where a transport does not keep a sender's control messages and events in one
    /// order, the start can overtake them), and its marks settle it.
    pub fn start(&mut self, source: &NodeId, epoch: u64, name: &str, seq: u64) {
        if !self.follows(source, epoch, name) {
            self.cool();
            self.insert(source, epoch, name, seq);
        }
    }

    /// Whether this tracker follows `name` from `source` in incarnation `epoch`.
    pub fn follows(&self, source: &NodeId, epoch: u64, name: &str) -> bool {
        if let Some(hot) = &self.hot
            && hot.epoch == epoch
            && hot.source == *source
            && *hot.name == *name
        {
            return true;
        }
        self.sources
            .get(source)
            .is_some_and(|src| src.epoch == epoch && src.last.contains_key(name))
    }

    /// Forgets everything about `source` (it left).
    pub fn forget_source(&mut self, source: &NodeId) {
        self.cool();
        if let Some(src) = self.sources.remove(source) {
            self.entries -= src.last.len();
        }
    }

    /// Forgets every name for which `keep` is false (no local listener matches it any more:
    /// events missed while nobody listened are not losses).
    pub fn retain_names(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.cool();
        let mut entries = 0;
        self.sources.retain(|_, src| {
            src.last.retain(|name, _| keep(name));
            entries += src.last.len();
            !src.last.is_empty()
        });
        self.entries = entries;
    }

    /// How many (source, name) pairs are remembered.
    pub fn len(&self) -> usize {
        self.entries
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    fn insert(&mut self, source: &NodeId, epoch: u64, name: &str, seq: u64) {
        let src = self
            .sources
            .entry(source.clone())
            .or_insert_with(|| Source {
                epoch,
                last: HashMap::new(),
            });
        if src.epoch != epoch {
            self.entries -= src.last.len();
            src.last.clear();
            src.epoch = epoch;
        }
        if self.entries >= self.max_entries {
            let victim = src.last.keys().next().cloned();
            if let Some(victim) = victim {
                src.last.remove(&victim);
                self.entries -= 1;
            } else if let Some(other) = self.sources.keys().find(|k| *k != source).cloned() {
                self.forget_source(&other);
            }
        }
        let Some(src) = self.sources.get_mut(source) else {
            return;
        };
        src.last.insert(name.into(), seq);
        self.entries += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> NodeId {
        NodeId::new(s).expect("valid id")
    }

    #[test]
    fn counter_counts_per_name() {
        let mut c = SequenceCounter::default();
        assert_eq!(c.next("a").1, 1);
        assert_eq!(c.next("a").1, 2);
        assert_eq!(c.next("b").1, 1);
    }

    fn mark(name: &str, seq: u64) -> SequenceMark {
        SequenceMark {
            name: name.into(),
            seq,
        }
    }

    #[test]
    fn marks_follow_moves_then_repeat_with_growing_gaps() {
        let mut c = SequenceCounter::default();
        c.next("a");
        c.next("a");
        c.next("b");
        assert_eq!(c.take_marks(), vec![mark("a", 2), mark("b", 1)]);
        // Still: repeated 1, 2, 4, 8 and 16 ticks later, then never again.
        let announced: Vec<usize> = (1..=40).filter(|_| !c.take_marks().is_empty()).collect();
        assert_eq!(announced, vec![1, 3, 7, 15, 31]);
        // A move announces at once and restarts the repeats, for that name only.
        c.next("b");
        assert_eq!(c.take_marks(), vec![mark("b", 2)]);
        assert_eq!(c.take_marks(), vec![mark("b", 2)]);
        assert!(c.take_marks().is_empty());
    }

    #[test]
    fn a_name_that_keeps_moving_is_announced_every_tick() {
        let mut c = SequenceCounter::default();
        for seq in 1..=10 {
            c.next("a");
            assert_eq!(c.take_marks(), vec![mark("a", seq)]);
        }
    }

    #[test]
    fn unsent_marks_come_again_at_the_next_tick() {
        let mut c = SequenceCounter::default();
        c.next("a");
        let marks = c.take_marks();
        c.unsent(&marks);
        assert_eq!(c.take_marks(), vec![mark("a", 1)]);
    }

    #[test]
    fn marks_are_capped_per_message_and_the_rest_follow() {
        let mut c = SequenceCounter::default();
        for i in 0..MAX_MARKS_PER_MESSAGE + 5 {
            c.next(&format!("n{i}"));
        }
        assert_eq!(c.take_marks().len(), MAX_MARKS_PER_MESSAGE);
        let second = c.take_marks();
        assert!(second.contains(&mark(&format!("n{}", MAX_MARKS_PER_MESSAGE + 4), 1)));
    }

    #[test]
    fn settle_reports_a_lost_tail_once() {
        let mut t = SequenceTracker::new(16);
        let a = id("a");
        assert_eq!(t.settle(&a, 1, "x", 5), None, "not followed yet");
        t.observe(&a, 1, "x", 1);
        t.observe(&a, 1, "x", 2);
        assert_eq!(t.settle(&a, 1, "x", 2), None, "nothing missing");
        assert_eq!(t.settle(&a, 1, "x", 5), Some(3));
        assert_eq!(t.settle(&a, 1, "x", 5), None, "reported once");
        assert_eq!(
            t.observe(&a, 1, "x", 4),
            SeqCheck::Stale,
            "a lost event never counts twice"
        );
        assert_eq!(t.observe(&a, 1, "x", 6), SeqCheck::InOrder);
        assert_eq!(t.settle(&a, 2, "x", 9), None, "another incarnation");
    }

    #[test]
    fn new_epoch_restarts_and_unsequenced_always_pass() {
        let mut t = SequenceTracker::new(16);
        let a = id("a");
        assert_eq!(t.observe(&a, 1, "x", 10), SeqCheck::Fresh);
        assert_eq!(t.observe(&a, 2, "x", 1), SeqCheck::Fresh);
        assert_eq!(t.observe(&a, 2, "x", 2), SeqCheck::InOrder);
        assert_eq!(t.observe(&a, 2, "x", 0), SeqCheck::Fresh);
        assert_eq!(t.observe(&a, 2, "x", 0), SeqCheck::Fresh);
    }

    #[test]
    fn bounded_and_prunable() {
        let mut t = SequenceTracker::new(3);
        for (i, name) in ["a", "b", "c", "d", "e"].iter().enumerate() {
            t.observe(&id(if i % 2 == 0 { "p" } else { "q" }), 1, name, 1);
            assert!(t.len() <= 3);
        }
        t.retain_names(|n| n == "e");
        assert_eq!(t.len(), 1);
        t.forget_source(&id("p"));
        assert!(t.is_empty());
    }

    /// The tracker without its hot pair: the same verdicts, from the maps alone.
    #[derive(Default)]
    struct Model {
        last: std::collections::HashMap<(String, String), (u64, u64)>,
    }

    impl Model {
        fn observe(&mut self, source: &str, epoch: u64, name: &str, seq: u64) -> SeqCheck {
            if seq == 0 {
                return SeqCheck::Fresh;
            }
            let key = (source.to_owned(), name.to_owned());
            match self.last.get_mut(&key) {
                Some((e, last)) if *e == epoch => {
                    if seq <= *last {
                        return SeqCheck::Stale;
                    }
                    let verdict = if seq == *last + 1 {
                        SeqCheck::InOrder
                    } else {
                        SeqCheck::Gap(seq - *last - 1)
                    };
                    *last = seq;
                    verdict
                }
                _ => {
                    // A new incarnation forgets everything of the old one.
                    self.last
                        .retain(|(s, _), (e, _)| s != source || *e == epoch);
                    self.last.insert(key, (epoch, seq));
                    SeqCheck::Fresh
                }
            }
        }

        fn settle(&mut self, source: &str, epoch: u64, name: &str, seq: u64) -> Option<u64> {
            let (e, last) = self.last.get_mut(&(source.to_owned(), name.to_owned()))?;
            if *e != epoch || seq <= *last {
                return None;
            }
            let missed = seq - *last;
            *last = seq;
            Some(missed)
        }
    }

    proptest::proptest! {
        /// Runs of one pair skip the maps; interleaved pairs, settling and forgetting in
        /// between never make a verdict differ from the plain maps'.
        #[test]
        fn the_hot_pair_changes_no_verdict(ops in proptest::collection::vec(
            (0u8..4, 0usize..2, 1u64..3, 0usize..2, 0u64..12), 1..200)
        ) {
            let mut t = SequenceTracker::new(1_000);
            let mut m = Model::default();
            let sources = [id("p"), id("q")];
            for (op, s, epoch, n, seq) in ops {
                let (source, name) = (&sources[s], ["x", "y"][n]);
                match op {
                    0 | 1 => proptest::prop_assert_eq!(
                        t.observe(source, epoch, name, seq),
                        m.observe(source.as_str(), epoch, name, seq)
                    ),
                    2 => proptest::prop_assert_eq!(
                        t.settle(source, epoch, name, seq),
                        m.settle(source.as_str(), epoch, name, seq)
                    ),
                    _ => {
                        t.forget_source(source);
                        m.last.retain(|(src, _), _| src != source.as_str());
                    }
                }
            }
        }
    }
}
