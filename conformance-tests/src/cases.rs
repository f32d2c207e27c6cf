//! The behaviour suite. Each case is a plain `pub async fn` taking a cluster factory, so a
//! transport runs all of them with [`conformance_suite!`](crate::conformance_suite).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use demitter_core::{
    Error, ErrorKind, Event, ListenOptions, PEER_DOWN, PEER_UP, Pattern, PeerChange, RawPayload,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, mpsc};

use crate::cluster::{Cluster, ClusterFactory};
use crate::support::{
    check_no_hub, cluster, drain, expect_count, next_event, next_report, wait_for_count,
    wait_for_listeners, within,
};

pub use crate::congestion::{
    congestion_block_holds_the_emitter_back, congestion_drop_reports_what_it_drops,
};
pub use crate::duplicates::duplicate_ids_are_refused;
pub use crate::groups::{
    a_group_member_killed_under_steady_load, groups_give_each_event_to_one_member,
};
pub use crate::lost_on_the_way::{
    a_lost_first_event_is_reported, a_tail_whose_marks_are_lost_for_long_is_reported,
};
pub use crate::recovery::{
    a_closing_emitter_lingers_until_its_last_events_are_repaired,
    lost_events_are_recovered_in_order,
};
pub use crate::requests::{
    a_responder_lost_mid_request_fails_it, requests_fail_each_in_its_own_way,
    requests_go_to_one_responder_in_turn,
};
pub use crate::retained::{
    a_dead_node_takes_its_values_with_it, a_late_listener_during_a_burst_misses_nothing,
    a_late_listener_gets_the_last_values_first,
};
pub use crate::short_lived::short_lived_emitters_reach_every_listener;

async fn noop<T>(_: Event<T>) {}

/// 1. An event emitted on one node reaches the matching listeners on every other node,
///    exactly once.
pub async fn emit_reaches_every_other_node<F: ClusterFactory>(factory: &F) {
    let c = cluster(factory, 3).await;
    let mut on1 = c.node(1).events::<u32>("conf.reach").expect("valid");
    let mut on2 = c.node(2).events::<u32>("conf.reach").expect("valid");
    wait_for_listeners(c.node(0), &["conf.reach"], 2).await;
    let delivery = c.node(0).emit("conf.reach", &1u32).await.expect("emits");
    assert_eq!((delivery.local, delivery.remote), (0, 2));
    c.node(0).emit("conf.reach", &2u32).await.expect("emits");
    for stream in [&mut on1, &mut on2] {
        let first = next_event(stream, "the first event").await;
        assert_eq!(first.data, 1);
        assert_eq!(&*first.name, "conf.reach");
        assert_eq!(&first.source, c.node(0).id());
        assert_eq!(first.seq, 1);
        let second = next_event(stream, "the second event").await;
        assert_eq!(
            (second.data, second.seq),
            (2, 2),
            "the first arrived exactly once"
        );
    }
    within("the cluster to shut down", c.shutdown()).await;
}

/// 2. The emitting node's own listeners run exactly once (no echo back through the
///    transport), and `emit` resolves after they ran.
pub async fn own_listeners_run_exactly_once<F: ClusterFactory>(factory: &F) {
    let c = cluster(factory, 2).await;
    let (tx, mut local_calls) = mpsc::unbounded_channel();
    let _local = c
        .node(0)
        .on("conf.self", move |e: Event<u32>| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(e.data);
            }
        })
        .expect("valid");
    let mut remote = c.node(1).events::<u32>("conf.self").expect("valid");
    let mut fence = c.node(0).events::<()>("conf.self.fence").expect("valid");
    wait_for_listeners(c.node(0), &["conf.self"], 2).await;
    wait_for_listeners(c.node(1), &["conf.self.fence"], 1).await;
    for i in 0..10u32 {
        let delivery = c.node(0).emit("conf.self", &i).await.expect("emits");
        assert_eq!((delivery.local, delivery.remote), (1, 1));
        assert_eq!(
            local_calls.try_recv(),
            Ok(i),
            "emit resolved after the local listener ran"
        );
    }
    for i in 0..10u32 {
        assert_eq!(next_event(&mut remote, "the remote copy").await.data, i);
    }
    // Node 1 answers after it saw all ten; by the time the answer is back, an echo would be.
    c.node(1).emit("conf.self.fence", &()).await.expect("emits");
    next_event(&mut fence, "the fence").await;
    assert!(
        local_calls.try_recv().is_err(),
        "a local listener ran twice"
    );
    within("the cluster to shut down", c.shutdown()).await;
}

