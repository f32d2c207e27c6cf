//! Leaving without loss (with recovery on): a closing node tells every peer the last
//! numbers of all its names ([`Control::Closing`]) and answers their repairs until each
//! peer that follows its names says it has them all ([`Control::Settled`]), or the linger
//! ends; and the other side, answering a peer that is leaving once nothing of it is
//! missing any more.

use std::collections::HashSet;
use std::time::Instant;

use super::{Dispatch, Node};
use crate::node_id::NodeId;
use crate::protocol::Control;
use crate::transport::Destination;

impl<S: Clone> Node<S> {
    /// Starts leaving, with recovery on: sends the last numbers of all this node's names
    /// and waits (refusing new events) for each peer that follows one of them to say it
    /// has them all. Returns how many peers it waits for: 0 when recovery is off or no
    /// peer follows its names (then [`close`](Self::close) at once).
    pub fn linger(&mut self) -> usize {
        if self.closed || !self.recovering() || self.recovery.linger.is_zero() {
            return 0;
        }
        if let Some(waiting) = &self.lingering {
            return waiting.len();
        }
        let parts = self.sequencing.all_last();
        let mut waiting: HashSet<NodeId> = HashSet::new();
        for part in &parts {
            for mark in part {
                let route = self.presence.remote_mut().route(&mark.name);
                waiting.extend(route.peers.iter().cloned());
            }
        }
        let count = parts.len();
        for (i, last) in parts.into_iter().enumerate() {
            self.send_control(
                Control::Closing {
                    epoch: self.epoch,
                    last,
                    done: i + 1 == count,
                },
                Destination::All,
            );
        }
        let n = waiting.len();
        self.lingering = Some(waiting);
        n
    }

    /// How many peers a lingering node still waits for.
    pub fn lingering_for(&self) -> usize {
        self.lingering.as_ref().map_or(0, HashSet::len)
    }

    /// A [`Control::Closing`] or [`Control::Settled`] from `source`.
    pub(super) fn receive_leaving_control(
        &mut self,
        now: Instant,
        source: &NodeId,
        message: Control,
    ) {
        match message {
            Control::Closing { epoch, last, done } => {
                if self.presence.has_departed(source, epoch) {
                    return;
                }
                self.heard(now, source, epoch);
                // Without recovery the marks at close tell the tail, as they always did
                // (they travel beside the events, which this may overtake).
                if self.recovering() {
                    self.settle_marks(source, epoch, &last);
                }
                if done {
                    self.owe_settled.insert(source.clone(), epoch);
                    self.answer_leaving_peers();
                }
            }
            Control::Settled { epoch, to } if to == self.id.as_str() => {
                if self.presence.has_departed(source, epoch) {
                    return;
                }
                if let Some(waiting) = &mut self.lingering
                    && waiting.remove(source)
                {
                    self.dispatches.push_back(Dispatch::Acknowledged);
                }
            }
            _ => {}
        }
    }

    /// Tells each leaving peer that nothing of it is missing any more, once that is so.
    pub(super) fn answer_leaving_peers(&mut self) {
        if self.owe_settled.is_empty() {
            return;
        }
        let settled: Vec<NodeId> = self
            .owe_settled
            .keys()
            .filter(|source| !self.repairs.waits_for(source))
            .cloned()
            .collect();
        for source in settled {
            self.owe_settled.remove(&source);
            self.send_control(
                Control::Settled {
                    epoch: self.epoch,
                    to: source.to_string(),
                },
                Destination::Peer(source),
            );
        }
    }

    /// `peer` is down: a lingering node waits for it no more, and owes it nothing.
    pub(super) fn leaving_peer_down(&mut self, peer: &NodeId) {
        self.owe_settled.remove(peer);
        if let Some(waiting) = &mut self.lingering {
            waiting.remove(peer);
        }
    }
}
