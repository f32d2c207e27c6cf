//! The forwarder process killed with SIGKILL under steady load and started again on the
//! same ports half a second later: the emitters reconnect by themselves, traffic resumes
//! within the stated bound, and the subscriber's account balances exactly, every event lost
//! in the outage reported.

use std::time::Duration;

use demitter_conformance::faults::{Account, balances_across_an_outage};
use demitter_conformance::support::within;
use demitter_conformance::test_config;
use demitter_core::Emitter;
use demitter_zmq::{ZmqConfig, ZmqTransport};

mod support;

use support::{Running, start_on};

/// How long the forwarder stays dead: the outage's length, not a wait for anything.
const OUTAGE: Duration = Duration::from_millis(500);

/// Starts the binary on these ports and reads back where it listens, as `host:port`.
fn start(xsub: &str, xpub: &str) -> (Running, String, String) {
    let (running, xsub, xpub) = start_on(xsub, xpub);
    let bare = |url: &str| url.trim_start_matches("tcp://").to_owned();
    (running, bare(&xsub), bare(&xpub))
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
