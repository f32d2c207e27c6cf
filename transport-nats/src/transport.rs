//! [`NatsTransport`]: one emitter's connection to a NATS server or cluster.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use async_nats::{Client, ConnectOptions, Subject};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use demitter_core::protocol::{Control, SequenceMark};
use demitter_core::record::{RECORD_HEADER, RecordDecoder, put_record_header};
use demitter_core::{
    Backoff, BatchInbox, Capabilities, CloseDeadlines, ControlFrame, Destination, Error, Frame,
    Incoming, NodeId, Pattern, SendQueue, Transport,
};
use futures_util::future::BoxFuture;
use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::batch::Batcher;
use crate::client_events::report_client_events;
use crate::config::{NatsConfig, NatsIdentity};
use crate::decode::MessageDecoder;
use crate::error::NatsError;
use crate::receive::{SubscriptionChange, receive};
use crate::subject;
use crate::subscriptions::{Plan, WantedFilters};

/// Batches of received items waiting for the emitter.
const INBOX_BATCHES: usize = 256;
/// The most bytes the publishing task takes from the queue at once.
const PUBLISH_BATCH: usize = 64 * 1024;
/// The most bytes of frames the publisher gathers into one message: with a subscription's
/// buffer of messages, it bounds what a receiver's client may hold.
const MAX_BATCH: usize = 16 * 1024;
/// Client events (disconnects, slow-consumer drops) waiting to be reported.
const CLIENT_EVENTS: usize = 1024;
/// Messages the client's command channel holds (async-nats's default is 2,048): the
/// publisher waits on it, so what is waiting to be sent stays in the send queue, which is
/// bounded by bytes, instead of in a channel bounded only by count.
const CLIENT_CAPACITY: usize = 128;
/// A record of the send queue: a subject and a frame, to publish.
const KIND_MESSAGE: u8 = 0;
/// A record of the send queue: the wanted filters changed (the publisher looks at them
/// before every record anyway; this one wakes it).
const KIND_INTEREST: u8 = 1;
/// How long the server is given to refuse the permission probe (see
/// [`NatsTransport::connect`]).
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);
/// The longest subject this transport writes: the prefix, a kind, an escaped node id and
/// an escaped name (each byte at most three).
const MAX_SUBJECT: usize = 32 + 3 * 2 * demitter_core::MAX_NAME_BYTES;

/// An emitter's connection to NATS: every frame is published on a subject of the bus's
/// prefix (events, and the sequence marks of each name, on the subject of their name, see
/// [`subject`]); frames of one subject that wait one after another in the send queue go
/// as one message. A node receives control frames on one subscription and events on one per
/// pattern, so the servers carry an event only to nodes that may listen. Where two of a
/// node's subscriptions overlap, it reads each subject from the older one only, so each
/// name's events and marks arrive once and in the order sent.
///
/// NATS carries the traffic between machines; what NATS does not offer (bus-wide listener
/// counts, sequence numbers, loss reports) the core does, as on every transport.
///
/// With a [`NatsIdentity`](crate::NatsIdentity) the connection is mutual TLS, the node's
/// id is its certificate's name, and the transport declares itself authenticated: each
/// frame's sender is the one its subject names, which the servers' permissions
/// ([`crate::authorization`]) prove. Without one, anyone who can reach the servers can
/// join and emit under any name: the transport declares itself unauthenticated, as
/// ZeroMQ's is.
///
/// ```no_run
/// use demitter_core::Emitter;
/// use demitter_nats::{NatsConfig, NatsTransport};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let transport = NatsTransport::connect(NatsConfig::from_url("nats://127.0.0.1:4222")?).await?;
/// let emitter = Emitter::new(transport)?;
/// emitter.emit("greeting", "hello").await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct NatsTransport {
    /// `None` once aborted: dropping the last client handle drops the connection.
    client: Mutex<Option<Client>>,
    queue: Arc<SendQueue>,
    inbox: BatchInbox,
    prefix: String,
    max_frame_bytes: usize,
    /// The last event's subject, for the next event of the same source and name.
    last_subject: Mutex<Option<LastSubject>>,
    /// The filters the node's patterns want, which the publisher subscribes to.
    wanted: Arc<Mutex<WantedFilters>>,
    /// The name the servers' permissions bind this node to, when authenticated.
    identity: Option<NodeId>,
    /// This node's id as a subject token, once known (from the identity, or the first
    /// frame sent), shared with the receiver.
    own_token: Arc<OnceLock<String>>,
    closed: AtomicBool,
    /// Stops the reader and the event reporter; the publisher stops when its queue closes.
    cancel: CancellationToken,
    tasks: TaskTracker,
    publisher: TaskTracker,
}

