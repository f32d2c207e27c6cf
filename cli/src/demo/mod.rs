//! `demitter demo`: a live auction between real processes. This process starts the bus,
//! spawns an auctioneer, the bidders and a spectator as child processes of itself, watches
//! the auction (a dashboard on a terminal, log lines otherwise), then stops everyone and
//! sums up.

mod dashboard;
pub(crate) mod protocol;
pub(crate) mod roles;
mod setup;
mod stats;

pub(crate) use roles::RoleArgs;

use std::io::IsTerminal as _;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use demitter::{Emitter, Event, RawPayload};
use parking_lot::Mutex;
use tokio::io::AsyncReadExt as _;

use crate::demo::protocol::{EVERYTHING, RULE, Report, STOP};
use crate::demo::setup::{Bus, Transport};
use crate::demo::stats::Stats;
use crate::error::CliError;

/// How long the participants may take to join.
const JOIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the participants may take to finish after the stop.
const EXIT_TIMEOUT: Duration = Duration::from_secs(20);

/// The demo's settings.
#[derive(Debug, clap::Args)]
pub(crate) struct DemoArgs {
    /// How many bidders (each its own process, with one of four strategies): 1 to 64.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u8).range(1..=64))]
    bidders: u8,
    /// Seconds the auction runs, at least 0.5 (on a terminal, any key ends it sooner).
    #[arg(short, long, value_name = "SECONDS", default_value = "20", allow_negative_numbers = true, value_parser = parse_duration)]
    duration: Duration,
    /// The bus: an embedded ZeroMQ forwarder, a QUIC mesh with a hood made for the demo, or
    /// a local nats-server (`$NATS_SERVER` or `nats-server` on PATH).
    #[arg(long, value_enum, default_value_t = Transport::Zmq)]
    transport: Transport,
    /// Log lines instead of the dashboard, even on a terminal.
    #[arg(long)]
    plain: bool,
}

/// A participant process.
struct Participant {
    name: String,
    child: tokio::process::Child,
}

/// `--duration`: a number of seconds, at least half a second.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let duration = crate::seconds::parse(text)?;
    if duration < Duration::from_millis(500) {
        return Err(format!("`{text}`: the demo runs at least 0.5 s"));
    }
    Ok(duration)
}

pub(crate) async fn run(args: DemoArgs) -> Result<(), CliError> {
    let names: Vec<String> = ["auctioneer".to_owned(), "spectator".to_owned()]
        .into_iter()
        .chain((1..=usize::from(args.bidders)).map(|i| format!("bidder-{i}")))
        .collect();
    let mut bus = Bus::start(args.transport, &names).await?;
    let result = match bus.join_dashboard().await {
        Ok(me) => {
            let result = watch(&args, &bus, &me, &names).await;
            me.close().await;
            result
        }
        Err(e) => Err(e),
    };
    bus.close().await;
    result
}

