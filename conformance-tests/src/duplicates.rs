//! Two live nodes with one id: the newer gives way, the older is told and goes on.

use demitter_core::{Error, ErrorKind};

use crate::cluster::{Cluster, ClusterFactory};
use crate::support::{cluster, next_event, next_report, within};

/// 29. A node started with node 0's id while node 0 runs (a second process with the same
///     id, or the same certificate) gives way: waiting on it ends with
///     [`Error::DuplicateId`] naming the id, and so do `ready` and `emit` afterwards, and
///     it says why on its error channel. Node 0 is told (a `refused` report) and goes on:
///     node 1's listener still gets its events.
pub async fn duplicate_ids_are_refused<F: ClusterFactory>(factory: &F) {
    let c = cluster(factory, 2).await;
    let id = c.node(0).id().to_string();
    let mut stream = c.node(1).events::<u32>("conf.dup.+").expect("valid");
    within("node 1's listener to be subscribed", stream.subscribed())
        .await
        .expect("subscribed");
    let mut older_errors = c.node(0).errors();
    let namesake = within("the namesake to start", c.start_namesake(0))
        .await
        .expect("it starts");
    // Node 1's listener is the only one: the count never reaches 2, so this wait ends
    // only when the namesake stops, and says why.
    let gave_way = within(
        "the namesake to give way",
        namesake.wait_for_listeners("conf.dup.x", 2),
    )
    .await;
    let is_refusal = |result: &Result<(), Error>| matches!(result, Err(Error::DuplicateId { id: named, .. }) if *named == id);
    assert!(is_refusal(&gave_way), "{gave_way:?}");
    assert!(is_refusal(&namesake.ready().await));
    let emitted = namesake.emit("conf.dup.x", &0u32).await;
    assert!(
        matches!(&emitted, Err(Error::DuplicateId { id: named, .. }) if *named == id),
        "{emitted:?}"
    );
    assert!(
        namesake.error_counts().refused >= 1,
        "the namesake says why: {:?}",
        namesake.error_counts()
    );
    let told = next_report(&mut older_errors, ErrorKind::Refused).await;
    assert!(told.message.contains(&id), "{told}");
    // Node 0 goes on, and node 1 hears it.
    within(
        "node 0 to count node 1's listener",
        c.node(0).wait_for_listeners("conf.dup.x", 1),
    )
    .await
    .expect("counted");
    within("node 0 to be ready", c.node(0).ready())
        .await
        .expect("node 0 stays");
    let delivery = c.node(0).emit("conf.dup.x", &7u32).await.expect("emits");
    assert_eq!(delivery.remote, 1, "{delivery:?}");
    let event = next_event(&mut stream, "node 0's event after the namesake left").await;
    assert_eq!((event.data, &*event.source), (7, id.as_str()));
    within("the namesake to close", namesake.close()).await;
    within("the cluster to shut down", c.shutdown()).await;
}
