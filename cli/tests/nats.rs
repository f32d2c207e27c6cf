//! `tap`, `emit` and `listeners` on a NATS bus: a `nats-server` started for the test.

mod common;

use common::{json, next_line, run, stdout, tap};
use demitter_conformance::nats_server::{NatsServer, available};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tap_emit_and_listeners_take_nats_urls() {
    if !available("tap_emit_and_listeners_take_nats_urls") {
        return;
    }
    let server = tokio::task::block_in_place(NatsServer::start);
    let url = format!("nats://{}?prefix=cli-test", server.addr());
    let (mut tap, mut out, _err) = tap(&url, &["order.+", "--count", "1", "--no-system"]).await;

    let counted = run(&["listeners", "order.new", "--url", &url], None).await;
    assert!(counted.status.success(), "{counted:?}");
    let said = stdout(&counted);
    let lines: Vec<&str> = said.lines().collect();
    assert_eq!(lines.first(), Some(&"1 listener for `order.new`"), "{said}");
    assert!(
        lines.get(1).is_some_and(|l| l.ends_with(": order.+")),
        "the tap's node and pattern: {said}"
    );

    let sent = run(
        &[
            "emit",
            "order.new",
            r#"{"id": 7}"#,
            "--wait-for",
            "1",
            "--url",
            &url,
        ],
        None,
    )
    .await;
    assert!(sent.status.success(), "{sent:?}");
    assert_eq!(stdout(&sent).trim(), "reached 1 listener");
    let line = json(&next_line(&mut out, "the event through NATS").await);
    assert_eq!(
        (&line["name"], &line["data"]),
        (&"order.new".into(), &serde_json::json!({"id": 7}))
    );
    let status = tokio::time::timeout(common::WAIT, tap.wait())
        .await
        .expect("tap stops after --count events")
        .expect("tap ran");
    assert!(status.success());
}

/// Issue 31 on NATS: two taps, ten short-lived emits, each heard the bus first and reached
/// both, and both taps got all ten.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_short_lived_emits_each_reach_both_taps() {
    if !available("ten_short_lived_emits_each_reach_both_taps") {
        return;
    }
    let server = tokio::task::block_in_place(NatsServer::start);
    let url = format!("nats://{}?prefix=cli-brief", server.addr());
    common::short_lived_emits_reach_two_taps(&url, 10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pki_commands_make_an_authenticated_nats_bus() {
    if !available("the_pki_commands_make_an_authenticated_nats_bus") {
        return;
    }
    let dir = common::temp_dir("nats-pki");
    let hood = dir.join("office");
    let hood_arg = hood.display().to_string();
    for args in [
        &["pki", "hood", "office", "--dir", &hood_arg][..],
        &["pki", "peer", &hood_arg, "alice"],
        &["pki", "peer", &hood_arg, "bob"],
        &["pki", "server", &hood_arg, "nats-1", "--host", "127.0.0.1"],
    ] {
        let made = run(args, None).await;
        assert!(made.status.success(), "{args:?}: {made:?}");
    }
    let again = run(
        &["pki", "server", &hood_arg, "nats-1", "--host", "127.0.0.1"],
        None,
    )
    .await;
    assert!(
        !again.status.success(),
        "a server certificate is never overwritten"
    );
    let config = run(
        &["pki", "nats-config", &hood_arg, "nats-1", "alice", "bob"],
        None,
    )
    .await;
    assert!(config.status.success(), "{config:?}");
    let server = tokio::task::block_in_place(|| NatsServer::start_configured(&stdout(&config)));

    let url = |peer: &str| format!("nats://{}?hood={hood_arg}&peer={peer}", server.addr());
    let (mut tap, mut out, _err) =
        tap(&url("alice"), &["order.+", "--count", "1", "--no-system"]).await;
    let sent = run(
        &[
            "emit",
            "order.new",
            "7",
            "--wait-for",
            "1",
            "--url",
            &url("bob"),
        ],
        None,
    )
    .await;
    assert!(sent.status.success(), "{sent:?}");
    let line = json(&next_line(&mut out, "bob's event, through TLS").await);
    assert_eq!(
        (&line["source"], &line["data"]),
        (&"bob".into(), &serde_json::json!(7)),
        "the id is the certificate's name"
    );
    let status = tokio::time::timeout(common::WAIT, tap.wait())
        .await
        .expect("tap stops after --count events")
        .expect("tap ran");
    assert!(status.success());
    // A peer the configuration does not name is refused, and says why.
    let made = run(&["pki", "peer", &hood_arg, "mallory"], None).await;
    assert!(made.status.success());
    let refused = run(&["emit", "order.new", "1", "--url", &url("mallory")], None).await;
    assert!(!refused.status.success(), "{refused:?}");
    assert!(
        common::stderr(&refused).contains("authorization violation"),
        "{refused:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
