//! [`NngError`]: why a node could not start.

/// Why an nng bus node could not start or do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NngError {
    /// nng refused (an address in use, an invalid URL, ...).
    #[error("nng: {what}: {source}")]
    Nng {
        /// What was being done.
        what: String,
        /// nng's reason.
        source: nng::Error,
    },
    /// A setting that cannot work.
    #[error("invalid nng settings: {0}")]
    Config(String),
    /// A thread could not be started.
    #[error("cannot start a thread: {0}")]
    Thread(std::io::Error),
    /// A received message shorter than its header.
    #[error("{len} bytes is too short for a message")]
    ShortMessage {
        /// Its length.
        len: usize,
    },
    /// A received message of another format version.
    #[error(
        "unsupported version {version} (this build reads version {})",
        crate::wire::VERSION
    )]
    UnsupportedVersion {
        /// The version it carries.
        version: u8,
    },
    /// A received message of a kind this build does not know.
    #[error("unknown message kind {kind}")]
    UnknownKind {
        /// The kind it carries.
        kind: u8,
    },
    /// An announcement that does not decode.
    #[error("undecodable announcement: {0}")]
    UndecodableAnnouncement(#[source] rmp_serde::decode::Error),
    /// A record of a received message that cannot be read (too large, or running past
    /// the end); the rest of the message is dropped.
    #[error("{0}")]
    Record(#[source] demitter_core::Error),
}

impl NngError {
    pub(crate) fn nng(what: impl Into<String>) -> impl FnOnce(nng::Error) -> Self {
        let what = what.into();
        move |source| Self::Nng { what, source }
    }
}

impl From<NngError> for demitter_core::Error {
    fn from(e: NngError) -> Self {
        Self::transport_failed("nng", e)
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn the_core_error_keeps_the_nng_error_as_its_source() {
        let core: demitter_core::Error = NngError::Config("no".into()).into();
        assert_eq!(core.to_string(), "nng transport: invalid nng settings: no");
        let demitter_core::Error::TransportFailed { source, .. } = &core else {
            panic!("not wrapped: {core:?}");
        };
        assert!(matches!(
            source.get_ref().downcast_ref::<NngError>(),
            Some(NngError::Config(_))
        ));
        let mut message = bytes::BytesMut::from(&[crate::wire::VERSION][..]);
        demitter_core::record::put_record(&mut message, crate::wire::KIND_ANNOUNCE, b"\xc1");
        let undecodable = crate::wire::parse(message.freeze(), 64)
            .expect("a message")
            .next()
            .expect("one record")
            .expect_err("not an announcement");
        assert!(matches!(undecodable, NngError::UndecodableAnnouncement(_)));
        assert!(
            undecodable.source().is_some(),
            "the MessagePack error is kept"
        );
    }
}
