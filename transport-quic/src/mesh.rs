//! The mesh: one QUIC endpoint, one connection per peer, the dialer and the acceptor, and
//! the table that keeps exactly one live link per peer name.

use foldhash::HashMap;
use foldhash::HashMapExt as _;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use demitter_core::{BatchInbox, ErrorKind, ErrorReport, InboxSender, Incoming, NodeId};
use parking_lot::{Mutex, RwLock};
use quinn::VarInt;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::QuicConfig;
use crate::directory::{Backoff, Directory, Origin};
use crate::discovery::{DiscoverySink, Found, LocalNode, StaticSeeds};
use crate::error::QuicError;
use crate::queue::PeerQueue;
use crate::tls;
use crate::wire::{self, KIND_PEERS, PeerAddress, Peers};

/// Why a connection was closed, as its QUIC application error code.
pub(crate) mod close_code {
    use quinn::VarInt;
    /// The peer is leaving.
    pub(crate) const BYE: VarInt = VarInt::from_u32(0);
    /// A second connection between the same pair; the other one stays.
    pub(crate) const DUPLICATE: VarInt = VarInt::from_u32(1);
    /// A newer incarnation of the peer connected.
    pub(crate) const REPLACED: VarInt = VarInt::from_u32(2);
    /// The peer's name is not allowed here.
    pub(crate) const REFUSED: VarInt = VarInt::from_u32(3);
    /// The peer broke the wire format.
    pub(crate) const PROTOCOL: VarInt = VarInt::from_u32(4);
    /// A node dialed itself.
    pub(crate) const SELF: VarInt = VarInt::from_u32(5);
    /// The node stopped without a goodbye (aborted).
    pub(crate) const ABORT: VarInt = VarInt::from_u32(6);
}

/// Batches of received items waiting for the emitter.
const INBOX_BATCHES: usize = 256;
/// How long the higher-named peer waits for the lower-named one to dial.
const DIAL_GRACE: Duration = Duration::from_millis(300);
/// How long closing waits for queued frames (the goodbye among them) to be acknowledged.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// One live connection to a peer.
#[derive(Debug)]
pub(crate) struct Link {
    pub(crate) id: u64,
    pub(crate) peer: NodeId,
    pub(crate) incarnation: u64,
    pub(crate) dialed_by_me: bool,
    /// Where the peer listens: the address it connected from, with its listen port.
    pub(crate) addr: SocketAddr,
    pub(crate) conn: quinn::Connection,
    pub(crate) queue: PeerQueue,
    /// Cancelled when the writer has sent everything and stopped.
    pub(crate) flushed: CancellationToken,
}

