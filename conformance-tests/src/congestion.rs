//! The congestion cases: what `emit` does when the transport's queue is full, for each
//! [`Congestion`] an emitter may choose.

use demitter_core::{Congestion, EmitterConfig, ErrorKind, ListenOptions};
use serde_bytes::ByteBuf;

use crate::cluster::{Cluster, ClusterFactory};
use crate::support::{STEP_TIMEOUT, test_config, wait_for_listeners, within};

/// Events in a flood.
const FLOOD: u64 = 400;
/// Their payload: 400 × 128 KiB is 50 MiB, more than any one queue on the way holds.
const FLOOD_BYTES: usize = 128 * 1024;

/// 16. With [`Congestion::Block`], an emitter flooding one listener with more than the
///     transport's queue holds is held back instead of dropping: it reports no loss of its
///     own, and (but for what a transport declares it may lose inside, or a hub drops for
///     a slow subscriber) every event arrives, in order. Where the transport cannot block
///     (`blocking_send` is false), every event is received or reported lost, as with
///     `Drop`.
pub async fn congestion_block_holds_the_emitter_back<F: ClusterFactory>(factory: &F) {
    let deadline = STEP_TIMEOUT / 2;
    flood(factory, Congestion::Block { deadline }).await;
}

/// 17. With [`Congestion::Drop`] (the default) the same flood never waits, and every event
///     is received, in order, or reported lost.
pub async fn congestion_drop_reports_what_it_drops<F: ClusterFactory>(factory: &F) {
    flood(factory, Congestion::Drop).await;
}

async fn flood<F: ClusterFactory>(factory: &F, congestion: Congestion) {
    let config = EmitterConfig {
        congestion,
        ..test_config()
    };
    let c = within("the cluster to start", factory.build(2, config))
        .await
        .expect("the cluster starts");
    let mut events = c
        .node(1)
        .events_with::<(u64, ByteBuf)>(
            "conf.flood",
            ListenOptions::default().capacity(FLOOD as usize),
        )
        .expect("valid");
    let mut errors = c.node(1).errors();
    wait_for_listeners(c.node(0), &["conf.flood"], 1).await;
    let sender = c.node(0).clone();
    let emitting = tokio::spawn(async move {
        let blob = ByteBuf::from(vec![0xa5; FLOOD_BYTES]);
        for i in 0..FLOOD {
            sender.emit("conf.flood", &(i, &blob)).await.expect("emits");
        }
    });

    let (mut received, mut reported, mut next) = (0u64, 0u64, 0u64);
    within("every event of the flood, or its loss", async {
        while received + reported < FLOOD {
            tokio::select! {
                event = events.recv() => {
                    let (i, blob) = event.expect("the stream is open").expect("decodes").data;
                    assert!(i >= next, "in order: {i} after {next}");
                    assert_eq!(blob.len(), FLOOD_BYTES);
                    next = i + 1;
                    received += 1;
                }
                report = errors.recv() => {
                    let report = report.expect("the error stream is open");
                    if matches!(report.kind, ErrorKind::Gap | ErrorKind::Lagged) {
                        reported += report.count;
                    }
                }
            }
        }
    })
    .await;
    within("the flood to be emitted", emitting)
        .await
        .expect("the emitting task");
    assert_eq!(
        received + reported,
        FLOOD,
        "received or reported, never both"
    );

    let sender_lost = c.node(0).error_counts().network;
    println!(
        "{congestion:?}: {received} of {FLOOD} received, {reported} reported lost; the sender reported {sender_lost} dropped"
    );
    let blocks = c.node(0).transport_capabilities().blocking_send;
    if matches!(congestion, Congestion::Block { .. }) && blocks {
        assert_eq!(sender_lost, 0, "a blocking emitter dropped none of its own");
        let caps = c.capabilities();
        if !caps.burst_loss && !caps.hub_restart {
            assert_eq!(received, FLOOD, "nothing lost on the way");
        }
    }
    within("the cluster to shut down", c.shutdown()).await;
}
