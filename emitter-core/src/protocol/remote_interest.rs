//! What the other nodes listen on, have group members on and serve: the one table of
//! every peer's interest. The presence protocol writes it; routing, counts, groups,
//! requests, acknowledgements and the listing of the bus's listeners read it.

use std::collections::hash_map::Entry;
use std::sync::Arc;

use foldhash::HashMap;

use crate::index::PatternIndex;
use crate::node_id::NodeId;
use crate::pattern::Pattern;
use crate::protocol::interest::Interest;

/// One peer's count on one item of its interest, and since when it has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Held {
    /// Its non-spy listeners (members, responders); 0 for a pattern with only spies.
    pub(crate) count: u32,
    /// The peer's interest version at which it took the item up (0: it does not say).
    pub(crate) since: u64,
}

/// Every peer's count on one pattern (of one role).
#[derive(Default)]
struct Slot {
    peers: HashMap<NodeId, u32>,
    total: u64,
}

/// A peer's members of one group on one pattern.
struct Members {
    peer: NodeId,
    pattern: Pattern,
    count: u32,
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

/// Every peer's interest: by peer (what the presence protocol compares a snapshot with),
/// and indexed by pattern for listeners and responders, by group for members.
#[derive(Default)]
pub(crate) struct RemoteInterest {
    by_peer: HashMap<NodeId, HashMap<Interest, Held>>,
    listeners: PatternIndex<Slot>,
    responders: PatternIndex<Slot>,
    members: HashMap<Arc<str>, Vec<Members>>,
    /// Listener routes worked out since the interest last changed, by event name:
    /// emitting the same names again and again costs one lookup, not a match and an
    /// allocation.
    routes: HashMap<Box<str>, Route>,
}

impl std::fmt::Debug for RemoteInterest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteInterest")
            .field("peers", &self.by_peer.len())
            .finish_non_exhaustive()
    }
}

impl RemoteInterest {
    // ---- writing (the presence protocol) ------------------------------------------------

    /// Sets `peer`'s count on `interest` (`None`: removes it). A count given for an item
    /// the peer has keeps the later of the two `since`s. Returns the count it had.
    pub(crate) fn set(
        &mut self,
        peer: &NodeId,
        interest: &Interest,
        count: Option<u32>,
        since: u64,
    ) -> Option<u32> {
        let old = match count {
            Some(count) => {
                let held = self.by_peer.entry(peer.clone()).or_default();
                match held.entry(interest.clone()) {
                    Entry::Occupied(mut e) => {
                        let h = e.get_mut();
                        let old = h.count;
                        h.count = count;
                        h.since = h.since.max(since);
                        Some(old)
                    }
                    Entry::Vacant(e) => {
                        e.insert(Held { count, since });
                        None
                    }
                }
            }
            None => {
                let held = self.by_peer.get_mut(peer)?;
                let old = held.remove(interest).map(|h| h.count);
                if held.is_empty() {
                    self.by_peer.remove(peer);
                }
                old
            }
        };
        if old != count {
            self.index(peer, interest, count);
        }
        old
    }

    /// Replaces `peer`'s whole interest with `fresh`; returns what changed: each item whose
    /// count is not the one it had, with its new count (`None`: gone).
    pub(crate) fn replace(
        &mut self,
        peer: &NodeId,
        fresh: HashMap<Interest, Held>,
    ) -> Vec<(Interest, Option<u32>)> {
        let old = self.by_peer.remove(peer).unwrap_or_default();
        let mut changed = Vec::new();
        for interest in old.keys().filter(|i| !fresh.contains_key(*i)) {
            self.index(peer, interest, None);
            changed.push((interest.clone(), None));
        }
        for (interest, held) in &fresh {
            if old.get(interest).map(|h| h.count) != Some(held.count) {
                self.index(peer, interest, Some(held.count));
                changed.push((interest.clone(), Some(held.count)));
            }
        }
        if !fresh.is_empty() {
            self.by_peer.insert(peer.clone(), fresh);
        }
        changed
    }

    /// Forgets everything of `peer`'s; returns what it had.
    pub(crate) fn remove_peer(&mut self, peer: &NodeId) -> Vec<Interest> {
        let old = self.by_peer.remove(peer).unwrap_or_default();
        for interest in old.keys() {
            self.index(peer, interest, None);
        }
        old.into_keys().collect()
    }

