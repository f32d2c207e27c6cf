//! Who is on the bus and what they listen on: the state machine behind bus-wide listener
//! counts, `$peer.up` / `$peer.down`, and sender-side routing.
//!
//! Each node announces its interest (pattern -> counted listeners) with a `Hello` when it
//! joins, a `Delta` per change, and a `Snapshot` on request; heartbeats carry the interest
//! version so a node that missed a delta notices and asks for a `Resync`. A peer that says
//! `Bye`, is reported lost by the transport, or stays silent past the timeout is removed,
//! and its interest with it. Deltas carry absolute counts, so replaying or skipping one
//! never corrupts a count; a snapshot repairs whatever was missed.

use foldhash::HashMap;
use foldhash::HashMapExt as _;
use std::time::{Duration, Instant};

use crate::node_id::NodeId;
use crate::pattern::Pattern;
use crate::protocol::control::{Control, InterestEntry};
use crate::protocol::interest::Interest;
use crate::protocol::remote_interest::{Held, RemoteInterest};
use crate::report::{ErrorKind, ErrorReport};
use crate::transport::Destination;

/// Timing and limits of the presence protocol.
#[derive(Debug, Clone)]
pub struct PresenceConfig {
    /// How often a node says it is alive.
    pub heartbeat_interval: Duration,
    /// How long a silent peer is kept before it is declared down.
    pub peer_timeout: Duration,
    /// The most patterns one peer may announce; more are refused and reported.
    pub max_patterns_per_peer: usize,
    /// The most peers tracked; more are refused and reported.
    pub max_peers: usize,
}

impl Default for PresenceConfig {
    fn default() -> Self {
        Self {
            heartbeat_interval: Duration::from_secs(1),
            peer_timeout: Duration::from_secs(5),
            max_patterns_per_peer: 10_000,
            max_peers: 4_096,
        }
    }
}

/// What the presence state machine asks its runtime to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this message.
    Send {
        /// To whom.
        to: Destination,
        /// What.
        message: Control,
    },
    /// A peer appeared.
    PeerUp(NodeId),
    /// A peer left or was lost.
    PeerDown(NodeId),
    /// A peer's count on an item of its interest changed (already written in the table
    /// that routing and counts read); `None` means it has none there any more.
    Interest {
        /// The peer.
        peer: NodeId,
        /// The pattern, and what it is for.
        interest: Interest,
        /// Its new count on that peer.
        count: Option<u32>,
    },
    /// A peer's whole interest is now known (its hello or a snapshot arrived), for the
    /// first time in its incarnation.
    Heard(NodeId),
    /// This node's record of a peer's interest moved on to `version`: tell the peer
    /// ([`Control::Ack`]).
    Acknowledge {
        /// The peer.
        peer: NodeId,
        /// Its interest version now recorded here.
        version: u64,
    },
    /// Something a peer sent was refused.
    Report(ErrorReport),
}

#[derive(Debug)]
struct Peer {
    epoch: u64,
    version: u64,
    last_seen: Instant,
    /// When this incarnation was first heard.
    since: Instant,
    /// Whether its whole interest arrived (a hello or a snapshot) in this incarnation.
    interest_known: bool,
    /// The last version of its interest acknowledged to it.
    acked: Option<u64>,
    /// A delta of it was missed and its snapshot has not come yet: nothing is
    /// acknowledged meanwhile.
    incomplete: bool,
}

