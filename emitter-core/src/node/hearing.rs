//! Whether a node has heard the bus: every peer it knows exists has told it what it listens
//! on, so what it emits from then on reaches every listener that was there, and the counts
//! it gives are whole.
//!
//! A peer is *pending* from the moment the node learns it exists (the transport names it,
//! connects to it, or it speaks without its interest) until its whole interest arrives, it
//! is lost, or a presence timeout passes without either. The node is *ready* once it has
//! joined and nothing is pending. Joining comes from the transport
//! ([`Incoming::Joined`](crate::Incoming::Joined)) on transports that declare a census;
//! elsewhere from time: every live peer heartbeats within one interval, so a node has heard
//! of every peer of a broadcast bus once an interval (with a margin) has passed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use foldhash::HashMap;

use crate::node_id::NodeId;

/// Whether a node has heard the bus, as [`Node::readiness`](super::Node::readiness) gives it
/// and [`Dispatch::Readiness`](super::Dispatch::Readiness) reports each change.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Readiness {
    /// Every peer known to exist has told its interest: counts are whole, and on
    /// sender-filtering transports the routes too.
    pub ready: bool,
    /// Peers known to exist whose interest has not arrived yet.
    pub unheard: usize,
    /// Another node with this id was on the bus first, and this one gave way: it will
    /// never be ready ([`Error::DuplicateId`](crate::Error::DuplicateId)).
    pub refused: bool,
}

/// How far joining the bus has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Joining {
    /// The transport has not said it made contact yet.
    Waiting,
    /// Until `until`, waiting for at least `peers` peers heard (`None`: for time alone).
    Counting {
        peers: Option<usize>,
        until: Instant,
    },
    /// Joined.
    Done,
}

/// A peer known to exist whose interest has not arrived.
#[derive(Debug, Clone, Copy)]
struct Pending {
    /// The transport can address it: a sender-filtering transport sends it every event
    /// until its interest is known.
    reachable: bool,
    /// When it is given up on (counted as down).
    until: Instant,
}

/// The tracker.
#[derive(Debug)]
pub(crate) struct Hearing {
    joining: Joining,
    pending: HashMap<NodeId, Pending>,
    /// The reachable pending peers, for the routes.
    reachable: Arc<[NodeId]>,
    /// How long a pending peer is waited for: the presence timeout.
    patience: Duration,
    /// How long every live peer takes to speak: a heartbeat interval and a quarter.
    quiet: Duration,
}

impl Hearing {
    /// A node that starts at `now`; `census` if its transport says when it joined.
    pub(crate) fn new(
        census: bool,
        now: Instant,
        heartbeat_interval: Duration,
        peer_timeout: Duration,
    ) -> Self {
        let quiet = heartbeat_interval + heartbeat_interval / 4;
        Self {
            joining: if census {
                Joining::Waiting
            } else {
                Joining::Counting {
                    peers: None,
                    until: now + quiet,
                }
            },
            pending: HashMap::default(),
            reachable: Arc::from(Vec::new()),
            patience: peer_timeout,
            quiet,
        }
    }

    /// The transport made contact with the bus, which had `peers` other nodes if it knows.
    pub(crate) fn joined(&mut self, peers: Option<usize>, now: Instant) {
        if self.joining != Joining::Waiting {
            return;
        }
        self.joining = match peers {
            // A counted peer that left before speaking is waited for one quiet period.
            Some(peers) if peers > 0 => Joining::Counting {
                peers: Some(peers),
                until: now + self.quiet,
            },
            _ => Joining::Done,
        };
    }

    /// The transport cannot count the bus after all: joined once every live peer has had
    /// its time to speak, from `now`.
    pub(crate) fn by_time(&mut self, now: Instant) {
        if self.joining == Joining::Waiting {
            self.joining = Joining::Counting {
                peers: None,
                until: now + self.quiet,
            };
        }
    }

    /// `peer` exists, and has not told its interest; `reachable` if the transport can
    /// address it. Returns whether the routes changed.
    pub(crate) fn pending(&mut self, peer: &NodeId, reachable: bool, now: Instant) -> bool {
        let until = now + self.patience;
        let entry = self.pending.entry(peer.clone()).or_insert(Pending {
            reachable: false,
            until,
        });
        entry.until = entry.until.max(until);
        let newly_reachable = reachable && !entry.reachable;
        entry.reachable |= reachable;
        if newly_reachable {
            self.rebuild_routes();
        }
        newly_reachable
    }

    /// `peer`'s interest arrived, or it is gone: no longer waited for. Returns whether the
    /// routes changed.
    pub(crate) fn settled(&mut self, peer: &NodeId) -> bool {
        match self.pending.remove(peer) {
            Some(p) if p.reachable => {
                self.rebuild_routes();
                true
            }
            _ => false,
        }
    }

