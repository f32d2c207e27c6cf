//! `request` and `reply` through a forwarder: a reply process answers, a request process
//! prints the answer; each way a request goes unanswered is its own exit status.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{demitter, forwarder, json, next_line, run, stderr, stdout};
use demitter::Event;
use tokio::io::{AsyncBufReadExt as _, BufReader};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_process_answers_a_request_process() {
    let (_forwarder, url) = forwarder().await;
    let mut replier = demitter()
        .args(["reply", "stock.+", "7", "--count", "1", "--url", &url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("reply starts");
    let mut out = BufReader::new(replier.stdout.take().expect("stdout")).lines();
    let mut err = BufReader::new(replier.stderr.take().expect("stderr")).lines();
    let said = next_line(&mut err, "reply's first line").await;
    assert!(said.starts_with("answering `stock.+`"), "{said}");

    let asked = run(
        &["request", "stock.count", r#""apples""#, "--url", &url],
        None,
    )
    .await;
    assert!(asked.status.success(), "{asked:?}");
    assert_eq!(stdout(&asked).trim(), "7", "the reply's data, as JSON");
    assert!(stderr(&asked).contains("reply from "), "{asked:?}");
    let line = json(&next_line(&mut out, "the request reply answered").await);
    assert_eq!(
        (&line["name"], &line["data"]),
        (&"stock.count".into(), &"apples".into())
    );
    let status = tokio::time::timeout(common::WAIT, replier.wait())
        .await
        .expect("reply stops after --count requests")
        .expect("reply ran");
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_unanswered_request_has_its_own_exit_status() {
    let (_forwarder, url) = forwarder().await;
    let responder = demitter::connect(&url).await.expect("joins the bus");
    let _failing = responder
        .serve("stock.fail", |_: Event<serde_json::Value>| async {
            Err::<u32, _>("out of stock")
        })
        .expect("valid");
    // Holds each request until the test lets go, after the requester gave up.
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    let held = std::sync::Arc::clone(&gate);
    let _silent = responder
        .serve("stock.slow", move |_: Event<serde_json::Value>| {
            let held = std::sync::Arc::clone(&held);
            async move {
                let _ = held.acquire().await;
                Ok::<u32, String>(0)
            }
        })
        .expect("valid");
    for (args, code, says) in [
        (
            &["request", "nobody.serves", "--timeout", "0.5"][..],
            3,
            "no responder",
        ),
        (&["request", "stock.fail"], 4, "out of stock"),
        (
            &["request", "stock.slow", "--reply-timeout", "0.3"],
            6,
            "no answer",
        ),
    ] {
        let mut all = args.to_vec();
        all.extend_from_slice(&["--url", &url]);
        let output = run(&all, None).await;
        assert_eq!(output.status.code(), Some(code), "{args:?}: {output:?}");
        assert!(stderr(&output).contains(says), "{args:?}: {output:?}");
    }
    gate.add_permits(1);
    tokio::time::timeout(Duration::from_secs(20), responder.close())
        .await
        .expect("closes");
}

/// `reply --command`: each request's JSON goes to the command's stdin, its stdout is the
/// reply; a command that fails is the responder failing (exit 4), with its stderr.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_runs_a_command_per_request() {
    let (_forwarder, url) = forwarder().await;
    let mut replier = demitter()
        .args([
            "reply",
            "calc.+",
            "--command",
            r#"read x; if [ "$DEMITTER_REQUEST_NAME" = calc.fail ]; then echo "no $x" >&2; exit 3; fi; echo $((x * 2))"#,
            "--url",
            &url,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("reply starts");
    let mut err = BufReader::new(replier.stderr.take().expect("stderr")).lines();
    next_line(&mut err, "reply's first line").await;
    let doubled = run(&["request", "calc.double", "21", "--url", &url], None).await;
    assert!(doubled.status.success(), "{doubled:?}");
    assert_eq!(stdout(&doubled).trim(), "42");
    let failed = run(&["request", "calc.fail", "5", "--url", &url], None).await;
    assert_eq!(failed.status.code(), Some(4), "{failed:?}");
    assert!(
        stderr(&failed).contains("exit status: 3") && stderr(&failed).contains("no 5"),
        "{failed:?}"
    );
    replier.start_kill().expect("stopped");
}