async fn watch(args: &DemoArgs, bus: &Bus, me: &Emitter, names: &[String]) -> Result<(), CliError> {
    let tty = !args.plain && std::io::stdout().is_terminal() && std::io::stdin().is_terminal();
    let stats = Arc::new(Mutex::new(Stats::new()));
    let recorder = Arc::clone(&stats);
    let _watching = me.spy(EVERYTHING, move |event: Event<RawPayload>| {
        let line = recorder.lock().record(&event);
        if !tty && let Some(line) = line {
            println!("{line}");
        }
        std::future::ready(())
    })?;
    println!("demitter demo: a live auction over {}", bus.describe());
    println!("rule: {RULE}");
    let mut participants = Vec::with_capacity(names.len());
    for (index, name) in names.iter().enumerate() {
        participants.push(spawn(
            bus,
            name,
            index.saturating_sub(2),
            names.len() - 2,
            tty,
        )?);
    }
    // Every participant listens for the stop (`once`): when all are counted, all are in.
    let joined = tokio::select! {
        joined = tokio::time::timeout(
            JOIN_TIMEOUT,
            me.wait_for_listeners(STOP, participants.len()),
        ) => joined.map_err(|_| {
            CliError::Demo(format!("the participants did not all join within {JOIN_TIMEOUT:?}"))
        }),
        signal = crate::interrupt::requested() => Err(CliError::Interrupted(format!(
            "by {signal} while the participants were joining"
        ))),
    };
    if let Err(e) = joined {
        stop_all(me, participants).await;
        return Err(e);
    }
    println!(
        "{} processes joined: the auctioneer, {} bidders and a spectator",
        participants.len(),
        args.bidders
    );
    let started = Instant::now();
    let deadline = started + args.duration;
    let peers = Arc::clone(&stats);
    let me_for_peers = me.clone();
    let peer_count = tokio::spawn(async move {
        loop {
            peers.lock().peers = me_for_peers.peers().len();
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    });
    // It runs until its time is up, a key (on a terminal) or a signal: each its ordinary end.
    let shown = if tty {
        dashboard::show(
            &stats,
            "demitter demo: live auction",
            &bus.watch_command(),
            deadline,
        )
        .await
    } else {
        tokio::select! {
            () = tokio::time::sleep_until(deadline.into()) => Ok(()),
            _ = crate::interrupt::requested() => Ok(()),
        }
    };
    peer_count.abort();
    let elapsed = started.elapsed();
    let reports = stop_all(me, participants).await;
    shown?;
    summarize(args, &stats.lock(), me, &reports, names.len(), elapsed)
}

fn spawn(
    bus: &Bus,
    name: &str,
    index: usize,
    bidders: usize,
    quiet: bool,
) -> Result<Participant, CliError> {
    let role = name.split('-').next().unwrap_or(name);
    let exe = std::env::current_exe().map_err(CliError::io("finding this program"))?;
    let child = tokio::process::Command::new(exe)
        .args(["demo-role", "--role", role, "--name", name])
        .args([
            "--index",
            &index.to_string(),
            "--bidders",
            &bidders.to_string(),
        ])
        .args(["--url", &bus.url_for(name)])
        .env("DEMITTER_LOG", "error")
        // A group of their own: Ctrl-C on the terminal reaches the demo, which stops them
        // in order, and not them directly.
        .process_group(0)
        // Held open for the child's life: it stops when this closes (see roles.rs).
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(if quiet {
            Stdio::null()
        } else {
            Stdio::inherit()
        })
        .kill_on_drop(true)
        .spawn()
        .map_err(CliError::io(format!("starting the {name} process")))?;
    Ok(Participant {
        name: name.to_owned(),
        child,
    })
}

/// Tells everyone to stop, and collects each participant's report (`None` for one that
/// did not exit cleanly in time; it is killed).
async fn stop_all(me: &Emitter, participants: Vec<Participant>) -> Vec<(String, Option<Report>)> {
    if let Err(e) = me.emit(STOP, &()).await {
        eprintln!("warning: could not send the stop: {e}");
    }
    let waits = participants.into_iter().map(|mut p| async move {
        let mut out = String::new();
        let finished = tokio::time::timeout(EXIT_TIMEOUT, async {
            if let Some(mut stdout) = p.child.stdout.take() {
                let _ = stdout.read_to_string(&mut out).await;
            }
            p.child.wait().await
        })
        .await;
        let report = match finished {
            Ok(Ok(status)) if status.success() => out
                .lines()
                .last()
                .and_then(|line| serde_json::from_str::<Report>(line).ok()),
            _ => {
                let _ = p.child.kill().await;
                None
            }
        };
        (p.name, report)
    });
    futures_util::future::join_all(waits).await
}

fn summarize(
    args: &DemoArgs,
    stats: &Stats,
    me: &Emitter,
    reports: &[(String, Option<Report>)],
    expected: usize,
    elapsed: Duration,
) -> Result<(), CliError> {
    let done: Vec<&Report> = reports.iter().filter_map(|(_, r)| r.as_ref()).collect();
    let bids_sent: u64 = done
        .iter()
        .filter(|r| r.role == "bidder")
        .map(|r| r.bids_sent)
        .sum();
    let spectator = done.iter().find(|r| r.role == "spectator");
    let auctioneer = done.iter().find(|r| r.role == "auctioneer");
    let counts = me.error_counts();
    let lost = counts.gap + counts.lagged + done.iter().map(|r| r.lost).sum::<u64>();
    println!();
    println!("summary");
    let bus = match args.transport {
        Transport::Zmq => "zmq (an embedded forwarder)",
        Transport::Quic => "quic (a mesh with mutual TLS)",
        Transport::Nats => "nats (a local nats-server)",
    };
    println!("  bus:                         {bus}");
    println!(
        "  ran for:                     {:.1} s",
        elapsed.as_secs_f64()
    );
    println!(
        "  lots sold:                   {}",
        auctioneer.map_or(stats.lots_sold, |a| a.lots_sold)
    );
    println!(
        "  bids sent:                   {bids_sent} by {} bidders",
        args.bidders
    );
    match spectator {
        Some(s) => println!(
            "  bids seen by the spectator:  {} of {bids_sent}",
            s.bids_seen
        ),
        None => println!("  bids seen by the spectator:  unknown (it did not report)"),
    }
    println!(
        "  events seen here:            {} ({:.0} events/s)",
        stats.events,
        stats.events as f64 / elapsed.as_secs_f64().max(0.001)
    );
    println!(
        "  bid latency:                 p50 {} µs, p99 {} µs",
        stats.latency_us(0.5),
        stats.latency_us(0.99)
    );
    println!("  events lost:                 {lost}");
    println!(
        "  child processes exited:      {} of {expected}",
        done.len()
    );
    verdict(bids_sent, spectator.map(|s| s.bids_seen), lost)?;
    let missing: Vec<&str> = reports
        .iter()
        .filter(|(_, r)| r.is_none())
        .map(|(name, _)| name.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(CliError::Demo(format!(
            "{} did not finish cleanly: {}",
            missing.len(),
            missing.join(", ")
        )));
    }
    Ok(())
}

/// Whether the demo showed what it promises: every bid sent was seen, nothing was lost.
fn verdict(bids_sent: u64, seen_by_spectator: Option<u64>, lost: u64) -> Result<(), CliError> {
    if let Some(seen) = seen_by_spectator
        && seen != bids_sent
    {
        return Err(CliError::Demo(format!(
            "the spectator saw {seen} of the {bids_sent} bids sent"
        )));
    }
    if lost > 0 {
        return Err(CliError::Demo(format!("{lost} events were lost")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::verdict;

    #[test]
    fn the_demo_fails_when_a_bid_was_missed_or_an_event_lost() {
        assert!(verdict(10, Some(10), 0).is_ok());
        let missed = verdict(10, Some(9), 0).expect_err("a bid missed");
        assert_eq!(
            missed.to_string(),
            "the demo failed: the spectator saw 9 of the 10 bids sent"
        );
        assert!(verdict(10, Some(10), 2).is_err(), "an event lost");
    }
}
