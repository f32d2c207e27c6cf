//! A short-lived `demitter emit` has heard the bus before it emits: through a forwarder,
//! twenty emits each reach both taps and say so; and a second node with a running node's
//! `--id` is refused with a message that names the id.

mod common;

use common::{emit, forwarder, json, next_line, run, stderr, stdout, tap};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_short_lived_emits_through_a_forwarder_each_reach_both_taps() {
    let (_forwarder, url) = forwarder().await;
    let (_a, mut at_a, _) = tap(&url, &["q.+", "--no-system"]).await;
    let (_b, mut at_b, _) = tap(&url, &["q.+", "--no-system"]).await;
    for n in 0..20 {
        let sent = emit(&url, &["q.x", &n.to_string()], None).await;
        assert!(sent.status.success(), "{sent:?}");
        // Issue 31: 13 of 20 used to say `reached 1 listener`.
        assert_eq!(stdout(&sent).trim(), "reached 2 listeners", "emit {n}");
        for (name, out) in [("a", &mut at_a), ("b", &mut at_b)] {
            let line = json(&next_line(out, name).await);
            assert_eq!(line["data"], n, "tap {name}: {line}");
        }
    }
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
