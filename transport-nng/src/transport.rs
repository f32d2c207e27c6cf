//! [`NngTransport`]: one node of a full mesh of nng bus0 sockets.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use demitter_core::{
    AddressOrigin, Backoff, BatchInbox, Capabilities, CloseDeadlines, DecodeCache, Destination,
    DialTiming, Error, ErrorKind, ErrorReport, Frame, Incoming, PeerDirectory, SendQueue,
    Transport,
};
use futures_util::future::BoxFuture;
use nng::options::transport::tcp::BoundPort;
use nng::options::{
    Options as _, ReconnectMaxTime, ReconnectMinTime, RecvMaxSize, RecvTimeout, SendTimeout,
};
use nng::{Protocol, Socket};
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};

use crate::config::NngConfig;
use crate::error::NngError;
use crate::handover;
use crate::wire::{self, Announce, Item};

/// Frames are written in messages of about this many bytes.
const BATCH_BYTES: usize = 64 * 1024;
/// Batches of received items waiting for the emitter.
const INBOX_BATCHES: usize = 256;
/// The least time between two messages that are not full: see `write_loop`.
const MESSAGE_GAP: Duration = Duration::from_micros(50);
/// How long `close` leaves nng to put the last messages (the goodbye) on the wire: nng has
/// no flush, and closing a socket discards what it still queues.
const LINGER: Duration = Duration::from_millis(100);
/// The longest the reader waits in one receive before looking whether the node closed:
/// NNG 1.4 does not always wake a receive that is waiting when the socket closes.
const READ_POLL: Duration = Duration::from_millis(100);
/// The longest a send may wait for nng to take a message.
const SEND_TIMEOUT: Duration = Duration::from_secs(1);

/// A node of a brokerless bus: every node listens and dials every other (bus0 does not
/// relay, so the bus is a full mesh), learning the others from their announcements.
///
/// nng carries no authentication: anyone who can reach the listen address can join, so it
/// listens on loopback by default. Events are broadcast to every node and filtered by the
/// receivers; frames are batched into messages of up to 64 KiB.
///
/// ```no_run
/// use demitter_core::Emitter;
/// use demitter_nng::{NngConfig, NngTransport};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let seed = NngTransport::bind(NngConfig::loopback())?;
/// let other = NngTransport::bind(NngConfig::loopback().with_peer(seed.url()))?;
/// let (a, b) = (Emitter::new(seed)?, Emitter::new(other)?);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct NngTransport {
    shared: Arc<Shared>,
    inbox: BatchInbox,
    /// Each thread's end, signalled when the thread drops its sender.
    threads: Mutex<Vec<Worker>>,
}

/// One of the node's threads, as `close` waits for it.
#[derive(Debug)]
struct Worker {
    name: &'static str,
    done: oneshot::Receiver<()>,
}

impl Worker {
    /// Runs `work` on a thread of its own.
    fn spawn(name: &'static str, work: impl FnOnce() + Send + 'static) -> Result<Self, NngError> {
        let (finished, done) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                work();
                drop(finished);
            })
            .map_err(NngError::Thread)?;
        Ok(Self { name, done })
    }

    /// Waits for the thread to finish (the writer: to flush), at most the flush deadline;
    /// a thread that does not is logged and left to end by itself.
    async fn finish(self) {
        let deadline = CloseDeadlines::DEFAULT.flush;
        if tokio::time::timeout(deadline, self.done).await.is_err() {
            tracing::warn!(
                thread = self.name,
                "an nng thread did not stop within {deadline:?}; leaving it"
            );
        }
    }
}

#[derive(Debug)]
struct Shared {
    socket: Socket,
    url: String,
    config: NngConfig,
    /// Other nodes' listen URLs (seeds and announced), and which of them this node dials:
    /// a node is named by its URL, and the lower URL of a pair dials (bus0 would deliver
    /// everything twice over two connections of one pair).
    directory: Mutex<PeerDirectory<String, String>>,
    /// URLs this node dials, or that dial it: never dialed (again), since nng redials a
    /// dialed URL by itself.
    connected: Mutex<HashSet<String>>,
    /// Frame records waiting for the writer.
    queue: SendQueue,
    closed: AtomicBool,
}

