//! The receiver's side of acknowledgements: which of this node's patterns each peer has
//! acknowledged, with where its names start (see [`Control::Ack`](crate::protocol::Control::Ack)),
//! and the pattern each listener is on as this node took it up. A listener is
//! *subscribed* once every peer up has acknowledged its pattern; from then on a missing
//! event from such a peer is a gap, first events included.

use std::sync::Arc;

use foldhash::HashMap;

use crate::node::coverage::Instance;
use crate::node_id::NodeId;
use crate::protocol::SequenceMark;

/// The most names followed provisionally; past it they are forgotten (at worst an
/// unreported loss before an acknowledgement that came late).
const MAX_PROVISIONAL: usize = 100_000;

/// The most peers whose acknowledgements are remembered.
const MAX_PEERS: usize = 4096;

/// What one peer (in one incarnation) acknowledged.
#[derive(Debug, Default)]
pub(crate) struct PeerAcks {
    epoch: u64,
    /// The version acknowledged last (the last message of it arrived).
    version: Option<u64>,
    /// This node's patterns it acknowledged, with where its names started for each.
    instances: HashMap<Instance, HashMap<String, u64>>,
}

impl PeerAcks {
    /// Where `name` starts for `instance`, if the peer acknowledged it: its number then,
    /// 0 if it had not emitted it.
    pub(crate) fn start(&self, instance: &Instance, name: &str) -> Option<u64> {
        self.instances
            .get(instance)
            .map(|starts| starts.get(name).copied().unwrap_or(0))
    }

    /// Whether the peer acknowledged `instance`.
    pub(crate) fn has(&self, instance: &Instance) -> bool {
        self.instances.contains_key(instance)
    }
}

/// The tracker.
#[derive(Debug, Default)]
pub(crate) struct Acknowledgements {
    by_peer: HashMap<NodeId, PeerAcks>,
    /// Listener -> the version at which this node took up its pattern.
    since: HashMap<u64, u64>,
    /// Source -> name -> the first number seen, for names followed before the source
    /// acknowledged a pattern here that matches them: the acknowledgement says where
    /// they started, and so whether events before the first seen were lost.
    provisional: HashMap<NodeId, HashMap<Arc<str>, u64>>,
    provisional_len: usize,
}

impl Acknowledgements {
    /// Listener `id` is on a pattern this node took up at version `since`.
    pub(crate) fn listener_added(&mut self, id: u64, since: u64) {
        self.since.insert(id, since);
    }

    /// Listener `id` is gone.
    pub(crate) fn listener_removed(&mut self, id: u64) {
        self.since.remove(&id);
    }

    /// The version at which this node took up listener `id`'s pattern.
    pub(crate) fn since(&self, id: u64) -> Option<u64> {
        self.since.get(&id).copied()
    }

    /// This node dropped `instance`: what peers acknowledged of it is of no more use.
    pub(crate) fn dropped(&mut self, instance: &Instance) {
        for acks in self.by_peer.values_mut() {
            acks.instances.remove(instance);
        }
    }

    /// What `peer` in incarnation `epoch` acknowledged.
    pub(crate) fn of(&self, peer: &NodeId, epoch: u64) -> Option<&PeerAcks> {
        self.by_peer.get(peer).filter(|a| a.epoch == epoch)
    }

    /// The record of `peer` in incarnation `epoch`, a new incarnation replacing an old.
    fn record(&mut self, peer: &NodeId, epoch: u64) -> &mut PeerAcks {
        if self.by_peer.len() >= MAX_PEERS
            && !self.by_peer.contains_key(peer)
            && let Some(victim) = self.by_peer.keys().next().cloned()
        {
            // Kept for peers that may come back from a cut; an arbitrary one goes.
            self.by_peer.remove(&victim);
        }
        let record = self.by_peer.entry(peer.clone()).or_default();
        if record.epoch != epoch {
            *record = PeerAcks {
                epoch,
                ..PeerAcks::default()
            };
        }
        record
    }

    /// `peer` acknowledged `instance`, with these starts (more may follow).
    pub(crate) fn cover(
        &mut self,
        peer: &NodeId,
        epoch: u64,
        instance: Instance,
        starts: &[SequenceMark],
    ) {
        let entry = self
            .record(peer, epoch)
            .instances
            .entry(instance)
            .or_default();
        for m in starts {
            entry.insert(m.name.clone(), m.seq);
        }
    }

    /// `peer` acknowledged this node's interest at `version` (the last message of it).
    pub(crate) fn acked(&mut self, peer: &NodeId, epoch: u64, version: u64) {
        let record = self.record(peer, epoch);
        record.version = Some(record.version.map_or(version, |v| v.max(version)));
    }

    /// The version `peer` in incarnation `epoch` acknowledged last, if any.
    pub(crate) fn version(&self, peer: &NodeId, epoch: u64) -> Option<u64> {
        self.of(peer, epoch).and_then(|a| a.version)
    }

    /// The incarnation of `peer` that acknowledged last, and the version it did (kept
    /// after it leaves, until a new incarnation replaces it).
    pub(crate) fn acknowledged_by(&self, peer: &NodeId) -> Option<(u64, u64)> {
        let acks = self.by_peer.get(peer)?;
        Some((acks.epoch, acks.version?))
    }

    /// `peer` left for good: what was followed provisionally can no longer be settled.
    pub(crate) fn peer_left(&mut self, peer: &NodeId) {
        if let Some(names) = self.provisional.remove(peer) {
            self.provisional_len -= names.len();
        }
    }

    /// The first event seen of `name` from `source` was `seq`, before `source`
    /// acknowledged a pattern here that matches it.
    pub(crate) fn follow_provisionally(&mut self, source: &NodeId, name: &Arc<str>, seq: u64) {
        if self.provisional_len >= MAX_PROVISIONAL {
            self.provisional.clear();
            self.provisional_len = 0;
        }
        let names = self.provisional.entry(source.clone()).or_default();
        if !names.contains_key(name) {
            names.insert(Arc::clone(name), seq);
            self.provisional_len += 1;
        }
    }

    /// The first number seen of `name` from `source`, if followed provisionally; no
    /// longer provisional.
    pub(crate) fn take_provisional(&mut self, source: &NodeId, name: &str) -> Option<u64> {
        let names = self.provisional.get_mut(source)?;
        let first = names.remove(name)?;
        self.provisional_len -= 1;
        Some(first)
    }

    /// Forgets the names followed provisionally for which `keep` is false (no listener
    /// here matches them any more).
    pub(crate) fn forget_provisional(&mut self, mut keep: impl FnMut(&str) -> bool) {
        let mut left = 0;
        self.provisional.retain(|_, names| {
            names.retain(|name, _| keep(name));
            left += names.len();
            !names.is_empty()
        });
        self.provisional_len = left;
    }

    /// The names of `source` followed provisionally.
    pub(crate) fn provisional_names(&self, source: &NodeId) -> Vec<Arc<str>> {
        self.provisional
            .get(source)
            .map(|names| names.keys().cloned().collect())
            .unwrap_or_default()
    }
}
