//! `quic://` URLs for [`connect`](crate::connect).

use std::net::IpAddr;
use std::path::Path;

use demitter_core::Error;
use demitter_quic::dht::DhtBootstrap;
use demitter_quic::{DhtDiscovery, ListenPorts, PeerIdentity, QuicConfig};

/// `HOST:PORTS?hood=DIR&peer=NAME&seed=ADDR&allow=NAMES&gossip=off&mdns=on&dht=NODES&dht-port=P`
/// -> a node's settings.
pub(crate) fn quic_config(url: &str, rest: &str) -> Result<QuicConfig, Error> {
    let bad = |reason: String| Error::InvalidUrl {
        url: url.to_owned(),
        reason,
    };
    let (authority, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (host, ports) = authority.rsplit_once(':').ok_or_else(|| {
        bad("expected quic://HOST:PORTS?hood=DIR&peer=NAME, for example quic://0.0.0.0:4816-4819?hood=./hood&peer=alice".into())
    })?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let bind_ip: IpAddr = match host {
        "localhost" => IpAddr::from([127, 0, 0, 1]),
        _ => host
            .parse()
            .map_err(|_| bad(format!("`{host}` is not an IP address to listen on")))?,
    };
    let ports: ListenPorts = ports.parse().map_err(|e| bad(format!("{e}")))?;
    let Params {
        hood,
        peer,
        ca,
        cert,
        key,
        seeds,
        allowed,
        gossip,
        mdns,
        dht,
        dht_port,
    } = Params::parse(query).map_err(bad)?;
    let dht = match (dht, dht_port) {
        (Some(_), _) if !bind_ip.is_ipv4() => {
            return Err(bad(format!(
                "dht= works over IPv4 only, and this node listens on {bind_ip}"
            )));
        }
        (Some(bootstrap), port) => Some(DhtDiscovery::new(bootstrap).with_port(port.unwrap_or(0))),
        (None, Some(_)) => {
            return Err(bad(
                "dht-port= needs dht= (on, or HOST:PORT of a DHT node)".into()
            ));
        }
        (None, None) => None,
    };
    let identity = match (hood, peer, ca, cert, key) {
        (Some(dir), Some(name), None, None, None) => PeerIdentity::load(Path::new(dir), name),
        (None, None, Some(ca), Some(cert), Some(key)) => {
            PeerIdentity::load_files(Path::new(ca), Path::new(cert), Path::new(key))
        }
        _ => {
            return Err(bad(
                "give the identity as hood=DIR&peer=NAME (files made by `demitter pki`), or as ca=FILE&cert=FILE&key=FILE".into(),
            ));
        }
    }
    .map_err(|e| bad(with_pki_hint(&e, hood, peer)))?;
    let mut config = QuicConfig::new(identity);
    config.bind_ip = bind_ip;
    config.ports = ports;
    config.seeds = seeds;
    config.allowed_peers = allowed;
    config.gossip = gossip;
    if mdns {
        config = config.with_mdns();
    }
    if let Some(dht) = dht {
        config = config.with_dht(dht);
    }
    Ok(config)
}

/// The query of a `quic://` URL, each parameter checked on its own.
#[derive(Default)]
struct Params<'a> {
    hood: Option<&'a str>,
    peer: Option<&'a str>,
    ca: Option<&'a str>,
    cert: Option<&'a str>,
    key: Option<&'a str>,
    seeds: Vec<String>,
    allowed: Option<std::collections::BTreeSet<String>>,
    gossip: bool,
    mdns: bool,
    dht: Option<DhtBootstrap>,
    dht_port: Option<u16>,
}

impl<'a> Params<'a> {
    fn parse(query: &'a str) -> Result<Self, String> {
        let mut params = Self {
            gossip: true,
            ..Self::default()
        };
        let list = |value: &str| {
            value
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        let on_off = |name: &str, value: &str| {
            switch(value).ok_or_else(|| format!("{name}=`{value}`: use on or off"))
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair
                .split_once('=')
                .ok_or_else(|| format!("`{pair}` is not NAME=VALUE"))?;
            match name {
                "hood" => params.hood = Some(value),
                "peer" => params.peer = Some(value),
                "ca" => params.ca = Some(value),
                "cert" => params.cert = Some(value),
                "key" => params.key = Some(value),
                "seed" => params.seeds.extend(list(value)),
                "allow" => params.allowed = Some(list(value).into_iter().collect()),
                "gossip" => params.gossip = on_off(name, value)?,
                "mdns" => params.mdns = on_off(name, value)?,
                "dht" => params.dht = dht_bootstrap(value)?,
                "dht-port" => {
                    params.dht_port = Some(
                        value
                            .parse()
                            .map_err(|_| format!("dht-port=`{value}` is not a UDP port number"))?,
                    );
                }
                _ => {
                    return Err(format!(
                        "unknown parameter `{name}`; known: hood, peer, ca, cert, key, seed, allow, gossip, mdns, dht, dht-port"
                    ));
                }
            }
        }
        Ok(params)
    }
}

/// An identity that does not load, with the command that makes its missing files.
fn with_pki_hint(e: &demitter_quic::QuicError, hood: Option<&str>, peer: Option<&str>) -> String {
    let missing = matches!(e, demitter_quic::QuicError::File { source, .. }
        if source.kind() == std::io::ErrorKind::NotFound);
    match (missing, hood, peer) {
        (true, Some(dir), Some(name)) => {
            let hood_there = Path::new(dir)
                .join(demitter_quic::pki::HOOD_CERT_FILE)
                .is_file();
            if hood_there {
                format!("{e}; create the peer with `demitter pki peer {dir} {name}`")
            } else {
                format!(
                    "{e}; create a hood with `demitter pki hood NAME --dir {dir}`, then `demitter pki peer {dir} {name}`"
                )
            }
        }
        _ => e.to_string(),
    }
}

/// `dht=on` (the public DHT), `dht=off`, or `dht=HOST:PORT[,HOST:PORT…]` (a private DHT).
fn dht_bootstrap(value: &str) -> Result<Option<DhtBootstrap>, String> {
    if let Some(on) = switch(value) {
        return Ok(on.then_some(DhtBootstrap::Public));
    }
    let nodes: Vec<String> = value
        .split(',')
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect();
    match nodes.iter().find(|n| {
        !n.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0)
        })
    }) {
        _ if nodes.is_empty() => {
            Err("dht= needs on, off, or HOST:PORT of a DHT node (`demitter dht` runs one)".into())
        }
        Some(node) => Err(format!(
            "dht=: `{node}` is not HOST:PORT of a DHT node (or use dht=on for the public DHT)"
        )),
        None => Ok(Some(DhtBootstrap::Nodes(nodes))),
    }
}

/// `on` / `off` (or true/false, 1/0).
fn switch(value: &str) -> Option<bool> {
    match value {
        "on" | "true" | "1" => Some(true),
        "off" | "false" | "0" => Some(false),
        _ => None,
    }
}
