//! Retained last values inside the node: the values this node keeps (the last one per name
//! emitted with `emit_retained`), and the catch-ups of its listeners made `with_last`.
//!
//! A listener made `with_last` gets this node's own values at once. Then, for each peer —
//! those known up when it is added, and every peer that comes up later — it catches up:
//! the peer is asked for its values matching the pattern, and the live events from that
//! peer are held back until it has answered in full, is known down, or a deadline passes.
//! The listener then gets the peer's values (sorted by name), then the held events, less
//! those a value already covers (same name, sequence number at most the value's). Events
//! from other sources flow meanwhile. Retained values never pass through the sequence
//! tracker, so they cause no gaps; the live events were checked as they arrived.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use foldhash::HashMap;

use crate::event::RawEvent;
use crate::name::validate_user_name;
use crate::node_id::NodeId;
use crate::pattern::Pattern;
use crate::protocol::RetainedValue;

/// The most live events held back for one listener from one peer while it catches up; one
/// more ends that catch-up early, reported.
pub(crate) const MAX_HELD_EVENTS: usize = 65_536;

/// One value this node keeps.
struct Kept {
    seq: u64,
    payload: Bytes,
}

/// One listener's catch-up with one peer.
struct CatchUp {
    /// The number the request carries, which the answers carry back.
    request: u64,
    deadline: Instant,
    /// The peer's incarnation, once it answered.
    epoch: Option<u64>,
    /// The peer's values gathered so far.
    values: Vec<RawEvent>,
    /// The peer's live events held back meanwhile, in the order they came.
    held: Vec<RawEvent>,
}

/// A catch-up that ended: what its listener gets now, in this order.
pub(crate) struct Finished {
    pub(crate) listener: u64,
    pub(crate) peer: NodeId,
    /// The peer's incarnation, if it answered.
    pub(crate) epoch: Option<u64>,
    /// The retained values first, then the live events held.
    pub(crate) events: Vec<RawEvent>,
    /// How many of `events` are retained values.
    pub(crate) values: usize,
    /// Why it ended before the peer answered in full, if it did.
    pub(crate) cut_short: Option<&'static str>,
}

/// What an answer did.
pub(crate) struct Answered {
    /// The catch-ups it completed.
    pub(crate) finished: Vec<Finished>,
    /// Values refused: names that are not valid or that the pattern does not match.
    pub(crate) refused: usize,
}

/// The node's retained values and catch-ups.
#[derive(Default)]
pub(crate) struct Retained {
    own: HashMap<Arc<str>, Kept>,
    /// The listeners made `with_last`, with their patterns.
    listeners: HashMap<u64, Pattern>,
    /// By listener and peer.
    catch_ups: HashMap<(u64, NodeId), CatchUp>,
    next_request: u64,
}

impl Retained {
    // ---- this node's values ------------------------------------------------------------

    /// Keeps `payload` as the last value of `name`, emitted as number `seq`.
    pub(crate) fn keep(&mut self, name: Arc<str>, seq: u64, payload: Bytes) {
        self.own.insert(name, Kept { seq, payload });
    }

    /// Forgets the value of `name`; whether there was one.
    pub(crate) fn clear(&mut self, name: &str) -> bool {
        self.own.remove(name).is_some()
    }

    /// This node's values whose names `pattern` matches, sorted by name.
    pub(crate) fn own_matching(&self, pattern: &Pattern) -> Vec<RetainedValue> {
        let mut values: Vec<RetainedValue> = self
            .own
            .iter()
            .filter(|(name, _)| pattern.matches(name))
            .map(|(name, kept)| RetainedValue {
                name: name.to_string(),
                seq: kept.seq,
                payload: kept.payload.to_vec(),
            })
            .collect();
        values.sort_by(|a, b| a.name.cmp(&b.name));
        values
    }

    // ---- catch-ups ---------------------------------------------------------------------