    /// Keeps the pattern and group indexes in step with one change of `peer`'s.
    fn index(&mut self, peer: &NodeId, interest: &Interest, count: Option<u32>) {
        match interest {
            Interest::Listen(pattern) => {
                self.routes.clear();
                apply(&mut self.listeners, peer, pattern, count);
            }
            Interest::Serve(pattern) => apply(&mut self.responders, peer, pattern, count),
            Interest::Group { group, pattern } => {
                let members = self.members.entry(Arc::clone(group)).or_default();
                members.retain(|m| !(m.peer == *peer && m.pattern == *pattern));
                if let Some(count) = count.filter(|c| *c > 0) {
                    members.push(Members {
                        peer: peer.clone(),
                        pattern: pattern.clone(),
                        count,
                    });
                }
                if members.is_empty() {
                    self.members.remove(group);
                }
            }
        }
    }

    // ---- one peer ------------------------------------------------------------------------

    /// How many items of `peer`'s interest there are.
    pub(crate) fn len_of(&self, peer: &NodeId) -> usize {
        self.by_peer.get(peer).map_or(0, HashMap::len)
    }

    /// How many items of `peer`'s interest have a count (spies' patterns do not).
    pub(crate) fn counted_of(&self, peer: &NodeId) -> usize {
        self.by_peer
            .get(peer)
            .map_or(0, |held| held.values().filter(|h| h.count > 0).count())
    }

    /// `peer`'s count and `since` on `interest`, if it has it.
    pub(crate) fn held(&self, peer: &NodeId, interest: &Interest) -> Option<Held> {
        self.by_peer.get(peer)?.get(interest).copied()
    }

    /// The patterns `peer` has listeners on, each with the version it took it up at.
    pub(crate) fn listened_by(&self, peer: &NodeId) -> Vec<(Pattern, u64)> {
        let Some(held) = self.by_peer.get(peer) else {
            return Vec::new();
        };
        held.iter()
            .filter_map(|(interest, h)| match interest {
                Interest::Listen(pattern) => Some((pattern.clone(), h.since)),
                Interest::Group { .. } | Interest::Serve(_) => None,
            })
            .collect()
    }

    // ---- listeners ---------------------------------------------------------------------

