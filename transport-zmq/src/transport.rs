//! [`ZmqTransport`]: an emitter's connection to a forwarder — a PUB to its XSUB side and a
//! SUB to its XPUB side, each kept up by its own task.
//!
//! `connect` returns at once; the tasks connect when the forwarder is there, and reconnect
//! (with backoff, resending subscriptions) when it restarts. Outages are reported on the
//! emitter's error channel; events that cannot be queued are refused and counted by the
//! emitter, and receivers see the loss as sequence gaps.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use demitter_core::{
    Backoff, Capabilities, CloseDeadlines, ControlFrame, DEFAULT_MAX_FRAME_BYTES, DecodeCache,
    Destination, Error, ErrorKind, ErrorReport, Frame, Incoming, NodeId, Pattern, SendQueue,
    Transport,
};
use futures_util::future::BoxFuture;
use parking_lot::Mutex;
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::conn::{self, Reader, Received};
use crate::error::ZmqError;
use crate::joining::{self, Joining};
use crate::subscription_sync::SubscriptionSync;
use crate::wire;
use crate::zmtp::SocketType;

/// Settings of a [`ZmqTransport`].
#[derive(Debug, Clone)]
pub struct ZmqConfig {
    /// The forwarder's XSUB side (`host:port`), where events are published.
    pub xsub: String,
    /// The forwarder's XPUB side (`host:port`), where events are received.
    pub xpub: String,
    /// Events queued for sending before further ones are refused.
    pub send_queue: usize,
    /// Bytes queued for sending (besides the one batch of up to 64 KiB being written)
    /// before further events are refused: with `send_queue`, what an unreachable or slow
    /// forwarder can pin in memory.
    pub send_queue_bytes: usize,
    /// Received messages queued for the emitter before the connection is read more slowly.
    pub receive_queue: usize,
    /// The largest event accepted; larger ones are refused and reported.
    pub max_frame_bytes: usize,
    /// The first pause before reconnecting; it doubles up to `reconnect_max`.
    pub reconnect_min: Duration,
    /// The longest pause before reconnecting.
    pub reconnect_max: Duration,
    /// The longest one connection attempt may take (TCP connect, then the ZMTP handshake)
    /// before it is given up and tried again: a forwarder cut off by the network answers
    /// nothing, and the system's own connect timeout is minutes.
    pub connect_timeout: Duration,
    /// How long to wait for the forwarder to confirm subscriptions before announcing
    /// listeners anyway (this project's forwarder confirms at once; others, such as a libzmq
    /// proxy, never do).
    pub sync_timeout: Duration,
    /// If nothing at all arrives from the forwarder for this long (noticed within one to two
    /// of these), both connections are remade. Every emitter hears its own heartbeats back through the forwarder, so silence
    /// means the forwarder (or the path to it) is gone even if TCP has not noticed. Keep it
    /// well above the emitter's heartbeat interval.
    pub silence_timeout: Duration,
    /// With keys, both connections use the CURVE mechanism as its client: the forwarder
    /// must prove the server key, and sees this client's key; everything on the wire is
    /// encrypted, and the emitter's id is the keys' name (this project's forwarder drops
    /// what a key sends under any other, so the transport declares itself authenticated,
    /// unless [`unchecked_names`](conn::CurveClientKeys::unchecked_names) is set). `None`
    /// (the default) is the NULL mechanism, as Demitter speaks.
    pub curve: Option<conn::CurveClientKeys>,
}

impl ZmqConfig {
    /// Whether the forwarder proves each message's source: CURVE, to a forwarder that
    /// binds names to keys.
    pub(crate) fn names_checked(&self) -> bool {
        self.curve
            .as_ref()
            .is_some_and(|keys| !keys.unchecked_names)
    }

