//! `demitter`: distributed events from the command line.
//!
//! - `demitter demo`: a live auction between real processes on an embedded bus.
//! - `demitter tap PATTERN`, `demitter emit NAME JSON`: watch and send events on a bus.
//! - `demitter pki hood|peer`: certificates for the QUIC mesh.
//! - `demitter forwarder`: the ZeroMQ forwarder, as `demitter-forwarder`.

mod bus;
mod demo;
mod emit;
mod error;
mod pki;
mod tap;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::error::CliError;

/// Distributed events: an emitter API whose events reach every connected process.
#[derive(Debug, Parser)]
#[command(name = "demitter", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// A live auction between real processes (an auctioneer, bidders, a spectator) that
    /// talk only through the bus; a dashboard on a terminal, log lines otherwise.
    Demo(demo::DemoArgs),
    /// Prints each event matching PATTERN as a JSON line (and the bus's own $ events).
    Tap(tap::TapArgs),
    /// Emits one event whose payload is JSON, and says how many listeners it reached.
    Emit(emit::EmitArgs),
    /// Creates a hood (a certificate authority) and its peers' certificates for the QUIC
    /// mesh.
    #[command(subcommand)]
    Pki(pki::PkiCommand),
    /// Demitter's forwarder: publishers connect to the XSUB side, subscribers to the XPUB
    /// side. The same flags and environment as `demitter-forwarder`.
    Forwarder(demitter_forwarder::ForwarderArgs),
    /// One participant of the demo (started by `demitter demo`).
    #[command(hide = true)]
    DemoRole(demo::RoleArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
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
    let result = match cli.command {
        Command::Forwarder(args) => {
            demitter_forwarder::init_logging(&args.log_level);
            runtime
                .block_on(demitter_forwarder::run(args))
                .map_err(CliError::from)
        }
        Command::Pki(command) => {
            init_logging();
            pki::run(&command)
        }
        Command::Tap(args) => {
            init_logging();
            runtime.block_on(tap::run(args))
        }
        Command::Emit(args) => {
            init_logging();
            runtime.block_on(emit::run(args))
        }
        Command::Demo(args) => runtime.block_on(demo::run(args)),
        Command::DemoRole(args) => {
            init_logging();
            runtime.block_on(demo::roles::run(args))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Logs warnings and errors to stderr; `DEMITTER_LOG` (for example `info` or
/// `demitter_quic=debug`) says otherwise.
fn init_logging() {
    let filter = std::env::var("DEMITTER_LOG").unwrap_or_else(|_| "warn".to_owned());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .init();
}
