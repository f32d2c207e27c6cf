//! Recovery (`EmitterConfig::recovery` on): events the fault-injecting wrapper
//! ([`demitter_core::faulty`]) loses on the way come back from their sender's window, and
//! the listener gets every one, in order, with nothing reported lost.

use std::time::Duration;

use demitter_core::faulty::Losing;
use demitter_core::node::RecoveryConfig;

use crate::cluster::{Cluster, ClusterFactory};
use crate::support::{listening_pair, next_event, test_config, within};

/// [`test_config`] with a window of 16 MiB and 10 s, and 2 s to repair a loss.
fn recovering_config() -> demitter_core::EmitterConfig {
    demitter_core::EmitterConfig {
        recovery: RecoveryConfig {
            window_bytes: 16 << 20,
            window_age: Duration::from_secs(10),
            repair_deadline: Duration::from_secs(2),
            linger: Duration::from_secs(2),
        },
        ..test_config()
    }
}

/// 30. With recovery on, node 1's listener subscribed and node 0 ready: node 0's events 2
///     and 3 are lost on the way (only events), 4 arrives; then its last two, 5 and 6,
///     are lost (the marks that tell of them pass). The listener gets 1 to 6, in order;
///     nothing is reported lost, and its node counts 4 recovered.
pub async fn lost_events_are_recovered_in_order<F: ClusterFactory>(factory: &F) {
    let (c, mut stream) = listening_pair(
        factory,
        recovering_config(),
        "conf.repair.+",
        "conf.repair.job",
    )
    .await;
    let node = c.node(0);
    node.emit("conf.repair.job", &1u32).await.expect("emits");
    c.faults(0).lose(Losing::Events);
    node.emit("conf.repair.job", &2u32).await.expect("emits");
    node.emit("conf.repair.job", &3u32).await.expect("emits");
    c.faults(0).lose(Losing::Nothing);
    node.emit("conf.repair.job", &4u32).await.expect("emits");
    for n in 1..=4 {
        assert_eq!(next_event(&mut stream, "the next event").await.data, n);
    }
    c.faults(0).lose(Losing::Events);
    node.emit("conf.repair.job", &5u32).await.expect("emits");
    node.emit("conf.repair.job", &6u32).await.expect("emits");
    c.faults(0).lose(Losing::Nothing);
    for n in 5..=6 {
        assert_eq!(next_event(&mut stream, "the tail").await.data, n);
    }
    let counts = c.node(1).error_counts();
    assert_eq!((counts.gap, counts.recovered), (0, 4), "{counts:?}");
    within("the cluster to shut down", c.shutdown()).await;
}

/// 31. With recovery on and a linger far longer than a step may take: node 0 emits three
///     events, all lost on the way, and closes. Its close lingers until node 1 has them
///     (repaired from node 0's window), then ends: node 1's listener gets 1, 2, 3 in order,
///     nothing is reported lost, and node 0's close returns within a step.
pub async fn a_closing_emitter_lingers_until_its_last_events_are_repaired<F: ClusterFactory>(
    factory: &F,
) {
    let mut config = recovering_config();
    config.recovery.linger = Duration::from_secs(600);
    let (c, mut stream) = listening_pair(factory, config, "conf.linger.+", "conf.linger.job").await;
    c.faults(0).lose(Losing::Events);
    for n in 1..=3u32 {
        c.node(0).emit("conf.linger.job", &n).await.expect("emits");
    }
    within(
        "node 0 to close, once node 1 has everything",
        c.node(0).close(),
    )
    .await;
    for n in 1..=3 {
        assert_eq!(next_event(&mut stream, "the last events").await.data, n);
    }
    let counts = c.node(1).error_counts();
    assert_eq!((counts.gap, counts.recovered), (0, 3), "{counts:?}");
    within("the cluster to shut down", c.shutdown()).await;
}
