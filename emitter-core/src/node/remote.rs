//! What the other nodes listen on, as the presence protocol reports it.

use std::sync::Arc;

use foldhash::HashMap;

use crate::index::PatternIndex;
use crate::node_id::NodeId;
use crate::pattern::Pattern;

#[derive(Default)]
struct Slot {
    /// Counted listeners per peer on this pattern (0 for a pattern with only spies).
    peers: HashMap<NodeId, u32>,
    total: u64,
}

/// Where an event goes: how many remote listeners it reaches, on which peers.
#[derive(Clone)]
pub(crate) struct Route {
    /// Counted remote listeners whose pattern matches.
    pub(crate) count: usize,
    /// The peers with any listener (spies included) matching.
    pub(crate) peers: Arc<[NodeId]>,
}

impl Route {
    /// This route, and `more` peers besides (each once).
    pub(crate) fn with_peers(&self, more: &[NodeId]) -> Self {
        let mut peers: Vec<NodeId> = self.peers.to_vec();
        peers.extend(more.iter().filter(|p| !self.peers.contains(p)).cloned());
        Self {
            count: self.count,
            peers: Arc::from(peers),
        }
    }

    /// No listener anywhere.
    pub(crate) fn nowhere() -> Self {
        Self {
            count: 0,
            peers: Arc::from(Vec::new()),
        }
    }
}

/// Routes remembered at most; beyond, the memory starts over.
const MAX_ROUTES: usize = 4096;

/// Remote interest: pattern -> peer -> count.
#[derive(Default)]
pub(crate) struct RemoteInterest {
    index: PatternIndex<Slot>,
    /// Routes worked out since the interest last changed, by event name: emitting the same
    /// names again and again costs one lookup, not a match and an allocation.
    routes: HashMap<Box<str>, Route>,
}

impl RemoteInterest {
    /// Where an event named `name` goes.
    pub(crate) fn route(&mut self, name: &str) -> Route {
        if let Some(route) = self.routes.get(name) {
            return route.clone();
        }
        let mut count = 0;
        let mut peers: Vec<NodeId> = Vec::new();
        self.index.for_each_match(name, |_, slot| {
            count += slot.total as usize;
            for peer in slot.peers.keys() {
                if !peers.contains(peer) {
                    peers.push(peer.clone());
                }
            }
        });
        let route = Route {
            count,
            peers: peers.into(),
        };
        if self.routes.len() >= MAX_ROUTES {
            self.routes.clear();
        }
        self.routes.insert(name.into(), route.clone());
        route
    }

    pub(crate) fn apply(&mut self, peer: &NodeId, pattern: &Pattern, count: Option<u32>) {
        self.routes.clear();
        match count {
            Some(c) => {
                let slot = self.index.get_or_insert_with(pattern, Slot::default);
                let old = slot.peers.insert(peer.clone(), c).unwrap_or(0);
                slot.total = slot.total - u64::from(old) + u64::from(c);
            }
            None => {
                let Some(slot) = self.index.get_mut(pattern) else {
                    return;
                };
                if let Some(old) = slot.peers.remove(peer) {
                    slot.total -= u64::from(old);
                }
                if slot.peers.is_empty() {
                    self.index.remove(pattern);
                }
            }
        }
    }

    pub(crate) fn count_matching(&self, name: &str) -> usize {
        let mut n = 0;
        self.index
            .for_each_match(name, |_, slot| n += slot.total as usize);
        n
    }

    /// Each peer's counted listeners on each pattern that matches `name`.
    pub(crate) fn for_each_matching(&self, name: &str, mut f: impl FnMut(&Pattern, &NodeId, u32)) {
        self.index.for_each_match(name, |pattern, slot| {
            for (peer, n) in &slot.peers {
                f(pattern, peer, *n);
            }
        });
    }

    /// Each peer's counted listeners on exactly `pattern`.
    pub(crate) fn for_each_exact(
        &self,
        pattern: &Pattern,
        mut f: impl FnMut(&Pattern, &NodeId, u32),
    ) {
        if let Some(slot) = self.index.get(pattern) {
            for (peer, n) in &slot.peers {
                f(pattern, peer, *n);
            }
        }
    }

    pub(crate) fn count_exact(&self, pattern: &Pattern) -> usize {
        self.index.get(pattern).map_or(0, |s| s.total as usize)
    }
}
