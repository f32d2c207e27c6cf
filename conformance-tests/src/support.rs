//! Helpers the cases share, and that a transport's own tests can use too: timeouts around
//! every await, a fast test configuration, draining streams without waiting.

use std::future::Future;
use std::time::Duration;

use demitter_core::{
    Emitter, EmitterConfig, ErrorKind, ErrorReport, ErrorStream, Event, EventStream, FromPayload,
};
use futures_util::FutureExt;

use crate::cluster::{Cluster, ClusterFactory};

/// The longest any single step may take before the case fails.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(20);

/// Settings for suite clusters: heartbeats every 50 ms, peers declared lost after 600 ms.
pub fn test_config() -> EmitterConfig {
    EmitterConfig::default().with_heartbeat(Duration::from_millis(50), Duration::from_millis(600))
}

/// Awaits `future`, failing the case if it takes longer than [`STEP_TIMEOUT`].
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(STEP_TIMEOUT, future)
        .await
        .unwrap_or_else(|_elapsed| panic!("timed out after {STEP_TIMEOUT:?} waiting for {what}"))
}

/// Sends the nodes' logs to the case's output (shown when it fails), filtered by
/// `RUST_LOG` (errors only without it): `RUST_LOG=demitter_core=debug` tells what each
/// node did with every frame of a case that failed. Once per process; later calls do
/// nothing.
pub fn log_to_test_output() {
    // Refused only when a subscriber is already set: by an earlier case, or the test.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// Builds a cluster of `nodes` with [`test_config`].
pub async fn cluster<F: ClusterFactory>(factory: &F, nodes: usize) -> F::Cluster {
    log_to_test_output();
    within("the cluster to start", factory.build(nodes, test_config()))
        .await
        .expect("the cluster starts")
}

/// The next event of a stream, which must arrive and decode.
pub async fn next_event<T: FromPayload>(stream: &mut EventStream<T>, what: &str) -> Event<T> {
    within(what, stream.recv())
        .await
        .unwrap_or_else(|| panic!("stream ended while waiting for {what}"))
        .unwrap_or_else(|e| panic!("error while waiting for {what}: {e}"))
}

/// Everything a stream has queued right now, without waiting.
pub fn drain<T: FromPayload>(stream: &mut EventStream<T>) -> Vec<Event<T>> {
    let mut out = Vec::new();
    while let Some(Some(item)) = stream.recv().now_or_never() {
        out.push(item.expect("queued event decodes"));
    }
    out
}

/// Waits until `emitter` sees exactly `n` listeners for `name` (bus-wide).
pub async fn wait_for_count(emitter: &Emitter, name: &str, n: usize) {
    let mut counts = emitter.observe_listener_count(name).expect("valid name");
    within(&format!("listener count of `{name}` to be {n}"), async {
        while let Some(count) = counts.recv().await {
            if count == n {
                return;
            }
        }
        panic!("count stream ended");
    })
    .await;
}

/// Waits until `emitter` sees at least `n` listeners for each of `names`.
pub async fn wait_for_listeners(emitter: &Emitter, names: &[&str], n: usize) {
    for name in names {
        within(
            &format!("{n} listener(s) for `{name}`"),
            emitter.wait_for_listeners(name, n),
        )
        .await
        .expect("emitter open");
    }
}

/// The next report of `kind` on an error stream (reports of other kinds are printed and
/// passed over: transports may report outages the case does not provoke).
pub async fn next_report(errors: &mut ErrorStream, kind: ErrorKind) -> ErrorReport {
    within(&format!("a `{kind}` report"), async {
        loop {
            let report = errors.recv().await.expect("error stream open");
            if report.kind == kind {
                return report;
            }
            eprintln!("(passing over a report of another kind: {report})");
        }
    })
    .await
}

/// Expects the next value of a count stream.
pub async fn expect_count(counts: &mut demitter_core::CountStream, want: usize, what: &str) {
    let got = within(what, counts.recv())
        .await
        .expect("count stream open");
    assert_eq!(got, want, "{what}");
}

/// For a cluster that declares no hub: checks that [`Cluster::restart_hub`] refuses, then
/// shuts the cluster down.
pub async fn check_no_hub<C: Cluster>(mut c: C) {
    assert!(
        within("restart_hub to refuse", c.restart_hub())
            .await
            .is_err(),
        "a cluster that declares no hub must refuse to restart one"
    );
    within("the cluster to shut down", c.shutdown()).await;
}

/// Two nodes built with `config`: node 1's listener on `pattern` subscribed, node 0 ready and counting it for
/// `name`. Both nodes start together, so that neither may have heard the other when it
/// was ready (through a forwarder, the census counts only nodes it heard before): the
/// listener is owed what node 0 emits once node 0 acknowledged it, which the count shows.
pub async fn listening_pair<F: ClusterFactory>(
    factory: &F,
    config: EmitterConfig,
    pattern: &str,
    name: &str,
) -> (F::Cluster, EventStream<u32>) {
    log_to_test_output();
    let c = within("the cluster to start", factory.build(2, config))
        .await
        .expect("the cluster starts");
    let stream = c.node(1).events::<u32>(pattern).expect("valid");
    within("the listener to be subscribed", stream.subscribed())
        .await
        .expect("subscribed");
    within("node 0 to hear the bus", c.node(0).ready())
        .await
        .expect("it hears the bus");
    wait_for_listeners(c.node(0), &[name], 1).await;
    (c, stream)
}
