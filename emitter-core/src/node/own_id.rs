//! Frames in this node's own name: its echo on a broadcast bus, or another live node with
//! its id, which one of the two must give way to (see [`duplicates`](super::duplicates)).

use std::time::Instant;

use super::Node;
use super::duplicates::Verdict;
use crate::frame::Frame;
use crate::protocol::Control;
use crate::report::{ErrorKind, ErrorReport};
use crate::transport::Destination;

impl<S: Clone> Node<S> {
    /// A frame with this node's id as its source: its own echo, or another node with its
    /// id (see [`duplicates`]).
    pub(super) fn own_id_heard(&mut self, now: Instant, frame: &Frame) {
        let (epoch, hello, bye, event) = match frame {
            Frame::Event(e) => (e.epoch, false, false, true),
            Frame::Control(c) => match Control::decode(&c.body) {
                Ok(m) => (
                    m.epoch(),
                    matches!(m, Control::Hello { .. }),
                    matches!(m, Control::Bye { .. }),
                    false,
                ),
                // Nobody else's problem: an undecodable frame in this node's name.
                Err(e) => {
                    return self.report(
                        ErrorReport::new(ErrorKind::Deserialization, 1, e.to_string())
                            .with_peer(self.id.as_str()),
                    );
                }
            },
        };
        match self.duplicates.heard(epoch, hello, bye, now) {
            Verdict::Echo => {}
            Verdict::Newer { first } => {
                if first {
                    tracing::warn!(id = %self.id, "another node joined with this node's id; it is told to give way");
                    self.report(
                        ErrorReport::new(
                            ErrorKind::Refused,
                            1,
                            format!(
                                "another node joined with this node's id `{}`; it is told to give way, and what it sends is dropped here",
                                self.id
                            ),
                        )
                        .with_peer(self.id.as_str()),
                    );
                    // Anything but a hello tells it this id was taken first.
                    let heartbeat = Control::Heartbeat {
                        epoch: self.epoch,
                        version: 0,
                        moved: 0,
                    };
                    self.send_control(heartbeat, Destination::All);
                } else if event {
                    self.report(
                        ErrorReport::new(
                            ErrorKind::Refused,
                            1,
                            format!(
                                "an event from the other node with this node's id `{}` was dropped",
                                self.id
                            ),
                        )
                        .with_peer(self.id.as_str()),
                    );
                }
            }
            Verdict::GaveWay => {
                tracing::warn!(id = %self.id, "another node with this node's id was on the bus; it gave way");
                self.report(
                    ErrorReport::new(
                        ErrorKind::Refused,
                        1,
                        format!(
                            "another node with this node's id `{}` was on the bus; it gave way",
                            self.id
                        ),
                    )
                    .with_peer(self.id.as_str()),
                );
            }
            Verdict::Refused => self.give_way(),
        }
    }

    /// Another node had this id first: say goodbye, send nothing more, fail what is asked.
    pub(super) fn give_way(&mut self) {
        tracing::warn!(id = %self.id, "another node on the bus already has this node's id; giving way");
        // Refused first, then the report: whoever reads the report finds the node refused.
        self.leave();
        self.update_readiness();
        self.report(
            ErrorReport::new(
                ErrorKind::Refused,
                1,
                format!(
                    "another node on the bus already has this node's id `{}`; this one gave way and sends nothing more",
                    self.id
                ),
            )
            .with_peer(self.id.as_str()),
        );
    }
}
