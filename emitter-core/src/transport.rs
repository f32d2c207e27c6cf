//! The [`Transport`] trait: what an emitter needs from a network, and nothing more.

use std::fmt;
use std::sync::Arc;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;

use crate::error::Error;
use crate::frame::Frame;
use crate::node_id::NodeId;
use crate::pattern::Pattern;
use crate::report::ErrorReport;

/// Where a frame should go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// Every peer on the bus.
    All,
    /// One peer (broadcast transports may deliver to all; receivers tolerate it).
    Peer(NodeId),
    /// These peers: the ones known to listen for the event (sender-filtering transports).
    Peers(Arc<[NodeId]>),
}

/// What a transport does itself, declared so the core and the conformance suite know.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[expect(
    clippy::struct_excessive_bools,
    reason = "independent declarations, each read on its own"
)]
pub struct Capabilities {
    /// The largest frame it carries; larger incoming frames are refused and reported.
    pub max_frame_bytes: usize,
    /// It reports [`Incoming::PeerUp`] / [`Incoming::PeerDown`] from its own connection
    /// state; otherwise the core relies on heartbeats alone.
    pub peer_events: bool,
    /// It delivers an event only to the peers the core addresses ([`Destination::Peers`]);
    /// otherwise it broadcasts and receivers filter.
    pub sender_filtering: bool,
    /// It authenticates peers: [`Incoming::Frame::from`] is the proven identity, and a frame
    /// whose source differs is refused by the core.
    pub authenticated: bool,
    /// Its [`wait_for_room`](Transport::wait_for_room) waits until its queues have room, so
    /// [`Congestion::Block`](crate::Congestion::Block) holds an emitter back instead of
    /// dropping; otherwise `Block` is the same as `Drop`.
    pub blocking_send: bool,
    /// It says when it has made contact with the bus ([`Incoming::Joined`]) and names the
    /// peers it learns exist before they speak ([`Incoming::PeerExists`]), so a node knows
    /// whom to wait for before it is [ready](crate::Emitter::ready). Otherwise the node
    /// counts as having heard the bus once every live peer has had a heartbeat interval to
    /// speak, which holds where every node hears every other (a broadcast bus).
    pub census: bool,
}

impl Capabilities {
    /// A broadcast transport that reports no peers and authenticates no one.
    pub fn broadcast(max_frame_bytes: usize) -> Self {
        Self {
            max_frame_bytes,
            peer_events: false,
            sender_filtering: false,
            authenticated: false,
            blocking_send: false,
            census: false,
        }
    }
}

/// Something a transport received.
#[derive(Debug)]
pub enum Incoming {
    /// A decoded frame.
    Frame {
        /// The authenticated peer it came from, on transports that authenticate.
        from: Option<NodeId>,
        /// The frame.
        frame: Frame,
    },
    /// A connection to this peer came up.
    PeerUp(NodeId),
    /// The connection to this peer was lost (or, for a peer named by
    /// [`PeerExists`](Incoming::PeerExists) and never reached, it cannot be reached).
    PeerDown(NodeId),
    /// This peer is on the bus (a neighbour named it), though it has not spoken here yet:
    /// the node is not [ready](crate::Emitter::ready) until it has heard the peer's
    /// interest, the peer is lost, or a presence timeout passed. Only from transports that
    /// declare [`Capabilities::census`].
    PeerExists(NodeId),
    /// The transport made contact with the bus: what the peers it knows of were told is on
    /// its way, and the peers it learnt of so far were named by
    /// [`PeerExists`](Incoming::PeerExists). `peers` is how many other nodes the bus had,
    /// where the transport can count them. Sent once, by transports that declare
    /// [`Capabilities::census`].
    Joined {
        /// Other nodes on the bus when this one joined, if known.
        peers: Option<usize>,
    },
    /// A transport that declares [`Capabilities::census`] cannot count this bus after all
    /// (a broker that does not say, such as a plain libzmq proxy in place of this project's
    /// forwarder): the node counts as having heard the bus by time instead, as on a
    /// transport without a census. Sent instead of [`Joined`](Incoming::Joined).
    NoCensus,
    /// Another live node has this node's id and was there first, as the transport found
    /// out (a mesh, where a node never hears its own id on the bus): the node gives way,
    /// as when the core finds it out itself, and fails what is asked with
    /// [`Error::DuplicateId`](crate::Error::DuplicateId) naming `address`.
    DuplicateId {
        /// Where the other node is, where the transport knows.
        address: Option<String>,
    },
    /// Something went wrong: an undecodable or oversize frame, a refused peer, frames lost
    /// in an outage. The core puts it on the error channel.
    Report(ErrorReport),
}

