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
    /// The hood's certificate cannot be a root of trust.
    #[error("the hood certificate is not usable: {0}")]
    HoodCertificate(#[source] rustls::Error),
    /// The TLS settings could not be built from the given certificates.
    #[error("TLS setup failed: {0}")]
    Tls(#[source] Box<dyn std::error::Error + Send + Sync>),
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
    /// A connection could not be made (or used, by [`RawPeer`](crate::RawPeer)).
    #[error("could not connect: {0}")]
    Connect(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A setting that cannot work.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// No tokio runtime to run the mesh on.
    #[error("no tokio runtime: start the QUIC transport from within a tokio runtime")]
    NoRuntime,
    /// A certificate that names no peer, or a connection whose peer proved no name.
    #[error("no peer name: {0}")]
    NoPeerName(&'static str),
    /// A mesh message (hello, gossip) that does not decode.
    #[error("undecodable {what}: {source}")]
    UndecodableMessage {
        /// Which message.
        what: &'static str,
        /// The MessagePack error.
        source: rmp_serde::decode::Error,
    },
    /// A DHT node ([`DhtNode`](crate::DhtNode)) could not open its UDP socket.
    #[error("could not start a DHT node on {addr}: {source}")]
    DhtBind {
        /// The address asked for.
        addr: std::net::SocketAddrV4,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl From<QuicError> for demitter_core::Error {
    fn from(e: QuicError) -> Self {
        demitter_core::Error::transport_failed("QUIC", e)
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn the_core_error_keeps_the_quic_error_as_its_source() {
        let core: demitter_core::Error = QuicError::NoRuntime.into();
        assert_eq!(
            core.to_string(),
            format!("QUIC transport: {}", QuicError::NoRuntime)
        );
        let demitter_core::Error::TransportFailed { transport, source } = &core else {
            panic!("not wrapped: {core:?}");
        };
        assert_eq!(*transport, "QUIC");
        assert!(matches!(
            source.get_ref().downcast_ref::<QuicError>(),
            Some(QuicError::NoRuntime)
        ));
        assert_eq!(core.clone(), core, "a clone is the same error");
    }

    #[test]
    fn tls_and_connect_errors_keep_their_cause() {
        let io = || std::io::Error::other("socket gone");
        for e in [
            QuicError::Tls(Box::new(io())),
            QuicError::Connect(Box::new(io())),
        ] {
            let cause = e.source().expect("a source");
            assert_eq!(cause.to_string(), "socket gone");
        }
    }
}