/// The presence state machine of one node.
///
/// ```
/// use std::time::Instant;
/// use demitter_core::{NodeId, Pattern};
/// use demitter_core::protocol::{Action, Interest, Presence, PresenceConfig};
///
/// let now = Instant::now();
/// let a = NodeId::new("a")?;
/// let mut alice = Presence::new(a.clone(), 1, PresenceConfig::default(), now);
/// let mut bob = Presence::new(NodeId::new("b")?, 2, PresenceConfig::default(), now);
/// alice.set_local(&Interest::Listen(Pattern::new("user.+")?), Some(2));
/// // Alice's hello reaches Bob: Bob now knows Alice listens on `user.+` twice.
/// let hello = alice.start(now).into_iter().find_map(|a| match a {
///     Action::Send { message, .. } => Some(message),
///     _ => None,
/// }).expect("a hello");
/// let actions = bob.receive(&a, hello, now);
/// assert!(actions.contains(&Action::PeerUp(a.clone())));
/// assert_eq!(bob.remote_count(&a, "user.+"), Some(2));
/// # Ok::<(), demitter_core::Error>(())
/// ```
#[derive(Debug)]
pub struct Presence {
    me: NodeId,
    epoch: u64,
    version: u64,
    local: HashMap<Interest, u32>,
    /// The version at which each local item was (last) taken up.
    local_since: HashMap<Interest, u64>,
    peers: HashMap<NodeId, Peer>,
    /// What every peer has interest in: the one table routing and counts read.
    remote: RemoteInterest,
    /// Incarnations that said `Bye`: anything they send later (a heartbeat that overtook
    /// nothing but arrived late) is ignored, so a departed peer is never resurrected.
    departed: HashMap<NodeId, u64>,
    config: PresenceConfig,
    next_heartbeat: Instant,
}

/// What [`Presence::ensure_peer`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Known {
    /// Already known in this incarnation.
    Yes,
    /// New (or a new incarnation): `PeerUp` was emitted.
    New,
    /// This incarnation said goodbye; ignore it.
    Departed,
}

impl Presence {
    /// A node `me` in incarnation `epoch`, listening on nothing yet.
    pub fn new(me: NodeId, epoch: u64, config: PresenceConfig, now: Instant) -> Self {
        let next_heartbeat = now + config.heartbeat_interval;
        Self {
            me,
            epoch,
            version: 0,
            local: HashMap::new(),
            local_since: HashMap::new(),
            peers: HashMap::new(),
            remote: RemoteInterest::default(),
            departed: HashMap::new(),
            config,
            next_heartbeat,
        }
    }

    /// This node's id.
    pub fn me(&self) -> &NodeId {
        &self.me
    }

    /// The peers currently known to be up.
    pub fn peers(&self) -> impl Iterator<Item = &NodeId> {
        self.peers.keys()
    }

    /// When `peer`'s current incarnation was first heard, and on how many patterns it
    /// has counted listeners (group members and responders included; spies not);
    /// `None` for a peer not up.
    pub fn peer_presence(&self, peer: &NodeId) -> Option<(Instant, usize)> {
        self.peers
            .get(peer)
            .map(|p| (p.since, self.remote.counted_of(peer)))
    }

    /// A peer's count of listeners on exactly `pattern`, if it listens on it.
    pub fn remote_count(&self, peer: &NodeId, pattern: &str) -> Option<u32> {
        let pattern = Pattern::new(pattern).ok()?;
        self.remote
            .held(peer, &Interest::Listen(pattern))
            .map(|held| held.count)
    }

    /// Every peer's interest, as this node knows it.
    pub(crate) fn remote(&self) -> &RemoteInterest {
        &self.remote
    }

    /// Every peer's interest, for routing (which remembers its routes).
    pub(crate) fn remote_mut(&mut self) -> &mut RemoteInterest {
        &mut self.remote
    }

    /// The incarnation `peer` is up in.
    pub fn epoch_of(&self, peer: &NodeId) -> Option<u64> {
        self.peers.get(peer).map(|p| p.epoch)
    }

    /// The version at which this node (last) took up `interest`, if it has it.
    pub fn local_since(&self, interest: &Interest) -> Option<u64> {
        self.local_since.get(interest).copied()
    }

    /// This node's interest version: how many changes it has announced.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The version of `peer`'s interest this node acknowledged last.
    pub fn acknowledged(&self, peer: &NodeId) -> Option<u64> {
        self.peers.get(peer).and_then(|p| p.acked)
    }