    /// Settings for a forwarder at these addresses (`host:port` each).
    pub fn new(xsub: impl Into<String>, xpub: impl Into<String>) -> Self {
        Self {
            xsub: xsub.into(),
            xpub: xpub.into(),
            send_queue: 65_536,
            send_queue_bytes: 16 * 1024 * 1024,
            receive_queue: 65_536,
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            reconnect_min: Duration::from_millis(50),
            reconnect_max: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(2),
            silence_timeout: Duration::from_secs(5),
            sync_timeout: Duration::from_millis(200),
            curve: None,
        }
    }
}

/// Keeps what this emitter publishes behind its own subscriptions: the publisher writes
/// only while the subscriber is connected and the forwarder has confirmed every subscription
/// requested so far (or did not answer within `sync_timeout`). A listener is announced
/// (published) after its subscription is requested, so no peer can hear of it, and emit to
/// it, before the forwarder has the subscription.
///
/// It also knows whether the publisher is connected, for [`ZmqTransport::wait_connected`].
#[derive(Debug, Default)]
struct SubscriptionGate {
    requested: AtomicU64,
    /// Subscription changes the forwarder has confirmed.
    written: AtomicU64,
    connected: AtomicBool,
    publisher_connected: AtomicBool,
    changed: Notify,
}

impl SubscriptionGate {
    fn is_open(&self) -> bool {
        self.connected.load(Ordering::Acquire)
            && self.written.load(Ordering::Acquire) >= self.requested.load(Ordering::Acquire)
    }

    /// Waits until `ready` holds.
    async fn until(&self, ready: impl Fn(&Self) -> bool) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if ready(self) {
                return;
            }
            changed.await;
        }
    }

    async fn open(&self) {
        self.until(Self::is_open).await;
    }

    fn update(&self, connected: bool, written: u64) {
        self.written.store(written, Ordering::Release);
        self.connected.store(connected, Ordering::Release);
        self.changed.notify_waiters();
    }

    fn publisher(&self, connected: bool) {
        self.publisher_connected.store(connected, Ordering::Release);
        self.changed.notify_waiters();
    }
}

/// A connection to a forwarder: a PUB to its XSUB side and a SUB to its XPUB side, each
/// kept up by its own task.
///
/// `connect` returns at once; the tasks connect when the forwarder is there, and reconnect
/// (with backoff, resending subscriptions) when it restarts. Outages are reported on the
/// emitter's error channel; events that cannot be queued are refused and counted by the
/// emitter, and receivers see the loss as sequence gaps.
#[derive(Debug)]
pub struct ZmqTransport {
    /// Encoded messages waiting for the publisher.
    outgoing: Arc<SendQueue>,
    interest: Mutex<HashMap<Bytes, usize>>,
    subscriptions: mpsc::UnboundedSender<(bool, Bytes)>,
    gate: Arc<SubscriptionGate>,
    incoming: tokio::sync::Mutex<mpsc::Receiver<Incoming>>,
    max_frame_bytes: usize,
    /// With CURVE, the name the forwarder binds this client's key to: the emitter's id.
    curve_name: Option<NodeId>,
    /// Whether the forwarder proves each frame's source (CURVE with names checked).
    authenticated: bool,
    closed: AtomicBool,
    cancel: CancellationToken,
    tasks: TaskTracker,
    /// The first control frame this node sent (its hello): the subscriber knows it when it
    /// comes back (see `joining`).
    hello: Arc<OnceLock<ControlFrame>>,
}

