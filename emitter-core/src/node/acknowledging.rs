//! The node's side of acknowledged interest (the protocol is in
//! [`Control::Ack`](crate::protocol::Control::Ack)): acknowledging what peers listen on,
//! with where this node's names start for them; taking their acknowledgements of this
//! node's listeners, which make a listener subscribed and its first events owed; and
//! asking again for one that went missing.

use std::time::Instant;

use super::{Dispatch, Node, Sequencing};
use crate::node_id::NodeId;
use crate::pattern::Pattern;
use crate::protocol::{Control, Covered, Interest, MAX_MARKS_PER_MESSAGE, SequenceMark};
use crate::transport::Destination;

/// A [`Control::Ack`] for this node, unpacked.
struct AckIn {
    version: u64,
    after: Option<u64>,
    covers: Vec<Covered>,
    done: bool,
}

impl<S: Clone> Node<S> {
    /// Whether listener `id` is subscribed: this node has heard the bus, and every peer up
    /// acknowledged the listener's pattern, so every event a peer emits from then on that
    /// the listener matches reaches it or is reported lost. `None` for a listener not
    /// here.
    pub fn is_subscribed(&self, id: u64) -> Option<bool> {
        let since = self.acks.since(id)?;
        let instance = (self.listeners.get(id)?.pattern.clone(), since);
        if !self.readiness.ready {
            return Some(false);
        }
        Some(self.presence.peers().all(|peer| {
            self.presence
                .epoch_of(peer)
                .and_then(|epoch| self.acks.of(peer, epoch))
                .is_some_and(|acks| acks.has(&instance))
        }))
    }

    /// Where `name` from `source` (incarnation `epoch`) starts for this node, if it is
    /// owed from there: the source acknowledged the pattern of a listener here that
    /// matches it. The earliest start of those patterns'.
    pub(super) fn owed_from(&self, source: &NodeId, epoch: u64, name: &str) -> Option<u64> {
        let acks = self.acks.of(source, epoch)?;
        let mut start: Option<u64> = None;
        self.listeners.for_each_match(name, |l| {
            let instance = self
                .acks
                .since(l.id)
                .map(|since| (l.pattern.clone(), since));
            if let Some(s) = instance.and_then(|i| acks.start(&i, name)) {
                start = Some(start.map_or(s, |b| b.min(s)));
            }
        });
        start
    }

    /// The version of `peer`'s interest this node acknowledged last, with the incarnation
    /// of `peer` it knows.
    pub fn acknowledged(&self, peer: &NodeId) -> Option<(u64, u64)> {
        Some((
            self.presence.epoch_of(peer)?,
            self.presence.acknowledged(peer)?,
        ))
    }

    /// The version of this node's interest that `peer` acknowledged last, with the
    /// incarnation of `peer` that did (kept after it leaves, until a new one replaces it).
    pub fn acknowledged_by(&self, peer: &NodeId) -> Option<(u64, u64)> {
        self.acks.acknowledged_by(peer)
    }

    /// The version at which this node took up listener `id`'s pattern: a peer that has
    /// acknowledged that version (or a later one that still has the pattern) owes the
    /// listener what it emits.
    pub fn listener_since(&self, id: u64) -> Option<u64> {
        self.acks.since(id)
    }

    /// This node's record of `peer`'s interest moved on to `version`: tells the peer
    /// which of its patterns are acknowledged now, with where this node's names start.
    pub(super) fn acknowledge(&mut self, peer: &NodeId, version: u64) {
        let Some(their_epoch) = self.presence.epoch_of(peer) else {
            return;
        };
        let patterns = self.presence.peer_patterns(peer);
        let sequencing = &self.sequencing;
        let acks = self.coverage.acknowledge(
            self.epoch,
            (peer, their_epoch),
            version,
            &patterns,
            |pattern| sequencing.starts_for(std::slice::from_ref(pattern)),
        );
        for ack in acks {
            self.send_control(ack, Destination::Peer(peer.clone()));
        }
    }

