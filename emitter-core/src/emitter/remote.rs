//! What the other nodes listen on, as the presence protocol reports it.

use std::collections::HashMap;

use crate::index::PatternIndex;
use crate::node_id::NodeId;
use crate::pattern::Pattern;

#[derive(Default)]
struct Slot {
    /// Counted listeners per peer on this pattern (0 for a pattern with only spies).
    peers: HashMap<NodeId, u32>,
    total: u64,
}

/// Remote interest: pattern -> peer -> count.
#[derive(Default)]
pub(crate) struct RemoteInterest {
    index: PatternIndex<Slot>,
}

impl RemoteInterest {
    pub(crate) fn apply(&mut self, peer: &NodeId, pattern: &Pattern, count: Option<u32>) {
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

    pub(crate) fn count_exact(&self, pattern: &Pattern) -> usize {
        self.index.get(pattern).map_or(0, |s| s.total as usize)
    }

    /// The peers with any listener (spies included) matching `name`.
    pub(crate) fn peers_matching(&self, name: &str) -> Vec<NodeId> {
        let mut peers: Vec<NodeId> = Vec::new();
        self.index.for_each_match(name, |_, slot| {
            for peer in slot.peers.keys() {
                if !peers.contains(peer) {
                    peers.push(peer.clone());
                }
            }
        });
        peers
    }
}
