//! The forwarder's routing rules, with no I/O: what each subscriber subscribes to, the
//! count per topic (only a topic's first subscribe and last cancel go upstream to the
//! publishers), confirmation requests, and which subscribers a message goes to. The loop
//! around it owns the sockets and queues and does what this says.

use std::collections::HashMap;

use bytes::Bytes;

use demitter_zmq::wire::SYNC_PREFIX;
use demitter_zmq::zmtp;

/// Subscriptions of every connected subscriber.
#[derive(Debug, Default)]
pub(super) struct Routing {
    /// Each subscriber's prefixes, with repeats: a topic subscribed twice needs two cancels.
    subscribers: HashMap<u64, Vec<Bytes>>,
    /// Subscriptions per topic, over all subscribers (repeats counted).
    topics: HashMap<Bytes, usize>,
}

/// What a subscription message from a subscriber calls for.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Subscribed {
    /// Tell every publisher (the topic's first subscribe or last cancel).
    Upstream(Bytes),
    /// Answer the subscriber on this topic: its earlier subscriptions are all applied.
    Confirm(Bytes),
    /// Nothing to send.
    Nothing,
}

impl Routing {
    /// The subscriptions a publisher that just connected must be told of.
    pub(super) fn for_new_publisher(&self) -> impl Iterator<Item = Bytes> + '_ {
        self.topics
            .keys()
            .map(|topic| zmtp::subscription(true, topic))
    }

    /// A subscriber connected.
    pub(super) fn subscriber_joined(&mut self, id: u64) {
        self.subscribers.entry(id).or_default();
    }

    /// A subscriber left: its topics are released. Returns the cancels for the publishers.
    pub(super) fn subscriber_left(&mut self, id: u64) -> Vec<Bytes> {
        let Some(subscriptions) = self.subscribers.remove(&id) else {
            return Vec::new();
        };
        subscriptions
            .iter()
            .filter_map(|topic| self.release(topic))
            .collect()
    }

    /// Subscriber `id` subscribed to `topic` (or cancelled it).
    pub(super) fn subscription(&mut self, id: u64, subscribe: bool, topic: &Bytes) -> Subscribed {
        let Some(subscriptions) = self.subscribers.get_mut(&id) else {
            return Subscribed::Nothing;
        };
        if topic.starts_with(SYNC_PREFIX) {
            // A confirmation request, not a subscription to keep. This subscriber's earlier
            // subscriptions are all applied (one connection's are handled in order), so say
            // so on exactly the topic it asked about.
            if !subscribe {
                return Subscribed::Nothing;
            }
            return Subscribed::Confirm(topic.clone());
        }
        let upstream = if subscribe {
            subscriptions.push(topic.clone());
            let count = self.topics.entry(topic.clone()).or_insert(0);
            *count += 1;
            (*count == 1).then(|| zmtp::subscription(true, topic))
        } else if let Some(at) = subscriptions.iter().position(|t| t == topic) {
            subscriptions.swap_remove(at);
            self.release(topic)
        } else {
            None
        };
        upstream.map_or(Subscribed::Nothing, Subscribed::Upstream)
    }

    /// The subscribers whose subscriptions prefix `topic`.
    pub(super) fn recipients<'a>(&'a self, topic: &'a [u8]) -> impl Iterator<Item = u64> + 'a {
        self.subscribers
            .iter()
            .filter(|(_, subscriptions)| subscriptions.iter().any(|s| topic.starts_with(s)))
            .map(|(id, _)| *id)
    }

    /// How many topics someone subscribes to.
    pub(super) fn topics(&self) -> usize {
        self.topics.len()
    }

    /// One subscription to `topic` fewer; the cancel for the publishers if it was the last.
    fn release(&mut self, topic: &Bytes) -> Option<Bytes> {
        let count = self.topics.get_mut(topic)?;
        *count -= 1;
        if *count > 0 {
            return None;
        }
        self.topics.remove(topic);
        Some(zmtp::subscription(false, topic))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(t: &'static [u8]) -> Bytes {
        Bytes::from_static(t)
    }

    #[test]
    fn only_a_topics_first_subscribe_and_last_cancel_go_upstream() {
        let mut routing = Routing::default();
        routing.subscriber_joined(1);
        routing.subscriber_joined(2);
        let up = Subscribed::Upstream(zmtp::subscription(true, b"s:a"));
        assert_eq!(routing.subscription(1, true, &topic(b"s:a")), up);
        assert_eq!(
            routing.subscription(2, true, &topic(b"s:a")),
            Subscribed::Nothing
        );
        assert_eq!(
            routing.subscription(1, true, &topic(b"s:a")),
            Subscribed::Nothing,
            "a repeat"
        );
        assert_eq!(routing.topics(), 1);
        assert_eq!(
            routing.subscription(1, false, &topic(b"s:a")),
            Subscribed::Nothing
        );
        assert_eq!(
            routing.subscription(1, false, &topic(b"s:a")),
            Subscribed::Nothing
        );
        let down = Subscribed::Upstream(zmtp::subscription(false, b"s:a"));
        assert_eq!(routing.subscription(2, false, &topic(b"s:a")), down);
        assert_eq!(routing.topics(), 0);
        assert_eq!(
            routing.subscription(2, false, &topic(b"s:a")),
            Subscribed::Nothing,
            "a cancel of nothing"
        );
    }

    #[test]
    fn a_subscriber_that_leaves_releases_its_topics() {
        let mut routing = Routing::default();
        routing.subscriber_joined(1);
        routing.subscriber_joined(2);
        routing.subscription(1, true, &topic(b"s:a"));
        routing.subscription(1, true, &topic(b"s:b"));
        routing.subscription(2, true, &topic(b"s:b"));
        let mut cancels = routing.subscriber_left(1);
        cancels.sort();
        assert_eq!(cancels, vec![zmtp::subscription(false, b"s:a")]);
        let mut for_new: Vec<Bytes> = routing.for_new_publisher().collect();
        for_new.sort();
        assert_eq!(for_new, vec![zmtp::subscription(true, b"s:b")]);
        assert!(routing.subscriber_left(1).is_empty(), "gone already");
        assert_eq!(
            routing.subscription(1, true, &topic(b"s:c")),
            Subscribed::Nothing,
            "from a subscriber that left"
        );
    }

    #[test]
    fn messages_go_to_the_subscribers_whose_prefixes_match() {
        let mut routing = Routing::default();
        for id in 1..=3 {
            routing.subscriber_joined(id);
        }
        routing.subscription(1, true, &topic(b"s:orders."));
        routing.subscription(2, true, &topic(b"s:orders.created"));
        routing.subscription(3, true, &topic(b"s:users."));
        let mut to: Vec<u64> = routing.recipients(b"s:orders.created").collect();
        to.sort_unstable();
        assert_eq!(to, [1, 2]);
        assert_eq!(routing.recipients(b"s:other").count(), 0);
    }

    #[test]
    fn a_confirmation_request_is_answered_on_its_own_topic_and_not_kept() {
        let mut routing = Routing::default();
        routing.subscriber_joined(1);
        let mut sync = SYNC_PREFIX.to_vec();
        sync.extend_from_slice(b"3");
        let sync = Bytes::from(sync);
        assert_eq!(
            routing.subscription(1, true, &sync),
            Subscribed::Confirm(sync.clone())
        );
        assert_eq!(routing.subscription(1, false, &sync), Subscribed::Nothing);
        assert_eq!(routing.topics(), 0);
    }
}
