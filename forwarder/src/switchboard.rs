//! The forwarding loop: the one task that owns the connections' queues and does what the
//! routing rules ([`Routing`]) say. Connections tell it what happens ([`Event`]); messages
//! reach it on a channel of their own.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use demitter_core::{Error, SendQueue};
use demitter_zmq::wire::{CENSUS_AGAIN, CENSUS_SYNC, CONTROL_TOPIC};
use demitter_zmq::zmtp::{self, RawMessage};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::census::Census;
use crate::refusals::RefusalLog;
use crate::routing::{Routing, Subscribed};
use crate::stats::{Counters, ForwarderStats};

/// What connections tell the forwarding loop.
pub(crate) enum Event {
    PublisherJoined {
        id: u64,
        control: mpsc::UnboundedSender<Bytes>,
    },
    PublisherLeft {
        id: u64,
    },
    SubscriberJoined {
        id: u64,
        peer: SocketAddr,
        queue: Arc<SendQueue>,
    },
    SubscriberLeft {
        id: u64,
    },
    Subscription {
        id: u64,
        subscribe: bool,
        topic: Bytes,
    },
    /// A connection was refused in its handshake.
    Refused {
        /// Who.
        peer: std::net::SocketAddr,
        /// The side it came to (`publisher`, `subscriber`).
        side: &'static str,
        /// Why.
        why: String,
    },
    /// A CURVE publisher's message under a name not its key's was dropped.
    Forged,
}

/// A subscriber, as the loop holds it.
struct Subscriber {
    peer: SocketAddr,
    queue: Arc<SendQueue>,
    dropped: u64,
}

/// The forwarding loop's state; only it touches this. The routing rules are `routing`'s;
/// the loop holds the connections and does what they say.
pub(crate) struct Loop {
    publishers: HashMap<u64, mpsc::UnboundedSender<Bytes>>,
    subscribers: HashMap<u64, Subscriber>,
    routing: Routing,
    counters: Arc<Counters>,
    gauges: watch::Sender<ForwarderStats>,
    refusals: RefusalLog,
    /// Who is on the bus, for joining clients.
    census: Census,
}

impl Loop {
    pub(crate) fn new(counters: Arc<Counters>, gauges: watch::Sender<ForwarderStats>) -> Self {
        Self {
            publishers: HashMap::new(),
            subscribers: HashMap::new(),
            routing: Routing::default(),
            counters,
            gauges,
            refusals: RefusalLog::default(),
            census: Census::default(),
        }
    }

