//! [`QuicConfig`]: who this node is, where it listens, how it finds and keeps its peers.

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use demitter_core::DEFAULT_MAX_FRAME_BYTES;

use crate::discovery::Discovery;
use crate::error::QuicError;
use crate::pki::PeerIdentity;

/// The ports a node may listen on; it takes the first that is free.
///
/// Parsed from `4816`, `4816,4820` or `4816-4819` (and mixes: `4816-4819,5000`); `0` lets
/// the system choose.
///
/// ```
/// use demitter_quic::ListenPorts;
/// let ports: ListenPorts = "4816-4818,5000".parse()?;
/// assert_eq!(ports.ports(), &[4816, 4817, 4818, 5000]);
/// assert_eq!(ListenPorts::default().to_string(), "4816,4817,4818,4819");
/// # Ok::<(), demitter_quic::QuicError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenPorts(Vec<u16>);

/// The most ports one list may name.
const MAX_PORTS: usize = 1024;

impl ListenPorts {
    /// One port (`0`: any free port).
    pub fn single(port: u16) -> Self {
        Self(vec![port])
    }

    /// Any free port the system picks.
    pub fn any() -> Self {
        Self::single(0)
    }

    /// The ports, in the order they are tried.
    pub fn ports(&self) -> &[u16] {
        &self.0
    }
}

impl Default for ListenPorts {
    /// 4816 to 4819, as tubemail.
    fn default() -> Self {
        Self((4816..=4819).collect())
    }
}

impl fmt::Display for ListenPorts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text: Vec<String> = self.0.iter().map(u16::to_string).collect();
        f.write_str(&text.join(","))
    }
}

impl FromStr for ListenPorts {
    type Err = QuicError;

    fn from_str(spec: &str) -> Result<Self, QuicError> {
        let bad = |reason: String| QuicError::InvalidPorts {
            spec: spec.to_owned(),
            reason,
        };
        let port = |text: &str| {
            text.trim()
                .parse::<u16>()
                .map_err(|_| bad(format!("`{}` is not a port number", text.trim())))
        };
        let mut ports = Vec::new();
        for part in spec.split(',') {
            match part.split_once('-') {
                Some((low, high)) => {
                    let (low, high) = (port(low)?, port(high)?);
                    if low > high {
                        return Err(bad(format!("the range {low}-{high} is backwards")));
                    }
                    if usize::from(high - low) >= MAX_PORTS {
                        return Err(bad(format!("more than {MAX_PORTS} ports")));
                    }
                    ports.extend(low..=high);
                }
                None => ports.push(port(part)?),
            }
            if ports.len() > MAX_PORTS {
                return Err(bad(format!("more than {MAX_PORTS} ports")));
            }
        }
        Ok(Self(ports))
    }
}

/// Settings of one mesh node. [`QuicConfig::new`] gives the defaults for an identity.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct QuicConfig {
    /// Who this node is: its certificate names it, the hood's certificate decides whom it
    /// trusts.
    pub identity: PeerIdentity,
    /// The address to listen on. Default `0.0.0.0`: every peer must prove itself with a
    /// certificate of the hood, so the mesh is safe to expose.
    pub bind_ip: IpAddr,
    /// The ports to try, in order. Default 4816 to 4819.
    pub ports: ListenPorts,
    /// Addresses (`host:port`) to dial and keep dialing: the static seeds.
    pub seeds: Vec<String>,
    /// Tell each peer the peers we know, and learn theirs, so that joining one seed yields
    /// the whole mesh. Default on.
    pub gossip: bool,
    /// When set, only these peer names may connect (both directions); others are refused
    /// after the handshake. [`QuicTransport::set_allowed_peers`](crate::QuicTransport::set_allowed_peers)
    /// changes it at run time, disconnecting the peers it leaves out.
    pub allowed_peers: Option<BTreeSet<String>>,
    /// More ways to find peers, besides the seeds, gossip and the DHT.
    pub discovery: Vec<Arc<dyn Discovery>>,
    /// Finding peers through the BitTorrent DHT ([`with_dht`](Self::with_dht)): kept apart
    /// from [`discovery`](Self::discovery) so that its [status](crate::DhtDiscovery::status)
    /// can be read. Default none.
    pub dht: Option<Arc<crate::DhtDiscovery>>,
    /// A connection that hears nothing for this long is lost. Default 5 s.
    pub idle_timeout: Duration,
    /// How often an idle connection is pinged to keep it (and its NAT mapping) alive, and to
    /// notice a dead one. Default 1 s.
    pub keep_alive: Duration,
    /// How long a handshake (TLS and the mesh hello) may take. Default 5 s.
    pub handshake_timeout: Duration,
    /// The first redial delay after a failure; it doubles up to `reconnect_max`.
    /// Default 100 ms.
    pub reconnect_min: Duration,
    /// The longest delay between redials. Default 5 s.
    pub reconnect_max: Duration,
    /// A peer learned from gossip that cannot be reached for this long is forgotten.
    /// Default 60 s.
    pub forget_after: Duration,
    /// The largest frame sent or accepted. Default 8 MiB.
    pub max_frame_bytes: usize,
    /// The most bytes queued for one peer; beyond, its events are dropped and counted.
    /// Default 16 MiB.
    pub peer_queue_bytes: usize,
}