    /// The patterns `peer` has listeners on (not group members or responders), each with
    /// the version at which it took it up.
    pub fn peer_patterns(&self, peer: &NodeId) -> Vec<(Pattern, u64)> {
        self.remote.listened_by(peer)
    }

    /// Whether `peer` is up and its whole interest known.
    pub fn has_heard(&self, peer: &NodeId) -> bool {
        self.peers.get(peer).is_some_and(|p| p.interest_known)
    }

    /// How many peers are up with their whole interest known.
    pub fn heard_count(&self) -> usize {
        self.peers.values().filter(|p| p.interest_known).count()
    }

    /// Whether `peer` said goodbye in incarnation `epoch`.
    pub fn has_departed(&self, peer: &NodeId, epoch: u64) -> bool {
        self.departed.get(peer) == Some(&epoch)
    }

    /// Whether `peer` is known in incarnation `epoch` (or is this node).
    pub fn is_known(&self, peer: &NodeId, epoch: u64) -> bool {
        *peer == self.me || self.peers.get(peer).is_some_and(|p| p.epoch == epoch)
    }

    /// The announcement to make when joining the bus.
    pub fn start(&mut self, now: Instant) -> Vec<Action> {
        self.next_heartbeat = now + self.config.heartbeat_interval;
        vec![Action::Send {
            to: Destination::All,
            message: Control::Hello {
                epoch: self.epoch,
                version: self.version,
                interest: self.interest(),
            },
        }]
    }

    /// Records that this node now has `count` counted listeners (members, responders) on
    /// `interest` (`None`: none at all), and returns the delta to announce, if anything
    /// changed.
    pub fn set_local(&mut self, interest: &Interest, count: Option<u32>) -> Option<Action> {
        let old = match count {
            Some(c) => self.local.insert(interest.clone(), c),
            None => self.local.remove(interest),
        };
        if old == count {
            return None;
        }
        self.version += 1;
        match (old, count) {
            (None, Some(_)) => {
                self.local_since.insert(interest.clone(), self.version);
            }
            (Some(_), None) => {
                self.local_since.remove(interest);
            }
            _ => {}
        }
        Some(Action::Send {
            to: Destination::All,
            message: Control::Delta {
                epoch: self.epoch,
                version: self.version,
                pattern: interest.pattern().to_string(),
                count,
                // A removal says 0: it ends whatever instance the receiver has.
                since: self.local_since.get(interest).copied().unwrap_or(0),
                role: interest.role(),
            },
        })
    }

    /// The message that says this node is leaving.
    pub fn bye(&self) -> Control {
        Control::Bye { epoch: self.epoch }
    }

