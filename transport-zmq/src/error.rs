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
    /// The CURVE handshake or a CURVE message was refused: the connection cannot go on.
    #[error("CURVE {command} refused: {reason}")]
    Curve {
        /// The command refused (`HELLO`, `WELCOME`, `INITIATE`, `READY`, `MESSAGE`).
        command: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// The peer ended the handshake with an ERROR command, saying why.
    #[error("{}", describe_refusal(reason))]
    PeerRefused {
        /// The ERROR's reason, as the peer gave it.
        reason: String,
    },
    /// A CURVE client whose key the allow list does not hold: sent ERROR and refused.
    #[error("refused a CURVE client with a key that is not allowed: {key}")]
    CurveClientRefused {
        /// The client's (proven) public key.
        key: crate::curve_keys::CurvePublicKey,
    },
    /// The CURVE server does not bind names to keys (it is not this project's forwarder,
    /// or an older one), so events it forwards could carry any name. Refused unless the
    /// client was told to accept that ([`CurveClientKeys::unchecked_names`]).
    ///
    /// [`CurveClientKeys::unchecked_names`]: crate::conn::CurveClientKeys::unchecked_names
    #[error(
        "the CURVE server does not check that each key emits only under its own name; \
         to use a plain CURVE proxy (libzmq's zmq_proxy), accept unchecked names (names=unchecked)"
    )]
    NamesUnchecked,
    /// A CURVE key that is not 40 Z85 characters of a 32-byte key.
    #[error("not a CURVE key: {0}")]
    CurveKey(String),
    /// A line of a CURVE allow file that is not `NAME Z85_PUBLIC_KEY`.
    #[error("allow list, line {line}: {reason}")]
    AllowList {
        /// The line, counting from 1.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A name a key pair cannot be written for (it is the name its key emits under).
    #[error("cannot make a CURVE key pair for that name")]
    KeyName(#[source] demitter_core::Error),
    /// A name an allow file cannot hold: whitespace separates its fields, and `#` starts
    /// its comments.
    #[error(
        "`{0}` cannot name a CURVE key: an allow file's names hold no whitespace and do not start with `#`"
    )]
    KeyNameUnfit(String),
    /// A key or allow file could not be read or written.
    #[error("{}: {source}", path.display())]
    KeyFile {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A key file is already there: keys are never overwritten.
    #[error("{} already exists; a key is never overwritten (remove it first to replace it)", path.display())]
    KeyFileExists {
        /// The file.
        path: std::path::PathBuf,
    },
    /// What was wrong with a key or allow file.
    #[error("{}: {source}", path.display())]
    InFile {
        /// The file.
        path: std::path::PathBuf,
        /// What was wrong in it.
        source: Box<ZmqError>,
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

impl ZmqError {
    /// Whether a handshake ended because the peer hung up before saying a word, as a port
    /// check or a load balancer's probe does: nothing to count as a refused peer. (A ZeroMQ
    /// peer always sends its signature before it hears ours name a mechanism, so one that
    /// leaves over the mechanism gets [`ZmqError::Handshake`] instead.)
    pub fn is_silent_hangup(&self) -> bool {
        matches!(self, ZmqError::Io(io) if matches!(
            io.kind(),
            std::io::ErrorKind::UnexpectedEof
                | std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::BrokenPipe
        ))
    }
}

/// What an ERROR's reason means, in words: ZAP status codes (as libzmq's servers send
/// them, and this project's forwarder for a key it does not allow) and the forwarder's
/// own reasons.
fn describe_refusal(reason: &str) -> String {
    match reason {
        crate::conn::KEY_NOT_ALLOWED => {
            "the server does not allow this client's CURVE key (ZAP 400: not in its allow list)"
                .to_owned()
        }
        crate::conn::HELLO_NOT_OPENED => {
            "the server could not open this client's HELLO: is curve= the server's public key?"
                .to_owned()
        }
        "300" => "the server could not check this client's key just now (ZAP 300)".to_owned(),
        "500" => "the server failed while checking this client's key (ZAP 500)".to_owned(),
        other => format!("the server refused the handshake: {other}"),
    }
}
