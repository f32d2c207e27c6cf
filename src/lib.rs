//! demitter: a distributed event emitter for Rust.
//!
//! The familiar `on` / `emit` / `once` API, where an event emitted in one process reaches
//! the listeners in every connected process. This crate re-exports the core
//! ([`demitter_core`]) and, behind Cargo features, the transports.
//!
//! ```
//! use demitter::{Emitter, Event};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), demitter::Error> {
//! let a = demitter::connect("mem://quickstart").await?;
//! let b = demitter::connect("mem://quickstart").await?;
//! b.on("greet.+", |e: Event<String>| async move { println!("{} says {}", e.source, e.data) })?;
//! a.wait_for_listeners("greet.all", 1).await?;
//! assert_eq!(a.emit("greet.all", "hello").await?.remote, 1);
//! # Ok(()) }
//! ```

pub use demitter_core::*;

/// The ZeroMQ transport (feature `zmq`, on by default).
#[cfg(feature = "zmq")]
pub use demitter_zmq as zmq;

/// The forwarder the ZeroMQ transport connects through, to embed in a program (feature
/// `zmq`).
#[cfg(feature = "zmq")]
pub use demitter_forwarder as forwarder;

/// The QUIC peer mesh with mutual TLS (feature `quic`, on by default).
#[cfg(feature = "quic")]
pub use demitter_quic as quic;

/// The nng bus (feature `nng`, opt-in: it builds NNG with cmake).
#[cfg(feature = "nng")]
pub use demitter_nng as nng;

/// The NATS transport (feature `nats`, opt-in): emitters on a NATS server or cluster.
#[cfg(feature = "nats")]
pub use demitter_nats as nats;

#[cfg(feature = "quic")]
mod quic_url;
#[cfg(feature = "zmq")]
mod zmq_url;

/// Connects an emitter to the bus named by `url`, with default settings.
///
/// | scheme | transport |
/// | --- | --- |
/// | `mem://NAME` | the in-process hub called `NAME` |
/// | `zmq://HOST:XSUB_PORT?xpub=XPUB_PORT` | a forwarder (feature `zmq`); `xpub` defaults to `XSUB_PORT + 1`, so `zmq://127.0.0.1:5555` is Demitter's default forwarder; with `curve=SERVER_Z85_PUBLIC_KEY&secret=FILE` (the client's Z85 secret key file, as `demitter pki curve` writes), the CURVE mechanism: authenticated and encrypted, the emitter's id the key's name (`name=NAME`, or the file's stem), every source proven by the forwarder; `names=unchecked` to use a CURVE server that checks no names (libzmq's `zmq_proxy`), unauthenticated |
/// | `quic://IP:PORTS?hood=DIR&peer=NAME` | a QUIC mesh node (feature `quic`) listening on `IP` at the first free port of `PORTS` (`4816`, `4816-4819`, `4816,5000`), with the identity `DIR/NAME.crt`, `DIR/NAME.key` and `DIR/hood.crt` (or `ca=FILE&cert=FILE&key=FILE`); more parameters: `seed=HOST:PORT` (repeatable or comma-separated), `allow=NAME,NAME`, `gossip=off`, `mdns=on` (find the hood's peers on the local network by multicast DNS), `dht=on` (find them through the public BitTorrent DHT) or `dht=HOST:PORT[,HOST:PORT…]` (through a private DHT, bootstrapped from those nodes, for example `demitter dht`), `dht-port=P` (the DHT's own UDP port; IPv4 only) |
/// | `nats://HOST:PORT[,HOST:PORT…][?prefix=NAME][&hood=DIR&peer=NAME]` | an emitter on a NATS server or cluster (feature `nats`), failing over between the servers given; buses of different `prefix` (default `demitter`) share servers without hearing each other; with `hood` and `peer`, mutual TLS with peer `NAME`'s certificate of the `demitter pki` hood in `DIR`, and an authenticated bus (the servers configured as `demitter pki nats-config` prints) |
/// | `nng+tcp://IP:PORT?peer=HOST:PORT` | a node of an nng bus (feature `nng`) listening on `IP:PORT` (port 0: any free one), dialing each `peer` (repeatable or comma-separated) and, from their announcements, the rest of the bus |
pub async fn connect(url: &str) -> Result<Emitter, Error> {
    connect_with(url, EmitterConfig::default()).await
}

