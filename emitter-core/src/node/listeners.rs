//! This node's listeners, indexed by pattern: ids, flags and the driver's opaque sink for
//! each (never a closure: the node does not run anything).

use foldhash::HashMap;

use crate::index::PatternIndex;
use crate::pattern::Pattern;

/// How a listener takes part in counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListenerFlags {
    /// Counted nowhere: neither in `emit`'s delivery nor in any listener count.
    pub spy: bool,
    /// Added by `on_any` / `any_event` (removed together by `off_any`).
    pub any: bool,
}

/// What the node knows of one listener.
#[derive(Debug, Clone)]
pub struct ListenerInfo<S> {
    /// Unique within its node, never reused.
    pub id: u64,
    /// The pattern it listens on.
    pub pattern: Pattern,
    /// Its flags.
    pub flags: ListenerFlags,
    /// The driver's handle for delivering to it.
    pub sink: S,
}

struct Slot<S> {
    /// In the order they were added: an event is dispatched to them in that order.
    listeners: Vec<ListenerInfo<S>>,
    /// Non-spy listeners in `listeners`.
    counted: u32,
}

/// A pattern's interest after a listener came or went.
pub(crate) struct InterestChange {
    pub(crate) pattern: Pattern,
    /// Counted listeners left on it; `None` when no listener (spies included) is left.
    pub(crate) count: Option<u32>,
    /// This listener was the first on its pattern (spies included).
    pub(crate) first: bool,
}

pub(crate) struct ListenerTable<S> {
    index: PatternIndex<Slot<S>>,
    patterns_by_id: HashMap<u64, Pattern>,
    next_id: u64,
}

impl<S> Default for ListenerTable<S> {
    fn default() -> Self {
        Self {
            index: PatternIndex::new(),
            patterns_by_id: HashMap::default(),
            next_id: 0,
        }
    }
}

impl<S> ListenerTable<S> {
    /// A fresh listener id (group members, kept elsewhere, take theirs here too).
    pub(crate) fn allocate_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub(crate) fn add(
        &mut self,
        pattern: Pattern,
        flags: ListenerFlags,
        sink: S,
    ) -> (u64, InterestChange) {
        let id = self.allocate_id();
        self.patterns_by_id.insert(id, pattern.clone());
        let slot = self.index.get_or_insert_with(&pattern, || Slot {
            listeners: Vec::new(),
            counted: 0,
        });
        if !flags.spy {
            slot.counted += 1;
        }
        let first = slot.listeners.is_empty();
        slot.listeners.push(ListenerInfo {
            id,
            pattern: pattern.clone(),
            flags,
            sink,
        });
        let count = Some(slot.counted);
        (
            id,
            InterestChange {
                pattern,
                count,
                first,
            },
        )
    }

    pub(crate) fn remove(&mut self, id: u64) -> Option<(ListenerInfo<S>, InterestChange)> {
        let pattern = self.patterns_by_id.remove(&id)?;
        let slot = self.index.get_mut(&pattern)?;
        let at = slot.listeners.iter().position(|l| l.id == id)?;
        // In order: the others keep their dispatch order.
        let info = slot.listeners.remove(at);
        if !info.flags.spy {
            slot.counted -= 1;
        }
        let count = if slot.listeners.is_empty() {
            self.index.remove(&pattern);
            None
        } else {
            Some(slot.counted)
        };
        Some((
            info,
            InterestChange {
                pattern,
                count,
                first: false,
            },
        ))
    }

    pub(crate) fn get(&self, id: u64) -> Option<&ListenerInfo<S>> {
        let pattern = self.patterns_by_id.get(&id)?;
        self.index
            .get(pattern)?
            .listeners
            .iter()
            .find(|l| l.id == id)
    }

    /// Every listener, pattern by pattern.
    pub(crate) fn for_each<'a>(&'a self, mut f: impl FnMut(&'a ListenerInfo<S>)) {
        self.index
            .for_each(|_, slot| slot.listeners.iter().for_each(&mut f));
    }

    /// The listeners whose pattern matches `name`: exact patterns first, each pattern's in
    /// the order they were added.
    pub(crate) fn for_each_match<'a>(&'a self, name: &str, mut f: impl FnMut(&'a ListenerInfo<S>)) {
        self.index
            .for_each_match(name, |_, slot| slot.listeners.iter().for_each(&mut f));
    }

    /// The listeners registered on exactly `pattern`, in the order they were added.
    pub(crate) fn for_each_exact<'a>(
        &'a self,
        pattern: &Pattern,
        f: impl FnMut(&'a ListenerInfo<S>),
    ) {
        if let Some(slot) = self.index.get(pattern) {
            slot.listeners.iter().for_each(f);
        }
    }

    pub(crate) fn has_match(&self, name: &str) -> bool {
        let mut found = false;
        self.index.for_each_match(name, |_, _| found = true);
        found
    }

    /// Counted listeners whose pattern matches `name`.
    pub(crate) fn count_matching(&self, name: &str) -> usize {
        let mut n = 0;
        self.index
            .for_each_match(name, |_, slot| n += slot.counted as usize);
        n
    }

    /// Counted listeners registered on exactly `pattern`.
    pub(crate) fn count_exact(&self, pattern: &Pattern) -> usize {
        self.index.get(pattern).map_or(0, |s| s.counted as usize)
    }

    /// How many listeners there are.
    pub(crate) fn len(&self) -> usize {
        self.patterns_by_id.len()
    }
}
