//! The receiver's side of recovery: for each (source, name) with numbers missing, which
//! are still asked for and until when, and the events that arrived after them, held so
//! that listeners get everything in order. Pure bookkeeping: the node asks, delivers and
//! reports what this says.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use foldhash::HashMap;

use crate::event::RawEvent;
use crate::node_id::NodeId;

/// Events held at most, over every (source, name): past it, the (source, name) that
/// would hold more gives up what it waits for.
const MAX_HELD: usize = 65_536;

/// Missing ranges at most per (source, name): past it, the oldest is given up.
const MAX_RANGES: usize = 1_024;

/// Numbers asked for at most per source at a time: a receiver that has fallen hopelessly
/// behind (a subscriber that cannot keep up) reports the losses past it at once, instead
/// of asking for more than it could take.
const MAX_MISSING_PER_SOURCE: u64 = 16_384;

/// Ranges one request names at most.
pub(crate) const MAX_RANGES_ASKED: usize = 256;

/// Numbers still missing, `first..=last`, given up at `deadline`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Missing {
    first: u64,
    last: u64,
    deadline: Instant,
}

/// One (source, name) waiting for repairs.
struct Pending {
    epoch: u64,
    /// Sorted, disjoint.
    missing: Vec<Missing>,
    /// Events that came after a missing number, by number.
    held: BTreeMap<u64, RawEvent>,
    /// When to ask again for everything still missing.
    next_ask: Instant,
}

impl Pending {
    fn first_missing(&self) -> Option<u64> {
        self.missing.first().map(|m| m.first)
    }
}

/// A request to make: `source` (in `epoch`) is asked for `ranges` of `name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ask {
    pub(crate) source: NodeId,
    pub(crate) epoch: u64,
    pub(crate) name: Arc<str>,
    pub(crate) ranges: Vec<[u64; 2]>,
}

/// What a change let go: events to deliver, in order, and losses to report.
#[derive(Debug, Default)]
pub(crate) struct Released {
    pub(crate) events: Vec<RawEvent>,
    /// (source, name, how many, the number after them).
    pub(crate) lost: Vec<(NodeId, Arc<str>, u64, u64)>,
    /// Events that came back.
    pub(crate) recovered: u64,
}

impl Released {
    /// Adds what `other` let go after this.
    pub(crate) fn merge(&mut self, other: Released) {
        self.events.extend(other.events);
        self.lost.extend(other.lost);
        self.recovered += other.recovered;
    }
}

/// Every (source, name) waiting for repairs.
pub(crate) struct Repairs {
    deadline: Duration,
    retry: Duration,
    pending: HashMap<NodeId, HashMap<Arc<str>, Pending>>,
    held: usize,
}

impl Repairs {
    /// Repairs given up `deadline` after the loss was seen, asked again every quarter of it.
    pub(crate) fn new(deadline: Duration) -> Self {
        Self {
            deadline,
            retry: (deadline / 4).max(Duration::from_millis(1)),
            pending: HashMap::default(),
            held: 0,
        }
    }

    /// Whether nothing waits (the hot path asks this first).
    pub(crate) fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Whether `name` from `source` waits for a repair.
    pub(crate) fn waits(&self, source: &NodeId, name: &str) -> bool {
        self.pending
            .get(source)
            .is_some_and(|names| names.contains_key(name))
    }

    /// Whether anything of `source`'s waits for a repair.
    pub(crate) fn waits_for(&self, source: &NodeId) -> bool {
        self.pending.contains_key(source)
    }

