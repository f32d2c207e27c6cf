//! An in-memory transport: a hub in one process that several emitters join (`mem://NAME`).
//!
//! Frames are encoded with the same binary codec as the network transports and decoded on
//! receipt, so the in-memory bus exercises the whole path except the socket. Each member
//! has a bounded inbox; when it is full, frames for that member are dropped and counted
//! (the receiver also sees the gap in the sequence numbers).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use parking_lot::{Mutex, RwLock};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::frame::{DEFAULT_MAX_FRAME_BYTES, DecodeCache, Frame};
use crate::report::{ErrorKind, ErrorReport};
use crate::transport::{Capabilities, Destination, Incoming, Transport};

/// Settings of a [`MemoryHub`].
#[derive(Debug, Clone)]
pub struct MemoryConfig {
    /// Frames each member's inbox holds before further frames to it are dropped.
    pub inbox_capacity: usize,
    /// The largest frame carried.
    pub max_frame_bytes: usize,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        Self {
            inbox_capacity: 65_536,
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
        }
    }
}

#[derive(Debug)]
struct Member {
    id: u64,
    inbox: mpsc::Sender<Bytes>,
}

#[derive(Debug)]
struct HubInner {
    name: Option<String>,
    config: MemoryConfig,
    members: RwLock<Vec<Member>>,
    next_member: AtomicU64,
    dropped: AtomicU64,
}

impl Drop for HubInner {
    fn drop(&mut self) {
        if let Some(name) = &self.name {
            let mut hubs = registry().lock();
            if hubs.get(name).is_some_and(|w| w.strong_count() == 0) {
                hubs.remove(name);
            }
        }
    }
}

fn registry() -> &'static Mutex<HashMap<String, Weak<HubInner>>> {
    static HUBS: OnceLock<Mutex<HashMap<String, Weak<HubInner>>>> = OnceLock::new();
    HUBS.get_or_init(|| Mutex::new(HashMap::new()))
}

/// A bus inside one process. Cheap to clone; every clone is the same hub.
///
/// ```
/// use demitter_core::{Emitter, MemoryHub};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), demitter_core::Error> {
/// let hub = MemoryHub::new();
/// let a = Emitter::new(hub.join())?;
/// let b = Emitter::new(hub.join())?;
/// let mut greetings = b.events::<String>("greet.+")?;
/// a.wait_for_listeners("greet.world", 1).await?;
/// a.emit("greet.world", "hello").await?;
/// let event = greetings.recv().await.expect("open")?;
/// assert_eq!(event.data, "hello");
/// assert_eq!(event.source.as_str(), a.id().as_str());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct MemoryHub {
    inner: Arc<HubInner>,
}

impl Default for MemoryHub {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryHub {
    /// A new private hub with default settings.
    pub fn new() -> Self {
        Self::with_config(MemoryConfig::default())
    }

    /// A new private hub.
    pub fn with_config(config: MemoryConfig) -> Self {
        Self {
            inner: Arc::new(HubInner {
                name: None,
                config,
                members: RwLock::new(Vec::new()),
                next_member: AtomicU64::new(1),
                dropped: AtomicU64::new(0),
            }),
        }
    }

    /// The process-wide hub called `name` (what `mem://NAME` names), created on first use
    /// and kept while anything holds it.
    pub fn named(name: &str) -> Self {
        let mut hubs = registry().lock();
        if let Some(inner) = hubs.get(name).and_then(Weak::upgrade) {
            return Self { inner };
        }
        let inner = Arc::new(HubInner {
            name: Some(name.to_owned()),
            config: MemoryConfig::default(),
            members: RwLock::new(Vec::new()),
            next_member: AtomicU64::new(1),
            dropped: AtomicU64::new(0),
        });
        hubs.insert(name.to_owned(), Arc::downgrade(&inner));
        Self { inner }
    }

    /// Joins the hub: a transport for one emitter.
    pub fn join(&self) -> MemoryTransport {
        let id = self.inner.next_member.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(self.inner.config.inbox_capacity.max(1));
        let peers = {
            let mut members = self.inner.members.write();
            members.push(Member {
                id,
                inbox: tx.clone(),
            });
            members.len() - 1
        };
        MemoryTransport {
            hub: Arc::clone(&self.inner),
            member: id,
            own_inbox: tx,
            rx: tokio::sync::Mutex::new(Inbox {
                rx,
                taken: Vec::new(),
            }),
            ready: Mutex::new(VecDeque::new()),
            cancel: CancellationToken::new(),
            closed: AtomicBool::new(false),
            detached: AtomicBool::new(false),
            cache: Mutex::new(DecodeCache::default()),
            census: Mutex::new(Some(peers)),
        }
    }

    /// How many transports are joined.
    pub fn members(&self) -> usize {
        self.inner.members.read().len()
    }

    /// Frames dropped so far because a member's inbox was full.
    pub fn dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }
}

/// A member's inbox, and the buffer a batch is taken into (kept, so that taking a batch
/// allocates nothing).
#[derive(Debug)]
struct Inbox {
    rx: mpsc::Receiver<Bytes>,
    taken: Vec<Bytes>,
}

/// One emitter's connection to a [`MemoryHub`].
#[derive(Debug)]
pub struct MemoryTransport {
    hub: Arc<HubInner>,
    member: u64,
    own_inbox: mpsc::Sender<Bytes>,
    /// The inbox; locked only by the one receiving task, across its wait.
    rx: tokio::sync::Mutex<Inbox>,
    /// Frames taken from the inbox in a batch and not yet handed out.
    ready: Mutex<VecDeque<Bytes>>,
    /// Wakes a receive in progress on close.
    cancel: CancellationToken,
    /// Whether `close` was called (an atomic: checked on every send and receive).
    closed: AtomicBool,
    detached: AtomicBool,
    cache: Mutex<DecodeCache>,
    /// How many others were on the hub at join, until the emitter is told.
    census: Mutex<Option<usize>>,
}