impl NngTransport {
    /// Listens, dials the configured peers, and starts announcing. Must be called within a
    /// tokio runtime.
    pub fn bind(config: NngConfig) -> Result<Self, NngError> {
        config.validate()?;
        let socket = Socket::new(Protocol::Bus0).map_err(NngError::nng("opening a bus0 socket"))?;
        // A message holds up to a batch and one whole frame.
        let max_message = config.max_frame_bytes + BATCH_BYTES + 64;
        socket
            .set_opt::<RecvMaxSize>(max_message)
            .map_err(NngError::nng("setting the receive limit"))?;
        socket
            .set_opt::<ReconnectMinTime>(Some(config.reconnect_min))
            .map_err(NngError::nng("setting the redial delay"))?;
        socket
            .set_opt::<ReconnectMaxTime>(Some(config.reconnect_max))
            .map_err(NngError::nng("setting the redial delay"))?;
        socket
            .set_opt::<RecvTimeout>(Some(READ_POLL))
            .map_err(NngError::nng("setting the receive timeout"))?;
        socket
            .set_opt::<SendTimeout>(Some(SEND_TIMEOUT))
            .map_err(NngError::nng("setting the send timeout"))?;
        let listener = nng::Listener::new(&socket, &config.listen)
            .map_err(NngError::nng(format!("listening on {}", config.listen)))?;
        let port = listener
            .get_opt::<BoundPort>()
            .map_err(NngError::nng("reading the listen port"))?;
        let url = with_port(&config.listen, port);
        let (inbox_tx, inbox_rx) = mpsc::channel(INBOX_BATCHES);
        let queue = SendQueue::new(config.send_queue_bytes, usize::MAX);
        let timing = DialTiming {
            backoff: Backoff::new(config.reconnect_min, config.reconnect_max),
            grace: None,
            forget_after: Duration::MAX,
        };
        let mut directory = PeerDirectory::new(url.clone(), timing);
        for seed in &config.peers {
            directory.learn(
                seed.clone(),
                Some(seed.clone()),
                AddressOrigin::Discovered,
                Instant::now(),
            );
        }
        let shared = Arc::new(Shared {
            socket,
            url,
            config,
            directory: Mutex::new(directory),
            connected: Mutex::new(HashSet::new()),
            queue,
            closed: AtomicBool::new(false),
        });
        shared.dial_due();
        let writer = Arc::clone(&shared);
        let reader = Arc::clone(&shared);
        // The writer first: `close` waits for it before closing the socket.
        let threads = vec![
            Worker::spawn("demitter-nng-writer", move || writer.write_loop())?,
            Worker::spawn("demitter-nng-reader", move || reader.read_loop(&inbox_tx))?,
        ];
        tracing::info!(url = %shared.url, "nng bus node listening");
        Ok(Self {
            shared,
            inbox: BatchInbox::new(inbox_rx),
            threads: Mutex::new(threads),
        })
    }

    /// The URL this node listens on (with the port the system picked): what other nodes
    /// dial.
    pub fn url(&self) -> &str {
        &self.shared.url
    }

    /// The other nodes' listen URLs this node has heard of.
    pub fn known_nodes(&self) -> Vec<String> {
        let mut known: Vec<String> = self.shared.directory.lock().addresses().cloned().collect();
        known.sort();
        known
    }

    /// Closes the socket at once, sending nothing more, as a crash would.
    pub fn abort(&self) {
        if !self.shared.closed.swap(true, Ordering::AcqRel) {
            self.shared.queue.discard();
            self.shared.socket.close();
        }
    }
}

/// `tcp://HOST:ANY` with its port replaced by `port`.
fn with_port(url: &str, port: u16) -> String {
    match url.rsplit_once(':') {
        Some((host, _)) => format!("{host}:{port}"),
        None => format!("{url}:{port}"),
    }
}

impl Shared {
    /// Dials the URLs the directory says are due, once each: nng redials by itself.
    fn dial_due(&self) {
        let due = {
            let mut directory = self.directory.lock();
            let connected = self.connected.lock();
            directory.due(Instant::now(), |url| connected.contains(url))
        };
        for url in due {
            self.connected.lock().insert(url.clone());
            tracing::debug!(from = %self.url, to = %url, "dialing");
            match self.socket.dial_async(&url) {
                Ok(()) => self.directory.lock().dial_succeeded(&url, &url),
                Err(e) => {
                    tracing::warn!(%url, "cannot dial: {e}");
                    self.connected.lock().remove(&url);
                    self.directory.lock().dial_failed(&url, Instant::now());
                }
            }
        }
    }

    /// Takes in an announcement; `accepted` says whether it came on a connection the
    /// sender dialed (so this node must not dial it back).
    fn learn(&self, announce: Announce, accepted: bool) {
        if accepted {
            self.connected.lock().insert(announce.url.clone());
        }
        let urls = std::iter::once(announce.url)
            .chain(announce.known)
            .filter(|u| u.starts_with("tcp://"))
            .map(|u| (u.clone(), u));
        if self.directory.lock().learn_gossip(urls, Instant::now()) {
            self.dial_due();
        }
    }

    fn announce(&self) {
        let announce = Announce {
            url: self.url.clone(),
            known: self
                .directory
                .lock()
                .addresses()
                .take(wire::MAX_ANNOUNCED)
                .cloned()
                .collect(),
        };
        let message = wire::announce_message(&announce);
        if let Err((_, e)) = self.socket.send(&message[..]) {
            tracing::debug!("announcement not sent: {e}");
        }
    }