    /// Numbers `first..=last` of `name` from `source` (incarnation `epoch`) are missing,
    /// seen at `now`: what to ask for them (nothing, and reported lost at once, past
    /// [`MAX_MISSING_PER_SOURCE`]).
    pub(crate) fn missing(
        &mut self,
        (source, epoch): (&NodeId, u64),
        name: &Arc<str>,
        (first, last): (u64, u64),
        now: Instant,
    ) -> (Option<Ask>, Released) {
        let mut released = Released::default();
        let outstanding: u64 = self.pending.get(source).map_or(0, |names| {
            names
                .values()
                .flat_map(|p| &p.missing)
                .map(|m| m.last - m.first + 1)
                .sum()
        });
        let count = last - first + 1;
        if outstanding.saturating_add(count) > MAX_MISSING_PER_SOURCE {
            released.lost.push((
                source.clone(),
                Arc::clone(name),
                count,
                last.saturating_add(1),
            ));
            return (None, released);
        }
        let names = self.pending.entry(source.clone()).or_default();
        let pending = names.entry(Arc::clone(name)).or_insert_with(|| Pending {
            epoch,
            missing: Vec::new(),
            held: BTreeMap::new(),
            next_ask: now + self.retry,
        });
        let at = pending.missing.partition_point(|m| m.first < first);
        pending.missing.insert(
            at,
            Missing {
                first,
                last,
                deadline: now + self.deadline,
            },
        );
        if pending.missing.len() > MAX_RANGES {
            let oldest = pending.missing.remove(0);
            released.lost.push((
                source.clone(),
                Arc::clone(name),
                oldest.last - oldest.first + 1,
                oldest.last.saturating_add(1),
            ));
        }
        let ask = Ask {
            source: source.clone(),
            epoch,
            name: Arc::clone(name),
            ranges: vec![[first, last]],
        };
        self.release(source, name, &mut released);
        (Some(ask), released)
    }

    /// What waits for `name` from `source`, if anything.
    fn pending_mut(&mut self, source: &NodeId, name: &str) -> Option<&mut Pending> {
        self.pending.get_mut(source)?.get_mut(name)
    }

    /// Holds `event` (of a name that waits) until what is missing before it is settled.
    pub(crate) fn hold(&mut self, event: RawEvent) -> Released {
        let mut released = Released::default();
        let source = event.source.clone();
        let name = Arc::clone(&event.name);
        let Some(pending) = self.pending_mut(&source, &name) else {
            released.events.push(event);
            return released;
        };
        if pending.held.insert(event.seq, event).is_none() {
            self.held += 1;
        }
        if self.held > MAX_HELD {
            self.give_up(&source, &name, &mut released);
        }
        self.release(&source, &name, &mut released);
        released
    }

    /// `event` came back (repaired, or late): taken if it is one of the missing numbers.
    pub(crate) fn fill(&mut self, event: RawEvent) -> Released {
        let mut released = Released::default();
        let source = event.source.clone();
        let name = Arc::clone(&event.name);
        let Some(pending) = self.pending_mut(&source, &name) else {
            return released;
        };
        let seq = event.seq;
        let Some(at) = pending
            .missing
            .iter()
            .position(|m| m.first <= seq && seq <= m.last)
        else {
            return released;
        };
        let range = pending.missing.remove(at);
        if seq < range.last {
            pending.missing.insert(
                at,
                Missing {
                    first: seq + 1,
                    ..range
                },
            );
        }
        if range.first < seq {
            pending.missing.insert(
                at,
                Missing {
                    last: seq - 1,
                    ..range
                },
            );
        }
        pending.held.insert(seq, event);
        self.held += 1;
        released.recovered += 1;
        self.release(&source, &name, &mut released);
        released
    }

    /// `source` (incarnation `epoch`) says it cannot repair `gone` of `name`.
    pub(crate) fn gone(
        &mut self,
        (source, epoch): (&NodeId, u64),
        name: &str,
        gone: &[[u64; 2]],
    ) -> Released {
        let mut released = Released::default();
        let Some(names) = self.pending.get_mut(source) else {
            return released;
        };
        let Some(name) = names.get_key_value(name).map(|(k, _)| Arc::clone(k)) else {
            return released;
        };
        let Some(pending) = names.get_mut(&name) else {
            return released;
        };
        if pending.epoch != epoch {
            return released;
        }
        for &[first, last] in gone {
            let mut kept = Vec::with_capacity(pending.missing.len());
            for m in pending.missing.drain(..) {
                let (lo, hi) = (m.first.max(first), m.last.min(last));
                if lo > hi {
                    kept.push(m);
                    continue;
                }
                released.lost.push((
                    source.clone(),
                    Arc::clone(&name),
                    hi - lo + 1,
                    hi.saturating_add(1),
                ));
                if m.first < lo {
                    kept.push(Missing { last: lo - 1, ..m });
                }
                if hi < m.last {
                    kept.push(Missing {
                        first: hi.saturating_add(1),
                        ..m
                    });
                }
            }
            pending.missing = kept;
        }
        self.release(source, &name, &mut released);
        released
    }