impl NatsTransport {
    /// Connects to the first server that answers (then fails over between all of them),
    /// subscribes to the bus's control subjects, and starts publishing. Must be called within a tokio runtime.
    ///
    /// With an identity it connects with mutual TLS, then publishes an empty message on a
    /// control subject of no node (`PREFIX.c.~`) and requires the server to refuse it
    /// within 2 s: a server that would let this node publish under another's name fails
    /// the connect ([`NatsError::PermissionsNotEnforced`]) instead of making a bus that
    /// only looks authenticated.
    pub async fn connect(config: NatsConfig) -> Result<Self, NatsError> {
        config.validate()?;
        let identity = config
            .identity
            .as_ref()
            .map(NatsIdentity::check)
            .transpose()?;
        let (events_tx, mut events_rx) = mpsc::channel(CLIENT_EVENTS);
        let options = connect_options(&config, events_tx);
        let servers = config.server_urls();
        // Boxed: the client's connect future is large, and would make every future that
        // awaits this one as large.
        let client = Box::pin(options.connect(servers.clone()))
            .await
            .map_err(|source| NatsError::Connect {
                servers: servers.join(","),
                source,
            })?;
        let max_frame_bytes = config
            .max_frame_bytes
            .min(client.server_info().max_payload.max(1024));
        let control = format!("{}.c.>", config.prefix);
        let subscriber =
            client
                .subscribe(control.clone())
                .await
                .map_err(|source| NatsError::Subscribe {
                    subject: control,
                    source,
                })?;
        let early_events = if identity.is_some() {
            probe_permissions(&client, &config.prefix, &mut events_rx).await?
        } else {
            Vec::new()
        };
        let (inbox_tx, inbox) = BatchInbox::channel(INBOX_BATCHES);
        let transport = Self {
            queue: Arc::new(SendQueue::new(config.send_queue_bytes, usize::MAX)),
            inbox,
            prefix: config.prefix,
            max_frame_bytes,
            last_subject: Mutex::new(None),
            wanted: Arc::default(),
            identity: identity.clone(),
            own_token: Arc::new(
                identity
                    .as_ref()
                    .map(|id| OnceLock::from(subject::escape_segment(id.as_str())))
                    .unwrap_or_default(),
            ),
            closed: AtomicBool::new(false),
            cancel: CancellationToken::new(),
            tasks: TaskTracker::new(),
            publisher: TaskTracker::new(),
            client: Mutex::new(Some(client.clone())),
        };
        let (changes_tx, changes) = mpsc::unbounded_channel();
        transport.publisher.spawn(publish(
            client,
            Arc::clone(&transport.queue),
            Publishing {
                max_message: max_frame_bytes.min(MAX_BATCH),
                wanted: Arc::clone(&transport.wanted),
                changes: changes_tx,
            },
        ));
        transport.tasks.spawn(receive(
            subscriber,
            changes,
            inbox_tx.clone(),
            {
                let decoder = MessageDecoder::new(&transport.prefix, max_frame_bytes)
                    .sharing_own_token(Arc::clone(&transport.own_token));
                if identity.is_some() {
                    decoder.authenticated()
                } else {
                    decoder
                }
            },
            transport.cancel.clone(),
        ));
        transport.tasks.spawn(report_client_events(
            early_events,
            events_rx,
            inbox_tx,
            transport.cancel.clone(),
        ));
        tracing::info!(servers = %servers.join(","), "connected to NATS");
        Ok(transport)
    }

    /// The server this emitter is connected to now, as `HOST:PORT` (`None` once closed).
    pub fn connected_to(&self) -> Option<String> {
        let client = self.client.lock();
        let info = client.as_ref()?.server_info();
        Some(format!("{}:{}", info.host, info.port))
    }

