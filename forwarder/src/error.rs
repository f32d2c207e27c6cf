//! [`ForwarderError`]: why a forwarder could not start or run.

use std::net::SocketAddr;

/// Why the forwarder could not start or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ForwarderError {
    /// Both sides were given one port.
    #[error("the XSUB and XPUB sides cannot share port {0}: give each side its own")]
    SamePort(u16),
    /// A side could not listen (the port is in use, say).
    #[error(
        "cannot bind the {side} side to {addr}: {source}{}",
        in_use_hint(source)
    )]
    Bind {
        /// Which side: XSUB or XPUB.
        side: &'static str,
        /// Where it was to listen.
        addr: SocketAddr,
        /// Why it could not.
        source: std::io::Error,
    },
    /// A bound listener could not tell its address.
    #[error("cannot read the address the {side} side listens on: {source}")]
    LocalAddress {
        /// Which side: XSUB or XPUB.
        side: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// A listen address that is not an IP address.
    #[error("{what} address {host:?} is not an IP address (for example 127.0.0.1, 0.0.0.0 or ::1)")]
    Address {
        /// Which side: XSUB or XPUB.
        what: &'static str,
        /// What was given.
        host: String,
    },
    /// A CURVE key or allow file that could not be read.
    #[error("CURVE: {0}")]
    Curve(#[source] demitter_zmq::ZmqError),
    /// Signals could not be listened for.
    #[error("cannot listen for {signal}: {source}")]
    Signal {
        /// SIGINT, SIGTERM or SIGHUP.
        signal: &'static str,
        /// Why.
        source: std::io::Error,
    },
}

fn in_use_hint(e: &std::io::Error) -> &'static str {
    if e.kind() == std::io::ErrorKind::AddrInUse {
        " (the port is in use: is another forwarder running?)"
    } else {
        ""
    }
}
