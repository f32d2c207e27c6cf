//! Plain NATS clients on the same bus, with nothing of demitter but the subject mapping and
//! the frame layout of `docs/wire-format.md`: a plain publisher's MessagePack message on an
//! event subject reaches the emitters' listeners as an unsequenced event, what does not
//! fit the mapping is reported, and a plain subscriber reads the emitters' events.

mod support;

use std::collections::HashMap;

use bytes::Bytes;
use demitter_conformance::nats_server::{NatsServer, available};
use demitter_conformance::support::{next_event, next_report, within};
use demitter_conformance::test_config;
use demitter_core::ErrorKind;
use futures_util::StreamExt as _;
use support::{PREFIX, start_node};

/// `{"id": 7}` as any MessagePack library writes it.
const ID_7: &[u8] = b"\x81\xa2id\x07";

/// Makes `listen` listen on node `id`, then waits until the node's subscription for
/// `pattern` is in place on the server: a node subscribes to a new listener's pattern
/// before it announces the listener on the same connection, so the announcement (a
/// control frame whose MessagePack holds `"pattern": PATTERN`) proves it.
async fn listening<T>(
    plain: &async_nats::Client,
    id: &str,
    pattern: &str,
    listen: impl FnOnce() -> T,
) -> T {
    let mut presence = plain
        .subscribe(format!("{PREFIX}.c.{id}"))
        .await
        .expect("subscribes");
    plain.flush().await.expect("flushed");
    // The presence subscription must be in place before the announcement: a frame of
    // the node's, heard, proves it (it sends heartbeats).
    within(&format!("{id}'s presence"), presence.next())
        .await
        .expect("subscribed");
    let short = u8::try_from(pattern.len()).expect("a short pattern");
    assert!(short < 32, "a MessagePack fixstr");
    let mut announced = b"\xa7pattern".to_vec();
    announced.push(0xa0 | short);
    announced.extend_from_slice(pattern.as_bytes());
    let listener = listen();
    within(&format!("{id}'s listener on {pattern}"), async {
        while let Some(message) = presence.next().await {
            if message
                .payload
                .windows(announced.len())
                .any(|w| w == announced)
            {
                return;
            }
        }
        panic!("the presence subscription ended");
    })
    .await;
    listener
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_publishers_message_is_an_unsequenced_event() {
    if !available("a_plain_publishers_message_is_an_unsequenced_event") {
        return;
    }
    let server = tokio::task::block_in_place(NatsServer::start);
    let node = start_node(&server.addr(), "listener", test_config())
        .await
        .expect("starts");
    let mut errors = node.emitter.errors();
    let plain = within(
        "a plain client connects",
        async_nats::connect(server.addr()),
    )
    .await
    .expect("connects");
    let mut events = listening(&plain, "listener", "orders.+", || {
        node.emitter
            .events::<HashMap<String, u32>>("orders.+")
            .expect("valid")
    })
    .await;
    let publish = |subject: String, payload: &'static [u8]| {
        let plain = plain.clone();
        async move {
            plain
                .publish(subject, Bytes::from_static(payload))
                .await
                .expect("queued");
            plain.flush().await.expect("flushed");
        }
    };

    publish(format!("{PREFIX}.e.shop-1.orders.eu~20west"), ID_7).await;
    let event = next_event(&mut events, "the plain event").await;
    assert_eq!(
        &*event.name, "orders.eu west",
        "the name the subject spells"
    );
    assert_eq!(event.source.as_str(), "shop-1", "the subject's sender");
    assert_eq!(event.seq, 0, "unsequenced");
    assert_eq!(event.data.get("id"), Some(&7));

    // What does not fit the mapping is reported, and the node keeps serving. (A `#`
    // listener's subscription hears `$` names, which no pattern matches; the control
    // subscription hears every control subject.)
    let _everything = listening(&plain, "listener", "#", || {
        node.emitter
            .events::<HashMap<String, u32>>("#")
            .expect("valid")
    })
    .await;
    for (subject, why) in [
        (format!("{PREFIX}.e.shop-1.orders.a~zz"), "not spelled"),
        (format!("{PREFIX}.e.shop-1.$peer"), "system event"),
        (format!("{PREFIX}.c.shop-1"), "dropped a message from NATS"),
    ] {
        publish(subject.clone(), ID_7).await;
        let report = next_report(&mut errors, ErrorKind::Deserialization).await;
        assert!(report.message.contains(why), "{subject}: {report}");
    }
    publish(format!("{PREFIX}.e.shop-2.orders.new"), ID_7).await;
    let event = next_event(&mut events, "the next plain event").await;
    assert_eq!(
        (&*event.name, event.source.as_str()),
        ("orders.new", "shop-2")
    );
    assert_eq!(node.emitter.error_counts().deserialization, 3);
    node.emitter.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_subscriber_reads_the_emitters_events() {
    if !available("a_plain_subscriber_reads_the_emitters_events") {
        return;
    }
    let server = tokio::task::block_in_place(NatsServer::start);
    let node = start_node(&server.addr(), "shop-1", test_config())
        .await
        .expect("starts");
    let plain = within(
        "a plain client connects",
        async_nats::connect(server.addr()),
    )
    .await
    .expect("connects");
    let mut orders = plain
        .subscribe(format!("{PREFIX}.e.*.orders.>"))
        .await
        .expect("subscribes");
    // A fence: the server handles a connection's messages in order, so once the node
    // hears this plain event the subscription above is in place.
    let mut fence = listening(&plain, "shop-1", "fence", || {
        node.emitter.events::<u32>("fence").expect("valid")
    })
    .await;
    plain
        .publish(
            format!("{PREFIX}.e.plain.fence"),
            Bytes::from_static(b"\x01"),
        )
        .await
        .expect("queued");
    plain.flush().await.expect("flushed");
    next_event(&mut fence, "the fence").await;

    let mut data = HashMap::new();
    data.insert("id".to_owned(), 7u32);
    node.emitter.emit("orders.new", &data).await.expect("emits");
    let message = within("the event, on the plain subscription", orders.next())
        .await
        .expect("subscribed");
    assert_eq!(
        message.subject.as_str(),
        format!("{PREFIX}.e.shop-1.orders.new")
    );
    // The frame as docs/wire-format.md lays it out, read by hand.
    let frame = &message.payload[..];
    assert_eq!(&frame[..2], [1, 1], "version 1, an event");
    let source_len = usize::from(frame[2]);
    assert_eq!(&frame[3..3 + source_len], b"shop-1");
    let at = 3 + source_len;
    let seq = u64::from_be_bytes(frame[at + 8..at + 16].try_into().expect("8 bytes"));
    assert_eq!(seq, 1, "the first event of its name");
    let name_len = usize::from(frame[at + 16]);
    let name = &frame[at + 17..at + 17 + name_len];
    assert_eq!(name, b"orders.new");
    assert_eq!(
        &frame[at + 17 + name_len..],
        ID_7,
        "the MessagePack payload"
    );
    node.emitter.close().await;
}
