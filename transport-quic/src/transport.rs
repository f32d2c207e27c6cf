//! [`QuicTransport`]: the mesh as a demitter [`Transport`].

use std::net::SocketAddr;
use std::sync::{Arc, Weak};

use demitter_core::{
    BatchInbox, Capabilities, Destination, Error, Frame, Incoming, NodeId, Receive, Transport,
};
use futures_util::future::BoxFuture;

use crate::config::QuicConfig;
use crate::error::QuicError;
use crate::link::Link;
use crate::mesh::Mesh;
use crate::wire;
use demitter_core::record::put_frame_record;

/// A node of the QUIC peer mesh.
///
/// Every node listens and dials; each pair of peers shares exactly one connection, mutually
/// authenticated by certificates of one hood, and each side sends on one long-lived ordered
/// stream. Events go only to the peers whose listeners match (the core's interest tables),
/// through a bounded queue per peer: a slow or stalled peer has its events dropped and
/// counted, never holding up `emit` or the other peers. A lost peer is redialed with
/// backoff while discovery knows it.
///
/// ```no_run
/// use demitter_core::Emitter;
/// use demitter_quic::{PeerIdentity, QuicConfig, QuicTransport};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let me = PeerIdentity::load("./hood".as_ref(), "alice")?;
/// let config = QuicConfig::new(me).with_seed("10.0.0.2:4816");
/// let emitter = Emitter::new(QuicTransport::bind(config)?)?;
/// emitter.emit("greeting", "hello, mesh").await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct QuicTransport {
    mesh: Arc<Mesh>,
    inbox: BatchInbox,
}

impl QuicTransport {
    /// Listens on the first free port of the configuration and starts finding peers. Must
    /// be called within a tokio runtime.
    pub fn bind(config: QuicConfig) -> Result<Self, QuicError> {
        Self::start(config, None)
    }

    /// Like [`bind`](Self::bind), on a UDP socket bound already (handed over by a service
    /// manager, or made inside another network namespace); `bind_ip` and `ports` are not
    /// used.
    pub fn with_socket(config: QuicConfig, socket: std::net::UdpSocket) -> Result<Self, QuicError> {
        Self::start(config, Some(socket))
    }

    fn start(config: QuicConfig, socket: Option<std::net::UdpSocket>) -> Result<Self, QuicError> {
        let (mesh, inbox) = Mesh::start(config, socket)?;
        Ok(Self { mesh, inbox })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.mesh.local_addr
    }

    /// Its name (the certificate's), which is its emitter's id.
    pub fn name(&self) -> &NodeId {
        &self.mesh.me
    }

    /// The peers it is connected to now.
    pub fn connected_peers(&self) -> Vec<NodeId> {
        let mut peers: Vec<NodeId> = self.mesh.links.read().keys().cloned().collect();
        peers.sort();
        peers
    }

    /// Waits until at least `n` peers are connected (at once if they are).
    pub async fn wait_for_peers(&self, n: usize) {
        let mut count = self.mesh.peer_count.subscribe();
        // The sender lives as long as the mesh, which `self` holds.
        let _ = count.wait_for(|connected| *connected >= n).await;
    }

    /// Changes who may connect at run time: only the peers named (`None`: every peer of
    /// the hood). Connected peers the new list leaves out are disconnected at once, each
    /// with a `refused` report, and refused when they try again: this is how a peer's
    /// certificate is revoked.
    pub async fn set_allowed_peers<I, S>(&self, names: Option<I>)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let allowed = names.map(|names| names.into_iter().map(Into::into).collect());
        self.mesh.set_allowed(allowed).await;
    }

    /// Drops every connection at once and sends nothing more, as a crash would (peers see
    /// the connections close instead of waiting for an idle timeout). Then
    /// [`close`](Transport::close) returns at once.
    pub fn abort(&self) {
        self.mesh.abort();
    }
}

impl Transport for QuicTransport {
    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::broadcast(self.mesh.config.max_frame_bytes);
        caps.peer_events = true;
        caps.sender_filtering = true;
        caps.authenticated = true;
        caps.blocking_send = true;
        caps.census = true;
        caps
    }

    fn peer_address(&self, peer: &NodeId) -> Option<String> {
        self.mesh
            .links
            .read()
            .get(peer)
            .map(|link| link.addr.to_string())
    }

    fn wait_for_room(&self, bytes: usize) -> BoxFuture<'_, ()> {
        let links: Vec<Arc<Link>> = self.mesh.links.read().values().cloned().collect();
        Box::pin(async move {
            for link in links {
                link.queue.wait_for_room(wire::RECORD_HEADER + bytes).await;
            }
        })
    }

    fn local_id(&self) -> Option<NodeId> {
        Some(self.mesh.me.clone())
    }

    fn send(&self, frame: Frame, to: Destination) -> Result<(), Error> {
        if self.mesh.is_stopped() {
            return Err(Error::Closed);
        }
        // The node keeps frames within `max_frame_bytes`, events and control alike.
        let size = frame.encoded_len();
        let is_event = matches!(frame, Frame::Event(_));
        // Encoded straight into each peer's queue: no record is allocated.
        let push = |link: &Link| {
            // Refused only if full (the event is counted and reported once the peer
            // catches up) or closed (the link is going, and its loss reported with it).
            let _ = link
                .queue
                .push_with(wire::RECORD_HEADER + size, is_event, |buf| {
                    put_frame_record(buf, wire::KIND_FRAME, &frame);
                });
        };
        let links = self.mesh.links.read();
        let mut missing = 0usize;
        match to {
            Destination::All => links.values().for_each(|link| push(link)),
            Destination::Peer(peer) => match links.get(&peer) {
                Some(link) => push(link),
                None => missing += 1,
            },
            Destination::Peers(peers) => {
                for peer in peers.iter() {
                    match links.get(peer) {
                        Some(link) => push(link),
                        None => missing += 1,
                    }
                }
            }
        }
        if missing > 0 && is_event {
            return Err(Error::PeersGone { missing });
        }
        Ok(())
    }

    fn recv(&self) -> BoxFuture<'_, Option<Incoming>> {
        Box::pin(async move {
            if self.mesh.is_stopped() {
                return None;
            }
            tokio::select! {
                biased;
                () = self.mesh.cancel.cancelled() => None,
                item = self.inbox.recv() => item,
            }
        })
    }

    fn recv_many<'a>(&'a self, into: &'a mut Vec<Incoming>, max: usize) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            if self.mesh.is_stopped() {
                return false;
            }
            tokio::select! {
                biased;
                () = self.mesh.cancel.cancelled() => false,
                open = self.inbox.recv_many(into, max) => open,
            }
        })
    }

    /// Each connection's reader hands its batches to the emitter itself: one task fewer
    /// between the network and the listeners.
    fn receive_directly(&self, receiver: Weak<dyn Receive>) -> bool {
        self.inbox.attach(receiver)
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.mesh.close())
    }
}
