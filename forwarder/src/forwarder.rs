//! [`Forwarder`]: the forwarder's handle. It binds both sides and starts the tasks; the
//! I/O is `connections`', the routing `switchboard`'s.
//!
//! The forwarder: publishers connect to its XSUB side, subscribers to its XPUB side, and
//! every message reaches the subscribers whose subscriptions prefix its topic.
//!
//! Unlike a plain XSUB/XPUB proxy it keeps a count per topic (only the first subscribe and
//! the last cancel go upstream, and a subscriber that vanishes has its topics released),
//! and gives every subscriber its own bounded queue and writer: a subscriber that stalls
//! loses its own messages, counted and logged, and delays no one else.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use demitter_zmq::curve_keys::CurvePublicKey;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::ForwarderConfig;
use crate::connections::{accept_publishers, accept_subscribers};
use crate::error::ForwarderError;
use crate::stats::{Counters, ForwarderStats};
use crate::switchboard::Loop;

/// A running forwarder. See the [crate docs](crate) for what it guarantees.
///
/// ```
/// use demitter_forwarder::{Forwarder, ForwarderConfig};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), demitter_forwarder::ForwarderError> {
/// // Demitter's ports are ForwarderConfig::default(); here, any free ones.
/// let forwarder = Forwarder::bind(ForwarderConfig::loopback_free_ports()).await?;
/// println!("publishers: {}, subscribers: {}", forwarder.xsub_addr(), forwarder.xpub_addr());
/// forwarder.close().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Forwarder {
    xsub_addr: SocketAddr,
    xpub_addr: SocketAddr,
    /// With CURVE, the forwarder's public key: what clients prove it by.
    curve_public: Option<CurvePublicKey>,
    counters: Arc<Counters>,
    gauges: watch::Receiver<ForwarderStats>,
    cancel: CancellationToken,
    tasks: TaskTracker,
}

impl Forwarder {
    /// Binds both sides and starts forwarding.
    pub async fn bind(config: ForwarderConfig) -> Result<Self, ForwarderError> {
        let (xsub, xpub) = (config.xsub, config.xpub);
        let overlapping_ips =
            xsub.ip() == xpub.ip() || xsub.ip().is_unspecified() || xpub.ip().is_unspecified();
        if xsub.port() != 0 && xsub.port() == xpub.port() && overlapping_ips {
            return Err(ForwarderError::SamePort(config.xsub.port()));
        }
        let (xsub, xsub_addr) = listen("XSUB", config.xsub).await?;
        let (xpub, xpub_addr) = listen("XPUB", config.xpub).await?;
        let (gauges_tx, gauges) = watch::channel(ForwarderStats::default());
        let forwarder = Self {
            xsub_addr,
            xpub_addr,
            curve_public: config.curve.as_ref().map(|c| c.secret.public_key()),
            counters: Arc::default(),
            gauges,
            cancel: CancellationToken::new(),
            tasks: TaskTracker::new(),
        };
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let (messages_tx, messages_rx) = mpsc::channel(4096);
        let ids = Arc::new(AtomicU64::new(1));
        forwarder.tasks.spawn(accept_publishers(
            xsub,
            config.clone(),
            events_tx.clone(),
            messages_tx,
            Arc::clone(&ids),
            forwarder.cancel.clone(),
            forwarder.tasks.clone(),
        ));
        forwarder.tasks.spawn(accept_subscribers(
            xpub,
            config.clone(),
            events_tx,
            ids,
            forwarder.cancel.clone(),
            forwarder.tasks.clone(),
        ));
        forwarder
            .tasks
            .spawn(Loop::new(Arc::clone(&forwarder.counters), gauges_tx).run(
                events_rx,
                messages_rx,
                forwarder.cancel.clone(),
                config.stats_interval,
            ));
        tracing::info!(
            xsub = %forwarder.xsub_addr,
            xpub = %forwarder.xpub_addr,
            "forwarder listening"
        );
        Ok(forwarder)
    }

    /// The address publishers connect to.
    pub fn xsub_addr(&self) -> SocketAddr {
        self.xsub_addr
    }

    /// The address subscribers connect to.
    pub fn xpub_addr(&self) -> SocketAddr {
        self.xpub_addr
    }

    /// The `zmq://` URL that reaches this forwarder from this machine, for
    /// [`demitter::connect`](https://docs.rs/demitter) and the `demitter` command:
    /// `zmq://HOST:XSUB_PORT?xpub=XPUB_PORT`, with loopback for a side bound to every
    /// interface (`0.0.0.0`, `::`), and the XSUB side's host for both (a URL names one).
    /// With CURVE it adds `curve=` and the forwarder's public key; a client adds its own
    /// `&secret=FILE`.
    ///
    /// ```
    /// use demitter_forwarder::{Forwarder, ForwarderConfig};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), demitter_forwarder::ForwarderError> {
    /// let forwarder = Forwarder::bind(ForwarderConfig::loopback_free_ports()).await?;
    /// let url = forwarder.url();
    /// assert_eq!(
    ///     url,
    ///     format!("zmq://127.0.0.1:{}?xpub={}", forwarder.xsub_addr().port(), forwarder.xpub_addr().port())
    /// );
    /// forwarder.close().await;
    /// # Ok(()) }
    /// ```
    pub fn url(&self) -> String {
        let ip = match self.xsub_addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        let host = SocketAddr::new(ip, self.xsub_addr.port());
        let curve = self
            .curve_public
            .as_ref()
            .map_or_else(String::new, |key| format!("&curve={key}"));
        format!("zmq://{host}?xpub={}{curve}", self.xpub_addr.port())
    }

    /// The counters now.
    pub fn stats(&self) -> ForwarderStats {
        self.counters.snapshot()
    }

    /// Waits until the connection gauges (publishers, subscribers, topics) satisfy `ready`;
    /// `false` if the forwarder stopped first. Wrap it in a timeout.
    pub async fn wait_until(&self, ready: impl Fn(&ForwarderStats) -> bool) -> bool {
        let mut gauges = self.gauges.clone();
        gauges.wait_for(|g| ready(g)).await.is_ok()
    }

    /// Stops accepting, closes every connection, and returns when every task has ended.
    pub async fn close(self) {
        self.cancel.cancel();
        self.tasks.close();
        self.tasks.wait().await;
        tracing::info!("forwarder stopped");
    }
}

/// Binds one side; returns its listener and the address it listens on.
async fn listen(
    side: &'static str,
    addr: SocketAddr,
) -> Result<(TcpListener, SocketAddr), ForwarderError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ForwarderError::Bind { side, addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| ForwarderError::LocalAddress { side, source })?;
    Ok((listener, bound))
}