    /// Drops the connection at once, sending nothing more, as a crash would.
    pub fn abort(&self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            self.queue.discard();
            self.cancel.cancel();
            drop(self.client.lock().take());
        }
    }

    /// The subject a frame is published on: a control frame for one peer carries the
    /// peer's id as a last token. A run of events of one name from one source (the common
    /// case) reuses the last event's subject instead of escaping again.
    fn subject_of(&self, frame: &Frame, to: &Destination) -> Arc<str> {
        match frame {
            Frame::Event(event) => {
                let mut last = self.last_subject.lock();
                if let Some(last) = last.as_ref()
                    && last.source == event.source
                    && *last.name == *event.name
                {
                    return Arc::clone(&last.subject);
                }
                let subject: Arc<str> = self.event_subject(&event.source, &event.name).into();
                *last = Some(LastSubject {
                    source: event.source.clone(),
                    name: Arc::clone(&event.name),
                    subject: Arc::clone(&subject),
                });
                subject
            }
            Frame::Control(control) => {
                let sender = subject::escape_segment(control.source.as_str());
                match to {
                    Destination::Peer(peer) => format!(
                        "{}.c.{sender}.{}",
                        self.prefix,
                        subject::escape_segment(peer.as_str())
                    ),
                    Destination::All | Destination::Peers(_) => {
                        format!("{}.c.{sender}", self.prefix)
                    }
                }
                .into()
            }
        }
    }
}

impl NatsTransport {
    /// The subject of `source`'s events named `name`.
    fn event_subject(&self, source: &NodeId, name: &str) -> String {
        format!(
            "{}.e.{}.{}",
            self.prefix,
            subject::escape_segment(source.as_str()),
            subject::escape_name(name)
        )
    }

    /// Queues `frame` to be published on `subject`.
    fn push(&self, subject: &str, frame: &Frame) -> Result<(), Error> {
        let body_len = 2 + subject.len() + frame.encoded_len();
        let is_event = matches!(frame, Frame::Event(_));
        self.queue
            .push_with(RECORD_HEADER + body_len, is_event, |buf: &mut BytesMut| {
                put_record_header(buf, KIND_MESSAGE, body_len);
                buf.put_u16(u16::try_from(subject.len()).unwrap_or(u16::MAX));
                buf.put_slice(subject.as_bytes());
                frame.encode(buf);
            })
    }

    /// Queues each of a `Sequences` or `Marks` message's marks alone, on the subject of its
    /// name: a receiver gets a name's events and its marks on one subscription, in the
    /// order sent, so a mark never overtakes the events it describes. The message's
    /// announcement number, which vouches for every mark of it, goes last and alone on the
    /// control subject (to everyone, or to the asker); the marks alone carry none.
    fn push_marks(&self, control: &ControlFrame, to: &Destination) -> Result<(), Error> {
        let message = Control::decode(&control.body).ok();
        let Some(Control::Sequences { last, moved, .. } | Control::Marks { last, moved, .. }) =
            &message
        else {
            tracing::error!("a control message that looked like marks did not decode; dropped");
            return Ok(());
        };
        let frame_of = |last: Vec<SequenceMark>, moved: u64| {
            message
                .as_ref()
                .and_then(|message| with_marks(message, last, moved))
                .map(|body| {
                    Frame::Control(ControlFrame {
                        source: control.source.clone(),
                        body: body.encode(),
                    })
                })
        };
        for mark in last {
            let subject = self.event_subject(&control.source, &mark.name);
            if let Some(frame) = frame_of(vec![mark.clone()], 0) {
                self.push(&subject, &frame)?;
            }
        }
        if *moved > 0
            && let Some(number) = frame_of(Vec::new(), *moved)
        {
            let subject = self.subject_of(&number, to);
            self.push(&subject, &number)?;
        }
        Ok(())
    }

    /// Notes that the wanted filters changed, and wakes the publisher to subscribe.
    fn interest_changed(&self) {
        // Refused only when the queue is full (the publisher is then busy, and looks at
        // the filters before its next record) or closed.
        let _ = self
            .queue
            .push_with(RECORD_HEADER, false, |buf: &mut BytesMut| {
                put_record_header(buf, KIND_INTEREST, 0);
            });
    }
}

/// `message`, marks or an answer made of marks, with other marks and announcement number.
fn with_marks(message: &Control, last: Vec<SequenceMark>, moved: u64) -> Option<Control> {
    match message {
        Control::Sequences { epoch, .. } => Some(Control::Sequences {
            epoch: *epoch,
            last,
            moved,
        }),
        Control::Marks {
            epoch, to, after, ..
        } => Some(Control::Marks {
            epoch: *epoch,
            to: to.clone(),
            after: *after,
            moved,
            last,
        }),
        _ => None,
    }
}

