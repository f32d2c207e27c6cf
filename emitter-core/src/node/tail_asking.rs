//! The node's side of sequence marks and asking for missed ones (the protocol is in
//! [`Control::MarksRequest`](crate::protocol::Control::MarksRequest)): settling marks,
//! checking each heartbeat for a lost acknowledgement or announcement, asking a source
//! for what this node missed, answering such asks with the marks the asker's interest
//! matches, and taking the answers.

use std::time::Instant;

use super::{Node, Sequencing};
use crate::node_id::NodeId;
use crate::pattern::Pattern;
use crate::protocol::{Control, SequenceMark};
use crate::transport::Destination;

impl<S: Clone> Node<S> {
    /// Marks from `source` (announced, or answered): a name owed from a start is followed
    /// from it, then what never arrived is asked for again (with recovery on) or reported.
    pub(super) fn settle_marks(&mut self, source: &NodeId, epoch: u64, marks: &[SequenceMark]) {
        self.follow_owed_names(source, epoch, marks);
        for (name, first, last) in self.sequencing.settle(source, epoch, marks) {
            if self.recovering() {
                self.repair((source, epoch), &name.into(), (first, last));
            } else {
                self.report(Sequencing::tail_report(source, &name, last - first + 1));
            }
        }
    }

    /// A [`Control::Sequences`] from `source`.
    pub(super) fn receive_sequences(
        &mut self,
        source: &NodeId,
        epoch: u64,
        last: &[SequenceMark],
        moved: u64,
    ) {
        self.settle_marks(source, epoch, last);
        if moved > 0 && !self.presence.has_departed(source, epoch) {
            self.tails.announced(source, epoch, moved);
        }
    }

    /// After `source`'s heartbeat (its latest announcement `moved`): what it shows this
    /// node missed is asked for again.
    pub(super) fn check_heartbeat(
        &mut self,
        now: Instant,
        source: &NodeId,
        epoch: u64,
        moved: u64,
    ) {
        if self.presence.is_known(source, epoch)
            && self
                .acks
                .version(source, epoch)
                .is_none_or(|acked| acked < self.presence.version())
        {
            // A live peer that has not acknowledged this node's interest as it is: its
            // acknowledgement was lost (or is on its way, and this costs one message).
            self.ask_for_whole_ack(source);
        }
        if moved > 0 {
            self.ask_for_missed_marks(now, source, epoch, moved);
        }
    }

    /// `source`'s heartbeat named its latest announcement `moved`: if this node missed
    /// one and listens on anything, it asks for what it missed.
    fn ask_for_missed_marks(&mut self, now: Instant, source: &NodeId, epoch: u64, moved: u64) {
        if self.listeners.len() == 0 || !self.presence.is_known(source, epoch) {
            return;
        }
        if let Some(after) = self.tails.missed(source, epoch, moved, now) {
            self.send_control(
                Control::MarksRequest {
                    epoch: self.epoch,
                    to: source.to_string(),
                    after,
                },
                Destination::Peer(source.clone()),
            );
        }
    }

    /// A [`Control::MarksRequest`] or [`Control::Marks`] from `source`.
    pub(super) fn receive_marks_control(
        &mut self,
        now: Instant,
        source: &NodeId,
        message: Control,
    ) {
        match message {
            Control::MarksRequest { epoch, to, after } if to == self.id.as_str() => {
                self.heard(now, source, epoch);
                if !(self.presence.is_known(source, epoch) && self.presence.has_heard(source)) {
                    // Its interest is not known here (asked for by now): an answer would
                    // leave out what it is owed. It asks again at the next heartbeat.
                    return;
                }
                let patterns: Vec<Pattern> = self
                    .presence
                    .peer_patterns(source)
                    .into_iter()
                    .map(|(pattern, _)| pattern)
                    .collect();
                let answer = self.sequencing.marks_for(source, after, &patterns);
                self.send_control(answer, Destination::Peer(source.clone()));
            }
            Control::Marks {
                epoch,
                to,
                after,
                moved,
                last,
            } if to == self.id.as_str() => {
                if self.presence.has_departed(source, epoch) {
                    return;
                }
                self.heard(now, source, epoch);
                self.settle_marks(source, epoch, &last);
                self.tails.answered(source, epoch, after, moved);
            }
            _ => {}
        }
    }
}
