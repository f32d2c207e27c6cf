//! Request/reply inside the node: this node's responders, and the requests it made that
//! wait for their reply, each with its deadline.
//!
//! A node's responders on `pattern` are part of its interest, as
//! [`Interest::Serve`](crate::protocol::Interest::Serve): the presence protocol keeps every
//! node's view of the responders as it keeps the listener counts, in the one table of the
//! peers' interest, which a requester asks for the nodes that serve a name.

use std::sync::Arc;
use std::time::{Duration, Instant};

use foldhash::HashMap;

use crate::node::turns::next_in_turn;
use crate::node_id::NodeId;
use crate::pattern::Pattern;

/// Why a request got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestFailure {
    /// The responder's handler failed; its error, as text.
    Failed {
        /// The responder's node.
        responder: NodeId,
        /// What the handler said.
        message: String,
    },
    /// No responder on the chosen node matched any more.
    NoResponder {
        /// The node that was asked.
        responder: NodeId,
    },
    /// The responder's node was lost before it answered.
    Lost {
        /// The responder's node.
        responder: NodeId,
    },
    /// No answer within the request's timeout.
    TimedOut {
        /// The timeout.
        after: Duration,
    },
    /// This node closed first.
    Closed,
}

/// One of this node's responders.
struct LocalResponder {
    id: u64,
    pattern: Pattern,
}

/// A request waiting for its reply.
struct Pending {
    responder: NodeId,
    name: Arc<str>,
    deadline: Instant,
    timeout: Duration,
}

/// The node's request/reply state.
#[derive(Default)]
pub(crate) struct Requests {
    responders: Vec<LocalResponder>,
    next_responder: u64,
    /// Turns, so that requests rotate: among nodes, and among this node's responders.
    node_turn: usize,
    local_turn: usize,
    pending: HashMap<u64, Pending>,
    next_request: u64,
}

impl Requests {
    /// Adds a responder; returns its id and how many responders now share its pattern.
    pub(crate) fn add_responder(&mut self, pattern: Pattern) -> (u64, u32) {
        self.next_responder += 1;
        let id = self.next_responder;
        self.responders.push(LocalResponder { id, pattern });
        let pattern = &self.responders[self.responders.len() - 1].pattern;
        (id, self.count_on(pattern))
    }

    /// Removes a responder; returns its pattern and how many remain on it.
    pub(crate) fn remove_responder(&mut self, id: u64) -> Option<(Pattern, u32)> {
        let at = self.responders.iter().position(|r| r.id == id)?;
        let removed = self.responders.remove(at);
        let left = self.count_on(&removed.pattern);
        Some((removed.pattern, left))
    }

    fn count_on(&self, pattern: &Pattern) -> u32 {
        let n = self
            .responders
            .iter()
            .filter(|r| r.pattern == *pattern)
            .count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// The pattern of each of this node's responders that match `name`.
    pub(crate) fn for_each_local_matching(&self, name: &str, f: impl FnMut(&Pattern)) {
        self.responders
            .iter()
            .filter(|r| r.pattern.matches(name))
            .map(|r| &r.pattern)
            .for_each(f);
    }

    /// How many of this node's responders match `name`.
    pub(crate) fn local_matching(&self, name: &str) -> usize {
        self.responders
            .iter()
            .filter(|r| r.pattern.matches(name))
            .count()
    }

    /// The next of this node's responders matching `name`, in turn.
    pub(crate) fn pick_local(&mut self, name: &str) -> Option<u64> {
        let matching: Vec<u64> = self
            .responders
            .iter()
            .filter(|r| r.pattern.matches(name))
            .map(|r| r.id)
            .collect();
        next_in_turn(&mut self.local_turn, &matching)
    }

    /// The next of `candidates` (sorted, this node among them if it serves), in turn.
    pub(crate) fn pick_node(&mut self, candidates: &[NodeId]) -> Option<NodeId> {
        next_in_turn(&mut self.node_turn, candidates)
    }

    /// Records a request to `responder`; returns its number.
    pub(crate) fn start(
        &mut self,
        responder: NodeId,
        name: Arc<str>,
        now: Instant,
        timeout: Duration,
    ) -> u64 {
        self.next_request += 1;
        let id = self.next_request;
        self.pending.insert(
            id,
            Pending {
                responder,
                name,
                deadline: now + timeout,
                timeout,
            },
        );
        id
    }

    /// Ends request `id`, if `from` is the node it went to; returns its name.
    pub(crate) fn finish(&mut self, id: u64, from: &NodeId) -> Option<Arc<str>> {
        match self.pending.get(&id) {
            Some(pending) if pending.responder == *from => self.pending.remove(&id).map(|p| p.name),
            _ => None,
        }
    }

    /// The earliest deadline of a waiting request.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.pending.values().map(|p| p.deadline).min()
    }

    /// Ends the requests whose deadline passed by `now`.
    pub(crate) fn expire(&mut self, now: Instant) -> Vec<(u64, RequestFailure)> {
        let expired: Vec<(u64, Duration)> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(id, p)| (*id, p.timeout))
            .collect();
        expired
            .into_iter()
            .map(|(id, after)| {
                self.pending.remove(&id);
                (id, RequestFailure::TimedOut { after })
            })
            .collect()
    }

    /// Ends the requests that went to `peer`, lost.
    pub(crate) fn peer_lost(&mut self, peer: &NodeId) -> Vec<(u64, RequestFailure)> {
        let lost: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.responder == *peer)
            .map(|(id, _)| *id)
            .collect();
        lost.into_iter()
            .map(|id| {
                self.pending.remove(&id);
                (
                    id,
                    RequestFailure::Lost {
                        responder: peer.clone(),
                    },
                )
            })
            .collect()
    }

    /// Ends every waiting request: the node closed.
    pub(crate) fn close(&mut self) -> Vec<(u64, RequestFailure)> {
        self.pending
            .drain()
            .map(|(id, _)| (id, RequestFailure::Closed))
            .collect()
    }
}

/// A request for one of this node's responders, for the driver to run.
#[derive(Debug, Clone)]
pub struct IncomingRequest {
    /// The responder to run.
    pub responder: u64,
    /// The requesting node, where the reply goes.
    pub from: NodeId,
    /// The requester's number for it.
    pub id: u64,
    /// The request's name.
    pub name: Arc<str>,
    /// Its MessagePack payload.
    pub payload: bytes::Bytes,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> NodeId {
        NodeId::new(s).expect("valid")
    }

    #[test]
    fn requests_rotate_and_end_once() {
        let mut requests = Requests::default();
        let nodes = [id("a"), id("b")];
        let picks: Vec<NodeId> = (0..4).filter_map(|_| requests.pick_node(&nodes)).collect();
        assert_eq!(picks, [id("b"), id("a"), id("b"), id("a")]);
        let now = Instant::now();
        let first = requests.start(id("a"), "q".into(), now, Duration::from_secs(1));
        let second = requests.start(id("b"), "q".into(), now, Duration::from_secs(2));
        assert!(
            requests.finish(first, &id("b")).is_none(),
            "only its responder ends it"
        );
        assert_eq!(requests.finish(first, &id("a")).as_deref(), Some("q"));
        assert!(requests.finish(first, &id("a")).is_none(), "once");
        assert_eq!(requests.next_deadline(), Some(now + Duration::from_secs(2)));
        assert!(requests.expire(now + Duration::from_secs(1)).is_empty());
        assert_eq!(
            requests.peer_lost(&id("b")),
            [(second, RequestFailure::Lost { responder: id("b") })]
        );
        assert_eq!(requests.next_deadline(), None);
    }
}
