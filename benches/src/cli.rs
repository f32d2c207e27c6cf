//! The harness's command line, shared by the `demitter-bench` binary and `demitter bench`.
//!
//! ```text
//! demitter-bench --transport mem --suite                 # the standard set
//! demitter-bench --transport mem --publishers 1 --subscribers 4 --payload 4096 --rate 10000
//! ```

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use demitter_core::Congestion;

use crate::scenario::{BLOCK_DEADLINE, Outcome, Scenario, Workload};
use crate::{BenchError, Progress, chart, peers, report, transports};

/// What to measure: the flags of `demitter-bench` and `demitter bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Transports to run (repeat or comma-separate): mem, zmq, zmq-curve, quic, nats,
    /// nats-routed, and nng in a build with the `nng` feature. Every name is checked before
    /// anything runs.
    #[arg(long, value_delimiter = ',', default_value = "mem", value_parser = parse_transport)]
    pub transport: Vec<String>,
    /// Also run each scenario on these peer systems (repeat or comma-separate): zenoh, in
    /// a build with the `zenoh` feature (of demitter-benches, or of demitter-cli for
    /// `demitter bench`).
    #[arg(long, value_delimiter = ',', value_parser = parse_peer)]
    pub peer: Vec<String>,
    /// Run the standard scenarios: 64 B and 4 KiB, 1→1 and 1→4, flat out and at 10,000/s.
    #[arg(long)]
    pub suite: bool,
    /// Publishing nodes.
    #[arg(long, default_value_t = 1)]
    pub publishers: usize,
    /// Subscribing nodes.
    #[arg(long, default_value_t = 1)]
    pub subscribers: usize,
    /// Nodes that listen only on a name nobody emits (emitter runs only; the baselines
    /// have none).
    #[arg(long, default_value_t = 0)]
    pub bystanders: usize,
    /// Payload bytes per event.
    #[arg(long, default_value_t = 64)]
    pub payload: usize,
    /// Seconds each run publishes.
    #[arg(long, default_value = "3", value_parser = parse_seconds)]
    pub duration: f64,
    /// Events per second over all publishers; omit for flat out.
    #[arg(long)]
    pub rate: Option<u64>,
    /// What `emit` does when the transport's queue is full: `drop` the event and report
    /// it, or `block` (wait up to 1 s for room).
    #[arg(long, default_value = "drop", value_parser = parse_congestion)]
    pub congestion: Congestion,
    /// What to measure: `events` (publishers to subscribers, against the raw transport),
    /// `requests` (request/reply from one publisher to one subscriber, one at a time and
    /// 16 in flight, against the raw transport's round trip) or `groups` (the
    /// subscribers as members of one listener group, with each member's share).
    #[arg(long, default_value = "events", value_parser = parse_workload)]
    pub workload: Workload,
    /// Whether the emitters recover lost events from their senders' windows (`on`) or only
    /// report them (`off`); without it, the emitter's default.
    #[arg(long, value_parser = parse_on_off)]
    pub recovery: Option<bool>,
    /// Also write the results as JSON to this file ("-" for standard output).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Draw the results as an SVG chart into this file.
    #[arg(long)]
    pub chart: Option<PathBuf>,
}

fn scenarios(args: &BenchArgs) -> Vec<Scenario> {
    let duration = Duration::from_secs_f64(args.duration);
    let recovery = args
        .recovery
        .unwrap_or_else(|| demitter_core::EmitterConfig::default().recovery.is_on());
    if !args.suite {
        return vec![Scenario {
            publishers: args.publishers.max(1),
            subscribers: args.subscribers.max(1),
            bystanders: args.bystanders,
            payload: args.payload,
            duration,
            rate: args.rate,
            congestion: args.congestion,
            workload: args.workload,
            recovery,
        }];
    }
    let mut all = Vec::new();
    for rate in [None, Some(10_000)] {
        for payload in [64, 4096] {
            for subscribers in [1, 4] {
                all.push(Scenario {
                    publishers: 1,
                    subscribers,
                    bystanders: args.bystanders,
                    payload,
                    duration,
                    rate,
                    congestion: args.congestion,
                    workload: args.workload,
                    recovery,
                });
            }
        }
    }
    all
}

