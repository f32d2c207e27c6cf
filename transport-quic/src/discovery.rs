//! [`Discovery`]: how a node learns where peers are. The mesh dials every address it is
//! told about, keeps redialing it with backoff while it is known, and keeps exactly one
//! connection per pair of peers however they found each other.
//!
//! Built in: [`StaticSeeds`] (from [`QuicConfig::seeds`](crate::QuicConfig::seeds)) and
//! gossip (peers tell each other the peers they know; [`QuicConfig::gossip`](crate::QuicConfig::gossip)).
//! Multicast DNS on the local network is [`MdnsDiscovery`](crate::MdnsDiscovery)
//! ([`QuicConfig::with_mdns`](crate::QuicConfig::with_mdns)). Other mechanisms (a service
//! registry) plug in as further [`Discovery`] implementations in
//! [`QuicConfig::discovery`](crate::QuicConfig::discovery).

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::sync::mpsc;

/// This node, as discovery mechanisms need to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalNode {
    /// Its certificate name.
    pub name: String,
    /// Its hood's [fingerprint](crate::PeerIdentity::hood_fingerprint).
    pub hood: String,
    /// The address it listens on (may be unspecified: `0.0.0.0`).
    pub ip: IpAddr,
    /// The port it listens on.
    pub port: u16,
}

/// What a discovery mechanism reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// A peer may listen here: dial it, and keep redialing while it is known.
    Address(SocketAddr),
    /// The peer named `name` listens here: dial it as for [`Found::Address`], knowing whom
    /// to expect (so the pair's lower name dials first). A name that is not a valid node id
    /// is ignored.
    Peer {
        /// The peer's certificate name.
        name: String,
        /// Where it listens.
        addr: SocketAddr,
    },
    /// Forget this address (existing connections stay).
    Gone(SocketAddr),
}

/// Where a discovery mechanism reports to.
#[derive(Debug, Clone)]
pub struct DiscoverySink(pub(crate) mpsc::Sender<Found>);

impl DiscoverySink {
    /// Reports a finding; `false` once the mesh has closed (stop then).
    pub async fn report(&self, found: Found) -> bool {
        self.0.send(found).await.is_ok()
    }
}

/// A way to find peers. Object-safe; the mesh runs each one as a task until it closes.
///
/// ```
/// use demitter_quic::discovery::{Discovery, DiscoverySink, Found, LocalNode};
/// use futures_util::future::BoxFuture;
///
/// /// Finds one fixed peer.
/// #[derive(Debug)]
/// struct Fixed(std::net::SocketAddr);
///
/// impl Discovery for Fixed {
///     fn run(&self, _local: LocalNode, sink: DiscoverySink) -> BoxFuture<'static, ()> {
///         let addr = self.0;
///         Box::pin(async move {
///             sink.report(Found::Address(addr)).await;
///         })
///     }
/// }
/// ```
pub trait Discovery: Send + Sync + fmt::Debug + 'static {
    /// Finds peers for `local` and reports them to `sink`. The future may end when it has
    /// nothing more to find; it is dropped when the mesh closes.
    fn run(&self, local: LocalNode, sink: DiscoverySink) -> BoxFuture<'static, ()>;
}

/// Fixed `host:port` addresses, resolved (and re-resolved until they resolve).
#[derive(Debug, Clone, Default)]
pub struct StaticSeeds {
    seeds: Vec<String>,
}

impl StaticSeeds {
    /// The seeds `host:port`.
    pub fn new(seeds: Vec<String>) -> Self {
        Self { seeds }
    }
}

/// How long to wait before resolving a seed again after a failure.
const RESOLVE_RETRY: Duration = Duration::from_secs(5);

impl Discovery for StaticSeeds {
    fn run(&self, _local: LocalNode, sink: DiscoverySink) -> BoxFuture<'static, ()> {
        let seeds = self.seeds.clone();
        Box::pin(async move {
            let mut pending = seeds;
            while !pending.is_empty() {
                let mut unresolved = Vec::new();
                for seed in pending {
                    let resolved = tokio::net::lookup_host(seed.clone()).await;
                    match resolved {
                        Ok(addrs) => {
                            for addr in addrs {
                                if !sink.report(Found::Address(addr)).await {
                                    return;
                                }
                            }
                        }
                        Err(e) => {
                            tracing::warn!(%seed, "seed does not resolve (retrying in 5 s): {e}");
                            unresolved.push(seed);
                        }
                    }
                }
                pending = unresolved;
                if !pending.is_empty() {
                    tokio::time::sleep(RESOLVE_RETRY).await;
                }
            }
        })
    }
}