    /// Handles a message from `from`.
    pub fn receive(&mut self, from: &NodeId, message: Control, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        if *from == self.me {
            return out;
        }
        let epoch = message.epoch();
        if let Control::Bye { .. } = message {
            if self.peers.get(from).is_some_and(|p| p.epoch == epoch) {
                self.remove_peer(from, &mut out);
            }
            self.remember_departed(from, epoch);
            return out;
        }
        let known = self.ensure_peer(from, epoch, now, &mut out);
        if known == Known::Departed {
            return out;
        }
        match message {
            Control::Hello {
                version, interest, ..
            } => {
                self.replace_interest(from, version, interest, &mut out);
                out.push(self.snapshot_to(from));
            }
            Control::Snapshot {
                version, interest, ..
            } => {
                self.replace_interest(from, version, interest, &mut out);
            }
            Control::Delta {
                version,
                pattern,
                count,
                since,
                role,
                ..
            } => {
                let Some(peer) = self.peers.get_mut(from) else {
                    return out;
                };
                if version <= peer.version {
                    return out;
                }
                // A peer whose whole interest never arrived is asked for it, whatever
                // the delta says.
                let missed = version > peer.version + 1 || !peer.interest_known;
                peer.version = version;
                peer.incomplete |= missed;
                let incomplete = peer.incomplete;
                // From a node that does not say, the version of a first adding.
                let since = if since == 0 { version } else { since };
                // While a delta is missing, only a removal is applied: what this node
                // counts and routes to is what it acknowledged, and the acknowledgement
                // waits for the snapshot asked for. A pattern counted before then would
                // be acknowledged later with the numbers of events already sent, which
                // the peer would take for events from before its interest.
                if !incomplete || count.is_none() {
                    match Interest::from_wire(&pattern, &role) {
                        Ok(interest) => self.set_remote(from, (&interest, since), count, &mut out),
                        Err(e) => out.push(bad_interest(from, &e.to_string())),
                    }
                }
                // With a delta missed, what is recorded is not that version yet: the
                // snapshot asked for acknowledges it.
                if !incomplete && let Some(peer) = self.peers.get_mut(from) {
                    peer.acked = Some(version);
                    out.push(Action::Acknowledge {
                        peer: from.clone(),
                        version,
                    });
                }
                if missed {
                    out.push(self.resync_request(from));
                }
            }
            Control::Heartbeat { version, .. } => {
                // Also a peer with a delta missed whose snapshot has not come: the
                // resync or its answer was lost, and what waits for it waits on.
                let behind = self
                    .peers
                    .get(from)
                    .is_some_and(|p| version > p.version || !p.interest_known || p.incomplete);
                if behind || known == Known::New {
                    out.push(self.resync_request(from));
                }
            }
            Control::Resync { .. } => out.push(self.snapshot_to(from)),
            // Sequence marks are for the sequence tracker, requests and replies for the
            // node; here they only prove liveness.
            Control::Sequences { .. }
            | Control::Request { .. }
            | Control::Reply { .. }
            | Control::LastRequest { .. }
            | Control::LastValues { .. }
            | Control::GroupEvent { .. }
            | Control::GroupMark { .. }
            | Control::GroupAck { .. }
            | Control::Ack { .. }
            | Control::AckRequest { .. }
            | Control::MarksRequest { .. }
            | Control::Marks { .. }
            | Control::Repair { .. }
            | Control::Repaired { .. }
            | Control::Closing { .. }
            | Control::Settled { .. }
            | Control::Bye { .. } => {}
        }
        out
    }

    /// Records that an event from `from` (incarnation `epoch`) arrived: a peer that speaks
    /// is alive, and an unknown one is asked for its interest.
    pub fn heard_from(&mut self, from: &NodeId, epoch: u64, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        if *from == self.me {
            return out;
        }
        if self.ensure_peer(from, epoch, now, &mut out) == Known::New {
            out.push(self.resync_request(from));
        }
        out
    }

    /// The transport connected to `peer`: send it our interest.
    pub fn peer_connected(&mut self, peer: &NodeId) -> Vec<Action> {
        vec![self.snapshot_to(peer)]
    }

    /// The transport lost `peer`.
    pub fn peer_lost(&mut self, peer: &NodeId) -> Vec<Action> {
        let mut out = Vec::new();
        self.remove_peer(peer, &mut out);
        out
    }

    /// Sends heartbeats and expires silent peers. Call at least every heartbeat interval.
    /// `moved` is the number of this node's latest marks that announced a moved name
    /// (see [`Control::Heartbeat`]).
    pub fn tick(&mut self, now: Instant, moved: u64) -> Vec<Action> {
        let mut out = Vec::new();
        if now >= self.next_heartbeat {
            self.next_heartbeat = now + self.config.heartbeat_interval;
            out.push(Action::Send {
                to: Destination::All,
                message: Control::Heartbeat {
                    epoch: self.epoch,
                    version: self.version,
                    moved,
                },
            });
        }
        let timeout = self.config.peer_timeout;
        let silent: Vec<NodeId> = self
            .peers
            .iter()
            .filter(|(_, p)| now.saturating_duration_since(p.last_seen) >= timeout)
            .map(|(id, _)| id.clone())
            .collect();
        for id in silent {
            tracing::info!(peer = %id, "peer silent for {timeout:?}; declaring it down");
            self.remove_peer(&id, &mut out);
        }
        out
    }

