//! [`PeerInfo`]: who a neighbour is, as partybus's `bus.hood` tells it.

use std::time::SystemTime;

use crate::node_id::NodeId;

/// One peer on the bus, as this node knows it ([`Emitter::peer_info`](crate::Emitter::peer_info)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PeerInfo {
    /// Its id: the `source` of its events.
    pub id: NodeId,
    /// Its name as the transport proved it (its certificate's name on QUIC and on an
    /// authenticated NATS bus, its key's name on CURVE); `None` where the transport proves
    /// no one, and the id is only what the peer says.
    pub proven_name: Option<NodeId>,
    /// Where it is, as the transport reaches it (`IP:PORT` of a direct connection); `None`
    /// through a forwarder or a server.
    pub address: Option<String>,
    /// When this node first heard its current incarnation.
    pub up_since: SystemTime,
    /// On how many patterns it has listeners that count (group members and responders
    /// included; spies not).
    pub patterns: usize,
}
