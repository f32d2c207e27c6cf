//! The forwarder as a command: its settings ([`ForwarderArgs`], flags or Demitter's
//! environment variables) and [`run`]. Both `demitter-forwarder` and `demitter forwarder`
//! are this.

use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use demitter_zmq::curve_keys::{AllowList, CurveSecretKey};

use crate::{Forwarder, ForwarderConfig, ForwarderCurve, ForwarderError};

/// The forwarder's settings, as flags or as Demitter's environment variables.
///
/// It listens on the loopback interface unless told otherwise: ZeroMQ carries no
/// authentication, so expose it (XSUB_ADDRESS / XPUB_ADDRESS = 0.0.0.0) only on a network
/// you trust.
#[derive(Debug, Clone, clap::Args)]
// clap prints these comments as `--help`; backticks would show there literally.
#[allow(clippy::doc_markdown)]
pub struct ForwarderArgs {
    /// Port publishers connect to.
    #[arg(long, env = "XSUB_PORT", default_value_t = 5555)]
    pub xsub_port: u16,
    /// Port subscribers connect to.
    #[arg(long, env = "XPUB_PORT", default_value_t = 5556)]
    pub xpub_port: u16,
    /// Address the XSUB side listens on.
    #[arg(long, env = "XSUB_ADDRESS", default_value = "127.0.0.1")]
    pub xsub_address: String,
    /// Address the XPUB side listens on.
    #[arg(long, env = "XPUB_ADDRESS", default_value = "127.0.0.1")]
    pub xpub_address: String,
    /// Log level: debug, info, warn or error (DEMITTER_LOG, in tracing's filter syntax,
    /// takes precedence).
    #[arg(long, env = "LOG_LEVEL", default_value = "info", value_parser = ["debug", "info", "warn", "error"])]
    pub log_level: String,
    /// Messages queued per subscriber before its messages are dropped (and counted).
    #[arg(long, default_value_t = 65_536)]
    pub subscriber_queue: usize,
    /// Bytes queued per subscriber before its messages are dropped (and counted).
    #[arg(long, default_value_t = 16 * 1024 * 1024)]
    pub subscriber_queue_bytes: usize,
    /// Seconds between statistics lines (0: none).
    #[arg(long, default_value_t = 10)]
    pub stats_every: u64,
    /// CURVE on both sides: the file holding the forwarder's Z85 secret key (from
    /// `demitter pki curve NAME`). Needs --curve-allow.
    #[arg(long, env = "CURVE_SECRET_FILE", requires = "curve_allow")]
    pub curve_secret: Option<std::path::PathBuf>,
    /// CURVE: the allow file, a line `NAME Z85_PUBLIC_KEY` per client; re-read on SIGHUP
    /// (new connections are checked against the new list; those of keys it no longer
    /// holds are closed). Needs --curve-secret.
    #[arg(long, env = "CURVE_ALLOW_FILE", requires = "curve_secret")]
    pub curve_allow: Option<std::path::PathBuf>,
}

/// Re-reads the allow file (on SIGHUP): a file that does not read keeps the old list.
fn reload_allow_list(curve: Option<&ForwarderCurve>, file: Option<&std::path::Path>) {
    let (Some(curve), Some(file)) = (curve, file) else {
        tracing::info!("SIGHUP: nothing to re-read (CURVE is off)");
        return;
    };
    match AllowList::read_file(file) {
        Ok(list) => {
            let allowed = list.len();
            curve.replace_allow_list(list);
            tracing::info!(allowed, "SIGHUP: re-read the CURVE allow list");
        }
        Err(e) => tracing::warn!("SIGHUP: kept the old CURVE allow list: {e}"),
    }
}

fn address(what: &'static str, host: &str, port: u16) -> Result<SocketAddr, ForwarderError> {
    let ip: IpAddr = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .map_err(|_| ForwarderError::Address {
            what,
            host: host.to_owned(),
        })?;
    Ok(SocketAddr::new(ip, port))
}

/// Runs the forwarder until SIGINT or SIGTERM, printing where it listens on stdout.
pub async fn run(args: ForwarderArgs) -> Result<(), ForwarderError> {
    // Listen for signals before announcing anything: a supervisor may stop us as soon as
    // we say we are up.
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|source| ForwarderError::Signal {
        signal: "SIGTERM",
        source,
    })?;
    let interrupt = tokio::signal::ctrl_c();
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .map_err(|source| ForwarderError::Signal {
            signal: "SIGHUP",
            source,
        })?;
    let curve = match (&args.curve_secret, &args.curve_allow) {
        (Some(secret), Some(allow)) => Some(ForwarderCurve::new(
            CurveSecretKey::read_file(secret).map_err(ForwarderError::Curve)?,
            AllowList::read_file(allow).map_err(ForwarderError::Curve)?,
        )),
        _ => None,
    };
    let config = ForwarderConfig {
        xsub: address("XSUB", &args.xsub_address, args.xsub_port)?,
        xpub: address("XPUB", &args.xpub_address, args.xpub_port)?,
        subscriber_queue: args.subscriber_queue,
        subscriber_queue_bytes: args.subscriber_queue_bytes,
        stats_interval: (args.stats_every > 0).then(|| Duration::from_secs(args.stats_every)),
        curve: curve.clone(),
        ..ForwarderConfig::default()
    };
    let forwarder = Forwarder::bind(config).await?;
    // A closed stdout (a supervisor that stopped reading) must not bring the forwarder down,
    // so these lines are written with errors ignored rather than with `println!`.
    let mut out = std::io::stdout();
    let _ = writeln!(
        out,
        "demitter-forwarder listening: publishers tcp://{}, subscribers tcp://{}",
        forwarder.xsub_addr(),
        forwarder.xpub_addr()
    );
    if forwarder.xsub_addr().ip().is_loopback() && forwarder.xpub_addr().ip().is_loopback() {
        let _ = writeln!(
            out,
            "only this machine can connect; to expose it on a trusted network set XSUB_ADDRESS=0.0.0.0 XPUB_ADDRESS=0.0.0.0"
        );
    }
    if let Some(curve) = &curve {
        let allowed = curve.allow_list().len();
        let _ = writeln!(
            out,
            "CURVE: public key {}, {allowed} client key(s) allowed; NULL peers are refused",
            curve.secret.public_key()
        );
    }
    let _ = out.flush();
    tokio::pin!(interrupt);
    loop {
        tokio::select! {
            result = &mut interrupt => {
                result.map_err(|source| ForwarderError::Signal {
                    signal: "SIGINT",
                    source,
                })?;
                break;
            }
            _ = terminate.recv() => break,
            _ = hangup.recv() => reload_allow_list(curve.as_ref(), args.curve_allow.as_deref()),
        }
    }
    tracing::info!("shutting down");
    forwarder.close().await;
    Ok(())
}

/// Logs to stderr: with `DEMITTER_LOG` set (tracing's filter syntax, as every `demitter`
/// command takes), as it says; otherwise at `level` (debug, info, warn or error, Demitter's
/// `LOG_LEVEL`) for the forwarder's crates.
pub fn init_logging(level: &str) {
    let filter = std::env::var("DEMITTER_LOG")
        .unwrap_or_else(|_| format!("demitter_zmq={level},demitter_forwarder={level}"));
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
