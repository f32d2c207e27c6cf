//! `demitter-forwarder`: Demitter's forwarder (publishers connect to the XSUB side,
//! subscribers to the XPUB side), with a bounded queue per subscriber and per-topic counts.
//!
//! Configured as Demitter's is, by environment (`XSUB_PORT`, `XPUB_PORT`, `XSUB_ADDRESS`,
//! `XPUB_ADDRESS`, `LOG_LEVEL`), or by the same settings as flags.

use std::process::ExitCode;

use clap::Parser;
use demitter_forwarder::{ForwarderArgs, init_logging, run};

/// Demitter's forwarder: an XSUB/XPUB proxy for distributed events.
///
/// Publishers connect to the XSUB side, subscribers to the XPUB side. It listens on the
/// loopback interface unless told otherwise: ZeroMQ carries no authentication, so expose it
/// (XSUB_ADDRESS / XPUB_ADDRESS = 0.0.0.0) only on a network you trust.
#[derive(Debug, Parser)]
#[command(version, about, long_about)]
// clap prints these comments as `--help`; backticks would show there literally.
#[allow(clippy::doc_markdown)]
struct Cli {
    #[command(flatten)]
    forwarder: ForwarderArgs,
}

fn main() -> ExitCode {
    let args = Cli::parse().forwarder;
    init_logging(&args.log_level);
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