#[derive(Debug)]
struct VectorRow {
    pattern: String,
    event: String,
    matches: bool,
}

fn pattern_vectors() -> Vec<VectorRow> {
    include_str!("../vectors/patterns.tsv")
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            assert_eq!(cols.len(), 3, "vector row {line:?}");
            VectorRow {
                pattern: cols[0].to_owned(),
                event: cols[1].to_owned(),
                matches: match cols[2] {
                    "yes" => true,
                    "no" => false,
                    other => {
                        panic!("vector row {line:?}: matches must be yes or no, not {other:?}")
                    }
                },
            }
        })
        .collect()
}

/// 3. Pattern routing across nodes, driven by the shared vector file: every row is checked
///    with `Pattern::matches`, and every row whose event a user may emit is checked end to
///    end (a `$` system event is never sent over the wire).
pub async fn pattern_routing_follows_the_vectors<F: ClusterFactory>(factory: &F) {
    let rows = pattern_vectors();
    assert!(rows.len() >= 20, "the vector file has its rows");
    for row in &rows {
        let pattern = Pattern::new(&row.pattern).expect("vector patterns are valid");
        assert_eq!(pattern.matches(&row.event), row.matches, "{row:?}");
    }
    let c = cluster(factory, 2).await;
    let patterns: BTreeSet<&str> = rows.iter().map(|r| r.pattern.as_str()).collect();
    let mut streams: Vec<(&str, _)> = patterns
        .iter()
        .map(|p| {
            let stream = c
                .node(1)
                .events_with::<RawPayload>(p, ListenOptions::default().capacity(256))
                .expect("valid");
            (*p, stream)
        })
        .collect();
    let mut fence = c.node(1).events::<()>("conf.vectors.fence").expect("valid");
    for p in &patterns {
        wait_for_listeners(c.node(0), &[p], 1).await;
    }
    wait_for_listeners(c.node(0), &["conf.vectors.fence"], 1).await;
    let names: BTreeSet<&str> = rows
        .iter()
        .map(|r| r.event.as_str())
        .filter(|e| !demitter_core::is_system(e))
        .collect();
    for name in &names {
        c.node(0).emit(name, &()).await.expect("emits");
    }
    c.node(0)
        .emit("conf.vectors.fence", &())
        .await
        .expect("emits");
    next_event(&mut fence, "the fence").await;
    for (pattern, stream) in &mut streams {
        let got: BTreeSet<String> = drain(stream)
            .into_iter()
            .map(|e| e.name.to_string())
            .collect();
        for row in rows
            .iter()
            .filter(|r| r.pattern == *pattern && names.contains(r.event.as_str()))
        {
            assert_eq!(
                got.contains(&row.event),
                row.matches,
                "delivery for {row:?}; got {got:?}"
            );
        }
    }
    within("the cluster to shut down", c.shutdown()).await;
}

