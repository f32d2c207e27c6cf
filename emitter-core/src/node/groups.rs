//! Listener groups inside the node: this node's group members, the choice of one member
//! per group for each event (among this node's and every peer's, which the one table of
//! the peers' interest holds), and the numbering and acknowledgement of the events sent to
//! a chosen member's node.
//!
//! Members of group `G` on `pattern` are part of their node's interest, as
//! [`Interest::Group`](crate::protocol::Interest::Group), kept current by the presence
//! protocol. An event for a group travels to the chosen node alone, as a directed control
//! message numbered per receiving node; the receiver acknowledges what it took on its
//! timer, so that when a member's node is lost the sender knows exactly how many of the
//! events it sent there were never taken.

use std::collections::BTreeMap;
use std::sync::Arc;

use foldhash::HashMap;

use crate::node::ListenerFlags;
use crate::node::ListenerInfo;
use crate::node::turns::next_in_turn;
use crate::node_id::NodeId;
use crate::pattern::Pattern;
use crate::protocol::remote_interest::RemoteInterest;

/// One of this node's group members.
struct LocalMember<S> {
    group: Arc<str>,
    info: ListenerInfo<S>,
}

/// What this node sent to one peer's group members.
#[derive(Default)]
struct Sent {
    /// The number of the last event sent.
    last: u64,
    /// The last number the peer said it took.
    acked: u64,
}

/// What this node took from one peer for its group members.
struct Taken {
    epoch: u64,
    last: u64,
    /// Not acknowledged yet.
    unacked: bool,
}

/// The groups one event goes to: for each, the nodes to choose among, one entry per
/// member (sorted), so that members share alike wherever they are.
pub(crate) type GroupRoute = Vec<(Arc<str>, Vec<NodeId>)>;

/// The node's group state. `S` is the driver's sink, as in the listener table.
pub(crate) struct Groups<S> {
    local: Vec<LocalMember<S>>,
    /// Turns, so that events rotate: among nodes (per group), and among this node's
    /// members of a group.
    node_turns: HashMap<Arc<str>, usize>,
    local_turns: HashMap<Arc<str>, usize>,
    sent: HashMap<NodeId, Sent>,
    taken: HashMap<NodeId, Taken>,
}

impl<S> Default for Groups<S> {
    fn default() -> Self {
        Self {
            local: Vec::new(),
            node_turns: HashMap::default(),
            local_turns: HashMap::default(),
            sent: HashMap::default(),
            taken: HashMap::default(),
        }
    }
}

impl<S: Clone> Groups<S> {
    // ---- this node's members -----------------------------------------------------------

    /// Adds member `id`; returns how many of this node's members `group` now has on
    /// `pattern`.
    pub(crate) fn add_local(&mut self, id: u64, group: &str, pattern: Pattern, sink: S) -> u32 {
        let group: Arc<str> = group.into();
        let count = self.local_count(&group, &pattern) + 1;
        self.local.push(LocalMember {
            group,
            info: ListenerInfo {
                id,
                pattern,
                flags: ListenerFlags::default(),
                sink,
            },
        });
        count
    }

    /// Removes member `id`; returns its group and what the node knew of it, and how many
    /// members the group has left here on its pattern.
    pub(crate) fn remove_local(&mut self, id: u64) -> Option<(Arc<str>, ListenerInfo<S>, u32)> {
        let at = self.local.iter().position(|m| m.info.id == id)?;
        let member = self.local.remove(at);
        let left = self.local_count(&member.group, &member.info.pattern);
        Some((member.group, member.info, left))
    }

    fn local_count(&self, group: &str, pattern: &Pattern) -> u32 {
        let n = self
            .local
            .iter()
            .filter(|m| &*m.group == group && m.info.pattern == *pattern)
            .count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// What the node knows of member `id`, with its group.
    pub(crate) fn local(&self, id: u64) -> Option<(&str, &ListenerInfo<S>)> {
        self.local
            .iter()
            .find(|m| m.info.id == id)
            .map(|m| (&*m.group, &m.info))
    }

    /// This node's members.
    pub(crate) fn locals(&self) -> impl Iterator<Item = &ListenerInfo<S>> + '_ {
        self.local.iter().map(|m| &m.info)
    }

    /// The next of this node's members of `group` matching `name`, in turn.
    pub(crate) fn pick_local(&mut self, group: &str, name: &str) -> Option<S> {
        let matching: Vec<&LocalMember<S>> = self
            .local
            .iter()
            .filter(|m| &*m.group == group && m.info.pattern.matches(name))
            .collect();
        if matching.is_empty() {
            return None;
        }
        let turn = self.local_turns.entry(group.into()).or_insert(0);
        next_in_turn(turn, &matching).map(|m| m.info.sink.clone())
    }