    /// Gives up on the peers waited for past their time, and ends a count whose time
    /// passed. Returns whether the routes changed.
    pub(crate) fn expire(&mut self, now: Instant) -> bool {
        if let Joining::Counting { until, .. } = self.joining
            && now >= until
        {
            self.joining = Joining::Done;
        }
        let before = self.pending.len();
        let mut routes_changed = false;
        self.pending.retain(|peer, p| {
            let keep = p.until > now;
            if !keep {
                tracing::debug!(%peer, "a peer known to exist never told its interest; counted as down");
                routes_changed |= p.reachable;
            }
            keep
        });
        if routes_changed {
            self.rebuild_routes();
        }
        debug_assert!(self.pending.len() <= before);
        routes_changed
    }

    /// When [`expire`](Self::expire) has work next.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let counting = match self.joining {
            Joining::Counting { until, .. } => Some(until),
            Joining::Waiting | Joining::Done => None,
        };
        let pending = self.pending.values().map(|p| p.until).min();
        match (counting, pending) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Where the node stands, with `heard` peers up and their interest known.
    pub(crate) fn readiness(&self, heard: usize) -> Readiness {
        let joined = match self.joining {
            Joining::Waiting => false,
            Joining::Counting { peers, .. } => peers.is_some_and(|n| heard >= n),
            Joining::Done => true,
        };
        Readiness {
            ready: joined && self.pending.is_empty(),
            unheard: self.pending.len(),
            refused: false,
        }
    }

    /// The pending peers a sender-filtering transport can address.
    pub(crate) fn reachable(&self) -> &Arc<[NodeId]> {
        &self.reachable
    }

    fn rebuild_routes(&mut self) {
        let mut peers: Vec<NodeId> = self
            .pending
            .iter()
            .filter(|(_, p)| p.reachable)
            .map(|(id, _)| id.clone())
            .collect();
        peers.sort();
        self.reachable = Arc::from(peers);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> NodeId {
        NodeId::new(s).expect("a valid id")
    }

    const BEAT: Duration = Duration::from_secs(1);
    const TIMEOUT: Duration = Duration::from_secs(5);

    #[test]
    fn without_a_census_a_node_is_ready_once_every_peer_had_an_interval_to_speak() {
        let t0 = Instant::now();
        let mut h = Hearing::new(false, t0, BEAT, TIMEOUT);
        assert!(!h.readiness(0).ready);
        assert_eq!(h.next_deadline(), Some(t0 + BEAT + BEAT / 4));
        h.pending(&id("a"), false, t0);
        h.expire(t0 + BEAT * 2);
        assert_eq!(
            h.readiness(0),
            Readiness {
                ready: false,
                unheard: 1,
                refused: false,
            }
        );
        h.settled(&id("a"));
        assert!(h.readiness(1).ready);
    }

    #[test]
    fn a_census_is_waited_for_then_counted() {
        let t0 = Instant::now();
        let mut h = Hearing::new(true, t0, BEAT, TIMEOUT);
        assert_eq!(h.next_deadline(), None);
        h.expire(t0 + TIMEOUT * 10);
        assert!(!h.readiness(5).ready, "not joined: never ready by time");
        h.joined(Some(2), t0);
        assert!(!h.readiness(1).ready);
        assert!(h.readiness(2).ready);
        // One of the two counted left before speaking: a quiet period later, ready.
        h.expire(t0 + BEAT * 2);
        assert!(h.readiness(1).ready);
    }

    #[test]
    fn a_census_that_never_comes_falls_back_to_time() {
        let t0 = Instant::now();
        let mut h = Hearing::new(true, t0, BEAT, TIMEOUT);
        let t1 = t0 + BEAT / 5;
        h.by_time(t1);
        assert_eq!(h.next_deadline(), Some(t1 + BEAT + BEAT / 4));
        assert!(
            !h.readiness(3).ready,
            "every peer still has its time to speak"
        );
        h.expire(t1 + BEAT * 2);
        assert!(h.readiness(0).ready);
        h.joined(Some(4), t1 + BEAT * 2);
        assert!(h.readiness(0).ready, "joining is over");
    }

    #[test]
    fn reachable_pending_peers_are_routed_until_heard_or_given_up() {
        let t0 = Instant::now();
        let mut h = Hearing::new(true, t0, BEAT, TIMEOUT);
        h.joined(None, t0);
        assert!(!h.pending(&id("b"), false, t0), "named, not reachable yet");
        assert!(h.pending(&id("b"), true, t0));
        assert!(h.pending(&id("a"), true, t0));
        assert_eq!(&h.reachable()[..], &[id("a"), id("b")]);
        assert!(h.settled(&id("a")));
        assert!(!h.readiness(1).ready);
        assert!(h.expire(t0 + TIMEOUT));
        assert!(h.reachable().is_empty());
        assert!(h.readiness(1).ready);
    }
}
