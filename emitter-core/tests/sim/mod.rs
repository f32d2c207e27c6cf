//! A deterministic bus of [`Node`]s on a virtual clock, in the manner of quinn-proto's
//! `Pair`: no sockets, no tasks, no sleeping. A link carries whatever the nodes transmit,
//! after a delay, and can drop frames at random (from a seeded generator), cut pairs of
//! nodes apart and heal them, and restart a node under its own id. With `SIM_TRACE` set,
//! every frame delivered is printed (with its virtual time), to follow a failing schedule.

#![allow(dead_code)] // Each test file uses the part of the harness it needs.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use demitter_core::node::{
    Dispatch, IncomingRequest, ListenerFlags, Node, NodeConfig, Readiness, RecoveryConfig,
    RequestFailure, Transmit,
};
use demitter_core::protocol::PresenceConfig;
use demitter_core::{
    Capabilities, Destination, ErrorKind, ErrorReport, Frame, Incoming, NodeId, Pattern, RawEvent,
};

/// A frame on its way.
struct Packet {
    to: usize,
    frame: Frame,
}

/// One node and everything it delivered.
pub(crate) struct SimNode {
    pub(crate) node: Node<u64>,
    /// Events dispatched to its listeners: (listener label, event).
    pub(crate) received: Vec<(u64, RawEvent)>,
    /// Reports it put on its error channel.
    pub(crate) reports: Vec<ErrorReport>,
    /// Count changes: (observer, count).
    pub(crate) counts: Vec<(u64, usize)>,
    /// Requests for its responders.
    pub(crate) requests: Vec<IncomingRequest>,
    /// What became of its own requests: (number, outcome).
    pub(crate) replies: Vec<(u64, Result<RawEvent, RequestFailure>)>,
    /// Each change of whether it had heard the bus.
    pub(crate) readiness: Vec<Readiness>,
    pub(crate) up: bool,
}

impl SimNode {
    fn new(node: Node<u64>) -> Self {
        Self {
            node,
            received: Vec::new(),
            reports: Vec::new(),
            counts: Vec::new(),
            requests: Vec::new(),
            replies: Vec::new(),
            readiness: Vec::new(),
            up: true,
        }
    }

    /// Events named `name` from `source` that reached its listeners.
    pub(crate) fn received_from(&self, source: &NodeId, name: &str) -> usize {
        self.received
            .iter()
            .filter(|(_, e)| e.source == *source && &*e.name == name)
            .count()
    }

    /// What its gap reports say was lost of `name` from `source`.
    pub(crate) fn reported_lost(&self, source: &NodeId, name: &str) -> u64 {
        self.reports
            .iter()
            .filter(|r| {
                r.kind == ErrorKind::Gap
                    && r.peer.as_deref() == Some(source.as_str())
                    && r.event.as_deref() == Some(name)
            })
            .map(|r| r.count)
            .sum()
    }
}

/// The bus.
pub(crate) struct Sim {
    pub(crate) now: Instant,
    pub(crate) nodes: Vec<SimNode>,
    /// Frames in flight, by arrival time (then by the order they were sent).
    in_flight: BTreeMap<(Instant, u64), Packet>,
    sent: u64,
    /// How long a frame takes.
    pub(crate) delay: Duration,
    /// The chance that a frame is dropped, per frame.
    pub(crate) loss: f64,
    /// Pairs of nodes (lower index first) that cannot reach each other.
    cut: HashSet<(usize, usize)>,
    /// Frames dropped whatever the loss: those this says of (sender's index, frame).
    pub(crate) drop_frames: Option<fn(usize, &Frame) -> bool>,
    /// Frames counted (in `counted`, one per receiver) as they are put on the link.
    pub(crate) counting: Option<fn(&Frame) -> bool>,
    pub(crate) counted: u64,
    rng: fastrand::Rng,
    /// Presence timing of every node.
    pub(crate) presence: PresenceConfig,
    /// Recovery settings of every node (off unless made with [`Sim::recovering`]).
    pub(crate) recovery: RecoveryConfig,
    epochs: u64,
    /// When the bus started (for traces).
    start: Instant,
}

pub(crate) const MAX_FRAME: usize = 1 << 20;

impl Sim {
    /// `n` nodes named `n0`, `n1`, ..., with fast heartbeats, a 1 ms link and no loss.
    pub(crate) fn new(n: usize, seed: u64) -> Self {
        Self::recovering(n, seed, RecoveryConfig::OFF)
    }