    // ---- everyone's members ------------------------------------------------------------

    /// The groups with a member matching `name` anywhere (this node is `me`, its peers'
    /// members in `remote`), each with its candidates.
    pub(crate) fn route(&self, name: &str, me: &NodeId, remote: &RemoteInterest) -> GroupRoute {
        let mut groups: BTreeMap<Arc<str>, Vec<NodeId>> = BTreeMap::new();
        remote.for_each_member(
            |pattern| pattern.matches(name),
            |group, peer, _, n| {
                let candidates = groups.entry(Arc::clone(group)).or_default();
                candidates.extend(std::iter::repeat_n(peer.clone(), n as usize));
            },
        );
        for m in self.local.iter().filter(|m| m.info.pattern.matches(name)) {
            groups
                .entry(Arc::clone(&m.group))
                .or_default()
                .push(me.clone());
        }
        groups
            .into_iter()
            .map(|(group, mut candidates)| {
                candidates.sort();
                (group, candidates)
            })
            .collect()
    }

    /// The next of `candidates` for `group`, in turn (`None` if there are none).
    pub(crate) fn pick_node(&mut self, group: &Arc<str>, candidates: &[NodeId]) -> Option<NodeId> {
        let turn = self.node_turns.entry(Arc::clone(group)).or_insert(0);
        next_in_turn(turn, candidates)
    }

    /// Each node's members (this node is `me`) of each group on each pattern `select`
    /// takes: `f(group, node, pattern, how many)`.
    pub(crate) fn for_each_member(
        &self,
        (me, remote): (&NodeId, &RemoteInterest),
        select: impl Fn(&Pattern) -> bool,
        mut f: impl FnMut(&str, &NodeId, &Pattern, u32),
    ) {
        remote.for_each_member(&select, |group, peer, pattern, n| {
            f(group, peer, pattern, n);
        });
        for m in self.local.iter().filter(|m| select(&m.info.pattern)) {
            f(&m.group, me, &m.info.pattern, 1);
        }
    }

    /// How many members, here and on the peers (in `remote`), match `name`.
    pub(crate) fn members_matching(&self, name: &str, remote: &RemoteInterest) -> usize {
        self.members_by_group(name, remote).values().sum()
    }

    /// How many members, here and on the peers (in `remote`), are on exactly `pattern`.
    pub(crate) fn members_exact(&self, pattern: &Pattern, remote: &RemoteInterest) -> usize {
        let mut n = 0;
        remote.for_each_member(|p| p == pattern, |_, _, _, count| n += count as usize);
        n + self
            .local
            .iter()
            .filter(|m| m.info.pattern == *pattern)
            .count()
    }

    /// For each group with a member matching `name` (here or on a peer, in `remote`), how
    /// many members match.
    pub(crate) fn members_by_group(
        &self,
        name: &str,
        remote: &RemoteInterest,
    ) -> BTreeMap<String, usize> {
        let mut groups = BTreeMap::new();
        remote.for_each_member(
            |pattern| pattern.matches(name),
            |group, _, _, n| *groups.entry(group.to_string()).or_insert(0) += n as usize,
        );
        for m in self.local.iter().filter(|m| m.info.pattern.matches(name)) {
            *groups.entry(m.group.to_string()).or_insert(0) += 1;
        }
        groups
    }

    // ---- numbering and acknowledgement -------------------------------------------------

    /// The number of the next event sent to `peer`'s members.
    pub(crate) fn number_for(&mut self, peer: &NodeId) -> u64 {
        let sent = self.sent.entry(peer.clone()).or_default();
        sent.last += 1;
        sent.last
    }

    /// `peer` took everything up to number `nth`.
    pub(crate) fn acked(&mut self, peer: &NodeId, nth: u64) {
        if let Some(sent) = self.sent.get_mut(peer) {
            sent.acked = sent.acked.max(nth.min(sent.last));
        }
    }

    /// `peer` is lost: how many of the events sent to it it never said it took.
    pub(crate) fn peer_lost(&mut self, peer: &NodeId) -> u64 {
        self.taken.remove(peer);
        self.sent
            .remove(peer)
            .map_or(0, |sent| sent.last - sent.acked)
    }

    /// Event number `nth` from `source` (incarnation `epoch`) arrived: how many before it
    /// never did.
    pub(crate) fn take(&mut self, source: &NodeId, epoch: u64, nth: u64) -> u64 {
        let taken = self.taken.entry(source.clone()).or_insert(Taken {
            epoch,
            last: 0,
            unacked: false,
        });
        if taken.epoch != epoch {
            *taken = Taken {
                epoch,
                last: 0,
                unacked: false,
            };
        }
        let missed = nth.saturating_sub(taken.last + 1);
        taken.last = taken.last.max(nth);
        taken.unacked = true;
        missed
    }

