//! The forwarder: publishers connect to its XSUB side, subscribers to its XPUB side, and
//! every message reaches the subscribers whose subscriptions prefix its topic.
//!
//! Unlike a plain XSUB/XPUB proxy it keeps a count per topic (only the first subscribe and
//! the last cancel go upstream, and a subscriber that vanishes has its topics released),
//! and gives every subscriber its own bounded queue and writer: a subscriber that stalls
//! loses its own messages, counted and logged, and delays no one else.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use demitter_core::{Error, SendQueue};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::conn::{self, Reader};
use crate::error::ZmqError;
use crate::zmtp::{self, RawMessage, SocketType};
use routing::{Routing, Subscribed};

/// Settings of a [`Forwarder`].
#[derive(Debug, Clone)]
pub struct ForwarderConfig {
    /// Where publishers connect (Demitter's `XSUB_ADDRESS:XSUB_PORT`). Default
    /// `127.0.0.1:5555`; port 0 picks a free port.
    pub xsub: SocketAddr,
    /// Where subscribers connect (Demitter's `XPUB_ADDRESS:XPUB_PORT`). Default
    /// `127.0.0.1:5556`.
    pub xpub: SocketAddr,
    /// Messages queued per subscriber before further ones to it are dropped and counted.
    pub subscriber_queue: usize,
    /// Bytes queued per subscriber (besides the one batch of up to 64 KiB being written to
    /// it) before further messages to it are dropped and counted: with `subscriber_queue`,
    /// what a slow subscriber can pin.
    pub subscriber_queue_bytes: usize,
    /// The largest frame accepted from a peer; a peer sending more is disconnected.
    pub max_frame_bytes: usize,
    /// How often statistics are logged (at info level); `None` for never.
    pub stats_interval: Option<Duration>,
}

impl Default for ForwarderConfig {
    fn default() -> Self {
        Self {
            xsub: SocketAddr::from(([127, 0, 0, 1], 5555)),
            xpub: SocketAddr::from(([127, 0, 0, 1], 5556)),
            subscriber_queue: 65_536,
            subscriber_queue_bytes: 16 * 1024 * 1024,
            max_frame_bytes: demitter_core::DEFAULT_MAX_FRAME_BYTES + 64 * 1024,
            stats_interval: Some(Duration::from_secs(10)),
        }
    }
}

impl ForwarderConfig {
    /// Both sides on free loopback ports (read them back with
    /// [`Forwarder::xsub_addr`] / [`Forwarder::xpub_addr`]) and no statistics lines: an
    /// embedded forwarder for tests and single-machine programs.
    pub fn loopback_free_ports() -> Self {
        let any = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        Self {
            xsub: any,
            xpub: any,
            stats_interval: None,
            ..Self::default()
        }
    }
}

/// Counters of a running forwarder.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ForwarderStats {
    /// Messages received from publishers.
    pub messages_in: u64,
    /// Messages queued to subscribers (one per subscriber reached).
    pub messages_out: u64,
    /// Messages dropped because a subscriber's queue was full.
    pub dropped: u64,
    /// Publishers connected now.
    pub publishers: u64,
    /// Subscribers connected now.
    pub subscribers: u64,
    /// Distinct topics subscribed now.
    pub topics: u64,
}

#[derive(Debug, Default)]
struct Counters {
    messages_in: AtomicU64,
    messages_out: AtomicU64,
    dropped: AtomicU64,
    publishers: AtomicU64,
    subscribers: AtomicU64,
    topics: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> ForwarderStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ForwarderStats {
            messages_in: get(&self.messages_in),
            messages_out: get(&self.messages_out),
            dropped: get(&self.dropped),
            publishers: get(&self.publishers),
            subscribers: get(&self.subscribers),
            topics: get(&self.topics),
        }
    }
}

/// A running forwarder. See the [module docs](crate::forwarder) for what it guarantees.
///
/// ```
/// use demitter_zmq::{Forwarder, ForwarderConfig};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), demitter_zmq::ZmqError> {
/// // Demitter's ports are ForwarderConfig::default(); here, any free ones.
/// let forwarder = Forwarder::bind(ForwarderConfig::loopback_free_ports()).await?;
/// println!("publishers: {}, subscribers: {}", forwarder.xsub_addr(), forwarder.xpub_addr());
/// forwarder.close().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Forwarder {
    xsub_addr: SocketAddr,
    xpub_addr: SocketAddr,
    counters: Arc<Counters>,
    gauges: watch::Receiver<ForwarderStats>,
    cancel: CancellationToken,
    tasks: TaskTracker,
}

/// What connections tell the forwarding loop.
enum Event {
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
}

