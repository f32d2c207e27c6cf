//! [`BusListener`]: one listener anywhere on the bus, as partybus's `bus.listeners(event)`
//! lists them — where it lives, its pattern, its group — and the listing itself, which
//! counts exactly what [`Node::listener_count`](super::Node::listener_count) counts.

use super::groups::Groups;
use super::listeners::{ListenerInfo, ListenerTable};
use super::observers::CountSubject;
use super::requests::Requests;
use crate::node_id::NodeId;
use crate::pattern::Pattern;
use crate::protocol::remote_interest::RemoteInterest;

/// One non-spy listener on the bus, here or on a peer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct BusListener {
    /// The node it lives on.
    pub node: NodeId,
    /// Whether that node is this one.
    pub local: bool,
    /// The pattern it listens on.
    pub pattern: Pattern,
    /// Its group, for a group member (one member of a group takes each event).
    pub group: Option<String>,
}

/// A listing being made.
struct Listing<'a> {
    me: &'a NodeId,
    found: Vec<BusListener>,
}

impl Listing<'_> {
    /// `n` listeners of `node` on `pattern`, in `group` if any.
    fn add(&mut self, node: &NodeId, pattern: &Pattern, group: Option<&str>, n: u32) {
        for _ in 0..n {
            self.found.push(BusListener {
                node: node.clone(),
                local: node == self.me,
                pattern: pattern.clone(),
                group: group.map(str::to_owned),
            });
        }
    }

    /// One of this node's listeners, unless it is a spy.
    fn local<S>(&mut self, listener: &ListenerInfo<S>) {
        if !listener.flags.spy {
            self.add(self.me, &listener.pattern, None, 1);
        }
    }
}

/// The tables a listing reads.
pub(super) struct Tables<'a, S> {
    pub(super) me: &'a NodeId,
    pub(super) listeners: &'a ListenerTable<S>,
    pub(super) remote: &'a RemoteInterest,
    pub(super) requests: &'a Requests,
    pub(super) groups: &'a Groups<S>,
}

impl<S: Clone> Tables<'_, S> {
    /// Every listener `subject` counts: this node's first, then by node, pattern and group.
    pub(super) fn list(&self, subject: &CountSubject) -> Vec<BusListener> {
        let mut found = Listing {
            me: self.me,
            found: Vec::new(),
        };
        match subject {
            CountSubject::Responders(name) => {
                self.requests
                    .for_each_local_matching(name, |pattern| found.add(self.me, pattern, None, 1));
                self.remote
                    .for_each_responder_matching(name, |p, peer, n| found.add(peer, p, None, n));
            }
            CountSubject::Name(name) => {
                self.listeners.for_each_match(name, |l| found.local(l));
                self.remote
                    .for_each_listener_matching(name, |p, peer, n| found.add(peer, p, None, n));
                self.groups.for_each_member(
                    (self.me, self.remote),
                    |p| p.matches(name),
                    |g, node, p, n| {
                        found.add(node, p, Some(g), n);
                    },
                );
            }
            CountSubject::Pattern(exact) => {
                self.listeners.for_each_exact(exact, |l| found.local(l));
                self.remote
                    .for_each_listener_exact(exact, |p, peer, n| found.add(peer, p, None, n));
                self.groups.for_each_member(
                    (self.me, self.remote),
                    |p| p == exact,
                    |g, node, p, n| {
                        found.add(node, p, Some(g), n);
                    },
                );
            }
        }
        let mut found = found.found;
        found.sort_by(|a, b| {
            (!a.local, &a.node, a.pattern.as_str(), &a.group).cmp(&(
                !b.local,
                &b.node,
                b.pattern.as_str(),
                &b.group,
            ))
        });
        found
    }
}
