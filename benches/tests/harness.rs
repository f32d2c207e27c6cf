//! The harness's own behaviour: its accounting, its report, and its command line.

use std::process::Command;
use std::time::Duration;

use demitter_benches::scenario::{Layer, Scenario, Workload};
use demitter_benches::{Progress, report, transports};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gentle_run_delivers_and_accounts_for_every_event() {
    let scenario = Scenario {
        publishers: 1,
        subscribers: 2,
        // Listening elsewhere: counted by nobody, and costing the run nothing it counts.
        bystanders: 1,
        payload: 64,
        duration: Duration::from_millis(300),
        rate: Some(1_000),
        congestion: demitter_core::Congestion::Drop,
        workload: Workload::Events,
        recovery: true,
    };
    let outcomes = tokio::time::timeout(
        Duration::from_secs(60),
        transports::run("mem", &scenario, &Progress::new(false)),
    )
    .await
    .expect("the run finishes")
    .expect("the run succeeds");
    let [emitter, baseline] = &outcomes[..] else {
        panic!("two rows: {outcomes:?}");
    };
    assert_eq!(
        (emitter.layer, baseline.layer),
        (Layer::Emitter, Layer::Baseline)
    );
    for o in &outcomes {
        assert!(o.sent > 0, "{o:?}");
        assert_eq!(
            o.expected,
            o.sent * 2,
            "every subscriber expects every event"
        );
        assert_eq!(o.received, o.expected, "a gentle rate loses nothing: {o:?}");
        assert_eq!((o.lost, o.reported_lost), (0, 0));
        assert!(o.latency_us[0] <= o.latency_us[1] && o.latency_us[1] <= o.latency_us[2]);
    }
    let table = report::markdown(&outcomes);
    assert_eq!(table.lines().count(), 4, "{table}");
    assert!(
        table.contains("| mem | 1→2 64 B 1000/s +1 bystander(s) | emitter |"),
        "{table}"
    );
    assert!(
        table
            .lines()
            .nth(3)
            .is_some_and(|row| row.contains("| 1.00 |")),
        "{table}"
    );
}

#[test]
fn the_command_line_refuses_an_unknown_transport() {
    let output = Command::new(env!("CARGO_BIN_EXE_demitter-bench"))
        .args(["--transport", "carrier-pigeon", "--duration", "0.1"])
        .output()
        .expect("the binary runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unknown transport `carrier-pigeon`"),
        "{stderr}"
    );
    assert!(stderr.contains("mem"), "names what is available: {stderr}");
}

#[test]
fn the_command_line_refuses_a_peer_system_it_was_built_without() {
    let output = Command::new(env!("CARGO_BIN_EXE_demitter-bench"))
        .args(["--peer", "carrier-pigeon", "--duration", "0.1"])
        .output()
        .expect("the binary runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unknown peer system `carrier-pigeon`"),
        "{stderr}"
    );
}

#[test]
fn json_and_chart_are_written() {
    let dir = std::env::temp_dir().join(format!("demitter-bench-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (json, chart) = (dir.join("out.json"), dir.join("out.svg"));
    let status = Command::new(env!("CARGO_BIN_EXE_demitter-bench"))
        .args([
            "--transport",
            "mem",
            "--duration",
            "0.2",
            "--rate",
            "500",
            "--json",
        ])
        .arg(&json)
        .arg("--chart")
        .arg(&chart)
        .status()
        .expect("the binary runs");
    assert!(status.success());
    let parsed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json written"))
            .expect("valid JSON");
    assert_eq!(
        parsed.as_array().map(Vec::len),
        Some(2),
        "emitter and baseline"
    );
    let svg = std::fs::read_to_string(&chart).expect("chart written");
    assert!(
        svg.starts_with("<svg") && svg.contains("baseline"),
        "an SVG with a legend"
    );
    std::fs::remove_dir_all(&dir).expect("cleaned up");
}

#[test]
fn the_instruction_counter_runs_each_hot_path_and_refuses_others() {
    for scenario in ["emit", "receive"] {
        let output = Command::new(env!("CARGO_BIN_EXE_demitter-instructions"))
            .args([scenario, "2000"])
            .output()
            .expect("the binary runs");
        assert!(output.status.success(), "{scenario}: {output:?}");
    }
    let output = Command::new(env!("CARGO_BIN_EXE_demitter-instructions"))
        .args(["teleport", "10"])
        .output()
        .expect("the binary runs");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown scenario"));
}

/// A gentle scenario of `workload` for `subscribers` subscribers, on the first transport.
fn gentle(workload: Workload, subscribers: usize) -> Scenario {
    Scenario {
        publishers: 1,
        subscribers,
        bystanders: 0,
        payload: 64,
        duration: Duration::from_millis(400),
        rate: Some(2_000),
        congestion: demitter_core::Congestion::Drop,
        workload,
        recovery: true,
    }
}

async fn run_on(transport: &str, scenario: &Scenario) -> Vec<demitter_benches::scenario::Outcome> {
    tokio::time::timeout(
        Duration::from_secs(60),
        transports::run(transport, scenario, &Progress::new(false)),
    )
    .await
    .expect("the run finishes")
    .expect("the run succeeds")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_group_workload_gives_each_member_its_share() {
    let groups = run_on("mem", &gentle(Workload::Groups, 4)).await;
    let [members] = &groups[..] else {
        panic!("one row: {groups:?}");
    };
    assert_eq!(
        members.expected, members.sent,
        "each event once, to one member"
    );
    assert_eq!(members.received, members.sent, "{members:?}");
    assert_eq!(members.shares.len(), 4);
    for share in &members.shares {
        assert!((share - 0.25).abs() < 0.025, "{:?}", members.shares);
    }
    let table = report::markdown(&groups);
    let shown: Vec<f64> = table
        .lines()
        .last()
        .and_then(|row| row.trim_end_matches('|').rsplit('|').next())
        .map(|cell| {
            cell.split_whitespace()
                .filter_map(|s| s.trim_end_matches('%').parse().ok())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        shown.len(),
        4,
        "the shares column shows each member: {table}"
    );
    for (percent, share) in shown.iter().zip(&members.shares) {
        assert!((percent - share * 100.0).abs() < 0.051, "{table}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_workload_measures_requests_against_each_raw_round_trip() {
    let mut transports = vec!["mem", "zmq", "quic"];
    if demitter_conformance::nats_server::available("the NATS raw round trip") {
        transports.push("nats");
    }
    for transport in transports {
        let requests = run_on(transport, &gentle(Workload::Requests, 1)).await;
        let [replies, raw] = &requests[..] else {
            panic!("{transport}: two rows: {requests:?}");
        };
        assert_eq!(
            (replies.layer, raw.layer),
            (Layer::Emitter, Layer::Baseline),
            "{transport}"
        );
        for o in &requests {
            assert!(o.sent > 0 && o.received == o.sent, "{transport}: {o:?}");
            assert!(o.latency_us[0] > 0.0, "{transport}: {o:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_with_recovery_off_says_so_and_loses_nothing() {
    let scenario = Scenario {
        recovery: false,
        ..gentle(Workload::Events, 1)
    };
    let outcomes = run_on("mem", &scenario).await;
    let emitter = outcomes
        .iter()
        .find(|o| o.layer == Layer::Emitter)
        .expect("an emitter row");
    assert_eq!(emitter.received, emitter.expected, "{emitter:?}");
    assert_eq!((emitter.lost, emitter.reported_lost), (0, 0));
    let table = report::markdown(&outcomes);
    assert!(table.contains("recovery off"), "{table}");
}