impl Forwarder {
    /// Binds both sides and starts forwarding.
    pub async fn bind(config: ForwarderConfig) -> Result<Self, ZmqError> {
        let (xsub, xpub) = (config.xsub, config.xpub);
        let overlapping_ips =
            xsub.ip() == xpub.ip() || xsub.ip().is_unspecified() || xpub.ip().is_unspecified();
        if xsub.port() != 0 && xsub.port() == xpub.port() && overlapping_ips {
            return Err(ZmqError::SamePort(config.xsub.port()));
        }
        let xsub = TcpListener::bind(config.xsub)
            .await
            .map_err(|e| bind_error("XSUB", config.xsub, &e))?;
        let xpub = TcpListener::bind(config.xpub)
            .await
            .map_err(|e| bind_error("XPUB", config.xpub, &e))?;
        let (gauges_tx, gauges) = watch::channel(ForwarderStats::default());
        let forwarder = Self {
            xsub_addr: xsub.local_addr()?,
            xpub_addr: xpub.local_addr()?,
            counters: Arc::default(),
            gauges,
            cancel: CancellationToken::new(),
            tasks: TaskTracker::new(),
        };
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let (messages_tx, messages_rx) = mpsc::channel(4096);
        let ids = Arc::new(AtomicU64::new(1));
        forwarder.tasks.spawn(accept_publishers(
            xsub,
            config.clone(),
            events_tx.clone(),
            messages_tx,
            Arc::clone(&ids),
            forwarder.cancel.clone(),
            forwarder.tasks.clone(),
        ));
        forwarder.tasks.spawn(accept_subscribers(
            xpub,
            config.clone(),
            events_tx,
            ids,
            forwarder.cancel.clone(),
            forwarder.tasks.clone(),
        ));
        forwarder.tasks.spawn(
            Loop {
                publishers: HashMap::new(),
                subscribers: HashMap::new(),
                routing: Routing::default(),
                counters: Arc::clone(&forwarder.counters),
                gauges: gauges_tx,
            }
            .run(
                events_rx,
                messages_rx,
                forwarder.cancel.clone(),
                config.stats_interval,
            ),
        );
        tracing::info!(
            xsub = %forwarder.xsub_addr,
            xpub = %forwarder.xpub_addr,
            "forwarder listening"
        );
        Ok(forwarder)
    }

    /// The address publishers connect to.
    pub fn xsub_addr(&self) -> SocketAddr {
        self.xsub_addr
    }

    /// The address subscribers connect to.
    pub fn xpub_addr(&self) -> SocketAddr {
        self.xpub_addr
    }

    /// The counters now.
    pub fn stats(&self) -> ForwarderStats {
        self.counters.snapshot()
    }

    /// Waits until the connection gauges (publishers, subscribers, topics) satisfy `ready`;
    /// `false` if the forwarder stopped first. Wrap it in a timeout.
    pub async fn wait_until(&self, ready: impl Fn(&ForwarderStats) -> bool) -> bool {
        let mut gauges = self.gauges.clone();
        gauges.wait_for(|g| ready(g)).await.is_ok()
    }

    /// Stops accepting, closes every connection, and returns when every task has ended.
    pub async fn close(self) {
        self.cancel.cancel();
        self.tasks.close();
        self.tasks.wait().await;
        tracing::info!("forwarder stopped");
    }
}

fn bind_error(side: &str, addr: SocketAddr, e: &std::io::Error) -> ZmqError {
    let hint = if e.kind() == std::io::ErrorKind::AddrInUse {
        " (the port is in use: is another forwarder running?)"
    } else {
        ""
    };
    ZmqError::Io(std::io::Error::new(
        e.kind(),
        format!("cannot bind the {side} side to {addr}: {e}{hint}"),
    ))
}

/// Logs a connection that did not complete its handshake: a peer that only opened and
/// closed TCP (a port check, a load balancer's probe) at debug, a peer that spoke
/// something else at warn.
fn refused(peer: SocketAddr, side: &str, e: &ZmqError) {
    let left = matches!(e, ZmqError::Io(io) if matches!(
        io.kind(),
        std::io::ErrorKind::UnexpectedEof
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::BrokenPipe
    ));
    if left {
        tracing::debug!(%peer, "a {side} left before its handshake: {e}");
    } else {
        tracing::warn!(%peer, "{side} refused: {e}");
    }
}

/// The next connection, or `None` once cancelled. Failed accepts are logged and skipped.
async fn accept(
    listener: &TcpListener,
    cancel: &CancellationToken,
    side: &str,
) -> Option<(tokio::net::TcpStream, SocketAddr)> {
    loop {
        tokio::select! {
            () = cancel.cancelled() => return None,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => return Some(accepted),
                Err(e) => tracing::warn!("accepting a {side} failed: {e}"),
            },
        }
    }
}

