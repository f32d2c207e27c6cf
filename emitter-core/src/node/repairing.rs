//! The node's side of recovery (the protocol is in
//! [`Control::Repair`](crate::protocol::Control::Repair)): asking a source for the events
//! this node found missing, holding what came after them, answering such asks from the
//! window of what this node emitted, and taking the answers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::repairs::{Ask, MAX_RANGES_ASKED, Released};
use super::{Node, REQUEST_OVERHEAD, Sequencing, Targets};
use crate::event::{RECOVERED, RawEvent, Recovered};
use crate::frame::EventFrame;
use crate::node_id::NodeId;
use crate::protocol::{Control, RepairedEvent, SeqCheck};
use crate::transport::Destination;

/// Bytes of events a node sends again per [`BUDGET_PERIOD`] at most, to all askers
/// together: a storm of asks after a forwarder restart costs bounded traffic (what is not
/// answered is asked for again, until the askers' deadlines).
const REPAIR_BUDGET_BYTES: usize = 8 << 20;

/// The period of [`REPAIR_BUDGET_BYTES`].
const BUDGET_PERIOD: Duration = Duration::from_millis(100);

/// Bytes one event takes in a [`Control::Repaired`] beside its payload.
const REPAIRED_EVENT_OVERHEAD: usize = 16;

/// What the node has left to send again in this period.
pub(crate) struct RepairBudget {
    left: usize,
    renewed: Option<Instant>,
}

impl RepairBudget {
    pub(crate) fn new() -> Self {
        Self {
            left: REPAIR_BUDGET_BYTES,
            renewed: None,
        }
    }

    /// Takes `bytes` of the budget at `now`, if there is that much left.
    fn take(&mut self, bytes: usize, now: Instant) -> bool {
        if self
            .renewed
            .is_none_or(|at| now.saturating_duration_since(at) >= BUDGET_PERIOD)
        {
            self.left = REPAIR_BUDGET_BYTES;
            self.renewed = Some(now);
        }
        if bytes > self.left {
            return false;
        }
        self.left -= bytes;
        true
    }
}

/// One answer being made.
struct Answer {
    events: Vec<RepairedEvent>,
    gone: Vec<[u64; 2]>,
    size: usize,
}

impl Answer {
    fn new() -> Self {
        Self {
            events: Vec::new(),
            gone: Vec::new(),
            size: 0,
        }
    }

    fn gone(&mut self, first: u64, last: u64) {
        if let Some(prev) = self.gone.last_mut()
            && prev[1].checked_add(1) == Some(first)
        {
            prev[1] = last;
        } else {
            self.gone.push([first, last]);
        }
        self.size += 24;
    }
}

impl<S: Clone> Node<S> {
    /// Whether this node keeps a window and asks for what it lost.
    pub(super) fn recovering(&self) -> bool {
        self.recovery.is_on()
    }

    /// Events `first..=last` of `name` from `source` are missing: asks for them.
    pub(super) fn repair(
        &mut self,
        (source, epoch): (&NodeId, u64),
        name: &Arc<str>,
        (first, last): (u64, u64),
    ) {
        let now = self.now;
        let (ask, released) = self
            .repairs
            .missing((source, epoch), name, (first, last), now);
        if let Some(ask) = ask {
            self.send_ask(ask);
        }
        self.carry_out(released);
    }

    /// With recovery on, an arrived event (whose number got `verdict`) that shows numbers
    /// missing starts their repair and waits for it; one of a name that waits already is
    /// held behind the missing numbers, or, arriving late, taken as one of them. Whether it
    /// took the event.
    pub(super) fn recover(&mut self, verdict: SeqCheck, event: &EventFrame) -> bool {
        let waits = !self.repairs.is_empty() && self.repairs.waits(&event.source, &event.name);
        let raw = || RawEvent {
            name: Arc::clone(&event.name),
            payload: event.payload.clone(),
            source: event.source.clone(),
            seq: event.seq,
        };
        let released = match verdict {
            SeqCheck::Gap(missed) => {
                self.repair(
                    (&event.source, event.epoch),
                    &event.name,
                    (event.seq - missed, event.seq - 1),
                );
                self.repairs.hold(raw())
            }
            SeqCheck::InOrder if waits => self.repairs.hold(raw()),
            SeqCheck::Stale if waits => {
                let released = self.repairs.fill(raw());
                self.tell_recovered(&event.source, &event.name, released.recovered);
                released
            }
            SeqCheck::Fresh | SeqCheck::InOrder | SeqCheck::Stale => return false,
        };
        self.carry_out(released);
        true
    }

    /// On the timer: repairs past their deadline given up, others asked for again.
    pub(super) fn expire_repairs(&mut self, now: Instant) {
        self.window.expire(now);
        if self.repairs.is_empty() {
            return;
        }
        let (asks, released) = self.repairs.expire(now);
        for ask in asks {
            self.send_ask(ask);
        }
        self.carry_out(released);
    }

