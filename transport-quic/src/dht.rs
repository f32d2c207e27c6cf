//! [`DhtDiscovery`]: finds the peers of the same hood anywhere, through BitTorrent's
//! Mainline DHT (BEP 5), as partybus's tubemail-dht does — the public DHT, or a private one
//! bootstrapped from nodes you run ([`DhtNode`](crate::DhtNode), `demitter dht`).
//!
//! Every node of a hood announces its QUIC port under one *rendezvous key*, an info-hash
//! derived from the hood's certificate ([`rendezvous_key`]), and looks that key up now and
//! then. Every address found is only a candidate: the mesh dials it, and mutual TLS decides,
//! as for seeds, gossip and mDNS.
//!
//! **What the DHT learns, and what it does not.** Anyone can read a key's announcements, so
//! anyone who watches the DHT sees that *some* hood lives at those addresses and ports, and
//! that they share one key. The key is a hash: it does not name the hood, its peers or its
//! certificate, and a hood's key says nothing about another's. Nobody without a certificate
//! of the hood gets in: a stranger who dials an announced address is refused at the TLS
//! handshake. A DHT announcement outlives its node, so a lookup can return addresses of
//! nodes long gone; the mesh dials such an address quietly (no report) and forgets it when
//! it stays unreachable.
//!
//! **Timing.** A node announces itself and looks up the key as soon as its mesh starts, so a
//! new node finds every node already announced within its first lookup (about 0.1 s on a
//! local DHT, a few seconds on the public one) and dials them; the others learn of it from
//! that connection and from gossip. Afterwards it looks up again after
//! [`DhtDiscovery::with_lookup_interval`]'s shortest interval (2 s), doubling while nothing
//! new turns up to the longest (60 s), and announces again every 5 minutes.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use futures_util::future::BoxFuture;
use mainline::Id;
use mainline::async_dht::AsyncDht;
use tokio::sync::watch;

use crate::discovery::{Discovery, DiscoverySink, Found, LocalNode};

/// Where a node joins the DHT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DhtBootstrap {
    /// The public Mainline DHT, through `mainline`'s default bootstrap routers
    /// ([`mainline::DEFAULT_BOOTSTRAP_NODES`]): peers anywhere on the internet.
    Public,
    /// A private DHT, joined through these nodes (`host:port`, IPv4), for example
    /// `demitter dht` processes: the node also serves the others (server mode), so the DHT
    /// outlives any one of them.
    Nodes(Vec<String>),
}

/// What a [`DhtDiscovery`] has done so far ([`DhtDiscovery::status`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DhtStatus {
    /// The UDP address of this node's DHT socket, once it is bound.
    pub local_addr: Option<SocketAddrV4>,
    /// Whether this node's last announcement was stored by the DHT.
    pub announced: bool,
    /// How many lookups of the rendezvous key have finished.
    pub lookups: u64,
    /// How many distinct addresses the lookups returned (this node's own excluded).
    pub found: usize,
}

/// The most addresses one discovery remembers; beyond, further ones are ignored.
const MAX_FOUND: usize = 4096;
/// How often a node announces itself again while all is well.
const REANNOUNCE: Duration = Duration::from_secs(5 * 60);
/// The default shortest and longest time between lookups.
const LOOKUP_MIN: Duration = Duration::from_secs(2);
const LOOKUP_MAX: Duration = Duration::from_secs(60);

/// The rendezvous key of a hood: the first 20 bytes of SHA-256 over a fixed label and the
/// SHA-256 of the hood's certificate ([`PeerIdentity::hood_digest`](crate::PeerIdentity::hood_digest)).
///
/// ```
/// use demitter_quic::{dht::rendezvous_key, pki::Hood};
/// let (office, lab) = (Hood::create("office")?, Hood::create("lab")?);
/// let key = |hood: &Hood| hood.issue("p").map(|peer| rendezvous_key(&peer.hood_digest()));
/// assert_eq!(key(&office)?, key(&office)?);
/// assert_ne!(key(&office)?, key(&lab)?);
/// # Ok::<(), demitter_quic::QuicError>(())
/// ```
pub fn rendezvous_key(hood_digest: &[u8; 32]) -> [u8; 20] {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    context.update(b"demitter-rs dht rendezvous v1\0");
    context.update(hood_digest);
    let digest = context.finish();
    let mut key = [0; 20];
    key.copy_from_slice(&digest.as_ref()[..20]);
    key
}