async fn accept_publishers(
    listener: TcpListener,
    config: ForwarderConfig,
    events: mpsc::UnboundedSender<Event>,
    messages: mpsc::Sender<RawMessage>,
    ids: Arc<AtomicU64>,
    cancel: CancellationToken,
    tasks: TaskTracker,
) {
    while let Some((stream, peer)) = accept(&listener, &cancel, "publisher").await {
        let (events, messages, cancel) = (events.clone(), messages.clone(), cancel.clone());
        let id = ids.fetch_add(1, Ordering::Relaxed);
        let max = config.max_frame_bytes;
        tasks.spawn(async move {
            let (mut reader, writer, peer_type) =
                match conn::handshake(stream, SocketType::XSub, max).await {
                    Ok(parts) => parts,
                    Err(e) => return refused(peer, "publisher", &e),
                };
            tracing::debug!(%peer, %peer_type, "publisher connected");
            let (control_tx, control_rx) = mpsc::unbounded_channel();
            if events
                .send(Event::PublisherJoined {
                    id,
                    control: control_tx,
                })
                .is_err()
            {
                return;
            }
            let writing = tokio::spawn(write_control(writer, control_rx));
            loop {
                let message = tokio::select! {
                    () = cancel.cancelled() => break,
                    message = reader.next_raw_message() => message,
                };
                match message {
                    Ok(Some(message)) => {
                        if messages.send(message).await.is_err() {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(%peer, "dropping publisher: {e}");
                        break;
                    }
                }
            }
            writing.abort();
            let _ = events.send(Event::PublisherLeft { id });
            tracing::debug!(%peer, "publisher disconnected");
        });
    }
}

async fn write_control(mut writer: OwnedWriteHalf, mut control: mpsc::UnboundedReceiver<Bytes>) {
    while let Some(bytes) = control.recv().await {
        if writer.write_all(&bytes).await.is_err() {
            return;
        }
    }
}

async fn accept_subscribers(
    listener: TcpListener,
    config: ForwarderConfig,
    events: mpsc::UnboundedSender<Event>,
    ids: Arc<AtomicU64>,
    cancel: CancellationToken,
    tasks: TaskTracker,
) {
    while let Some((stream, peer)) = accept(&listener, &cancel, "subscriber").await {
        let (events, cancel) = (events.clone(), cancel.clone());
        let id = ids.fetch_add(1, Ordering::Relaxed);
        let (max, queue_len) = (config.max_frame_bytes, config.subscriber_queue);
        let queue_bytes = config.subscriber_queue_bytes;
        tasks.spawn(async move {
            let (reader, writer, peer_type) =
                match conn::handshake(stream, SocketType::XPub, max).await {
                    Ok(parts) => parts,
                    Err(e) => return refused(peer, "subscriber", &e),
                };
            tracing::debug!(%peer, %peer_type, "subscriber connected");
            let queue = Arc::new(SendQueue::new(queue_bytes, queue_len.max(1)));
            if events
                .send(Event::SubscriberJoined {
                    id,
                    peer,
                    queue: Arc::clone(&queue),
                })
                .is_err()
            {
                return;
            }
            let writing = tokio::spawn(write_messages(writer, queue));
            read_subscriptions(reader, id, peer, &events, &cancel).await;
            writing.abort();
            let _ = events.send(Event::SubscriberLeft { id });
            tracing::debug!(%peer, "subscriber disconnected");
        });
    }
}

async fn read_subscriptions(
    mut reader: Reader,
    id: u64,
    peer: SocketAddr,
    events: &mpsc::UnboundedSender<Event>,
    cancel: &CancellationToken,
) {
    loop {
        let next = tokio::select! {
            () = cancel.cancelled() => return,
            next = reader.next_frame() => next,
        };
        match next {
            Ok(Some(frame)) => {
                if let Some((subscribe, topic)) = zmtp::parse_subscription(&frame)
                    && events
                        .send(Event::Subscription {
                            id,
                            subscribe,
                            topic,
                        })
                        .is_err()
                {
                    return;
                }
            }
            Ok(None) => return,
            Err(e) => return tracing::warn!(%peer, "dropping subscriber: {e}"),
        }
    }
}

/// The most bytes a subscriber's writer writes in one go.
const WRITE_BATCH: usize = 64 * 1024;

/// One subscriber's writer: takes what is queued and writes it, a batch at a time, until
/// the queue is closed and empty. A failed write closes the queue, which tells the loop
/// the subscriber is gone.
async fn write_messages(mut writer: OwnedWriteHalf, queue: Arc<SendQueue>) {
    loop {
        let drained = queue.drain(WRITE_BATCH);
        if drained.bytes.is_empty() {
            if drained.finished {
                return;
            }
            queue.ready().await;
            continue;
        }
        if writer.write_all(&drained.bytes).await.is_err() {
            queue.discard();
            return;
        }
    }
}

struct Subscriber {
    peer: SocketAddr,
    queue: Arc<SendQueue>,
    dropped: u64,
}

/// The forwarding loop's state; only it touches this. The routing rules are `routing`'s;
/// the loop holds the connections and does what they say.
struct Loop {
    publishers: HashMap<u64, mpsc::UnboundedSender<Bytes>>,
    subscribers: HashMap<u64, Subscriber>,
    routing: Routing,
    counters: Arc<Counters>,
    gauges: watch::Sender<ForwarderStats>,
}

impl Loop {
    async fn run(
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
                Subscribed::Confirm(reply) => {
                    if let Some(sub) = self.subscribers.get(&id) {
                        // Not queued if its queue is full: the subscriber then announces
                        // after its own timeout instead.
                        let _ = sub.queue.push(&reply, false);
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

mod routing;
#[cfg(test)]
mod tests;