impl ZmqTransport {
    /// Starts connecting to the forwarder and returns at once. Call within a tokio
    /// runtime.
    pub fn connect(config: ZmqConfig) -> Self {
        let curve_name = config.curve.as_ref().map(|keys| keys.name.clone());
        let authenticated = config.names_checked();
        let outgoing = Arc::new(SendQueue::new(config.send_queue_bytes, config.send_queue));
        let (subscriptions, subscription_rx) = mpsc::unbounded_channel();
        let (incoming_tx, incoming) = mpsc::channel(config.receive_queue.max(1));
        let cancel = CancellationToken::new();
        let tasks = TaskTracker::new();
        let stalled = Arc::new(Notify::new());
        let gate = Arc::new(SubscriptionGate::default());
        tasks.spawn(publish(
            config.clone(),
            Arc::clone(&outgoing),
            incoming_tx.clone(),
            Arc::clone(&stalled),
            Arc::clone(&gate),
            cancel.clone(),
        ));
        let max_frame_bytes = config.max_frame_bytes;
        let hello = Arc::new(OnceLock::new());
        tasks.spawn(subscribe(
            config,
            subscription_rx,
            incoming_tx,
            stalled,
            Arc::clone(&gate),
            Arc::clone(&hello),
            cancel.clone(),
        ));
        tasks.close();
        Self {
            curve_name,
            authenticated,
            outgoing,
            interest: Mutex::new(HashMap::new()),
            subscriptions,
            gate,
            incoming: tokio::sync::Mutex::new(incoming),
            max_frame_bytes,
            closed: AtomicBool::new(false),
            cancel,
            tasks,
            hello,
        }
    }

    /// Resolves once both connections to the forwarder are up and the forwarder has every
    /// subscription asked for so far: from then on, this node hears what is emitted on
    /// the bus for its listeners. `connect` itself returns at once; wrap this in a timeout
    /// (a forwarder that is not there never connects).
    ///
    /// ```
    /// use std::time::Duration;
    /// use demitter_forwarder::{Forwarder, ForwarderConfig};
    /// use demitter_zmq::{ZmqConfig, ZmqTransport};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let forwarder = Forwarder::bind(ForwarderConfig::loopback_free_ports()).await?;
    /// let config = ZmqConfig::new(forwarder.xsub_addr().to_string(), forwarder.xpub_addr().to_string());
    /// let transport = ZmqTransport::connect(config);
    /// tokio::time::timeout(Duration::from_secs(5), transport.wait_connected()).await?;
    /// # forwarder.close().await;
    /// # Ok(()) }
    /// ```
    pub async fn wait_connected(&self) {
        self.gate
            .until(|gate| gate.is_open() && gate.publisher_connected.load(Ordering::Acquire))
            .await;
    }

    fn change_interest(&self, pattern: &Pattern, subscribe: bool) {
        let mut prefix = Vec::with_capacity(2 + pattern.literal_prefix().len());
        prefix.extend_from_slice(wire::EVENT_PREFIX);
        prefix.extend_from_slice(pattern.literal_prefix().as_bytes());
        let prefix = Bytes::from(prefix);
        let mut interest = self.interest.lock();
        let count = interest.entry(prefix.clone()).or_insert(0);
        let announce = if subscribe {
            *count += 1;
            *count == 1
        } else {
            *count = count.saturating_sub(1);
            *count == 0
        };
        if *count == 0 {
            interest.remove(&prefix);
        }
        if announce {
            self.gate.requested.fetch_add(1, Ordering::AcqRel);
            let _ = self.subscriptions.send((subscribe, prefix));
        }
    }
}

impl Transport for ZmqTransport {
    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::broadcast(self.max_frame_bytes);
        caps.blocking_send = true;
        caps.authenticated = self.authenticated;
        // This project's forwarder counts the bus; a plain proxy does not, and the
        // transport then says so (`Incoming::NoCensus`).
        caps.census = true;
        caps
    }

    fn local_id(&self) -> Option<NodeId> {
        self.curve_name.clone()
    }

    fn wait_for_room(&self, bytes: usize) -> BoxFuture<'_, ()> {
        // The ZMTP header and the topic come on top of the frame.
        Box::pin(self.outgoing.wait_for_room(bytes + 16))
    }

    fn send(&self, frame: Frame, _to: Destination) -> Result<(), Error> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        let message = wire::encode(&frame);
        if let Frame::Control(control) = &frame
            && self.hello.get().is_none()
        {
            let _ = self.hello.set(control.clone());
        }
        self.outgoing
            .push(&message, matches!(frame, Frame::Event(_)))
    }

    fn subscribe(&self, pattern: &Pattern) {
        self.change_interest(pattern, true);
    }

    fn unsubscribe(&self, pattern: &Pattern) {
        self.change_interest(pattern, false);
    }

    fn recv(&self) -> BoxFuture<'_, Option<Incoming>> {
        Box::pin(async move {
            if self.closed.load(Ordering::Acquire) {
                return None;
            }
            let mut incoming = self.incoming.lock().await;
            tokio::select! {
                biased;
                () = self.cancel.cancelled() => None,
                item = incoming.recv() => item,
            }
        })
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        self.closed.store(true, Ordering::Release);
        self.outgoing.close();
        self.cancel.cancel();
        Box::pin(async move {
            // The publisher gets a moment to flush what is queued (the goodbye among it).
            let deadline = CloseDeadlines::DEFAULT.total();
            if tokio::time::timeout(deadline, self.tasks.wait())
                .await
                .is_err()
            {
                tracing::warn!("the ZeroMQ transport's tasks did not stop within {deadline:?}");
            }
        })
    }
}

