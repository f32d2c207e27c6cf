//! `demitter-bench`: runs benchmark scenarios on the transports this build has, each beside
//! its baseline, and prints a Markdown table and JSON.
//!
//! ```text
//! demitter-bench --transport mem --suite                 # the standard set
//! demitter-bench --transport mem --publishers 1 --subscribers 4 --payload 4096 --rate 10000
//! ```

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use demitter_benches::scenario::{Outcome, Scenario};
use demitter_benches::{BenchError, Progress, chart, report, transports};

/// mimalloc, unless built without the `mimalloc` feature (see `benches/Cargo.toml`).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Benchmark demitter's transports against their raw baselines.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Transports to run (repeat or comma-separate).
    #[arg(long, value_delimiter = ',', default_value = "mem")]
    transport: Vec<String>,
    /// Run the standard scenarios: 64 B and 4 KiB, 1→1 and 1→4, flat out and at 10,000/s.
    #[arg(long)]
    suite: bool,
    /// Publishing nodes.
    #[arg(long, default_value_t = 1)]
    publishers: usize,
    /// Subscribing nodes.
    #[arg(long, default_value_t = 1)]
    subscribers: usize,
    /// Payload bytes per event.
    #[arg(long, default_value_t = 64)]
    payload: usize,
    /// Seconds each run publishes.
    #[arg(long, default_value_t = 3.0)]
    duration: f64,
    /// Events per second over all publishers; omit for flat out.
    #[arg(long)]
    rate: Option<u64>,
    /// Also write the results as JSON to this file ("-" for standard output).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Draw the results as an SVG chart into this file.
    #[arg(long)]
    chart: Option<PathBuf>,
}

fn scenarios(args: &Args) -> Vec<Scenario> {
    let duration = Duration::from_secs_f64(args.duration.max(0.1));
    if !args.suite {
        return vec![Scenario {
            publishers: args.publishers.max(1),
            subscribers: args.subscribers.max(1),
            payload: args.payload,
            duration,
            rate: args.rate,
        }];
    }
    let mut all = Vec::new();
    for rate in [None, Some(10_000)] {
        for payload in [64, 4096] {
            for subscribers in [1, 4] {
                all.push(Scenario {
                    publishers: 1,
                    subscribers,
                    payload,
                    duration,
                    rate,
                });
            }
        }
    }
    all
}

async fn run(args: &Args) -> Result<Vec<Outcome>, BenchError> {
    let progress = Progress::new(std::io::stderr().is_terminal());
    let mut outcomes = Vec::new();
    for transport in &args.transport {
        for scenario in scenarios(args) {
            progress.start(&format!("{transport} {scenario}"));
            eprintln!("running {transport}: {scenario}");
            outcomes.extend(transports::run(transport, &scenario, &progress).await?);
        }
    }
    Ok(outcomes)
}

fn write_outputs(args: &Args, outcomes: &[Outcome]) -> Result<(), BenchError> {
    println!("{}", report::markdown(outcomes));
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(outcomes)
            .map_err(|e| BenchError::Setup(format!("serializing results: {e}")))?;
        if path.as_os_str() == "-" {
            println!("{json}");
        } else {
            std::fs::write(path, json).map_err(|source| BenchError::Write {
                path: path.display().to_string(),
                source,
            })?;
        }
    }
    if let Some(path) = &args.chart {
        chart::draw(outcomes, path)?;
        eprintln!("chart written to {}", path.display());
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
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
    let result = runtime
        .block_on(run(&args))
        .and_then(|outcomes| write_outputs(&args, &outcomes));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