/// An event's source and name, and the subject they make.
#[derive(Debug)]
struct LastSubject {
    source: NodeId,
    name: Arc<str>,
    subject: Arc<str>,
}

/// The client's settings: no echo, the limits, the servers in the order given, reconnect
/// backoff, events into `events`, and mutual TLS with an identity.
fn connect_options(config: &NatsConfig, events: mpsc::Sender<async_nats::Event>) -> ConnectOptions {
    let backoff = Backoff::new(
        std::time::Duration::from_millis(20),
        std::time::Duration::from_secs(1),
    );
    let options = ConnectOptions::new()
        .no_echo()
        .name("demitter")
        .subscription_capacity(config.subscription_capacity)
        .client_capacity(CLIENT_CAPACITY)
        .connection_timeout(config.connect_timeout)
        // The servers are tried in the order given (then those the cluster names), so
        // that a program chooses which server its emitters use first.
        .retain_servers_order()
        .reconnect_delay_callback(move |attempts| {
            backoff.delay(u32::try_from(attempts).unwrap_or(u32::MAX))
        })
        .event_callback(move |event| {
            // Never waits: a full channel loses the event, which the sequence gaps
            // still account for.
            let _ = events.try_send(event);
            async {}
        });
    match &config.identity {
        Some(identity) => options
            .require_tls(true)
            .add_root_certificates(identity.ca_cert.clone())
            .add_client_certificate(identity.cert.clone(), identity.key.clone()),
        None => options,
    }
}

/// Publishes on a control subject of no node and waits for the server to refuse it, as
/// it must when each node may publish only on its own subjects. Returns the client's
/// other events meanwhile, for the reporter.
async fn probe_permissions(
    client: &Client,
    prefix: &str,
    events: &mut mpsc::Receiver<async_nats::Event>,
) -> Result<Vec<async_nats::Event>, NatsError> {
    let probe = format!("{prefix}.c.~");
    let not_enforced = || NatsError::PermissionsNotEnforced {
        subject: probe.clone(),
        waited: PROBE_TIMEOUT,
    };
    client
        .publish(probe.clone(), Bytes::new())
        .await
        .map_err(|_| not_enforced())?;
    client.flush().await.map_err(|_| not_enforced())?;
    let mut others = Vec::new();
    let refused = tokio::time::timeout(PROBE_TIMEOUT, async {
        while let Some(event) = events.recv().await {
            match &event {
                async_nats::Event::ServerError(async_nats::ServerError::Other(message))
                    if message.contains("Permissions Violation") && message.contains(&probe) =>
                {
                    return true;
                }
                _ => others.push(event),
            }
        }
        false
    })
    .await;
    match refused {
        Ok(true) => Ok(others),
        _ => Err(not_enforced()),
    }
}

/// What the publisher needs to keep the subscriptions in step with the patterns.
struct Publishing {
    /// The most bytes of one message.
    max_message: usize,
    wanted: Arc<Mutex<WantedFilters>>,
    /// To the receiver: the subscriptions made and given up.
    changes: mpsc::UnboundedSender<SubscriptionChange>,
}

impl Publishing {
    /// Makes the subscriptions serve the wanted filters as of now; `held` are those
    /// held, oldest first. Returns the version applied.
    async fn resubscribe(&self, client: &Client, held: &mut Vec<String>) -> u64 {
        let (version, wanted) = {
            let wanted = self.wanted.lock();
            (wanted.version(), wanted.filters())
        };
        let plan = Plan::new(held, &wanted);
        for filter in plan.retire {
            held.retain(|h| *h != filter);
            let _ = self.changes.send(SubscriptionChange::Retire(filter));
        }
        for filter in plan.add {
            // Sent through the client's command channel before what is published next,
            // so the server subscribes before any peer hears of the new listener.
            match client.subscribe(filter.clone()).await {
                Ok(subscriber) => {
                    held.push(filter.clone());
                    let _ = self
                        .changes
                        .send(SubscriptionChange::Add { filter, subscriber });
                }
                // Only once the client is closed.
                Err(e) => tracing::debug!("could not subscribe to {filter}: {e}"),
            }
        }
        version
    }
}

