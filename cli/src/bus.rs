//! The bus a command uses: its URL, how long to wait for it, and joining it (see
//! [`crate::join`]).

use std::time::Duration;

use demitter::EmitterConfig;

use crate::error::CliError;
use crate::join::Joined;

/// The default bus: Demitter's forwarder on this machine.
pub(crate) const DEFAULT_URL: &str = "zmq://127.0.0.1:5555?xpub=5556";

/// The bus to use.
#[derive(Debug, Clone, clap::Args)]
// clap prints these comments as `--help`; backticks would show there literally.
#[allow(clippy::doc_markdown)]
pub(crate) struct BusArgs {
    /// Where the bus is: zmq://HOST:PORT?xpub=PORT (a forwarder; xpub defaults to PORT+1),
    /// quic://IP:PORTS?hood=DIR&peer=NAME&seed=HOST:PORT (a mesh node; see `demitter pki
    /// --help`), nng+tcp://IP:PORT?peer=HOST:PORT (a bus node; build with --features nng),
    /// nats://HOST:PORT[,HOST:PORT...]?prefix=NAME (on NATS servers) or mem://NAME (this
    /// process only).
    #[arg(short, long, env = "DEMITTER_URL", default_value = DEFAULT_URL)]
    pub(crate) url: String,
    /// Seconds to wait for the bus: the forwarder to answer, a seed or peer to connect,
    /// listeners to be known.
    #[arg(short, long, value_name = "SECONDS", default_value = "5", allow_negative_numbers = true, value_parser = crate::seconds::parse)]
    pub(crate) timeout: Duration,
    /// This node's name on the bus, the `source` of what it emits (default: a random
    /// node-… id). A QUIC node's name is its certificate's (peer=NAME), a CURVE node's its
    /// key's: --id is refused there.
    #[arg(long, value_name = "NAME")]
    pub(crate) id: Option<String>,
}

impl BusArgs {
    /// Joins the bus, or says in one line why it cannot; then prints each report of the
    /// error channel on stderr, one line each (the log leaves them out, see
    /// [`crate::logging`]).
    pub(crate) async fn connect(&self) -> Result<Joined, CliError> {
        let joined = self.connect_quietly().await?;
        let mut reports = joined.emitter.errors();
        tokio::spawn(async move {
            while let Some(report) = reports.recv().await {
                eprintln!("warning: {report}");
            }
        });
        Ok(joined)
    }

    /// Joins the bus, for a command that shows the error channel itself.
    pub(crate) async fn connect_quietly(&self) -> Result<Joined, CliError> {
        let mut config = EmitterConfig::default();
        if let Some(id) = &self.id {
            if self.url.starts_with("quic://") {
                return Err(CliError::IdOnQuic);
            }
            if self.url.starts_with("zmq://") && demitter::zmq_config(&self.url)?.curve.is_some() {
                return Err(CliError::IdOnCurve);
            }
            config = config.with_id(id);
        }
        crate::join::join(&self.url, config, self.timeout).await
    }
}