    /// When the next [`tick`](Self::tick) has work to do.
    pub fn next_deadline(&self) -> Instant {
        let expiry = self
            .peers
            .values()
            .map(|p| p.last_seen + self.config.peer_timeout)
            .min();
        expiry.map_or(self.next_heartbeat, |e| e.min(self.next_heartbeat))
    }

    fn interest(&self) -> Vec<InterestEntry> {
        self.local
            .iter()
            .map(|(interest, count)| InterestEntry {
                pattern: interest.pattern().to_string(),
                count: *count,
                // Every item held has its version; 0 ("does not say") would be wrong.
                since: self.local_since.get(interest).copied().unwrap_or(0),
                role: interest.role(),
            })
            .collect()
    }

    fn snapshot_to(&self, peer: &NodeId) -> Action {
        Action::Send {
            to: Destination::Peer(peer.clone()),
            message: Control::Snapshot {
                epoch: self.epoch,
                version: self.version,
                interest: self.interest(),
            },
        }
    }

    fn resync_request(&self, peer: &NodeId) -> Action {
        Action::Send {
            to: Destination::Peer(peer.clone()),
            message: Control::Resync { epoch: self.epoch },
        }
    }

    fn remember_departed(&mut self, from: &NodeId, epoch: u64) {
        if self.departed.len() >= self.config.max_peers
            && let Some(victim) = self.departed.keys().next().cloned()
        {
            self.departed.remove(&victim);
        }
        self.departed.insert(from.clone(), epoch);
    }

    /// Makes sure `from` is known in incarnation `epoch`.
    fn ensure_peer(
        &mut self,
        from: &NodeId,
        epoch: u64,
        now: Instant,
        out: &mut Vec<Action>,
    ) -> Known {
        if self.departed.get(from) == Some(&epoch) {
            return Known::Departed;
        }
        match self.peers.get_mut(from) {
            Some(peer) if peer.epoch == epoch => {
                peer.last_seen = now;
                return Known::Yes;
            }
            Some(_) => {
                tracing::info!(peer = %from, "peer restarted (new incarnation)");
                self.remove_peer(from, out);
            }
            None => {}
        }
        if self.peers.len() >= self.config.max_peers {
            out.push(Action::Report(
                ErrorReport::new(
                    ErrorKind::Refused,
                    1,
                    format!("peer limit of {} reached", self.config.max_peers),
                )
                .with_peer(from.as_str()),
            ));
            return Known::Departed;
        }
        self.departed.remove(from);
        self.peers.insert(
            from.clone(),
            Peer {
                epoch,
                version: 0,
                last_seen: now,
                since: now,
                interest_known: false,
                acked: None,
                incomplete: false,
            },
        );
        out.push(Action::PeerUp(from.clone()));
        Known::New
    }

    fn remove_peer(&mut self, id: &NodeId, out: &mut Vec<Action>) {
        if self.peers.remove(id).is_some() {
            for interest in self.remote.remove_peer(id) {
                out.push(Action::Interest {
                    peer: id.clone(),
                    interest,
                    count: None,
                });
            }
            out.push(Action::PeerDown(id.clone()));
        }
    }