    /// [`Sim::new`], each node with these recovery settings.
    pub(crate) fn recovering(n: usize, seed: u64, recovery: RecoveryConfig) -> Self {
        let now = Instant::now();
        let mut sim = Self {
            now,
            start: now,
            nodes: Vec::new(),
            in_flight: BTreeMap::new(),
            sent: 0,
            delay: Duration::from_millis(1),
            loss: 0.0,
            cut: HashSet::new(),
            drop_frames: None,
            counting: None,
            counted: 0,
            rng: fastrand::Rng::with_seed(seed),
            presence: PresenceConfig {
                heartbeat_interval: Duration::from_millis(100),
                peer_timeout: Duration::from_millis(500),
                ..PresenceConfig::default()
            },
            epochs: 0,
            recovery,
        };
        for i in 0..n {
            let node = sim.make_node(i);
            sim.nodes.push(SimNode::new(node));
        }
        sim
    }

    pub(crate) fn id(i: usize) -> NodeId {
        NodeId::new(&format!("n{i}")).expect("a valid id")
    }

    fn make_node(&mut self, i: usize) -> Node<u64> {
        self.epochs += 1;
        let mut config = NodeConfig::new(Self::id(i), Capabilities::broadcast(MAX_FRAME));
        config.epoch = self.epochs;
        config.presence = self.presence.clone();
        config.recovery = self.recovery;
        Node::new(config, self.now)
    }

    /// Adds a node named `id` (any id, even one a node already has); returns its index.
    pub(crate) fn add_named(&mut self, id: &str) -> usize {
        self.epochs += 1;
        let mut config = NodeConfig::new(
            NodeId::new(id).expect("a valid id"),
            Capabilities::broadcast(MAX_FRAME),
        );
        config.epoch = self.epochs;
        config.presence = self.presence.clone();
        config.recovery = self.recovery;
        self.nodes.push(SimNode::new(Node::new(config, self.now)));
        self.nodes.len() - 1
    }

    pub(crate) fn node(&mut self, i: usize) -> &mut Node<u64> {
        &mut self.nodes[i].node
    }

    /// Adds a listener labelled `label` on node `i`.
    pub(crate) fn listen(&mut self, i: usize, pattern: &str, label: u64) -> u64 {
        let pattern = Pattern::new(pattern).expect("a valid pattern");
        self.nodes[i]
            .node
            .add_listener(pattern, ListenerFlags::default(), label)
            .expect("open")
    }

    /// Adds a listener labelled `label` on node `i` that first gets the retained values.
    pub(crate) fn listen_with_last(&mut self, i: usize, pattern: &str, label: u64) -> u64 {
        let pattern = Pattern::new(pattern).expect("a valid pattern");
        let now = self.now;
        self.nodes[i]
            .node
            .add_listener_with_last(now, pattern, ListenerFlags::default(), label)
            .expect("open")
    }

    /// Node `i` emits `name` with a small payload.
    pub(crate) fn emit(&mut self, i: usize, name: &str) {
        self.nodes[i]
            .node
            .emit(name, Bytes::from_static(&[0xc0]))
            .expect("emits");
    }

    /// Cuts nodes `a` and `b` apart (both ways).
    pub(crate) fn cut(&mut self, a: usize, b: usize) {
        self.cut.insert((a.min(b), a.max(b)));
    }

    /// Heals every cut.
    pub(crate) fn heal(&mut self) {
        self.cut.clear();
    }

    /// Node `i` stops without a word (a crash): its frames in flight still arrive.
    pub(crate) fn crash(&mut self, i: usize) {
        self.nodes[i].up = false;
    }

    /// Node `i` comes back under its own id, in a new incarnation, remembering nothing.
    pub(crate) fn restart(&mut self, i: usize) {
        let node = self.make_node(i);
        let n = &mut self.nodes[i];
        n.node = node;
        n.up = true;
    }