    /// What is due at `now`: ranges past their deadline are given up (and what waited
    /// behind them released); everything still missing of a (source, name) whose retry
    /// time came is asked for again.
    pub(crate) fn expire(&mut self, now: Instant) -> (Vec<Ask>, Released) {
        let mut released = Released::default();
        let mut asks = Vec::new();
        let mut touched: Vec<(NodeId, Arc<str>)> = Vec::new();
        for (source, names) in &mut self.pending {
            for (name, pending) in names.iter_mut() {
                let before = pending.missing.len();
                pending.missing.retain(|m| {
                    if m.deadline <= now {
                        released.lost.push((
                            source.clone(),
                            Arc::clone(name),
                            m.last - m.first + 1,
                            m.last.saturating_add(1),
                        ));
                        false
                    } else {
                        true
                    }
                });
                if pending.missing.len() != before || pending.missing.is_empty() {
                    touched.push((source.clone(), Arc::clone(name)));
                }
                if !pending.missing.is_empty() && pending.next_ask <= now {
                    pending.next_ask = now + self.retry;
                    asks.push(Ask {
                        source: source.clone(),
                        epoch: pending.epoch,
                        name: Arc::clone(name),
                        ranges: pending
                            .missing
                            .iter()
                            .take(MAX_RANGES_ASKED)
                            .map(|m| [m.first, m.last])
                            .collect(),
                    });
                }
            }
        }
        for (source, name) in touched {
            self.release(&source, &name, &mut released);
        }
        (asks, released)
    }

    /// `source` is gone (left, lost, or restarted): what it was asked for is given up.
    pub(crate) fn source_gone(&mut self, source: &NodeId) -> Released {
        let mut released = Released::default();
        let names: Vec<Arc<str>> = self
            .pending
            .get(source)
            .map_or_else(Vec::new, |names| names.keys().cloned().collect());
        for name in names {
            self.give_up(source, &name, &mut released);
            self.release(source, &name, &mut released);
        }
        released
    }

