//! The mesh's own promises: one connection per pair however peers find each other, and a
//! stalled peer that costs only its own queue.

mod support;

use std::sync::Arc;
use std::time::Duration;

use demitter_conformance::support::{next_event, wait_for_count, within};
use demitter_core::protocol::{Control, InterestEntry, Role};
use demitter_core::{ControlFrame, Emitter, ErrorKind, Frame, ListenOptions, NodeId};
use demitter_quic::wire::{KIND_FRAME, frame_record};
use demitter_quic::{Hood, QuicTransport, RawPeer};
use support::{fast_config, fast_config_emitter, start_node};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_that_dial_each_other_keep_one_connection_and_lose_nothing() {
    const N: u32 = 2_000;
    let hood = Hood::create("pairs").expect("hood");
    // Both know each other from the start, so both dial at once.
    let (ia, ib) = (
        hood.issue("a").expect("issues"),
        hood.issue("b").expect("issues"),
    );
    let sa = std::net::UdpSocket::bind("127.0.0.1:0").expect("binds");
    let sb = std::net::UdpSocket::bind("127.0.0.1:0").expect("binds");
    let (addr_a, addr_b) = (
        sa.local_addr().expect("address"),
        sb.local_addr().expect("address"),
    );
    let ta = QuicTransport::with_socket(fast_config(ia).with_seed(addr_b.to_string()), sa)
        .expect("starts");
    let tb = QuicTransport::with_socket(fast_config(ib).with_seed(addr_a.to_string()), sb)
        .expect("starts");
    let (ta, tb) = (Arc::new(ta), Arc::new(tb));
    let a = Emitter::from_shared(ta.clone(), fast_config_emitter()).expect("emitter");
    let b = Emitter::from_shared(tb.clone(), fast_config_emitter()).expect("emitter");
    within("the pair to connect", ta.wait_for_peers(1)).await;
    within("the pair to connect", tb.wait_for_peers(1)).await;

    let mut events = b
        .events_with::<u32>("pair.x", ListenOptions::default().capacity(4096))
        .expect("valid");
    wait_for_count(&a, "pair.x", 1).await;
    for n in 1..=N {
        a.emit("pair.x", &n).await.expect("emits");
    }
    // Normally every event arrives. If both dials completed within one round trip, the
    // link one of them carried is replaced and what was in flight on it is lost: then it
    // is reported, to the event, never silent.
    let mut errors = b.errors();
    let mut received = 0u64;
    let mut last = 0;
    within("every event received or reported lost", async {
        while received + b.error_counts().gap < u64::from(N) {
            tokio::select! {
                event = events.recv() => {
                    let event = event.expect("open").expect("decodes");
                    assert!(event.data > last, "in order: {} after {last}", event.data);
                    last = event.data;
                    received += 1;
                }
                // A report may complete the account.
                _ = errors.recv() => {}
            }
        }
    })
    .await;
    assert_eq!(received + b.error_counts().gap, u64::from(N));
    assert_eq!(b.error_counts().lagged, 0);
    assert_eq!(ta.connected_peers().len(), 1);
    assert_eq!(tb.connected_peers().len(), 1);
    a.close().await;
    b.close().await;
}

