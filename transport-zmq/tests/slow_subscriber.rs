//! A subscriber that never reads costs only itself: an emitter on the same forwarder still
//! gets every event, in order, while the stalled one's losses are counted.

mod raw;

use std::time::Duration;

use demitter_core::{Emitter, EmitterConfig, ListenOptions};
use demitter_forwarder::{Forwarder, ForwarderConfig};
use demitter_zmq::{ZmqConfig, ZmqTransport};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_subscriber_does_not_slow_an_emitter_down() {
    // 5,000 events of 4 KiB (20 MiB): more than the stalled subscriber's queue (256) and its
    // socket buffers hold.
    const N: u32 = 5_000;
    // Under the subscriber queue (256, for every subscriber), so the receiving emitter never
    // has more outstanding than its own queue holds.
    const WINDOW: u32 = 100;
    let forwarder = Forwarder::bind(ForwarderConfig {
        subscriber_queue: 256,
        ..ForwarderConfig::loopback_free_ports()
    })
    .await
    .expect("binds");
    let mut stalled = TcpStream::connect(forwarder.xpub_addr())
        .await
        .expect("connects");
    raw::handshake(&mut stalled, "SUB", 4).await;
    stalled
        .write_all(&raw::subscription(b"s:"))
        .await
        .expect("subscribes");

    let (xsub, xpub) = (
        forwarder.xsub_addr().to_string(),
        forwarder.xpub_addr().to_string(),
    );
    let connect = || {
        Emitter::with_config(
            ZmqTransport::connect(ZmqConfig::new(xsub.clone(), xpub.clone())),
            EmitterConfig::default(),
        )
        .expect("emitter")
    };
    let (sender, receiver) = (connect(), connect());
    let mut events = receiver
        .events_with::<serde_bytes::ByteBuf>(
            "slow.data",
            ListenOptions::default().capacity(N as usize),
        )
        .expect("valid");
    tokio::time::timeout(WAIT, sender.wait_for_listeners("slow.data", 1))
        .await
        .expect("seen")
        .expect("open");
    let payload = serde_bytes::ByteBuf::from(vec![0x5a; 4096]);
    let mut received = 0u32;
    for window in 0..N / WINDOW {
        for _ in 0..WINDOW {
            sender.emit("slow.data", &payload).await.expect("emits");
        }
        // The receiving emitter keeps up window by window: it must get every event.
        while received < (window + 1) * WINDOW {
            let event = tokio::time::timeout(WAIT, events.recv())
                .await
                .expect("every event arrives despite the stalled subscriber")
                .expect("open")
                .expect("decodes");
            received += 1;
            assert_eq!(event.seq, u64::from(received), "in order, none lost");
        }
    }
    assert_eq!(receiver.error_counts().gap, 0);
    let stats = forwarder.stats();
    assert!(
        stats.dropped > 0,
        "the stalled subscriber's losses are counted: {stats:?}"
    );
    drop(stalled);
    sender.close().await;
    receiver.close().await;
    forwarder.close().await;
}