/// Discovery through the Mainline DHT. One per mesh: its [status](Self::status) follows
/// the one mesh that runs it.
///
/// ```no_run
/// use demitter_quic::{DhtDiscovery, QuicConfig, dht::DhtBootstrap, pki::Hood};
///
/// let hood = Hood::create("lab")?;
/// let config = QuicConfig::new(hood.issue("sensor-3")?);
/// let dht = DhtDiscovery::new(DhtBootstrap::Nodes(vec!["10.0.0.2:6881".into()]));
/// let config = config.with_dht(dht);
/// let status = config.dht.as_ref().map(|dht| dht.status());
/// # Ok::<(), demitter_quic::QuicError>(())
/// ```
#[derive(Debug)]
pub struct DhtDiscovery {
    bootstrap: DhtBootstrap,
    port: u16,
    lookup_min: Duration,
    lookup_max: Duration,
    status: Arc<watch::Sender<DhtStatus>>,
}

impl DhtDiscovery {
    /// Joins the DHT through `bootstrap`, on a UDP port the system picks.
    pub fn new(bootstrap: DhtBootstrap) -> Self {
        Self {
            bootstrap,
            port: 0,
            lookup_min: LOOKUP_MIN,
            lookup_max: LOOKUP_MAX,
            status: Arc::new(watch::Sender::new(DhtStatus::default())),
        }
    }

    /// The DHT's own UDP port (`0`: any free port, the default). A fixed port lets a
    /// firewall let the DHT in.
    #[must_use]
    pub fn with_port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// The shortest and longest time between lookups (defaults 2 s and 60 s): the interval
    /// starts at `min`, doubles while lookups find nothing new, and goes back to `min` when
    /// one does. `min` is at least 100 ms, `max` at least `min`.
    #[must_use]
    pub fn with_lookup_interval(mut self, min: Duration, max: Duration) -> Self {
        self.lookup_min = min.max(Duration::from_millis(100));
        self.lookup_max = max.max(self.lookup_min);
        self
    }

    /// Where this discovery joins the DHT.
    pub fn bootstrap(&self) -> &DhtBootstrap {
        &self.bootstrap
    }

    /// The DHT's UDP port as configured (`0`: any).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// What it has done so far, now and on every change.
    pub fn status(&self) -> watch::Receiver<DhtStatus> {
        self.status.subscribe()
    }
}

impl Discovery for DhtDiscovery {
    fn run(&self, local: LocalNode, sink: DiscoverySink) -> BoxFuture<'static, ()> {
        let search = Search {
            bootstrap: self.bootstrap.clone(),
            port: self.port,
            lookup_min: self.lookup_min,
            lookup_max: self.lookup_max,
            status: Arc::clone(&self.status),
            local,
            sink,
        };
        Box::pin(search.run())
    }
}

/// One running discovery.
struct Search {
    bootstrap: DhtBootstrap,
    port: u16,
    lookup_min: Duration,
    lookup_max: Duration,
    status: Arc<watch::Sender<DhtStatus>>,
    local: LocalNode,
    sink: DiscoverySink,
}

impl Search {
    async fn run(self) {
        let IpAddr::V4(bind) = self.local.ip else {
            self.sink
                .report(Found::Unavailable(format!(
                    "DHT discovery is off: the DHT works over IPv4 only, and this node listens on {}",
                    self.local.ip
                )))
                .await;
            return;
        };
        let Some(dht) = self.start(bind).await else {
            return;
        };
        let key = match Id::from_bytes(rendezvous_key(&self.local.hood_digest)) {
            Ok(key) => key,
            Err(e) => {
                tracing::error!("the DHT refused a 20-byte key: {e}");
                return;
            }
        };
        self.search(&dht, key).await;
    }

    /// Starts this node's DHT node; `None` (reported) if it cannot.
    async fn start(&self, bind: Ipv4Addr) -> Option<AsyncDht> {
        let mut builder = mainline::Dht::builder();
        builder.bind_address(bind).port(self.port);
        if let DhtBootstrap::Nodes(nodes) = &self.bootstrap {
            let resolved = self.resolve(nodes).await?;
            builder.bootstrap(&resolved).server_mode();
        }
        let built = tokio::task::spawn_blocking(move || builder.build()).await;
        match built {
            Ok(Ok(dht)) => {
                let dht = dht.as_async();
                let addr = dht.info().await.local_addr();
                tracing::debug!(%addr, bootstrap = ?self.bootstrap, "DHT node started");
                self.status.send_modify(|s| s.local_addr = Some(addr));
                Some(dht)
            }
            Ok(Err(e)) => {
                self.sink
                    .report(Found::Unavailable(format!(
                        "DHT discovery is off: could not open its UDP socket on {bind}:{}: {e}",
                        self.port
                    )))
                    .await;
                None
            }
            Err(e) => {
                tracing::error!("the DHT's start task failed: {e}");
                None
            }
        }
    }

