//! [`MdnsDiscovery`]: finds the peers of the same hood on the local network by multicast DNS
//! (DNS-SD service `_demitter._udp.local.`), with no address configured anywhere.
//!
//! Each node announces itself with its listen port and two TXT properties: `peer` (its
//! certificate name) and `hood` (the [fingerprint](crate::PeerIdentity::hood_fingerprint)
//! of its hood's certificate). It browses for the same service and reports every
//! announcement of its own hood to the mesh, which dials it. The fingerprint only keeps
//! other hoods' nodes from being dialed in vain: it is no security measure. Who may join is
//! decided, as always, by mutual TLS.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};

use futures_util::future::BoxFuture;
use mdns_sd::{ServiceDaemon, ServiceEvent, ServiceInfo};

use crate::discovery::{Discovery, DiscoverySink, Found, LocalNode};

/// The DNS-SD service type nodes announce and browse for.
pub const SERVICE_TYPE: &str = "_demitter._udp.local.";

/// The standard mDNS port.
pub const MDNS_PORT: u16 = 5353;

/// Multicast DNS discovery on the local network (RFC 6762 / 6763).
///
/// ```no_run
/// use std::sync::Arc;
/// use demitter_quic::{MdnsDiscovery, QuicConfig, pki::Hood};
///
/// let hood = Hood::create("office")?;
/// let mut config = QuicConfig::new(hood.issue("printer-7")?);
/// config.discovery.push(Arc::new(MdnsDiscovery::new()));
/// # Ok::<(), demitter_quic::QuicError>(())
/// ```
#[derive(Debug, Clone)]
pub struct MdnsDiscovery {
    port: u16,
}

impl Default for MdnsDiscovery {
    fn default() -> Self {
        Self::new()
    }
}

impl MdnsDiscovery {
    /// Announces and browses on the standard mDNS port, 5353.
    pub fn new() -> Self {
        Self { port: MDNS_PORT }
    }

    /// Uses another UDP port instead of 5353: nodes only find nodes on the same port. For
    /// tests and for keeping clear of the machine's own mDNS responder.
    #[must_use]
    pub fn with_port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }
}

impl Discovery for MdnsDiscovery {
    fn run(&self, local: LocalNode, sink: DiscoverySink) -> BoxFuture<'static, ()> {
        let port = self.port;
        Box::pin(async move {
            let daemon = match ServiceDaemon::new_with_port(port) {
                Ok(daemon) => Daemon(daemon),
                Err(e) => {
                    tracing::warn!("mDNS discovery is off: could not start its daemon: {e}");
                    return;
                }
            };
            let announced = announcement(&local).and_then(|info| daemon.0.register(info));
            if let Err(e) = announced {
                tracing::warn!(name = %local.name, "mDNS: could not announce this node: {e}");
            }
            let events = match daemon.0.browse(SERVICE_TYPE) {
                Ok(events) => events,
                Err(e) => {
                    tracing::warn!("mDNS discovery is off: could not browse: {e}");
                    return;
                }
            };
            let mut seen: HashMap<String, HashSet<SocketAddr>> = HashMap::new();
            while let Ok(event) = events.recv_async().await {
                let reports = match event {
                    ServiceEvent::ServiceResolved(service) => {
                        let Some((peer, addrs)) = matching_peer(&local, &service) else {
                            continue;
                        };
                        let known = seen.entry(service.fullname.clone()).or_default();
                        addrs
                            .into_iter()
                            .filter(|addr| known.insert(*addr))
                            .map(|addr| Found::Peer {
                                name: peer.clone(),
                                addr,
                            })
                            .collect()
                    }
                    ServiceEvent::ServiceRemoved(_, fullname) => seen
                        .remove(&fullname)
                        .into_iter()
                        .flatten()
                        .map(Found::Gone)
                        .collect(),
                    _ => Vec::new(),
                };
                for found in reports {
                    tracing::debug!(?found, "mDNS");
                    if !sink.report(found).await {
                        return;
                    }
                }
            }
        })
    }
}

/// Stops the daemon's thread (and withdraws the announcement) when discovery ends.
struct Daemon(ServiceDaemon);

impl Drop for Daemon {
    fn drop(&mut self) {
        // Fails only if the daemon already stopped.
        let _ = self.0.shutdown();
    }
}

/// The DNS-SD instance for this node: its name, made unique per hood and port.
fn announcement(local: &LocalNode) -> Result<ServiceInfo, mdns_sd::Error> {
    let label: String = local.name.chars().take(32).collect();
    let instance = format!(
        "{label}-{}-{}",
        &local.hood[..8.min(local.hood.len())],
        local.port
    );
    let host = format!("{instance}.local.");
    let properties = [("peer", local.name.as_str()), ("hood", local.hood.as_str())];
    if local.ip.is_unspecified() {
        ServiceInfo::new(
            SERVICE_TYPE,
            &instance,
            &host,
            "",
            local.port,
            &properties[..],
        )
        .map(ServiceInfo::enable_addr_auto)
    } else {
        ServiceInfo::new(
            SERVICE_TYPE,
            &instance,
            &host,
            local.ip,
            local.port,
            &properties[..],
        )
    }
}

