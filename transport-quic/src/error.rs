//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong in `demitter-quic`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QuicError {
    /// A peer or hood name that certificates cannot carry.
    #[error("invalid name {name:?}: {reason}")]
    InvalidName {
        /// The name.
        name: String,
        /// Which rule it broke.
        reason: &'static str,
    },
    /// Making a key or certificate failed.
    #[error("could not create the {what}: {source}")]
    Certificate {
        /// What was being made.
        what: &'static str,
        /// Why it failed.
        source: rcgen::Error,
    },
    /// A PEM file could not be read, or held no usable key or certificate.
    #[error("{path}: {reason}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A file could not be written or read.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TLS settings could not be built from the given certificates.
    #[error("TLS setup failed: {0}")]
    Tls(String),
    /// A listen-port specification that cannot be parsed.
    #[error("invalid port list {spec:?}: {reason}")]
    InvalidPorts {
        /// The specification.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
    /// None of the listen ports could be bound.
    #[error("could not listen on {ip} at any of the ports {ports}: {last}")]
    NoFreePort {
        /// The address.
        ip: std::net::IpAddr,
        /// The ports tried.
        ports: String,
        /// The error for the last one.
        last: std::io::Error,
    },
    /// A connection could not be made.
    #[error("could not connect: {0}")]
    Connect(String),
    /// A setting that cannot work.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// No tokio runtime to run the mesh on.
    #[error("no tokio runtime: start the QUIC transport from within a tokio runtime")]
    NoRuntime,
}

impl From<QuicError> for demitter_core::Error {
    fn from(e: QuicError) -> Self {
        demitter_core::Error::Transport(e.to_string())
    }
}
