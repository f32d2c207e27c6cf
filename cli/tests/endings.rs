//! One convention for endings, tried on real processes with real signals: commands that
//! run until stopped leave the bus and exit 0 on SIGINT or SIGTERM; commands cut short
//! leave the bus, say what they had done, and exit 130.

mod common;

use std::process::Stdio;

use common::{Err, Out, demitter, forwarder, forwarder_on, line_with, next_line, tap};
use nix::sys::signal::Signal;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::Child;

/// A `demitter ARGS` process with its output piped.
fn start(args: &[&str]) -> (Child, Out, Err) {
    let mut child = demitter()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("demitter starts");
    let out = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let err = BufReader::new(child.stderr.take().expect("stderr")).lines();
    (child, out, err)
}

/// Sends `signal` and returns the exit code and what the process said on stderr after it.
async fn stop(child: &mut Child, err: &mut Err, signal: Signal) -> (Option<i32>, String) {
    common::signal(child, signal);
    let status = tokio::time::timeout(common::WAIT, child.wait())
        .await
        .unwrap_or_else(|_| panic!("it ends after {signal}"))
        .expect("waited for");
    let mut said = String::new();
    while let Ok(Some(line)) = err.next_line().await {
        said.push_str(&line);
        said.push('\n');
    }
    (status.code(), said)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_that_run_until_stopped_exit_0_on_sigint_and_sigterm() {
    let mut forwarder = forwarder_on((0, 0), true).await;
    let url = forwarder.url.clone();
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        // A node for `peers --watch` to see, and events for `listeners --watch` to count.
        let (mut other, _other_out, mut other_err) = tap(&url, &["user.+", "--id", "other"]).await;

        let (mut tapping, _out, mut err) = start(&["tap", "#", "--url", &url]);
        line_with(&mut err, "listening on").await;
        assert_eq!(
            stop(&mut tapping, &mut err, signal).await.0,
            Some(0),
            "tap, {signal}"
        );

        let (mut replying, _out, mut err) = start(&["reply", "x.+", "1", "--url", &url]);
        line_with(&mut err, "answering").await;
        assert_eq!(
            stop(&mut replying, &mut err, signal).await.0,
            Some(0),
            "reply, {signal}"
        );

        let (mut watching, mut out, mut err) =
            start(&["listeners", "user.x", "--watch", "--url", &url]);
        line_with(&mut out, "1 listener for").await;
        assert_eq!(
            stop(&mut watching, &mut err, signal).await.0,
            Some(0),
            "listeners --watch, {signal}"
        );

        let (mut peers, mut out, mut err) = start(&["peers", "--watch", "--url", &url]);
        line_with(&mut out, "up other").await;
        assert_eq!(
            stop(&mut peers, &mut err, signal).await.0,
            Some(0),
            "peers --watch, {signal}"
        );

        let (mut holding, mut out, mut err) =
            start(&["emit", "sensor.t", "20", "--retain", "--url", &url]);
        line_with(&mut out, "reached").await;
        line_with(&mut err, "holding `sensor.t`").await;
        assert_eq!(
            stop(&mut holding, &mut err, signal).await.0,
            Some(0),
            "emit --retain, {signal}"
        );

        assert_eq!(stop(&mut other, &mut other_err, signal).await.0, Some(0));
    }
    let mut log = forwarder.log.take().expect("its log");
    let (code, _) = stop(&mut forwarder.child, &mut log, Signal::SIGTERM).await;
    assert_eq!(code, Some(0), "the forwarder, SIGTERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_exits_0_on_a_signal_and_sums_up() {
    let (mut demo, mut out, mut err) = start(&["demo", "--duration", "60", "--bidders", "1"]);
    line_with(&mut out, "processes joined").await;
    let (code, said) = stop(&mut demo, &mut err, Signal::SIGINT).await;
    assert_eq!(code, Some(0), "{said}");
    line_with(&mut out, "child processes exited:      3 of 3").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emit_with_a_count_cut_short_says_how_far_it_got_and_exits_130() {
    let (_forwarder, url) = forwarder().await;
    let (_tap, mut events, _tap_err) = tap(&url, &["job.+", "--no-system"]).await;
    let (mut emitting, _out, mut err) = start(&[
        "emit", "job.x", "1", "-n", "1000", "-r", "20", "--url", &url,
    ]);
    next_line(&mut events, "the first event").await;
    let (code, said) = stop(&mut emitting, &mut err, Signal::SIGINT).await;
    assert_eq!(code, Some(130), "{said}");
    assert!(
        said.contains("interrupted by SIGINT after ") && said.contains(" of 1000 events"),
        "{said}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_cut_short_says_what_it_waited_for_and_exits_130() {
    let (_forwarder, url) = forwarder().await;
    // A responder that takes its time: it says each request as it comes.
    let (mut replying, mut requests, mut reply_err) = start(&[
        "reply",
        "slow.+",
        "--command",
        "exec sleep 60",
        "--url",
        &url,
    ]);
    line_with(&mut reply_err, "answering").await;
    let (mut asking, _out, mut err) = start(&["request", "slow.job", "1", "--url", &url]);
    line_with(&mut requests, "slow.job").await;
    let (code, said) = stop(&mut asking, &mut err, Signal::SIGTERM).await;
    assert_eq!(code, Some(130), "{said}");
    assert!(
        said.contains("interrupted by SIGTERM while waiting for a reply to `slow.job`"),
        "{said}"
    );
    // Stopped, the responder leaves no command behind: closing drops the request it was
    // still serving, and the command with it.
    let (code, said) = stop(&mut replying, &mut reply_err, Signal::SIGTERM).await;
    assert_eq!(code, Some(0), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_still_joining_exits_130() {
    // Takes the connections and never answers: the command is still joining.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let port = silent.local_addr().expect("bound").port();
    let url = format!("zmq://127.0.0.1:{port}?xpub={port}");
    let (mut joining, _out, mut err) = start(&["tap", "#", "-t", "60", "--url", &url]);
    let (_held, _) = tokio::time::timeout(common::WAIT, silent.accept())
        .await
        .expect("the command connects")
        .expect("accepted");
    let (code, said) = stop(&mut joining, &mut err, Signal::SIGINT).await;
    assert_eq!(code, Some(130), "{said}");
    assert!(
        said.contains("interrupted by SIGINT while joining the bus at zmq://127.0.0.1:"),
        "{said}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_cut_short_exits_130() {
    let (mut bench, _out, mut err) = start(&["bench", "--transport", "mem", "--duration", "60"]);
    line_with(&mut err, "running mem").await;
    let (code, said) = stop(&mut bench, &mut err, Signal::SIGINT).await;
    assert_eq!(code, Some(130), "{said}");
    assert!(said.contains("interrupted after 0 of 1 runs"), "{said}");
}