/// Publishes what the queue holds, in order, until it is closed and empty; then flushes.
/// Frames of one subject that wait one after another go as one message ([`Batcher`]).
/// Before each record it brings the subscriptions in step with the node's patterns.
async fn publish(client: Client, queue: Arc<SendQueue>, publishing: Publishing) {
    let records = RecordDecoder::new(usize::MAX);
    let mut batcher = Batcher::new(publishing.max_message);
    let mut held = Vec::new();
    let mut applied = 0;
    while let Some(mut rest) = queue.next_batch(PUBLISH_BATCH).await {
        while let Some(record) = records.split_record(&mut rest) {
            if publishing.wanted.lock().version() != applied {
                // What was queued before the change goes before it.
                send_message(&client, batcher.take()).await;
                applied = publishing.resubscribe(&client, &mut held).await;
            }
            // The queue holds only what `send` wrote: a record that does not parse is a
            // bug here, not input from the network.
            let Ok((kind, mut body)) = record else {
                tracing::error!("a malformed record in the NATS send queue; dropped");
                continue;
            };
            if kind == KIND_INTEREST {
                continue;
            }
            let subject_len = usize::from(body.get_u16());
            let subject = body.split_to(subject_len);
            match batcher.push(subject, body) {
                Ok(before) => send_message(&client, before).await,
                Err(_) => {
                    tracing::error!("a subject that is not UTF-8 in the NATS send queue; dropped");
                }
            }
        }
        send_message(&client, batcher.take()).await;
    }
    if let Err(e) = client.flush().await {
        tracing::debug!("the last frames were not flushed: {e}");
    }
}

/// Publishes `message`, if there is one.
async fn send_message(client: &Client, message: Option<(Subject, Bytes)>) {
    if let Some((subject, payload)) = message
        && let Err(e) = client.publish(subject, payload).await
    {
        tracing::debug!("publish failed: {e}");
    }
}

impl Transport for NatsTransport {
    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::broadcast(self.max_frame_bytes);
        caps.blocking_send = true;
        caps.authenticated = self.identity.is_some();
        caps
    }

    fn local_id(&self) -> Option<NodeId> {
        self.identity.clone()
    }

    fn wait_for_room(&self, bytes: usize) -> BoxFuture<'_, ()> {
        Box::pin(
            self.queue
                .wait_for_room(RECORD_HEADER + 2 + MAX_SUBJECT + bytes),
        )
    }

    fn send(&self, frame: Frame, to: Destination) -> Result<(), Error> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        if self.own_token.get().is_none() {
            // The first frame says who this node is: from now on the receiver skips control
            // frames for other peers unread.
            let _ = self
                .own_token
                .set(subject::escape_segment(frame.source().as_str()));
        }
        if let Frame::Control(control) = &frame
            && (Control::is_sequences(&control.body) || Control::is_marks(&control.body))
        {
            return self.push_marks(control, &to);
        }
        let subject = self.subject_of(&frame, &to);
        self.push(&subject, &frame)
    }

    fn subscribe(&self, pattern: &Pattern) {
        self.wanted
            .lock()
            .add(WantedFilters::filter_of(&self.prefix, pattern.as_str()));
        self.interest_changed();
    }

    fn unsubscribe(&self, pattern: &Pattern) {
        self.wanted
            .lock()
            .remove(&WantedFilters::filter_of(&self.prefix, pattern.as_str()));
        self.interest_changed();
    }

    fn recv(&self) -> BoxFuture<'_, Option<Incoming>> {
        Box::pin(self.inbox.recv())
    }

    fn recv_many<'a>(&'a self, into: &'a mut Vec<Incoming>, max: usize) -> BoxFuture<'a, bool> {
        Box::pin(self.inbox.recv_many(into, max))
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if !self.closed.swap(true, Ordering::AcqRel) {
                // The publisher sends what is queued (the goodbye among it) and flushes.
                self.queue.close();
                self.publisher.close();
                let deadlines = CloseDeadlines::DEFAULT;
                if !deadlines
                    .flushed("the frames queued for NATS", self.publisher.wait())
                    .await
                {
                    self.queue.discard();
                }
                self.cancel.cancel();
                drop(self.client.lock().take());
            }
            self.tasks.close();
            self.tasks.wait().await;
        })
    }
}

impl Drop for NatsTransport {
    fn drop(&mut self) {
        self.queue.discard();
        self.cancel.cancel();
    }
}