    pub(crate) async fn run(
        mut self,
        mut events: mpsc::UnboundedReceiver<Event>,
        mut messages: mpsc::Receiver<RawMessage>,
        cancel: CancellationToken,
        stats_interval: Option<Duration>,
    ) {
        let mut stats = tokio::time::interval(stats_interval.unwrap_or(Duration::from_secs(3600)));
        stats.tick().await;
        let mut last = self.counters.snapshot();
        let mut batch = Vec::with_capacity(256);
        loop {
            tokio::select! {
                biased;
                () = cancel.cancelled() => return,
                Some(event) = events.recv() => self.handle(event),
                n = messages.recv_many(&mut batch, 256) => {
                    if n == 0 {
                        return;
                    }
                    for message in batch.drain(..) {
                        self.forward(&message);
                    }
                }
                _ = stats.tick(), if stats_interval.is_some() => {
                    let now = self.counters.snapshot();
                    let secs = stats_interval.map_or(1.0, |d| d.as_secs_f64());
                    tracing::info!(
                        in_per_sec = ((now.messages_in - last.messages_in) as f64 / secs).round(),
                        out_per_sec = ((now.messages_out - last.messages_out) as f64 / secs).round(),
                        publishers = now.publishers,
                        subscribers = now.subscribers,
                        topics = now.topics,
                        dropped = now.dropped,
                        "forwarder stats"
                    );
                    last = now;
                }
            }
        }
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::PublisherJoined { id, control } => {
                for message in self.routing.for_new_publisher() {
                    let _ = control.send(message);
                }
                self.publishers.insert(id, control);
            }
            Event::PublisherLeft { id } => {
                self.publishers.remove(&id);
            }
            Event::Refused { peer, side, why } => {
                self.refusals.refused(peer, side, &why);
                let refused = self.counters.refused.fetch_add(1, Ordering::Relaxed) + 1;
                self.gauges.send_modify(|g| g.refused = refused);
            }
            Event::Forged => {
                let forged = self.counters.forged.fetch_add(1, Ordering::Relaxed) + 1;
                self.gauges.send_modify(|g| g.forged = forged);
            }
            Event::SubscriberJoined { id, peer, queue } => {
                self.routing.subscriber_joined(id);
                self.subscribers.insert(
                    id,
                    Subscriber {
                        peer,
                        queue,
                        dropped: 0,
                    },
                );
            }
            Event::SubscriberLeft { id } => self.remove_subscriber(id),
            Event::Subscription {
                id,
                subscribe,
                topic,
            } => match self.routing.subscription(id, subscribe, &topic) {
                Subscribed::Upstream(message) => self.tell_publishers(&message),
                Subscribed::Confirm(topic) => {
                    if let Some(sub) = self.subscribers.get(&id) {
                        // The first confirmation a client asks for tells it who is on the
                        // bus, and so does the one it asks once its hello came back.
                        let census = if topic[..] == *CENSUS_SYNC || topic[..] == *CENSUS_AGAIN {
                            self.census.encode(Instant::now())
                        } else {
                            Bytes::new()
                        };
                        let mut reply = BytesMut::new();
                        zmtp::put_message(&mut reply, &[&topic, b"", &census]);
                        // Not queued if its queue is full: the subscriber then announces
                        // after its own timeout instead.
                        let _ = sub.queue.push(&reply.freeze(), false);
                    }
                }
                Subscribed::Nothing => {}
            },
        }
        self.update_gauges();
    }

    fn remove_subscriber(&mut self, id: u64) {
        let Some(sub) = self.subscribers.remove(&id) else {
            return;
        };
        sub.queue.close();
        if sub.dropped > 0 {
            tracing::warn!(peer = %sub.peer, dropped = sub.dropped, "subscriber left after losing messages to a full queue");
        }
        for cancel in self.routing.subscriber_left(id) {
            self.tell_publishers(&cancel);
        }
    }

    fn tell_publishers(&self, message: &Bytes) {
        for control in self.publishers.values() {
            let _ = control.send(message.clone());
        }
    }

    fn update_gauges(&self) {
        let (publishers, subscribers, topics) = (
            self.publishers.len() as u64,
            self.subscribers.len() as u64,
            self.routing.topics() as u64,
        );
        self.counters
            .publishers
            .store(publishers, Ordering::Relaxed);
        self.counters
            .subscribers
            .store(subscribers, Ordering::Relaxed);
        self.counters.topics.store(topics, Ordering::Relaxed);
        self.gauges.send_if_modified(|g| {
            let changed =
                (g.publishers, g.subscribers, g.topics) != (publishers, subscribers, topics);
            g.publishers = publishers;
            g.subscribers = subscribers;
            g.topics = topics;
            changed
        });
    }

    /// Queues `message`, exactly as it was received, to every subscriber whose
    /// subscriptions prefix its topic.
    fn forward(&mut self, message: &RawMessage) {
        self.counters.messages_in.fetch_add(1, Ordering::Relaxed);
        if message.topic[..] == *CONTROL_TOPIC
            && let (Some(origin), Some(body)) = (message.part(1), message.part(2))
        {
            self.census.heard(origin, &body, Instant::now());
        }
        let mut gone = Vec::new();
        for id in self.routing.recipients(&message.topic) {
            let Some(sub) = self.subscribers.get_mut(&id) else {
                continue;
            };
            match sub.queue.push(&message.bytes, true) {
                Ok(()) => {
                    self.counters.messages_out.fetch_add(1, Ordering::Relaxed);
                }
                Err(Error::SendQueueFull { .. }) => {
                    sub.dropped += 1;
                    self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                    if sub.dropped == 1 || sub.dropped.is_power_of_two() {
                        tracing::warn!(peer = %sub.peer, dropped = sub.dropped, "subscriber is not keeping up; dropping its messages");
                    }
                }
                Err(_) => gone.push(id),
            }
        }
        if !gone.is_empty() {
            for id in gone {
                self.remove_subscriber(id);
            }
            self.update_gauges();
        }
    }
}