/// 4. Unsubscribing stops delivery; so does `clear_listeners`.
pub async fn unsubscribe_stops_delivery<F: ClusterFactory>(factory: &F) {
    let c = cluster(factory, 2).await;
    let (tx, mut calls) = mpsc::unbounded_channel();
    let handler = move |e: Event<u32>| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(e.data);
        }
    };
    let listener = c.node(1).on("conf.unsub", handler.clone()).expect("valid");
    let mut fence = c.node(1).events::<()>("conf.unsub.fence").expect("valid");
    wait_for_listeners(c.node(0), &["conf.unsub", "conf.unsub.fence"], 1).await;
    c.node(0).emit("conf.unsub", &1u32).await.expect("emits");
    assert_eq!(within("the first event", calls.recv()).await, Some(1));

    assert!(listener.off(), "the listener was registered");
    wait_for_count(c.node(0), "conf.unsub", 0).await;
    let delivery = c.node(0).emit("conf.unsub", &2u32).await.expect("emits");
    assert_eq!(delivery.remote, 0);
    c.node(0)
        .emit("conf.unsub.fence", &())
        .await
        .expect("emits");
    next_event(&mut fence, "the fence").await;
    assert!(calls.try_recv().is_err(), "a removed listener was called");

    let _a = c.node(1).on("conf.clear", handler.clone()).expect("valid");
    let _b = c.node(1).on("conf.clear", handler).expect("valid");
    let mut stream = c.node(1).events::<u32>("conf.clear").expect("valid");
    wait_for_count(c.node(0), "conf.clear", 3).await;
    assert_eq!(c.node(1).clear_listeners(Some("conf.clear")), Ok(3));
    assert!(
        within("the cleared stream to end", stream.recv())
            .await
            .is_none()
    );
    wait_for_count(c.node(0), "conf.clear", 0).await;
    c.node(0).emit("conf.clear", &3u32).await.expect("emits");
    c.node(0)
        .emit("conf.unsub.fence", &())
        .await
        .expect("emits");
    next_event(
        &mut fence,
        "the fence, which clearing another pattern left alone",
    )
    .await;
    assert!(calls.try_recv().is_err(), "a cleared listener was called");
    within("the cluster to shut down", c.shutdown()).await;
}

/// 5. Bus-wide counts follow a remote node's listeners (0, 1, 2, 3, 2, 1, 0), spies are
///    never counted, and `emit` resolves to the right count.
pub async fn counts_follow_remote_listeners<F: ClusterFactory>(factory: &F) {
    let c = cluster(factory, 2).await;
    let mut counts = c
        .node(0)
        .observe_listener_count("conf.count.x")
        .expect("valid");
    expect_count(&mut counts, 0, "no listener yet").await;
    let a = c.node(1).on("conf.count.+", noop::<()>).expect("valid");
    expect_count(&mut counts, 1, "a wildcard listener").await;
    let b = c.node(1).events::<()>("conf.count.x").expect("valid");
    expect_count(&mut counts, 2, "an exact stream").await;
    let _remote_spy = c.node(1).spy("conf.count.#", noop::<()>).expect("valid");
    let _local_spy = c.node(0).spy("conf.count.x", noop::<()>).expect("valid");
    let d = c.node(1).on("conf.count.x", noop::<()>).expect("valid");
    expect_count(
        &mut counts,
        3,
        "a third listener, and the spies not counted",
    )
    .await;
    let delivery = c.node(0).emit("conf.count.x", &()).await.expect("emits");
    assert_eq!(
        (delivery.local, delivery.remote),
        (0, 3),
        "emit counts no spy"
    );
    assert_eq!(c.node(1).listener_count("conf.count.x"), Ok(3));
    assert_eq!(
        c.node(0).listener_count("conf.count.+"),
        Ok(1),
        "exactly on the pattern"
    );
    assert!(d.off());
    expect_count(&mut counts, 2, "one removed").await;
    assert!(a.off());
    expect_count(&mut counts, 1, "two removed").await;
    drop(b);
    expect_count(&mut counts, 0, "the dropped stream removed").await;
    within("the cluster to shut down", c.shutdown()).await;
}

/// 6. `once` and `events` across nodes.
pub async fn once_and_events_across_nodes<F: ClusterFactory>(factory: &F) {
    let c = cluster(factory, 2).await;
    let once = c.node(1).once::<u32>("conf.once.+").expect("valid");
    let mut stream = c.node(1).events::<String>("conf.events").expect("valid");
    wait_for_listeners(c.node(0), &["conf.once.go", "conf.events"], 1).await;
    c.node(0).emit("conf.once.go", &7u32).await.expect("emits");
    c.node(0).emit("conf.once.go", &8u32).await.expect("emits");
    let first = within("once", once).await.expect("once resolves");
    assert_eq!((first.data, &*first.name), (7, "conf.once.go"));
    assert_eq!(&first.source, c.node(0).id());
    wait_for_count(c.node(0), "conf.once.go", 0).await;
    for word in ["alpha", "beta", "gamma"] {
        c.node(0).emit("conf.events", word).await.expect("emits");
    }
    for word in ["alpha", "beta", "gamma"] {
        assert_eq!(next_event(&mut stream, word).await.data, word);
    }
    within("the cluster to shut down", c.shutdown()).await;
}

