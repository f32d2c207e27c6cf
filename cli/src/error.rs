//! [`CliError`]: everything a command can fail with, each said plainly.

use std::path::PathBuf;

/// Why a command failed. Printed as `error: ...`, with a non-zero exit.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum CliError {
    /// The bus said no: a bad URL, a closed emitter, an undecodable payload.
    #[error(transparent)]
    Bus(#[from] demitter::Error),
    /// A forwarder or peer that does not answer.
    #[error("cannot reach {what} at {addr}: {reason}")]
    Unreachable {
        /// What was expected there.
        what: &'static str,
        /// Where.
        addr: String,
        /// Why not.
        reason: String,
    },
    /// Waited long enough.
    #[error("{0}")]
    Timeout(String),
    /// The JSON given to `emit`.
    #[error("the payload is not JSON: {0}")]
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
    /// A directory that does not hold a hood.
    #[error("{} holds no hood (hood.crt and hood.key); create one with `demitter pki hood NAME`", .0.display())]
    NoHood(PathBuf),
    /// The demo's embedded forwarder.
    #[error(transparent)]
    Zmq(#[from] demitter::zmq::ZmqError),
    /// The forwarder subcommand.
    #[error(transparent)]
    Forwarder(#[from] demitter_forwarder::ForwarderError),
    /// A demo participant that misbehaved.
    #[error("the demo failed: {0}")]
    Demo(String),
}

impl CliError {
    /// An I/O error, with what was being done.
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| Self::Io { what, source }
    }
}
