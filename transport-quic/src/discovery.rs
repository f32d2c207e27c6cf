//! [`Discovery`]: how a node learns where peers are. The mesh dials every address it is
//! told about, keeps redialing it with backoff while it is known, and keeps exactly one
//! connection per pair of peers however they found each other.
//!
//! Built in: [`StaticSeeds`] (from [`QuicConfig::seeds`](crate::QuicConfig::seeds)) and
//! gossip (peers tell each other the peers they know; [`QuicConfig::gossip`](crate::QuicConfig::gossip)).
//! Multicast DNS on the local network is [`MdnsDiscovery`](crate::MdnsDiscovery)
//! ([`QuicConfig::with_mdns`](crate::QuicConfig::with_mdns)); the BitTorrent DHT, for peers
//! on different networks, is [`DhtDiscovery`](crate::DhtDiscovery)
//! ([`QuicConfig::with_dht`](crate::QuicConfig::with_dht)). Other mechanisms (a service
//! registry) plug in as further [`Discovery`] implementations in
//! [`QuicConfig::discovery`](crate::QuicConfig::discovery).
//!
//! Which to use:
//!
//! - **seeds** (`seed=`): a few nodes at addresses that do not change; the simplest, and
//!   all a data centre needs.
//! - **gossip** (on by default): joining any one node yields the whole mesh; keep it on
//!   unless an allow list must decide who learns of whom.
//! - **mDNS** (`mdns=on`): nodes on one local network, with no address written anywhere;
//!   multicast does not cross routers.
//! - **the DHT** (`dht=`): nodes on different networks whose addresses change (laptops,
//!   home servers), through the public Mainline DHT or a private one of your own
//!   (`demitter dht`); slower to find peers (seconds) and announces the nodes' addresses
//!   publicly (see [`dht`](crate::dht)).

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
    /// The SHA-256 of its hood's certificate ([`PeerIdentity::hood_digest`](crate::PeerIdentity::hood_digest)).
    pub hood_digest: [u8; 32],
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
    /// A peer may listen here, or may have long gone (a DHT announcement outlives its
    /// node): dial it, but quietly (its failures are not reported), and forget it once it
    /// has stayed unreachable for [`QuicConfig::forget_after`](crate::QuicConfig::forget_after).
    Candidate(SocketAddr),
    /// Forget this address (existing connections stay).
    Gone(SocketAddr),
    /// The mechanism cannot find peers now, for this reason: reported once on the error
    /// channel (as a network error), so that a node that finds nobody says why.
    Unavailable(String),
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
