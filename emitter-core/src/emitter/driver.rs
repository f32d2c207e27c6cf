//! The receive loop: one task per emitter that takes what the transport received, runs the
//! presence protocol and its timers, checks sequence numbers and queues events for the
//! listeners. It never waits on a listener.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::emitter::event::{PEER_DOWN, PEER_UP, PeerChange, RawEvent};
use crate::emitter::inner::Inner;
use crate::frame::{EventFrame, Frame};
use crate::node_id::NodeId;
use crate::protocol::{Action, Control, MAX_MARKS_PER_MESSAGE, SeqCheck, SequenceMark};
use crate::report::{ErrorKind, ErrorReport};
use crate::transport::Destination;
use crate::transport::Incoming;

/// How many arrived items the loop takes per batch before it checks its timers and
/// cancellation again.
const DRAIN_BATCH: usize = 256;

pub(crate) async fn run(inner: Arc<Inner>) {
    let hello = inner.presence.lock().start(Instant::now());
    inner.apply(hello);
    let deadline = inner.presence.lock().next_deadline();
    let sleep = tokio::time::sleep_until(deadline.into());
    tokio::pin!(sleep);
    // Reused for every batch: taking what has arrived costs no allocation.
    let mut batch = Vec::with_capacity(DRAIN_BATCH);
    let mut marks = tokio::time::interval(
        inner
            .config
            .sequence_mark_interval
            .max(Duration::from_millis(1)),
    );
    marks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = inner.cancel.cancelled() => break,
            () = &mut sleep => {
                let actions = inner.presence.lock().tick(Instant::now());
                inner.apply(actions);
                let next = inner.presence.lock().next_deadline();
                sleep.as_mut().reset(next.into());
            }
            _ = marks.tick() => inner.announce_sequences(),
            open = inner.transport.recv_many(&mut batch, DRAIN_BATCH) => {
                if !open {
                    if !inner.cancel.is_cancelled() {
                        inner.report(ErrorReport::new(
                            ErrorKind::Network,
                            1,
                            "the transport stopped; this emitter receives nothing more",
                        ));
                    }
                    break;
                }
                for incoming in batch.drain(..) {
                    inner.handle_incoming(incoming);
                }
            }
        }
    }
    tracing::debug!(id = %inner.id, "receive loop ended");
}

impl Inner {
    pub(crate) fn handle_incoming(&self, incoming: Incoming) {
        match incoming {
            Incoming::Frame { from, frame } => {
                let source = frame.source();
                if self.caps.authenticated && from.as_ref() != Some(source) {
                    let peer = from
                        .as_ref()
                        .map_or("an unauthenticated peer", |f| f.as_str());
                    return self.report(
                        ErrorReport::new(
                            ErrorKind::Refused,
                            1,
                            format!("frame claiming source `{source}` came from {peer}; dropped"),
                        )
                        .with_peer(peer),
                    );
                }
                if *source == self.id {
                    return;
                }
                match frame {
                    Frame::Event(event) => self.receive_event(event),
                    Frame::Control(control) => match Control::decode(&control.body) {
                        Ok(message) => {
                            if let Control::Sequences { epoch, last } = &message {
                                self.settle_sequences(&control.source, *epoch, last);
                            }
                            let leaving = matches!(message, Control::Bye { .. });
                            let actions = self.presence.lock().receive(
                                &control.source,
                                message,
                                Instant::now(),
                            );
                            self.apply(actions);
                            if leaving {
                                // Gone for good: its sequence state is of no more use.
                                self.seq_in.lock().forget_source(&control.source);
                            }
                        }
                        Err(e) => self.report(
                            ErrorReport::new(ErrorKind::Deserialization, 1, e.to_string())
                                .with_peer(control.source.as_str()),
                        ),
                    },
                }
            }
            Incoming::PeerUp(peer) => {
                let actions = self.presence.lock().peer_connected(&peer);
                self.apply(actions);
            }
            Incoming::PeerDown(peer) => {
                let actions = self.presence.lock().peer_lost(&peer);
                self.apply(actions);
            }
            Incoming::Report(report) => self.report(report),
        }
    }