    fn replace_interest(
        &mut self,
        from: &NodeId,
        version: u64,
        interest: Vec<InterestEntry>,
        out: &mut Vec<Action>,
    ) {
        let Some(peer) = self.peers.get_mut(from) else {
            return;
        };
        if version < peer.version {
            return;
        }
        // Acknowledged even at a version acknowledged already: a delta missed before it
        // may have left a pattern out (the acknowledgement then says only what is new).
        let moved = peer.acked.is_none_or(|acked| version >= acked);
        peer.version = version;
        peer.incomplete = false;
        let first = !peer.interest_known;
        peer.interest_known = true;
        let limit = self.config.max_patterns_per_peer;
        let mut fresh: HashMap<Interest, Held> = HashMap::with_capacity(interest.len().min(limit));
        let mut over = 0u64;
        for entry in interest {
            match Interest::from_wire(&entry.pattern, &entry.role) {
                Ok(key) if fresh.len() < limit || fresh.contains_key(&key) => {
                    fresh.insert(
                        key,
                        Held {
                            count: entry.count,
                            since: entry.since,
                        },
                    );
                }
                Ok(_) => over += 1,
                Err(e) => out.push(bad_interest(from, &e.to_string())),
            }
        }
        if over > 0 {
            out.push(Action::Report(
                ErrorReport::new(
                    ErrorKind::Refused,
                    over,
                    format!(
                        "peer announced {} patterns, over the limit of {limit}; the rest are ignored",
                        limit as u64 + over,
                    ),
                )
                .with_peer(from.as_str()),
            ));
        }
        for (interest, count) in self.remote.replace(from, fresh) {
            out.push(Action::Interest {
                peer: from.clone(),
                interest,
                count,
            });
        }
        if first {
            out.push(Action::Heard(from.clone()));
        }
        if moved && let Some(peer) = self.peers.get_mut(from) {
            peer.acked = Some(version);
            out.push(Action::Acknowledge {
                peer: from.clone(),
                version,
            });
        }
    }

    /// Applies one of `from`'s deltas: `count` on `interest`, taken up at version `since`.
    fn set_remote(
        &mut self,
        from: &NodeId,
        (interest, since): (&Interest, u64),
        count: Option<u32>,
        out: &mut Vec<Action>,
    ) {
        if !self.peers.contains_key(from) {
            return;
        }
        if count.is_some()
            && self.remote.held(from, interest).is_none()
            && self.remote.len_of(from) >= self.config.max_patterns_per_peer
        {
            out.push(Action::Report(
                ErrorReport::new(
                    ErrorKind::Refused,
                    1,
                    format!(
                        "peer is over the limit of {} patterns",
                        self.config.max_patterns_per_peer
                    ),
                )
                .with_peer(from.as_str())
                .with_event(interest.pattern().as_str()),
            ));
            return;
        }
        let old = self.remote.set(from, interest, count, since);
        if old != count {
            out.push(Action::Interest {
                peer: from.clone(),
                interest: interest.clone(),
                count,
            });
        }
    }
}

