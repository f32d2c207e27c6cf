//! Every recipe a `--help` prints runs as it is printed. The recipes are the indented
//! `demitter …` and `nats-server …` lines of every command's help (today `pki`'s); they run
//! through `sh`, in order, in one scratch directory, inside network namespaces made for the
//! test: host `alice` for everything on one machine, and `bob` for the second machine of
//! the two-machine recipes (`ALICE-HOST` and `DHT-HOST` are alice's address: the DHT node
//! runs there). In fresh namespaces the
//! fixed ports the recipes name (QUIC's 4816, nats-server's 4222) are free, whatever else
//! runs here. Without root and `ip`, the test prints `SKIPPED` and why.

mod common;

use std::path::Path;

use common::Running;
use demitter_conformance::netns::Hosts;

/// Where a recipe runs, and how it ends.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// On alice or bob (`true` for bob), to its end, with 0.
    Once(bool),
    /// On alice, until stopped: ready when its stdout (`true`) or stderr says the text.
    Start(bool, &'static str),
    /// Stops the last started, which must exit 0, and checks it printed the text.
    Stop(&'static str),
}

/// The recipes `demitter pki --help` prints, in order, each with what the test does; the
/// steps from `nats-server` to its stop need one (`NATS_STEPS`).
const RECIPES: &[(&str, Step)] = &[
    ("demitter pki hood office", Step::Once(false)),
    ("demitter pki peer office alice", Step::Once(false)),
    ("demitter pki peer office bob", Step::Once(false)),
    (
        "demitter tap '#' --url 'quic://127.0.0.1:4816?hood=./office&peer=alice'",
        Step::Start(false, "listening on"),
    ),
    (
        "demitter emit hello '\"hi\"' --url 'quic://127.0.0.1:0?hood=./office&peer=bob&seed=127.0.0.1:4816'",
        Step::Once(false),
    ),
    ("", Step::Stop("\"hello\"")),
    (
        "demitter tap '#' --url 'quic://0.0.0.0:4816?hood=./office&peer=alice'",
        Step::Start(false, "listening on"),
    ),
    (
        "demitter emit hello '\"hi\"' --url 'quic://0.0.0.0:4816?hood=./office&peer=bob&seed=ALICE-HOST:4816'",
        Step::Once(true),
    ),
    ("", Step::Stop("\"hello\"")),
    ("demitter dht --port 6881", Step::Start(true, "dht=")),
    (
        "demitter tap '#' --url 'quic://0.0.0.0:4816?hood=./office&peer=alice&dht=DHT-HOST:6881'",
        Step::Start(false, "listening on"),
    ),
    (
        "demitter emit hello '\"hi\"' --url 'quic://0.0.0.0:0?hood=./office&peer=bob&dht=DHT-HOST:6881'",
        Step::Once(true),
    ),
    ("", Step::Stop("\"hello\"")),
    ("", Step::Stop("")),
    (
        "demitter pki server office nats-1 --host 127.0.0.1 --host nats-1.example",
        Step::Once(false),
    ),
    (
        "demitter pki nats-config office nats-1 alice bob > nats.conf",
        Step::Once(false),
    ),
    (
        "nats-server -c nats.conf",
        Step::Start(false, "Server is ready"),
    ),
    (
        "demitter tap '#' --url 'nats://127.0.0.1:4222?hood=./office&peer=alice'",
        Step::Start(false, "listening on"),
    ),
    ("", Step::Stop("")),
    ("", Step::Stop("")),
    ("demitter pki curve forwarder --dir keys", Step::Once(false)),
    (
        "demitter pki curve alice --dir keys >> keys/allow",
        Step::Once(false),
    ),
];

/// The steps of [`RECIPES`] that need a `nats-server`: from starting it to stopping it.
const NATS_STEPS: std::ops::Range<usize> = 16..20;

/// The recipe lines of one help text: indented lines that run `demitter` or
/// `nats-server`, without their comments.
fn recipes_in(help: &str) -> Vec<String> {
    help.lines()
        .filter(|line| line.starts_with("  "))
        .map(str::trim)
        .filter(|line| line.starts_with("demitter ") || line.starts_with("nats-server "))
        .map(|line| {
            let line = line.find("  # ").map_or(line, |at| &line[..at]);
            line.trim_end().to_owned()
        })
        .collect()
}

/// The help of every command and subcommand.
async fn every_help() -> Vec<String> {
    let commands: &[&[&str]] = &[
        &[],
        &["demo"],
        &["tap"],
        &["emit"],
        &["request"],
        &["reply"],
        &["listeners"],
        &["peers"],
        &["dht"],
        &["bench"],
        &["forwarder"],
        &["pki"],
        &["pki", "hood"],
        &["pki", "peer"],
        &["pki", "server"],
        &["pki", "curve"],
        &["pki", "nats-config"],
    ];
    let mut helps = Vec::new();
    for command in commands {
        let mut args = command.to_vec();
        args.push("--help");
        let output = common::run(&args, None).await;
        assert!(output.status.success(), "{args:?}: {output:?}");
        helps.push(common::stdout(&output));
    }
    helps
}

/// A recipe as it runs: `ALICE-HOST` and `DHT-HOST` are alice's address.
fn on_hosts(hosts: &Hosts, line: &str) -> String {
    let alice = hosts.host_ip("alice").to_string();
    line.replace("ALICE-HOST", &alice)
        .replace("DHT-HOST", &alice)
}

/// Runs a one-shot recipe on alice or bob: it must exit 0.
async fn run_once(hosts: &Hosts, line: &str, on_bob: bool, dir: &Path) {
    let host = if on_bob { "bob" } else { "alice" };
    let line = on_hosts(hosts, line);
    let namespace = hosts.namespace(host);
    let command = common::shell(&["ip", "netns", "exec", &namespace], &line, dir);
    common::succeeds(command, &format!("{line}` on `{host}"), common::WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_help_recipe_runs_as_printed() {
    let mut printed = Vec::new();
    for help in every_help().await {
        for recipe in recipes_in(&help) {
            if !printed.contains(&recipe) {
                printed.push(recipe);
            }
        }
    }
    let tested: Vec<String> = RECIPES
        .iter()
        .filter(|(line, _)| !line.is_empty())
        .map(|(line, _)| (*line).to_owned())
        .collect();
    assert_eq!(
        printed, tested,
        "the recipes the helps print, in order, are the ones this test runs"
    );
    assert!(
        RECIPES[NATS_STEPS.start].0.starts_with("nats-server ")
            && matches!(RECIPES[NATS_STEPS.end - 1].1, Step::Stop(_)),
        "NATS_STEPS spans the server's recipes"
    );
    // Without a server, the NATS recipes are skipped (and said so); the rest still run.
    let with_nats = demitter_conformance::nats_server::available("the NATS recipes of pki --help");
    let Some(hosts) = Hosts::or_skip(Hosts::make(&["alice", "bob"])) else {
        return;
    };
    let dir = common::temp_dir("help-recipes");
    let mut started: Vec<Running> = Vec::new();
    for (n, (line, step)) in RECIPES.iter().enumerate() {
        if !with_nats && NATS_STEPS.contains(&n) {
            continue;
        }
        match *step {
            Step::Once(on_bob) => run_once(&hosts, line, on_bob, &dir).await,
            Step::Start(on_stdout, ready) => {
                let namespace = hosts.namespace("alice");
                let line = on_hosts(&hosts, line);
                let command = common::shell(&["ip", "netns", "exec", &namespace], &line, &dir);
                started.push(Running::start(command, &line, on_stdout, ready).await);
            }
            Step::Stop(expected) => {
                let last = started.pop().expect("a recipe to stop");
                let line = last.line.clone();
                let out = last.stop().await.join("\n");
                assert!(out.contains(expected), "`{line}` printed: {out}");
            }
        }
    }
    assert!(started.is_empty(), "every recipe started was stopped");
    let allow = std::fs::read_to_string(dir.join("keys/allow")).expect("the allow file");
    assert!(allow.starts_with("alice "), "{allow}");
    drop(hosts);
    std::fs::remove_dir_all(&dir).expect("cleaned up");
}