    /// `source` says the last event it sent here was number `nth`: how many of those up to
    /// it never arrived (counted as taken from now on: they are reported here, so the
    /// acknowledgement covers them and the sender does not report them again).
    pub(crate) fn marked(&mut self, source: &NodeId, epoch: u64, nth: u64) -> u64 {
        match self.taken.get(source) {
            Some(t) if t.epoch == epoch && t.last >= nth => 0,
            _ => {
                let missed = self.take(source, epoch, nth);
                // `take` counted `nth` itself as arrived; it did not.
                missed + 1
            }
        }
    }

    /// The marks due: for each peer that has not acknowledged everything sent to it, the
    /// number of the last event sent (repeated at every tick until acknowledged, so that a
    /// lost mark is made good by the next).
    pub(crate) fn marks_due(&self) -> Vec<(NodeId, u64)> {
        self.sent
            .iter()
            .filter(|(_, s)| s.last > s.acked)
            .map(|(peer, s)| (peer.clone(), s.last))
            .collect()
    }

    /// The acknowledgements due: for each peer that sent something since the last ones,
    /// the last number taken.
    pub(crate) fn acks_due(&mut self) -> Vec<(NodeId, u64)> {
        self.taken
            .iter_mut()
            .filter(|(_, t)| t.unacked)
            .map(|(peer, t)| {
                t.unacked = false;
                (peer.clone(), t.last)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Interest;

    fn id(s: &str) -> NodeId {
        NodeId::new(s).expect("valid")
    }

    fn pattern(p: &str) -> Pattern {
        Pattern::new(p).expect("valid")
    }

    #[test]
    fn members_share_alike_wherever_they_are() {
        let mut groups: Groups<u8> = Groups::default();
        let mut remote = RemoteInterest::default();
        let p_members = Interest::members("w", pattern("job.#"));
        groups.add_local(1, "w", pattern("job.+"), 10);
        remote.set(&id("p"), &p_members, Some(2), 1);
        remote.set(
            &id("q"),
            &Interest::members("other", pattern("x")),
            Some(1),
            1,
        );
        remote.set(&id("q"), &Interest::Listen(pattern("job.#")), Some(5), 2);
        let route = groups.route("job.a", &id("me"), &remote);
        assert_eq!(route.len(), 1, "listeners are no members");
        assert_eq!(route[0].1, [id("me"), id("p"), id("p")]);
        let picks: Vec<NodeId> = (0..3)
            .filter_map(|_| groups.pick_node(&route[0].0, &route[0].1))
            .collect();
        assert_eq!(picks, [id("p"), id("p"), id("me")]);
        assert_eq!(groups.members_matching("job.a", &remote), 3);
        assert_eq!(groups.members_exact(&pattern("job.#"), &remote), 2);
        assert_eq!(groups.pick_local("w", "job.a"), Some(10));
        assert_eq!(groups.pick_local("w", "other"), None);
        remote.set(&id("p"), &p_members, None, 0);
        assert_eq!(groups.members_matching("job.a", &remote), 1);
        assert_eq!(groups.remove_local(1).map(|r| r.2), Some(0));
        assert!(groups.route("job.a", &id("me"), &remote).is_empty());
    }

    #[test]
    fn what_a_lost_peer_never_took_is_counted() {
        let mut sender: Groups<u8> = Groups::default();
        let mut receiver: Groups<u8> = Groups::default();
        for _ in 0..5 {
            sender.number_for(&id("r"));
        }
        assert_eq!(receiver.take(&id("s"), 1, 1), 0);
        assert_eq!(receiver.take(&id("s"), 1, 3), 1, "number 2 never came");
        let acks = receiver.acks_due();
        assert_eq!(acks, [(id("s"), 3)]);
        assert!(receiver.acks_due().is_empty(), "once");
        sender.acked(&id("r"), 3);
        assert_eq!(sender.peer_lost(&id("r")), 2);
        assert_eq!(sender.peer_lost(&id("r")), 0);
        assert_eq!(
            receiver.take(&id("s"), 2, 1),
            0,
            "a new incarnation starts over"
        );
        // The tail: numbers 2 and 3 never came, and the mark says 3 was the last.
        assert_eq!(receiver.marked(&id("s"), 2, 3), 2);
        assert_eq!(receiver.marked(&id("s"), 2, 3), 0, "once");
        for _ in 0..2 {
            sender.number_for(&id("r"));
        }
        assert_eq!(sender.marks_due(), [(id("r"), 2)]);
        assert_eq!(sender.marks_due(), [(id("r"), 2)], "until acknowledged");
        sender.acked(&id("r"), 2);
        assert!(sender.marks_due().is_empty());
    }
}
