//! The retained-value cases: a listener made `with_last` gets every node's last value
//! first, then the live events, with nothing twice and no false gap — also when it joins
//! in the middle of a burst — and a node that dies takes its values with it.

use std::collections::BTreeSet;

use demitter_core::{Event, ListenOptions};
use futures_util::FutureExt;
use tokio::sync::oneshot;

use crate::cluster::{Cluster, ClusterFactory};
use crate::support::{cluster, next_event, wait_for_count, wait_for_listeners, within};

/// The values of a listener made `with_last`, as (source, name, value, seq).
fn entry(event: &Event<u32>) -> (String, String, u32, u64) {
    (
        event.source.to_string(),
        event.name.to_string(),
        event.data,
        event.seq,
    )
}

/// 21. A listener made `with_last` gets its own node's retained values at once, then every
///     peer's last value of each matching name (not cleared ones, not plain events), then
///     the live events.
pub async fn a_late_listener_gets_the_last_values_first<F: ClusterFactory>(factory: &F) {
    let c = cluster(factory, 3).await;
    let (n0, n1, n2) = (c.node(0), c.node(1), c.node(2));
    let mut flushed = n0.events::<()>("conf.flush").expect("valid");
    wait_for_listeners(n1, &["conf.flush"], 1).await;
    wait_for_listeners(n2, &["conf.flush"], 1).await;
    for value in 1..=3u32 {
        n1.emit_retained("conf.last.a", &value)
            .await
            .expect("emits");
    }
    n2.emit_retained("conf.last.b", &20u32)
        .await
        .expect("emits");
    n2.emit_retained("conf.last.gone", &0u32)
        .await
        .expect("emits");
    assert!(n2.clear_retained("conf.last.gone").expect("valid"));
    assert!(!n2.clear_retained("conf.last.gone").expect("valid"), "once");
    n2.emit("conf.last.plain", &0u32).await.expect("emits");
    n0.emit_retained("conf.last.own", &9u32)
        .await
        .expect("emits");
    n1.emit_retained("conf.other", &1u32).await.expect("emits");
    // What the peers emitted so far has left them (or been dropped for want of a
    // listener) once their next event arrives: nothing of it is still on its way to be
    // taken as a live event by the listener below.
    n1.emit("conf.flush", &()).await.expect("emits");
    n2.emit("conf.flush", &()).await.expect("emits");
    next_event(&mut flushed, "a peer's flush").await;
    next_event(&mut flushed, "the other peer's flush").await;

    let mut last = n0
        .events_with::<u32>("conf.last.+", ListenOptions::default().with_last())
        .expect("valid");
    let own = next_event(&mut last, "this node's value").await;
    assert_eq!(
        entry(&own),
        (n0.id().to_string(), "conf.last.own".into(), 9, 1),
        "this node's own value comes at once, first"
    );
    let mut peers = BTreeSet::new();
    for _ in 0..2 {
        peers.insert(entry(&next_event(&mut last, "a peer's value").await));
    }
    let expected = BTreeSet::from([
        (n1.id().to_string(), "conf.last.a".into(), 3, 3),
        (n2.id().to_string(), "conf.last.b".into(), 20, 1),
    ]);
    assert_eq!(peers, expected, "each peer's last value, once");
    // Then what is emitted from now on.
    n1.emit_retained("conf.last.a", &4u32).await.expect("emits");
    let live = next_event(&mut last, "the live event").await;
    assert_eq!(
        entry(&live),
        (n1.id().to_string(), "conf.last.a".into(), 4, 4)
    );
    let errors = n0.error_counts();
    assert_eq!((errors.gap, errors.refused), (0, 0), "{errors:?}");
    within("the cluster to shut down", c.shutdown()).await;
}

