//! `demitter`: distributed events from the command line.
//!
//! - `demitter demo`: a live auction between real processes on an embedded bus.
//! - `demitter tap PATTERN`, `demitter emit NAME [JSON]`: watch and send events on a bus.
//! - `demitter request NAME [JSON]`, `demitter reply PATTERN [JSON]`: ask one responder on
//!   the bus, and answer requests.
//! - `demitter listeners NAME`, `demitter peers`: the bus-wide counts, and who is there.
//! - `demitter bench`: the benchmark harness (as `demitter-bench`).
//! - `demitter pki hood|peer|server|nats-config|curve`: certificates for the QUIC mesh and
//!   an authenticated NATS bus, and CURVE keys for ZeroMQ.
//! - `demitter forwarder`: the ZeroMQ forwarder, as `demitter-forwarder`.

mod bus;
mod demo;
mod emit;
mod error;
mod join;
mod listeners;
mod logging;
mod peers;
mod pki;
mod reply;
mod request;
mod seconds;
mod tap;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::error::CliError;

/// mimalloc, as `demitter-bench` allocates, so that `demitter bench` measures the same.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const AFTER_HELP: &str = "\
Every command that uses a bus takes --url (or DEMITTER_URL); the default is Demitter's
forwarder on this machine, zmq://127.0.0.1:5555?xpub=5556 (start one with `demitter forwarder`).
Commands first join the bus and fail, with a non-zero exit and the cause, when they cannot.

Logging: warnings and errors go to stderr; DEMITTER_LOG sets what is logged, in tracing's
filter syntax: DEMITTER_LOG=info, DEMITTER_LOG=debug, DEMITTER_LOG=demitter_quic=debug.

Exit status: 0 on success, 1 when the command failed (the reason is on stderr), 2 for a
command line that does not parse; `request` says why it got no reply with 3 (no
responder), 4 (the responder failed), 5 (the responder was lost), 6 (no reply in time).";

/// Distributed events: an emitter API whose events reach every connected process.
#[derive(Debug, Parser)]
#[command(name = "demitter", version, about, long_about = None, after_help = AFTER_HELP)]
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
    /// Emits an event whose payload is JSON, and says how many listeners it reached.
    Emit(emit::EmitArgs),
    /// Sends a request (JSON) to one responder on the bus and prints its reply (JSON).
    /// Exit status 3: no responder; 4: the responder failed; 5: it was lost; 6: no reply
    /// in time.
    Request(request::RequestArgs),
    /// Answers every request for names matching PATTERN with the same JSON, printing each
    /// request as a JSON line.
    Reply(reply::ReplyArgs),
    /// How many listeners the whole bus has for an event or a pattern.
    Listeners(listeners::ListenersArgs),
    /// The nodes on the bus.
    Peers(peers::PeersArgs),
    /// Benchmarks the transports against their raw baselines (the flags of
    /// `demitter-bench`).
    Bench(demitter_benches::cli::BenchArgs),
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
    match &cli.command {
        Command::Forwarder(args) => demitter_forwarder::init_logging(&args.log_level),
        // The dashboard owns the terminal; its participants log nothing to it.
        Command::Demo(_) => {}
        Command::Pki(_) => logging::init("warn"),
        _ => logging::init(logging::WITHOUT_REPORT_LINES),
    }
    let result = match cli.command {
        Command::Forwarder(args) => runtime
            .block_on(demitter_forwarder::run(args))
            .map_err(CliError::from),
        Command::Pki(command) => pki::run(&command),
        Command::Tap(args) => runtime.block_on(tap::run(args)),
        Command::Emit(args) => runtime.block_on(emit::run(args)),
        Command::Request(args) => runtime.block_on(request::run(args)),
        Command::Reply(args) => runtime.block_on(reply::run(args)),
        Command::Listeners(args) => runtime.block_on(listeners::run(args)),
        Command::Peers(args) => runtime.block_on(peers::run(args)),
        Command::Bench(args) => runtime
            .block_on(demitter_benches::cli::run(&args))
            .map_err(CliError::from),
        Command::Demo(args) => runtime.block_on(demo::run(args)),
        Command::DemoRole(args) => runtime.block_on(demo::roles::run(args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
