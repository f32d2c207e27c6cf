//! What a [`Node`](super::Node) asks its driver to do: frames to send and subscriptions to
//! change ([`Transmit`]), and deliveries to make ([`Dispatch`]).

use smallvec::SmallVec;

use crate::event::{Delivery, RawEvent};
use crate::frame::Frame;
use crate::node::requests::{IncomingRequest, RequestFailure};
use crate::pattern::Pattern;
use crate::protocol::SequenceMark;
use crate::report::ErrorReport;
use crate::transport::Destination;

/// The sinks an event goes to. Most events have one listener: then nothing is allocated.
pub type Targets<S> = SmallVec<[S; 2]>;

/// Something for the transport, in the order the node produced it (a subscription before
/// the announcement that depends on it; events in sequence order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transmit {
    /// This node now listens on `pattern` ([`Transport::subscribe`](crate::Transport::subscribe)).
    Subscribe(Pattern),
    /// This node no longer listens on `pattern`.
    Unsubscribe(Pattern),
    /// Send `frame` to `to`.
    Frame {
        /// The frame.
        frame: Frame,
        /// Where to.
        to: Destination,
        /// What it carries, for [`Node::handle_send_failure`](super::Node::handle_send_failure).
        kind: FrameKind,
    },
}

/// What a transmitted frame carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameKind {
    /// An emitted event.
    Event,
    /// Presence traffic (the protocol repairs its losses by itself).
    Control,
    /// Sequence marks (announced again at the next tick if they never left).
    Marks(Vec<SequenceMark>),
    /// An event for a group member on another node.
    Group,
}

/// A delivery the node asks for.
#[derive(Debug, Clone)]
pub enum Dispatch<S> {
    /// Queue `event` for each of these listeners, in this order.
    Event {
        /// The event.
        event: RawEvent,
        /// Its listeners' sinks.
        to: Targets<S>,
    },
    /// The listener count watched by `observer` is now `count`.
    Count {
        /// The id [`Node::observe`](super::Node::observe) returned.
        observer: u64,
        /// The new count.
        count: usize,
    },
    /// Put this report on the error channel (the `$error` listeners already have it as an
    /// [`Event`](Dispatch::Event)).
    Report(ErrorReport),
    /// Run this request through one of this node's responders, then hand the outcome to
    /// [`Node::reply`](super::Node::reply).
    Request(IncomingRequest),
    /// What became of request `id` that this node made: the reply, as an event whose
    /// source is the responder's node, or why none came.
    Reply {
        /// The number [`Node::request`](super::Node::request) returned.
        id: u64,
        /// The reply, or why none came.
        result: Result<RawEvent, RequestFailure>,
    },
    /// Whether the node has heard the bus changed ([`Node::readiness`](super::Node::readiness)).
    Readiness(super::Readiness),
    /// A peer acknowledged this node's interest, or one was lost: whether a listener is
    /// subscribed ([`Node::is_subscribed`](super::Node::is_subscribed)) may have changed.
    Acknowledged,
}

/// What [`Node::emit`](super::Node::emit) did.
#[derive(Debug)]
pub struct Emitted<S> {
    /// How many listeners it reached.
    pub delivery: Delivery,
    /// The local listeners to run now, with the event; `None` when no listener here
    /// matches.
    pub local: Option<(RawEvent, Targets<S>)>,
}
