//! A transport that cannot join its forwarder says so on the error channel, with the
//! cause, once a streak of failed attempts: nothing listening, a peer that is not a
//! forwarder, a CURVE key the forwarder does not allow, the wrong server key. `connect`
//! returns at once, so the first stream of `errors()` also gets what was reported before
//! it was made.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use demitter_core::{Emitter, EmitterConfig, ErrorKind, ErrorReport, ErrorStream, NodeId};
use demitter_forwarder::{Forwarder, ForwarderConfig, ForwarderCurve};
use demitter_zmq::conn::CurveClientKeys;
use demitter_zmq::curve_keys::{AllowList, CurveSecretKey};
use demitter_zmq::{ZmqConfig, ZmqTransport};
use tokio::sync::Notify;

const WAIT: Duration = Duration::from_secs(20);

fn emitter(config: ZmqConfig) -> Emitter {
    Emitter::with_config(ZmqTransport::connect(config), EmitterConfig::default())
        .expect("an emitter")
}

async fn next_report(errors: &mut ErrorStream) -> ErrorReport {
    tokio::time::timeout(WAIT, errors.recv())
        .await
        .expect("a report in time")
        .expect("the stream is open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_listening_is_reported_with_its_cause() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let addr = closed.local_addr().expect("bound").to_string();
    drop(closed);
    let emitter = emitter(ZmqConfig::new(&addr, &addr));
    let report = next_report(&mut emitter.errors()).await;
    assert_eq!(report.kind, ErrorKind::Network, "{report}");
    assert!(
        report.message.contains("cannot reach the forwarder's")
            && report.message.contains(&addr)
            && report.message.to_lowercase().contains("refused"),
        "{report}"
    );
    emitter.close().await;
}

/// A listener that takes each connection and hangs up on it, counting them.
async fn hang_up_on_everyone() -> (String, Arc<AtomicU64>, Arc<Notify>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let addr = listener.local_addr().expect("bound").to_string();
    let (accepted, each) = (Arc::new(AtomicU64::new(0)), Arc::new(Notify::new()));
    let (counter, notify) = (Arc::clone(&accepted), Arc::clone(&each));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            drop(stream);
            counter.fetch_add(1, Ordering::SeqCst);
            notify.notify_waiters();
        }
    });
    (addr, accepted, each)
}

async fn until_accepted(count: &AtomicU64, each: &Notify, at_least: u64) {
    tokio::time::timeout(WAIT, async {
        loop {
            let next = each.notified();
            if count.load(Ordering::SeqCst) >= at_least {
                return;
            }
            next.await;
        }
    })
    .await
    .expect("the transport keeps trying");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_is_not_a_forwarder_is_reported_once_a_streak() {
    let (xsub, xsub_count, xsub_each) = hang_up_on_everyone().await;
    let (xpub, xpub_count, xpub_each) = hang_up_on_everyone().await;
    let mut config = ZmqConfig::new(&xsub, &xpub);
    config.reconnect_max = Duration::from_millis(100);
    let emitter = emitter(config);
    let mut errors = emitter.errors();
    let mut sides = Vec::new();
    for _ in 0..2 {
        let report = next_report(&mut errors).await;
        assert_eq!(report.kind, ErrorKind::Network, "{report}");
        assert!(report.message.contains("hung up"), "{report}");
        sides.push(if report.message.contains(&xsub) {
            "XSUB"
        } else {
            "XPUB"
        });
    }
    sides.sort_unstable();
    assert_eq!(sides, ["XPUB", "XSUB"], "one report for each side");
    // Three more attempts on each side, each failing as the first did: no more reports.
    let (seen_xsub, seen_xpub) = (
        xsub_count.load(Ordering::SeqCst),
        xpub_count.load(Ordering::SeqCst),
    );
    until_accepted(&xsub_count, &xsub_each, seen_xsub + 3).await;
    until_accepted(&xpub_count, &xpub_each, seen_xpub + 3).await;
    let mut more = Vec::new();
    while let Some(Some(report)) = futures_util::FutureExt::now_or_never(errors.recv()) {
        more.push(report.message);
    }
    assert_eq!(
        emitter.error_counts().network,
        2,
        "the same failure again is not reported again: {more:#?}"
    );
    emitter.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_curve_key_not_allowed_and_the_wrong_server_key_are_reported() {
    let server = CurveSecretKey::generate();
    let alice = CurveSecretKey::generate();
    let allow = AllowList::parse(&format!("alice {}", alice.public_key())).expect("a list");
    let forwarder = Forwarder::bind(ForwarderConfig {
        curve: Some(ForwarderCurve::new(server.clone(), allow)),
        ..ForwarderConfig::loopback_free_ports()
    })
    .await
    .expect("binds");
    let with_keys = |name: &str, secret: &CurveSecretKey, server_key| {
        let mut config = ZmqConfig::new(
            forwarder.xsub_addr().to_string(),
            forwarder.xpub_addr().to_string(),
        );
        config.curve = Some(CurveClientKeys::new(
            NodeId::new(name).expect("an id"),
            secret.clone(),
            server_key,
        ));
        emitter(config)
    };
    for (who, emitter, cause) in [
        (
            "a key not in the allow list",
            with_keys("eve", &CurveSecretKey::generate(), server.public_key()),
            "does not allow this client's CURVE key",
        ),
        (
            "alice, with another server's key",
            with_keys("alice", &alice, CurveSecretKey::generate().public_key()),
            "is curve= the server's public key?",
        ),
    ] {
        let report = next_report(&mut emitter.errors()).await;
        assert_eq!(report.kind, ErrorKind::Network, "{who}: {report}");
        assert!(
            report.message.contains("refused this node") && report.message.contains(cause),
            "{who}: {report}"
        );
        emitter.close().await;
    }
    forwarder.close().await;
}