    /// The bootstrap nodes' IPv4 addresses, resolving names until at least one resolves;
    /// each that does not is reported once. `None` when the mesh has closed.
    async fn resolve(&self, nodes: &[String]) -> Option<Vec<SocketAddrV4>> {
        let mut reported = HashSet::new();
        loop {
            let mut resolved = Vec::new();
            for node in nodes {
                let addrs = match tokio::net::lookup_host(node.as_str()).await {
                    Ok(addrs) => addrs.collect::<Vec<_>>(),
                    Err(e) => {
                        if reported.insert(node.clone()) {
                            let gone = !self
                                .sink
                                .report(Found::Unavailable(format!(
                                    "the DHT bootstrap node `{node}` does not resolve: {e}"
                                )))
                                .await;
                            if gone {
                                return None;
                            }
                        }
                        continue;
                    }
                };
                resolved.extend(addrs.into_iter().filter_map(|addr| match addr {
                    SocketAddr::V4(v4) => Some(v4),
                    SocketAddr::V6(_) => None,
                }));
            }
            if !resolved.is_empty() {
                return Some(resolved);
            }
            tokio::time::sleep(self.lookup_max.min(Duration::from_secs(5))).await;
        }
    }

    /// Announces and looks up `key` until the mesh closes (which drops this future).
    async fn search(&self, dht: &AsyncDht, key: Id) {
        let mut known: HashSet<SocketAddr> = HashSet::new();
        let mut interval = self.lookup_min;
        let mut announced_at: Option<Instant> = None;
        let mut failing = false;
        loop {
            if announced_at.is_none_or(|at| at.elapsed() >= REANNOUNCE) {
                match dht.announce_peer(key, Some(self.local.port)).await {
                    Ok(_) => {
                        announced_at = Some(Instant::now());
                        if failing {
                            tracing::info!("DHT: this node is announced again");
                        }
                        failing = false;
                        self.status.send_modify(|s| s.announced = true);
                    }
                    Err(e) => {
                        announced_at = None;
                        self.status.send_modify(|s| s.announced = false);
                        if !failing && !self.sink.report(self.announce_failed(&e)).await {
                            return;
                        }
                        failing = true;
                    }
                }
            }
            let mut new = 0usize;
            let mut lookup = dht.get_peers(key);
            while let Some(batch) = lookup.next().await {
                for addr in batch.into_iter().map(SocketAddr::V4) {
                    if self.is_self(addr) || known.len() >= MAX_FOUND || !known.insert(addr) {
                        continue;
                    }
                    new += 1;
                    tracing::debug!(%addr, "DHT: found a candidate");
                    if !self.sink.report(Found::Candidate(addr)).await {
                        return;
                    }
                }
            }
            let found = known.len();
            self.status.send_modify(|s| {
                s.lookups += 1;
                s.found = found;
            });
            interval = if new > 0 || failing {
                self.lookup_min
            } else {
                (interval * 2).min(self.lookup_max)
            };
            tokio::time::sleep(interval).await;
        }
    }

    /// The report of an announcement the DHT did not take.
    fn announce_failed(&self, e: &mainline::errors::PutQueryError) -> Found {
        let hint = match &self.bootstrap {
            DhtBootstrap::Public => "is UDP to the internet blocked here?".to_owned(),
            DhtBootstrap::Nodes(nodes) => format!(
                "is a DHT node (`demitter dht`) running at {}?",
                nodes.join(", ")
            ),
        };
        Found::Unavailable(format!(
            "DHT discovery cannot announce this node ({e}): {hint}"
        ))
    }

    /// Whether `addr` is this node's own announcement.
    fn is_self(&self, addr: SocketAddr) -> bool {
        addr.port() == self.local.port
            && (addr.ip() == self.local.ip
                || (self.local.ip.is_unspecified() && addr.ip().is_loopback()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_dht_is_the_default_routers_and_binds_nothing_until_run() {
        // Configuration alone: nothing is bound and nothing is sent.
        let dht = DhtDiscovery::new(DhtBootstrap::Public);
        assert_eq!(dht.bootstrap(), &DhtBootstrap::Public);
        assert_eq!(dht.port(), 0);
        assert_eq!(*dht.status().borrow(), DhtStatus::default());
        assert!(
            mainline::DEFAULT_BOOTSTRAP_NODES
                .iter()
                .all(|node| node.contains(':')),
            "the routers `dht=on` uses are host:port"
        );
    }

    #[test]
    fn lookup_intervals_are_kept_sane() {
        let dht = DhtDiscovery::new(DhtBootstrap::Public)
            .with_lookup_interval(Duration::ZERO, Duration::ZERO);
        assert_eq!(dht.lookup_min, Duration::from_millis(100));
        assert_eq!(dht.lookup_max, Duration::from_millis(100));
    }

    #[test]
    fn keys_differ_between_hoods_and_from_the_digest() {
        let a = rendezvous_key(&[1; 32]);
        assert_eq!(a, rendezvous_key(&[1; 32]));
        assert_ne!(a, rendezvous_key(&[2; 32]));
        assert_ne!(&a[..], &[1; 20][..], "the key is not the digest itself");
    }
}