/// Runs every scenario on every transport and peer system, in turn; once `stop`
/// resolves, stops at once with what was measured so far.
async fn measure_all(
    args: &BenchArgs,
    stop: impl Future<Output = ()>,
) -> Result<Vec<Outcome>, BenchError> {
    let progress = Progress::new(std::io::stderr().is_terminal());
    let runs: Vec<(&str, bool, Scenario)> = args
        .transport
        .iter()
        .map(|t| (t.as_str(), false))
        .chain(args.peer.iter().map(|p| (p.as_str(), true)))
        .flat_map(|(name, peer)| scenarios(args).into_iter().map(move |s| (name, peer, s)))
        .collect();
    let mut outcomes = Vec::new();
    let mut stop = std::pin::pin!(stop);
    for (finished, (name, peer, scenario)) in runs.iter().enumerate() {
        progress.start(&format!("{name} {scenario}"));
        let run = async {
            if *peer {
                eprintln!("running {name} (peer): {scenario}");
                Ok(vec![peers::run(name, scenario, &progress).await?])
            } else {
                eprintln!("running {name}: {scenario}");
                transports::run(name, scenario, &progress).await
            }
        };
        tokio::select! {
            measured = run => outcomes.extend(measured?),
            () = &mut stop => {
                if !outcomes.is_empty() {
                    println!("{}", report::markdown(&outcomes));
                }
                return Err(BenchError::Interrupted { finished, runs: runs.len() });
            }
        }
    }
    Ok(outcomes)
}

fn write_outputs(args: &BenchArgs, outcomes: &[Outcome]) -> Result<(), BenchError> {
    println!("{}", report::markdown(outcomes));
    println!("{}", report::LEGEND);
    for path in [&args.json, &args.chart].into_iter().flatten() {
        create_parent(path)?;
    }
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

/// Runs what `args` asks for, then prints the Markdown table and its legend (and writes
/// the JSON and the chart it asks for).
pub async fn run(args: &BenchArgs) -> Result<(), BenchError> {
    run_until(args, std::future::pending::<()>()).await
}

/// [`run`], cut short once `stop` resolves (a signal, say): then it prints the table of
/// the runs that finished and fails with [`BenchError::Interrupted`].
pub async fn run_until(
    args: &BenchArgs,
    stop: impl Future<Output = impl Sized>,
) -> Result<(), BenchError> {
    let outcomes = measure_all(args, async {
        stop.await;
    })
    .await?;
    write_outputs(args, &outcomes)
}

/// Makes the directory a file is written into, if it is not there.
fn create_parent(path: &std::path::Path) -> Result<(), BenchError> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && path.as_os_str() != "-" => {
            std::fs::create_dir_all(dir).map_err(|source| BenchError::Write {
                path: dir.display().to_string(),
                source,
            })
        }
        _ => Ok(()),
    }
}

/// A transport this build has.
fn parse_transport(text: &str) -> Result<String, String> {
    let name = text.trim();
    if transports::AVAILABLE.contains(&name) {
        return Ok(name.to_owned());
    }
    let nng = if cfg!(feature = "nng") {
        ""
    } else {
        " (nng needs a build with the `nng` feature)"
    };
    Err(format!(
        "unknown transport `{name}`; this build has: {}{nng}",
        transports::AVAILABLE.join(", ")
    ))
}

/// A peer system this build has.
fn parse_peer(text: &str) -> Result<String, String> {
    let name = text.trim();
    if peers::AVAILABLE.contains(&name) {
        return Ok(name.to_owned());
    }
    Err(format!(
        "unknown peer system `{name}`; this build has {}",
        if peers::AVAILABLE.is_empty() {
            "none: zenoh needs a build with the `zenoh` feature (`cargo install --path cli --features zenoh`, or `cargo run --release -p demitter-benches --features zenoh --bin demitter-bench`)".to_owned()
        } else {
            peers::AVAILABLE.join(", ")
        }
    ))
}

/// `drop` or `block`.
fn parse_congestion(text: &str) -> Result<Congestion, String> {
    match text.trim() {
        "drop" => Ok(Congestion::Drop),
        "block" => Ok(Congestion::Block {
            deadline: BLOCK_DEADLINE,
        }),
        _ => Err(format!("`{text}`: give `drop` or `block`")),
    }
}

/// `on` or `off`.
fn parse_on_off(text: &str) -> Result<bool, String> {
    match text.trim() {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("`{text}`: give `on` or `off`")),
    }
}

/// A run's seconds: finite, at least 0.1 and at most an hour.
fn parse_seconds(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(seconds) if (0.1..=3600.0).contains(&seconds) => Ok(seconds),
        _ => Err(format!("`{text}`: give between 0.1 and 3600 seconds")),
    }
}

/// `events`, `requests` or `groups`.
fn parse_workload(text: &str) -> Result<Workload, String> {
    match text.trim() {
        "events" => Ok(Workload::Events),
        "requests" => Ok(Workload::Requests),
        "groups" => Ok(Workload::Groups),
        _ => Err(format!("`{text}`: give `events`, `requests` or `groups`")),
    }
}
