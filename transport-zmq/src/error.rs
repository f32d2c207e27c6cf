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
}
