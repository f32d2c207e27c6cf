//! Retained last values inside the node: the values this node keeps (the last one per name
//! emitted with `emit_retained`), and the catch-ups of its listeners made `with_last`.
//!
//! A catch-up asks every peer known up for its values matching the listener's pattern and
//! waits until each has answered in full, is known down, or a deadline passes. Meanwhile
//! the live events for that listener are held back. When it ends the listener gets the
//! retained values first (sorted by source, then name), then the held events, less those a
//! retained value of the same source and name already covers (sequence number at most the
//! value's). Retained values never pass through the sequence tracker, so they cause no
//! gaps; the live events were checked as they arrived.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use foldhash::HashMap;

use crate::event::RawEvent;
use crate::name::validate_user_name;
use crate::node_id::NodeId;
use crate::pattern::Pattern;
use crate::protocol::RetainedValue;

/// The most live events held back for one listener while it catches up; one more ends the
/// catch-up early, with the peers that had not answered reported.
pub(crate) const MAX_HELD_EVENTS: usize = 65_536;

/// One value this node keeps.
struct Kept {
    seq: u64,
    payload: Bytes,
}

/// One listener's catch-up.
struct CatchUp {
    /// The number its request carries, which the answers carry back.
    request: u64,
    pattern: Pattern,
    /// The peers that have not answered in full.
    waiting: HashSet<NodeId>,
    deadline: Instant,
    /// The retained values gathered so far.
    values: Vec<RawEvent>,
    /// The live events held back meanwhile, in the order they came.
    held: Vec<RawEvent>,
}

/// A catch-up that ended: what its listener gets now, in this order, and who never
/// answered.
pub(crate) struct Finished {
    pub(crate) listener: u64,
    pub(crate) events: Vec<RawEvent>,
    /// The peers that had not answered in full, and why the catch-up ended without them.
    pub(crate) unanswered: Option<(Vec<NodeId>, &'static str)>,
}

/// What an answer did.
pub(crate) struct Answered {
    /// The catch-up it completed.
    pub(crate) finished: Option<Finished>,
    /// Values refused: names that are not valid or that the pattern does not match.
    pub(crate) refused: usize,
}

/// The node's retained values and catch-ups.
#[derive(Default)]
pub(crate) struct Retained {
    own: HashMap<Arc<str>, Kept>,
    catch_ups: HashMap<u64, CatchUp>,
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

    /// Starts `listener`'s catch-up on `pattern`, with this node's (`me`) own values and
    /// the answers of `peers` to come until `deadline`. Returns the request's number and,
    /// when there is no peer to wait for, the catch-up already finished.
    pub(crate) fn start(
        &mut self,
        listener: u64,
        pattern: Pattern,
        me: &NodeId,
        peers: HashSet<NodeId>,
        deadline: Instant,
    ) -> (u64, Option<Finished>) {
        self.next_request += 1;
        let request = self.next_request;
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
        let no_peers = peers.is_empty();
        self.catch_ups.insert(
            listener,
            CatchUp {
                request,
                pattern,
                waiting: peers,
                deadline,
                values,
                held: Vec::new(),
            },
        );
        let finished = no_peers.then(|| self.finish(listener, "")).flatten();
        (request, finished)
    }

    /// Whether any listener is catching up (the slow paths of emit and receive are taken
    /// only then).
    pub(crate) fn catching_up(&self) -> bool {
        !self.catch_ups.is_empty()
    }

    /// Whether `listener` is catching up.
    pub(crate) fn is_catching_up(&self, listener: u64) -> bool {
        self.catch_ups.contains_key(&listener)
    }

    /// Holds a live event back for `listener`; past [`MAX_HELD_EVENTS`] its catch-up ends
    /// at once.
    pub(crate) fn hold(&mut self, listener: u64, event: RawEvent) -> Option<Finished> {
        let catch_up = self.catch_ups.get_mut(&listener)?;
        catch_up.held.push(event);
        (catch_up.held.len() > MAX_HELD_EVENTS)
            .then(|| self.finish(listener, "too many live events came while waiting for them"))
            .flatten()
    }

