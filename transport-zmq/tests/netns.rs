//! A subscriber's host cut off from the forwarder for a second under steady load, then
//! brought back: the subscriber notices the silence, reconnects by itself, traffic resumes
//! within the stated bound, and its account balances exactly, every event lost in the cut
//! reported.
//!
//! The forwarder and the publisher run in this process, joined to a bridge; the subscriber
//! runs in a network namespace of its own, as a child process (this same test, run again
//! with `SUBSCRIBER_OF` set). Needs root and `ip` (iproute2); where namespaces cannot be
//! made, the test says so in its output and checks nothing else.

#![cfg(target_os = "linux")]

use std::time::Duration;

use demitter_conformance::faults::{Account, balances_across_an_outage, report_account};
use demitter_conformance::netns::Hosts;
use demitter_conformance::support::within;
use demitter_core::Emitter;

mod support;

/// Set in the child: the forwarder's `xsub,xpub` addresses.
const SUBSCRIBER_OF: &str = "DEMITTER_TEST_SUBSCRIBER_OF";
/// How long the host stays cut off.
const CUT: Duration = Duration::from_secs(1);

fn emitter(xsub: &str, xpub: &str) -> Emitter {
    let mut config = support::fast_config(xsub, xpub);
    config.connect_timeout = Duration::from_millis(300);
    config.silence_timeout = Duration::from_millis(400);
    support::emitter_on(config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_cut_off_and_brought_back_recovers_and_reports_its_loss() {
    if let Ok(forwarder) = std::env::var(SUBSCRIBER_OF) {
        let (xsub, xpub) = forwarder.split_once(',').expect("xsub,xpub");
        let subscriber = emitter(xsub, xpub);
        return report_account(&subscriber).await;
    }
    let Some(hosts) = Hosts::or_skip(Hosts::make(&["sub"]).and_then(Hosts::attach_root)) else {
        return;
    };
    let (forwarder, xsub, xpub) = support::forwarder_on(hosts.root_ip().into()).await;
    let publisher = emitter(&xsub, &xpub);
    let mut child = hosts.run_this_test(
        "sub",
        "a_subscriber_cut_off_and_brought_back_recovers_and_reports_its_loss",
        &[(SUBSCRIBER_OF, format!("{xsub},{xpub}"))],
    );
    let lines = tokio::io::BufReader::new(child.stdout.take().expect("piped"));
    let figures = balances_across_an_outage(
        "the subscriber's host is cut off for 1 s",
        &publisher,
        Account::from_lines(lines),
        hosts.cut_off("sub", CUT),
    )
    .await;
    println!("{figures:?}");
    demitter_conformance::child::finish(child).await;
    within("the publisher to close", publisher.close()).await;
    within("the forwarder to close", forwarder.close()).await;
    drop(hosts);
}
