//! The crate's error type.

/// Everything that can go wrong in `demitter-nats`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NatsError {
    /// The configuration cannot work (no server, a bad prefix, a zero limit).
    #[error("invalid NATS configuration: {0}")]
    Config(&'static str),
    /// A `nats://` URL that does not parse.
    #[error("invalid NATS URL {url:?}: {reason}")]
    Url {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No configured server could be reached.
    #[error("cannot connect to NATS at {servers}: {source}")]
    Connect {
        /// The servers tried.
        servers: String,
        /// Why the client gave up.
        source: async_nats::ConnectError,
    },
    /// The bus subscription could not be made.
    #[error("cannot subscribe to {subject}: {source}")]
    Subscribe {
        /// The subject.
        subject: String,
        /// Why.
        source: async_nats::SubscribeError,
    },
    /// A file of the node's identity cannot be read.
    #[error("cannot read {path:?} of the NATS identity: {source}")]
    IdentityFile {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The server let this node publish on a subject of no node: its permissions do not
    /// bind each node to its own subjects, so the bus would not be authenticated.
    #[error(
        "the NATS server did not refuse a publish on {subject} within {waited:?}: its \
         permissions must let each node publish only on its own subjects \
         (demitter_nats::authorization)"
    )]
    PermissionsNotEnforced {
        /// The subject of the probe.
        subject: String,
        /// How long the refusal was waited for.
        waited: std::time::Duration,
    },
    /// No `nats-server` to start here (see [`local_server::missing`](crate::local_server::missing)).
    #[error("{0}")]
    ServerMissing(String),
    /// Starting a local `nats-server` failed.
    #[error("cannot start `{binary}`: {source}")]
    ServerStart {
        /// The server binary.
        binary: String,
        /// Why.
        source: std::io::Error,
    },
    /// A local `nats-server` started but did not say it was ready.
    #[error("`{binary}` did not say it was ready within {waited:?}")]
    ServerNotReady {
        /// The server binary.
        binary: String,
        /// How long it was given.
        waited: std::time::Duration,
    },
}

impl From<NatsError> for demitter_core::Error {
    fn from(e: NatsError) -> Self {
        demitter_core::Error::transport_failed("nats", e)
    }
}
