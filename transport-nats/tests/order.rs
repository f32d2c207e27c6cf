//! A listening node's patterns change under load while the emitter's sequence marks and
//! requests (control frames, on another subscription) flow:
//! the steady listener gets every event in order, the listeners that come and go get
//! theirs in order, and nothing is reported lost.
//!
//! The patterns overlap (`order.steady`, `order.#`, `+.steady`), so that the node's
//! subscriptions (one per pattern) change at each step while the steady one is read from
//! the subscription that has the subject longest, and the marks of each name travel
//! beside its events.

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use demitter_conformance::nats_server::{NatsServer, available};
use demitter_conformance::support::within;
use demitter_conformance::test_config;
use demitter_core::{Congestion, Emitter, Event, ListenOptions, Listener};
use support::start_node;

const TEST: &str = "subscriptions_that_change_under_load_keep_order_and_lose_nothing";
const ROUNDS: usize = 8;

/// Waits until the emitter counts exactly `n` listeners for `name`.
async fn counted(emitter: &Emitter, name: &str, n: usize) {
    let mut counts = emitter.observe_listener_count(name).expect("a valid name");
    let mut seen = Vec::new();
    let waited = tokio::time::timeout(demitter_conformance::support::STEP_TIMEOUT, async {
        while let Some(count) = counts.recv().await {
            seen.push(count);
            if count == n {
                return;
            }
        }
        panic!("the count stream ended");
    })
    .await;
    assert!(
        waited.is_ok(),
        "timed out waiting for {n} listener(s) of `{name}`; counted {seen:?}; errors {:?}",
        emitter.error_counts()
    );
}

/// Emits flat out until told to stop, on a name every pattern matches and on one only some
/// do; returns how many events of each.
async fn emit_until(emitter: Emitter, stop: Arc<AtomicBool>) -> u64 {
    let mut n = 0u64;
    while !stop.load(Ordering::Acquire) {
        emitter.emit("order.steady", &n).await.expect("emits");
        emitter.emit("order.other", &n).await.expect("emits");
        n += 1;
    }
    n
}

/// Makes requests one after another until told to stop, each answered with twice its
/// number; returns how many.
async fn ask_until(emitter: Emitter, stop: Arc<AtomicBool>) -> u64 {
    let mut n = 0u64;
    while !stop.load(Ordering::Acquire) {
        let reply = emitter
            .request::<_, u64>("ask.double", &n, Duration::from_secs(10))
            .await
            .expect("answered");
        assert_eq!(reply.data, 2 * n);
        n += 1;
    }
    n
}

/// A listener on `pattern` that notes in `disorder` each event not after the last of its
/// name.
fn checking_order(
    emitter: &Emitter,
    pattern: &'static str,
    disorder: &Arc<Mutex<Vec<String>>>,
) -> Listener {
    let last = Mutex::new(HashMap::<String, u64>::new());
    let disorder = Arc::clone(disorder);
    emitter
        .on(pattern, move |event: Event<u64>| {
            let mut last = last.lock().expect("not poisoned");
            if let Some(&previous) = last.get(&*event.name)
                && event.data <= previous
            {
                disorder.lock().expect("not poisoned").push(format!(
                    "{pattern}: `{}` {} after {previous}",
                    event.name, event.data
                ));
            }
            last.insert(event.name.to_string(), event.data);
            async {}
        })
        .expect("valid")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_that_change_under_load_keep_order_and_lose_nothing() {
    if !available(TEST) {
        return;
    }
    let server = tokio::task::block_in_place(NatsServer::start);
    let mut blocking = test_config();
    blocking.congestion = Congestion::Block {
        deadline: Duration::from_secs(10),
    };
    let emitter = start_node(&server.addr(), "emitter", blocking)
        .await
        .expect("starts");
    let listener = start_node(&server.addr(), "listener", test_config())
        .await
        .expect("starts");
    let mut errors = listener.emitter.errors();
    let mut steady = listener
        .emitter
        .events_with::<u64>("order.steady", ListenOptions::default().capacity(1 << 16))
        .expect("valid");
    counted(&emitter.emitter, "order.steady", 1).await;

    let _doubler = listener
        .emitter
        .serve("ask.double", |n: Event<u64>| async move {
            Ok::<_, String>(2 * n.data)
        })
        .expect("valid");
    within(
        "the responder to be known",
        emitter.emitter.wait_for_responders("ask.double", 1),
    )
    .await
    .expect("known");
    let stop = Arc::new(AtomicBool::new(false));
    let emitting = tokio::spawn(emit_until(emitter.emitter.clone(), Arc::clone(&stop)));
    let asking = tokio::spawn(ask_until(emitter.emitter.clone(), Arc::clone(&stop)));
    let first = within("the first steady event", steady.recv())
        .await
        .expect("open")
        .expect("decodes");
    assert_eq!((first.data, first.seq), (0, 1));
    let (received_tx, mut received) = tokio::sync::watch::channel(1u64);
    let checking = tokio::spawn(async move {
        let mut next = 1u64;
        while let Some(event) = steady.recv().await {
            let event = event.expect("decodes");
            assert_eq!(event.data, next, "the steady listener's events, in order");
            assert_eq!(event.seq, next + 1, "and numbered");
            next += 1;
            let _ = received_tx.send(next);
        }
    });

    // Listeners that come and go, each checking its own order per name.
    let disorder = Arc::new(Mutex::new(Vec::<String>::new()));
    let listen = |pattern: &'static str| checking_order(&listener.emitter, pattern, &disorder);
    for _ in 0..ROUNDS {
        let tree = listen("order.#");
        counted(&emitter.emitter, "order.steady", 2).await;
        let steady_anywhere = listen("+.steady");
        counted(&emitter.emitter, "order.steady", 3).await;
        tree.off();
        counted(&emitter.emitter, "order.steady", 2).await;
        steady_anywhere.off();
        counted(&emitter.emitter, "order.steady", 1).await;
    }

    stop.store(true, Ordering::Release);
    let sent = within("the emitter to stop", emitting)
        .await
        .expect("the emitter task ends");
    let asked = within("the requests to stop", asking)
        .await
        .expect("every request answered");
    assert!(asked > 0, "requests ran beside the events");
    within(
        "every steady event to arrive",
        received.wait_for(|n| *n == sent),
    )
    .await
    .expect("the checker runs");
    let counts = listener.emitter.error_counts();
    if counts.gap > 0 {
        let mut reports = Vec::new();
        while let Some(Some(report)) = futures_util::FutureExt::now_or_never(errors.recv()) {
            reports.push(report.to_string());
        }
        panic!("events reported lost: {counts:?}: {reports:#?}");
    }
    assert_eq!(
        disorder.lock().expect("not poisoned").as_slice(),
        &[] as &[String],
        "every listener's events in order"
    );
    eprintln!(
        "{sent} events of each name and {asked} requests over {ROUNDS} rounds of subscription changes"
    );
    emitter.emitter.close().await;
    listener.emitter.close().await;
    checking.abort();
}
