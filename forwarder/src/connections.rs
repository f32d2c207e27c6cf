//! The forwarder's I/O: accepting publishers and subscribers, their ZMTP handshakes, and
//! each connection's reader and writer. What they receive goes to the forwarding loop
//! ([`Loop`](crate::switchboard::Loop)); nothing here routes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use demitter_core::SendQueue;
use demitter_zmq::ZmqError;
use demitter_zmq::conn::{self, Reader};
use demitter_zmq::zmtp::{self, RawMessage, SocketType};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::ForwarderConfig;
use crate::switchboard::Event;

/// A connection that did not complete its handshake: a peer that only opened and closed
/// TCP (a port check, a load balancer's probe) is logged at debug; a peer that spoke
/// something else is counted, and logged by the forwarding loop (once per address).
fn refused(
    peer: SocketAddr,
    side: &'static str,
    e: &ZmqError,
    events: &mpsc::UnboundedSender<Event>,
) {
    if e.is_silent_hangup() {
        tracing::debug!(%peer, "a {side} left before its handshake: {e}");
    } else {
        let _ = events.send(Event::Refused {
            peer,
            side,
            why: e.to_string(),
        });
    }
}

/// The handshake on one side of the forwarder: NULL, or CURVE with the allow list as it
/// is now. Returns the reader, the writer, the peer's socket type and, with CURVE, who it
/// is.
async fn handshake(
    stream: tokio::net::TcpStream,
    ours: SocketType,
    config: &ForwarderConfig,
) -> Result<(Reader, conn::Writer, String, Option<conn::CurveClient>), ZmqError> {
    let max = config.max_frame_bytes;
    match &config.curve {
        None => conn::handshake(stream, ours, max)
            .await
            .map(|(reader, writer, peer_type)| (reader, writer, peer_type, None)),
        Some(curve) => {
            let allow = curve.allow_list();
            conn::handshake_curve_server(stream, ours, max, &curve.secret, &allow)
                .await
                .map(|(reader, writer, peer_type, client)| {
                    (reader, writer, peer_type, Some(client))
                })
        }
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

pub(crate) async fn accept_publishers(
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
        let config = config.clone();
        tasks.spawn(async move {
            let (mut reader, writer, peer_type, client) =
                match handshake(stream, SocketType::XSub, &config).await {
                    Ok(parts) => parts,
                    Err(e) => return refused(peer, "publisher", &e, &events),
                };
            let name = client.as_ref().map(|c| c.name.as_str());
            tracing::debug!(%peer, %peer_type, ?name, "publisher connected");
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
            let mut forged_before = false;
            let revoked = revoked(&config, client.as_ref());
            tokio::pin!(revoked);
            loop {
                let message = tokio::select! {
                    () = cancel.cancelled() => break,
                    () = &mut revoked => {
                        tracing::warn!(%peer, ?name, "closing a publisher: its key was removed from the allow list");
                        break;
                    }
                    message = reader.next_raw_message() => message,
                };
                match message {
                    Ok(Some(message)) => {
                        if let Some(name) = name
                            && !sent_as(&message, name)
                        {
                            // An allowed key emitting under another name: dropped, counted,
                            // and said once per connection.
                            if !forged_before {
                                tracing::warn!(%peer, name, "a CURVE publisher sent a message under another name; dropped (and any more)");
                                forged_before = true;
                            }
                            let _ = events.send(Event::Forged);
                            continue;
                        }
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

/// Resolves once the allow list no longer holds `client`'s key; never without CURVE.
async fn revoked(config: &ForwarderConfig, client: Option<&conn::CurveClient>) {
    let (Some(curve), Some(client)) = (&config.curve, client) else {
        return std::future::pending().await;
    };
    let mut allow = curve.watch_allow_list();
    loop {
        if allow.borrow_and_update().name_of(&client.key).is_none() {
            return;
        }
        if allow.changed().await.is_err() {
            return std::future::pending().await;
        }
    }
}

/// Whether `message`'s origin (its second part) names `name`, the name a CURVE
/// publisher's key is bound to, read exactly as every client decodes it.
fn sent_as(message: &RawMessage, name: &str) -> bool {
    let Some(origin) = message.part(1) else {
        return false;
    };
    demitter_zmq::wire::origin_id(&message.topic, &origin) == name.as_bytes()
}

async fn write_control(mut writer: conn::Writer, mut control: mpsc::UnboundedReceiver<Bytes>) {
    while let Some(bytes) = control.recv().await {
        if writer.write_all(&bytes).await.is_err() {
            return;
        }
    }
}

pub(crate) async fn accept_subscribers(
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
        let (queue_len, queue_bytes) = (config.subscriber_queue, config.subscriber_queue_bytes);
        let config = config.clone();
        tasks.spawn(async move {
            let (reader, writer, peer_type, client) =
                match handshake(stream, SocketType::XPub, &config).await {
                    Ok(parts) => parts,
                    Err(e) => return refused(peer, "subscriber", &e, &events),
                };
            let name = client.as_ref().map(|c| c.name.as_str());
            tracing::debug!(%peer, %peer_type, ?name, "subscriber connected");
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
            let revoked = revoked(&config, client.as_ref());
            tokio::select! {
                () = read_subscriptions(reader, id, peer, &events, &cancel) => {}
                () = revoked => {
                    tracing::warn!(%peer, ?name, "closing a subscriber: its key was removed from the allow list");
                }
            }
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
async fn write_messages(mut writer: conn::Writer, queue: Arc<SendQueue>) {
    while let Some(batch) = queue.next_batch(WRITE_BATCH).await {
        if writer.write_all(&batch).await.is_err() {
            queue.discard();
            return;
        }
    }
}
