//! Sequence numbers per (source, event name): assigned on emit, checked on receipt, so a
//! lost event is reported as a gap with the number missed.

use std::collections::HashMap;
use std::sync::Arc;

use crate::node_id::NodeId;

/// Hands out the next sequence number per event name, from 1.
#[derive(Debug, Default)]
pub struct SequenceCounter {
    /// Name -> (the shared name handed out with each number, the last number).
    next: HashMap<Arc<str>, (Arc<str>, u64)>,
}

impl SequenceCounter {
    /// The shared name and its next sequence number.
    pub fn next(&mut self, name: &str) -> (Arc<str>, u64) {
        if let Some((key, seq)) = self.next.get_mut(name) {
            *seq += 1;
            return (Arc::clone(key), *seq);
        }
        let key: Arc<str> = name.into();
        self.next.insert(Arc::clone(&key), (Arc::clone(&key), 1));
        (key, 1)
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
