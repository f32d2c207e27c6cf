//! `demitter-forwarder`: Demitter's forwarder (publishers connect to the XSUB side,
//! subscribers to the XPUB side), with a bounded queue per subscriber and per-topic counts.
//!
//! Configured as Demitter's is, by environment (`XSUB_PORT`, `XPUB_PORT`, `XSUB_ADDRESS`,
//! `XPUB_ADDRESS`, `LOG_LEVEL`), or by the same settings as flags.

use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use demitter_zmq::{Forwarder, ForwarderConfig};

/// Demitter's forwarder: an XSUB/XPUB proxy for distributed events.
///
/// Publishers connect to the XSUB side, subscribers to the XPUB side. It listens on the
/// loopback interface unless told otherwise: ZeroMQ carries no authentication, so expose it
/// (XSUB_ADDRESS / XPUB_ADDRESS = 0.0.0.0) only on a network you trust.
#[derive(Debug, Parser)]
#[command(version, about, long_about)]
// clap prints these comments as `--help`; backticks would show there literally.
#[allow(clippy::doc_markdown)]
struct Args {
    /// Port publishers connect to.
    #[arg(long, env = "XSUB_PORT", default_value_t = 5555)]
    xsub_port: u16,
    /// Port subscribers connect to.
    #[arg(long, env = "XPUB_PORT", default_value_t = 5556)]
    xpub_port: u16,
    /// Address the XSUB side listens on.
    #[arg(long, env = "XSUB_ADDRESS", default_value = "127.0.0.1")]
    xsub_address: String,
    /// Address the XPUB side listens on.
    #[arg(long, env = "XPUB_ADDRESS", default_value = "127.0.0.1")]
    xpub_address: String,
    /// Log level: debug, info, warn or error.
    #[arg(long, env = "LOG_LEVEL", default_value = "info", value_parser = ["debug", "info", "warn", "error"])]
    log_level: String,
    /// Messages queued per subscriber before its messages are dropped (and counted).
    #[arg(long, default_value_t = 65_536)]
    subscriber_queue: usize,
    /// Seconds between statistics lines (0: none).
    #[arg(long, default_value_t = 10)]
    stats_every: u64,
}

fn address(what: &str, host: &str, port: u16) -> Result<SocketAddr, String> {
    let ip: IpAddr = host.trim_start_matches('[').trim_end_matches(']').parse().map_err(|_| {
        format!("{what} address {host:?} is not an IP address (for example 127.0.0.1, 0.0.0.0 or ::1)")
    })?;
    Ok(SocketAddr::new(ip, port))
}

async fn run(args: Args) -> Result<(), String> {
    // Listen for signals before announcing anything: a supervisor may stop us as soon as
    // we say we are up.
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("cannot listen for SIGTERM: {e}"))?;
    let interrupt = tokio::signal::ctrl_c();
    let config = ForwarderConfig {
        xsub: address("XSUB", &args.xsub_address, args.xsub_port)?,
        xpub: address("XPUB", &args.xpub_address, args.xpub_port)?,
        subscriber_queue: args.subscriber_queue,
        stats_interval: (args.stats_every > 0).then(|| Duration::from_secs(args.stats_every)),
        ..ForwarderConfig::default()
    };
    let forwarder = Forwarder::bind(config).await.map_err(|e| e.to_string())?;
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
    let _ = out.flush();
    tokio::select! {
        result = interrupt => result.map_err(|e| format!("cannot listen for SIGINT: {e}"))?,
        _ = terminate.recv() => {}
    }
    tracing::info!("shutting down");
    forwarder.close().await;
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(format!(
            "demitter_zmq={0},demitter_forwarder={0}",
            args.log_level
        )))
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
