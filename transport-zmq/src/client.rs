//! [`ZmqTransport`]: an emitter's connection to a forwarder — a PUB to its XSUB side and a
//! SUB to its XPUB side, each kept up by its own task.
//!
//! `connect` returns at once; the tasks connect when the forwarder is there, and reconnect
//! (with backoff, resending subscriptions) when it restarts. Outages are reported on the
//! emitter's error channel; events that cannot be queued are refused and counted by the
//! emitter, and receivers see the loss as sequence gaps.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use demitter_core::{
    Capabilities, DEFAULT_MAX_FRAME_BYTES, Destination, Error, ErrorKind, ErrorReport, Frame,
    Incoming, Pattern, SourceCache, Transport,
};
use futures_util::future::BoxFuture;
use parking_lot::Mutex;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::conn::{self, Incoming as ZmtpIncoming, Reader};
use crate::error::ZmqError;
use crate::wire;
use crate::zmtp::{self, SocketType};

/// Settings of a [`ZmqTransport`].
#[derive(Debug, Clone)]
pub struct ZmqConfig {
    /// The forwarder's XSUB side (`host:port`), where events are published.
    pub xsub: String,
    /// The forwarder's XPUB side (`host:port`), where events are received.
    pub xpub: String,
    /// Events queued for sending before further ones are refused.
    pub send_queue: usize,
    /// Received messages queued for the emitter before the connection is read more slowly.
    pub receive_queue: usize,
    /// The largest event accepted; larger ones are refused and reported.
    pub max_frame_bytes: usize,
    /// The first pause before reconnecting; it doubles up to `reconnect_max`.
    pub reconnect_min: Duration,
    /// The longest pause before reconnecting.
    pub reconnect_max: Duration,
}

impl ZmqConfig {
    /// Settings for a forwarder at these addresses (`host:port` each).
    pub fn new(xsub: impl Into<String>, xpub: impl Into<String>) -> Self {
        Self {
            xsub: xsub.into(),
            xpub: xpub.into(),
            send_queue: 65_536,
            receive_queue: 65_536,
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            reconnect_min: Duration::from_millis(50),
            reconnect_max: Duration::from_secs(2),
        }
    }
}

/// A connection to a forwarder. See the [module docs](crate::client).
#[derive(Debug)]
pub struct ZmqTransport {
    outgoing: mpsc::Sender<Bytes>,
    interest: Mutex<HashMap<Bytes, usize>>,
    subscriptions: mpsc::UnboundedSender<(bool, Bytes)>,
    incoming: tokio::sync::Mutex<mpsc::Receiver<Incoming>>,
    max_frame_bytes: usize,
    closed: AtomicBool,
    cancel: CancellationToken,
    tasks: TaskTracker,
}

impl ZmqTransport {
    /// Starts connecting to the forwarder and returns at once. Call within a tokio
    /// runtime.
    pub fn connect(config: ZmqConfig) -> Self {
        let (outgoing, queue) = mpsc::channel(config.send_queue.max(1));
        let (subscriptions, subscription_rx) = mpsc::unbounded_channel();
        let (incoming_tx, incoming) = mpsc::channel(config.receive_queue.max(1));
        let cancel = CancellationToken::new();
        let tasks = TaskTracker::new();
        tasks.spawn(publish(
            config.clone(),
            queue,
            incoming_tx.clone(),
            cancel.clone(),
        ));
        let max_frame_bytes = config.max_frame_bytes;
        tasks.spawn(subscribe(
            config,
            subscription_rx,
            incoming_tx,
            cancel.clone(),
        ));
        tasks.close();
        Self {
            outgoing,
            interest: Mutex::new(HashMap::new()),
            subscriptions,
            incoming: tokio::sync::Mutex::new(incoming),
            max_frame_bytes,
            closed: AtomicBool::new(false),
            cancel,
            tasks,
        }
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
            let _ = self.subscriptions.send((subscribe, prefix));
        }
    }
}

impl Transport for ZmqTransport {
    fn capabilities(&self) -> Capabilities {
        Capabilities::broadcast(self.max_frame_bytes)
    }

    fn send(&self, frame: Frame, _to: Destination) -> Result<(), Error> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        match self.outgoing.try_send(wire::encode(&frame)) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => Err(Error::Transport(
                "the send queue is full: the forwarder is unreachable or slower than the emitter"
                    .into(),
            )),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(Error::Closed),
        }
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
        self.cancel.cancel();
        Box::pin(async move {
            // The publisher gets a moment to flush what is queued (the goodbye among it).
            if tokio::time::timeout(Duration::from_secs(2), self.tasks.wait())
                .await
                .is_err()
            {
                tracing::warn!("the ZeroMQ transport's tasks did not stop within 2 s");
            }
        })
    }
}

