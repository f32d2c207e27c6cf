//! What listeners receive, and what `emit` resolves to.

use std::ops::Deref;
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::node_id::NodeId;
use crate::payload::FromPayload;

/// One event, as a listener receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Event<T> {
    /// The event name.
    pub name: Arc<str>,
    /// The payload, decoded.
    pub data: T,
    /// The emitter that emitted it.
    pub source: NodeId,
    /// Its sequence number per (source, name), from 1; 0 for events that carry none
    /// (system events, events from foreign emitters).
    pub seq: u64,
}

impl<T> Deref for Event<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.data
    }
}

/// An event before its payload is decoded for a particular listener: what a
/// [`Node`](crate::node::Node) dispatches.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RawEvent {
    /// The event name.
    pub name: Arc<str>,
    /// The payload, MessagePack.
    pub payload: Bytes,
    /// The emitter that emitted it.
    pub source: NodeId,
    /// Its sequence number per (source, name); 0 for system events.
    pub seq: u64,
}

impl RawEvent {
    pub(crate) fn decode<T: FromPayload>(&self) -> Result<Event<T>, Error> {
        Ok(Event {
            name: Arc::clone(&self.name),
            data: T::from_payload(&self.payload)?,
            source: self.source.clone(),
            seq: self.seq,
        })
    }
}

/// What `emit` reached (partybus's count).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Delivery {
    /// Local listeners that ran (spies not counted).
    pub local: usize,
    /// Remote listeners known to match (spies not counted).
    pub remote: usize,
    /// Peers known to exist whose interest this node had not heard when it emitted: their
    /// listeners, if any, are not in `remote` (on a sender-filtering transport they were
    /// sent the event all the same).
    pub unheard: usize,
    /// Whether this node had heard the bus ([`Emitter::ready`](crate::Emitter::ready)):
    /// if not, `remote` may miss peers it had not heard of yet.
    pub ready: bool,
}

impl Delivery {
    /// Local and remote listeners together.
    pub fn total(&self) -> usize {
        self.local + self.remote
    }
}

/// The data of the `$listener.added` and `$listener.removed` meta events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ListenerChange {
    /// The listener's pattern.
    pub pattern: String,
    /// Whether it is a spy.
    pub spy: bool,
}

/// The data of the `$peer.up` and `$peer.down` system events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PeerChange {
    /// The peer's id.
    pub peer: String,
}

/// System event: a peer joined the bus. Data: [`PeerChange`].
pub const PEER_UP: &str = "$peer.up";
/// System event: a peer left or was lost. Data: [`PeerChange`].
pub const PEER_DOWN: &str = "$peer.down";
/// System event: events lost on the way came back from their sender's window (with
/// recovery on) and were delivered in order. Data: [`Recovered`].
pub const RECOVERED: &str = "$recovered";

/// The data of [`RECOVERED`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recovered {
    /// The node that emitted them.
    pub peer: String,
    /// Their name.
    pub event: String,
    /// How many came back.
    pub count: u64,
}
/// Meta event: a local listener was added. Data: [`ListenerChange`].
pub const LISTENER_ADDED: &str = "$listener.added";
/// Meta event: a local listener was removed. Data: [`ListenerChange`].
pub const LISTENER_REMOVED: &str = "$listener.removed";
