//! Per-pattern subscriptions: the server carries to a node only the events its patterns
//! may want (and every control subject), stops once a pattern is given up, and a name's
//! sequence marks travel on the name's own subject, after its events.

mod support;

use bytes::Bytes;
use demitter_conformance::nats_server::{NatsServer, available};
use demitter_conformance::support::within;
use demitter_conformance::test_config;
use demitter_core::protocol::Control;
use demitter_core::{ControlFrame, Destination, Frame, Incoming, NodeId, Pattern, Transport};
use demitter_nats::NatsTransport;
use futures_util::StreamExt as _;
use support::{PREFIX, config, start_node};

/// A heartbeat of `node`'s, as its emitter would send one.
fn heartbeat(node: &NodeId) -> Frame {
    Frame::Control(ControlFrame {
        source: node.clone(),
        body: Control::Heartbeat {
            epoch: 1,
            version: 1,
            moved: 0,
        }
        .encode(),
    })
}

/// Has `transport` (node `node`) publish a heartbeat and waits until `presence` hears it:
/// the transport makes its subscriptions before it publishes what was queued after
/// `subscribe`, so this proves they are in place on the server.
async fn settled(transport: &NatsTransport, node: &NodeId, presence: &mut async_nats::Subscriber) {
    transport
        .send(heartbeat(node), Destination::All)
        .expect("queued");
    within("the node's heartbeat", presence.next())
        .await
        .expect("subscribed");
}

/// Waits until the server has handled everything `plain` sent so far: a plain client
/// hears its own messages, and the server handles a connection's messages in order.
async fn fence(plain: &async_nats::Client) {
    let mut echo = plain.subscribe("fence").await.expect("subscribes");
    plain
        .publish("fence", Bytes::from_static(b"fence"))
        .await
        .expect("queued");
    within("the fence's echo", echo.next())
        .await
        .expect("subscribed");
}

/// The frames of a message, read as `docs/wire-format.md` says: a frame alone, or a batch
/// (`0xC1`, then records of a big-endian `u32` length, a kind byte 0 and a frame).
fn frames_of(payload: Bytes) -> Vec<Frame> {
    if payload[0] != 0xc1 {
        return vec![Frame::decode(payload, 1 << 20).expect("a frame")];
    }
    let mut frames = Vec::new();
    let mut at = 1;
    while at < payload.len() {
        let len = u32::from_be_bytes(payload[at..at + 4].try_into().expect("4 bytes"));
        let len = usize::try_from(len).expect("fits");
        assert_eq!(payload[at + 4], 0, "a frame record");
        let frame = payload.slice(at + 5..at + 4 + len);
        frames.push(Frame::decode(frame, 1 << 20).expect("a frame"));
        at += 4 + len;
    }
    frames
}

/// The next frame `transport` receives, or the report in its place.
async fn next_incoming(transport: &NatsTransport) -> Incoming {
    within("the next message", transport.recv())
        .await
        .expect("open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_receives_only_what_its_patterns_may_want() {
    if !available("a_node_receives_only_what_its_patterns_may_want") {
        return;
    }
    let server = tokio::task::block_in_place(NatsServer::start);
    let node = NodeId::new("bystander").expect("valid");
    let transport = NatsTransport::connect(config(&server.addr()))
        .await
        .expect("connects");
    let plain = within("a plain client", async_nats::connect(server.addr()))
        .await
        .expect("connects");
    let mut presence = plain
        .subscribe(format!("{PREFIX}.c.bystander"))
        .await
        .expect("subscribes");
    fence(&plain).await;
    let wanted = Pattern::new("wanted.+").expect("valid");
    transport.subscribe(&wanted);
    settled(&transport, &node, &mut presence).await;

    let publish = |subject: String| {
        let plain = plain.clone();
        async move {
            plain
                .publish(subject, Bytes::from_static(b"\x07"))
                .await
                .expect("queued");
        }
    };
    for _ in 0..100 {
        publish(format!("{PREFIX}.e.plain.unwanted")).await;
    }
    publish(format!("{PREFIX}.e.plain.wanted.one")).await;
    plain.flush().await.expect("flushed");
    let Incoming::Frame {
        frame: Frame::Event(event),
        ..
    } = next_incoming(&transport).await
    else {
        panic!("an event first");
    };
    assert_eq!(&*event.name, "wanted.one", "none of the unwanted events");

    // Given up, the pattern's events stop; control subjects still arrive.
    transport.unsubscribe(&wanted);
    settled(&transport, &node, &mut presence).await;
    publish(format!("{PREFIX}.e.plain.wanted.two")).await;
    publish(format!("{PREFIX}.c.plain")).await;
    plain.flush().await.expect("flushed");
    let Incoming::Report(report) = next_incoming(&transport).await else {
        panic!("the control subject's message, not the given-up event");
    };
    assert!(
        report.message.contains("dropped a message from NATS"),
        "{report}"
    );
    transport.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_names_marks_follow_its_events_on_its_subject() {
    if !available("a_names_marks_follow_its_events_on_its_subject") {
        return;
    }
    let server = tokio::task::block_in_place(NatsServer::start);
    let plain = within("a plain client", async_nats::connect(server.addr()))
        .await
        .expect("connects");
    let mut orders = plain
        .subscribe(format!("{PREFIX}.e.shop.orders"))
        .await
        .expect("subscribes");
    fence(&plain).await;
    let shop = start_node(&server.addr(), "shop", test_config())
        .await
        .expect("starts");
    for n in 0..3u32 {
        shop.emitter.emit("orders", &n).await.expect("emits");
    }
    let mut kinds = Vec::new();
    let mark = within("three events, then the mark", async {
        loop {
            let message = orders.next().await.expect("subscribed");
            for frame in frames_of(message.payload) {
                match frame {
                    Frame::Event(event) => kinds.push(event.seq),
                    Frame::Control(control) => {
                        return Control::decode(&control.body).expect("a control message");
                    }
                }
            }
        }
    })
    .await;
    assert_eq!(kinds, [1, 2, 3], "the events, in order, before their mark");
    let Control::Sequences { last, .. } = mark else {
        panic!("a sequence mark: {mark:?}");
    };
    assert_eq!(
        last.iter()
            .map(|m| (m.name.as_str(), m.seq))
            .collect::<Vec<_>>(),
        [("orders", 3)],
        "one mark, for this name alone"
    );
    shop.emitter.close().await;
}
