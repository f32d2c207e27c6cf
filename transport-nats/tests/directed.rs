//! Presence on control subjects: what a node says to the bus goes on `PREFIX.c.SENDER`,
//! what it says to one peer (a snapshot of its listeners for a newcomer) on
//! `PREFIX.c.SENDER.PEER`, and counts converge through them. A node skips control frames
//! for other peers unread.

mod support;

use bytes::Bytes;
use demitter_conformance::nats_server::{NatsServer, available};
use demitter_conformance::support::{next_report, wait_for_count, within};
use demitter_conformance::test_config;
use demitter_core::ErrorKind;
use futures_util::StreamExt as _;
use support::{PREFIX, start_node};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newcomer_learns_the_counts_from_frames_for_it_alone() {
    if !available("a_newcomer_learns_the_counts_from_frames_for_it_alone") {
        return;
    }
    let server = tokio::task::block_in_place(NatsServer::start);
    let watcher = within(
        "a plain client connects",
        async_nats::connect(server.addr()),
    )
    .await
    .expect("connects");
    let mut control = watcher
        .subscribe(format!("{PREFIX}.c.>"))
        .await
        .expect("subscribes");
    let old = start_node(&server.addr(), "old", test_config())
        .await
        .expect("starts");
    // The watcher's subscription is in place once it hears the old node, which says hello
    // as it starts and keeps sending heartbeats.
    let first = within("the old node's presence", control.next())
        .await
        .expect("subscribed");
    assert_eq!(first.subject.as_str(), format!("{PREFIX}.c.old"));
    let _listening = old.emitter.events::<u32>("directed.x").expect("valid");

    let new = start_node(&server.addr(), "new", test_config())
        .await
        .expect("starts");
    wait_for_count(&new.emitter, "directed.x", 1).await;
    let for_new = format!("{PREFIX}.c.old.new");
    within("the old node's snapshot, for the newcomer alone", async {
        while let Some(message) = control.next().await {
            if message.subject.as_str() == for_new {
                return;
            }
        }
        panic!("the subscription ended");
    })
    .await;

    // A frame for another peer is skipped unread; one for this node is read (and this
    // one, not being a frame, reported). NATS keeps the sender's order, so by the time the
    // second is reported the first was handled.
    let mut errors = old.emitter.errors();
    for peer in ["someone-else", "old"] {
        watcher
            .publish(
                format!("{PREFIX}.c.watcher.{peer}"),
                Bytes::from_static(b"\xff not a frame"),
            )
            .await
            .expect("queued");
    }
    watcher.flush().await.expect("flushed");
    let report = next_report(&mut errors, ErrorKind::Deserialization).await;
    assert!(report.message.contains(".c.watcher.old"), "{report}");
    assert_eq!(old.emitter.error_counts().deserialization, 1);
    new.emitter.close().await;
    old.emitter.close().await;
}
