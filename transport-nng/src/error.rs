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
}

impl NngError {
    pub(crate) fn nng(what: impl Into<String>) -> impl FnOnce(nng::Error) -> Self {
        let what = what.into();
        move |source| Self::Nng { what, source }
    }
}

impl From<NngError> for demitter_core::Error {
    fn from(e: NngError) -> Self {
        Self::Transport(e.to_string())
    }
}
