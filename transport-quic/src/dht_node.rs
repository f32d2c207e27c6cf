//! [`DhtNode`]: a plain node of a private DHT, for the QUIC mesh's `dht=` discovery to
//! bootstrap from (what `demitter dht` runs).

use std::net::SocketAddrV4;

use mainline::async_dht::AsyncDht;

use crate::error::QuicError;

/// A DHT node that serves others and announces nothing of its own: the bootstrap node of a
/// private DHT. It runs until dropped.
///
/// ```
/// use demitter_quic::DhtNode;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), demitter_quic::QuicError> {
/// let node = DhtNode::start("127.0.0.1:0".parse().expect("address"), &[]).await?;
/// assert!(node.local_addr().ip().is_loopback());
/// assert_ne!(node.local_addr().port(), 0);
/// // Nodes join with `dht=127.0.0.1:PORT` in their URL.
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct DhtNode {
    dht: AsyncDht,
    local_addr: SocketAddrV4,
}

impl DhtNode {
    /// Starts a node on `bind` (port `0`: any free port). With `join` empty it is the first
    /// node of a new DHT; otherwise it joins the DHT those nodes (`host:port`) are part of,
    /// so that several bootstrap nodes back each other up.
    ///
    /// # Errors
    ///
    /// [`QuicError::DhtBind`] when the UDP socket cannot be opened.
    pub async fn start(bind: SocketAddrV4, join: &[String]) -> Result<Self, QuicError> {
        let mut builder = mainline::Dht::builder();
        builder
            .server_mode()
            .bind_address(*bind.ip())
            .port(bind.port());
        if join.is_empty() {
            builder.no_bootstrap();
        } else {
            builder.bootstrap(join);
        }
        let dht = tokio::task::spawn_blocking(move || builder.build())
            .await
            .map_err(|e| QuicError::DhtBind {
                addr: bind,
                source: std::io::Error::other(e),
            })?
            .map_err(|source| QuicError::DhtBind { addr: bind, source })?
            .as_async();
        let local_addr = dht.info().await.local_addr();
        tracing::info!(addr = %local_addr, "DHT node running");
        Ok(Self { dht, local_addr })
    }

    /// Where it listens (UDP).
    pub fn local_addr(&self) -> SocketAddrV4 {
        self.local_addr
    }

    /// How many other DHT nodes it knows now (its routing table).
    pub async fn known_nodes(&self) -> usize {
        self.dht.to_bootstrap().await.len()
    }
}