    /// Sends queued frame records in batches, and announces this node now and then, until
    /// the queue is closed and empty.
    fn write_loop(&self) {
        let every = self.config.announce_every;
        let mut last_announce: Option<Instant> = None;
        let mut batch = BytesMut::with_capacity(BATCH_BYTES + 1024);
        let mut last_send = Instant::now();
        loop {
            if last_announce.is_none_or(|at| at.elapsed() >= every) {
                self.announce();
                last_announce = Some(Instant::now());
            }
            if !self.queue.wait_blocking(1, every) {
                continue;
            }
            // Messages back to back are spaced at least MESSAGE_GAP apart unless full: NNG
            // queues only 16 messages per peer and drops the rest, so under sustained load
            // fewer, fuller messages lose nothing where many small ones would overflow.
            // The first message after a pause goes at once.
            if let Some(wait) = (last_send + MESSAGE_GAP).checked_duration_since(Instant::now()) {
                self.queue.wait_blocking(BATCH_BYTES, wait);
            }
            let drained = self.queue.drain(BATCH_BYTES);
            if drained.bytes.is_empty() {
                if drained.finished {
                    break;
                }
                continue;
            }
            batch.clear();
            wire::start_message(&mut batch);
            batch.extend_from_slice(&drained.bytes);
            last_send = Instant::now();
            let sent = self.socket.send(&batch[..]);
            if let Err((_, e)) = sent {
                if e == nng::Error::Closed {
                    break;
                }
                tracing::debug!("batch not sent: {e}");
            }
        }
    }

    /// Receives messages until the socket closes, handing frames and reports to the inbox.
    fn read_loop(&self, inbox: &mpsc::Sender<Vec<Incoming>>) {
        let max_frame = self.config.max_frame_bytes;
        let mut cache = DecodeCache::default();
        let bad = |message: String| {
            Incoming::Report(ErrorReport::new(ErrorKind::Deserialization, 1, message))
        };
        loop {
            if self.closed.load(Ordering::Acquire) {
                break;
            }
            let mut message = match self.socket.recv() {
                Ok(message) => message,
                Err(nng::Error::Closed) => break,
                Err(nng::Error::TimedOut) => continue,
                Err(e) => {
                    tracing::debug!("receive failed: {e}");
                    continue;
                }
            };
            let accepted = message.pipe().is_some_and(|p| p.listener().is_some());
            let bytes = Bytes::copy_from_slice(message.as_slice());
            let mut batch = Vec::new();
            match wire::parse(bytes, max_frame) {
                Ok(items) => {
                    for item in items {
                        let dropped = match item {
                            Ok(Item::Frame(body)) => {
                                match Frame::decode_cached(body, max_frame, &mut cache) {
                                    Ok(frame) => {
                                        batch.push(Incoming::Frame { from: None, frame });
                                        continue;
                                    }
                                    Err(e) => format!("dropped a frame from the nng bus: {e}"),
                                }
                            }
                            Ok(Item::Announce(announce)) => {
                                self.learn(announce, accepted);
                                continue;
                            }
                            Err(e) => format!("dropped a record from the nng bus: {e}"),
                        };
                        batch.push(bad(dropped));
                    }
                }
                Err(e) => batch.push(bad(format!("dropped a message from the nng bus: {e}"))),
            }
            if !batch.is_empty()
                && !handover::send_unless_closed(inbox, batch, &self.closed, READ_POLL)
            {
                break;
            }
        }
    }
}

impl Transport for NngTransport {
    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::broadcast(self.shared.config.max_frame_bytes);
        caps.blocking_send = true;
        caps
    }

    fn wait_for_room(&self, bytes: usize) -> BoxFuture<'_, ()> {
        let record = demitter_core::record::RECORD_HEADER + bytes;
        Box::pin(self.shared.queue.wait_for_room(record))
    }

    fn send(&self, frame: Frame, to: Destination) -> Result<(), Error> {
        // A broadcast bus: every node receives every frame and the core filters.
        let _ = to;
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        // The node keeps frames within `max_frame_bytes`, events and control alike.
        let len = frame.encoded_len();
        let is_event = matches!(frame, Frame::Event(_));
        self.shared.queue.push_with(
            demitter_core::record::RECORD_HEADER + len,
            is_event,
            |buf| {
                wire::put_frame(buf, &frame);
            },
        )
    }

    fn recv(&self) -> BoxFuture<'_, Option<Incoming>> {
        Box::pin(self.inbox.recv())
    }

    fn recv_many<'a>(&'a self, into: &'a mut Vec<Incoming>, max: usize) -> BoxFuture<'a, bool> {
        Box::pin(self.inbox.recv_many(into, max))
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if !self.shared.closed.swap(true, Ordering::AcqRel) {
                // The writer sends what is queued (the goodbye among it) and stops.
                self.shared.queue.close();
                let writer = self.threads.lock().drain(..1).next();
                if let Some(writer) = writer {
                    writer.finish().await;
                }
                tokio::time::sleep(LINGER).await;
                self.shared.socket.close();
            }
            let threads: Vec<Worker> = self.threads.lock().drain(..).collect();
            for thread in threads {
                thread.finish().await;
            }
        })
    }
}

impl Drop for NngTransport {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.queue.discard();
        self.shared.socket.close();
    }
}
