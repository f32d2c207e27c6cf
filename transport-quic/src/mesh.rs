//! The mesh: one node's shared state, and the table that keeps exactly one live link per
//! peer name (the tie-break between two connections of a pair), the allow list, and
//! closing. Accepting and dialing are in `connect`, gossip in `gossip`, discovery in
//! `pump`, the endpoint's settings in `endpoint`, a link's reader and writer in `link`.

use foldhash::HashMap;
use foldhash::HashMapExt as _;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use demitter_core::{
    Backoff, BatchInbox, CloseDeadlines, DialTiming, ErrorKind, ErrorReport, InboxSender, Incoming,
    NodeId, PeerDirectory, dials_first,
};
use parking_lot::{Mutex, RwLock};
use quinn::VarInt;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::QuicConfig;
use crate::endpoint::{bind_first_free, transport_config};
use crate::error::QuicError;
use crate::link::{Link, LinkHost, close_code};
use crate::tls;
use crate::wire::{Hello, Peers};

/// Batches of received items waiting for the emitter.
const INBOX_BATCHES: usize = 256;
/// How long the higher-named peer waits for the lower-named one to dial.
const DIAL_GRACE: Duration = Duration::from_millis(300);

/// The shared state of one node.
#[derive(Debug)]
pub(crate) struct Mesh {
    pub(crate) me: NodeId,
    pub(crate) incarnation: u64,
    pub(crate) config: QuicConfig,
    /// Who may connect (`None`: every peer of the hood); changes at run time.
    pub(crate) allowed: RwLock<Option<std::collections::BTreeSet<String>>>,
    pub(crate) endpoint: quinn::Endpoint,
    pub(crate) local_addr: SocketAddr,
    pub(crate) client_config: quinn::ClientConfig,
    pub(crate) links: RwLock<HashMap<NodeId, Arc<Link>>>,
    pub(crate) directory: Mutex<PeerDirectory<SocketAddr>>,
    pub(crate) inbox: InboxSender,
    pub(crate) cancel: CancellationToken,
    /// Set as `cancel` is cancelled: a lock-free check for every send.
    pub(crate) stopped: AtomicBool,
    pub(crate) tasks: TaskTracker,
    pub(crate) dial_wake: Notify,
    pub(crate) next_link_id: AtomicU64,
    pub(crate) closing: AtomicBool,
    /// How many peers are connected, for those who wait on it.
    pub(crate) peer_count: tokio::sync::watch::Sender<usize>,
    /// Whether the emitter was told this node made contact with the bus.
    pub(crate) joined: AtomicBool,
    /// When the transport started: its hello says how long ago (see `namesake`).
    pub(crate) started: Instant,
    /// Set once this node gave way to a namesake that was there first: it dials and
    /// accepts no more (see `namesake`).
    pub(crate) gave_way: AtomicBool,
    /// Where the namesakes that gave way to this node were, each reported once (see
    /// `namesake`).
    pub(crate) namesakes_told: Mutex<foldhash::HashSet<SocketAddr>>,
}

