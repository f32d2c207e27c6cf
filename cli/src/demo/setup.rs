//! The bus the demo runs on: an embedded ZeroMQ forwarder on free loopback ports, a QUIC
//! mesh with a throw-away hood in a temporary directory, or a local `nats-server`.

use std::net::SocketAddr;
use std::path::PathBuf;

use demitter::Emitter;
use demitter::forwarder::{Forwarder, ForwarderConfig};
use demitter::nats::local_server::LocalServer;
use demitter::quic::pki::{create_hood, create_peer};
use demitter::quic::{PeerIdentity, QuicConfig, QuicTransport};

use crate::error::CliError;

/// Which transport the demo shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Transport {
    /// An embedded ZeroMQ forwarder.
    Zmq,
    /// A QUIC mesh with mutual TLS (a hood made for the demo).
    Quic,
    /// A `nats-server` started for the demo (`$NATS_SERVER` or `nats-server` on PATH).
    Nats,
}

/// The name the demo's own process has on the bus.
pub(crate) const DASHBOARD: &str = "dashboard";
/// A QUIC demo's spare peer, for `demitter tap` in another terminal.
const WATCHER: &str = "watcher";

/// A running bus.
pub(crate) enum Bus {
    Zmq(Forwarder),
    Quic {
        hood: PathBuf,
        seed: Option<SocketAddr>,
    },
    Nats(LocalServer),
}

impl Bus {
    /// Starts the bus for participants called `names` (and the dashboard).
    pub(crate) async fn start(transport: Transport, names: &[String]) -> Result<Self, CliError> {
        match transport {
            Transport::Zmq => Ok(Self::Zmq(
                Forwarder::bind(ForwarderConfig::loopback_free_ports()).await?,
            )),
            Transport::Quic => {
                let hood = std::env::temp_dir().join(format!(
                    "demitter-demo-{}-{}",
                    std::process::id(),
                    crate::demo::protocol::wall_ns()
                ));
                create_hood(&hood, "demo")?;
                for name in names.iter().map(String::as_str).chain([DASHBOARD, WATCHER]) {
                    create_peer(&hood, name)?;
                }
                Ok(Self::Quic { hood, seed: None })
            }
            Transport::Nats => {
                let server = tokio::task::spawn_blocking(|| LocalServer::start(&[]))
                    .await
                    .map_err(|e| CliError::Demo(format!("starting nats-server: {e}")))??;
                Ok(Self::Nats(server))
            }
        }
    }

    /// Joins the bus as the dashboard (on QUIC, the node every participant seeds with).
    pub(crate) async fn join_dashboard(&mut self) -> Result<Emitter, CliError> {
        match self {
            Self::Zmq(_) | Self::Nats(_) => Ok(demitter::connect(&self.url_for(DASHBOARD)).await?),
            Self::Quic { hood, seed } => {
                let identity = PeerIdentity::load(hood, DASHBOARD)?;
                let transport = QuicTransport::bind(QuicConfig::new(identity).loopback())?;
                *seed = Some(transport.local_addr());
                Ok(Emitter::new(transport)?)
            }
        }
    }

    /// The URL participant `name` joins with.
    pub(crate) fn url_for(&self, name: &str) -> String {
        match self {
            Self::Zmq(forwarder) => format!(
                "zmq://127.0.0.1:{}?xpub={}",
                forwarder.xsub_addr().port(),
                forwarder.xpub_addr().port()
            ),
            Self::Nats(server) => server.url(),
            Self::Quic { hood, seed } => {
                let seed = seed.map(|s| format!("&seed={s}")).unwrap_or_default();
                format!(
                    "quic://127.0.0.1:0?hood={}&peer={name}{seed}",
                    hood.display()
                )
            }
        }
    }

    /// What the bus is, in a few words, and how to watch it.
    pub(crate) fn describe(&self) -> String {
        let what = match self {
            Self::Zmq(_) => format!(
                "an embedded ZeroMQ forwarder at {}",
                self.url_for(DASHBOARD)
            ),
            Self::Nats(_) => format!("a local nats-server at {}", self.url_for(DASHBOARD)),
            Self::Quic { seed, .. } => format!(
                "a QUIC mesh with mutual TLS (seed {})",
                seed.map_or_else(|| "-".to_owned(), |s| s.to_string())
            ),
        };
        format!("{what}\n  ({})", self.watch_command())
    }

    /// The command that watches the auction from another terminal.
    pub(crate) fn watch_command(&self) -> String {
        format!(
            "Watch: demitter tap 'auction.#' -u '{}'",
            self.url_for(WATCHER)
        )
    }

    /// Stops the forwarder or the server, or removes the hood's files.
    pub(crate) async fn close(self) {
        match self {
            Self::Zmq(forwarder) => forwarder.close().await,
            Self::Nats(server) => drop(server),
            Self::Quic { hood, .. } => {
                if let Err(e) = std::fs::remove_dir_all(&hood) {
                    eprintln!("warning: could not remove {}: {e}", hood.display());
                }
            }
        }
    }
}
