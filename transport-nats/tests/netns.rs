//! A subscriber's host cut off from its NATS server for a second under steady load, then
//! brought back: traffic resumes by itself within the stated bound, and the subscriber's
//! account balances exactly, every event lost in the cut reported.
//!
//! The server and the publishing node run on this machine's side of a bridge; the
//! subscribing node runs in a network namespace of its own, as a child process (this same
//! test, run again with `SUBSCRIBER_OF` set). Needs root, `ip` (iproute2) and
//! `nats-server`; where either is missing, the test says so in its output and checks
//! nothing else.

#![cfg(target_os = "linux")]

mod support;

use std::time::Duration;

use demitter_conformance::faults::{Account, balances_across_an_outage, report_account};
use demitter_conformance::nats_server::{NatsServer, available};
use demitter_conformance::netns::Hosts;
use demitter_conformance::support::within;
use demitter_conformance::test_config;

/// Set in the child: the server's address.
const SUBSCRIBER_OF: &str = "DEMITTER_TEST_SUBSCRIBER_OF";
/// How long the host stays cut off.
const CUT: Duration = Duration::from_secs(1);
const TEST: &str = "a_subscriber_cut_off_and_brought_back_recovers_and_reports_its_loss";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_cut_off_and_brought_back_recovers_and_reports_its_loss() {
    if let Ok(server) = std::env::var(SUBSCRIBER_OF) {
        let node = support::start_node(&server, "subscriber", test_config())
            .await
            .expect("the subscriber starts");
        return report_account(&node.emitter).await;
    }
    if !available(TEST) {
        return;
    }
    let Some(hosts) = Hosts::or_skip(Hosts::make(&["sub"]).and_then(Hosts::attach_root)) else {
        return;
    };
    let server = tokio::task::block_in_place(|| NatsServer::start_at(&hosts.root_ip().to_string()));
    let publisher = support::start_node(&server.addr(), "publisher", test_config())
        .await
        .expect("the publisher starts");
    let mut child = hosts.run_this_test("sub", TEST, &[(SUBSCRIBER_OF, server.addr())]);
    let lines = tokio::io::BufReader::new(child.stdout.take().expect("piped"));
    let figures = balances_across_an_outage(
        "the subscriber's host is cut off from its server for 1 s",
        &publisher.emitter,
        Account::from_lines(lines),
        hosts.cut_off("sub", CUT),
    )
    .await;
    println!("{figures:?}");
    demitter_conformance::child::finish(child).await;
    within("the publisher to close", publisher.emitter.close()).await;
    drop(server);
    drop(hosts);
}