/// [`connect`] with emitter settings.
// Async because network transports connect asynchronously; `mem://` happens not to wait.
#[allow(clippy::unused_async)]
pub async fn connect_with(url: &str, config: EmitterConfig) -> Result<Emitter, Error> {
    let (scheme, rest) = url.split_once("://").ok_or_else(|| Error::InvalidUrl {
        url: url.to_owned(),
        reason: "expected SCHEME://..., for example mem://my-bus".into(),
    })?;
    match scheme {
        "mem" => {
            if rest.is_empty() {
                return Err(Error::InvalidUrl {
                    url: url.to_owned(),
                    reason: "mem:// needs a hub name, for example mem://my-bus".into(),
                });
            }
            Emitter::with_config(MemoryHub::named(rest).join(), config)
        }
        #[cfg(feature = "zmq")]
        "zmq" => Emitter::with_config(
            zmq::ZmqTransport::connect(zmq_url::zmq_config(url, rest)?),
            config,
        ),
        #[cfg(feature = "nng")]
        "nng+tcp" => {
            let mut nng_config =
                nng::NngConfig::new(format!("tcp://{}", nng_authority(url, rest)?));
            for peer in nng_peers(url, rest)? {
                nng_config = nng_config.with_peer(format!("tcp://{peer}"));
            }
            Emitter::with_config(nng::NngTransport::bind(nng_config)?, config)
        }
        #[cfg(feature = "quic")]
        "quic" => {
            let quic = quic_url::quic_config(url, rest)?;
            Emitter::with_config(quic::QuicTransport::bind(quic)?, config)
        }
        #[cfg(feature = "nats")]
        "nats" => {
            let nats_config = nats::NatsConfig::from_url(url).map_err(|e| Error::InvalidUrl {
                url: url.to_owned(),
                reason: e.to_string(),
            })?;
            Emitter::with_config(nats::NatsTransport::connect(nats_config).await?, config)
        }
        other => Err(Error::InvalidUrl {
            url: url.to_owned(),
            reason: format!(
                "unknown scheme `{other}`; this build supports: {}",
                SCHEMES.join(", ")
            ),
        }),
    }
}

/// The URL schemes this build supports.
const SCHEMES: &[&str] = &[
    "mem",
    #[cfg(feature = "zmq")]
    "zmq",
    #[cfg(feature = "quic")]
    "quic",
    #[cfg(feature = "nng")]
    "nng+tcp",
    #[cfg(feature = "nats")]
    "nats",
];

/// The node settings a `quic://` URL names (the identity's files read), for tools that
/// build the transport themselves, to read its DHT discovery's status, say.
///
/// ```
/// let dir = std::env::temp_dir().join(format!("demitter-doc-quic-config-{}", std::process::id()));
/// demitter::quic::pki::create_hood(&dir, "doc")?;
/// demitter::quic::pki::create_peer(&dir, "alice")?;
/// let url = format!("quic://127.0.0.1:0?hood={}&peer=alice&dht=127.0.0.1:6881", dir.display());
/// let config = demitter::quic_config(&url)?;
/// assert_eq!(config.identity.name(), "alice");
/// assert!(config.dht.is_some());
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[cfg(feature = "quic")]
pub fn quic_config(url: &str) -> Result<quic::QuicConfig, Error> {
    quic_url::quic_config(url, after_scheme(url, "quic")?)
}

/// The forwarder endpoints (`HOST:PORT`, publishers' XSUB side first) that a `zmq://` URL
/// names, for tools that check they can be reached before connecting.
///
/// ```
/// let (xsub, xpub) = demitter::zmq_endpoints("zmq://127.0.0.1:5555")?;
/// assert_eq!((xsub.as_str(), xpub.as_str()), ("127.0.0.1:5555", "127.0.0.1:5556"));
/// # Ok::<(), demitter::Error>(())
/// ```
#[cfg(feature = "zmq")]
pub fn zmq_endpoints(url: &str) -> Result<(String, String), Error> {
    let config = zmq_config(url)?;
    Ok((config.xsub, config.xpub))
}

/// The transport settings a `zmq://` URL names: the forwarder's endpoints and, with
/// `curve=` and `secret=`, the CURVE keys (the secret key read from its file).
///
/// ```
/// let config = demitter::zmq_config("zmq://127.0.0.1:5555?xpub=6000")?;
/// assert_eq!((config.xpub.as_str(), config.curve.is_none()), ("127.0.0.1:6000", true));
/// # Ok::<(), demitter::Error>(())
/// ```
#[cfg(feature = "zmq")]
pub fn zmq_config(url: &str) -> Result<zmq::ZmqConfig, Error> {
    zmq_url::zmq_config(url, after_scheme(url, "zmq")?)
}

/// What follows `SCHEME://` in `url`, or an error saying it is not such a URL.
#[cfg(any(feature = "zmq", feature = "quic"))]
fn after_scheme<'a>(url: &'a str, scheme: &str) -> Result<&'a str, Error> {
    match url.split_once("://") {
        Some((given, rest)) if given == scheme => Ok(rest),
        _ => Err(Error::InvalidUrl {
            url: url.to_owned(),
            reason: format!("not a {scheme}:// URL"),
        }),
    }
}

/// `IP:PORT` of an `nng+tcp://IP:PORT?...` URL.
#[cfg(feature = "nng")]
fn nng_authority<'a>(url: &str, rest: &'a str) -> Result<&'a str, Error> {
    let authority = rest.split_once('?').map_or(rest, |(a, _)| a);
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(authority),
        _ => Err(Error::InvalidUrl {
            url: url.to_owned(),
            reason: "expected nng+tcp://IP:PORT, for example nng+tcp://127.0.0.1:0".into(),
        }),
    }
}

/// The `peer=HOST:PORT` parameters of an `nng+tcp://` URL.
#[cfg(feature = "nng")]
fn nng_peers(url: &str, rest: &str) -> Result<Vec<String>, Error> {
    let query = rest.split_once('?').map_or("", |(_, q)| q);
    let mut peers = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("peer", value)) => peers.extend(
                value
                    .split(',')
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned),
            ),
            _ => {
                return Err(Error::InvalidUrl {
                    url: url.to_owned(),
                    reason: format!(
                        "unknown parameter `{pair}`; the one parameter is peer=HOST:PORT"
                    ),
                });
            }
        }
    }
    Ok(peers)
}
