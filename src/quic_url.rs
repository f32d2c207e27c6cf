//! `quic://` URLs for [`connect`](crate::connect).

use std::net::IpAddr;
use std::path::Path;

use demitter_core::Error;
use demitter_quic::{ListenPorts, PeerIdentity, QuicConfig};

/// `HOST:PORTS?hood=DIR&peer=NAME&seed=ADDR&allow=NAMES&gossip=off&mdns=on` -> a node's
/// settings.
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
    let (mut hood, mut peer, mut ca, mut cert, mut key) = (None, None, None, None, None);
    let mut seeds = Vec::new();
    let mut allowed = None;
    let mut gossip = true;
    let mut mdns = false;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| bad(format!("`{pair}` is not NAME=VALUE")))?;
        match name {
            "hood" => hood = Some(value),
            "peer" => peer = Some(value),
            "ca" => ca = Some(value),
            "cert" => cert = Some(value),
            "key" => key = Some(value),
            "seed" => seeds.extend(
                value
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned),
            ),
            "allow" => {
                allowed = Some(
                    value
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect(),
                );
            }
            "gossip" | "mdns" => {
                let on =
                    switch(value).ok_or_else(|| bad(format!("{name}=`{value}`: use on or off")))?;
                if name == "gossip" {
                    gossip = on;
                } else {
                    mdns = on;
                }
            }
            _ => {
                return Err(bad(format!(
                    "unknown parameter `{name}`; known: hood, peer, ca, cert, key, seed, allow, gossip, mdns"
                )));
            }
        }
    }
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
    Ok(config)
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

/// `on` / `off` (or true/false, 1/0).
fn switch(value: &str) -> Option<bool> {
    match value {
        "on" | "true" | "1" => Some(true),
        "off" | "false" | "0" => Some(false),
        _ => None,
    }
}
