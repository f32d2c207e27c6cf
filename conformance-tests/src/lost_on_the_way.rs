//! Events lost on the way while the link stays up, by the fault-injecting wrapper
//! ([`demitter_core::faulty`]), with recovery off (what a loss that cannot be repaired
//! comes to): a listener's first event, and a burst's tail with every mark that would
//! tell of it for 10 s. Each is reported to the event.

use std::time::Duration;

use demitter_core::faulty::Losing;
use demitter_core::node::RecoveryConfig;
use demitter_core::{EmitterConfig, ErrorKind};

use crate::cluster::{Cluster, ClusterFactory};
use crate::support::{listening_pair, next_event, next_report, test_config, within};

/// How long the tail's marks are all lost: far longer than a sender repeats them (about
/// 3 s).
const MARKS_LOST_FOR: Duration = Duration::from_secs(10);

/// Settings without recovery: what is lost stays lost, and is reported.
fn reporting() -> EmitterConfig {
    EmitterConfig {
        recovery: RecoveryConfig::OFF,
        ..test_config()
    }
}

/// 27. A listener subscribed, node 0 ready: node 0's first event of a name is lost on the
///     way (only events are lost), its second arrives. The listener's node reports one
///     lost, naming node 0 and the event; the second is delivered.
pub async fn a_lost_first_event_is_reported<F: ClusterFactory>(factory: &F) {
    let (c, mut stream) =
        listening_pair(factory, reporting(), "conf.first.+", "conf.first.job").await;
    let mut errors = c.node(1).errors();
    c.faults(0).lose(Losing::Events);
    c.node(0)
        .emit("conf.first.job", &1u32)
        .await
        .expect("emits");
    c.faults(0).lose(Losing::Nothing);
    c.node(0)
        .emit("conf.first.job", &2u32)
        .await
        .expect("emits");
    let event = next_event(&mut stream, "the second event").await;
    assert_eq!(event.data, 2);
    let report = next_report(&mut errors, ErrorKind::Gap).await;
    assert_eq!(
        (
            report.count,
            report.peer.as_deref(),
            report.event.as_deref()
        ),
        (1, Some(c.node(0).id().as_str()), Some("conf.first.job")),
        "{report}"
    );
    within("the cluster to shut down", c.shutdown()).await;
}

/// 28. A listener subscribed gets node 0's first event; then node 0's next three events and
///     every mark it sends (announced, repeated, or asked for) are lost for 10 s while its
///     heartbeats go. Once marks pass again, the listener's node reports the three lost,
///     and nothing else.
pub async fn a_tail_whose_marks_are_lost_for_long_is_reported<F: ClusterFactory>(factory: &F) {
    let (c, mut stream) =
        listening_pair(factory, reporting(), "conf.tail.+", "conf.tail.job").await;
    let mut errors = c.node(1).errors();
    c.node(0).emit("conf.tail.job", &0u32).await.expect("emits");
    assert_eq!(next_event(&mut stream, "the first event").await.data, 0);
    c.faults(0).lose(Losing::EventsAndMarks);
    for n in 1..=3u32 {
        c.node(0).emit("conf.tail.job", &n).await.expect("emits");
    }
    // The fault lasts this long: the time is the scenario, not a wait for anything.
    tokio::time::sleep(MARKS_LOST_FOR).await;
    assert_eq!(
        c.node(1).error_counts().gap,
        0,
        "nothing could tell of the tail yet"
    );
    assert_eq!(c.node(1).peers().len(), 1, "the link stayed up");
    c.faults(0).lose(Losing::Nothing);
    let report = next_report(&mut errors, ErrorKind::Gap).await;
    assert_eq!(
        (
            report.count,
            report.peer.as_deref(),
            report.event.as_deref()
        ),
        (3, Some(c.node(0).id().as_str()), Some("conf.tail.job")),
        "{report}"
    );
    assert!(
        futures_util::FutureExt::now_or_never(stream.recv()).is_none(),
        "none of the tail arrived"
    );
    within("the cluster to shut down", c.shutdown()).await;
}
