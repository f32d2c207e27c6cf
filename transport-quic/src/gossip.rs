//! Gossip: a new peer hears of the peers this node is connected to, the others hear of
//! it, and what a peer gossips is remembered for dialing.

use std::sync::Arc;
use std::time::Instant;

use demitter_core::{ErrorKind, ErrorReport, Incoming, NodeId};

use crate::link::Link;
use crate::mesh::Mesh;
use crate::wire::{self, KIND_PEERS, PeerAddress, Peers};

impl Mesh {
    /// Tells a new peer the peers we know, and the peers we know about it.
    pub(crate) fn gossip_about(&self, link: &Arc<Link>) {
        if !self.config.gossip {
            return;
        }
        let links = self.links.read();
        let others: Vec<PeerAddress> = links
            .values()
            .filter(|l| l.id != link.id)
            .map(|l| PeerAddress {
                name: l.peer.to_string(),
                addr: l.addr.to_string(),
            })
            .collect();
        if !others.is_empty() {
            let gossip = wire::message_record(KIND_PEERS, &Peers { peers: others });
            if let Err(e) = link.queue.push(&gossip, false) {
                tracing::debug!(peer = %link.peer, "peer addresses not sent: {e}");
            }
        }
        let news = wire::message_record(
            KIND_PEERS,
            &Peers {
                peers: vec![PeerAddress {
                    name: link.peer.to_string(),
                    addr: link.addr.to_string(),
                }],
            },
        );
        for other in links.values().filter(|l| l.id != link.id) {
            if let Err(e) = other.queue.push(&news, false) {
                tracing::debug!(peer = %other.peer, "news of a peer not sent: {e}");
            }
        }
    }

    /// Remembers the peers a gossip record names, and tells the emitter of those this node
    /// is not connected to (it waits for them before it is ready) and of bad entries.
    pub(crate) fn learn_gossip(&self, from: &NodeId, peers: Peers, out: &mut Vec<Incoming>) {
        if !self.config.gossip {
            return;
        }
        let mut bad = 0usize;
        let usable = peers
            .peers
            .into_iter()
            .take(wire::MAX_GOSSIP_PEERS)
            .filter_map(
                |entry| match (NodeId::new(&entry.name), entry.addr.parse()) {
                    (Ok(name), Ok(addr)) => Some((name, addr)),
                    _ => {
                        bad += 1;
                        None
                    }
                },
            );
        let usable: Vec<(NodeId, std::net::SocketAddr)> = usable.collect();
        {
            let links = self.links.read();
            out.extend(
                usable
                    .iter()
                    .filter(|(name, _)| *name != self.me && !links.contains_key(name))
                    .map(|(name, _)| Incoming::PeerExists(name.clone())),
            );
        }
        let learned = self.directory.lock().learn_gossip(usable, Instant::now());
        if learned {
            self.dial_wake.notify_one();
        }
        if bad > 0 {
            out.push(Incoming::Report(
                ErrorReport::new(
                    ErrorKind::Deserialization,
                    1,
                    format!("{bad} unusable address(es) in gossip from `{from}`"),
                )
                .with_peer(from.as_str()),
            ));
        }
    }
}