/// A way for emitters to reach each other. Object-safe: emitters hold an
/// `Arc<dyn Transport>`.
///
/// # The contract
///
/// A transport moves [`Frame`]s between the emitters of one bus. It does not match
/// patterns, count listeners, sequence events or decide what is lost: the core does that,
/// the same way for every transport. A transport must:
///
/// - **Never block the sender.** [`send`](Transport::send) queues the frame and returns at
///   once. When a queue is full the frame is dropped and `send` returns an error (the core
///   reports it); the receivers will also see the gap in the sequence numbers. The core's
///   [`SendQueue`](crate::SendQueue) is that queue, written once: a transport's writer
///   drains it. A transport that can tell when there is room again says so with
///   [`wait_for_room`](Transport::wait_for_room) and [`Capabilities::blocking_send`], and
///   [`Congestion::Block`](crate::Congestion::Block) waits on it before emitting.
/// - **Keep order per sender.** Frames from one emitter reach each receiver in the order they
///   were sent (the core's gap detection depends on it).
/// - **Not echo.** An emitter never receives its own frames.
/// - **Treat input as hostile.** Whatever arrives is decoded with a size limit
///   ([`Capabilities::max_frame_bytes`]); what fails to decode is returned as
///   [`Incoming::Report`] and never panics or stalls the receive loop.
/// - **Bound memory.** Every queue is bounded; a slow peer costs only its own queue.
/// - **Honour its [`Capabilities`].** They tell the core (and the conformance suite) what
///   the transport does itself and what the core must do for it.
/// - **Stop cleanly.** [`close`](Transport::close) flushes what is queued (the goodbye
///   among it) and closes in order, each step within its
///   [`CloseDeadlines`](crate::CloseDeadlines); once it resolves, every task it spawned has
///   ended and [`recv`](Transport::recv) returns `None`.
/// - **Receive cancel-safely.** [`recv`](Transport::recv)'s future may be dropped before it
///   completes (or made and never polled); that must lose nothing.
pub trait Transport: Send + Sync + fmt::Debug + 'static {
    /// What this transport does itself.
    fn capabilities(&self) -> Capabilities;

    /// The identity the transport proved for this node (a certificate name), if any. The
    /// emitter uses it as its id.
    fn local_id(&self) -> Option<NodeId> {
        None
    }

    /// Where `peer` is, as this transport reaches it (`IP:PORT` of a direct connection),
    /// where it knows; `None` (the default) for a peer reached through a forwarder or a
    /// server, or not connected.
    fn peer_address(&self, peer: &NodeId) -> Option<String> {
        let _ = peer;
        None
    }

    /// Queues a frame for delivery; never waits on a peer.
    fn send(&self, frame: Frame, to: Destination) -> Result<(), Error>;

    /// Resolves once a frame of about `bytes` would find room in every queue a broadcast
    /// goes through (or the transport is closed): what
    /// [`Congestion::Block`](crate::Congestion::Block) waits on, with a deadline, before
    /// each emit. Declared by [`Capabilities::blocking_send`]; the default resolves at once.
    fn wait_for_room(&self, bytes: usize) -> BoxFuture<'_, ()> {
        let _ = bytes;
        Box::pin(std::future::ready(()))
    }

    /// This node now listens on `pattern` (for transports that filter by subscription).
    ///
    /// Called before the listener is announced to peers. A transport whose subscriptions and
    /// announcements travel separately must not let an announcement sent after this call
    /// overtake the subscription, or a peer could emit before the subscription is in place.
    fn subscribe(&self, pattern: &Pattern) {
        let _ = pattern;
    }

    /// This node no longer listens on `pattern`.
    fn unsubscribe(&self, pattern: &Pattern) {
        let _ = pattern;
    }

    /// The next thing received; `None` once closed. Called from one task at a time.
    ///
    /// Must be cancel-safe: the receive loop drops this future when a timer fires first,
    /// and polls a fresh one once to drain what has already arrived; dropping it before it
    /// completes must lose nothing.
    fn recv(&self) -> BoxFuture<'_, Option<Incoming>>;

    /// Moves what has arrived, at most `max` items, into `into`, waiting for at least one;
    /// `false` once closed. The receive loop calls this, not [`recv`](Transport::recv).
    ///
    /// The default calls [`recv`](Transport::recv) once and then takes what is ready
    /// without waiting. Override it when a batch can be handed over more cheaply (one lock,
    /// one future per batch). Cancel-safe like `recv`: either the future completes in the
    /// poll that moves items into `into`, or it moves none.
    fn recv_many<'a>(&'a self, into: &'a mut Vec<Incoming>, max: usize) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            let Some(first) = self.recv().await else {
                return false;
            };
            into.push(first);
            while into.len() < max {
                match self.recv().now_or_never() {
                    Some(Some(incoming)) => into.push(incoming),
                    _ => break,
                }
            }
            true
        })
    }

    /// From now on, hands what it receives to `receiver` on its own tasks instead of
    /// queueing it for [`recv`](Transport::recv) (what already waits goes first, in order);
    /// `recv` then only ends, when the transport closes. Returns whether it does: the
    /// default does not, and the emitter's receive loop reads `recv_many` as before.
    ///
    /// Only for transports whose receiving tasks are not the ones that
    /// [`send`](Transport::send) runs on: the receiver sends what the batch makes it send.
    fn receive_directly(&self, receiver: std::sync::Weak<dyn crate::inbox::Receive>) -> bool {
        let _ = receiver;
        false
    }

    /// Stops: flushes what it can, ends its tasks, makes `recv` return `None`.
    fn close(&self) -> BoxFuture<'_, ()>;
}
