//! Three `nats-server`s routed into one cluster, an emitter on each, every emitter given
//! every server (its own first). Under steady load the server of one subscriber is killed
//! with SIGKILL: that subscriber fails over to another server within
//! `demitter_conformance::faults::RECOVERY_BOUND`, the publisher's listener count comes
//! back to both subscribers, and the moving subscriber receives every event (what it
//! missed during the failover comes back from the publisher's window); the survivor's
//! account balances to the event (received + reported lost == sent).

mod support;

use std::time::Instant;

use demitter_conformance::faults::{Account, balances_across_an_outage};
use demitter_conformance::nats_server::{NatsServer, available};
use demitter_conformance::support::within;
use demitter_conformance::test_config;
use support::start_node_on;

const TEST: &str = "a_killed_server_fails_its_emitters_over_and_everything_balances";
/// The event the fault cases' load emits.
const LOAD: &str = "fault.load";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_fails_its_emitters_over_and_everything_balances() {
    if !available(TEST) {
        return;
    }
    let mut servers = tokio::task::block_in_place(|| NatsServer::start_cluster(3));
    let addrs: Vec<String> = servers.iter().map(NatsServer::addr).collect();
    let own_first = |i: usize| {
        let mut list = addrs.clone();
        list.rotate_left(i);
        list
    };
    let publisher = start_node_on(&own_first(0), "publisher", test_config())
        .await
        .expect("starts");
    let survivor = start_node_on(&own_first(1), "survivor", test_config())
        .await
        .expect("starts");
    let moving = start_node_on(&own_first(2), "moving", test_config())
        .await
        .expect("starts");
    for (node, server) in [(&publisher, 0), (&survivor, 1), (&moving, 2)] {
        assert_eq!(
            node.transport.connected_to().as_deref(),
            Some(addrs[server].as_str()),
            "{} starts on its own server",
            node.id
        );
    }
    let survivor_account = Account::local(&survivor.emitter);
    let moving_account = Account::local(&moving.emitter);
    // Through the routes: each subscriber's listener is counted by the publisher.
    within(
        "the publisher to count both subscribers across the cluster",
        publisher.emitter.wait_for_listeners(LOAD, 2),
    )
    .await
    .expect("open");

    let killed_at = std::sync::Mutex::new(None);
    let figures = balances_across_an_outage(
        "the server of one subscriber is killed (SIGKILL), of three",
        &publisher.emitter,
        moving_account,
        async {
            tokio::task::block_in_place(|| servers[2].kill());
            *killed_at.lock().expect("not poisoned") = Some(Instant::now());
        },
    )
    .await;
    // With recovery (on by default), what the moving subscriber missed while it failed
    // over came back from the publisher's window: nothing is lost.
    assert_eq!(
        (figures.received, figures.reported),
        (figures.sent, 0),
        "every event received, none lost: {figures:?}"
    );
    let moved_to = moving.transport.connected_to();
    assert!(
        moved_to
            .as_ref()
            .is_some_and(|a| *a != addrs[2] && addrs.contains(a)),
        "the subscriber moved to a live server: {moved_to:?}"
    );
    within(
        "the publisher to count both subscribers again",
        publisher.emitter.wait_for_listeners(LOAD, 2),
    )
    .await
    .expect("open");
    let counted_again_in = killed_at
        .lock()
        .expect("not poisoned")
        .map(|at| at.elapsed());
    let mut survivor_account = survivor_account;
    let seen = survivor_account
        .settle("the survivor's account to balance", |_| figures.sent)
        .await;
    assert_eq!(
        seen.received + seen.reported,
        figures.sent,
        "the survivor: received {} + reported {} != sent {}",
        seen.received,
        seen.reported,
        figures.sent
    );
    println!(
        "{figures:?}; moved to {moved_to:?}; counted again within {counted_again_in:?}; survivor {seen:?}"
    );
    for node in [publisher, survivor, moving] {
        within("an emitter to close", node.emitter.close()).await;
    }
}
