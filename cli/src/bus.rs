//! Connecting to the bus a URL names, with a clear error when nothing answers there.

use std::time::Duration;

use demitter::{Emitter, EmitterConfig};

use crate::error::CliError;

/// The bus to use.
#[derive(Debug, Clone, clap::Args)]
// clap prints these comments as `--help`; backticks would show there literally.
#[allow(clippy::doc_markdown)]
pub(crate) struct BusArgs {
    /// Where the bus is: zmq://HOST:PORT?xpub=PORT (a forwarder),
    /// quic://IP:PORTS?hood=DIR&peer=NAME&seed=HOST:PORT (a mesh node),
    /// nng+tcp://IP:PORT?peer=HOST:PORT (a bus node; build with --features nng) or
    /// mem://NAME.
    #[arg(
        long,
        env = "DEMITTER_URL",
        default_value = "zmq://127.0.0.1:5555?xpub=5556"
    )]
    pub(crate) url: String,
    /// Seconds to wait for the bus (the forwarder to answer, listeners to be known).
    #[arg(long, default_value_t = 5.0)]
    pub(crate) timeout: f64,
}

impl BusArgs {
    pub(crate) fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.timeout.clamp(0.0, 3600.0))
    }

    /// Joins the bus, after checking that a forwarder answers for a `zmq://` URL (the
    /// ZeroMQ transport itself would keep retrying quietly).
    pub(crate) async fn connect(&self) -> Result<Emitter, CliError> {
        if self.url.starts_with("zmq://") {
            let (xsub, xpub) = demitter::zmq_endpoints(&self.url)?;
            for addr in [xsub, xpub] {
                reachable(&addr, self.timeout()).await?;
            }
        }
        Ok(demitter::connect_with(&self.url, EmitterConfig::default()).await?)
    }
}

async fn reachable(addr: &str, timeout: Duration) -> Result<(), CliError> {
    let unreachable = |reason: String| CliError::Unreachable {
        what: "the forwarder",
        addr: addr.to_owned(),
        reason,
    };
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(unreachable(e.to_string())),
        Err(_) => Err(unreachable(format!("no answer within {timeout:?}"))),
    }
}
