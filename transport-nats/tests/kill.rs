//! A subscribing emitter's process killed with SIGKILL under steady load and started again:
//! the bus notices by silence, the new process rejoins and receives within the stated
//! bound, and every account balances (see `demitter_conformance::faults`). The killed
//! emitter is this same test run again as a child, with `SERVER_AT` set.

mod support;

use demitter_conformance::child::run_this_test;
use demitter_conformance::faults::{Account, a_killed_subscriber_process_recovers, report_account};
use demitter_conformance::nats_server::{NatsServer, available};
use demitter_conformance::support::within;
use demitter_conformance::test_config;
use support::start_node;

/// Set in the child: the address of the server to connect to.
const SERVER_AT: &str = "DEMITTER_TEST_NATS_SERVER_AT";
const TEST: &str = "an_emitter_killed_under_load_recovers";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emitter_killed_under_load_recovers() {
    if let Ok(addr) = std::env::var(SERVER_AT) {
        let node = start_node(&addr, "victim", test_config())
            .await
            .expect("starts");
        return report_account(&node.emitter).await;
    }
    if !available(TEST) {
        return;
    }
    let server = tokio::task::block_in_place(NatsServer::start);
    let publisher = start_node(&server.addr(), "publisher", test_config())
        .await
        .expect("starts");
    let survivor = start_node(&server.addr(), "survivor", test_config())
        .await
        .expect("starts");
    let figures = a_killed_subscriber_process_recovers(
        "an emitter process is killed (SIGKILL) and restarted",
        &publisher.emitter,
        Account::local(&survivor.emitter),
        || run_this_test(&[], TEST, &[(SERVER_AT, server.addr())]),
    )
    .await;
    println!("{figures:?}");
    within("the survivor to close", survivor.emitter.close()).await;
    within("the publisher to close", publisher.emitter.close()).await;
}