impl Mesh {
    /// Binds the endpoint and starts the acceptor, the dialer and discovery.
    pub(crate) fn start(
        config: QuicConfig,
        socket: Option<UdpSocket>,
    ) -> Result<(Arc<Self>, BatchInbox), QuicError> {
        config.validate()?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| QuicError::NoRuntime)?;
        let me = NodeId::new(config.identity.name())
            .map_err(|e| QuicError::Config(format!("the certificate name: {e}")))?;
        let transport = Arc::new(transport_config(&config)?);
        let server = tls::server_config(&config.identity, Arc::clone(&transport))?;
        let client_config = tls::client_config(&config.identity, transport)?;
        let socket = match socket {
            Some(socket) => socket,
            None => bind_first_free(&config)?,
        };
        let endpoint = {
            let _guard = runtime.enter();
            quinn::Endpoint::new(
                quinn::EndpointConfig::default(),
                Some(server),
                socket,
                Arc::new(quinn::TokioRuntime),
            )
            .map_err(|e| QuicError::Config(format!("could not start the QUIC endpoint: {e}")))?
        };
        let local_addr = endpoint
            .local_addr()
            .map_err(|e| QuicError::Config(format!("the endpoint has no address: {e}")))?;
        let (inbox, received) = BatchInbox::channel(INBOX_BATCHES);
        let timing = DialTiming {
            backoff: Backoff::new(config.reconnect_min, config.reconnect_max),
            grace: Some(DIAL_GRACE),
            forget_after: config.forget_after,
        };
        let mesh = Arc::new(Self {
            directory: Mutex::new(PeerDirectory::new(me.clone(), timing)),
            me,
            incarnation: fastrand::u64(..),
            endpoint,
            local_addr,
            client_config,
            links: RwLock::new(HashMap::new()),
            inbox,
            allowed: RwLock::new(config.allowed_peers.clone()),
            cancel: CancellationToken::new(),
            stopped: AtomicBool::new(false),
            tasks: TaskTracker::new(),
            dial_wake: Notify::new(),
            next_link_id: AtomicU64::new(1),
            closing: AtomicBool::new(false),
            peer_count: tokio::sync::watch::Sender::new(0),
            joined: AtomicBool::new(false),
            started: Instant::now(),
            gave_way: AtomicBool::new(false),
            namesakes_told: Mutex::new(foldhash::HashSet::default()),
            config,
        });
        tracing::info!(name = %mesh.me, addr = %local_addr, "QUIC mesh node listening");
        mesh.tasks
            .spawn_on(Arc::clone(&mesh).accept_loop(), &runtime);
        mesh.tasks.spawn_on(Arc::clone(&mesh).dial_loop(), &runtime);
        mesh.start_discovery(&runtime);
        if mesh.config.seeds.is_empty()
            && mesh.config.discovery.is_empty()
            && mesh.config.dht.is_none()
            && !mesh.joined.swap(true, Ordering::AcqRel)
        {
            // Nobody to find: the bus is whoever dials in, and this node has joined it.
            let told = Arc::clone(&mesh);
            mesh.tasks.spawn_on(
                async move { told.deliver(vec![Incoming::Joined { peers: None }]).await },
                &runtime,
            );
        }
        Ok((mesh, received))
    }

    /// Hands a batch to the emitter: straight in, once it asked for that, or onto the
    /// inbox (waiting while the emitter catches up).
    pub(crate) async fn deliver(&self, batch: Vec<Incoming>) {
        if !batch.is_empty() {
            tokio::select! {
                _ = self.inbox.send(batch) => {}
                () = self.cancel.cancelled() => {}
            }
        }
    }

    /// The hello this node opens every stream with.
    pub(crate) fn hello(&self) -> Hello {
        Hello {
            incarnation: self.incarnation,
            listen_port: self.local_addr.port(),
            uptime_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
        }
    }

    pub(crate) fn is_allowed(&self, peer: &NodeId) -> bool {
        self.allowed
            .read()
            .as_ref()
            .is_none_or(|allowed| allowed.contains(peer.as_str()))
    }

    /// Replaces the allow list, and disconnects the peers it no longer names.
    pub(crate) async fn set_allowed(&self, allowed: Option<std::collections::BTreeSet<String>>) {
        *self.allowed.write() = allowed;
        let revoked: Vec<Arc<Link>> = self
            .links
            .read()
            .values()
            .filter(|link| !self.is_allowed(&link.peer))
            .cloned()
            .collect();
        for link in revoked {
            let reason = format!("peer `{}` is no longer among the allowed peers", link.peer);
            tracing::debug!("{reason}; disconnecting it");
            link.conn
                .close(close_code::REFUSED, b"no longer among the allowed peers");
            self.report(
                ErrorReport::new(ErrorKind::Refused, 1, format!("{reason}; disconnected"))
                    .with_peer(link.peer.as_str()),
            )
            .await;
        }
    }

    /// Makes `link` the peer's link, or refuses it as a duplicate. Returns what to tell the
    /// emitter.
    pub(crate) fn register(&self, link: &Arc<Link>) -> Option<Vec<Incoming>> {
        if self.closing.load(Ordering::Acquire) {
            return None;
        }
        let mut links = self.links.write();
        let mut events = Vec::new();
        if let Some(old) = links.get(&link.peer) {
            if old.incarnation == link.incarnation {
                // Both sides keep the connection that the lower-named peer dialed.
                let preferred = |l: &Link| l.dialed_by_me == dials_first(&self.me, &l.peer);
                if !preferred(link) || preferred(old) {
                    return None;
                }
                self.retire(Arc::clone(old));
            } else {
                // The reason is where the new incarnation listens: if the old one is alive
                // after all, it is a namesake, and it dials there to settle which of the
                // two keeps the name (see `namesake`).
                old.conn
                    .close(close_code::REPLACED, link.addr.to_string().as_bytes());
                events.push(Incoming::PeerDown(old.peer.clone()));
                events.push(Incoming::PeerUp(link.peer.clone()));
            }
        } else {
            events.push(Incoming::PeerUp(link.peer.clone()));
        }
        tracing::info!(peer = %link.peer, addr = %link.addr, dialed = link.dialed_by_me, "peer connected");
        links.insert(link.peer.clone(), Arc::clone(link));
        self.peer_count.send_replace(links.len());
        Some(events)
    }

    /// Retires a link that a duplicate of the same incarnation replaces: nothing more is
    /// queued on it, what is queued is still sent, and only then is the connection closed.
    /// Closing at once would lose what it carried without a report to the receiver, and
    /// if those were the first events of a name the receiver could not tell from marks.
    /// Events the new link overtakes it with arrive as a gap, then as duplicates dropped.
    fn retire(&self, old: Arc<Link>) {
        old.queue.close();
        let cancel = self.cancel.clone();
        self.tasks.spawn(async move {
            tokio::select! {
                _ = CloseDeadlines::DEFAULT.flushed("a retired link", old.flushed.cancelled()) => {}
                () = cancel.cancelled() => {}
            }
            old.conn.close(close_code::DUPLICATE, b"already connected");
        });
    }

    /// The link ended: forget it (if it is still the peer's link) and report.
    pub(crate) async fn link_ended(self: &Arc<Self>, link: &Link, reason: &quinn::ConnectionError) {
        let lost = link.queue.discard();
        let removed = {
            let mut links = self.links.write();
            if links.get(&link.peer).is_some_and(|l| l.id == link.id) {
                links.remove(&link.peer);
                self.peer_count.send_replace(links.len());
                true
            } else {
                false
            }
        };
        let mut events = Vec::new();
        if removed {
            tracing::info!(peer = %link.peer, "peer disconnected: {reason}");
            events.push(Incoming::PeerDown(link.peer.clone()));
        }
        if lost > 0 && !self.closing.load(Ordering::Acquire) {
            events.push(Incoming::Report(
                ErrorReport::new(
                    ErrorKind::Network,
                    lost,
                    format!(
                        "{lost} event(s) queued for peer `{}` were not delivered: {reason}",
                        link.peer
                    ),
                )
                .with_peer(link.peer.as_str()),
            ));
        }
        self.deliver(events).await;
        self.check_replacement(reason);
        if !removed {
            return;
        }
        let left = matches!(reason, quinn::ConnectionError::ApplicationClosed(close) if close.error_code == close_code::BYE);
        self.directory
            .lock()
            .peer_lost(&link.peer, left, Instant::now());
        self.dial_wake.notify_one();
    }

    // ---- closing -------------------------------------------------------------------------

    /// Sends what is queued (the goodbye among it), then closes every connection.
    pub(crate) async fn close(&self) {
        if self.closing.swap(true, Ordering::AcqRel) {
            self.tasks.wait().await;
            return;
        }
        let links: Vec<Arc<Link>> = self.links.read().values().cloned().collect();
        for link in &links {
            link.queue.close();
        }
        let flushed = futures_util::future::join_all(links.iter().map(|l| l.flushed.cancelled()));
        CloseDeadlines::DEFAULT
            .flushed("every peer's acknowledgement of the last frames", flushed)
            .await;
        self.shut(close_code::BYE, b"bye").await;
    }

    /// Whether the node has stopped (closed or aborted).
    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        self.cancel.cancel();
    }

    /// Drops every connection at once, sending nothing more.
    pub(crate) fn abort(&self) {
        self.closing.store(true, Ordering::Release);
        for link in self.links.read().values() {
            link.queue.discard();
        }
        self.endpoint.close(close_code::ABORT, b"aborted");
        self.stop();
        self.tasks.close();
    }

    async fn shut(&self, code: VarInt, reason: &[u8]) {
        self.endpoint.close(code, reason);
        if tokio::time::timeout(Duration::from_secs(1), self.endpoint.wait_idle())
            .await
            .is_err()
        {
            tracing::debug!("connections did not close in time");
        }
        self.stop();
        self.tasks.close();
        self.tasks.wait().await;
        tracing::info!(name = %self.me, "QUIC mesh node closed");
    }
}

impl LinkHost for Mesh {
    fn max_frame_bytes(&self) -> usize {
        self.config.max_frame_bytes
    }

    fn peer_queue_bytes(&self) -> usize {
        self.config.peer_queue_bytes
    }

    fn stopping(&self) -> &CancellationToken {
        &self.cancel
    }

    fn deliver(&self, batch: Vec<Incoming>) -> impl Future<Output = ()> + Send {
        Mesh::deliver(self, batch)
    }

    fn learn_gossip(&self, from: &NodeId, peers: Peers, out: &mut Vec<Incoming>) {
        Mesh::learn_gossip(self, from, peers, out);
    }

    fn first_record(&self, out: &mut Vec<Incoming>) {
        if !self.joined.swap(true, Ordering::AcqRel) {
            out.push(Incoming::Joined { peers: None });
        }
    }

    fn link_ended(
        self: &Arc<Self>,
        link: &Link,
        reason: &quinn::ConnectionError,
    ) -> impl Future<Output = ()> + Send {
        Mesh::link_ended(self, link, reason)
    }
}
