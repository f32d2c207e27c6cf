//! The subscriber side's subscription protocol, as a state machine with no I/O: which
//! topics this emitter subscribes to, how many changes it has made, and the confirmation it
//! waits for from the forwarder. Time is passed in; what to write comes back as bytes.
//!
//! After its subscriptions, the subscriber subscribes to `SYNC_PREFIX + n`, "the first `n`
//! changes"; this project's forwarder answers on that topic once it has applied them. A
//! forwarder that never answers (a libzmq proxy) is given up on after the sync timeout, and
//! the changes count as applied then.

use bytes::{Bytes, BytesMut};
use tokio::time::{Duration, Instant};

use crate::wire;
use crate::zmtp;

/// The subscription state of one subscriber connection's life, across reconnections.
#[derive(Debug)]
pub(crate) struct SubscriptionSync {
    topics: Vec<Bytes>,
    /// Subscription changes made so far.
    changes: u64,
    /// The confirmation waited for (the changes it covers) and when it is given up on.
    waiting: Option<(u64, Instant)>,
    timeout: Duration,
}

/// What happened to the confirmation: the changes now known applied, and what to write
/// (the confirmation topic's cancellation, so that the forwarder does not keep them all).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Confirmed {
    pub(crate) applied: u64,
    pub(crate) write: Bytes,
}

impl SubscriptionSync {
    /// Subscribed to the control topic only, waiting for nothing.
    pub(crate) fn new(timeout: Duration) -> Self {
        Self {
            topics: vec![Bytes::from_static(wire::CONTROL_TOPIC)],
            changes: 0,
            waiting: None,
            timeout,
        }
    }

    /// How many changes were made so far.
    pub(crate) fn changes(&self) -> u64 {
        self.changes
    }

    /// Connected (again): every subscription and a request to confirm them all.
    pub(crate) fn connected(&mut self, now: Instant) -> BytesMut {
        let mut all = BytesMut::new();
        for topic in &self.topics {
            all.extend_from_slice(&zmtp::subscription(true, topic));
        }
        all.extend_from_slice(&request(self.changes));
        self.waiting = Some((self.changes, now + self.timeout));
        all
    }

    /// A subscription change: it, and a request to confirm it.
    pub(crate) fn change(&mut self, now: Instant, on: bool, topic: &Bytes) -> BytesMut {
        self.changes += 1;
        if on {
            self.topics.push(topic.clone());
        } else if let Some(at) = self.topics.iter().position(|t| t == topic) {
            self.topics.swap_remove(at);
        }
        let mut out = BytesMut::from(&zmtp::subscription(on, topic)[..]);
        out.extend_from_slice(&request(self.changes));
        self.waiting = Some((self.changes, now + self.timeout));
        out
    }

    /// A received message's topic: if it is a confirmation, what it confirms.
    pub(crate) fn reply(&mut self, topic: &[u8]) -> Option<Confirmed> {
        let covers = covered(topic)?;
        if self.waiting.is_some_and(|(wanted, _)| covers >= wanted) {
            self.waiting = None;
        }
        Some(Confirmed {
            applied: covers.min(self.changes),
            write: done(covers),
        })
    }

    /// When the confirmation waited for is given up on, if one is.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.waiting.map(|(_, at)| at)
    }

    /// The confirmation was not given in time: its changes count as applied.
    pub(crate) fn timed_out(&mut self, now: Instant) -> Option<Confirmed> {
        match self.waiting {
            Some((covers, at)) if now >= at => {
                self.waiting = None;
                Some(Confirmed {
                    applied: covers,
                    write: done(covers),
                })
            }
            _ => None,
        }
    }
}

fn topic(covers: u64) -> Vec<u8> {
    let mut topic = wire::SYNC_PREFIX.to_vec();
    topic.extend_from_slice(covers.to_string().as_bytes());
    topic
}

/// A subscription to the confirmation topic for `covers` subscription changes.
fn request(covers: u64) -> Bytes {
    zmtp::subscription(true, &topic(covers))
}

/// Its cancellation, once answered or given up on.
fn done(covers: u64) -> Bytes {
    zmtp::subscription(false, &topic(covers))
}

/// The changes a confirmation covers, if `topic` is one.
fn covered(topic: &[u8]) -> Option<u64> {
    std::str::from_utf8(topic.strip_prefix(wire::SYNC_PREFIX)?)
        .ok()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_millis(500);

    fn sync_topic(covers: u64) -> Vec<u8> {
        topic(covers)
    }

    #[test]
    fn a_confirmation_covers_the_changes_made_up_to_it() {
        let t0 = Instant::now();
        let mut sync = SubscriptionSync::new(TIMEOUT);
        let first = sync.connected(t0);
        assert!(
            first.ends_with(&request(0)),
            "asks to confirm everything so far"
        );
        assert_eq!(sync.deadline(), Some(t0 + TIMEOUT));
        sync.change(t0, true, &Bytes::from_static(b"s:a"));
        sync.change(t0, true, &Bytes::from_static(b"s:b"));
        assert_eq!(sync.changes(), 2);
        // The answer for the first change opens the gate that far, and is cancelled.
        assert_eq!(
            sync.reply(&sync_topic(1)),
            Some(Confirmed {
                applied: 1,
                write: done(1)
            })
        );
        assert!(sync.deadline().is_some(), "still waiting for the second");
        assert_eq!(sync.reply(&sync_topic(2)).map(|c| c.applied), Some(2));
        assert_eq!(sync.deadline(), None);
        assert_eq!(sync.reply(b"s:a"), None, "an event, not a confirmation");
    }

    #[test]
    fn a_forwarder_that_never_answers_is_given_up_on_in_time() {
        let t0 = Instant::now();
        let mut sync = SubscriptionSync::new(TIMEOUT);
        sync.connected(t0);
        sync.change(t0 + TIMEOUT / 2, true, &Bytes::from_static(b"s:a"));
        assert_eq!(
            sync.timed_out(t0 + TIMEOUT),
            None,
            "the change moved the deadline"
        );
        let given_up = sync
            .timed_out(t0 + TIMEOUT / 2 + TIMEOUT)
            .expect("given up on");
        assert_eq!(given_up.applied, 1);
        assert_eq!(given_up.write, done(1));
        assert_eq!(sync.deadline(), None);
    }

    #[test]
    fn a_reconnection_resubscribes_what_is_subscribed_now() {
        let t0 = Instant::now();
        let mut sync = SubscriptionSync::new(TIMEOUT);
        sync.connected(t0);
        let (a, b) = (Bytes::from_static(b"s:a"), Bytes::from_static(b"s:b"));
        sync.change(t0, true, &a);
        sync.change(t0, true, &b);
        sync.change(t0, false, &a);
        let again = sync.connected(t0);
        let mut expected = BytesMut::new();
        for topic in [wire::CONTROL_TOPIC, b"s:b"] {
            expected.extend_from_slice(&zmtp::subscription(true, topic));
        }
        expected.extend_from_slice(&request(3));
        assert_eq!(again, expected);
    }
}
