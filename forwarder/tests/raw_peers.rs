//! The forwarder against raw ZMTP peers, which see exactly what it sends.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use demitter_forwarder::{Forwarder, ForwarderConfig};
use demitter_zmq::conn::{self, Reader, Received};
use demitter_zmq::zmtp::{self, SocketType};

const WAIT: Duration = Duration::from_secs(10);

async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, f)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

async fn forwarder(queue: usize) -> Forwarder {
    Forwarder::bind(ForwarderConfig {
        subscriber_queue: queue,
        ..ForwarderConfig::loopback_free_ports()
    })
    .await
    .expect("binds")
}

async fn peer(addr: SocketAddr, ours: SocketType) -> (Reader, demitter_zmq::conn::Writer) {
    let stream = TcpStream::connect(addr).await.expect("connects");
    let (reader, writer, _) = conn::handshake(stream, ours, 1 << 20)
        .await
        .expect("handshake");
    (reader, writer)
}

async fn subscribe(writer: &mut demitter_zmq::conn::Writer, on: bool, topic: &[u8]) {
    writer
        .write_all(&zmtp::subscription(on, topic))
        .await
        .expect("writes");
}

async fn next_subscription(reader: &mut Reader) -> (bool, Bytes) {
    let frame = within("a subscription upstream", reader.next_frame())
        .await
        .expect("reads")
        .expect("open");
    zmtp::parse_subscription(&frame).unwrap_or_else(|| panic!("not a subscription: {frame:?}"))
}

async fn publish(writer: &mut demitter_zmq::conn::Writer, topic: &str, body: &[u8]) {
    let mut out = BytesMut::new();
    zmtp::put_message(&mut out, &[topic.as_bytes(), b"origin", body]);
    writer.write_all(&out).await.expect("writes");
}

async fn next_topic(reader: &mut Reader) -> Bytes {
    match within("a message", reader.next_message())
        .await
        .expect("reads")
    {
        Some(Received::Message(parts)) => parts[0].clone(),
        other => panic!("expected a message, got {other:?}"),
    }
}

#[tokio::test]
async fn first_subscribe_and_last_cancel_go_upstream() {
    let f = forwarder(1024).await;
    let (mut upstream, _pub_writer) = peer(f.xsub_addr(), SocketType::Pub).await;
    let (_a_reader, mut a) = peer(f.xpub_addr(), SocketType::Sub).await;
    let (b_reader, mut b) = peer(f.xpub_addr(), SocketType::Sub).await;
    assert!(
        within(
            "both subscribers",
            f.wait_until(|s| s.subscribers == 2 && s.publishers == 1)
        )
        .await
    );

    subscribe(&mut a, true, b"s:t").await;
    assert_eq!(
        next_subscription(&mut upstream).await,
        (true, Bytes::from_static(b"s:t"))
    );
    subscribe(&mut b, true, b"s:t").await;
    subscribe(&mut a, true, b"s:u").await;
    // The second subscriber to `s:t` sent nothing upstream: the next thing is `s:u`.
    assert_eq!(
        next_subscription(&mut upstream).await,
        (true, Bytes::from_static(b"s:u"))
    );
    subscribe(&mut a, false, b"s:t").await;
    // B still wants `s:t`; B vanishes without cancelling: the forwarder cancels for it.
    drop((b_reader, b));
    assert_eq!(
        next_subscription(&mut upstream).await,
        (false, Bytes::from_static(b"s:t"))
    );
    assert!(
        within(
            "one topic left",
            f.wait_until(|s| s.topics == 1 && s.subscribers == 1)
        )
        .await
    );
    f.close().await;
}

#[tokio::test]
async fn a_late_publisher_learns_every_topic() {
    let f = forwarder(1024).await;
    let (_r, mut a) = peer(f.xpub_addr(), SocketType::Sub).await;
    subscribe(&mut a, true, b"s:x").await;
    assert!(within("the topic", f.wait_until(|s| s.topics == 1)).await);
    let (mut upstream, _w) = peer(f.xsub_addr(), SocketType::Pub).await;
    assert_eq!(
        next_subscription(&mut upstream).await,
        (true, Bytes::from_static(b"s:x"))
    );
    f.close().await;
}