    fn receive_event(&self, event: EventFrame) {
        // Known peers are kept alive by their heartbeats; only a stranger needs work here.
        let actions = {
            let mut presence = self.presence.lock();
            if presence.is_known(&event.source, event.epoch) {
                Vec::new()
            } else {
                presence.heard_from(&event.source, event.epoch, Instant::now())
            }
        };
        if !actions.is_empty() {
            self.apply(actions);
        }
        let raw = RawEvent {
            name: event.name,
            payload: event.payload,
            source: event.source,
            seq: event.seq,
        };
        // The sequence is checked at the first matching listener, and only if there is
        // one: events nobody here listens to are not tracked.
        let mut check = None;
        let registry = self.registry.read();
        // The last listener gets the event itself, the others copies: with one listener,
        // nothing is cloned.
        let mut last = None;
        registry.for_each_match(&raw.name, |entry| {
            let verdict = *check.get_or_insert_with(|| {
                self.seq_in
                    .lock()
                    .observe(&raw.source, event.epoch, &raw.name, raw.seq)
            });
            if verdict != SeqCheck::Stale
                && let Some(previous) = last.replace(entry)
            {
                previous.sink.queue().push(raw.clone());
            }
        });
        let gap = match check {
            Some(SeqCheck::Gap(missed)) => Some(
                ErrorReport::new(
                    ErrorKind::Gap,
                    missed,
                    format!(
                        "{missed} event(s) `{}` from `{}` were lost before seq {}",
                        raw.name, raw.source, raw.seq
                    ),
                )
                .with_peer(raw.source.as_str())
                .with_event(&*raw.name),
            ),
            Some(SeqCheck::Stale) => {
                tracing::debug!(source = %raw.source, name = %raw.name, seq = raw.seq, "dropped a stale or duplicate event");
                None
            }
            _ => None,
        };
        if let Some(entry) = last {
            entry.sink.queue().push(raw);
        }
        drop(registry);
        if let Some(report) = gap {
            self.report(report);
        }
    }

    /// Tells the bus the last sequence number of every name due for it (emitted since the
    /// last tick, or emitted a while ago and being repeated), so receivers notice events
    /// lost at the tail of a burst; marks the transport refused are tried again next tick.
    pub(crate) fn announce_sequences(&self) {
        // Under the counter's lock: every number announced has its frame queued before
        // the announcement (see `emit_payload`).
        let mut counter = self.seq_out.lock();
        let last = counter.take_marks();
        if !last.is_empty() {
            let message = Control::Sequences {
                epoch: self.epoch,
                last,
            };
            if !self.send_control(&message, Destination::All)
                && let Control::Sequences { last, .. } = &message
            {
                counter.unsent(last);
            }
        }
    }

    /// Reports, as gaps, events a sender says it emitted that never arrived here.
    fn settle_sequences(&self, source: &NodeId, epoch: u64, marks: &[SequenceMark]) {
        let lost: Vec<(&str, u64)> = {
            let mut tracker = self.seq_in.lock();
            marks
                .iter()
                .take(MAX_MARKS_PER_MESSAGE)
                .filter_map(|m| {
                    tracker
                        .settle(source, epoch, &m.name, m.seq)
                        .map(|missed| (m.name.as_str(), missed))
                })
                .collect()
        };
        for (name, missed) in lost {
            self.report(
                ErrorReport::new(
                    ErrorKind::Gap,
                    missed,
                    format!("{missed} event(s) `{name}` from `{source}` were lost (the last ones it sent)"),
                )
                .with_peer(source.as_str())
                .with_event(name),
            );
        }
    }

    /// Carries out what the presence protocol asked for.
    pub(crate) fn apply(&self, actions: Vec<Action>) {
        let mut counts_changed = false;
        for action in actions {
            match action {
                Action::Send { to, message } => {
                    self.send_control(&message, to);
                }
                Action::PeerUp(peer) => {
                    tracing::info!(%peer, "peer up");
                    self.dispatch_system(
                        PEER_UP,
                        &PeerChange {
                            peer: peer.to_string(),
                        },
                    );
                }
                Action::PeerDown(peer) => {
                    // Its sequence state is kept: if the same incarnation comes back (a cut
                    // network), what it emitted meanwhile shows up as a reported gap.
                    tracing::info!(%peer, "peer down");
                    self.dispatch_system(
                        PEER_DOWN,
                        &PeerChange {
                            peer: peer.to_string(),
                        },
                    );
                }
                Action::Interest {
                    peer,
                    pattern,
                    count,
                } => {
                    self.remote.write().apply(&peer, &pattern, count);
                    counts_changed = true;
                }
                Action::Report(report) => self.report(report),
            }
        }
        if counts_changed {
            self.notify_counts();
        }
    }
}
