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
    assert_eq!(stdout(&counted).trim(), "1 listener for `order.new`");

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
