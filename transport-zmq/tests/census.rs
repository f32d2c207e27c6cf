//! Joining through this project's forwarder: it tells a joining node how many nodes are on
//! the bus, so the node is ready once it has heard them all, without waiting out a
//! heartbeat interval of its own.

mod support;

use std::time::Duration;

use demitter_core::{Emitter, EmitterConfig};
use demitter_zmq::ZmqTransport;
use support::{emitter_on, fast_config};

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joining_node_is_ready_once_it_heard_everyone_the_forwarder_counted() {
    let (forwarder, xsub, xpub) = support::forwarder_on([127, 0, 0, 1].into()).await;
    let mut listeners = Vec::new();
    let mut nodes = Vec::new();
    for _ in 0..2 {
        let node = emitter_on(fast_config(&xsub, &xpub));
        let listener = node.events::<u32>("census.+").expect("valid");
        tokio::time::timeout(WAIT, listener.subscribed())
            .await
            .expect("in time")
            .expect("subscribed");
        listeners.push(listener);
        nodes.push(node);
    }
    // Its own heartbeat every minute: by time alone it would be ready only after 75 s.
    let slow =
        EmitterConfig::default().with_heartbeat(Duration::from_secs(60), Duration::from_secs(300));
    let joining = Emitter::with_config(ZmqTransport::connect(fast_config(&xsub, &xpub)), slow)
        .expect("emitter");
    tokio::time::timeout(WAIT, joining.ready())
        .await
        .expect("ready long before a heartbeat interval of its own")
        .expect("ready");
    assert_eq!(joining.peers().len(), 2, "it heard both");
    let delivery = joining.emit("census.x", &7u32).await.expect("emits");
    assert_eq!(
        (delivery.remote, delivery.unheard, delivery.ready),
        (2, 0, true)
    );
    for listener in &mut listeners {
        let event = tokio::time::timeout(WAIT, listener.recv())
            .await
            .expect("in time")
            .expect("open")
            .expect("decodes");
        assert_eq!(event.data, 7);
    }
    joining.close().await;
    for node in nodes {
        node.close().await;
    }
    forwarder.close().await;
}

/// Two nodes joining at once (issue 31: each could be ready on a census taken before the
/// other's hello reached the forwarder, without having heard the other): the census each
/// goes by is taken after its own hello passed the forwarder, so at least one of the two
/// counts the other and is ready only once it has heard it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_nodes_joining_together_one_waits_for_the_other() {
    let (forwarder, xsub, xpub) = support::forwarder_on([127, 0, 0, 1].into()).await;
    // No heartbeat within the test: only the census and the hellos can make them ready.
    let slow =
        EmitterConfig::default().with_heartbeat(Duration::from_secs(60), Duration::from_secs(300));
    let a = Emitter::with_config(
        ZmqTransport::connect(fast_config(&xsub, &xpub)),
        slow.clone(),
    )
    .expect("emitter");
    let b = Emitter::with_config(ZmqTransport::connect(fast_config(&xsub, &xpub)), slow)
        .expect("emitter");
    let (ready_a, ready_b) =
        tokio::time::timeout(WAIT, async { tokio::join!(a.ready(), b.ready()) })
            .await
            .expect("both ready in time");
    ready_a.expect("a ready");
    ready_b.expect("b ready");
    let (a_heard_b, b_heard_a) = (a.peers().contains(b.id()), b.peers().contains(a.id()));
    assert!(
        a_heard_b || b_heard_a,
        "neither had heard the other when both were ready"
    );
    a.close().await;
    b.close().await;
    forwarder.close().await;
}
