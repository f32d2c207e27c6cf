//! The commands beside tap and emit: listeners, peers, bench, pki, forwarder; and every
//! duration flag refusing what is not a sensible number of seconds.

mod common;

use common::{forwarder, line_with, run, stderr, stdout, tap, temp_dir};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listeners_counts_the_whole_bus_and_watches_it_change() {
    let (_forwarder, url) = forwarder().await;
    let counted = run(&["listeners", "user.login", "--url", &url], None).await;
    assert!(counted.status.success(), "{counted:?}");
    assert_eq!(stdout(&counted).trim(), "0 listeners for `user.login`");

    let (_first, _out, _err) = tap(&url, &["user.+", "--id", "first-tap"]).await;
    let counted = run(&["listeners", "user.login", "-u", &url], None).await;
    assert_eq!(
        stdout(&counted).lines().collect::<Vec<_>>(),
        ["1 listener for `user.login`", "  first-tap: user.+"],
        "the count, then where they are"
    );

    let mut watch = common::demitter()
        .args(["listeners", "user.login", "--watch", "--url", &url])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("watch starts");
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(
        watch.stdout.take().expect("stdout"),
    ));
    line_with(&mut lines, "1 listener for").await;
    let (mut second, _out2, _err2) = tap(&url, &["user.login"]).await;
    line_with(&mut lines, "2 listeners for").await;
    second.kill().await.expect("the second tap is killed");
    // Killed, it never said goodbye: its listener leaves the count when it goes silent.
    line_with(&mut lines, "1 listener for").await;

    let peers = run(&["peers", "--url", &url, "--id", "counter"], None).await;
    assert!(peers.status.success(), "{peers:?}");
    let listed = stdout(&peers);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("first-tap  up ") && l.ends_with(" patterns")),
        "its id, since when it is up, its patterns (its own and the $ events a tap shows; no \
         address through a forwarder): {listed}"
    );
    assert!(
        stderr(&peers).contains("besides this node (counter)"),
        "{peers:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_runs_the_harness_with_its_flags() {
    let output = run(
        &[
            "bench",
            "--transport",
            "mem",
            "--duration",
            "0.2",
            "--payload",
            "16",
        ],
        None,
    )
    .await;
    assert!(output.status.success(), "{output:?}");
    let table = stdout(&output);
    assert!(table.contains("| mem"), "a Markdown table: {table}");
    assert!(
        table.contains("reported lost: the losses the system said it had"),
        "a legend of the columns under the table: {table}"
    );
    let refused = run(&["bench", "--duration", "inf"], None).await;
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    // Every name is checked before anything runs: mem is not run first.
    let unknown = run(&["bench", "--transport", "mem,nope"], None).await;
    assert_eq!(unknown.status.code(), Some(2), "{unknown:?}");
    assert!(
        stderr(&unknown).contains("unknown transport `nope`; this build has: mem, zmq")
            && !stderr(&unknown).contains("running mem"),
        "{unknown:?}"
    );
    let peer = run(&["bench", "--peer", "zenoh"], None).await;
    assert_eq!(peer.status.code(), Some(2), "{peer:?}");
    assert!(
        stderr(&peer).contains("needs a build with the `zenoh` feature"),
        "{peer:?}"
    );
}

