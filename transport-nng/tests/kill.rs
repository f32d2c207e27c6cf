//! A subscribing node's process killed with SIGKILL under steady load and started again:
//! the bus notices by silence, the new process rejoins and receives within the stated
//! bound, and every account balances (see `demitter_conformance::faults`). The killed node
//! is this same test run again as a child, with `NODE_OF` set.

mod support;

use demitter_conformance::child::run_this_test;
use demitter_conformance::faults::{Account, a_killed_subscriber_process_recovers, report_account};
use demitter_conformance::support::within;
use demitter_conformance::test_config;
use support::start_node;

/// Set in the child: the URL of the node to dial.
const NODE_OF: &str = "DEMITTER_TEST_NODE_OF";
const TEST: &str = "a_node_killed_under_load_recovers";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_under_load_recovers() {
    if let Ok(seed) = std::env::var(NODE_OF) {
        let node =
            start_node("tcp://127.0.0.1:0", &[seed], "victim", test_config()).expect("starts");
        return report_account(&node.emitter).await;
    }
    let publisher =
        start_node("tcp://127.0.0.1:0", &[], "publisher", test_config()).expect("starts");
    let survivor = start_node(
        "tcp://127.0.0.1:0",
        std::slice::from_ref(&publisher.url),
        "survivor",
        test_config(),
    )
    .expect("starts");
    let figures = a_killed_subscriber_process_recovers(
        "a node process is killed (SIGKILL) and restarted",
        &publisher.emitter,
        Account::local(&survivor.emitter),
        || run_this_test(&[], TEST, &[(NODE_OF, publisher.url.clone())]),
    )
    .await;
    println!("{figures:?}");
    within("the survivor to close", survivor.emitter.close()).await;
    within("the publisher to close", publisher.emitter.close()).await;
}