/// The shared state of one node.
#[derive(Debug)]
pub(crate) struct Mesh {
    pub(crate) me: NodeId,
    pub(crate) incarnation: u64,
    pub(crate) config: QuicConfig,
    /// Who may connect (`None`: every peer of the hood); changes at run time.
    allowed: RwLock<Option<std::collections::BTreeSet<String>>>,
    pub(crate) endpoint: quinn::Endpoint,
    pub(crate) local_addr: SocketAddr,
    pub(crate) client_config: quinn::ClientConfig,
    pub(crate) links: RwLock<HashMap<NodeId, Arc<Link>>>,
    directory: Mutex<Directory>,
    pub(crate) inbox: InboxSender,
    pub(crate) cancel: CancellationToken,
    /// Set as `cancel` is cancelled: a lock-free check for every send.
    stopped: AtomicBool,
    pub(crate) tasks: TaskTracker,
    dial_wake: Notify,
    next_link_id: AtomicU64,
    pub(crate) closing: AtomicBool,
    /// How many peers are connected, for those who wait on it.
    pub(crate) peer_count: tokio::sync::watch::Sender<usize>,
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
        let backoff = Backoff {
            min: config.reconnect_min,
            max: config.reconnect_max,
            grace: DIAL_GRACE,
            forget_after: config.forget_after,
        };
        let mesh = Arc::new(Self {
            directory: Mutex::new(Directory::new(me.clone(), backoff)),
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
            config,
        });
        tracing::info!(name = %mesh.me, addr = %local_addr, "QUIC mesh node listening");
        mesh.tasks
            .spawn_on(Arc::clone(&mesh).accept_loop(), &runtime);
        mesh.tasks.spawn_on(Arc::clone(&mesh).dial_loop(), &runtime);
        mesh.start_discovery(&runtime);
        Ok((mesh, received))
    }

    fn start_discovery(self: &Arc<Self>, runtime: &tokio::runtime::Handle) {
        let (found_tx, mut found_rx) = mpsc::channel(64);
        let local = LocalNode {
            name: self.me.to_string(),
            hood: self.config.identity.hood_fingerprint(),
            ip: self.local_addr.ip(),
            port: self.local_addr.port(),
        };
        let mut mechanisms = self.config.discovery.clone();
        if !self.config.seeds.is_empty() {
            mechanisms.push(Arc::new(StaticSeeds::new(self.config.seeds.clone())));
        }
        for mechanism in mechanisms {
            let run = mechanism.run(local.clone(), DiscoverySink(found_tx.clone()));
            let cancel = self.cancel.clone();
            self.tasks.spawn_on(
                async move {
                    tokio::select! {
                        () = cancel.cancelled() => {}
                        () = run => {}
                    }
                },
                runtime,
            );
        }
        drop(found_tx);
        let mesh = Arc::clone(self);
        self.tasks.spawn_on(
            async move {
                loop {
                    let found = tokio::select! {
                        () = mesh.cancel.cancelled() => break,
                        found = found_rx.recv() => match found {
                            Some(found) => found,
                            None => break,
                        },
                    };
                    match found {
                        Found::Address(addr) => {
                            mesh.directory.lock().learn(
                                addr,
                                None,
                                Origin::Discovered,
                                Instant::now(),
                            );
                            mesh.dial_wake.notify_one();
                        }
                        Found::Peer { name, addr } => match NodeId::new(&name) {
                            Ok(name) => {
                                mesh.directory.lock().learn(
                                    addr,
                                    Some(name),
                                    Origin::Discovered,
                                    Instant::now(),
                                );
                                mesh.dial_wake.notify_one();
                            }
                            Err(e) => tracing::warn!(%addr, "discovery found a peer with an invalid name: {e}"),
                        },
                        Found::Gone(addr) => mesh.directory.lock().forget(addr),
                    }
                }
            },
            runtime,
        );
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

    pub(crate) async fn report(&self, report: ErrorReport) {
        self.deliver(vec![Incoming::Report(report)]).await;
    }

    // ---- accepting and dialing -------------------------------------------------------

    async fn accept_loop(self: Arc<Self>) {
        loop {
            let incoming = tokio::select! {
                () = self.cancel.cancelled() => break,
                incoming = self.endpoint.accept() => match incoming {
                    Some(incoming) => incoming,
                    None => break,
                },
            };
            let mesh = Arc::clone(&self);
            self.tasks.spawn(async move {
                let remote = incoming.remote_address();
                let handshake = tokio::time::timeout(mesh.config.handshake_timeout, incoming);
                match handshake.await {
                    Ok(Ok(conn)) => {
                        if let Err(e) = mesh.establish(conn, false).await {
                            tracing::debug!(%remote, "incoming connection not kept: {e}");
                        }
                    }
                    Ok(Err(e)) => {
                        mesh.refused(remote, format!("the TLS handshake failed: {e}"))
                            .await;
                    }
                    Err(_) => {
                        mesh.refused(remote, "the handshake timed out".to_owned())
                            .await;
                    }
                }
            });
        }
    }

    async fn dial_loop(self: Arc<Self>) {
        loop {
            let now = Instant::now();
            let (due, next) = {
                let links = self.links.read();
                let connected = |name: &NodeId| links.contains_key(name);
                let mut directory = self.directory.lock();
                let due = directory.due(now, connected);
                (due, directory.next_due(connected))
            };
            for addr in due {
                let mesh = Arc::clone(&self);
                self.tasks.spawn(async move { mesh.dial(addr).await });
            }
            let next = next.unwrap_or(now + Duration::from_secs(3600));
            tokio::select! {
                () = self.cancel.cancelled() => break,
                () = self.dial_wake.notified() => {}
                () = tokio::time::sleep_until(next.into()) => {}
            }
        }
    }

    async fn dial(self: Arc<Self>, addr: SocketAddr) {
        let outcome =
            match self
                .endpoint
                .connect_with(self.client_config.clone(), addr, tls::SERVER_NAME)
            {
                Err(e) => Err(DialError::Unreachable(e.to_string())),
                Ok(connecting) => {
                    match tokio::time::timeout(self.config.handshake_timeout, connecting).await {
                        Err(_) => Err(DialError::Unreachable("the handshake timed out".into())),
                        Ok(Err(e)) => Err(classify(&e)),
                        Ok(Ok(conn)) => self.establish(conn, true).await,
                    }
                }
            };
        let now = Instant::now();
        match outcome {
            Ok(name) => self.directory.lock().dial_succeeded(addr, &name),
            Err(DialError::SelfConnection) => self.directory.lock().dialed_self(addr),
            Err(DialError::Refused(reason)) => {
                self.directory.lock().dial_failed(addr, now);
                self.refused(addr, reason).await;
            }
            Err(DialError::NotAllowed) => self.directory.lock().dial_failed(addr, now),
            Err(DialError::Unreachable(reason)) => {
                tracing::debug!(%addr, "dial failed: {reason}");
                self.directory.lock().dial_failed(addr, now);
            }
        }
        self.dial_wake.notify_one();
    }

    /// Reports a refused peer, with a log line.
    pub(crate) async fn refused(&self, addr: SocketAddr, reason: String) {
        tracing::debug!(%addr, "peer refused: {reason}");
        self.report(
            ErrorReport::new(
                ErrorKind::Refused,
                1,
                format!("peer at {addr} refused: {reason}"),
            )
            .with_peer(addr.to_string()),
        )
        .await;
    }

    /// Checks a fresh connection's peer, exchanges hellos, and makes it the peer's link.
    async fn establish(
        self: &Arc<Self>,
        conn: quinn::Connection,
        dialed_by_me: bool,
    ) -> Result<NodeId, DialError> {
        let remote = conn.remote_address();
        let name = match tls::remote_name(&conn) {
            Ok(name) => name,
            Err(reason) => {
                conn.close(close_code::REFUSED, b"unusable certificate name");
                return Err(DialError::Refused(reason));
            }
        };
        let peer = NodeId::new(&name).map_err(|e| DialError::Refused(e.to_string()))?;
        if peer == self.me {
            conn.close(close_code::SELF, b"that is me");
            return Err(DialError::SelfConnection);
        }
        if !self.is_allowed(&peer) {
            conn.close(close_code::REFUSED, b"not among the allowed peers");
            return Err(self.refuse_name(remote, &peer).await);
        }
        if dialed_by_me && self.links.read().contains_key(&peer) {
            // It dialed us first and that link works: keep it rather than replace it, so
            // that nothing already sent on it is cut off.
            conn.close(close_code::DUPLICATE, b"already connected");
            return Ok(peer);
        }
        let handshake = crate::link::handshake(self, &conn);
        let (hello, send, recv, leftover) =
            match tokio::time::timeout(self.config.handshake_timeout, handshake).await {
                Ok(Ok(parts)) => parts,
                Ok(Err(e)) => {
                    conn.close(close_code::PROTOCOL, b"handshake failed");
                    return Err(e);
                }
                Err(_) => {
                    conn.close(close_code::PROTOCOL, b"handshake timed out");
                    return Err(DialError::Unreachable("the mesh hello timed out".into()));
                }
            };
        let addr = SocketAddr::new(remote.ip().to_canonical(), hello.listen_port);
        let link = Arc::new(Link {
            id: self.next_link_id.fetch_add(1, Ordering::Relaxed),
            peer: peer.clone(),
            incarnation: hello.incarnation,
            dialed_by_me,
            addr,
            conn: conn.clone(),
            queue: PeerQueue::new(self.config.peer_queue_bytes),
            flushed: CancellationToken::new(),
        });
        let Some(events) = self.register(&link) else {
            conn.close(close_code::DUPLICATE, b"already connected");
            return Ok(peer);
        };
        self.directory
            .lock()
            .learn(addr, Some(peer.clone()), Origin::Learned, Instant::now());
        self.deliver(events).await;
        self.gossip_about(&link);
        self.tasks.spawn(crate::link::write_loop(
            Arc::clone(self),
            Arc::clone(&link),
            send,
        ));
        self.tasks.spawn(crate::link::read_loop(
            Arc::clone(self),
            link,
            recv,
            leftover,
        ));
        Ok(peer)
    }

    fn is_allowed(&self, peer: &NodeId) -> bool {
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

    async fn refuse_name(&self, remote: SocketAddr, peer: &NodeId) -> DialError {
        let reason = format!("peer `{peer}` is not among the allowed peers");
        tracing::debug!(%remote, "{reason}");
        self.report(
            ErrorReport::new(ErrorKind::Refused, 1, format!("{reason}; disconnected"))
                .with_peer(peer.as_str()),
        )
        .await;
        DialError::NotAllowed
    }

    /// Makes `link` the peer's link, or refuses it as a duplicate. Returns what to tell the
    /// emitter.
    fn register(&self, link: &Arc<Link>) -> Option<Vec<Incoming>> {
        if self.closing.load(Ordering::Acquire) {
            return None;
        }
        let mut links = self.links.write();
        let mut events = Vec::new();
        if let Some(old) = links.get(&link.peer) {
            if old.incarnation == link.incarnation {
                // Both sides keep the connection that the lower-named peer dialed.
                let preferred = |l: &Link| l.dialed_by_me == (self.me < l.peer);
                if !preferred(link) || preferred(old) {
                    return None;
                }
                old.conn.close(close_code::DUPLICATE, b"already connected");
            } else {
                old.conn
                    .close(close_code::REPLACED, b"a newer incarnation connected");
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

    /// The link ended: forget it (if it is still the peer's link) and report.
    pub(crate) async fn link_ended(&self, link: &Link, reason: &quinn::ConnectionError) {
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
        if !removed {
            return;
        }
        let left = matches!(reason, quinn::ConnectionError::ApplicationClosed(close) if close.error_code == close_code::BYE);
        self.directory
            .lock()
            .peer_lost(&link.peer, left, Instant::now());
        self.dial_wake.notify_one();
    }

    // ---- gossip ------------------------------------------------------------------------

    /// Tells a new peer the peers we know, and the peers we know about it.
    fn gossip_about(&self, link: &Arc<Link>) {
        if !self.config.gossip {
            return;
        }
        let links = self.links.read();
        let others: Vec<PeerAddress> = links
            .values()
            .filter(|l| l.id != link.id)
            .map(|l| PeerAddress {
                name: l.peer.to_string(),
                addr: l.addr.to_string(),
            })
            .collect();
        if !others.is_empty() {
            link.queue.push(
                &wire::message_record(KIND_PEERS, &Peers { peers: others }),
                false,
            );
        }
        let news = wire::message_record(
            KIND_PEERS,
            &Peers {
                peers: vec![PeerAddress {
                    name: link.peer.to_string(),
                    addr: link.addr.to_string(),
                }],
            },
        );
        for other in links.values().filter(|l| l.id != link.id) {
            other.queue.push(&news, false);
        }
    }

    /// Remembers the peers a gossip record names; returns a complaint about bad entries.
    pub(crate) fn learn_gossip(&self, from: &NodeId, peers: Peers) -> Option<String> {
        if !self.config.gossip {
            return None;
        }
        let mut bad = 0usize;
        let now = Instant::now();
        let mut learned = false;
        {
            let mut directory = self.directory.lock();
            for entry in peers.peers.into_iter().take(wire::MAX_GOSSIP_PEERS) {
                let (Ok(name), Ok(addr)) = (NodeId::new(&entry.name), entry.addr.parse()) else {
                    bad += 1;
                    continue;
                };
                learned |= directory.learn(addr, Some(name), Origin::Learned, now);
            }
        }
        if learned {
            self.dial_wake.notify_one();
        }
        (bad > 0).then(|| format!("{bad} unusable address(es) in gossip from `{from}`"))
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
        if tokio::time::timeout(FLUSH_TIMEOUT, flushed).await.is_err() {
            tracing::debug!("some peers did not acknowledge the last frames in time");
        }
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

/// Why a dial or an incoming connection did not become a link.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DialError {
    #[error("unreachable: {0}")]
    Unreachable(String),
    #[error("refused: {0}")]
    Refused(String),
    #[error("the peer's name is not allowed")]
    NotAllowed,
    #[error("that address is this node")]
    SelfConnection,
}

/// Sorts a failed connection: certificate and protocol problems are refusals, the rest is
/// a peer that is not there (yet).
pub(crate) fn classify(e: &quinn::ConnectionError) -> DialError {
    use quinn::ConnectionError as E;
    match e {
        E::TransportError(_) | E::ConnectionClosed(_) | E::VersionMismatch => {
            DialError::Refused(format!("the TLS handshake failed: {e}"))
        }
        E::ApplicationClosed(close) if close.error_code == close_code::REFUSED => {
            DialError::Refused(format!(
                "the peer refused us: {}",
                String::from_utf8_lossy(&close.reason)
            ))
        }
        _ => DialError::Unreachable(e.to_string()),
    }
}

fn transport_config(config: &QuicConfig) -> Result<quinn::TransportConfig, QuicError> {
    let mut transport = quinn::TransportConfig::default();
    let idle = quinn::IdleTimeout::try_from(config.idle_timeout)
        .map_err(|_| QuicError::Config("idle_timeout is too long".into()))?;
    transport
        .max_idle_timeout(Some(idle))
        .keep_alive_interval(Some(config.keep_alive))
        .max_concurrent_bidi_streams(VarInt::from_u32(0))
        .max_concurrent_uni_streams(VarInt::from_u32(4))
        .stream_receive_window(VarInt::from_u32(8 * 1024 * 1024))
        .receive_window(VarInt::from_u32(16 * 1024 * 1024))
        .send_window(16 * 1024 * 1024)
        .datagram_receive_buffer_size(None);
    Ok(transport)
}

fn bind_first_free(config: &QuicConfig) -> Result<UdpSocket, QuicError> {
    let mut last = std::io::Error::other("no port to try");
    for &port in config.ports.ports() {
        match UdpSocket::bind(SocketAddr::new(config.bind_ip, port)) {
            Ok(socket) => return Ok(socket),
            Err(e) => last = e,
        }
    }
    Err(QuicError::NoFreePort {
        ip: config.bind_ip,
        ports: config.ports.to_string(),
        last,
    })
}