impl Drop for ZmqTransport {
    fn drop(&mut self) {
        // The publisher sends what is queued and stops.
        self.outgoing.close();
    }
}

/// Connects to `addr` as `ours`, pausing between attempts; `None` once cancelled.
/// `lost_at` is when the previous connection was lost, if this is a reconnection: the
/// line saying it is back then pairs with the one that said it was lost.
async fn connect_with_backoff(
    config: &ZmqConfig,
    addr: &str,
    ours: SocketType,
    cancel: &CancellationToken,
    reports: &mpsc::Sender<Incoming>,
    lost_at: Option<tokio::time::Instant>,
) -> Option<(Reader, conn::Writer)> {
    let backoff = Backoff::new(config.reconnect_min, config.reconnect_max);
    let mut attempt = 0u32;
    // The kind of failure last reported in this streak of failed attempts: the same kind
    // is not reported again at every attempt (its details, as which I/O error ended a
    // connection, may change from one to the next), another kind is.
    let mut reported: Option<FailureKind> = None;
    loop {
        let result = async {
            let attempt = async {
                let stream = TcpStream::connect(addr).await?;
                let max_frame = config.max_frame_bytes + 64 * 1024;
                match &config.curve {
                    None => conn::handshake(stream, ours, max_frame).await,
                    Some(keys) => conn::handshake_curve_client(stream, ours, max_frame, keys).await,
                }
            };
            tokio::time::timeout(config.connect_timeout, attempt)
                .await
                .unwrap_or_else(|_| {
                    Err(ZmqError::Io(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("no connection within {:?}", config.connect_timeout),
                    )))
                })
        };
        let outcome = tokio::select! {
            () = cancel.cancelled() => return None,
            outcome = result => outcome,
        };
        match outcome {
            Ok((reader, writer, _)) => {
                if let Some(lost_at) = lost_at {
                    let after = lost_at.elapsed();
                    tracing::warn!(%addr, side = ours.name(), ?after, "reconnected to the forwarder");
                } else if attempt > 0 {
                    tracing::info!(%addr, side = ours.name(), "connected to the forwarder");
                }
                return Some((reader, writer));
            }
            Err(e) => {
                attempt += 1;
                tracing::debug!(%addr, attempt, "cannot connect to the forwarder ({e}); retrying");
                let (kind, message) = connect_failure(ours, addr, &e);
                if reported.as_ref() != Some(&kind) {
                    let report = ErrorReport::new(ErrorKind::Network, 1, message);
                    let _ = reports.try_send(Incoming::Report(report));
                    reported = Some(kind);
                }
            }
        }
        tokio::select! {
            () = cancel.cancelled() => return None,
            () = tokio::time::sleep(backoff.delay(attempt.saturating_sub(1))) => {}
        }
    }
}

