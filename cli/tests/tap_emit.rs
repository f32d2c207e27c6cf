//! `demitter emit` into `demitter tap` through a real forwarder (`demitter forwarder`),
//! clear failures for bad input, and `demitter pki`.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStderr, ChildStdout, Command};

const WAIT: Duration = Duration::from_secs(20);

fn demitter() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_demitter"));
    command
        .env_remove("DEMITTER_URL")
        .env_remove("XSUB_PORT")
        .env_remove("XPUB_PORT")
        .kill_on_drop(true);
    command
}

async fn next_line<R: tokio::io::AsyncBufRead + Unpin>(lines: &mut Lines<R>, what: &str) -> String {
    tokio::time::timeout(WAIT, lines.next_line())
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing within {WAIT:?}"))
        .expect("readable")
        .unwrap_or_else(|| panic!("{what}: the stream ended"))
}

/// A forwarder on free ports, and the URL that reaches it.
async fn forwarder() -> (Child, String) {
    let mut child = demitter()
        .args([
            "forwarder",
            "--xsub-port",
            "0",
            "--xpub-port",
            "0",
            "--stats-every",
            "0",
        ])
        .args(["--log-level", "warn"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the forwarder starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let line = next_line(&mut lines, "the forwarder's address line").await;
    let port = |side: &str| -> String {
        let at = line
            .find(side)
            .unwrap_or_else(|| panic!("{side} in {line}"))
            + side.len();
        line[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect()
    };
    let url = format!(
        "zmq://127.0.0.1:{}?xpub={}",
        port("publishers tcp://127.0.0.1:"),
        port("subscribers tcp://127.0.0.1:")
    );
    (child, url)
}

/// A tap, once it says it listens.
async fn tap(
    url: &str,
    args: &[&str],
) -> (
    Child,
    Lines<BufReader<ChildStdout>>,
    Lines<BufReader<ChildStderr>>,
) {
    let mut child = demitter()
        .arg("tap")
        .args(args)
        .args(["--url", url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tap starts");
    let out = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut err = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let said = next_line(&mut err, "tap's listening line").await;
    assert!(said.starts_with("listening on"), "{said}");
    (child, out, err)
}

async fn emit(url: &str, args: &[&str], stdin: Option<&str>) -> std::process::Output {
    let mut child = demitter()
        .arg("emit")
        .args(args)
        .args(["--url", url])
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("emit starts");
    if let Some(text) = stdin {
        let mut input = child.stdin.take().expect("stdin");
        input.write_all(text.as_bytes()).await.expect("written");
    }
    tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .expect("emit ends")
        .expect("emit runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emitted_json_reaches_a_tap_through_a_forwarder() {
    let (_forwarder, url) = forwarder().await;
    let (mut tap, mut out, _err) = tap(&url, &["greet.+", "--count", "2", "--no-system"]).await;

    let sent = emit(
        &url,
        &[
            "greet.bob",
            r#"{"hello": "world", "n": [1, 2]}"#,
            "--wait-for",
            "1",
        ],
        None,
    )
    .await;
    assert!(sent.status.success(), "{sent:?}");
    assert_eq!(
        String::from_utf8_lossy(&sent.stdout).trim(),
        "reached 1 listener"
    );
    let line: serde_json::Value =
        serde_json::from_str(&next_line(&mut out, "the first event").await).expect("a JSON line");
    assert_eq!(line["name"], "greet.bob");
    assert_eq!(line["seq"], 1);
    assert_eq!(
        line["data"],
        serde_json::json!({"hello": "world", "n": [1, 2]})
    );
    assert!(
        line["source"].as_str().is_some_and(|s| !s.is_empty()),
        "{line}"
    );

    // The payload from stdin.
    let piped = emit(
        &url,
        &["greet.carol", "--wait-for", "1"],
        Some("\"from a pipe\""),
    )
    .await;
    assert!(piped.status.success(), "{piped:?}");
    let line: serde_json::Value =
        serde_json::from_str(&next_line(&mut out, "the second event").await).expect("a JSON line");
    assert_eq!(
        (&line["name"], &line["data"]),
        (&"greet.carol".into(), &"from a pipe".into())
    );

    let status = tokio::time::timeout(WAIT, tap.wait())
        .await
        .expect("tap stops after --count events")
        .expect("tap ran");
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_clear_error_and_a_failed_exit() {
    let (_forwarder, url) = forwarder().await;
    for (args, url, needle) in [
        (vec!["x", "1"], "nope://x", "unknown scheme `nope`"),
        (
            vec!["x", "1"],
            "zmq://127.0.0.1",
            "expected zmq://HOST:XSUB_PORT",
        ),
        (
            vec!["x", "1"],
            "zmq://127.0.0.1:1?xpub=2",
            "cannot reach the forwarder at 127.0.0.1:1",
        ),
        (vec!["x", "{bad"], url.as_str(), "the payload is not JSON"),
        (vec!["x.+", "1"], url.as_str(), "invalid"),
        (
            vec!["nobody.listens", "1", "--wait-for", "1", "--timeout", "0.5"],
            url.as_str(),
            "did not appear within",
        ),
    ] {
        let output = emit(url, &args, None).await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} {url}: {stderr}");
        assert!(stderr.contains(needle), "{args:?} {url}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pki_writes_a_hood_and_its_peers() {
    let dir = std::env::temp_dir().join(format!("demitter-cli-pki-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let hood = dir.join("office");
    let run = |args: Vec<String>| async move {
        demitter()
            .arg("pki")
            .args(args)
            .output()
            .await
            .expect("runs")
    };
    let hood_arg = hood.display().to_string();
    let made = run(vec![
        "hood".into(),
        "office".into(),
        "--dir".into(),
        hood_arg.clone(),
    ])
    .await;
    assert!(made.status.success(), "{made:?}");
    let peer = run(vec!["peer".into(), hood_arg.clone(), "alice".into()]).await;
    assert!(peer.status.success(), "{peer:?}");
    for file in ["hood.crt", "hood.key", "alice.crt", "alice.key"] {
        assert!(hood.join(file).is_file(), "{file} written");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        for key in ["hood.key", "alice.key"] {
            let mode = std::fs::metadata(hood.join(key))
                .expect("key")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{key} is private");
        }
    }
    let again = run(vec!["peer".into(), hood_arg, "alice".into()]).await;
    assert!(
        !again.status.success(),
        "an existing peer is never overwritten"
    );
    let nowhere = run(vec![
        "peer".into(),
        dir.join("none").display().to_string(),
        "bob".into(),
    ])
    .await;
    let stderr = String::from_utf8_lossy(&nowhere.stderr);
    assert!(
        !nowhere.status.success() && stderr.contains("holds no hood"),
        "{stderr}"
    );
    let help = demitter()
        .args(["pki", "--help"])
        .output()
        .await
        .expect("runs");
    assert!(String::from_utf8_lossy(&help.stdout).contains("How to set up a mesh"));
    std::fs::remove_dir_all(&dir).expect("cleaned up");
}