    /// An [`Ack`](Control::Ack) or [`AckRequest`](Control::AckRequest): for this node
    /// only if it is addressed here.
    pub(super) fn receive_acknowledgement(
        &mut self,
        now: Instant,
        source: &NodeId,
        message: Control,
    ) {
        match message {
            Control::Ack {
                epoch,
                to,
                to_epoch,
                version,
                after,
                covers,
                done,
            } if to == self.id.as_str() && to_epoch == self.epoch => {
                self.heard(now, source, epoch);
                let ack = AckIn {
                    version,
                    after,
                    covers,
                    done,
                };
                self.receive_ack(source, epoch, ack);
            }
            Control::AckRequest { epoch, to } if to == self.id.as_str() => {
                self.heard(now, source, epoch);
                for ack in self.coverage.whole(self.epoch, (source, epoch)) {
                    self.send_control(ack, Destination::Peer(source.clone()));
                }
            }
            _ => {}
        }
    }

    /// Before marks are settled: a name owed from a start of which nothing arrived is
    /// followed from that start, so that the marks reveal what was lost of it.
    pub(super) fn follow_owed_names(
        &mut self,
        source: &NodeId,
        epoch: u64,
        marks: &[SequenceMark],
    ) {
        if self.presence.has_departed(source, epoch) {
            // Its last marks overtaken by its goodbye: nothing of it is followed any more.
            return;
        }
        for mark in marks.iter().take(MAX_MARKS_PER_MESSAGE) {
            if self.sequencing.follows(source, epoch, &mark.name) {
                continue;
            }
            if let Some(start) = self.owed_from(source, epoch, &mark.name) {
                let start = SequenceMark {
                    name: mark.name.clone(),
                    seq: start,
                };
                self.sequencing.start(source, epoch, &start);
            } else if self.listeners.has_match(&mark.name) {
                self.tails.let_go(source, epoch);
            }
        }
    }

    /// `source`'s acknowledgement of this node's interest at `version` (one message of it).
    fn receive_ack(&mut self, source: &NodeId, epoch: u64, ack: AckIn) {
        if ack.after.is_some() && self.acks.version(source, epoch) != ack.after {
            // One went missing on the way: ask for the whole, which says everything.
            self.ask_for_whole_ack(source);
            return;
        }
        let mut names: Vec<String> = Vec::new();
        for cover in ack.covers {
            let Ok(pattern) = Pattern::new(&cover.pattern) else {
                continue;
            };
            // Only a pattern this node still listens on, as it took it up then.
            let listened = Interest::Listen(pattern.clone());
            if self.presence.local_since(&listened) != Some(cover.since) {
                continue;
            }
            let starts = &cover.starts[..cover.starts.len().min(MAX_MARKS_PER_MESSAGE)];
            names.extend(starts.iter().map(|m| m.name.clone()));
            self.acks
                .cover(source, epoch, (pattern, cover.since), starts);
        }
        if !ack.done {
            return;
        }
        self.acks.acked(source, epoch, ack.version);
        names.extend(
            self.acks
                .provisional_names(source)
                .iter()
                .map(ToString::to_string),
        );
        names.sort_unstable();
        names.dedup();
        // Marks let go before, not owed then, may be owed now: asked for again.
        self.tails.acknowledged(source);
        for name in names {
            self.settle_start(source, epoch, &name);
        }
        self.dispatches.push_back(Dispatch::Acknowledged);
    }

    /// `name` from `source` may be owed from a start now: what is known of it is checked
    /// against that start.
    fn settle_start(&mut self, source: &NodeId, epoch: u64, name: &str) {
        let Some(start) = self.owed_from(source, epoch, name) else {
            return;
        };
        if let Some(first) = self.acks.take_provisional(source, name)
            && first > start + 1
        {
            // Followed since its first event seen: what came between was lost.
            self.report(Sequencing::lost_before_ack(source, name, first - start - 1));
        }
        let mark = SequenceMark {
            name: name.to_owned(),
            seq: start,
        };
        self.sequencing.start(source, epoch, &mark);
    }

    /// Asks `source` for a whole acknowledgement of this node's interest.
    pub(super) fn ask_for_whole_ack(&mut self, source: &NodeId) {
        self.send_control(
            Control::AckRequest {
                epoch: self.epoch,
                to: source.to_string(),
            },
            Destination::Peer(source.clone()),
        );
    }
}
