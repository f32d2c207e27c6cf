//! The forwarder process killed with SIGKILL under steady load and started again on the
//! same ports half a second later: the emitters reconnect by themselves, traffic resumes
//! within the stated bound, and the subscriber's account balances exactly, every event lost
//! in the outage reported.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use demitter_conformance::faults::{Account, balances_across_an_outage};
use demitter_conformance::support::within;
use demitter_conformance::test_config;
use demitter_core::Emitter;
use demitter_zmq::{ZmqConfig, ZmqTransport};

/// How long the forwarder stays dead: the outage's length, not a wait for anything.
const OUTAGE: Duration = Duration::from_millis(500);

/// A forwarder process, killed (SIGKILL) on drop if still running.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the binary on `xsub` and `xpub` ports (0: free ones) and reads back where it
/// listens, as `host:port` pairs.
fn start(xsub: &str, xpub: &str) -> (Running, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_demitter-forwarder"))
        .args([
            "--xsub-port",
            xsub,
            "--xpub-port",
            xpub,
            "--stats-every",
            "0",
        ])
        .env_remove("XSUB_ADDRESS")
        .env_remove("XPUB_ADDRESS")
        .env("LOG_LEVEL", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary starts");
    let stdout = child.stdout.take().expect("piped");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("a first line");
    let endpoints: Vec<String> = line
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("tcp://"))
        .map(|w| w.trim_end_matches(',').to_owned())
        .collect();
    assert_eq!(endpoints.len(), 2, "says where it listens: {line}");
    (Running(child), endpoints[0].clone(), endpoints[1].clone())
}

fn port(addr: &str) -> &str {
    addr.rsplit_once(':').map_or(addr, |(_, port)| port)
}

fn emitter(xsub: &str, xpub: &str) -> Emitter {
    let mut config = ZmqConfig::new(xsub, xpub);
    config.reconnect_min = Duration::from_millis(20);
    config.reconnect_max = Duration::from_millis(200);
    config.silence_timeout = Duration::from_secs(1);
    Emitter::with_config(ZmqTransport::connect(config), test_config()).expect("emitter")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarder_killed_under_load_recovers_and_reports_its_loss() {
    let (mut running, xsub, xpub) = start("0", "0");
    let publisher = emitter(&xsub, &xpub);
    let subscriber = emitter(&xsub, &xpub);
    let figures = balances_across_an_outage(
        "the forwarder process is killed (SIGKILL) and restarted",
        &publisher,
        Account::local(&subscriber),
        async {
            running.0.kill().expect("SIGKILL");
            running.0.wait().expect("reaped");
            tokio::time::sleep(OUTAGE).await;
            running = start(port(&xsub), port(&xpub)).0;
        },
    )
    .await;
    println!("{figures:?}");
    within("the publisher to close", publisher.close()).await;
    within("the subscriber to close", subscriber.close()).await;
    drop(running);
}
