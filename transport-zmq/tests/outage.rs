//! Forwarder outages: a forwarder that goes silent is noticed without TCP's help, and one
//! that restarts is reported and reconnected to.

mod raw;

use std::time::Duration;

use demitter_core::{Emitter, EmitterConfig, ErrorKind};
use demitter_forwarder::{Forwarder, ForwarderConfig};
use demitter_zmq::{ZmqConfig, ZmqTransport};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(10);

fn fast_emitter(config: ZmqConfig) -> Emitter {
    Emitter::with_config(
        ZmqTransport::connect(config),
        EmitterConfig::default()
            .with_heartbeat(Duration::from_millis(50), Duration::from_millis(600)),
    )
    .expect("emitter")
}

/// Accepts ZMTP connections as `socket_type`, completes the handshake, then reads and
/// discards everything and never says a word: a forwarder that froze.
async fn black_hole(
    socket_type: &'static str,
    peer_type_len: usize,
) -> (String, mpsc::UnboundedReceiver<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let addr = listener.local_addr().expect("address").to_string();
    let (accepted, accepts) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let accepted = accepted.clone();
            tokio::spawn(async move {
                raw::handshake(&mut stream, socket_type, peer_type_len).await;
                let _ = accepted.send(());
                let mut sink = vec![0u8; 64 * 1024];
                while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
            });
        }
    });
    (addr, accepts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_forwarder_is_noticed_and_both_connections_are_remade() {
    let (xsub, mut xsub_accepts) = black_hole("XSUB", 3).await;
    let (xpub, mut xpub_accepts) = black_hole("XPUB", 3).await;
    let mut config = ZmqConfig::new(xsub, xpub);
    config.silence_timeout = Duration::from_millis(300);
    let emitter = fast_emitter(config);
    let mut errors = emitter.errors();
    for accepts in [&mut xsub_accepts, &mut xpub_accepts] {
        tokio::time::timeout(WAIT, accepts.recv())
            .await
            .expect("first connection")
            .expect("open");
    }
    let report = tokio::time::timeout(WAIT, async {
        loop {
            let report = errors.recv().await.expect("open");
            if report.kind == ErrorKind::Network {
                return report;
            }
        }
    })
    .await
    .expect("the silence is reported");
    assert!(report.message.contains("nothing arrived"), "{report}");
    for (side, accepts) in [("XSUB", &mut xsub_accepts), ("XPUB", &mut xpub_accepts)] {
        tokio::time::timeout(WAIT, accepts.recv())
            .await
            .unwrap_or_else(|_| panic!("the {side} connection is remade"))
            .expect("open");
    }
    emitter.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarder_restart_is_reported_and_traffic_resumes() {
    let any = "127.0.0.1:0".parse().expect("address");
    let config = |xsub, xpub| ForwarderConfig {
        xsub,
        xpub,
        stats_interval: None,
        ..ForwarderConfig::default()
    };
    let first = Forwarder::bind(config(any, any)).await.expect("binds");
    let (xsub, xpub) = (first.xsub_addr(), first.xpub_addr());
    let sender = fast_emitter(ZmqConfig::new(xsub.to_string(), xpub.to_string()));
    let receiver = fast_emitter(ZmqConfig::new(xsub.to_string(), xpub.to_string()));
    let mut events = receiver.events::<u32>("restart.x").expect("valid");
    let mut errors = receiver.errors();
    tokio::time::timeout(WAIT, sender.wait_for_listeners("restart.x", 1))
        .await
        .expect("seen")
        .expect("open");
    sender.emit("restart.x", &1u32).await.expect("emits");
    assert_eq!(
        tokio::time::timeout(WAIT, events.recv())
            .await
            .expect("arrives")
            .expect("open")
            .expect("decodes")
            .data,
        1
    );

    first.close().await;
    let outage = tokio::time::timeout(WAIT, async {
        loop {
            let report = errors.recv().await.expect("open");
            if report.kind == ErrorKind::Network {
                return report;
            }
        }
    })
    .await
    .expect("the outage is reported");
    assert!(outage.message.contains("lost the forwarder"), "{outage}");
    let second = Forwarder::bind(config(xsub, xpub))
        .await
        .expect("rebinds the same ports");
    assert!(
        tokio::time::timeout(
            WAIT,
            second.wait_until(|s| s.publishers == 2 && s.subscribers == 2 && s.topics == 2)
        )
        .await
        .expect("both emitters reconnect and resubscribe")
    );
    sender.emit("restart.x", &2u32).await.expect("emits");
    let event = tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("arrives")
        .expect("open")
        .expect("decodes");
    assert_eq!(event.data, 2, "traffic resumed by itself");
    sender.close().await;
    receiver.close().await;
    second.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarder_that_counts_nobody_leaves_hearing_the_bus_to_time() {
    // A proxy that never confirms subscriptions (and so gives no census): the node is
    // ready one heartbeat interval and a quarter after it gave up waiting.
    let (xsub, mut xsub_accepts) = black_hole("XSUB", 3).await;
    let (xpub, mut xpub_accepts) = black_hole("XPUB", 3).await;
    let emitter = fast_emitter(ZmqConfig::new(xsub, xpub));
    for accepts in [&mut xsub_accepts, &mut xpub_accepts] {
        tokio::time::timeout(WAIT, accepts.recv())
            .await
            .expect("connected")
            .expect("accepted");
    }
    tokio::time::timeout(WAIT, emitter.ready())
        .await
        .expect("ready by time")
        .expect("ready");
    assert_eq!(emitter.readiness().unheard, 0);
    emitter.close().await;
}
