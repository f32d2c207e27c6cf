//! The README's `demitter` commands, run as a new user runs them: every `demitter` line of
//! its `sh` blocks, in order, through a shell, in a scratch directory, on the forwarder its
//! own first line starts (on free ports, through `XSUB_PORT=0 XPUB_PORT=0`, then
//! `DEMITTER_URL` for the rest). A line that names a command or flag the CLI does not have
//! fails here (a usage error exits 2). One-shot commands must exit 0; those that run until
//! stopped must say they are ready, and exit 0 on SIGINT at the end. What they print is
//! checked where the README says what it is.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use common::Running;
use tokio::process::Command;

const README: &str = include_str!("../../README.md");

/// How long a one-shot command may take (the benchmark's line runs a few seconds).
const ONE_SHOT: Duration = Duration::from_secs(120);

/// Each `demitter …` line of the README's `sh` blocks, without its comment.
fn readme_commands() -> Vec<String> {
    let (mut in_block, mut is_sh) = (false, false);
    let mut commands = Vec::new();
    for line in README.lines() {
        if line.trim_start().starts_with("```") {
            is_sh = !in_block && line.trim() == "```sh";
            in_block = !in_block;
            continue;
        }
        if in_block && is_sh && line.starts_with("demitter ") {
            let command = line.find("  # ").map_or(line, |at| &line[..at]);
            commands.push(command.trim_end().to_owned());
        }
    }
    commands
}

/// How a README command ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// It runs to its end, with 0.
    OneShot,
    /// It runs until stopped; ready once a line containing the text appears on stdout
    /// (`true`) or stderr (`false`).
    UntilStopped(bool, &'static str),
}

fn ending(command: &str) -> Ending {
    let words: Vec<&str> = command.split_whitespace().collect();
    let has = |flag: &str| words.contains(&flag);
    match words.get(1).copied() {
        Some("forwarder") => Ending::UntilStopped(true, "demitter-forwarder listening"),
        Some("tap" | "sub") if !has("-n") && !has("--count") => {
            Ending::UntilStopped(false, "listening on")
        }
        Some("reply") if !has("-n") && !has("--count") => Ending::UntilStopped(false, "answering"),
        Some("listeners") if has("--watch") || has("-w") => Ending::UntilStopped(true, "listener"),
        Some("peers") if has("--watch") || has("-w") => Ending::UntilStopped(true, ""),
        Some("emit" | "pub") if has("--retain") => Ending::UntilStopped(false, "holding"),
        _ => Ending::OneShot,
    }
}

/// `line` as a user types it, on the README's forwarder (`url`), or for the forwarder's
/// own line (no `url` yet) on free ports.
fn shell(line: &str, dir: &Path, url: Option<&str>) -> Command {
    let mut command = common::shell(&[], line, dir);
    match url {
        Some(url) => command.env("DEMITTER_URL", url),
        None => command.env("XSUB_PORT", "0").env("XPUB_PORT", "0"),
    };
    command
}

/// The URL of a forwarder whose first line is `line`.
fn url_of(line: &str) -> String {
    let (xsub, xpub) = common::forwarder_ports(line);
    format!("zmq://127.0.0.1:{xsub}?xpub={xpub}")
}

/// Runs `commands` in order in `dir`: the one-shot ones to their end (what each printed,
/// by line), the others until they are ready (left running).
async fn run_all(commands: &[String], dir: &Path) -> (HashMap<String, String>, Vec<Running>) {
    let mut url: Option<String> = None;
    let mut running: Vec<Running> = Vec::new();
    let mut printed = HashMap::new();
    for line in commands {
        match ending(line) {
            Ending::UntilStopped(on_stdout, ready) => {
                let started =
                    Running::start(shell(line, dir, url.as_deref()), line, on_stdout, ready).await;
                if url.is_none() {
                    url = Some(url_of(&started.ready_line));
                }
                running.push(started);
            }
            Ending::OneShot => {
                let output =
                    common::succeeds(shell(line, dir, url.as_deref()), line, ONE_SHOT).await;
                printed.insert(
                    line.clone(),
                    String::from_utf8_lossy(&output.stdout).into_owned(),
                );
            }
        }
    }
    (printed, running)
}

/// Stops each with Ctrl-C, the last started (the forwarder) last: each must leave and
/// exit 0. Returns what each printed, by line.
async fn stop_all(running: Vec<Running>) -> HashMap<String, Vec<String>> {
    let mut outputs = HashMap::new();
    for stopped in running.into_iter().rev() {
        let line = stopped.line.clone();
        outputs.insert(line, stopped.stop().await);
    }
    outputs
}

/// Whether a tap printed an event `name` with `data` (JSON).
fn tapped(lines: &[String], name: &str, data: &str) -> bool {
    let data = common::json(data);
    lines.iter().any(|l| {
        let event = common::json(l);
        event["name"] == name && event["data"] == data
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_demitter_command_of_the_readme_runs_as_shown() {
    let commands = readme_commands();
    assert!(
        commands.len() >= 10 && commands[0].starts_with("demitter forwarder"),
        "the README's command list, the forwarder first: {commands:#?}"
    );
    let dir = common::temp_dir("readme");
    let (printed, running) = run_all(&commands, &dir).await;
    let said = |start: &str| -> &str {
        printed
            .iter()
            .find(|(line, _)| line.starts_with(start))
            .map_or_else(
                || panic!("no README line `{start}…`"),
                |(_, out)| out.as_str(),
            )
    };
    assert_eq!(said("demitter request stock.count").trim(), "7");
    assert_eq!(said("demitter request calc.double").trim(), "42");
    let peers = common::json(said("demitter peers --json").trim());
    assert!(
        peers["peers"]
            .as_array()
            .is_some_and(|p| p.iter().any(|id| id == "watcher")),
        "{peers}"
    );
    let bench = said("demitter bench");
    assert!(
        bench.contains("| mem") && bench.contains("| quic"),
        "{bench}"
    );
    for file in [
        "office/hood.crt",
        "office/hood.key",
        "office/alice.crt",
        "office/alice.key",
    ] {
        assert!(dir.join(file).is_file(), "`demitter pki` wrote {file}");
    }

    let outputs = stop_all(running).await;
    let output_of = |line: &str| -> &Vec<String> {
        outputs
            .get(line)
            .unwrap_or_else(|| panic!("no README line `{line}` that runs until stopped"))
    };
    let taps = output_of("demitter tap 'user.#'");
    assert!(tapped(taps, "user.login", r#"{"id":7}"#), "{taps:#?}");
    assert_eq!(
        taps.iter().filter(|l| l.contains("\"user.ping\"")).count(),
        100,
        "{taps:#?}"
    );
    let last = output_of("demitter tap 'sensor.+' --last");
    assert!(
        tapped(last, "sensor.temp", "21.5"),
        "the retained value: {last:#?}"
    );
    let group = output_of("demitter tap 'job.+' --group packers");
    assert!(tapped(group, "job.pack", r#"{"order":1}"#), "{group:#?}");
    std::fs::remove_dir_all(&dir).expect("cleaned up");
}
