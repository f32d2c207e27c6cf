//! `demitter demo` without a terminal: real child processes on an embedded bus, a summary
//! that adds up, every child gone, and a second run right after the first.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

/// How long a demo of a few seconds may take from start to summary.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// The value after `label` on the summary line that starts with it.
fn field<'a>(summary: &'a str, label: &str) -> &'a str {
    summary
        .lines()
        .find_map(|line| line.trim_start().strip_prefix(label))
        .map_or_else(|| panic!("no `{label}` line in:\n{summary}"), str::trim)
}

/// Runs `demitter demo ARGS` to its end, with `env` set.
async fn run_demo(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let run = Command::new(env!("CARGO_BIN_EXE_demitter"))
        .arg("demo")
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(RUN_TIMEOUT, run)
        .await
        .expect("the demo ends by itself")
        .expect("the demo runs")
}

/// Runs a demo to its end and checks its summary; returns the summary.
async fn demo(args: &[&str]) -> String {
    let output = run_demo(args, &[]).await;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("opens at"),
        "log lines, not a dashboard: {stdout}"
    );
    assert!(stdout.contains("rule: the highest bid"), "{stdout}");

    let sent: u64 = field(&stdout, "bids sent:")
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .expect("a number of bids");
    assert!(sent > 0, "the bidders bid: {stdout}");
    assert_eq!(
        field(&stdout, "bids seen by the spectator:"),
        format!("{sent} of {sent}"),
        "the spectator saw every bid sent"
    );
    assert_eq!(field(&stdout, "events lost:"), "0");
    let lots: u64 = field(&stdout, "lots sold:").parse().expect("a number");
    assert!(lots > 0, "{stdout}");
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_runs_twice_in_a_row_and_every_bid_is_seen() {
    for _ in 0..2 {
        let summary = demo(&["--duration", "5"]).await;
        assert_eq!(field(&summary, "child processes exited:"), "6 of 6");
        // The banner gives a URL that `demitter tap` takes as it is.
        let banner = summary
            .lines()
            .find(|l| l.contains("demitter tap 'auction.#' -u 'zmq://127.0.0.1:"));
        assert!(banner.is_some(), "{summary}");
        assert!(field(&summary, "bus:").starts_with("zmq"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_runs_on_a_quic_mesh_with_a_throwaway_hood() {
    let summary = demo(&["--duration", "3", "--transport", "quic", "--bidders", "2"]).await;
    assert_eq!(field(&summary, "child processes exited:"), "4 of 4");
    assert!(field(&summary, "bus:").starts_with("quic"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_refuses_nonsense_settings() {
    let output = Command::new(env!("CARGO_BIN_EXE_demitter"))
        .args(["demo", "--bidders", "0"])
        .output()
        .await
        .expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "a usage error: {stderr}");
    assert!(stderr.contains("0 is not in 1..=64"), "{stderr}");
}

/// The command the demo prints (and shows in its dashboard) watches it from another
/// terminal while it runs, on QUIC too, where it needs a certificate of the demo's hood.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_command_taps_a_running_quic_demo() {
    use tokio::io::AsyncBufReadExt as _;
    let mut demo = Command::new(env!("CARGO_BIN_EXE_demitter"))
        .args([
            "demo",
            "--transport",
            "quic",
            "--bidders",
            "2",
            "--duration",
            "8",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the demo starts");
    let mut lines = tokio::io::BufReader::new(demo.stdout.take().expect("stdout")).lines();
    let watch = tokio::time::timeout(RUN_TIMEOUT, async {
        while let Some(line) = lines.next_line().await.expect("readable") {
            if let Some(at) = line.find("Watch: ") {
                return line[at + "Watch: ".len()..]
                    .trim_end_matches(')')
                    .to_owned();
            }
        }
        panic!("the demo printed no watch command");
    })
    .await
    .expect("the banner in time");
    let url = watch
        .split('\'')
        .nth(3)
        .unwrap_or_else(|| panic!("a quoted URL in {watch}"));
    assert!(
        url.starts_with("quic://") && url.contains("peer=watcher"),
        "{watch}"
    );
    let tapped = Command::new(env!("CARGO_BIN_EXE_demitter"))
        .args(["tap", "auction.#", "-u", url, "-n", "2", "--no-system"])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let tapped = tokio::time::timeout(RUN_TIMEOUT, tapped)
        .await
        .expect("the tap sees the auction")
        .expect("runs");
    assert!(tapped.status.success(), "{tapped:?}");
    let events = String::from_utf8_lossy(&tapped.stdout);
    assert_eq!(
        events.lines().filter(|l| l.contains("\"auction.")).count(),
        2,
        "{events}"
    );
    // Drained, so the demo is not blocked on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let status = tokio::time::timeout(RUN_TIMEOUT, demo.wait())
        .await
        .expect("the demo ends")
        .expect("waited for");
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_runs_on_a_local_nats_server() {
    if !demitter_conformance::nats_server::available("demo_runs_on_a_local_nats_server") {
        return;
    }
    let summary = demo(&["--duration", "3", "--transport", "nats", "--bidders", "2"]).await;
    assert_eq!(field(&summary, "child processes exited:"), "4 of 4");
    assert!(field(&summary, "bus:").starts_with("nats"));
    let banner = summary
        .lines()
        .find(|l| l.contains("demitter tap 'auction.#' -u 'nats://127.0.0.1:"));
    assert!(banner.is_some(), "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_on_nats_without_a_server_says_how_to_get_one() {
    let output = run_demo(
        &["--duration", "1", "--transport", "nats"],
        &[("NATS_SERVER", "/nonexistent/nats-server")],
    )
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "no server, no demo");
    assert!(
        stderr.contains("apt-get install nats-server") && stderr.contains("NATS_SERVER"),
        "{stderr}"
    );
}
