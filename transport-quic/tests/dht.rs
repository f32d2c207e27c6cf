//! DHT discovery on a private DHT on loopback: nodes that know only a local bootstrap node
//! ([`DhtNode`]) find each other, and nothing else.
//!
//! Every socket here (the QUIC nodes', their DHT nodes', the bootstrap node's) is bound to
//! 127.0.0.1, and a socket bound to loopback cannot send a packet off this machine: the
//! public DHT is never touched.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use demitter_conformance::support::{next_event, wait_for_count, within};
use demitter_core::{Emitter, ErrorKind, Transport};
use demitter_quic::dht::{DhtBootstrap, DhtStatus};
use demitter_quic::{DhtDiscovery, DhtNode, Hood, PeerIdentity, QuicTransport};
use support::{fast_config, fast_config_emitter};
use tokio::sync::watch;

/// The bound this test holds a node to for finding the others through a local DHT.
const FIND_BOUND: Duration = Duration::from_secs(10);

struct DhtPeer {
    emitter: Emitter,
    transport: Arc<QuicTransport>,
    status: watch::Receiver<DhtStatus>,
}

/// A node that knows only `bootstrap`, with gossip off, so that every connection it makes
/// comes from the DHT.
fn start(identity: &PeerIdentity, bootstrap: &str) -> DhtPeer {
    let dht = DhtDiscovery::new(DhtBootstrap::Nodes(vec![bootstrap.to_owned()]))
        .with_lookup_interval(Duration::from_millis(200), Duration::from_secs(1));
    let status = dht.status();
    let mut config = fast_config(identity.clone()).with_dht(dht);
    config.gossip = false;
    let transport = Arc::new(QuicTransport::bind(config).expect("starts"));
    let shared: Arc<dyn Transport> = transport.clone();
    DhtPeer {
        emitter: Emitter::from_shared(shared, fast_config_emitter()).expect("emitter"),
        transport,
        status,
    }
}

/// `n` nodes of `hood` named `node-0`…, once each has found the others.
async fn start_mesh(hood: &Hood, n: usize, bootstrap: &str) -> Vec<DhtPeer> {
    let nodes: Vec<DhtPeer> = (0..n)
        .map(|i| {
            start(
                &hood.issue(&format!("node-{i}")).expect("issues"),
                bootstrap,
            )
        })
        .collect();
    for node in &nodes {
        wait_for_peers(node, n - 1).await;
    }
    nodes
}

async fn local_dht() -> (DhtNode, String) {
    let node = DhtNode::start("127.0.0.1:0".parse().expect("addr"), &[])
        .await
        .expect("a local DHT node starts");
    let addr = node.local_addr().to_string();
    (node, addr)
}