    /// When something is due next.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.pending
            .values()
            .flat_map(HashMap::values)
            .flat_map(|p| {
                p.missing
                    .iter()
                    .map(|m| m.deadline)
                    .chain(std::iter::once(p.next_ask))
            })
            .min()
    }

    /// Gives up everything `name` from `source` still waits for.
    fn give_up(&mut self, source: &NodeId, name: &Arc<str>, released: &mut Released) {
        if let Some(pending) = self.pending_mut(source, name) {
            for m in pending.missing.drain(..) {
                released.lost.push((
                    source.clone(),
                    Arc::clone(name),
                    m.last - m.first + 1,
                    m.last.saturating_add(1),
                ));
            }
        }
    }

    /// Lets go, in order, of the held events before the first number still missing; the
    /// (source, name) is forgotten once nothing is missing.
    fn release(&mut self, source: &NodeId, name: &Arc<str>, released: &mut Released) {
        let Some(names) = self.pending.get_mut(source) else {
            return;
        };
        let Some(pending) = names.get_mut(name) else {
            return;
        };
        let upto = pending.first_missing().unwrap_or(u64::MAX);
        while let Some(entry) = pending.held.first_entry() {
            if *entry.key() >= upto {
                break;
            }
            released.events.push(entry.remove());
            self.held -= 1;
        }
        if pending.missing.is_empty() {
            names.remove(name);
            if names.is_empty() {
                self.pending.remove(source);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn event(seq: u64) -> RawEvent {
        RawEvent {
            name: "a".into(),
            payload: Bytes::new(),
            source: NodeId::new("s").expect("valid"),
            seq,
        }
    }

    fn seqs(released: &Released) -> Vec<u64> {
        released.events.iter().map(|e| e.seq).collect()
    }

    #[test]
    fn numbers_filled_and_given_up_in_any_order_release_in_order() {
        let now = Instant::now();
        let source = NodeId::new("s").expect("valid");
        let name: Arc<str> = "a".into();
        let mut repairs = Repairs::new(Duration::from_secs(1));
        // 2..=6 missing, 7 arrived.
        let (ask, released) = repairs.missing((&source, 1), &name, (2, 6), now);
        assert_eq!(ask.map(|a| a.ranges), Some(vec![[2, 6]]));
        assert!(released.events.is_empty());
        assert!(seqs(&repairs.hold(event(7))).is_empty());
        assert!(repairs.waits(&source, "a"));
        // 4 comes back first: nothing can go yet.
        assert!(seqs(&repairs.fill(event(4))).is_empty());
        assert_eq!(repairs.fill(event(4)).recovered, 0, "once");
        // 2 comes: 2 goes; 3 is missing.
        assert_eq!(seqs(&repairs.fill(event(2))), [2]);
        // 3 and 5 are gone: 4 goes, 3 and 5 reported; 6 is still missing.
        let released = repairs.gone((&source, 1), "a", &[[3, 3], [5, 5], [9, 20]]);
        assert_eq!(seqs(&released), [4]);
        let lost: Vec<(u64, u64)> = released.lost.iter().map(|l| (l.2, l.3)).collect();
        assert_eq!(lost, [(1, 4), (1, 6)]);
        // An answer for another incarnation changes nothing.
        assert!(repairs.gone((&source, 2), "a", &[[6, 6]]).lost.is_empty());
        // The deadline: 6 is reported, 7 goes, and nothing waits any more.
        let (asks, released) = repairs.expire(now + Duration::from_secs(1));
        assert!(asks.is_empty());
        assert_eq!(seqs(&released), [7]);
        assert_eq!(released.lost.len(), 1);
        assert!(repairs.is_empty());
        assert_eq!(repairs.next_deadline(), None);
    }

    #[test]
    fn a_receiver_hopelessly_behind_reports_at_once_instead_of_asking() {
        let now = Instant::now();
        let source = NodeId::new("s").expect("valid");
        let name: Arc<str> = "a".into();
        let mut repairs = Repairs::new(Duration::from_secs(1));
        let (ask, _) = repairs.missing((&source, 1), &name, (1, MAX_MISSING_PER_SOURCE), now);
        assert!(ask.is_some(), "up to the bound: asked");
        let (ask, released) = repairs.missing(
            (&source, 1),
            &name,
            (MAX_MISSING_PER_SOURCE + 2, MAX_MISSING_PER_SOURCE + 2),
            now,
        );
        assert!(ask.is_none(), "past it: not asked");
        assert_eq!(released.lost.len(), 1, "but reported");
        let other = NodeId::new("t").expect("valid");
        assert!(
            repairs.missing((&other, 1), &name, (1, 1), now).0.is_some(),
            "per source"
        );
    }

    #[test]
    fn what_is_missing_is_asked_for_again_until_the_deadline() {
        let now = Instant::now();
        let source = NodeId::new("s").expect("valid");
        let name: Arc<str> = "a".into();
        let mut repairs = Repairs::new(Duration::from_millis(400));
        let _ = repairs.missing((&source, 1), &name, (2, 3), now);
        let _ = repairs.missing((&source, 1), &name, (8, 8), now + Duration::from_millis(50));
        assert_eq!(
            repairs.next_deadline(),
            Some(now + Duration::from_millis(100))
        );
        let (asks, _) = repairs.expire(now + Duration::from_millis(100));
        assert_eq!(asks.len(), 1);
        assert_eq!(asks[0].ranges, [[2, 3], [8, 8]]);
        let (_, released) = repairs.expire(now + Duration::from_millis(400));
        assert_eq!(released.lost.len(), 1, "2 and 3 first");
        let (_, released) = repairs.expire(now + Duration::from_millis(450));
        assert_eq!(released.lost.len(), 1, "then 8");
        assert!(repairs.is_empty());
    }
}