/// What a failed connection attempt met: a streak of one kind is reported once.
#[derive(Debug, Clone, PartialEq, Eq)]
enum FailureKind {
    /// Nothing to connect to (refused, timed out, no route).
    Unreachable,
    /// A peer that hung up in the handshake.
    HungUp,
    /// A forwarder that refused this node, saying why (or a CURVE server that could not
    /// be proven): the reason, which stays the same while the cause does.
    Refused(String),
    /// A peer that is not a forwarder's side this node can use.
    Unusable,
}

/// A failed connection attempt, sorted and said for the error channel with its cause:
/// nothing there, a peer that hung up or is not a forwarder, a CURVE key not allowed, the
/// wrong server key. (The transport keeps trying.)
fn connect_failure(ours: SocketType, addr: &str, e: &ZmqError) -> (FailureKind, String) {
    let side = if ours == SocketType::Pub {
        "XSUB"
    } else {
        "XPUB"
    };
    match e {
        _ if e.is_silent_hangup() => (
            FailureKind::HungUp,
            format!(
                "the peer at {addr} hung up in the ZMTP handshake: it is not the forwarder's {side} side, or it refuses this node ({e})"
            ),
        ),
        ZmqError::Io(_) => (
            FailureKind::Unreachable,
            format!("cannot reach the forwarder's {side} side at {addr}: {e}"),
        ),
        ZmqError::PeerRefused { .. } | ZmqError::Curve { .. } | ZmqError::NamesUnchecked => (
            FailureKind::Refused(e.to_string()),
            format!("the forwarder's {side} side at {addr} refused this node: {e}"),
        ),
        _ => (
            FailureKind::Unusable,
            format!("the peer at {addr} is not a forwarder's {side} side this node can use: {e}"),
        ),
    }
}

/// Logs a lost connection (its report goes on the error channel) and notes when.
fn lost(at: &mut Option<tokio::time::Instant>, addr: &str, why: &str) {
    tracing::debug!(%addr, "lost the forwarder ({why}); reconnecting");
    *at = Some(tokio::time::Instant::now());
}

fn outage(side: &str, addr: &str, why: &str) -> Incoming {
    Incoming::Report(ErrorReport::new(
        ErrorKind::Network,
        1,
        format!("lost the forwarder's {side} side at {addr} ({why}); reconnecting"),
    ))
}

/// The most bytes the publisher writes in one go.
const WRITE_BATCH: usize = 64 * 1024;

/// Keeps a PUB connection up and writes queued events to it.
///
/// Unlike a libzmq PUB it does not filter by the forwarder's subscriptions: an emitter
/// learns of a remote listener through the presence protocol, on another connection than
/// the subscription takes, and must not drop the first events because the subscription has
/// not reached it yet. The forwarder filters for every subscriber anyway.
async fn publish(
    config: ZmqConfig,
    outgoing: Arc<SendQueue>,
    reports: mpsc::Sender<Incoming>,
    stalled: Arc<Notify>,
    gate: Arc<SubscriptionGate>,
    cancel: CancellationToken,
) {
    let mut lost_at = None;
    loop {
        let Some((mut reader, mut writer)) = connect_with_backoff(
            &config,
            &config.xsub,
            SocketType::Pub,
            &cancel,
            &reports,
            lost_at,
        )
        .await
        else {
            return;
        };
        gate.publisher(true);
        // Whether the queue may hold messages: cleared by a drain that finds none, set
        // when the queue says something came.
        let mut more = true;
        let why = loop {
            tokio::select! {
                biased;
                // Subscriptions from the forwarder: read (so its writes never block) and
                // otherwise ignored; the connection ending is what matters here.
                frame = reader.next_frame() => match frame {
                    Ok(Some(_)) => {}
                    Ok(None) => break "it closed the connection".to_owned(),
                    Err(e) => break e.to_string(),
                },
                () = stalled.notified() => break "it stopped answering".to_owned(),
                () = outgoing.ready(), if !more => more = true,
                () = cancel.cancelled() => {
                    return flush_and_close(writer, &mut reader, Bytes::new(), &outgoing).await;
                }
                () = std::future::ready(()), if more => {
                    let drained = outgoing.drain(WRITE_BATCH);
                    if drained.bytes.is_empty() {
                        if drained.finished {
                            return;
                        }
                        more = false;
                        continue;
                    }
                    if !gate.is_open() {
                        tokio::select! {
                            () = gate.open() => {}
                            () = cancel.cancelled() => {
                                return flush_and_close(writer, &mut reader, drained.bytes, &outgoing).await;
                            }
                        }
                    }
                    // Written, or lost with the connection and seen as gaps.
                    if let Err(e) = writer.write_all(&drained.bytes).await {
                        break e.to_string();
                    }
                }
            }
        };
        gate.publisher(false);
        lost(&mut lost_at, &config.xsub, &why);
        let _ = reports.try_send(outage("XSUB", &config.xsub, &why));
    }
}

