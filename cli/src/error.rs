//! [`CliError`]: everything a command can fail with, each said plainly.

use std::path::PathBuf;

/// Why a command failed. Printed as `error: ...`, with a non-zero exit.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum CliError {
    /// The bus said no: a bad URL, a closed emitter, an undecodable payload.
    #[error(transparent)]
    Bus(#[from] demitter::Error),
    /// A request got no reply (no responder, a failed or lost responder, no reply in
    /// time): each its own exit status.
    #[error(transparent)]
    Request(demitter::Error),
    /// No forwarder (or not one that can be used) at a `zmq://` URL.
    #[error("{source}{hint}")]
    NoForwarder {
        /// What the probe found.
        source: demitter::zmq::ZmqError,
        /// What to try, if there is something to suggest.
        hint: &'static str,
    },
    /// Every seed or peer dialed refused this node, or the forwarder could not be used.
    #[error("could not join the bus: {cause}")]
    Refused {
        /// The refusal, as the transport reported it.
        cause: String,
    },
    /// No seed or peer answered.
    #[error(
        "could not join the bus: no seed answered within {waited:?} ({seeds}); is a node running there?"
    )]
    NoSeed {
        /// The seeds dialed.
        seeds: String,
        /// How long they were given.
        waited: std::time::Duration,
    },
    /// `--id` with a QUIC URL.
    #[error(
        "--id does not apply to quic:// URLs: a QUIC node's name is its certificate's (peer=NAME)"
    )]
    IdOnQuic,
    /// `--id` with a CURVE `zmq://` URL.
    #[error(
        "--id does not apply to a CURVE zmq:// URL: the node's name is its key's (name=NAME, or the secret file's name)"
    )]
    IdOnCurve,
    /// A signal cut the command short; what it had done by then.
    #[error("interrupted {0}")]
    Interrupted(String),
    /// A line of `emit -`'s standard input that is not JSON.
    #[error(
        "line {line} of standard input is not JSON: {source} ({emitted} event(s) emitted before it)"
    )]
    PayloadLine {
        /// The line, counting from 1.
        line: u64,
        /// The parser's reason.
        source: serde_json::Error,
        /// Events emitted before it.
        emitted: u64,
    },
    /// Waited long enough.
    #[error("{0}")]
    Timeout(String),
    /// The JSON given to `emit`.
    #[error("the payload is not JSON: {source}{hint}")]
    Payload {
        /// The parser's reason.
        source: serde_json::Error,
        /// What to try, if there is something to suggest.
        hint: &'static str,
    },
    /// Writing JSON.
    #[error("could not write JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// Reading or writing a file or a stream.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The system's reason.
        source: std::io::Error,
    },
    /// Certificates for the QUIC mesh.
    #[error(transparent)]
    Pki(#[from] demitter::quic::QuicError),
    /// A hood is already in that directory.
    #[error("a hood is already in {}: it is never overwritten (give another --dir, or use it)", .0.display())]
    HoodExists(PathBuf),
    /// A peer of that name is already in the hood's directory.
    #[error("peer `{name}` is already in {}: it is never overwritten", dir.display())]
    PeerExists {
        /// The hood's directory.
        dir: PathBuf,
        /// The peer's name.
        name: String,
    },
    /// The benchmark harness.
    #[error(transparent)]
    Bench(#[from] demitter_benches::BenchError),
    /// A directory that does not hold a hood.
    #[error("{} holds no hood (hood.crt and hood.key); create one with `demitter pki hood NAME`", .0.display())]
    NoHood(PathBuf),
    /// A file a command reads is not there.
    #[error("{0:?} is not there (see `demitter pki --help`)")]
    MissingFile(PathBuf),
    /// The demo's embedded forwarder.
    #[error(transparent)]
    Zmq(#[from] demitter::zmq::ZmqError),
    /// The forwarder subcommand.
    #[error(transparent)]
    Forwarder(#[from] demitter_forwarder::ForwarderError),
    /// The demo's local NATS server.
    #[error("--transport nats starts a local nats-server: {0}")]
    Nats(#[from] demitter::nats::NatsError),
    /// A demo participant that misbehaved.
    #[error("the demo failed: {0}")]
    Demo(String),
}

impl CliError {
    /// The exit status it ends the command with: 1; 2 for a usage error; 130 when a signal
    /// cut it short; for a request without a reply, why (see the `--help` of `request`).
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            Self::IdOnQuic | Self::IdOnCurve => 2,
            Self::Interrupted(_) => crate::interrupt::EXIT_INTERRUPTED,
            Self::Request(demitter::Error::NoResponder { .. }) => 3,
            Self::Request(demitter::Error::ResponderFailed { .. }) => 4,
            Self::Request(demitter::Error::ResponderLost { .. }) => 5,
            Self::Request(demitter::Error::RequestTimedOut { .. }) => 6,
            _ => 1,
        }
    }

    /// An I/O error, with what was being done.
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| Self::Io { what, source }
    }
}
