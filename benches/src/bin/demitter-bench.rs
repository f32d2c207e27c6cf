//! `demitter-bench`: runs benchmark scenarios on the transports this build has, each beside
//! its baseline, and prints a Markdown table and JSON (the same as `demitter bench`).
//!
//! ```text
//! demitter-bench --transport mem --suite                 # the standard set
//! demitter-bench --transport mem --publishers 1 --subscribers 4 --payload 4096 --rate 10000
//! ```

use std::process::ExitCode;

use clap::Parser;
use demitter_benches::BenchError;
use demitter_benches::cli::{BenchArgs, run_until};

/// mimalloc, unless built without the `mimalloc` feature (see `benches/Cargo.toml`).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Benchmark demitter's transports against their raw baselines.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    args: BenchArgs,
}

fn main() -> ExitCode {
    let args = Cli::parse().args;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: could not start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Ctrl-C prints what finished and exits 130, as `demitter bench` does.
    let result = runtime.block_on(run_until(&args, tokio::signal::ctrl_c()));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ BenchError::Interrupted { .. }) => {
            eprintln!("error: {e} (their results are above)");
            ExitCode::from(130)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