/// 22. A listener made `with_last` in the middle of a burst of retained values gets one
///     value, then every later event once, in order, up to the last: nothing twice,
///     nothing lost, no gap reported. On a transport that declares
///     [`burst_loss`](crate::ClusterCapabilities::burst_loss), in order, with every event
///     missing reported.
pub async fn a_late_listener_during_a_burst_misses_nothing<F: ClusterFactory>(factory: &F) {
    const N: u32 = 5_000;
    const JOIN_AT: u32 = 1_000;
    let c = cluster(factory, 3).await;
    let (started_tx, started) = oneshot::channel();
    let emitter = c.node(1).clone();
    let burst = tokio::spawn(async move {
        let mut started_tx = Some(started_tx);
        for value in 1..=N {
            emitter
                .emit_retained("conf.burst", &value)
                .await
                .expect("emits");
            if value == JOIN_AT
                && let Some(tx) = started_tx.take()
            {
                let _ = tx.send(());
            }
        }
    });
    within("the burst to be under way", started)
        .await
        .expect("the burst runs");
    let mut late = c
        .node(0)
        .events_with::<u32>(
            "conf.burst",
            ListenOptions::default()
                .with_last()
                .capacity(2 * N as usize),
        )
        .expect("valid");
    let first = next_event(&mut late, "the retained value").await;
    assert!(first.data >= JOIN_AT, "the value when it joined, or later");
    assert_eq!(first.seq, u64::from(first.data), "its sequence number");
    let mut previous = first.data;
    let mut received = 1u64;
    let burst_loss = c.capabilities().burst_loss;
    within("the rest of the burst", async {
        while previous < N {
            let e = late
                .recv()
                .await
                .expect("the stream is open")
                .expect("decodes");
            if burst_loss {
                assert!(e.data > previous, "in order: {} after {previous}", e.data);
            } else {
                assert_eq!(e.data, previous + 1, "each event once, in order");
            }
            assert_eq!(e.seq, u64::from(e.data));
            previous = e.data;
            received += 1;
        }
    })
    .await;
    within("the burst to end", burst)
        .await
        .expect("the burst task ends");
    let errors = c.node(0).error_counts();
    let expected = u64::from(N - first.data) + 1;
    if burst_loss {
        assert_eq!(
            received + errors.gap,
            expected,
            "received + reported lost = emitted since the value"
        );
    } else {
        assert_eq!(received, expected);
        assert_eq!((errors.gap, errors.lagged), (0, 0), "nothing reported lost");
    }
    within("the cluster to shut down", c.shutdown()).await;
}

/// 23. A node that dies takes its retained values with it: a listener made `with_last`
///     meanwhile gets the other peers' values without waiting for it, never one of the
///     dead node's, and nothing is reported missing once the node is known down; a node
///     restarted under the same id starts with no values.
pub async fn a_dead_node_takes_its_values_with_it<F: ClusterFactory>(factory: &F) {
    let mut c = cluster(factory, 3).await;
    c.node(1)
        .emit_retained("conf.gone.a", &1u32)
        .await
        .expect("emits");
    c.node(2)
        .emit_retained("conf.gone.b", &2u32)
        .await
        .expect("emits");
    // Node 2 listens on something, so that node 0 can see when it is known down.
    let _watch = c
        .node(2)
        .on("conf.watch.node2", |_: Event<()>| async {})
        .expect("valid");
    wait_for_count(c.node(0), "conf.watch.node2", 1).await;
    let mut errors = c.node(0).errors();
    within("node 2 to be killed", c.kill(2)).await;
    let mut last = c
        .node(0)
        .events_with::<u32>("conf.gone.+", ListenOptions::default().with_last())
        .expect("valid");
    let value = next_event(&mut last, "node 1's value").await;
    assert_eq!(
        entry(&value),
        (c.node(1).id().to_string(), "conf.gone.a".into(), 1, 1)
    );
    wait_for_count(c.node(0), "conf.watch.node2", 0).await;
    c.node(1)
        .emit_retained("conf.gone.a", &3u32)
        .await
        .expect("emits");
    let live = next_event(&mut last, "node 1's next value").await;
    assert_eq!(live.data, 3, "not a value of the dead node");
    if c.capabilities().restart {
        within("node 2 to restart", c.restart(2))
            .await
            .expect("restarts");
        let mut fresh = c
            .node(0)
            .events_with::<u32>("conf.gone.b", ListenOptions::default().with_last())
            .expect("valid");
        c.node(2)
            .emit_retained("conf.gone.b", &5u32)
            .await
            .expect("emits");
        let next = next_event(&mut fresh, "the restarted node's new value").await;
        assert_eq!(
            (next.data, next.seq),
            (5, 1),
            "it started empty, numbering afresh"
        );
    }
    while let Some(Some(report)) = errors.recv().now_or_never() {
        assert!(
            !report.message.contains("retained values"),
            "nothing is missing from a node known down: {report}"
        );
    }
    within("the cluster to shut down", c.shutdown()).await;
}
