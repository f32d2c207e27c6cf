//! Multicast DNS discovery: nodes of one hood that know no address at all find each other
//! on the local network (here: loopback, on a private mDNS port) and form a mesh.

mod support;

use std::net::UdpSocket;
use std::sync::Arc;
use std::time::Duration;

use demitter_core::{Emitter, Event, Transport};
use demitter_quic::{Hood, MdnsDiscovery, QuicTransport};
use support::{MESH_TIMEOUT, fast_config, fast_config_emitter};
use tokio::time::timeout;

/// A UDP port nothing else uses, for this test's mDNS traffic only.
fn free_udp_port() -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP port");
    socket.local_addr().expect("local address").port()
}

fn mdns_node(hood: &Hood, name: &str, mdns_port: u16) -> Arc<QuicTransport> {
    let mut config = fast_config(hood.issue(name).expect("issue"));
    config.gossip = false;
    config
        .discovery
        .push(Arc::new(MdnsDiscovery::new().with_port(mdns_port)));
    Arc::new(QuicTransport::bind(config).expect("bind"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_without_addresses_find_each_other_by_mdns() {
    let hood = Hood::create("mdns-test").expect("hood");
    let port = free_udp_port();
    let nodes: Vec<Arc<QuicTransport>> = ["alice", "bob", "carol"]
        .iter()
        .map(|name| mdns_node(&hood, name, port))
        .collect();
    for node in &nodes {
        let formed = timeout(MESH_TIMEOUT, node.wait_for_peers(2)).await;
        assert!(
            formed.is_ok(),
            "{} found {:?} by mDNS, expected both others",
            node.name(),
            node.connected_peers()
        );
    }
    let names: Vec<String> = nodes[0]
        .connected_peers()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(names, ["bob", "carol"]);

    let emitters: Vec<Emitter> = nodes
        .iter()
        .map(|node| {
            let shared: Arc<dyn Transport> = Arc::clone(node) as Arc<dyn Transport>;
            Emitter::from_shared(shared, fast_config_emitter()).expect("emitter")
        })
        .collect();
    let heard = emitters[2].once::<u32>("found.+").expect("listen");
    timeout(
        MESH_TIMEOUT,
        emitters[0].wait_for_listeners("found.by-mdns", 1),
    )
    .await
    .expect("carol's listener reaches alice")
    .expect("count");
    emitters[0]
        .emit("found.by-mdns", &7u32)
        .await
        .expect("emit");
    let event: Event<u32> = timeout(Duration::from_secs(5), heard)
        .await
        .expect("the event arrives")
        .expect("decodes");
    assert_eq!((event.data, &*event.source), (7, "alice"));
    for emitter in emitters {
        emitter.close().await;
    }
}