/// As the `nats` command: the bus flags before the command too, `sub`, `pub` and `req`
/// for `tap`, `emit` and `request`, and `--json` for scripts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bus_flags_go_before_the_command_and_nats_words_work() {
    let (_forwarder, url) = forwarder().await;
    let mut sub = common::demitter()
        .args([
            "-u",
            &url,
            "--id",
            "subscriber",
            "sub",
            "user.+",
            "-n",
            "1",
            "--no-system",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("sub starts");
    let mut said = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(
        sub.stderr.take().expect("stderr"),
    ));
    line_with(&mut said, "listening on `user.+`").await;
    let published = run(
        &["--url", &url, "pub", "user.x", "1", "--wait-for", "1"],
        None,
    )
    .await;
    assert_eq!(
        stdout(&published).trim(),
        "reached 1 listener",
        "{published:?}"
    );
    let status = tokio::time::timeout(common::WAIT, sub.wait())
        .await
        .expect("sub ends after one event")
        .expect("ran");
    assert!(status.success());

    let (_tap, _out, _err) = tap(&url, &["user.+", "--id", "watcher"]).await;
    let counted = run(&["-u", &url, "listeners", "user.x", "--json"], None).await;
    assert_eq!(
        common::json(stdout(&counted).trim()),
        serde_json::json!({"name": "user.x", "listeners": 1, "breakdown": [
            {"node": "watcher", "local": false, "pattern": "user.+", "group": null}
        ]}),
        "{counted:?}"
    );
    let peers = run(&["-u", &url, "--id", "counter", "peers", "--json"], None).await;
    let mut said = common::json(stdout(&peers).trim());
    let up = said["details"][0]["up_seconds"].take();
    assert!(up.as_f64().is_some_and(|s| s >= 0.0), "{peers:?}");
    // user.+ and the $ events a tap shows.
    let patterns = said["details"][0]["patterns"].take();
    assert!(patterns.as_u64().is_some_and(|n| n >= 1), "{peers:?}");
    assert_eq!(
        said,
        serde_json::json!({"node": "counter", "peers": ["watcher"], "details": [
            {"id": "watcher", "proven_name": null, "address": null, "up_seconds": null, "patterns": null}
        ]}),
        "{peers:?}"
    );
    let asked = run(&["-u", &url, "-t", "0.5", "req", "nobody.home", "1"], None).await;
    assert_eq!(asked.status.code(), Some(3), "no responder: {asked:?}");
    let misplaced = run(&["-u", &url, "pki", "hood", "x"], None).await;
    assert_eq!(
        misplaced.status.code(),
        Some(2),
        "pki takes no bus: {misplaced:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duration_flags_refuse_nan_negative_and_absurd_values() {
    for (args, needle) in [
        (vec!["demo", "--duration", "nan"], "not a number of seconds"),
        (
            vec!["emit", "x", "--timeout", "nan"],
            "not a number of seconds",
        ),
        (
            vec!["tap", "x", "--timeout", "NaN"],
            "not a number of seconds",
        ),
        (vec!["tap", "x", "-t", "-1"], "cannot be negative"),
        (vec!["listeners", "x", "-t", "1e12"], "more than a week"),
        (
            vec!["emit", "x", "-n", "2", "-r", "0"],
            "a rate is more than 0",
        ),
        (vec!["demo", "--duration", "0.1"], "at least 0.5 s"),
    ] {
        let output = run(&args, None).await;
        let said = stderr(&output);
        assert!(!output.status.success(), "{args:?}: {said}");
        assert!(said.contains(needle), "{args:?}: {said}");
        assert!(!said.contains("panicked"), "{args:?}: {said}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pki_curve_writes_a_key_pair_once_and_prints_its_allow_line() {
    // A directory that is not there yet: it is made, as `pki hood` makes its own.
    let top = temp_dir("curve");
    let dir = top.join("keys");
    let dir_arg = dir.display().to_string();
    let made = run(&["pki", "curve", "alice", "--dir", &dir_arg], None).await;
    assert!(made.status.success(), "{made:?}");
    let line = stdout(&made);
    let public = std::fs::read_to_string(dir.join("alice.pub")).expect("alice.pub");
    assert_eq!(
        line.trim(),
        format!("alice {}", public.trim()),
        "the allow line"
    );
    let allow = demitter::zmq::curve_keys::AllowList::parse(&line).expect("an allow line");
    assert_eq!(allow.len(), 1);
    let secret = std::fs::read_to_string(dir.join("alice.key")).expect("alice.key");
    assert_eq!(secret.trim().len(), 40, "a Z85 key");
    assert!(!line.contains(secret.trim()), "the secret is never printed");
    let again = run(&["pki", "curve", "alice", "--dir", &dir_arg], None).await;
    assert!(
        !again.status.success() && stderr(&again).contains("never overwritten"),
        "{again:?}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("alice.key")).expect("alice.key"),
        secret,
        "the first key stands"
    );
    let bad = run(&["pki", "curve", "no good", "--dir", &dir_arg], None).await;
    assert!(
        !bad.status.success() && stderr(&bad).contains("no whitespace"),
        "{bad:?}"
    );
    assert!(!dir.join("no good.key").exists(), "nothing written");
    std::fs::remove_dir_all(&top).expect("cleaned up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pki_writes_a_hood_and_its_peers_and_never_overwrites() {
    let dir = temp_dir("pki");
    let hood = dir.join("office");
    let hood_arg = hood.display().to_string();
    let made = run(&["pki", "hood", "office", "--dir", &hood_arg], None).await;
    assert!(made.status.success(), "{made:?}");
    let peer = run(&["pki", "peer", &hood_arg, "alice"], None).await;
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
    let again = run(&["pki", "peer", &hood_arg, "alice"], None).await;
    assert!(
        !again.status.success() && stderr(&again).contains("peer `alice` is already in"),
        "{again:?}"
    );
    let hood_again = run(&["pki", "hood", "office", "--dir", &hood_arg], None).await;
    assert!(
        !hood_again.status.success() && stderr(&hood_again).contains("a hood is already in"),
        "{hood_again:?}"
    );
    let nowhere = dir.join("none").display().to_string();
    let none = run(&["pki", "peer", &nowhere, "bob"], None).await;
    assert!(
        !none.status.success() && stderr(&none).contains("holds no hood"),
        "{none:?}"
    );
    let help = run(&["pki", "--help"], None).await;
    let text = stdout(&help);
    assert!(
        text.starts_with("Certificates and keys: a hood"),
        "not only the QUIC mesh's: {text}"
    );
    for needle in [
        "On one machine",
        "On two machines",
        "a range (4816-4819)",
        "0\n(any free port)",
    ] {
        assert!(text.contains(needle), "{needle}: {text}");
    }
    std::fs::remove_dir_all(&dir).expect("cleaned up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_forwarder_refuses_one_port_for_both_sides() {
    let output = run(
        &["forwarder", "--xsub-port", "7390", "--xpub-port", "7390"],
        None,
    )
    .await;
    let said = stderr(&output);
    assert!(!output.status.success(), "{said}");
    assert!(said.contains("cannot share port 7390"), "{said}");
    assert!(!said.contains("another forwarder"), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emit_help_shows_no_default_that_its_text_contradicts() {
    let help = stdout(&run(&["emit", "--help"], None).await);
    let wait_for = help
        .split("--wait-for <N>")
        .nth(1)
        .and_then(|rest| rest.split("\n  -").next())
        .unwrap_or_else(|| panic!("--wait-for in {help}"));
    assert!(!wait_for.contains("[default"), "{wait_for}");
    assert!(wait_for.contains("heard every node"), "{wait_for}");
}

/// The forwarder takes `DEMITTER_LOG`, as every other command does (over `LOG_LEVEL`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_forwarder_honours_demitter_log() {
    let mut forwarder = common::demitter()
        .args([
            "forwarder",
            "--xsub-port",
            "0",
            "--xpub-port",
            "0",
            "--log-level",
            "error",
        ])
        .env("DEMITTER_LOG", "demitter_forwarder=info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the forwarder starts");
    let mut log = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(
        forwarder.stderr.take().expect("stderr"),
    ));
    let line = line_with(&mut log, "forwarder listening").await;
    assert!(line.contains("INFO"), "{line}");
    forwarder.start_kill().expect("stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_documents_the_log_variable_and_exit_codes() {
    let help = run(&["--help"], None).await;
    let text = stdout(&help);
    assert!(
        text.starts_with("Distributed events from the command line"),
        "the command's own words first, not the crate's description: {text}"
    );
    for needle in [
        "DEMITTER_LOG",
        "Exit status",
        "listeners",
        "peers",
        "bench",
        "[alias: sub]",
        "before it (`demitter -u URL peers`)",
        "leave the bus and exit 0",
        "130 cut\nshort by a signal",
    ] {
        assert!(text.contains(needle), "{needle}: {text}");
    }
}