    /// Runs the bus for `span` of virtual time.
    pub(crate) fn run_for(&mut self, span: Duration) {
        let end = self.now + span;
        let mut stuck = 0u32;
        loop {
            self.collect();
            self.dispatch();
            let next_packet = self.in_flight.keys().next().map(|(at, _)| *at);
            let next_timer = self
                .nodes
                .iter()
                .filter(|n| n.up)
                .map(|n| n.node.poll_timeout())
                .min();
            let next = match (next_packet, next_timer) {
                (Some(p), Some(t)) => p.min(t),
                // Every node down and nothing on the link: nothing more happens.
                (None, None) => {
                    self.now = end;
                    return;
                }
                (p, t) => p.or(t).unwrap_or(end),
            };
            if next > end {
                self.now = end;
                return;
            }
            // A timer that never moves on would spin here for ever: fail instead.
            stuck = if next <= self.now { stuck + 1 } else { 0 };
            assert!(
                stuck < 10_000,
                "a node's timer stays due at {:?} without moving on",
                self.now
            );
            self.now = self.now.max(next);
            self.deliver_due();
            let now = self.now;
            for n in self.nodes.iter_mut().filter(|n| n.up) {
                if n.node.poll_timeout() <= now {
                    n.node.handle_timeout(now);
                }
            }
        }
    }

    /// Runs the bus until listener `id` of node `i` is subscribed (fails after 5 s).
    pub(crate) fn run_until_subscribed(&mut self, i: usize, id: u64) {
        let start = self.now;
        while self.node(i).is_subscribed(id) != Some(true) {
            assert!(
                self.now - start < Duration::from_secs(5),
                "never subscribed"
            );
            self.run_for(Duration::from_millis(1));
        }
    }

    /// Puts everything the nodes transmitted on the link.
    fn collect(&mut self) {
        for from in 0..self.nodes.len() {
            while let Some(transmit) = self.nodes[from].node.poll_transmit() {
                if !self.nodes[from].up {
                    continue;
                }
                let Transmit::Frame { frame, to, .. } = transmit else {
                    continue;
                };
                let targets: Vec<usize> = match &to {
                    Destination::All => (0..self.nodes.len()).filter(|&t| t != from).collect(),
                    Destination::Peer(id) => self.index_of(id).into_iter().collect(),
                    Destination::Peers(ids) => {
                        ids.iter().filter_map(|id| self.index_of(id)).collect()
                    }
                };
                if self.drop_frames.is_some_and(|drop| drop(from, &frame)) {
                    continue;
                }
                for t in targets {
                    if self.cut.contains(&(from.min(t), from.max(t)))
                        || (self.loss > 0.0 && self.rng.f64() < self.loss)
                    {
                        continue;
                    }
                    self.sent += 1;
                    if self.counting.is_some_and(|count| count(&frame)) {
                        self.counted += 1;
                    }
                    self.in_flight.insert(
                        (self.now + self.delay, self.sent),
                        Packet {
                            to: t,
                            frame: frame.clone(),
                        },
                    );
                }
            }
        }
    }

    /// Frames put on the link so far (one per receiver).
    pub(crate) fn frames_sent(&self) -> u64 {
        self.sent
    }

    /// Hands node `to` a frame as if it came over the link.
    pub(crate) fn inject(&mut self, to: usize, frame: Frame) {
        self.sent += 1;
        self.in_flight
            .insert((self.now + self.delay, self.sent), Packet { to, frame });
    }

    fn index_of(&self, id: &NodeId) -> Option<usize> {
        self.nodes.iter().position(|n| n.node.id() == id)
    }

    fn deliver_due(&mut self) {
        while let Some(entry) = self.in_flight.first_entry() {
            if entry.key().0 > self.now {
                break;
            }
            let packet = entry.remove();
            let node = &mut self.nodes[packet.to];
            if std::env::var_os("SIM_TRACE").is_some() {
                eprintln!(
                    "{:>6?} -> {} (up {}): {:?}",
                    self.now.duration_since(self.start).as_millis(),
                    node.node.id(),
                    node.up,
                    packet.frame
                );
            }
            if node.up {
                node.node.handle_incoming(
                    self.now,
                    Incoming::Frame {
                        from: None,
                        frame: packet.frame,
                    },
                );
            }
        }
    }

    fn dispatch(&mut self) {
        for n in &mut self.nodes {
            while let Some(d) = n.node.poll_dispatch() {
                match d {
                    Dispatch::Event { event, to } => {
                        for label in to {
                            n.received.push((label, event.clone()));
                        }
                    }
                    Dispatch::Count { observer, count } => n.counts.push((observer, count)),
                    Dispatch::Report(report) => n.reports.push(report),
                    Dispatch::Request(request) => n.requests.push(request),
                    Dispatch::Reply { id, result } => n.replies.push((id, result)),
                    Dispatch::Readiness(readiness) => n.readiness.push(readiness),
                    Dispatch::Acknowledged => {}
                }
            }
        }
    }
}