/// 7. Order per (source, name) over 10,000 events from each of two sources at once, with
///    consecutive sequence numbers and nothing reported lost; on a transport that declares
///    [`burst_loss`](crate::ClusterCapabilities::burst_loss), in order, with every event
///    missing reported.
pub async fn order_per_source_and_name<F: ClusterFactory>(factory: &F) {
    const N: u32 = 10_000;
    let c = cluster(factory, 3).await;
    let mut stream = c
        .node(1)
        .events_with::<u32>(
            "conf.order",
            ListenOptions::default().capacity(2 * N as usize + 1),
        )
        .expect("valid");
    wait_for_listeners(c.node(0), &["conf.order"], 1).await;
    wait_for_listeners(c.node(2), &["conf.order"], 1).await;
    let send = |i: usize| {
        let node = c.node(i).clone();
        async move {
            for n in 0..N {
                node.emit("conf.order", &n).await.expect("emits");
            }
        }
    };
    within(
        "both sources to emit",
        futures_util::future::join(send(0), send(2)),
    )
    .await;
    if c.capabilities().burst_loss {
        // Declared: part of the burst may be dropped in the transport. What arrives is in
        // order, and what does not is reported, to the event.
        let mut errors = c.node(1).errors();
        let mut next: HashMap<String, u32> = HashMap::new();
        let mut received = 0u64;
        within("every event to arrive or be reported lost", async {
            loop {
                let counts = c.node(1).error_counts();
                if received + counts.gap + counts.lagged >= 2 * u64::from(N) {
                    break;
                }
                tokio::select! {
                    event = stream.recv() => {
                        let e = event.expect("the stream is open").expect("decodes");
                        let expected = next.entry(e.source.to_string()).or_insert(0);
                        assert!(e.data >= *expected, "order from {}", e.source);
                        assert_eq!(e.seq, u64::from(e.data) + 1, "sequence number");
                        *expected = e.data + 1;
                        received += 1;
                    }
                    report = errors.recv() => {
                        assert!(report.is_some(), "the error stream is open");
                    }
                }
            }
        })
        .await;
        let counts = c.node(1).error_counts();
        assert_eq!(
            received + counts.gap + counts.lagged,
            2 * u64::from(N),
            "received + reported lost = sent"
        );
    } else {
        let mut next: HashMap<String, u32> = HashMap::new();
        for _ in 0..2 * N {
            let e = next_event(&mut stream, "the next ordered event").await;
            let expected = next.entry(e.source.to_string()).or_insert(0);
            assert_eq!(e.data, *expected, "order from {}", e.source);
            assert_eq!(e.seq, u64::from(e.data) + 1, "sequence number");
            *expected += 1;
        }
        assert!(next.values().all(|n| *n == N));
        let errors = c.node(1).error_counts();
        assert_eq!((errors.gap, errors.lagged), (0, 0), "nothing reported lost");
    }
    within("the cluster to shut down", c.shutdown()).await;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct RichPayload {
    blob: serde_bytes::ByteBuf,
    nested: BTreeMap<String, BTreeMap<String, Vec<i64>>>,
    big: u64,
    at: SystemTime,
    text: String,
    nothing: Option<u8>,
}

/// 8. Payloads survive the trip: 1 MiB of bytes, nested maps, a u64 above 2^53, a
///    timestamp, unicode names and text; typed and as a dynamic value.
pub async fn payloads_survive_the_trip<F: ClusterFactory>(factory: &F) {
    let c = cluster(factory, 3).await;
    let name = "conf.payload.ünïcødé.事件";
    let mut typed = c
        .node(1)
        .events::<RichPayload>("conf.payload.#")
        .expect("valid");
    let mut raw = c
        .node(2)
        .events::<RawPayload>("conf.payload.#")
        .expect("valid");
    wait_for_listeners(c.node(0), &[name], 2).await;
    let blob: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
    let mut inner = BTreeMap::new();
    inner.insert("ключ".to_owned(), vec![-1, 0, i64::MAX]);
    let mut nested = BTreeMap::new();
    nested.insert("外".to_owned(), inner);
    let sent = RichPayload {
        blob: serde_bytes::ByteBuf::from(blob),
        nested,
        big: u64::MAX - 1,
        at: SystemTime::UNIX_EPOCH + Duration::new(1_790_000_000, 123_456_789),
        text: "émoji 🚀 and 中文".to_owned(),
        nothing: None,
    };
    c.node(0).emit(name, &sent).await.expect("emits");
    let got = next_event(&mut typed, "the typed payload").await;
    assert_eq!(&*got.name, name);
    assert_eq!(got.data, sent);
    let dynamic = next_event(&mut raw, "the raw payload")
        .await
        .data
        .to_value()
        .expect("decodes");
    let big = dynamic
        .as_map()
        .and_then(|m| m.iter().find(|(k, _)| k.as_str() == Some("big")))
        .map(|(_, v)| v.as_u64());
    assert_eq!(
        big,
        Some(Some(u64::MAX - 1)),
        "u64 above 2^53 kept exactly: {dynamic}"
    );
    within("the cluster to shut down", c.shutdown()).await;
}

/// 9. A node that leaves or is killed: its listeners leave the counts and `$peer.down`
///    fires; a restarted node comes back (or the cluster declares it cannot restart).
pub async fn departed_nodes_leave_the_counts<F: ClusterFactory>(factory: &F) {
    let mut c = cluster(factory, 3).await;
    let mut downs = c.node(0).events::<PeerChange>(PEER_DOWN).expect("valid");
    let mut ups = c.node(0).events::<PeerChange>(PEER_UP).expect("valid");
    let mut counts = c
        .node(0)
        .observe_listener_count("conf.leave")
        .expect("valid");
    expect_count(&mut counts, 0, "no listener yet").await;
    let _l1 = c.node(1).on("conf.leave", noop::<()>).expect("valid");
    expect_count(&mut counts, 1, "node 1 listens").await;
    let _l2 = c.node(2).on("conf.leave", noop::<()>).expect("valid");
    expect_count(&mut counts, 2, "node 2 listens").await;

    let (id1, id2) = (c.node(1).id().clone(), c.node(2).id().clone());
    within("node 1 to close", c.node(1).close()).await;
    expect_count(&mut counts, 1, "node 1 left").await;
    assert_eq!(
        next_event(&mut downs, "$peer.down for node 1")
            .await
            .data
            .peer,
        id1.as_str()
    );

    within("node 2 to be killed", c.kill(2)).await;
    expect_count(&mut counts, 0, "node 2 was killed").await;
    assert_eq!(
        next_event(&mut downs, "$peer.down for node 2")
            .await
            .data
            .peer,
        id2.as_str()
    );

    if c.capabilities().restart {
        drain(&mut ups);
        within("node 2 to restart", c.restart(2))
            .await
            .expect("restarts");
        assert_eq!(c.node(2).id(), &id2, "same id after restart");
        let up = next_event(&mut ups, "$peer.up for the restarted node").await;
        assert_eq!(up.data.peer, id2.as_str());
        let mut again = c.node(2).events::<u32>("conf.leave").expect("valid");
        expect_count(&mut counts, 1, "the restarted node listens").await;
        c.node(0).emit("conf.leave", &9u32).await.expect("emits");
        assert_eq!(
            next_event(&mut again, "an event on the restarted node")
                .await
                .data,
            9
        );
    } else {
        assert!(
            within("restart to refuse", c.restart(2)).await.is_err(),
            "a cluster that declares no restart must refuse it"
        );
    }
    within("the cluster to shut down", c.shutdown()).await;
}

/// 10. A slow listener gets `Lagged(n)` and stays subscribed; the other listeners get every
///     event; for the slow one, handled + reported lagged equals sent, to the event. (On a
///     transport that declares [`burst_loss`](crate::ClusterCapabilities::burst_loss),
///     events it lost on the way are reported as gaps and count on both sides.)
pub async fn slow_listener_lags_alone<F: ClusterFactory>(factory: &F) {
    const N: u64 = 1_000;
    let c = cluster(factory, 2).await;
    let gate = Arc::new(Semaphore::new(0));
    let (tx, mut handled) = mpsc::unbounded_channel();
    let slow_gate = Arc::clone(&gate);
    let _slow = c
        .node(1)
        .on_with(
            "conf.slow",
            ListenOptions::default().capacity(8),
            move |_: Event<u64>| {
                let gate = Arc::clone(&slow_gate);
                let tx = tx.clone();
                async move {
                    let _permit = gate.acquire().await;
                    let _ = tx.send(());
                }
            },
        )
        .expect("valid");
    let mut fast = c
        .node(1)
        .events_with::<u64>(
            "conf.slow",
            ListenOptions::default().capacity(2 * N as usize),
        )
        .expect("valid");
    let mut errors = c.node(1).errors();
    let mut slow_reports = Vec::new();
    wait_for_listeners(c.node(0), &["conf.slow"], 2).await;
    for i in 0..N {
        c.node(0).emit("conf.slow", &i).await.expect("emits");
    }
    // Events the transport itself lost on the way (only where declared): reported once, as
    // gaps, and missing for both listeners alike.
    let burst_loss = c.capabilities().burst_loss;
    let lost_on_the_way = |c: &F::Cluster| {
        if burst_loss {
            c.node(1).error_counts().gap
        } else {
            0
        }
    };
    let mut expected = 0;
    let mut fast_received = 0u64;
    within("every event on the fast listener, or its loss", async {
        while fast_received + lost_on_the_way(&c) < N {
            tokio::select! {
                event = fast.recv() => {
                    let event = event.expect("the stream is open").expect("decodes");
                    if burst_loss {
                        assert!(event.data >= expected, "in order");
                    } else {
                        assert_eq!(event.data, expected, "every event, in order");
                    }
                    expected = event.data + 1;
                    fast_received += 1;
                }
                report = errors.recv() => {
                    let report = report.expect("the error stream is open");
                    if report.kind == ErrorKind::Lagged && report.event.as_deref() == Some("conf.slow") {
                        // The slow listener's reports, counted once it runs below.
                        slow_reports.push(report.count);
                    }
                }
            }
        }
    })
    .await;
    let lost = lost_on_the_way(&c);
    assert_eq!(
        fast_received + lost,
        N,
        "the fast listener missed nothing unreported"
    );
    gate.add_permits(1);
    let (mut done, mut lagged) = (0u64, slow_reports.iter().sum::<u64>());
    within("handled + lagged to account for every event", async {
        while done + lagged + lost < N {
            tokio::select! {
                Some(()) = handled.recv() => done += 1,
                Some(report) = errors.recv() => {
                    if report.kind == ErrorKind::Lagged && report.event.as_deref() == Some("conf.slow") {
                        lagged += report.count;
                    }
                }
            }
        }
    })
    .await;
    assert!(lagged > 0, "the slow listener lagged");
    assert_eq!(done + lagged + lost, N);
    assert_eq!(c.node(1).error_counts().lagged, lagged);
    within("the cluster to shut down", c.shutdown()).await;
}

/// 11. Undecodable and oversize frames, and an undecodable payload: reported on the error
///     channel, nothing panics, the next events still arrive.
pub async fn hostile_input_is_reported_and_survived<F: ClusterFactory>(factory: &F) {
    let c = cluster(factory, 2).await;
    let mut after = c.node(1).events::<u32>("conf.after").expect("valid");
    let mut errors = c.node(1).errors();
    wait_for_listeners(c.node(0), &["conf.after"], 1).await;

    c.inject_raw(1, Bytes::from_static(b"\xff\x00 this is not a frame"))
        .await
        .expect("injects");
    next_report(&mut errors, ErrorKind::Deserialization).await;
    let oversize = Bytes::from(vec![1u8; c.max_frame_bytes() + 1]);
    c.inject_raw(1, oversize).await.expect("injects");
    let report = next_report(&mut errors, ErrorKind::Deserialization).await;
    assert!(report.message.contains("limit"), "{report}");

    c.node(0)
        .emit_raw("conf.after", Bytes::from_static(b"\xc1"))
        .await
        .expect("emits");
    let undecodable = within("the undecodable event", after.recv())
        .await
        .expect("open");
    assert!(
        matches!(undecodable, Err(Error::Decode(_))),
        "{undecodable:?}"
    );
    next_report(&mut errors, ErrorKind::Deserialization).await;

    c.node(0).emit("conf.after", &5u32).await.expect("emits");
    assert_eq!(next_event(&mut after, "the next good event").await.data, 5);
    assert_eq!(c.node(1).error_counts().deserialization, 3);
    within("the cluster to shut down", c.shutdown()).await;
}

/// 12. Invalid names and patterns are clear errors at the call.
pub async fn invalid_names_and_patterns_are_errors<F: ClusterFactory>(factory: &F) {
    let c = cluster(factory, 1).await;
    let e = c.node(0);
    let long = "x".repeat(256);
    for (name, needle) in [
        ("", "empty"),
        ("a+b", "wildcard"),
        ("a.#", "wildcard"),
        ("a\0b", "NUL"),
        (long.as_str(), "255"),
    ] {
        let err = e.emit(name, &()).await.expect_err(name);
        assert!(matches!(err, Error::InvalidName { .. }), "{err:?}");
        assert!(err.to_string().contains(needle), "{err}");
    }
    assert!(matches!(
        e.emit("$peer.up", &()).await,
        Err(Error::ReservedName(_))
    ));
    assert!(matches!(
        e.on("", noop::<()>),
        Err(Error::InvalidPattern { .. })
    ));
    assert!(matches!(
        e.events::<()>(&"+".repeat(300)),
        Err(Error::InvalidPattern { .. })
    ));
    assert!(matches!(
        e.once::<()>("a\0"),
        Err(Error::InvalidPattern { .. })
    ));
    assert!(e.listener_count("").is_err());
    assert!(e.observe_listener_count("").is_err());
    let too_big = serde_bytes::ByteBuf::from(vec![0u8; c.max_frame_bytes()]);
    assert!(matches!(
        e.emit("conf.big", &too_big).await,
        Err(Error::FrameTooLarge { .. })
    ));
    within("the cluster to shut down", c.shutdown()).await;
}

/// 13. `close` ends every task; pending `once` futures resolve with a closed error; the
///     peers are told.
pub async fn close_ends_everything<F: ClusterFactory>(factory: &F) {
    let c = cluster(factory, 2).await;
    let mut downs = c.node(0).events::<PeerChange>(PEER_DOWN).expect("valid");
    let node = c.node(1).clone();
    let once = node.once::<u32>("conf.close.once").expect("valid");
    let mut stream = node.events::<u32>("conf.close.stream").expect("valid");
    let _handler = node.on("conf.close.handler", noop::<u32>).expect("valid");
    let mut counts = node
        .observe_listener_count("conf.close.stream")
        .expect("valid");
    let mut errors = node.errors();
    wait_for_listeners(c.node(0), &["conf.close.handler"], 1).await;
    assert!(
        node.tasks_running() >= 2,
        "a receive loop and a listener task"
    );

    within("close", node.close()).await;
    assert!(node.is_closed());
    assert_eq!(node.tasks_running(), 0, "every task ended");
    assert!(matches!(within("once", once).await, Err(Error::Closed)));
    assert!(within("the stream to end", stream.recv()).await.is_none());
    within("the count stream to end", async {
        while counts.recv().await.is_some() {}
    })
    .await;
    within("the error stream to end", async {
        while errors.recv().await.is_some() {}
    })
    .await;
    assert!(matches!(
        node.emit("conf.x", &1u32).await,
        Err(Error::Closed)
    ));
    assert!(matches!(node.on("conf.x", noop::<u32>), Err(Error::Closed)));
    within("a second close", node.close()).await;
    let down = next_event(&mut downs, "$peer.down for the closed node").await;
    assert_eq!(down.data.peer, node.id().as_str());
    within("the cluster to shut down", c.shutdown()).await;
}

/// 14. `close` drops nothing that already arrived: a handler still busy with one event when
///     its emitter closes runs the events queued behind it before `close` returns.
pub async fn close_runs_what_arrived<F: ClusterFactory>(factory: &F) {
    const EVENTS: u32 = 3;
    let c = cluster(factory, 2).await;
    let node = c.node(1).clone();
    let gate = Arc::new(Semaphore::new(0));
    let handled = Arc::new(AtomicU64::new(0));
    let _busy = node
        .on("conf.drain", {
            let gate = Arc::clone(&gate);
            let handled = Arc::clone(&handled);
            move |_: Event<u32>| {
                let gate = Arc::clone(&gate);
                let handled = Arc::clone(&handled);
                async move {
                    gate.acquire().await.expect("the gate stays open").forget();
                    handled.fetch_add(1, Ordering::SeqCst);
                }
            }
        })
        .expect("valid");
    // Added after the handler on the same pattern, so each event is queued for the
    // handler before the stream sees it.
    let mut seen = node.events::<u32>("conf.drain").expect("valid");
    wait_for_listeners(c.node(0), &["conf.drain"], 2).await;
    for i in 0..EVENTS {
        c.node(0).emit("conf.drain", &i).await.expect("emits");
    }
    for i in 0..EVENTS {
        assert_eq!(next_event(&mut seen, "an event").await.data, i);
    }
    // The handler holds the first event, the others wait in its queue. The close's first
    // poll closes the emitter; only then does the gate open.
    let closing = node.close();
    let mut closing = std::pin::pin!(closing);
    assert!(
        futures_util::poll!(closing.as_mut()).is_pending(),
        "close waits for the busy handler"
    );
    assert!(node.is_closed());
    gate.add_permits(EVENTS as usize);
    within("close", closing).await;
    assert_eq!(
        handled.load(Ordering::SeqCst),
        u64::from(EVENTS),
        "every event that reached the handler's queue was handled"
    );
    assert_eq!(node.tasks_running(), 0, "every task ended");
    within("the cluster to shut down", c.shutdown()).await;
}

/// 15. The hub or broker restarts while events flow: traffic resumes by itself and the
///     loss is reported; a transport without a hub declares so and refuses the hook.
pub async fn hub_restart_resumes_traffic<F: ClusterFactory>(factory: &F) {
    let mut c = cluster(factory, 2).await;
    if !c.capabilities().hub_restart {
        check_no_hub(c).await;
        return;
    }
    let mut stream = c.node(1).events::<u64>("conf.hub").expect("valid");
    wait_for_listeners(c.node(0), &["conf.hub"], 1).await;
    c.node(0).emit("conf.hub", &0u64).await.expect("emits");
    assert_eq!(
        next_event(&mut stream, "an event before the restart")
            .await
            .data,
        0
    );
    within("the hub to restart", c.restart_hub())
        .await
        .expect("restarts");
    // Probe until traffic flows again: the time it takes is what this case bounds.
    let sent = Arc::new(AtomicU64::new(1));
    let probe_sent = Arc::clone(&sent);
    let node = c.node(0).clone();
    let prober = tokio::spawn(async move {
        // One probe every 20 ms: pacing, not synchronisation; the case waits on delivery.
        let mut every = tokio::time::interval(Duration::from_millis(20));
        loop {
            every.tick().await;
            let n = probe_sent.fetch_add(1, Ordering::SeqCst);
            if node.emit("conf.hub", &n).await.is_err() {
                return;
            }
        }
    });
    let resumed = next_event(&mut stream, "traffic after the hub restart").await;
    prober.abort();
    assert!(resumed.data >= 1);
    within("the cluster to shut down", c.shutdown()).await;
}