    /// `source` is gone: nothing more will come from it.
    pub(super) fn repairs_source_gone(&mut self, source: &NodeId) {
        if !self.repairs.is_empty() {
            let released = self.repairs.source_gone(source);
            self.carry_out(released);
        }
    }

    /// A [`Control::Repair`] or [`Control::Repaired`]: for this node only if it is
    /// addressed here.
    pub(super) fn receive_repair_control(
        &mut self,
        now: Instant,
        source: &NodeId,
        message: Control,
    ) {
        match message {
            Control::Repair {
                epoch,
                to,
                of_epoch,
                name,
                missing,
            } if to == self.id.as_str() => {
                self.heard(now, source, epoch);
                self.answer_repair(source, of_epoch, &name, &missing);
            }
            Control::Repaired {
                epoch,
                to,
                name,
                events,
                gone,
                ..
            } if to == self.id.as_str() => {
                if self.presence.has_departed(source, epoch) {
                    return;
                }
                self.heard(now, source, epoch);
                let name: Arc<str> = name.into();
                let mut released = Released::default();
                for event in events {
                    released.merge(self.repairs.fill(RawEvent {
                        name: Arc::clone(&name),
                        payload: Bytes::from(event.payload),
                        source: source.clone(),
                        seq: event.seq,
                    }));
                }
                released.merge(self.repairs.gone((source, epoch), &name, &gone));
                self.tell_recovered(source, &name, released.recovered);
                self.carry_out(released);
            }
            _ => {}
        }
    }

    /// Sends `to` again what its window still holds of `missing` numbers of `name` (as
    /// this incarnation emitted them), and says which it cannot.
    fn answer_repair(&mut self, to: &NodeId, of_epoch: u64, name: &str, missing: &[[u64; 2]]) {
        // Another incarnation's events, or none kept: nothing of them is here.
        let kept = (self.recovering() && of_epoch == self.epoch)
            .then(|| self.window.kept_range(name))
            .flatten();
        let limit = self
            .caps
            .max_frame_bytes
            .saturating_sub(REQUEST_OVERHEAD + self.id.len() + to.len() + name.len());
        let now = self.now;
        let mut parts: Vec<Answer> = Vec::new();
        let mut part = Answer::new();
        'ranges: for &[first, last] in missing.iter().take(MAX_RANGES_ASKED) {
            if first == 0 || first > last {
                continue;
            }
            let Some((kept_first, kept_last)) = kept else {
                part.gone(first, last);
                continue;
            };
            if first < kept_first {
                part.gone(first, last.min(kept_first - 1));
            }
            for seq in first.max(kept_first)..=last.min(kept_last) {
                let Some(payload) = self.window.get(name, seq) else {
                    part.gone(seq, seq);
                    continue;
                };
                let size = payload.len() + REPAIRED_EVENT_OVERHEAD;
                if !self.repair_budget.take(size, now) {
                    // The rest is not answered now: the asker asks again.
                    break 'ranges;
                }
                if part.size + size > limit {
                    parts.push(std::mem::replace(&mut part, Answer::new()));
                }
                part.events.push(RepairedEvent {
                    seq,
                    payload: payload.to_vec(),
                });
                part.size += size;
            }
            if last > kept_last {
                part.gone(first.max(kept_last.saturating_add(1)), last);
            }
        }
        parts.push(part);
        let count = parts.len();
        for (i, part) in parts.into_iter().enumerate() {
            self.send_control(
                Control::Repaired {
                    epoch: self.epoch,
                    to: to.to_string(),
                    name: name.to_owned(),
                    events: part.events,
                    gone: part.gone,
                    done: i + 1 == count,
                },
                Destination::Peer(to.clone()),
            );
        }
    }

    fn send_ask(&mut self, ask: Ask) {
        let to = ask.source.clone();
        self.send_control(
            Control::Repair {
                epoch: self.epoch,
                to: ask.source.to_string(),
                of_epoch: ask.epoch,
                name: ask.name.to_string(),
                missing: ask.ranges,
            },
            Destination::Peer(to),
        );
    }

    /// Tells the local `$recovered` listeners that `count` events `name` from `source`
    /// came back.
    fn tell_recovered(&mut self, source: &NodeId, name: &str, count: u64) {
        if count > 0 {
            self.dispatch_system(
                RECOVERED,
                &Recovered {
                    peer: source.to_string(),
                    event: name.to_owned(),
                    count,
                },
            );
        }
    }

    /// Delivers what a repair let go, in order, and reports what could not be repaired.
    fn carry_out(&mut self, released: Released) {
        self.recovered += released.recovered;
        for event in released.events {
            self.deliver_now(event);
        }
        for (source, name, missed, before) in released.lost {
            self.report(Sequencing::gap_report(&source, &name, before, missed));
        }
        self.answer_leaving_peers();
    }

    /// Delivers an event to the listeners here that match it now.
    pub(super) fn deliver_now(&mut self, event: RawEvent) {
        let mut to = Targets::new();
        self.listeners
            .for_each_match(&event.name, |l| to.push(l.sink.clone()));
        if !to.is_empty() {
            self.dispatch_event(event, to);
        }
    }
}
