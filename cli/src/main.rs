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
mod dht;
mod emit;
mod error;
mod global_flags;
mod interrupt;
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
The bus: every command on a bus takes -u/--url (or DEMITTER_URL), -t/--timeout and --id,
after its name or before it (`demitter -u URL peers`). The default bus is Demitter's
forwarder on this machine, zmq://127.0.0.1:5555?xpub=5556 (start one with `demitter
forwarder`). Commands first join the bus and fail, with the cause, when they cannot.

Logging: warnings and errors go to stderr; DEMITTER_LOG sets what is logged, in tracing's
filter syntax: DEMITTER_LOG=info, DEMITTER_LOG=debug, DEMITTER_LOG=demitter_quic=debug (the
forwarder also takes Demitter's LOG_LEVEL).

Stopping: on Ctrl-C (SIGINT) or SIGTERM, commands that run until stopped (tap, reply,
listeners --watch, peers --watch, emit --retain, forwarder, demo) leave the bus and exit 0;
commands cut short (emit --count, request, bench, or any command still joining the bus)
leave the bus, say what they had done, and exit 130. A second signal ends at once (130).

Exit status: 0 success; 1 the command failed (the reason on stderr); 2 a usage error (a
command line that does not parse, or flags that cannot go together); 3 to 6 `request` got
no reply: 3 no responder, 4 the responder failed, 5 it was lost, 6 no reply in time; 130 cut
short by a signal.";

/// Distributed events from the command line: watch, emit, request and count events on a
/// bus that connects processes and machines, run its forwarder, make its certificates and
/// keys, and see it all at work in a live demo.
#[derive(Debug, Parser)]
#[command(
    name = "demitter",
    version,
    override_usage = "demitter [-u URL] [-t SECONDS] [--id NAME] <COMMAND> [ARGS]",
    after_help = AFTER_HELP
)]
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
    #[command(visible_alias = "sub")]
    Tap(tap::TapArgs),
    /// Emits an event whose payload is JSON, and says how many listeners it reached.
    #[command(visible_alias = "pub")]
    Emit(emit::EmitArgs),
    /// Sends a request (JSON) to one responder on the bus and prints its reply (JSON).
    /// Exit status 3: no responder; 4: the responder failed; 5: it was lost; 6: no reply
    /// in time.
    #[command(visible_alias = "req")]
    Request(request::RequestArgs),
    /// Answers every request for names matching PATTERN (with the same JSON, or what a
    /// command prints), printing each request as a JSON line.
    Reply(reply::ReplyArgs),
    /// How many listeners the whole bus has for an event or a pattern.
    Listeners(listeners::ListenersArgs),
    /// The nodes on the bus.
    Peers(peers::PeersArgs),
    /// Runs a node of a private DHT (BitTorrent's Mainline DHT) that QUIC nodes find each
    /// other through, with `dht=HOST:PORT` in their URLs; prints that value.
    Dht(dht::DhtArgs),
    /// Benchmarks the transports against their raw baselines (the flags of
    /// `demitter-bench`).
    Bench(demitter_benches::cli::BenchArgs),
    /// Certificates and keys: a hood (a certificate authority) and its peers for the QUIC
    /// mesh, servers and their configuration for an authenticated NATS bus, CURVE keys
    /// for ZeroMQ.
    #[command(subcommand)]
    Pki(pki::PkiCommand),
    /// Demitter's forwarder: publishers connect to the XSUB side, subscribers to the XPUB
    /// side. The same flags and environment as `demitter-forwarder`.
    Forwarder(demitter_forwarder::ForwarderArgs),
    /// One participant of the demo (started by `demitter demo`).
    #[command(hide = true)]
    DemoRole(demo::RoleArgs),
}

impl Command {
    /// Whether SIGINT and SIGTERM go through [`interrupt`]: not for the forwarder (it
    /// handles its own), nor a demo participant (its demo stops it), nor `pki` (it runs no
    /// longer than its files take).
    fn stops_on_request(&self) -> bool {
        !matches!(self, Self::Forwarder(_) | Self::DemoRole(_) | Self::Pki(_))
    }

    async fn run(self) -> Result<(), CliError> {
        match self {
            Self::Forwarder(args) => Ok(demitter_forwarder::run(args).await?),
            Self::Pki(command) => pki::run(&command),
            Self::Tap(args) => tap::run(args).await,
            Self::Emit(args) => emit::run(args).await,
            Self::Request(args) => request::run(args).await,
            Self::Reply(args) => reply::run(args).await,
            Self::Listeners(args) => listeners::run(args).await,
            Self::Peers(args) => peers::run(args).await,
            Self::Dht(args) => dht::run(args).await,
            Self::Bench(args) => bench(&args).await,
            Self::Demo(args) => demo::run(args).await,
            Self::DemoRole(args) => demo::roles::run(args).await,
        }
    }
}

/// `demitter bench`: the harness, cut short (with what it measured so far) by a signal.
async fn bench(args: &demitter_benches::cli::BenchArgs) -> Result<(), CliError> {
    match demitter_benches::cli::run_until(args, interrupt::requested()).await {
        Err(demitter_benches::BenchError::Interrupted { finished, runs }) => {
            Err(CliError::Interrupted(format!(
                "after {finished} of {runs} runs (their results are above)"
            )))
        }
        other => Ok(other?),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse_from(global_flags::after_command(std::env::args_os()));
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
    let command = cli.command;
    let result = runtime.block_on(async {
        if command.stops_on_request() {
            interrupt::listen()?;
        }
        command.run().await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