/// Connects to `addr` as `ours`, pausing between attempts; `None` once cancelled.
async fn connect_with_backoff(
    config: &ZmqConfig,
    addr: &str,
    ours: SocketType,
    cancel: &CancellationToken,
    reports: &mpsc::Sender<Incoming>,
) -> Option<(Reader, OwnedWriteHalf)> {
    let mut pause = config.reconnect_min;
    let mut attempt = 0u32;
    loop {
        let result = async {
            let stream = TcpStream::connect(addr).await?;
            conn::handshake(stream, ours, config.max_frame_bytes + 64 * 1024).await
        };
        let outcome = tokio::select! {
            () = cancel.cancelled() => return None,
            outcome = result => outcome,
        };
        match outcome {
            Ok((reader, writer, _)) => {
                if attempt > 0 {
                    tracing::info!(%addr, side = ours.name(), "connected to the forwarder");
                }
                return Some((reader, writer));
            }
            Err(e) => {
                attempt += 1;
                if attempt == 1 {
                    tracing::info!(%addr, "forwarder not reachable yet ({e}); retrying");
                }
                if let ZmqError::IncompatiblePeer { .. } | ZmqError::Handshake(_) = e {
                    let _ = reports.try_send(Incoming::Report(ErrorReport::new(
                        ErrorKind::Refused,
                        1,
                        format!("the peer at {addr} is not a forwarder this emitter can use: {e}"),
                    )));
                }
            }
        }
        tokio::select! {
            () = cancel.cancelled() => return None,
            () = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(config.reconnect_max);
    }
}

fn outage(side: &str, addr: &str, why: &str) -> Incoming {
    Incoming::Report(ErrorReport::new(
        ErrorKind::Network,
        1,
        format!("lost the forwarder's {side} side at {addr} ({why}); reconnecting"),
    ))
}

/// Keeps a PUB connection up and writes queued events to it.
///
/// Unlike a libzmq PUB it does not filter by the forwarder's subscriptions: an emitter
/// learns of a remote listener through the presence protocol, on another connection than
/// the subscription takes, and must not drop the first events because the subscription has
/// not reached it yet. The forwarder filters for every subscriber anyway.
async fn publish(
    config: ZmqConfig,
    mut queue: mpsc::Receiver<Bytes>,
    reports: mpsc::Sender<Incoming>,
    cancel: CancellationToken,
) {
    let mut batch = Vec::with_capacity(256);
    let mut buf = BytesMut::with_capacity(64 * 1024);
    loop {
        let Some((mut reader, mut writer)) =
            connect_with_backoff(&config, &config.xsub, SocketType::Pub, &cancel, &reports).await
        else {
            return;
        };
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
                n = queue.recv_many(&mut batch, 256) => {
                    if n == 0 {
                        return;
                    }
                    buf.clear();
                    for bytes in batch.drain(..) {
                        buf.extend_from_slice(&bytes);
                    }
                    if let Err(e) = writer.write_all(&buf).await {
                        break e.to_string();
                    }
                }
                () = cancel.cancelled() => {
                    // Flush what is already queued (the goodbye among it), then stop.
                    buf.clear();
                    while let Ok(bytes) = queue.try_recv() {
                        buf.extend_from_slice(&bytes);
                    }
                    let _ = writer.write_all(&buf).await;
                    return;
                }
            }
        };
        tracing::warn!(addr = %config.xsub, "lost the forwarder ({why}); reconnecting");
        let _ = reports.try_send(outage("XSUB", &config.xsub, &why));
    }
}

/// Keeps a SUB connection up, (re)sends the subscriptions, and hands received messages to
/// the emitter.
async fn subscribe(
    config: ZmqConfig,
    mut changes: mpsc::UnboundedReceiver<(bool, Bytes)>,
    incoming: mpsc::Sender<Incoming>,
    cancel: CancellationToken,
) {
    let mut topics: Vec<Bytes> = vec![Bytes::from_static(wire::CONTROL_TOPIC)];
    let mut sources = SourceCache::default();
    loop {
        let Some((mut reader, mut writer)) =
            connect_with_backoff(&config, &config.xpub, SocketType::Sub, &cancel, &incoming).await
        else {
            return;
        };
        let mut all = BytesMut::new();
        for topic in &topics {
            all.extend_from_slice(&zmtp::subscription(true, topic));
        }
        let why = if let Err(e) = writer.write_all(&all).await {
            e.to_string()
        } else {
            loop {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    Some((on, topic)) = changes.recv() => {
                        if on {
                            topics.push(topic.clone());
                        } else if let Some(at) = topics.iter().position(|t| *t == topic) {
                            topics.swap_remove(at);
                        }
                        if let Err(e) = writer.write_all(&zmtp::subscription(on, &topic)).await {
                            break e.to_string();
                        }
                    }
                    message = reader.next_message() => match message {
                        Ok(Some(ZmtpIncoming::Message(parts))) => {
                            let item = match wire::decode(parts, config.max_frame_bytes, &mut sources) {
                                Ok(Some(frame)) => Incoming::Frame { from: None, frame },
                                Ok(None) => continue,
                                Err(e) => Incoming::Report(ErrorReport::new(
                                    ErrorKind::Deserialization,
                                    1,
                                    format!("dropped a message from the forwarder: {e}"),
                                )),
                            };
                            if incoming.send(item).await.is_err() {
                                return;
                            }
                        }
                        Ok(Some(ZmtpIncoming::Command)) => {}
                        Ok(None) => break "it closed the connection".to_owned(),
                        Err(e) => break e.to_string(),
                    },
                }
            }
        };
        tracing::warn!(addr = %config.xpub, "lost the forwarder ({why}); reconnecting");
        if incoming
            .send(outage("XPUB", &config.xpub, &why))
            .await
            .is_err()
        {
            return;
        }
    }
}
