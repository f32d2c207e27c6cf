//! The local listeners, indexed by pattern.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::future::BoxFuture;

use crate::emitter::event::RawEvent;
use crate::error::Error;
use crate::index::PatternIndex;
use crate::lag_queue::LagQueue;
use crate::pattern::Pattern;

/// A handler with its payload type erased: decodes, then returns the handler's future.
pub(crate) type ErasedHandler =
    Arc<dyn Fn(&RawEvent) -> Result<BoxFuture<'static, ()>, Error> + Send + Sync>;

/// Where a listener's events go.
pub(crate) enum Sink {
    /// A handler: local emits call it directly; remote and system events queue for its task.
    Handler {
        call: ErasedHandler,
        queue: Arc<LagQueue<RawEvent>>,
    },
    /// A stream (`events`, `once`): every event queues.
    Stream(Arc<LagQueue<RawEvent>>),
}

impl Sink {
    pub(crate) fn queue(&self) -> &Arc<LagQueue<RawEvent>> {
        match self {
            Sink::Handler { queue, .. } | Sink::Stream(queue) => queue,
        }
    }
}

/// One registered listener.
pub(crate) struct ListenerEntry {
    pub(crate) id: u64,
    pub(crate) pattern: Pattern,
    pub(crate) spy: bool,
    pub(crate) any: bool,
    pub(crate) sink: Sink,
}

#[derive(Default)]
pub(crate) struct Slot {
    pub(crate) listeners: Vec<Arc<ListenerEntry>>,
    /// Non-spy listeners in `listeners`.
    pub(crate) counted: u32,
}

/// What adding or removing a listener did to its pattern's announced interest.
pub(crate) struct InterestChange {
    pub(crate) pattern: Pattern,
    /// The pattern's new count of counted listeners; `None` when no listener is left.
    pub(crate) count: Option<u32>,
}

#[derive(Default)]
pub(crate) struct Registry {
    index: PatternIndex<Slot>,
    patterns_by_id: HashMap<u64, Pattern>,
    next_id: u64,
}

impl Registry {
    pub(crate) fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub(crate) fn add(&mut self, entry: Arc<ListenerEntry>) -> InterestChange {
        let pattern = entry.pattern.clone();
        self.patterns_by_id.insert(entry.id, pattern.clone());
        let slot = self.index.get_or_insert_with(&pattern, Slot::default);
        if !entry.spy {
            slot.counted += 1;
        }
        slot.listeners.push(entry);
        InterestChange {
            count: Some(slot.counted),
            pattern,
        }
    }

    pub(crate) fn remove(&mut self, id: u64) -> Option<(Arc<ListenerEntry>, InterestChange)> {
        let pattern = self.patterns_by_id.remove(&id)?;
        let slot = self.index.get_mut(&pattern)?;
        let at = slot.listeners.iter().position(|l| l.id == id)?;
        let entry = slot.listeners.swap_remove(at);
        if !entry.spy {
            slot.counted -= 1;
        }
        let count = if slot.listeners.is_empty() {
            self.index.remove(&pattern);
            None
        } else {
            Some(slot.counted)
        };
        Some((entry, InterestChange { pattern, count }))
    }

    /// Ids of the listeners for which `select` is true.
    pub(crate) fn ids_where(&self, mut select: impl FnMut(&ListenerEntry) -> bool) -> Vec<u64> {
        let mut ids = Vec::new();
        self.index.for_each(|_, slot| {
            ids.extend(slot.listeners.iter().filter(|l| select(l)).map(|l| l.id));
        });
        ids
    }

    pub(crate) fn for_each_match<'a>(
        &'a self,
        name: &str,
        mut f: impl FnMut(&'a Arc<ListenerEntry>),
    ) {
        self.index
            .for_each_match(name, |_, slot| slot.listeners.iter().for_each(&mut f));
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

    /// Listeners (spies included) registered on exactly `pattern`.
    pub(crate) fn count_listeners_on(&self, pattern: &Pattern) -> usize {
        self.index.get(pattern).map_or(0, |s| s.listeners.len())
    }

    /// Counted listeners registered on exactly `pattern`.
    pub(crate) fn count_exact(&self, pattern: &Pattern) -> usize {
        self.index.get(pattern).map_or(0, |s| s.counted as usize)
    }

    pub(crate) fn all(&self) -> Vec<Arc<ListenerEntry>> {
        let mut all = Vec::new();
        self.index
            .for_each(|_, slot| all.extend(slot.listeners.iter().cloned()));
        all
    }
}