    /// Registers `listener` on `pattern` as made `with_last`; returns this node's (`me`)
    /// values for it, to deliver now.
    pub(crate) fn add_listener(
        &mut self,
        listener: u64,
        pattern: Pattern,
        me: &NodeId,
    ) -> Vec<RawEvent> {
        let values = self
            .own_matching(&pattern)
            .into_iter()
            .map(|v| RawEvent {
                name: v.name.into(),
                payload: Bytes::from(v.payload),
                source: me.clone(),
                seq: v.seq,
            })
            .collect();
        self.listeners.insert(listener, pattern);
        values
    }

    /// Starts the catch-ups of every listener made `with_last` with `peer` (which just came
    /// up), until `deadline`: returns the request's number and pattern for each, to send.
    pub(crate) fn peer_up(&mut self, peer: &NodeId, deadline: Instant) -> Vec<(u64, Pattern)> {
        let listeners: Vec<(u64, Pattern)> = self
            .listeners
            .iter()
            .map(|(id, pattern)| (*id, pattern.clone()))
            .collect();
        listeners
            .into_iter()
            .map(|(listener, pattern)| (self.start(listener, peer.clone(), deadline), pattern))
            .collect()
    }

    /// Starts `listener`'s catch-up with each of `peers` under one request number, which it
    /// returns.
    pub(crate) fn start_with(
        &mut self,
        listener: u64,
        peers: impl IntoIterator<Item = NodeId>,
        deadline: Instant,
    ) -> u64 {
        self.next_request += 1;
        let request = self.next_request;
        for peer in peers {
            self.insert(listener, peer, request, deadline);
        }
        request
    }

    fn start(&mut self, listener: u64, peer: NodeId, deadline: Instant) -> u64 {
        self.next_request += 1;
        let request = self.next_request;
        self.insert(listener, peer, request, deadline);
        request
    }

    fn insert(&mut self, listener: u64, peer: NodeId, request: u64, deadline: Instant) {
        self.catch_ups.insert(
            (listener, peer),
            CatchUp {
                request,
                deadline,
                epoch: None,
                values: Vec::new(),
                held: Vec::new(),
            },
        );
    }

    /// Whether any listener is catching up (the slow path of receive is taken only then).
    pub(crate) fn catching_up(&self) -> bool {
        !self.catch_ups.is_empty()
    }

    /// Whether `listener` is catching up with `peer`.
    pub(crate) fn is_catching_up(&self, listener: u64, peer: &NodeId) -> bool {
        self.catch_ups.contains_key(&(listener, peer.clone()))
    }

    /// Holds a live event from `event.source` back for `listener`; past
    /// [`MAX_HELD_EVENTS`] that catch-up ends at once.
    pub(crate) fn hold(&mut self, listener: u64, event: RawEvent) -> Option<Finished> {
        let key = (listener, event.source.clone());
        let catch_up = self.catch_ups.get_mut(&key)?;
        catch_up.held.push(event);
        (catch_up.held.len() > MAX_HELD_EVENTS)
            .then(|| {
                self.finish(
                    &key,
                    Some("too many live events came while waiting for them"),
                )
            })
            .flatten()
    }

    /// An answer from `from` to request `request`: its values are gathered (those whose
    /// names the pattern does not match are refused) and, when `done`, the catch-up ends.
    pub(crate) fn answer(
        &mut self,
        from: &NodeId,
        epoch: u64,
        request: u64,
        values: &[RetainedValue],
        done: bool,
    ) -> Answered {
        let keys: Vec<(u64, NodeId)> = self
            .catch_ups
            .iter()
            .filter(|((_, peer), c)| c.request == request && peer == from)
            .map(|(key, _)| key.clone())
            .collect();
        let mut refused = 0;
        let mut finished = Vec::new();
        for key in keys {
            let Some(pattern) = self.listeners.get(&key.0) else {
                continue;
            };
            let Some(catch_up) = self.catch_ups.get_mut(&key) else {
                continue;
            };
            catch_up.epoch = Some(epoch);
            for value in values {
                if validate_user_name(&value.name).is_err() || !pattern.matches(&value.name) {
                    refused += 1;
                    continue;
                }
                catch_up.values.push(RawEvent {
                    name: value.name.as_str().into(),
                    payload: Bytes::copy_from_slice(&value.payload),
                    source: from.clone(),
                    seq: value.seq,
                });
            }
            if done {
                finished.extend(self.finish(&key, None));
            }
        }
        Answered { finished, refused }
    }