fn bad_interest(from: &NodeId, why: &str) -> Action {
    Action::Report(
        ErrorReport::new(
            ErrorKind::Deserialization,
            1,
            format!("peer announced {why}"),
        )
        .with_peer(from.as_str()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::control::Role;

    fn id(s: &str) -> NodeId {
        NodeId::new(s).expect("valid id")
    }

    fn listen(pattern: &str) -> Interest {
        Interest::Listen(Pattern::new(pattern).expect("valid"))
    }

    fn sent(actions: &[Action]) -> Vec<Control> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Send { message, .. } => Some(message.clone()),
                _ => None,
            })
            .collect()
    }

    fn deliver(
        from: &mut Presence,
        to: &mut Presence,
        actions: &[Action],
        now: Instant,
    ) -> Vec<Action> {
        let me = from.me().clone();
        sent(actions)
            .into_iter()
            .flat_map(|m| to.receive(&me, m, now))
            .collect()
    }

    #[test]
    fn deltas_update_counts_and_a_missed_delta_triggers_resync() {
        let now = Instant::now();
        let mut a = Presence::new(id("a"), 1, PresenceConfig::default(), now);
        let mut b = Presence::new(id("b"), 2, PresenceConfig::default(), now);
        let hello = a.start(now);
        deliver(&mut a, &mut b, &hello, now);
        let d1 = a.set_local(&listen("x"), Some(1)).expect("changed");
        let out = deliver(&mut a, &mut b, &[d1], now);
        assert_eq!(b.remote_count(&id("a"), "x"), Some(1));
        assert!(sent(&out).is_empty());
        // Delta 2 is lost; delta 3 arrives: a resync is requested, and until the
        // snapshot comes nothing but removals is applied (nor acknowledged).
        let _lost = a.set_local(&listen("y"), Some(1));
        let d3 = a.set_local(&listen("x"), Some(2)).expect("changed");
        let out = deliver(&mut a, &mut b, &[d3], now);
        assert_eq!(b.remote_count(&id("a"), "x"), Some(1));
        assert_eq!(sent(&out), vec![Control::Resync { epoch: 2 }]);
        assert!(!out.iter().any(|a| matches!(a, Action::Acknowledge { .. })));
        let d4 = a.set_local(&listen("z"), Some(1)).expect("changed");
        deliver(&mut a, &mut b, &[d4], now);
        assert_eq!(
            b.remote_count(&id("a"), "z"),
            None,
            "not counted before its ack"
        );
        // Were the snapshot lost, the next heartbeat would ask again.
        let beat = a.tick(now + a.config.heartbeat_interval, 0);
        let again = deliver(&mut a, &mut b, &beat, now);
        assert_eq!(sent(&again), vec![Control::Resync { epoch: 2 }]);
        // The snapshot repairs the missed `y`, and brings what waited.
        let reply: Vec<Action> = deliver(&mut b, &mut a, &out, now);
        let applied = deliver(&mut a, &mut b, &reply, now);
        assert_eq!(b.remote_count(&id("a"), "y"), Some(1));
        assert_eq!(b.remote_count(&id("a"), "x"), Some(2));
        assert_eq!(b.remote_count(&id("a"), "z"), Some(1));
        assert!(applied.contains(&Action::Acknowledge {
            peer: id("a"),
            version: 4
        }));
        // Unchanged counts announce nothing.
        assert!(a.set_local(&listen("y"), Some(1)).is_none());
    }

    #[test]
    fn silent_peers_expire_and_bye_removes_at_once() {
        let now = Instant::now();
        let cfg = PresenceConfig::default();
        let mut a = Presence::new(id("a"), 1, cfg.clone(), now);
        let mut b = Presence::new(id("b"), 2, cfg.clone(), now);
        a.set_local(&listen("x"), Some(1));
        let hello = a.start(now);
        deliver(&mut a, &mut b, &hello, now);
        let later = now + cfg.peer_timeout + Duration::from_millis(1);
        let out = b.tick(later, 0);
        assert!(out.contains(&Action::PeerDown(id("a"))));
        assert!(out.contains(&Action::Interest {
            peer: id("a"),
            interest: listen("x"),
            count: None
        }));
        // Heard again: up again, and asked for its interest.
        let out = b.heard_from(&id("a"), 1, later);
        assert!(out.contains(&Action::PeerUp(id("a"))));
        assert_eq!(sent(&out), vec![Control::Resync { epoch: 2 }]);
        let out = b.receive(&id("a"), a.bye(), later);
        assert!(out.contains(&Action::PeerDown(id("a"))));
    }

    #[test]
    fn messages_that_trail_a_goodbye_do_not_resurrect_the_peer() {
        let now = Instant::now();
        let mut b = Presence::new(id("b"), 2, PresenceConfig::default(), now);
        b.receive(
            &id("a"),
            Control::Heartbeat {
                epoch: 1,
                version: 0,
                moved: 0,
            },
            now,
        );
        let out = b.receive(&id("a"), Control::Bye { epoch: 1 }, now);
        assert!(out.contains(&Action::PeerDown(id("a"))));
        assert!(
            b.receive(
                &id("a"),
                Control::Heartbeat {
                    epoch: 1,
                    version: 3,
                    moved: 0,
                },
                now
            )
            .is_empty()
        );
        assert!(b.heard_from(&id("a"), 1, now).is_empty());
        assert_eq!(b.peers().count(), 0);
        // The same id in a new incarnation is welcome.
        let out = b.heard_from(&id("a"), 2, now);
        assert!(out.contains(&Action::PeerUp(id("a"))));
    }

    #[test]
    fn a_restarted_peer_is_down_then_up_with_fresh_interest() {
        let now = Instant::now();
        let mut b = Presence::new(id("b"), 2, PresenceConfig::default(), now);
        let snapshot = |epoch| Control::Snapshot {
            epoch,
            version: 5,
            interest: vec![InterestEntry {
                pattern: "x".into(),
                count: 1,
                since: 0,
                role: Role::Listen,
            }],
        };
        b.receive(&id("a"), snapshot(1), now);
        let out = b.receive(&id("a"), snapshot(9), now);
        let down = out
            .iter()
            .position(|a| *a == Action::PeerDown(id("a")))
            .expect("down");
        let up = out
            .iter()
            .position(|a| *a == Action::PeerUp(id("a")))
            .expect("up");
        assert!(down < up);
        assert_eq!(b.remote_count(&id("a"), "x"), Some(1));
    }

    #[test]
    fn hostile_interest_is_reported_and_bounded() {
        let now = Instant::now();
        let cfg = PresenceConfig {
            max_patterns_per_peer: 2,
            ..PresenceConfig::default()
        };
        let mut b = Presence::new(id("b"), 2, cfg, now);
        let interest = ["a", "b", "c", ""]
            .iter()
            .map(|p| InterestEntry {
                pattern: (*p).into(),
                count: 1,
                since: 0,
                role: Role::Listen,
            })
            .collect();
        let out = b.receive(
            &id("a"),
            Control::Snapshot {
                epoch: 1,
                version: 1,
                interest,
            },
            now,
        );
        let reports = out
            .iter()
            .filter(|a| matches!(a, Action::Report(_)))
            .count();
        assert_eq!(reports, 2, "{out:?}");
        let kept = out
            .iter()
            .filter(|a| matches!(a, Action::Interest { .. }))
            .count();
        assert_eq!(kept, 2);
    }

    #[test]
    fn a_bad_group_name_is_reported_and_the_rest_is_kept() {
        let now = Instant::now();
        let mut b = Presence::new(id("b"), 2, PresenceConfig::default(), now);
        let entry = |pattern: &str, role| InterestEntry {
            pattern: pattern.into(),
            count: 1,
            since: 1,
            role,
        };
        let out = b.receive(
            &id("a"),
            Control::Hello {
                epoch: 1,
                version: 2,
                interest: vec![
                    entry("x", Role::Listen),
                    entry("x", Role::Group("a.b".into())),
                    entry("x", Role::Group("w".into())),
                ],
            },
            now,
        );
        let reports: Vec<&ErrorReport> = out
            .iter()
            .filter_map(|a| match a {
                Action::Report(r) => Some(r),
                _ => None,
            })
            .collect();
        assert_eq!(reports.len(), 1, "{out:?}");
        assert_eq!(reports[0].kind, ErrorKind::Deserialization);
        let kept: Vec<&Interest> = out
            .iter()
            .filter_map(|a| match a {
                Action::Interest { interest, .. } => Some(interest),
                _ => None,
            })
            .collect();
        assert_eq!(kept.len(), 2, "{out:?}");
        assert!(kept.contains(&&Interest::members("w", Pattern::new("x").expect("valid"))));
        assert_eq!(b.remote_count(&id("a"), "x"), Some(1));
        // A delta with a bad group changes nothing, and is reported.
        let out = b.receive(
            &id("a"),
            Control::Delta {
                epoch: 1,
                version: 3,
                pattern: "y".into(),
                count: Some(1),
                since: 3,
                role: Role::Group(String::new()),
            },
            now,
        );
        assert!(
            out.iter().any(|a| matches!(a, Action::Report(_))),
            "{out:?}"
        );
        assert!(!out.iter().any(|a| matches!(a, Action::Interest { .. })));
    }
}
