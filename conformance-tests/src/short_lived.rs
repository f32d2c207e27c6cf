//! The short-lived emitter: a process that joins, emits once and leaves (a CLI call, a cron
//! job). Waiting until it has heard the bus, it reaches every listener that was there and
//! counts them all.

use crate::cluster::{Cluster, ClusterFactory};
use crate::support::{cluster, next_event, within};

/// How many short-lived emitters come and go.
const EMITTERS: u32 = 20;

/// 26. Twenty times, a fresh node (node 0 started anew: a new incarnation that knows
///     nothing) joins, waits until it has heard the bus (`ready`; where readiness is
///     declared to come by time, also until it counts the listeners), emits once and closes;
///     three listener nodes, subscribed first, each get all twenty in order, every
///     `Delivery` says 3 and that the bus was heard, and nobody reports a loss.
pub async fn short_lived_emitters_reach_every_listener<F: ClusterFactory>(factory: &F) {
    let mut c = cluster(factory, 4).await;
    let mut streams = Vec::new();
    for i in 1..4 {
        let stream = c.node(i).events::<u32>("conf.brief.+").expect("valid");
        within("a listener to be subscribed", stream.subscribed())
            .await
            .expect("subscribed");
        streams.push(stream);
    }
    for round in 0..EMITTERS {
        within("node 0 to close", c.node(0).close()).await;
        within("a fresh node 0", c.restart(0))
            .await
            .expect("node 0 starts again");
        within("the fresh node to hear the bus", c.node(0).ready())
            .await
            .expect("it hears the bus");
        if c.capabilities().ready_by_time {
            // Declared: ready by time, before every peer has reconnected to it.
            within(
                "the fresh node to count the three listeners",
                c.node(0).wait_for_listeners("conf.brief.job", 3),
            )
            .await
            .expect("counted");
        }
        let delivery = c
            .node(0)
            .emit("conf.brief.job", &round)
            .await
            .expect("emits");
        assert_eq!(
            (delivery.remote, delivery.unheard, delivery.ready),
            (3, 0, true),
            "emitter {round}: {delivery:?}"
        );
    }
    within("the last emitter to close", c.node(0).close()).await;
    let mut errors: Vec<_> = (1..4).map(|i| c.node(i).errors()).collect();
    for (i, stream) in streams.iter_mut().enumerate() {
        for round in 0..EMITTERS {
            let event = next_event(stream, "an event of a short-lived emitter").await;
            assert_eq!(event.data, round, "listener node {}", i + 1);
        }
    }
    for i in 1..4 {
        let counts = c.node(i).error_counts();
        let mut said = Vec::new();
        while let Some(Some(r)) = futures_util::FutureExt::now_or_never(errors[i - 1].recv()) {
            said.push(r.message);
        }
        assert_eq!(
            counts.gap, 0,
            "node {i} reports no loss: {counts:?} {said:?}"
        );
    }
    within("the cluster to shut down", c.shutdown()).await;
}