/// The name and the dialable addresses of an announced peer of the same hood; `None` for
/// this node itself, another hood, or an announcement with nothing this node can dial.
fn matching_peer(
    local: &LocalNode,
    service: &mdns_sd::ResolvedService,
) -> Option<(String, Vec<SocketAddr>)> {
    let properties = &service.txt_properties;
    let peer = properties.get_property_val_str("peer")?;
    let hood = properties.get_property_val_str("hood")?;
    let ips = service.addresses.iter().map(mdns_sd::ScopedIp::to_ip_addr);
    peer_of_hood(local, peer, hood, service.port, ips)
}

/// [`matching_peer`] on the announcement's parts.
fn peer_of_hood(
    local: &LocalNode,
    peer: &str,
    hood: &str,
    port: u16,
    ips: impl Iterator<Item = IpAddr>,
) -> Option<(String, Vec<SocketAddr>)> {
    if hood != local.hood || peer == local.name || port == 0 {
        return None;
    }
    let addrs: Vec<SocketAddr> = ips
        .filter(|ip| dialable(local.ip, *ip))
        .map(|ip| SocketAddr::new(ip, port))
        .collect();
    (!addrs.is_empty()).then(|| (peer.to_owned(), addrs))
}

/// Whether a node listening on `local` can reach `remote`: same address family; loopback
/// only from loopback; no IPv6 link-local addresses (they need a scope).
fn dialable(local: IpAddr, remote: IpAddr) -> bool {
    if local.is_ipv4() != remote.is_ipv4() || remote.is_unspecified() || remote.is_multicast() {
        return false;
    }
    if local.is_loopback() {
        return remote.is_loopback();
    }
    if remote.is_loopback() {
        return false;
    }
    match remote {
        IpAddr::V6(v6) => !v6.is_unicast_link_local(),
        IpAddr::V4(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_reachable_addresses_are_dialed() {
        let any: IpAddr = "0.0.0.0".parse().expect("ip");
        let lo: IpAddr = "127.0.0.1".parse().expect("ip");
        let lan: IpAddr = "192.0.2.7".parse().expect("ip");
        let v6: IpAddr = "fd00::7".parse().expect("ip");
        let link_local: IpAddr = "fe80::1".parse().expect("ip");
        assert!(dialable(any, lan));
        assert!(
            !dialable(any, lo),
            "another host's loopback is not that host"
        );
        assert!(dialable(lo, lo));
        assert!(!dialable(lo, lan), "a loopback node reaches only loopback");
        assert!(!dialable(any, v6), "an IPv4 socket cannot dial IPv6");
        let any6: IpAddr = "::".parse().expect("ip");
        assert!(dialable(any6, v6));
        assert!(!dialable(any6, link_local));
    }

    fn alice() -> LocalNode {
        LocalNode {
            name: "alice".to_owned(),
            hood: "0123456789abcdef".to_owned(),
            hood_digest: [0; 32],
            ip: "127.0.0.1".parse().expect("ip"),
            port: 4816,
        }
    }

    #[test]
    fn only_peers_of_the_same_hood_are_reported() {
        let local = alice();
        let lo: IpAddr = "127.0.0.1".parse().expect("ip");
        let lan: IpAddr = "192.0.2.7".parse().expect("ip");
        let hood = local.hood.clone();
        let found = peer_of_hood(&local, "bob", &hood, 4817, [lan, lo].into_iter());
        let bob: SocketAddr = "127.0.0.1:4817".parse().expect("addr");
        assert_eq!(found, Some(("bob".to_owned(), vec![bob])));
        assert_eq!(
            peer_of_hood(&local, "bob", "ffffffffffffffff", 4817, [lo].into_iter()),
            None
        );
        assert_eq!(
            peer_of_hood(&local, "alice", &hood, 4817, [lo].into_iter()),
            None
        );
        assert_eq!(
            peer_of_hood(&local, "bob", &hood, 0, [lo].into_iter()),
            None
        );
        assert_eq!(
            peer_of_hood(&local, "bob", &hood, 4817, [lan].into_iter()),
            None
        );
    }

    #[test]
    fn announcements_name_the_peer_and_hood() {
        let local = alice();
        let info = announcement(&local).expect("valid announcement");
        assert_eq!(info.get_property_val_str("peer"), Some("alice"));
        assert_eq!(info.get_property_val_str("hood"), Some("0123456789abcdef"));
        assert_eq!(info.get_port(), 4816);
        assert!(info.get_fullname().starts_with("alice-01234567-4816."));
    }
}