#[tokio::test]
async fn messages_reach_matching_subscribers_only_in_order() {
    let f = forwarder(1024).await;
    let (_up, mut publisher) = peer(f.xsub_addr(), SocketType::Pub).await;
    let (mut narrow, mut narrow_w) = peer(f.xpub_addr(), SocketType::Sub).await;
    let (mut wide, mut wide_w) = peer(f.xpub_addr(), SocketType::Sub).await;
    subscribe(&mut narrow_w, true, b"s:a.").await;
    subscribe(&mut wide_w, true, b"s:").await;
    assert!(
        within(
            "subscriptions",
            f.wait_until(|s| s.topics == 2 && s.publishers == 1)
        )
        .await
    );
    for topic in ["s:a.1", "s:b.1", "s:a.2", "n:42"] {
        publish(&mut publisher, topic, b"\\xc0").await;
    }
    assert_eq!(next_topic(&mut narrow).await, "s:a.1");
    assert_eq!(next_topic(&mut narrow).await, "s:a.2");
    for want in ["s:a.1", "s:b.1", "s:a.2"] {
        assert_eq!(next_topic(&mut wide).await, want);
    }
    let stats = f.stats();
    assert_eq!(
        (stats.messages_in, stats.messages_out, stats.dropped),
        (4, 5, 0)
    );
    f.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_subscriber_loses_only_its_own_messages() {
    // 80 MiB to a subscriber that never reads: more than its queue (16 MiB) and the
    // kernel's socket buffers hold, so it must lose messages.
    const N: usize = 20_000;
    const WINDOW: usize = 1_000;
    let f = forwarder(4_096).await;
    let (_up, mut publisher) = peer(f.xsub_addr(), SocketType::Pub).await;
    let (_stalled_reader, mut stalled) = peer(f.xpub_addr(), SocketType::Sub).await;
    subscribe(&mut stalled, true, b"s:").await;
    let (mut fast, mut fast_w) = peer(f.xpub_addr(), SocketType::Sub).await;
    // A prefix of its own, so that two topics means both subscriptions have arrived.
    subscribe(&mut fast_w, true, b"s:m.").await;
    assert!(
        within(
            "subscriptions",
            f.wait_until(|s| s.subscribers == 2 && s.topics == 2)
        )
        .await
    );
    // The fast subscriber acknowledges each window, so the publisher never runs more than a
    // window ahead of it: it can never overflow its own queue.
    let (acks, mut acked) = tokio::sync::mpsc::unbounded_channel();
    let reading = tokio::spawn(async move {
        for i in 0..N {
            let topic = next_topic(&mut fast).await;
            assert_eq!(topic, format!("s:m.{i}"), "every message, in order");
            if (i + 1) % WINDOW == 0 {
                let _ = acks.send(());
            }
        }
    });
    let body = vec![0x5a; 4096];
    for i in 0..N {
        publish(&mut publisher, &format!("s:m.{i}"), &body).await;
        if (i + 1) % WINDOW == 0 {
            within("the fast subscriber to keep up", acked.recv()).await;
        }
    }
    within("the fast subscriber to get everything", reading)
        .await
        .expect("reader task");
    let stats = f.stats();
    assert!(
        stats.dropped > 0,
        "the stalled subscriber lost messages: {stats:?}"
    );
    assert_eq!(
        stats.messages_out + stats.dropped,
        2 * N as u64,
        "{stats:?}"
    );
    f.close().await;
}

#[tokio::test]
async fn incompatible_and_broken_peers_are_refused_and_others_go_on() {
    let f = forwarder(1024).await;
    // A SUB on the publishers' side is refused at the handshake.
    let stream = TcpStream::connect(f.xsub_addr()).await.expect("connects");
    assert!(
        conn::handshake(stream, SocketType::Sub, 1024)
            .await
            .is_err()
    );
    // Garbage instead of a greeting.
    let mut garbage = TcpStream::connect(f.xpub_addr()).await.expect("connects");
    garbage.write_all(&[0u8; 64]).await.expect("writes");
    // A frame over the limit disconnects that publisher only.
    let (_r, mut bad) = peer(f.xsub_addr(), SocketType::Pub).await;
    let mut huge = BytesMut::new();
    zmtp::put_message(
        &mut huge,
        &[
            b"s:x",
            b"o",
            &vec![0u8; ForwarderConfig::default().max_frame_bytes + 1],
        ],
    );
    let _ = bad.write_all(&huge).await;
    assert!(
        within(
            "the bad publisher to be dropped",
            f.wait_until(|s| s.publishers == 0)
        )
        .await
    );
    let (_up, mut good) = peer(f.xsub_addr(), SocketType::Pub).await;
    let (mut sub, mut sub_w) = peer(f.xpub_addr(), SocketType::Sub).await;
    subscribe(&mut sub_w, true, b"s:").await;
    assert!(
        within(
            "a good pair",
            f.wait_until(|s| s.publishers == 1 && s.topics == 1)
        )
        .await
    );
    publish(&mut good, "s:ok", b"\\xc0").await;
    assert_eq!(next_topic(&mut sub).await, "s:ok");
    f.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_subscriber_pins_no_more_than_its_byte_budget() {
    // 64 MiB in 4,000 messages to a subscriber that never reads: its queue has room for all
    // 4,000 messages, but its byte budget (1 MiB) and the kernel's socket buffers hold far
    // less, so the forwarder must drop messages rather than hold them.
    const N: u64 = 4_000;
    let f = Forwarder::bind(ForwarderConfig {
        subscriber_queue: 65_536,
        subscriber_queue_bytes: 1 << 20,
        ..ForwarderConfig::loopback_free_ports()
    })
    .await
    .expect("binds");
    let (_up, mut publisher) = peer(f.xsub_addr(), SocketType::Pub).await;
    let (_stalled_reader, mut stalled) = peer(f.xpub_addr(), SocketType::Sub).await;
    subscribe(&mut stalled, true, b"s:").await;
    // Hears only the end marker: once it has, the forwarder has handled every message
    // before it (one publisher's messages are handled in order).
    let (mut marker, mut marker_w) = peer(f.xpub_addr(), SocketType::Sub).await;
    subscribe(&mut marker_w, true, b"end").await;
    assert!(within("the subscriptions", f.wait_until(|s| s.topics == 2)).await);
    let body = vec![0x5a; 16 * 1024];
    for i in 0..N {
        publish(&mut publisher, &format!("s:m.{i}"), &body).await;
    }
    publish(&mut publisher, "end", b"").await;
    assert_eq!(next_topic(&mut marker).await, Bytes::from_static(b"end"));
    let stats = f.stats();
    assert!(
        stats.dropped > 0,
        "the byte budget dropped messages: {stats:?}"
    );
    assert_eq!(stats.messages_in, N + 1, "{stats:?}");
    assert_eq!(stats.messages_out + stats.dropped, N + 1, "{stats:?}");
    f.close().await;
}