/// A closing publisher's last act: `buf` and whatever is still queued (the last events,
/// the sequence marks, the goodbye) are written, even if the writes were being held for
/// the forwarder to confirm subscriptions: a close there used to write only the batch
/// being held and lose the rest (the demo lost a bidder's last event, and since it was the
/// first of its name, nothing reported it). Then the connection closes in order: our end
/// of stream after the data, and what the forwarder still sends is read until it closes
/// too, since dropping a socket with unread input resets it instead.
async fn flush_and_close(
    mut writer: conn::Writer,
    reader: &mut Reader,
    held: Bytes,
    queue: &SendQueue,
) {
    let mut rest = held;
    loop {
        if writer.write_all(&rest).await.is_err() {
            return;
        }
        rest = queue.drain(usize::MAX).bytes;
        if rest.is_empty() {
            break;
        }
    }
    if writer.shutdown().await.is_err() {
        return;
    }
    let drained = async { while let Ok(Some(_)) = reader.next_frame().await {} };
    CloseDeadlines::DEFAULT
        .left("the forwarder's side of the connection", drained)
        .await;
}

/// Keeps a SUB connection up, (re)sends the subscriptions, and hands received messages to
/// the emitter.
async fn subscribe(
    config: ZmqConfig,
    mut changes: mpsc::UnboundedReceiver<(bool, Bytes)>,
    incoming: mpsc::Sender<Incoming>,
    stalled: Arc<Notify>,
    gate: Arc<SubscriptionGate>,
    hello: Arc<OnceLock<ControlFrame>>,
    cancel: CancellationToken,
) {
    let mut sync = SubscriptionSync::new(config.sync_timeout);
    let mut cache = DecodeCache::default();
    let mut lost_at = None;
    // Whether (and what) the node was told of the bus it joined.
    let mut joining = Joining::new(config.curve.as_ref().map(|c| c.name.clone()));
    loop {
        let Some((mut reader, mut writer)) = connect_with_backoff(
            &config,
            &config.xpub,
            SocketType::Sub,
            &cancel,
            &incoming,
            lost_at,
        )
        .await
        else {
            return;
        };
        let all = sync.connected(tokio::time::Instant::now());
        // Checked once per `silence_timeout`, not reset per message: a message count that has
        // not moved between two checks is silence (noticed within one to two timeouts).
        let mut silence = tokio::time::interval_at(
            tokio::time::Instant::now() + config.silence_timeout,
            config.silence_timeout,
        );
        let (mut received, mut received_at_check) = (0u64, 0u64);
        let why = if let Err(e) = writer.write_all(&all).await {
            e.to_string()
        } else {
            loop {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = sync_deadline(sync.deadline()) => {
                        let next = given_up(&mut sync, &mut joining, &gate, hello.get(), &config);
                        match carry_out(next, &incoming, &mut writer).await {
                            Ok(true) => {}
                            Ok(false) => return,
                            Err(why) => break why,
                        }
                    }
                    () = sync_deadline(joining.deadline()) => {
                        if !send_all(&incoming, joining.timed_out().tell).await {
                            return;
                        }
                    }
                    _ = silence.tick() => {
                        if received == received_at_check {
                            // Not even our own heartbeats came back: remake both connections.
                            stalled.notify_one();
                            break format!("nothing arrived for {:?}", config.silence_timeout);
                        }
                        received_at_check = received;
                    }
                    Some((on, topic)) = changes.recv() => {
                        let out = sync.change(tokio::time::Instant::now(), on, &topic);
                        if let Err(e) = writer.write_all(&out).await {
                            break e.to_string();
                        }
                    }
                    message = reader.next_message() => match message {
                        Ok(Some(Received::Message(parts))) => {
                            received += 1;
                            let answered = answer(&parts, &mut sync, &mut joining, &gate, hello.get(), &config);
                            if let Some(next) = answered {
                                match carry_out(next, &incoming, &mut writer).await {
                                    Ok(true) => continue,
                                    Ok(false) => return,
                                    Err(why) => break why,
                                }
                            }
                            let Some(item) = to_incoming(parts, &config, &mut cache) else {
                                continue;
                            };
                            if !joining.is_joined()
                                && let Incoming::Frame { frame, .. } = &item
                                && let Some(ask) = joining.heard(frame, hello.get()).write
                                && let Err(e) = writer.write_all(&ask).await
                            {
                                break e.to_string();
                            }
                            if incoming.send(item).await.is_err() {
                                return;
                            }
                        }
                        Ok(Some(Received::Command)) => {}
                        Ok(None) => break "it closed the connection".to_owned(),
                        Err(e) => break e.to_string(),
                    },
                }
            }
        };
        gate.update(false, sync.changes());
        lost(&mut lost_at, &config.xpub, &why);
        if incoming
            .send(outage("XPUB", &config.xpub, &why))
            .await
            .is_err()
        {
            return;
        }
    }
}