impl QuicConfig {
    /// Defaults for `identity`: listen on 0.0.0.0 at 4816 to 4819, gossip on, no seeds.
    pub fn new(identity: PeerIdentity) -> Self {
        Self {
            identity,
            bind_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            ports: ListenPorts::default(),
            seeds: Vec::new(),
            gossip: true,
            allowed_peers: None,
            discovery: Vec::new(),
            dht: None,
            idle_timeout: Duration::from_secs(5),
            keep_alive: Duration::from_secs(1),
            handshake_timeout: Duration::from_secs(5),
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(5),
            forget_after: Duration::from_secs(60),
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            peer_queue_bytes: 16 * 1024 * 1024,
        }
    }

    /// Listens on loopback at a port the system picks: for tests and single-machine use.
    #[must_use]
    pub fn loopback(mut self) -> Self {
        self.bind_ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        self.ports = ListenPorts::any();
        self
    }

    /// Adds a seed address (`host:port`).
    #[must_use]
    pub fn with_seed(mut self, seed: impl Into<String>) -> Self {
        self.seeds.push(seed.into());
        self
    }

    /// Also finds the hood's peers on the local network by multicast DNS (port 5353), and
    /// announces this node there.
    #[must_use]
    pub fn with_mdns(mut self) -> Self {
        self.discovery.push(Arc::new(crate::MdnsDiscovery::new()));
        self
    }

    /// Also finds the hood's peers through the BitTorrent DHT, and announces this node
    /// there: the public one ([`DhtBootstrap::Public`](crate::dht::DhtBootstrap::Public)) or a
    /// private one (see [`DhtDiscovery`](crate::DhtDiscovery)).
    #[must_use]
    pub fn with_dht(mut self, dht: crate::DhtDiscovery) -> Self {
        self.dht = Some(Arc::new(dht));
        self
    }

    /// Only these peer names may connect.
    #[must_use]
    pub fn allow_only<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed_peers = Some(names.into_iter().map(Into::into).collect());
        self
    }

    pub(crate) fn validate(&self) -> Result<(), QuicError> {
        let bad = |what: &str| Err(QuicError::Config(what.to_owned()));
        if self.ports.ports().is_empty() {
            return bad("no listen port");
        }
        if self.keep_alive.is_zero() || self.keep_alive >= self.idle_timeout {
            return bad("keep_alive must be non-zero and shorter than idle_timeout");
        }
        if self.reconnect_min.is_zero() || self.reconnect_min > self.reconnect_max {
            return bad("reconnect_min must be non-zero and at most reconnect_max");
        }
        if self.max_frame_bytes < 1024 || self.max_frame_bytes > u32::MAX as usize - 16 {
            return bad("max_frame_bytes must be between 1 KiB and 4 GiB");
        }
        if self.peer_queue_bytes < self.max_frame_bytes {
            return bad("peer_queue_bytes must hold at least one frame of max_frame_bytes");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_lists_parse_and_refuse_nonsense() {
        assert_eq!(
            "4816".parse::<ListenPorts>().expect("parses").ports(),
            &[4816]
        );
        assert_eq!(
            "1-3, 7".parse::<ListenPorts>().expect("parses").ports(),
            &[1, 2, 3, 7]
        );
        for bad in ["", "x", "5-4", "1-70000", "0-5000", "1,,2"] {
            let e = bad.parse::<ListenPorts>().expect_err(bad);
            assert!(e.to_string().contains("invalid port list"), "{e}");
        }
    }
}
