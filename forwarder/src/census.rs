//! Which nodes are on the bus, as the forwarder sees their presence traffic: every node
//! heartbeats on the control topic, so the ids heard saying hello or heartbeat there lately
//! (less those that said goodbye) are the bus. Other control messages are not decoded. A joining client is told them with its first subscription
//! confirmation, so it knows how many peers to wait for before it is ready.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use demitter_core::protocol::Control;

/// How long an id counts after it was last heard: every node's heartbeat interval (1 s by
/// default) fits many times over. A node that crashed counts this long at most; a client
/// that waits for it waits no longer than its own presence rules say.
pub(crate) const CENSUS_WINDOW: Duration = Duration::from_secs(10);

/// The most ids the census holds: beyond, new ones are not counted (the census is a hint;
/// a client then waits for what it hears).
const MAX_COUNTED: usize = 65_536;

/// The ids heard on the control topic: per id, each incarnation (epoch) with when.
#[derive(Debug, Default)]
pub(crate) struct Census {
    heard: HashMap<Bytes, HashMap<u64, Instant>>,
    /// Incarnations held, over all ids.
    held: usize,
}

impl Census {
    /// A control message from `origin` (its body `body`) passed at `now`. One that is not
    /// presence, or does not decode, counts nothing.
    pub(crate) fn heard(&mut self, origin: Bytes, body: &[u8], now: Instant) {
        if !Control::is_presence(body) {
            return;
        }
        let Ok(message) = Control::decode(body) else {
            return;
        };
        let epoch = message.epoch();
        if matches!(message, Control::Bye { .. }) {
            // That incarnation left; another with the id (a duplicate) may still be there.
            if let Some(epochs) = self.heard.get_mut(&origin) {
                self.held -= usize::from(epochs.remove(&epoch).is_some());
                if epochs.is_empty() {
                    self.heard.remove(&origin);
                }
            }
            return;
        }
        let known = self
            .heard
            .get(&origin)
            .is_some_and(|epochs| epochs.contains_key(&epoch));
        if !known && self.held >= MAX_COUNTED {
            self.expire(now);
            if self.held >= MAX_COUNTED {
                return;
            }
        }
        self.held += usize::from(!known);
        self.heard.entry(origin).or_default().insert(epoch, now);
    }

    /// The census frame of the ids heard within the window
    /// ([`census`](demitter_zmq::wire::census)), each once per incarnation heard: a client
    /// takes its own out once, and still counts a live node with its id.
    pub(crate) fn encode(&mut self, now: Instant) -> Bytes {
        self.expire(now);
        demitter_zmq::wire::census(
            self.heard
                .iter()
                .flat_map(|(id, epochs)| std::iter::repeat_n(&id[..], epochs.len())),
        )
    }

    fn expire(&mut self, now: Instant) {
        let mut held = 0;
        self.heard.retain(|_, epochs| {
            epochs.retain(|_, at| now.saturating_duration_since(*at) < CENSUS_WINDOW);
            held += epochs.len();
            !epochs.is_empty()
        });
        self.held = held;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(census: &mut Census, now: Instant) -> Vec<String> {
        let mut ids: Vec<String> = demitter_zmq::wire::decode_census(&census.encode(now))
            .expect("decodes")
            .expect("a census")
            .iter()
            .map(ToString::to_string)
            .collect();
        ids.sort();
        ids
    }

    #[test]
    fn counts_whom_it_heard_lately_less_goodbyes() {
        let now = Instant::now();
        let mut census = Census::default();
        let heartbeat = Control::Heartbeat {
            epoch: 1,
            version: 0,
            moved: 0,
        }
        .encode();
        census.heard(Bytes::from_static(b"a"), &heartbeat, now);
        census.heard(Bytes::from_static(b"b"), &heartbeat, now);
        census.heard(
            Bytes::from_static(b"c"),
            &heartbeat,
            now + Duration::from_secs(5),
        );
        assert_eq!(ids(&mut census, now), ["a", "b", "c"]);
        census.heard(
            Bytes::from_static(b"b"),
            &Control::Bye { epoch: 1 }.encode(),
            now,
        );
        assert_eq!(ids(&mut census, now), ["a", "c"]);
        assert_eq!(ids(&mut census, now + CENSUS_WINDOW), ["c"], "a is stale");
        census.heard(Bytes::from_static(b"c"), b"\xc1 not a message", now);
        // Only presence counts; a message cut short after its tag does not decode.
        census.heard(
            Bytes::from_static(b"d"),
            &Control::Resync { epoch: 1 }.encode(),
            now + CENSUS_WINDOW,
        );
        census.heard(
            Bytes::from_static(b"e"),
            &heartbeat[..heartbeat.len() - 1],
            now + CENSUS_WINDOW,
        );
        assert_eq!(ids(&mut census, now + CENSUS_WINDOW), ["c"]);
    }

    #[test]
    fn a_duplicate_that_leaves_does_not_take_the_other_with_it() {
        let now = Instant::now();
        let mut census = Census::default();
        let beat = |epoch| {
            Control::Heartbeat {
                epoch,
                version: 0,
                moved: 0,
            }
            .encode()
        };
        census.heard(Bytes::from_static(b"dup"), &beat(1), now);
        census.heard(Bytes::from_static(b"dup"), &beat(2), now);
        assert_eq!(
            ids(&mut census, now),
            ["dup", "dup"],
            "once per incarnation"
        );
        census.heard(
            Bytes::from_static(b"dup"),
            &Control::Bye { epoch: 2 }.encode(),
            now,
        );
        assert_eq!(ids(&mut census, now), ["dup"]);
        census.heard(
            Bytes::from_static(b"dup"),
            &Control::Bye { epoch: 1 }.encode(),
            now,
        );
        assert!(ids(&mut census, now).is_empty());
    }
}
