//! Accepting and dialing: the loops that turn QUIC connections into links, and the checks
//! a fresh connection passes (its certificate name, the allow list, the hello) before the
//! mesh's table takes it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use demitter_core::{AddressOrigin, ErrorKind, ErrorReport, NodeId, SendQueue};
use tokio_util::sync::CancellationToken;

use crate::link::{self, DialError, Link, LinkHost as _, classify, close_code};
use crate::mesh::Mesh;
use crate::tls;
use crate::wire::Hello;

impl Mesh {
    pub(crate) async fn accept_loop(self: Arc<Self>) {
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
                    // A certificate refused is reported; a peer that closed the
                    // connection, left or went quiet during the handshake (a short-lived
                    // node, a duplicate connection) is nobody's refusal.
                    Ok(Err(e)) if link::is_tls_refusal(&e) => {
                        mesh.refused(remote, format!("the TLS handshake failed: {e}"))
                            .await;
                    }
                    Ok(Err(e)) => {
                        tracing::debug!(%remote, "an incoming handshake ended: {e}");
                    }
                    Err(_) => {
                        tracing::debug!(%remote, "an incoming handshake timed out");
                    }
                }
            });
        }
    }

    pub(crate) async fn dial_loop(self: Arc<Self>) {
        loop {
            if self.gave_way.load(Ordering::Acquire) {
                break;
            }
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
            Ok(name) => self.directory.lock().dial_succeeded(&addr, &name),
            Err(DialError::SelfConnection) => self.directory.lock().dialed_self(&addr),
            Err(DialError::Refused(reason)) => {
                self.directory.lock().dial_failed(&addr, now);
                self.refused(addr, reason).await;
            }
            Err(DialError::NotAllowed | DialError::Namesake) => {
                self.directory.lock().dial_failed(&addr, now);
            }
            Err(DialError::Unreachable(reason)) => {
                tracing::debug!(%addr, "dial failed: {reason}");
                // A seed (or a discovered address) that does not answer is how a node
                // fails to join: said once, until it answers.
                if self.directory.lock().dial_failed(&addr, now) {
                    self.report(
                        ErrorReport::new(
                            ErrorKind::Network,
                            1,
                            format!("cannot reach the peer at {addr} (a seed or a discovered address): {reason}; still dialing"),
                        )
                        .with_peer(addr.to_string()),
                    )
                    .await;
                }
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
    pub(crate) async fn establish(
        self: &Arc<Self>,
        conn: quinn::Connection,
        dialed_by_me: bool,
    ) -> Result<NodeId, DialError> {
        let remote = conn.remote_address();
        if self.gave_way.load(Ordering::Acquire) {
            conn.close(close_code::NAMESAKE, b"this node gave way to a namesake");
            return Err(DialError::Namesake);
        }
        let name = match tls::remote_name(&conn) {
            Ok(name) => name,
            Err(e) => {
                conn.close(close_code::REFUSED, b"unusable certificate name");
                return Err(DialError::Refused(e.to_string()));
            }
        };
        let peer = NodeId::new(&name).map_err(|e| DialError::Refused(e.to_string()))?;
        if peer == self.me {
            // This node itself, or another live node with its name: the hellos tell.
            let own_hello = self.hello();
            let hello = match self.exchange_hellos(&own_hello, &conn).await {
                Ok((hello, ..)) => hello,
                // It closed the connection first: a namesake that gave way to this node.
                Err(DialError::Namesake) => {
                    let addr = SocketAddr::new(remote.ip().to_canonical(), remote.port());
                    self.namesake_gave_way(addr).await;
                    return Err(DialError::Namesake);
                }
                Err(e) => return Err(e),
            };
            if hello.incarnation == self.incarnation {
                conn.close(close_code::SELF, b"that is me");
                return Err(DialError::SelfConnection);
            }
            let addr = SocketAddr::new(remote.ip().to_canonical(), hello.listen_port);
            return Err(self.meet_namesake(&conn, &own_hello, &hello, addr).await);
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
        let (hello, send, recv, leftover) = self.exchange_hellos(&self.hello(), &conn).await?;
        let addr = SocketAddr::new(remote.ip().to_canonical(), hello.listen_port);
        let link = Arc::new(Link {
            id: self.next_link_id.fetch_add(1, Ordering::Relaxed),
            peer: peer.clone(),
            incarnation: hello.incarnation,
            dialed_by_me,
            addr,
            conn: conn.clone(),
            queue: SendQueue::new(self.config.peer_queue_bytes, usize::MAX),
            flushed: CancellationToken::new(),
        });
        let Some(events) = self.register(&link) else {
            if self.closing.load(Ordering::Acquire) {
                conn.close(close_code::DUPLICATE, b"already connected");
            } else {
                // A duplicate the peer may be sending on still (it took it for the link
                // before it saw the other): read what comes until the peer finishes it, send
                // nothing on it, and let it close. Closing it now would lose that.
                link.queue.close();
                self.tasks
                    .spawn(link::write_loop(Arc::clone(self), Arc::clone(&link), send));
                self.tasks
                    .spawn(link::read_loop(Arc::clone(self), link, recv, leftover));
            }
            return Ok(peer);
        };
        self.directory.lock().learn(
            addr,
            Some(peer.clone()),
            AddressOrigin::Learned,
            Instant::now(),
        );
        // Gossip first: a peer takes its first record as the sign that whom this node
        // knows has arrived, and the emitter's answer to `PeerUp` must come after it.
        self.gossip_about(&link);
        self.deliver(events).await;
        self.tasks
            .spawn(link::write_loop(Arc::clone(self), Arc::clone(&link), send));
        self.tasks
            .spawn(link::read_loop(Arc::clone(self), link, recv, leftover));
        Ok(peer)
    }

    /// Sends `own_hello` and reads the peer's, within the handshake timeout; a failure
    /// closes the connection.
    async fn exchange_hellos(
        &self,
        own_hello: &Hello,
        conn: &quinn::Connection,
    ) -> Result<(Hello, quinn::SendStream, quinn::RecvStream, BytesMut), DialError> {
        let handshake = link::handshake(own_hello, conn);
        match tokio::time::timeout(self.config.handshake_timeout, handshake).await {
            Ok(Ok(parts)) => Ok(parts),
            Ok(Err(e)) => {
                conn.close(close_code::PROTOCOL, b"handshake failed");
                Err(e)
            }
            Err(_) => {
                conn.close(close_code::PROTOCOL, b"handshake timed out");
                Err(DialError::Unreachable("the mesh hello timed out".into()))
            }
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
}