impl MemoryTransport {
    /// Delivers raw bytes to this transport as if they came from the hub (for tests of
    /// hostile input).
    pub fn inject(&self, bytes: Bytes) -> Result<(), Error> {
        self.own_inbox.try_send(bytes).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => Error::InboxesFull { members: 1 },
            mpsc::error::TrySendError::Closed(_) => Error::Closed,
        })
    }

    /// Leaves the hub abruptly, as a crashed process would: nothing more is sent or
    /// received, and no goodbye reaches the others.
    pub fn detach(&self) {
        self.detached.store(true, Ordering::Release);
        self.hub.members.write().retain(|m| m.id != self.member);
    }

    fn decode(&self, bytes: Bytes) -> Incoming {
        self.decode_with(bytes, &mut self.cache.lock())
    }

    fn decode_with(&self, bytes: Bytes, cache: &mut DecodeCache) -> Incoming {
        let decoded = Frame::decode_cached(bytes, self.hub.config.max_frame_bytes, cache);
        match decoded {
            Ok(frame) => Incoming::Frame { from: None, frame },
            Err(e) => Incoming::Report(ErrorReport::new(
                ErrorKind::Deserialization,
                1,
                format!("dropped a frame from the memory hub: {e}"),
            )),
        }
    }
}

impl Transport for MemoryTransport {
    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::broadcast(self.hub.config.max_frame_bytes);
        caps.blocking_send = true;
        caps.census = true;
        caps
    }

    fn wait_for_room(&self, bytes: usize) -> BoxFuture<'_, ()> {
        let _ = bytes; // inboxes count frames
        let inboxes: Vec<mpsc::Sender<Bytes>> = self
            .hub
            .members
            .read()
            .iter()
            .filter(|m| m.id != self.member)
            .map(|m| m.inbox.clone())
            .collect();
        Box::pin(async move {
            for inbox in inboxes {
                // A slot is free once one can be reserved; it is handed back at once.
                let _ = inbox.reserve().await;
            }
        })
    }

    fn send(&self, frame: Frame, _to: Destination) -> Result<(), Error> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        if self.detached.load(Ordering::Acquire) {
            return Ok(());
        }
        // The node keeps frames within `max_frame_bytes`, events and control alike.
        let members = self.hub.members.read();
        if members.len() <= 1 {
            return Ok(());
        }
        let mut bytes = frame.to_bytes();
        let mut full = 0u64;
        let mut others = members.iter().filter(|m| m.id != self.member).peekable();
        while let Some(member) = others.next() {
            // The last one takes the buffer itself: one receiver costs no shared count.
            let copy = if others.peek().is_some() {
                bytes.clone()
            } else {
                std::mem::take(&mut bytes)
            };
            if let Err(mpsc::error::TrySendError::Full(_)) = member.inbox.try_send(copy) {
                full += 1;
            }
        }
        if full > 0 {
            self.hub.dropped.fetch_add(full, Ordering::Relaxed);
            return Err(Error::InboxesFull { members: full });
        }
        Ok(())
    }

    fn recv(&self) -> BoxFuture<'_, Option<Incoming>> {
        // Everything happens when polled, never when the future is made: `select!` makes
        // futures it then drops unpolled, and a frame taken here would be lost with them.
        Box::pin(async move {
            if self.closed.load(Ordering::Acquire) {
                return None;
            }
            if let Some(peers) = self.census.lock().take() {
                return Some(Incoming::Joined { peers: Some(peers) });
            }
            if let Some(bytes) = self.ready.lock().pop_front() {
                return Some(self.decode(bytes));
            }
            let mut inbox = self.rx.lock().await;
            let Inbox { rx, taken } = &mut *inbox;
            tokio::select! {
                biased;
                () = self.cancel.cancelled() => return None,
                n = rx.recv_many(taken, 256) => if n == 0 { return None },
            }
            let mut ready = self.ready.lock();
            ready.extend(taken.drain(..));
            ready.pop_front().map(|bytes| self.decode(bytes))
        })
    }

    fn recv_many<'a>(&'a self, into: &'a mut Vec<Incoming>, max: usize) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            if self.closed.load(Ordering::Acquire) {
                return false;
            }
            if let Some(peers) = self.census.lock().take() {
                into.push(Incoming::Joined { peers: Some(peers) });
            }
            {
                let mut ready = self.ready.lock();
                while into.len() < max {
                    let Some(bytes) = ready.pop_front() else {
                        break;
                    };
                    into.push(self.decode(bytes));
                }
            }
            if !into.is_empty() {
                return true;
            }
            let mut inbox = self.rx.lock().await;
            let Inbox { rx, taken } = &mut *inbox;
            tokio::select! {
                biased;
                () = self.cancel.cancelled() => return false,
                n = rx.recv_many(taken, max) => if n == 0 { return false },
            }
            let mut cache = self.cache.lock();
            into.extend(
                taken
                    .drain(..)
                    .map(|bytes| self.decode_with(bytes, &mut cache)),
            );
            true
        })
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        self.closed.store(true, Ordering::Release);
        self.cancel.cancel();
        self.hub.members.write().retain(|m| m.id != self.member);
        Box::pin(std::future::ready(()))
    }
}

impl Drop for MemoryTransport {
    fn drop(&mut self) {
        self.hub.members.write().retain(|m| m.id != self.member);
    }
}