/// A peer of the hood that says it listens on `pattern`, then reads nothing.
async fn stalled_listener(hood: &Hood, node: std::net::SocketAddr, pattern: &str) -> RawPeer {
    let mut staller = RawPeer::connect(&hood.issue("staller").expect("issues"), node)
        .await
        .expect("connects");
    let hello = Control::Hello {
        epoch: 1,
        version: 1,
        interest: vec![InterestEntry {
            pattern: pattern.into(),
            count: 1,
            since: 0,
            role: Role::Listen,
        }],
    };
    let frame = Frame::Control(ControlFrame {
        source: NodeId::new("staller").expect("valid"),
        body: hello.encode(),
    });
    staller
        .send_raw(&frame_record(&frame))
        .await
        .expect("sends");
    staller
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_peer_costs_only_its_own_queue_and_every_drop_is_counted() {
    const N: u64 = 5_000;
    // 2 KiB events: far more than the queue and the staller's flow-control window hold.
    const PAD: usize = 2048;
    let hood = Hood::create("stall").expect("hood");
    let mut config = fast_config(hood.issue("publisher").expect("issues"));
    config.max_frame_bytes = 64 * 1024;
    config.peer_queue_bytes = 256 * 1024;
    // The stalled peer must not be declared lost while it stalls.
    config.idle_timeout = Duration::from_secs(30);
    let transport = Arc::new(QuicTransport::bind(config).expect("binds"));
    let publisher = Emitter::from_shared(
        transport.clone(),
        fast_config_emitter().with_heartbeat(Duration::from_millis(50), Duration::from_secs(30)),
    )
    .expect("emitter");
    let mut publisher_errors = publisher.errors();
    let healthy = start_node(
        &hood.issue("healthy").expect("issues"),
        &[transport.local_addr()],
        fast_config_emitter(),
    )
    .expect("starts");
    let mut delivered = healthy
        .emitter
        .events_with::<(u64, serde_bytes::ByteBuf)>(
            "stall.x",
            ListenOptions::default().capacity(2 * N as usize),
        )
        .expect("valid");

    let mut staller = stalled_listener(&hood, transport.local_addr(), "stall.x").await;
    wait_for_count(&publisher, "stall.x", 2).await;

    let pad = serde_bytes::ByteBuf::from(vec![7u8; PAD]);
    // In rounds the healthy peer keeps up with (its queue is as small as the staller's),
    // while the staller reads nothing at all.
    for round in 0..N / 100 {
        for n in round * 100 + 1..=round * 100 + 100 {
            let delivery = within("an emit, never blocked by the staller", async {
                publisher.emit("stall.x", &(n, &pad)).await
            })
            .await
            .expect("emits");
            assert_eq!(delivery.remote, 2, "both peers listen");
        }
        for n in round * 100 + 1..=round * 100 + 100 {
            let got = next_event(&mut delivered, "the healthy peer gets everything").await;
            assert_eq!(got.data.0, n);
        }
    }
    let counts = healthy.emitter.error_counts();
    assert_eq!(
        (counts.gap, counts.lagged),
        (0, 0),
        "the healthy peer lost nothing"
    );

    // The staller wakes up and reads: the publisher's queue drains, and the drops are
    // reported once it has caught up.
    let (count_tx, mut count_rx) = tokio::sync::watch::channel(0u64);
    let reader = tokio::spawn(async move {
        while let Some((kind, body)) = staller.next_record().await {
            if kind == KIND_FRAME
                && let Ok(Frame::Event(e)) = Frame::decode(body, usize::MAX)
                && &*e.name == "stall.x"
            {
                count_tx.send_modify(|n| *n += 1);
            }
        }
        staller
    });
    // Drops are reported each time the staller's queue empties after some: usually once,
    // when it catches up; but a writer kept off the CPU lets the queue fill and empty
    // during the rounds too, and then the account comes in several reports.
    let mut dropped = 0;
    within("every event the staller missed to be reported", async {
        while *count_rx.borrow_and_update() + dropped < N {
            tokio::select! {
                report = publisher_errors.recv() => {
                    let report = report.expect("open");
                    if report.kind == ErrorKind::Network && report.message.contains("`staller`") {
                        dropped += report.count;
                    }
                }
                changed = count_rx.changed() => changed.expect("reader running"),
            }
        }
    })
    .await;
    assert!(dropped > 0, "the staller's queue overflowed");
    assert_eq!(
        *count_rx.borrow() + dropped,
        N,
        "received + reported dropped == sent"
    );
    publisher.close().await;
    let staller = within("the staller's stream to end", reader)
        .await
        .expect("reader");
    staller.close().await;
    publisher.close().await;
    healthy.emitter.close().await;
}

/// A seed where nothing answers is how a node fails to join: said on `errors()` once, as
/// a network report naming the seed, while the node keeps dialing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_that_does_not_answer_is_reported_once() {
    let hood = Hood::create("silent").expect("hood");
    // A UDP port held and never read: QUIC's handshake times out there.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("a port");
    let seed = silent.local_addr().expect("bound");
    let mut quic = support::fast_config(hood.issue("alone").expect("identity"));
    quic.seeds = vec![seed.to_string()];
    quic.handshake_timeout = Duration::from_millis(300);
    let node = Emitter::new(QuicTransport::bind(quic).expect("binds")).expect("an emitter");
    let mut errors = node.errors();
    let report = within("the seed's report", errors.recv())
        .await
        .expect("open");
    assert_eq!(report.kind, ErrorKind::Network, "{report}");
    assert!(
        report
            .message
            .contains(&format!("cannot reach the peer at {seed}")),
        "{report}"
    );
    assert_eq!(report.peer.as_deref(), Some(seed.to_string().as_str()));
    node.close().await;
}