/// A message the forwarder addressed to this client: a confirmation (with the first
/// census) or the second census. What to tell the node and write back; `None` for any
/// other message.
fn answer(
    parts: &[Bytes],
    sync: &mut SubscriptionSync,
    joining: &mut Joining,
    gate: &SubscriptionGate,
    hello: Option<&ControlFrame>,
    config: &ZmqConfig,
) -> Option<joining::Next> {
    let topic = parts.first()?;
    if topic[..] == *wire::CENSUS_AGAIN {
        return Some(joining.census_again(parts, hello));
    }
    let confirmed = sync.reply(topic)?;
    let now = tokio::time::Instant::now();
    let mut next = joining.confirmed(joined_from(Some(parts), config), hello, now);
    gate.update(true, confirmed.applied);
    next.write = Some(match next.write.take() {
        Some(ask) => [confirmed.write, ask].concat().into(),
        None => confirmed.write,
    });
    Some(next)
}

/// No confirmation came in time: a forwarder that does not give them (a libzmq proxy).
/// Listeners are announced anyway; the subscription has had its head start.
fn given_up(
    sync: &mut SubscriptionSync,
    joining: &mut Joining,
    gate: &SubscriptionGate,
    hello: Option<&ControlFrame>,
    config: &ZmqConfig,
) -> joining::Next {
    let now = tokio::time::Instant::now();
    let Some(given_up) = sync.timed_out(now) else {
        return joining::Next::default();
    };
    tracing::debug!(
        "the forwarder did not confirm subscriptions within {:?}",
        config.sync_timeout
    );
    let mut next = joining.confirmed(joined_from(None, config), hello, now);
    gate.update(true, given_up.applied);
    next.write = Some(given_up.write);
    next
}

/// Tells the node and writes to the forwarder what `next` says: false once the emitter is
/// gone, an error (why) if the write failed.
async fn carry_out(
    next: joining::Next,
    incoming: &mpsc::Sender<Incoming>,
    writer: &mut conn::Writer,
) -> Result<bool, String> {
    if !send_all(incoming, next.tell).await {
        return Ok(false);
    }
    if let Some(write) = next.write {
        writer.write_all(&write).await.map_err(|e| e.to_string())?;
    }
    Ok(true)
}

