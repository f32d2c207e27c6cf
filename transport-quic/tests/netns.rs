//! Three hosts in three network namespaces, joined by veth links to a bridge; one host is
//! cut off by taking its link down and brought back. Counts drop and recover, events flow
//! again, and what was emitted during the cut comes back from the sender's window, in
//! order (or, under load, is accounted for exactly).
//!
//! Needs root and `ip` (iproute2). Where namespaces cannot be made, the test says so in
//! its output and checks nothing else.

#![cfg(target_os = "linux")]

mod support;

use std::net::SocketAddr;

use demitter_conformance::faults::{Account, balances_across_an_outage};
use demitter_conformance::netns::Hosts;
use demitter_conformance::support::{next_event, wait_for_count, within};
use demitter_core::{PEER_DOWN, PEER_UP, PeerChange};
use demitter_quic::{Hood, QuicTransport};
use support::{MESH_TIMEOUT, Node, fast_config, fast_config_emitter};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_cut_off_and_brought_back_gets_what_it_missed_in_order() {
    let Some(hosts) = Hosts::or_skip(Hosts::make(&["a", "b", "c"])) else {
        return;
    };
    let hood = Hood::create("netns").expect("hood");
    let addr = |host: &str| SocketAddr::from((hosts.host_ip(host), 4816));
    let start = |host: &str, seed: Option<SocketAddr>| {
        let identity = hood.issue(&format!("node-{host}")).expect("issues");
        let mut config = fast_config(identity.clone());
        config.seeds = seed.iter().map(ToString::to_string).collect();
        let transport =
            QuicTransport::with_socket(config, hosts.udp_socket(host, addr(host))).expect("starts");
        Node::new(transport, &identity, fast_config_emitter()).expect("emitter")
    };
    // b and c know only a: gossip introduces them to each other across the bridge.
    let a = start("a", None);
    let b = start("b", Some(addr("a")));
    let c = start("c", Some(addr("a")));
    for node in [&a, &b, &c] {
        tokio::time::timeout(MESH_TIMEOUT, node.transport.wait_for_peers(2))
            .await
            .unwrap_or_else(|_| panic!("{} did not join the mesh", node.transport.name()));
    }

    let mut at_c = c.emitter.events::<u32>("cut.x").expect("valid");
    let _at_b = b.emitter.events::<u32>("cut.x").expect("valid");
    let mut c_downs = c.emitter.events::<PeerChange>(PEER_DOWN).expect("valid");
    let mut c_ups = c.emitter.events::<PeerChange>(PEER_UP).expect("valid");
    wait_for_count(&a.emitter, "cut.x", 2).await;
    for n in 1..=10u32 {
        a.emitter.emit("cut.x", &n).await.expect("emits");
    }
    for n in 1..=10u32 {
        assert_eq!(
            next_event(&mut at_c, "an event before the cut").await.data,
            n
        );
    }

    hosts.set_link("c", false);
    // c's listener leaves the count when c is cut off.
    wait_for_count(&a.emitter, "cut.x", 1).await;
    loop {
        let down = next_event(&mut c_downs, "c notices it lost the others").await;
        if down.data.peer == "node-a" {
            break;
        }
    }
    for n in 11..=30u32 {
        a.emitter.emit("cut.x", &n).await.expect("emits");
    }

    demitter_conformance::support::drain(&mut c_ups);
    hosts.set_link("c", true);
    // c's listener counts again after the link is back.
    wait_for_count(&a.emitter, "cut.x", 2).await;
    a.emitter.emit("cut.x", &31u32).await.expect("emits");
    // The 20 events of the cut come back from a's window (recovery is on by default),
    // before the first one after it.
    for n in 11..=31u32 {
        assert_eq!(
            next_event(&mut at_c, "the events of the cut, then the next")
                .await
                .data,
            n
        );
    }
    let counts = c.emitter.error_counts();
    assert_eq!((counts.gap, counts.recovered), (0, 20), "{counts:?}");
    for node in [&a, &b, &c] {
        node.emitter.close().await;
    }
    drop(hosts);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_cut_off_under_load_recovers_and_reports_its_loss() {
    let Some(hosts) = Hosts::or_skip(Hosts::make(&["pub", "sub"])) else {
        return;
    };
    let hood = Hood::create("netns-load").expect("hood");
    let addr = |host: &str| SocketAddr::from((hosts.host_ip(host), 4816));
    let start = |host: &str, seed: Option<SocketAddr>| {
        let mut config = fast_config(hood.issue(&format!("node-{host}")).expect("issues"));
        config.seeds = seed.iter().map(ToString::to_string).collect();
        let transport =
            QuicTransport::with_socket(config, hosts.udp_socket(host, addr(host))).expect("starts");
        let transport = std::sync::Arc::new(transport);
        let shared: std::sync::Arc<dyn demitter_core::Transport> = transport.clone();
        let emitter =
            demitter_core::Emitter::from_shared(shared, fast_config_emitter()).expect("emitter");
        (emitter, transport)
    };
    let (publisher, publishing) = start("pub", None);
    let (subscriber, subscribing) = start("sub", Some(addr("pub")));
    for transport in [&publishing, &subscribing] {
        tokio::time::timeout(MESH_TIMEOUT, transport.wait_for_peers(1))
            .await
            .unwrap_or_else(|_| panic!("{} did not join the mesh", transport.name()));
    }
    let figures = balances_across_an_outage(
        "the subscriber's host is cut off for 1 s",
        &publisher,
        Account::local(&subscriber),
        hosts.cut_off("sub", std::time::Duration::from_secs(1)),
    )
    .await;
    println!("{figures:?}");
    within("the subscriber to close", subscriber.close()).await;
    within("the publisher to close", publisher.close()).await;
    drop(hosts);
}
