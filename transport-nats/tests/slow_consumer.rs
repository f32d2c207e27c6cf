//! A subscriber whose client channel holds two messages takes a flat-out burst: the NATS
//! client drops what does not fit. Every event is received, in order (what was dropped
//! comes back from the emitter's window, with recovery on by default), or reported lost,
//! to the event (the repairs go through the same tight channel, and what misses its
//! deadline is a gap); and the client's drops come as one report at most every second, not
//! one per message.

mod support;

use std::time::{Duration, Instant};

use demitter_conformance::nats_server::{NatsServer, available};
use demitter_conformance::support::within;
use demitter_conformance::test_config;
use demitter_core::{EmitterConfig, ErrorKind, ListenOptions};
use support::{config, start_node, start_node_with};

const TEST: &str = "client_drops_are_counted_by_the_gaps_and_reported_rate_limited";
const BURST: u64 = 50_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_drops_are_counted_by_the_gaps_and_reported_rate_limited() {
    if !available(TEST) {
        return;
    }
    let server = tokio::task::block_in_place(NatsServer::start);
    let emitter = start_node(&server.addr(), "emitter", test_config())
        .await
        .expect("starts");
    let mut tight = config(&server.addr());
    tight.subscription_capacity = 2;
    // The client drops heartbeats too: the emitter must not be declared lost meanwhile,
    // or its numbers would be forgotten and the tail of the burst never settled.
    let patient =
        EmitterConfig::default().with_heartbeat(Duration::from_millis(50), Duration::from_secs(60));
    let listener = start_node_with(tight, "listener", patient)
        .await
        .expect("starts");
    let mut errors = listener.emitter.errors();
    let mut events = listener
        .emitter
        .events_with::<u64>("slow.burst", ListenOptions::default().capacity(1 << 17))
        .expect("valid");
    within(
        "the listener to be counted",
        emitter.emitter.wait_for_listeners("slow.burst", 1),
    )
    .await
    .expect("open");

    let started = Instant::now();
    for n in 0..BURST {
        emitter.emitter.emit("slow.burst", &n).await.expect("emits");
    }
    let (mut received, mut last) = (0u64, None);
    let mut client_reports = Vec::new();
    within("every event to arrive or be reported lost", async {
        while received + listener.emitter.error_counts().gap < BURST {
            tokio::select! {
                event = events.recv() => {
                    let event = event.expect("open").expect("decodes");
                    assert!(last.is_none_or(|l| event.data > l), "in order");
                    last = Some(event.data);
                    received += 1;
                }
                report = errors.recv() => {
                    let report = report.expect("open");
                    if report.kind == ErrorKind::Network {
                        client_reports.push(report);
                    }
                }
            }
        }
    })
    .await;
    let elapsed = started.elapsed();
    while let Some(Some(report)) = futures_util::FutureExt::now_or_never(errors.recv()) {
        if report.kind == ErrorKind::Network {
            client_reports.push(report);
        }
    }
    let counts = listener.emitter.error_counts();
    let lost = counts.gap;
    assert_eq!(received + lost, BURST, "received + reported lost = sent");
    assert!(
        lost + counts.recovered > 0,
        "a channel of two messages drops some of a flat-out burst"
    );
    assert!(
        !client_reports.is_empty() && client_reports.iter().all(|r| r.message.contains("dropped")),
        "the client's drops are reported: {client_reports:?}"
    );
    let allowed = 1 + elapsed.as_secs();
    assert!(
        client_reports.len() as u64 <= allowed,
        "at most one report a second: {} in {elapsed:?}",
        client_reports.len()
    );
    eprintln!(
        "{lost} of {BURST} lost, {} recovered, in {} report(s) from the client over {elapsed:?}",
        counts.recovered,
        client_reports.len()
    );
    emitter.emitter.close().await;
    listener.emitter.close().await;
}