/// Hands `items` to the emitter; false once it is gone.
async fn send_all(incoming: &mpsc::Sender<Incoming>, items: Vec<Incoming>) -> bool {
    for item in items {
        if incoming.send(item).await.is_err() {
            return false;
        }
    }
    true
}

/// What the first confirmation (`None`: none came) says of the bus: with the census this
/// project's forwarder puts in the answer to [`CENSUS_SYNC`](wire::CENSUS_SYNC), how many
/// other nodes it had (a census that does not decode is reported); from a forwarder that
/// gives none, that it cannot be counted.
fn joined_from(parts: Option<&[Bytes]>, config: &ZmqConfig) -> Vec<Incoming> {
    let census = parts.and_then(|parts| {
        parts
            .get(2)
            .filter(|_| parts.first().is_some_and(|t| t[..] == *wire::CENSUS_SYNC))
    });
    let Some(census) = census else {
        return vec![Incoming::NoCensus];
    };
    match wire::decode_census(census) {
        Ok(None) => vec![Incoming::NoCensus],
        Ok(Some(ids)) => {
            let me = config.curve.as_ref().map(|c| c.name.as_str());
            let peers = ids.iter().filter(|id| Some(id.as_str()) != me).count();
            vec![Incoming::Joined { peers: Some(peers) }]
        }
        Err(e) => vec![
            Incoming::Report(ErrorReport::new(
                ErrorKind::Deserialization,
                1,
                format!("the forwarder's census at {}: {e}", config.xpub),
            )),
            Incoming::NoCensus,
        ],
    }
}

/// Resolves when a pending confirmation times out; never without one.
async fn sync_deadline(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Every current subscription, then a confirmation request covering `covers` changes: what
/// a (re)connected subscriber writes first.
/// A received message as what the emitter gets: a frame, a report of why it was dropped, or
/// nothing for topics this project does not map.
fn to_incoming(parts: Vec<Bytes>, config: &ZmqConfig, cache: &mut DecodeCache) -> Option<Incoming> {
    match wire::decode(parts, config.max_frame_bytes, cache) {
        Ok(Some(frame)) => {
            // With names checked, the forwarder let this origin through only from the key
            // bound to it: the source is proven.
            let from = config.names_checked().then(|| frame.source().clone());
            Some(Incoming::Frame { from, frame })
        }
        Ok(None) => None,
        Err(e) => Some(Incoming::Report(ErrorReport::new(
            ErrorKind::Deserialization,
            1,
            format!("dropped a message from the forwarder: {e}"),
        ))),
    }
}

#[cfg(test)]
mod tests {
    use demitter_core::{EventFrame, NodeId};

    use super::*;

    fn event(size: usize) -> Frame {
        Frame::Event(EventFrame {
            name: "queue.test".into(),
            source: NodeId::new("sender").expect("valid"),
            epoch: 1,
            seq: 1,
            payload: Bytes::from(vec![0x5a; size]),
        })
    }

    #[tokio::test]
    async fn the_send_queue_is_bounded_in_bytes_while_the_forwarder_is_away() {
        // Nothing listens on port 9 of loopback: the publisher never connects, so nothing
        // leaves the queue. Its message bound (65,536) would take all 100 events.
        let mut config = ZmqConfig::new("127.0.0.1:9", "127.0.0.1:9");
        config.send_queue_bytes = 1 << 20;
        let transport = ZmqTransport::connect(config);
        let accepted = (0..100)
            .filter(|_| transport.send(event(64 * 1024), Destination::All).is_ok())
            .count();
        assert_eq!(accepted, 15, "as many 64 KiB events as fit in 1 MiB");
        assert!(transport.outgoing.queued_bytes() <= 1 << 20);
        match transport.send(event(64 * 1024), Destination::All) {
            Err(Error::SendQueueFull { max_bytes, .. }) => assert_eq!(max_bytes, 1 << 20),
            other => panic!("expected a full queue, got {other:?}"),
        }
        transport.close().await;
    }
}