async fn wait_for_peers(node: &DhtPeer, n: usize) {
    tokio::time::timeout(FIND_BOUND, node.transport.wait_for_peers(n))
        .await
        .unwrap_or_else(|_| {
            panic!(
                "{} found {:?} only within {FIND_BOUND:?} (DHT: {:?})",
                node.transport.name(),
                node.transport.connected_peers(),
                *node.status.borrow()
            )
        });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_that_know_only_a_local_dht_node_form_a_mesh_and_see_a_fourth_join() {
    let (_dht, bootstrap) = local_dht().await;
    let hood = Hood::create("dht").expect("hood");
    let started = Instant::now();
    let mut nodes = start_mesh(&hood, 3, &bootstrap).await;
    println!(
        "three nodes found each other through the DHT in {} ms",
        started.elapsed().as_millis()
    );

    // Events flow between them: each hears the other two.
    let mut streams: Vec<_> = nodes
        .iter()
        .map(|n| n.emitter.events::<String>("dht.hello").expect("valid"))
        .collect();
    for node in &nodes {
        wait_for_count(&node.emitter, "dht.hello", 3).await;
    }
    for node in &nodes {
        let me = node.transport.name().to_string();
        node.emitter.emit("dht.hello", &me).await.expect("emits");
    }
    for (i, stream) in streams.iter_mut().enumerate() {
        let mut sources = Vec::new();
        for _ in 0..3 {
            let event = next_event(stream, "a greeting").await;
            assert_eq!(*event.source, event.data, "each says its own name");
            sources.push(event.data);
        }
        sources.sort();
        assert_eq!(sources, ["node-0", "node-1", "node-2"], "at node-{i}");
    }

    // A fourth node joins: everyone finds it.
    let joined = Instant::now();
    nodes.push(start(&hood.issue("node-3").expect("issues"), &bootstrap));
    for node in &nodes {
        wait_for_peers(node, 3).await;
    }
    println!(
        "a fourth node was connected to all three in {} ms",
        joined.elapsed().as_millis()
    );

    // Who the neighbours are: each proven by its certificate, at the address it listens on.
    let _fourth = nodes[3]
        .emitter
        .events::<String>("dht.hello")
        .expect("valid");
    wait_for_count(&nodes[0].emitter, "dht.hello", 4).await;
    let seen: Vec<(String, Option<String>, Option<String>, usize)> = nodes[0]
        .emitter
        .peer_info()
        .into_iter()
        .map(|p| {
            let proven = p.proven_name.map(|n| n.to_string());
            (p.id.to_string(), proven, p.address, p.patterns)
        })
        .collect();
    let expected: Vec<(String, Option<String>, Option<String>, usize)> = nodes[1..]
        .iter()
        .map(|n| {
            let name = n.transport.name().to_string();
            let addr = n.transport.local_addr().to_string();
            (name.clone(), Some(name), Some(addr), 1)
        })
        .collect();
    assert_eq!(seen, expected);
    for node in &nodes {
        assert_eq!(node.emitter.error_counts().refused, 0, "nobody was refused");
        within("a node to close", node.emitter.close()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_of_another_hood_is_never_dialled() {
    let (_dht, bootstrap) = local_dht().await;
    let (ours, theirs) = (
        Hood::create("ours").expect("hood"),
        Hood::create("theirs").expect("hood"),
    );
    let stranger = start(&theirs.issue("stranger").expect("issues"), &bootstrap);
    let mut stranger_status = stranger.status.clone();
    within(
        "the stranger to announce itself",
        stranger_status.wait_for(|s| s.announced),
    )
    .await
    .expect("running");
    let nodes = start_mesh(&ours, 2, &bootstrap).await;
    // Two more lookups each, all made after every node had announced itself.
    for node in nodes.iter().chain([&stranger]) {
        let mut status = node.status.clone();
        let done = status.borrow().lookups;
        within(
            "two more lookups",
            status.wait_for(|s| s.lookups >= done + 2),
        )
        .await
        .expect("running");
        let found = status.borrow().found;
        // Each of ours finds the other; the stranger finds nobody.
        let expected = usize::from(node.transport.name().as_str() != "stranger");
        assert_eq!(
            found,
            expected,
            "{} found only its own hood's nodes",
            node.transport.name()
        );
    }
    assert!(stranger.transport.connected_peers().is_empty());
    for node in nodes.iter().chain([&stranger]) {
        assert_eq!(
            node.emitter.error_counts().refused,
            0,
            "{}: nobody dialled another hood",
            node.transport.name()
        );
        within("a node to close", node.emitter.close()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dht_node_that_is_down_is_reported_not_waited_on() {
    // A port with nothing behind it.
    let closed = std::net::UdpSocket::bind("127.0.0.1:0").expect("a port");
    let down = closed.local_addr().expect("bound").to_string();
    drop(closed);
    let hood = Hood::create("dht-down").expect("hood");
    let node = start(&hood.issue("alone").expect("issues"), &down);
    let mut errors = node.emitter.errors();
    let report = within("a report that the DHT cannot be joined", errors.recv())
        .await
        .expect("open");
    assert_eq!(report.kind, ErrorKind::Network, "{report}");
    assert!(
        report.message.contains("cannot announce this node")
            && report.message.contains(&down)
            && report.message.contains("demitter dht"),
        "{report}"
    );
    assert!(!node.status.borrow().announced);
    within("the node to close", node.emitter.close()).await;
}