    /// An answer from `from` to request `request`: its values are gathered (those whose
    /// names the pattern does not match are refused) and, when `done`, `from` is no longer
    /// waited for.
    pub(crate) fn answer(
        &mut self,
        from: &NodeId,
        request: u64,
        values: Vec<RetainedValue>,
        done: bool,
    ) -> Answered {
        let Some((&listener, catch_up)) = self
            .catch_ups
            .iter_mut()
            .find(|(_, c)| c.request == request)
        else {
            // Late (the catch-up ended) or not ours.
            return Answered {
                finished: None,
                refused: 0,
            };
        };
        if !catch_up.waiting.contains(from) {
            return Answered {
                finished: None,
                refused: 0,
            };
        }
        let mut refused = 0;
        for value in values {
            if validate_user_name(&value.name).is_err() || !catch_up.pattern.matches(&value.name) {
                refused += 1;
                continue;
            }
            catch_up.values.push(RawEvent {
                name: value.name.into(),
                payload: Bytes::from(value.payload),
                source: from.clone(),
                seq: value.seq,
            });
        }
        if done {
            catch_up.waiting.remove(from);
        }
        let finished = catch_up
            .waiting
            .is_empty()
            .then(|| self.finish(listener, ""))
            .flatten();
        Answered { finished, refused }
    }

    /// `peer` is down: no catch-up waits for it any more.
    pub(crate) fn peer_lost(&mut self, peer: &NodeId) -> Vec<Finished> {
        let mut ended = Vec::new();
        for (listener, catch_up) in &mut self.catch_ups {
            if catch_up.waiting.remove(peer) && catch_up.waiting.is_empty() {
                ended.push(*listener);
            }
        }
        ended
            .into_iter()
            .filter_map(|listener| self.finish(listener, ""))
            .collect()
    }

    /// Ends the catch-ups whose deadline passed by `now`.
    pub(crate) fn expire(&mut self, now: Instant) -> Vec<Finished> {
        let ended: Vec<u64> = self
            .catch_ups
            .iter()
            .filter(|(_, c)| c.deadline <= now)
            .map(|(listener, _)| *listener)
            .collect();
        ended
            .into_iter()
            .filter_map(|listener| self.finish(listener, "they did not answer in time"))
            .collect()
    }

    /// The earliest deadline of a catch-up.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.catch_ups.values().map(|c| c.deadline).min()
    }

    /// Ends every catch-up: the node closed.
    pub(crate) fn close(&mut self) -> Vec<Finished> {
        let listeners: Vec<u64> = self.catch_ups.keys().copied().collect();
        listeners
            .into_iter()
            .filter_map(|listener| self.finish(listener, "this node closed first"))
            .collect()
    }

    /// Drops `listener`'s catch-up (the listener is gone).
    pub(crate) fn forget(&mut self, listener: u64) {
        self.catch_ups.remove(&listener);
    }

