//! The forwarder with peers from the `zeromq` crate (zmq.rs), an independent ZMTP
//! implementation: Demitter-format messages go from a zmq.rs PUB to a zmq.rs SUB.

use std::time::Duration;

use demitter_forwarder::{Forwarder, ForwarderConfig};
use zeromq::{PubSocket, Socket, SocketRecv, SocketSend, SubSocket, ZmqMessage};

const WAIT: Duration = Duration::from_secs(10);

fn demitter_message(topic: &str, n: u32) -> ZmqMessage {
    let mut message = ZmqMessage::from(topic.to_owned());
    message.push_back(b"zmq.rs-origin".to_vec().into());
    message.push_back(n.to_be_bytes().to_vec().into());
    message
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zmq_rs_pub_and_sub_talk_through_the_forwarder() {
    let forwarder = Forwarder::bind(ForwarderConfig::loopback_free_ports())
        .await
        .expect("binds");
    let mut sub = SubSocket::new();
    sub.connect(&format!("tcp://{}", forwarder.xpub_addr()))
        .await
        .expect("sub connects");
    sub.subscribe("s:interop.").await.expect("subscribes");
    let mut publisher = PubSocket::new();
    publisher
        .connect(&format!("tcp://{}", forwarder.xsub_addr()))
        .await
        .expect("pub connects");
    assert!(
        tokio::time::timeout(
            WAIT,
            forwarder.wait_until(|s| s.publishers == 1 && s.topics == 1)
        )
        .await
        .expect("both sides registered")
    );
    // A PUB drops what it sends before it has the subscription (ZeroMQ's "slow joiner"),
    // and nothing tells us when it has it: probe, paced, until the first probe arrives.
    let first = tokio::time::timeout(WAIT, async {
        let mut probe = tokio::time::interval(Duration::from_millis(20));
        loop {
            probe.tick().await;
            publisher
                .send(demitter_message("s:interop.probe", 0))
                .await
                .expect("sends");
            if let Ok(Ok(message)) =
                tokio::time::timeout(Duration::from_millis(20), sub.recv()).await
            {
                return message;
            }
        }
    })
    .await
    .expect("a probe arrives");
    assert_eq!(first.len(), 3, "Demitter's three frames");
    // Drain probes still in flight, then the real sequence must arrive whole and in order.
    for n in 1..=100u32 {
        publisher
            .send(demitter_message("s:interop.data", n))
            .await
            .expect("sends");
    }
    publisher
        .send(demitter_message("s:other.ignored", 0))
        .await
        .expect("sends");
    let mut next = 1u32;
    while next <= 100 {
        let message = tokio::time::timeout(WAIT, sub.recv())
            .await
            .expect("arrives")
            .expect("receives");
        let topic = message.get(0).expect("topic frame");
        if &topic[..] == b"s:interop.probe" {
            continue;
        }
        assert_eq!(&topic[..], b"s:interop.data");
        assert_eq!(&message.get(1).expect("origin")[..], b"zmq.rs-origin");
        let n = u32::from_be_bytes(
            message.get(2).expect("payload")[..]
                .try_into()
                .expect("4 bytes"),
        );
        assert_eq!(n, next, "in order, none lost");
        next += 1;
    }
    let stats = forwarder.stats();
    assert_eq!(stats.dropped, 0);
    forwarder.close().await;
}
