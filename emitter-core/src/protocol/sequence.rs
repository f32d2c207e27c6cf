//! Sequence numbers per (source, event name): assigned on emit, checked on receipt, so a
//! lost event is reported as a gap with the number missed.

use foldhash::HashMap;
use foldhash::HashMapExt as _;
use std::sync::Arc;

use crate::node_id::NodeId;
use crate::protocol::SequenceMark;

/// Hands out the next sequence number per event name, from 1, and remembers which names
/// moved since the last [`take_marks`](Self::take_marks).
#[derive(Debug, Default)]
pub struct SequenceCounter {
    /// Name -> the shared name handed out with each number, the last number, and whether
    /// it moved since the last marks were taken.
    next: HashMap<Arc<str>, Counter>,
    moved: Vec<Arc<str>>,
}

#[derive(Debug)]
struct Counter {
    name: Arc<str>,
    last: u64,
    moved: bool,
}

/// The most marks one [`Control::Sequences`](crate::protocol::Control::Sequences) carries;
/// the rest wait for the next.
pub const MAX_MARKS_PER_MESSAGE: usize = 1024;

impl SequenceCounter {
    /// The shared name and its next sequence number.
    pub fn next(&mut self, name: &str) -> (Arc<str>, u64) {
        let counter = match self.next.get_mut(name) {
            Some(counter) => counter,
            None => {
                let key: Arc<str> = name.into();
                let counter = Counter {
                    name: Arc::clone(&key),
                    last: 0,
                    moved: false,
                };
                self.next.entry(key).or_insert(counter)
            }
        };
        counter.last += 1;
        if !counter.moved {
            counter.moved = true;
            self.moved.push(Arc::clone(&counter.name));
        }
        (Arc::clone(&counter.name), counter.last)
    }

    /// The last number of each name that moved since the previous call (at most
    /// [`MAX_MARKS_PER_MESSAGE`]; the rest come next time).
    pub fn take_marks(&mut self) -> Vec<SequenceMark> {
        let take = self.moved.len().min(MAX_MARKS_PER_MESSAGE);
        self.moved
            .drain(..take)
            .filter_map(|name| {
                let counter = self.next.get_mut(&name)?;
                counter.moved = false;
                Some(SequenceMark {
                    name: name.to_string(),
                    seq: counter.last,
                })
            })
            .collect()
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
}

impl SequenceTracker {
    /// A tracker remembering at most `max_entries` (source, name) pairs.
    pub fn new(max_entries: usize) -> Self {
        Self {
            sources: HashMap::new(),
            entries: 0,
            max_entries: max_entries.max(1),
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
        if let Some(src) = self.sources.get_mut(source)
            && src.epoch == epoch
            && let Some(last) = src.last.get_mut(name)
        {
            let verdict = if seq == *last + 1 {
                SeqCheck::InOrder
            } else if seq <= *last {
                return SeqCheck::Stale;
            } else {
                SeqCheck::Gap(seq - *last - 1)
            };
            *last = seq;
            return verdict;
        }
        self.insert(source, epoch, name, seq);
        SeqCheck::Fresh
    }

    /// Applies a sender's mark "the last `name` I emitted was `seq`": if this tracker follows
    /// that name from that incarnation and has seen less, the difference was lost.
    pub fn settle(&mut self, source: &NodeId, epoch: u64, name: &str, seq: u64) -> Option<u64> {
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

    /// Forgets everything about `source` (it left).
    pub fn forget_source(&mut self, source: &NodeId) {
        if let Some(src) = self.sources.remove(source) {
            self.entries -= src.last.len();
        }
    }

    /// Forgets every name for which `keep` is false (no local listener matches it any more:
    /// events missed while nobody listened are not losses).
    pub fn retain_names(&mut self, mut keep: impl FnMut(&str) -> bool) {
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

    #[test]
    fn marks_report_only_moved_names_once() {
        let mut c = SequenceCounter::default();
        c.next("a");
        c.next("a");
        c.next("b");
        let marks = c.take_marks();
        assert_eq!(
            marks,
            vec![
                SequenceMark {
                    name: "a".into(),
                    seq: 2
                },
                SequenceMark {
                    name: "b".into(),
                    seq: 1
                }
            ]
        );
        assert!(c.take_marks().is_empty(), "nothing moved since");
        c.next("b");
        assert_eq!(
            c.take_marks(),
            vec![SequenceMark {
                name: "b".into(),
                seq: 2
            }]
        );
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
}
