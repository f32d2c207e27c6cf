//! The crate's error type.

/// Everything that can go wrong in `demitter-zmq`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ZmqError {
    /// The peer did not speak ZMTP 3 as this crate does.
    #[error("ZMTP handshake failed: {0}")]
    Handshake(String),
    /// The peer's socket type cannot talk to ours (a SUB must meet a PUB or XPUB, ...).
    #[error("incompatible peer: a {ours} socket cannot talk to a {theirs} socket")]
    IncompatiblePeer {
        /// Our socket type.
        ours: &'static str,
        /// What the peer said it is.
        theirs: String,
    },
    /// A frame broke the wire format or a size limit.
    #[error("malformed ZMTP frame: {0}")]
    Malformed(String),
    /// The connection failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// [`probe_forwarder`](crate::probe_forwarder): nothing accepts TCP connections there.
    #[error("cannot reach the forwarder at {addr}: {source}")]
    Unreachable {
        /// The address tried.
        addr: String,
        /// Why the connection failed.
        source: std::io::Error,
    },
    /// [`probe_forwarder`](crate::probe_forwarder): a ZeroMQ socket answers there, but of
    /// the other side (or not a forwarder's at all).
    #[error(
        "{addr} is a ZeroMQ {found} socket, not the forwarder's {expected} side{}",
        if found == "XPUB" || found == "XSUB" { " (are the two ports swapped?)" } else { "" }
    )]
    WrongSide {
        /// The address tried.
        addr: String,
        /// The socket type expected there.
        expected: &'static str,
        /// The socket type that answered.
        found: String,
    },
    /// [`probe_forwarder`](crate::probe_forwarder): something answers there, but it does
    /// not speak ZMTP 3 with the NULL mechanism (an HTTP server, say).
    #[error("{addr} does not answer as a ZeroMQ forwarder: {source}")]
    NotAForwarder {
        /// The address tried.
        addr: String,
        /// What went wrong in the handshake.
        source: Box<ZmqError>,
    },
}