    /// Ends `listener`'s catch-up: its values sorted, then the held events that no value
    /// covers. `why` says why the peers still waited for are left out.
    fn finish(&mut self, listener: u64, why: &'static str) -> Option<Finished> {
        let catch_up = self.catch_ups.remove(&listener)?;
        let mut events = catch_up.values;
        events.sort_by(|a, b| (&a.source, &a.name).cmp(&(&b.source, &b.name)));
        let covered: HashMap<(&NodeId, &str), u64> = events
            .iter()
            .map(|e| ((&e.source, &*e.name), e.seq))
            .collect();
        let live: Vec<RawEvent> = catch_up
            .held
            .into_iter()
            .filter(|e| {
                // Unnumbered events (from plain clients) are never covered.
                e.seq == 0
                    || covered
                        .get(&(&e.source, &*e.name))
                        .is_none_or(|&seq| e.seq > seq)
            })
            .collect();
        events.extend(live);
        let unanswered = (!catch_up.waiting.is_empty()).then(|| {
            let mut peers: Vec<NodeId> = catch_up.waiting.into_iter().collect();
            peers.sort();
            (peers, why)
        });
        Some(Finished {
            listener,
            events,
            unanswered,
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
    fn values_come_first_then_the_live_events_they_do_not_cover() {
        let mut retained = Retained::default();
        retained.keep("t.a".into(), 3, Bytes::from_static(b"\x01"));
        retained.keep("u.a".into(), 1, Bytes::from_static(b"\x01"));
        let now = Instant::now();
        let peers = HashSet::from([id("p"), id("q")]);
        let pattern = Pattern::new("t.+").expect("valid");
        let (request, finished) = retained.start(7, pattern, &id("me"), peers, now);
        assert!(finished.is_none(), "peers to wait for");
        assert!(retained.is_catching_up(7) && retained.catching_up());
        assert!(retained.hold(7, event("p", "t.x", 4)).is_none());
        assert!(retained.hold(7, event("p", "t.x", 5)).is_none());
        assert!(retained.hold(7, event("q", "t.y", 0)).is_none());
        let answered = retained.answer(&id("p"), request, vec![value("t.x", 4)], false);
        assert!(answered.finished.is_none(), "p is not done");
        let answered = retained.answer(&id("p"), request, vec![value("v.x", 1)], true);
        assert_eq!(answered.refused, 1, "a name the pattern does not match");
        assert!(
            retained
                .answer(&id("other"), request, vec![value("t.z", 1)], true)
                .finished
                .is_none(),
            "a node not asked is ignored"
        );
        let finished = retained
            .answer(&id("q"), request, vec![value("t.y", 9)], true)
            .finished
            .expect("all answered");
        assert_eq!(finished.listener, 7);
        assert!(finished.unanswered.is_none());
        let s = |a: &str, b: &str, n| (a.to_owned(), b.to_owned(), n);
        assert_eq!(
            summary(&finished.events),
            [
                s("me", "t.a", 3),
                s("p", "t.x", 4),
                s("q", "t.y", 9),
                s("p", "t.x", 5),
                s("q", "t.y", 0),
            ]
        );
        assert!(!retained.catching_up());
    }

    #[test]
    fn a_catch_up_ends_when_its_peers_are_lost_or_its_deadline_passes() {
        let mut retained = Retained::default();
        let now = Instant::now();
        let pattern = Pattern::new("#").expect("valid");
        let (_, finished) = retained.start(1, pattern.clone(), &id("me"), HashSet::new(), now);
        assert!(finished.is_some_and(|f| f.events.is_empty() && f.unanswered.is_none()));
        retained.start(2, pattern.clone(), &id("me"), HashSet::from([id("p")]), now);
        let later = now + Duration::from_secs(1);
        retained.start(
            3,
            pattern,
            &id("me"),
            HashSet::from([id("p"), id("q")]),
            later,
        );
        assert_eq!(retained.next_deadline(), Some(now));
        let lost = retained.peer_lost(&id("p"));
        assert_eq!(lost.iter().map(|f| f.listener).collect::<Vec<_>>(), [2]);
        let expired = retained.expire(later);
        assert_eq!(expired.len(), 1);
        assert_eq!(
            expired[0].unanswered,
            Some((vec![id("q")], "they did not answer in time"))
        );
        assert_eq!(retained.next_deadline(), None);
    }

    #[test]
    fn too_many_held_events_end_the_catch_up() {
        let mut retained = Retained::default();
        let pattern = Pattern::new("#").expect("valid");
        retained.start(
            1,
            pattern,
            &id("me"),
            HashSet::from([id("p")]),
            Instant::now(),
        );
        for seq in 1..=MAX_HELD_EVENTS as u64 {
            assert!(retained.hold(1, event("p", "a", seq)).is_none());
        }
        let finished = retained.hold(1, event("p", "a", 0)).expect("ended");
        assert_eq!(finished.events.len(), MAX_HELD_EVENTS + 1);
        assert!(finished.unanswered.is_some());
        assert!(retained.clear("absent").then_some(()).is_none());
    }
}