    /// Where an event named `name` goes.
    pub(crate) fn route(&mut self, name: &str) -> Route {
        if let Some(route) = self.routes.get(name) {
            return route.clone();
        }
        let mut count = 0;
        let mut peers: Vec<NodeId> = Vec::new();
        self.listeners.for_each_match(name, |_, slot| {
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

    /// Counted listeners whose pattern matches `name`.
    pub(crate) fn listeners_matching(&self, name: &str) -> usize {
        total_matching(&self.listeners, name)
    }

    /// Counted listeners on exactly `pattern`.
    pub(crate) fn listeners_exact(&self, pattern: &Pattern) -> usize {
        self.listeners.get(pattern).map_or(0, |s| s.total as usize)
    }

    /// Each peer's counted listeners on each pattern that matches `name`.
    pub(crate) fn for_each_listener_matching(
        &self,
        name: &str,
        f: impl FnMut(&Pattern, &NodeId, u32),
    ) {
        each_matching(&self.listeners, name, f);
    }

    /// Each peer's counted listeners on exactly `pattern`.
    pub(crate) fn for_each_listener_exact(
        &self,
        pattern: &Pattern,
        mut f: impl FnMut(&Pattern, &NodeId, u32),
    ) {
        if let Some(slot) = self.listeners.get(pattern) {
            for (peer, n) in &slot.peers {
                f(pattern, peer, *n);
            }
        }
    }

    // ---- responders --------------------------------------------------------------------

    /// Responders that serve the request name `name`.
    pub(crate) fn responders_matching(&self, name: &str) -> usize {
        total_matching(&self.responders, name)
    }

    /// Each peer's responders on each pattern that serves `name`.
    pub(crate) fn for_each_responder_matching(
        &self,
        name: &str,
        f: impl FnMut(&Pattern, &NodeId, u32),
    ) {
        each_matching(&self.responders, name, f);
    }

    /// The peers with a responder that serves `name`, each once.
    pub(crate) fn serving(&self, name: &str) -> Vec<NodeId> {
        let mut peers: Vec<NodeId> = Vec::new();
        self.responders.for_each_match(name, |_, slot| {
            for (peer, n) in &slot.peers {
                if *n > 0 && !peers.contains(peer) {
                    peers.push(peer.clone());
                }
            }
        });
        peers
    }

    // ---- group members -----------------------------------------------------------------

    /// Each peer's members of each group on each pattern `select` takes:
    /// `f(group, peer, pattern, how many)`.
    pub(crate) fn for_each_member(
        &self,
        select: impl Fn(&Pattern) -> bool,
        mut f: impl FnMut(&Arc<str>, &NodeId, &Pattern, u32),
    ) {
        for (group, members) in &self.members {
            for m in members.iter().filter(|m| select(&m.pattern)) {
                f(group, &m.peer, &m.pattern, m.count);
            }
        }
    }
}

/// One peer's change of count on `pattern` in `index`.
fn apply(index: &mut PatternIndex<Slot>, peer: &NodeId, pattern: &Pattern, count: Option<u32>) {
    match count {
        Some(c) => {
            let slot = index.get_or_insert_with(pattern, Slot::default);
            let old = slot.peers.insert(peer.clone(), c).unwrap_or(0);
            slot.total = slot.total - u64::from(old) + u64::from(c);
        }
        None => {
            let Some(slot) = index.get_mut(pattern) else {
                return;
            };
            if let Some(old) = slot.peers.remove(peer) {
                slot.total -= u64::from(old);
            }
            if slot.peers.is_empty() {
                index.remove(pattern);
            }
        }
    }
}

fn total_matching(index: &PatternIndex<Slot>, name: &str) -> usize {
    let mut n = 0;
    index.for_each_match(name, |_, slot| n += slot.total as usize);
    n
}

fn each_matching(
    index: &PatternIndex<Slot>,
    name: &str,
    mut f: impl FnMut(&Pattern, &NodeId, u32),
) {
    index.for_each_match(name, |pattern, slot| {
        for (peer, n) in &slot.peers {
            f(pattern, peer, *n);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> NodeId {
        NodeId::new(s).expect("valid")
    }

    fn pattern(p: &str) -> Pattern {
        Pattern::new(p).expect("valid")
    }

    #[test]
    fn each_role_is_read_where_it_belongs() {
        let mut table = RemoteInterest::default();
        let p = id("p");
        let jobs = pattern("jobs.+");
        table.set(&p, &Interest::Listen(jobs.clone()), Some(2), 1);
        table.set(&p, &Interest::members("w", jobs.clone()), Some(3), 2);
        table.set(&p, &Interest::Serve(jobs.clone()), Some(1), 3);
        assert_eq!(
            table.listeners_matching("jobs.a"),
            2,
            "members and responders apart"
        );
        assert_eq!(table.route("jobs.a").count, 2);
        assert_eq!(table.responders_matching("jobs.a"), 1);
        assert_eq!(table.serving("jobs.a"), std::slice::from_ref(&p));
        let mut members = Vec::new();
        table.for_each_member(
            |q| q.matches("jobs.a"),
            |g, peer, _, n| {
                members.push((g.to_string(), peer.clone(), n));
            },
        );
        assert_eq!(members, [("w".to_owned(), p.clone(), 3)]);
        assert_eq!(table.listened_by(&p), [(jobs.clone(), 1)]);
        assert_eq!(table.len_of(&p), 3);

        // A snapshot without the members: only they change.
        let mut fresh = HashMap::default();
        fresh.insert(Interest::Listen(jobs.clone()), Held { count: 2, since: 1 });
        fresh.insert(Interest::Serve(jobs.clone()), Held { count: 1, since: 3 });
        let changed = table.replace(&p, fresh);
        assert_eq!(changed, [(Interest::members("w", jobs.clone()), None)]);
        let mut members = 0;
        table.for_each_member(|_| true, |_, _, _, n| members += n);
        assert_eq!(members, 0);

        let gone = table.remove_peer(&p);
        assert_eq!(gone.len(), 2);
        assert_eq!(table.listeners_matching("jobs.a"), 0);
        assert_eq!(
            table.route("jobs.a").count,
            0,
            "the remembered route is forgotten"
        );
        assert!(table.serving("jobs.a").is_empty());
        assert_eq!(table.len_of(&p), 0);
    }

    #[test]
    fn a_later_since_wins_and_a_removal_forgets_it() {
        let mut table = RemoteInterest::default();
        let p = id("p");
        let x = Interest::Listen(pattern("x"));
        assert_eq!(table.set(&p, &x, Some(1), 4), None);
        assert_eq!(table.set(&p, &x, Some(2), 2), Some(1));
        assert_eq!(table.held(&p, &x), Some(Held { count: 2, since: 4 }));
        assert_eq!(table.set(&p, &x, None, 0), Some(2));
        assert_eq!(table.held(&p, &x), None);
        assert_eq!(table.set(&p, &x, Some(1), 7), None);
        assert_eq!(table.held(&p, &x), Some(Held { count: 1, since: 7 }));
    }
}