    /// `peer` is down: its catch-ups end with what they gathered and held.
    pub(crate) fn peer_lost(&mut self, peer: &NodeId) -> Vec<Finished> {
        let keys: Vec<(u64, NodeId)> = self
            .catch_ups
            .keys()
            .filter(|(_, p)| p == peer)
            .cloned()
            .collect();
        keys.iter()
            .filter_map(|key| self.finish(key, None))
            .collect()
    }

    /// Ends the catch-ups whose deadline passed by `now`.
    pub(crate) fn expire(&mut self, now: Instant) -> Vec<Finished> {
        let keys: Vec<(u64, NodeId)> = self
            .catch_ups
            .iter()
            .filter(|(_, c)| c.deadline <= now)
            .map(|(key, _)| key.clone())
            .collect();
        keys.iter()
            .filter_map(|key| self.finish(key, Some("it did not answer in time")))
            .collect()
    }

    /// The earliest deadline of a catch-up.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.catch_ups.values().map(|c| c.deadline).min()
    }

    /// Ends every catch-up: the node closed.
    pub(crate) fn close(&mut self) -> Vec<Finished> {
        let keys: Vec<(u64, NodeId)> = self.catch_ups.keys().cloned().collect();
        keys.iter()
            .filter_map(|key| self.finish(key, Some("this node closed first")))
            .collect()
    }

    /// Drops `listener` and its catch-ups (the listener is gone).
    pub(crate) fn forget(&mut self, listener: u64) {
        self.listeners.remove(&listener);
        self.catch_ups.retain(|(l, _), _| *l != listener);
    }

    /// Ends a catch-up: its values sorted by name, then the held events that no value
    /// covers.
    fn finish(&mut self, key: &(u64, NodeId), cut_short: Option<&'static str>) -> Option<Finished> {
        let catch_up = self.catch_ups.remove(key)?;
        let mut events = catch_up.values;
        events.sort_by(|a, b| a.name.cmp(&b.name));
        let values = events.len();
        let covered: HashMap<&str, u64> = events.iter().map(|e| (&*e.name, e.seq)).collect();
        let live: Vec<RawEvent> = catch_up
            .held
            .into_iter()
            .filter(|e| {
                // Unnumbered events (from plain clients) are never covered.
                e.seq == 0 || covered.get(&*e.name).is_none_or(|&seq| e.seq > seq)
            })
            .collect();
        events.extend(live);
        Some(Finished {
            listener: key.0,
            peer: key.1.clone(),
            epoch: catch_up.epoch,
            events,
            values,
            cut_short,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn id(s: &str) -> NodeId {
        NodeId::new(s).expect("valid")
    }

    fn event(source: &str, name: &str, seq: u64) -> RawEvent {
        RawEvent {
            name: name.into(),
            payload: Bytes::from(vec![u8::try_from(seq).unwrap_or(0)]),
            source: id(source),
            seq,
        }
    }

    fn value(name: &str, seq: u64) -> RetainedValue {
        RetainedValue {
            name: name.into(),
            seq,
            payload: vec![1],
        }
    }

    fn summary(events: &[RawEvent]) -> Vec<(String, String, u64)> {
        events
            .iter()
            .map(|e| (e.source.to_string(), e.name.to_string(), e.seq))
            .collect()
    }

    #[test]
    fn a_peers_values_come_first_then_its_live_events_they_do_not_cover() {
        let mut retained = Retained::default();
        retained.keep("t.a".into(), 3, Bytes::from_static(b"\x01"));
        retained.keep("u.a".into(), 1, Bytes::from_static(b"\x01"));
        let now = Instant::now();
        let pattern = Pattern::new("t.+").expect("valid");
        let own = retained.add_listener(7, pattern, &id("me"));
        assert_eq!(summary(&own), [("me".to_owned(), "t.a".to_owned(), 3)]);
        let request = retained.start_with(7, [id("p"), id("q")], now);
        assert!(retained.is_catching_up(7, &id("p")) && retained.catching_up());
        assert!(!retained.is_catching_up(7, &id("me")));
        assert!(retained.hold(7, event("p", "t.x", 4)).is_none());
        assert!(retained.hold(7, event("p", "t.x", 5)).is_none());
        assert!(retained.hold(7, event("p", "t.y", 0)).is_none());
        let answered = retained.answer(&id("p"), 1, request, &[value("t.x", 4)], false);
        assert!(answered.finished.is_empty(), "p is not done");
        let answered = retained.answer(&id("p"), 1, request, &[value("v.x", 1)], true);
        assert_eq!(answered.refused, 1, "a name the pattern does not match");
        let finished = &answered.finished[0];
        assert_eq!((finished.listener, finished.cut_short), (7, None));
        let s = |a: &str, b: &str, n| (a.to_owned(), b.to_owned(), n);
        assert_eq!(
            summary(&finished.events),
            [s("p", "t.x", 4), s("p", "t.x", 5), s("p", "t.y", 0)],
            "the value, then the held events it does not cover"
        );
        assert!(
            retained
                .answer(&id("other"), 1, request, &[value("t.z", 1)], true)
                .finished
                .is_empty(),
            "a node not asked is ignored"
        );
        assert!(retained.catching_up(), "q has not answered");
        let asked = retained.peer_up(&id("r"), now);
        assert_eq!(asked.len(), 1, "a peer that comes up is asked too");
        retained.forget(7);
        assert!(!retained.catching_up());
        assert!(retained.peer_up(&id("s"), now).is_empty());
    }

    #[test]
    fn a_catch_up_ends_when_its_peer_is_lost_or_its_deadline_passes() {
        let mut retained = Retained::default();
        let now = Instant::now();
        let later = now + Duration::from_secs(1);
        let pattern = Pattern::new("#").expect("valid");
        assert!(retained.add_listener(1, pattern, &id("me")).is_empty());
        retained.start_with(1, [id("p")], now);
        retained.start_with(1, [id("q")], later);
        assert!(retained.hold(1, event("p", "a", 1)).is_none());
        assert_eq!(retained.next_deadline(), Some(now));
        let lost = retained.peer_lost(&id("p"));
        assert_eq!(lost.len(), 1);
        assert_eq!(
            summary(&lost[0].events).len(),
            1,
            "what was held is delivered"
        );
        assert!(
            lost[0].cut_short.is_none(),
            "a peer known down has nothing more"
        );
        let expired = retained.expire(later);
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].peer, id("q"));
        assert_eq!(expired[0].cut_short, Some("it did not answer in time"));
        assert_eq!(retained.next_deadline(), None);
    }

    #[test]
    fn too_many_held_events_end_the_catch_up() {
        let mut retained = Retained::default();
        let pattern = Pattern::new("#").expect("valid");
        retained.add_listener(1, pattern, &id("me"));
        retained.start_with(1, [id("p")], Instant::now());
        for seq in 1..=MAX_HELD_EVENTS as u64 {
            assert!(retained.hold(1, event("p", "a", seq)).is_none());
        }
        let finished = retained.hold(1, event("p", "a", 0)).expect("ended");
        assert_eq!(finished.events.len(), MAX_HELD_EVENTS + 1);
        assert!(finished.cut_short.is_some());
        assert!(!retained.clear("absent"));
    }
}
