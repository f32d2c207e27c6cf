//! A subscriber's process killed with SIGKILL under steady load and started again: the
//! forwarder drops its connection, the publisher's count drops by silence, the new process
//! receives within the stated bound, and every account balances (see
//! `demitter_conformance::faults`). The killed subscriber is this same test run again as a
//! child, with `SUBSCRIBER_OF` set.

use demitter_conformance::child::run_this_test;
use demitter_conformance::faults::{Account, a_killed_subscriber_process_recovers, report_account};
use demitter_conformance::support::within;
use demitter_core::Emitter;
use demitter_forwarder::{Forwarder, ForwarderConfig};

mod support;

/// Set in the child: the forwarder's `xsub,xpub` addresses.
const SUBSCRIBER_OF: &str = "DEMITTER_TEST_SUBSCRIBER_OF";
const TEST: &str = "a_subscriber_killed_under_load_recovers";

fn emitter(xsub: &str, xpub: &str) -> Emitter {
    support::emitter_on(support::fast_config(xsub, xpub))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_killed_under_load_recovers() {
    if let Ok(forwarder) = std::env::var(SUBSCRIBER_OF) {
        let (xsub, xpub) = forwarder.split_once(',').expect("xsub,xpub");
        let subscriber = emitter(xsub, xpub);
        return report_account(&subscriber).await;
    }
    let forwarder = Forwarder::bind(ForwarderConfig::loopback_free_ports())
        .await
        .expect("the forwarder binds");
    let (xsub, xpub) = (
        forwarder.xsub_addr().to_string(),
        forwarder.xpub_addr().to_string(),
    );
    let publisher = emitter(&xsub, &xpub);
    let survivor = emitter(&xsub, &xpub);
    let setting = format!("{xsub},{xpub}");
    let figures = a_killed_subscriber_process_recovers(
        "a subscriber process is killed (SIGKILL) and restarted",
        &publisher,
        Account::local(&survivor),
        || run_this_test(&[], TEST, &[(SUBSCRIBER_OF, setting.clone())]),
    )
    .await;
    println!("{figures:?}");
    within("the survivor to close", survivor.close()).await;
    within("the publisher to close", publisher.close()).await;
    within("the forwarder to close", forwarder.close()).await;
}
