//! A short-lived `demitter emit` has heard the bus before it emits: through a forwarder,
//! twenty emits each reach both taps and say so; and a second node with a running node's
//! `--id` is refused with a message that names the id.

mod common;

use common::{forwarder, run, stderr, tap};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_short_lived_emits_through_a_forwarder_each_reach_both_taps() {
    let (_forwarder, url) = forwarder().await;
    // Issue 31: 13 of 20 used to say `reached 1 listener`.
    common::short_lived_emits_reach_two_taps(&url, 20).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_node_with_a_running_nodes_id_is_refused_naming_the_id() {
    let (_forwarder, url) = forwarder().await;
    let (_first, _out, _err) = tap(&url, &["q.+", "--id", "dup", "--no-system"]).await;
    let second = run(&["tap", "q.+", "--id", "dup", "--url", &url], None).await;
    assert_eq!(second.status.code(), Some(1), "{second:?}");
    let said = stderr(&second);
    assert!(
        said.contains("another node on the bus already has the id \"dup\""),
        "{said}"
    );
    assert!(!said.contains("listening on"), "{said}");
    let emitted = run(&["emit", "q.x", "--id", "dup", "--url", &url], None).await;
    assert_eq!(emitted.status.code(), Some(1), "{emitted:?}");
    assert!(
        stderr(&emitted).contains("already has the id \"dup\""),
        "{emitted:?}"
    );
}
