//! `demitter emit` into `demitter tap` through a real forwarder (`demitter forwarder`):
//! payloads, order, names, timestamps, repeated emits, clear failures for bad input.

mod common;

use common::{WAIT, emit, forwarder, json, next_line, stderr, stdout, tap};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emitted_json_reaches_a_tap_through_a_forwarder() {
    let (_forwarder, url) = forwarder().await;
    let (mut tap, mut out, _err) = tap(&url, &["greet.+", "--count", "3", "--no-system"]).await;

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
    assert_eq!(stdout(&sent).trim(), "reached 1 listener");
    let line = json(&next_line(&mut out, "the first event").await);
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
    assert!(line.get("time").is_none(), "no time unless asked: {line}");

    // The payload from stdin, for `-`.
    let piped = emit(
        &url,
        &["greet.carol", "-", "--wait-for", "1"],
        Some("\"from a pipe\""),
    )
    .await;
    assert!(piped.status.success(), "{piped:?}");
    let line = json(&next_line(&mut out, "the second event").await);
    assert_eq!(
        (&line["name"], &line["data"]),
        (&"greet.carol".into(), &"from a pipe".into())
    );

    // No payload: null, and stdin is not read (it is left open here, as a terminal is).
    let mut open_stdin = common::demitter()
        .args(["emit", "greet.dave", "--wait-for", "1", "--url", &url])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("emit starts");
    let _held_open = open_stdin.stdin.take();
    let status = tokio::time::timeout(WAIT, open_stdin.wait())
        .await
        .expect("emit does not wait for stdin")
        .expect("emit ran");
    assert!(status.success());
    let line = json(&next_line(&mut out, "the third event").await);
    assert_eq!(
        (&line["name"], &line["data"]),
        (&"greet.dave".into(), &serde_json::Value::Null)
    );

    let status = tokio::time::timeout(WAIT, tap.wait())
        .await
        .expect("tap stops after --count events")
        .expect("tap ran");
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tap_prints_in_the_order_received_with_its_own_name_and_timestamps() {
    let (_forwarder, url) = forwarder().await;
    let (_tap, mut out, _err) = tap(&url, &["order.+", "--id", "watcher", "--timestamps"]).await;
    for round in 1..=5 {
        let sender = format!("sender-{round}");
        let sent = emit(
            &url,
            &[
                "order.paid",
                &round.to_string(),
                "-n",
                "3",
                "--wait-for",
                "1",
                "--id",
                &sender,
            ],
            None,
        )
        .await;
        assert!(sent.status.success(), "{sent:?}");
        assert_eq!(
            stdout(&sent).trim(),
            "emitted 3 events: reached 3 listeners in all (1 to 1 each)"
        );
        // Everything of this sender's, and in the order it happened: it came, emitted
        // three events, and left.
        let mut seen = Vec::new();
        while seen.len() < 5 {
            let line = json(&next_line(&mut out, "the sender's events").await);
            let time = line["time"].as_str().expect("a time").to_owned();
            assert!(
                time.len() > 20 && time.contains('T') && time.ends_with('Z'),
                "{time}"
            );
            let about = line["data"]["peer"].as_str().unwrap_or_default().to_owned();
            match line["name"].as_str().expect("a name") {
                "$peer.up" | "$peer.down" if about != sender => {}
                "$peer.up" | "$peer.down" => {
                    assert_eq!(line["source"], "watcher", "the tap's --id: {line}");
                    seen.push(line["name"].as_str().expect("a name").to_owned());
                }
                "order.paid" => {
                    assert_eq!(line["source"], sender.as_str(), "emit's --id: {line}");
                    seen.push(format!("order.paid {}", line["seq"]));
                }
                other => panic!("unexpected {other}: {line}"),
            }
        }
        assert_eq!(
            seen,
            [
                "$peer.up",
                "order.paid 1",
                "order.paid 2",
                "order.paid 3",
                "$peer.down"
            ],
            "round {round}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emit_paces_repeated_events_at_a_rate() {
    let (_forwarder, url) = forwarder().await;
    let (_tap, mut out, _err) = tap(&url, &["tick", "--no-system"]).await;
    let started = std::time::Instant::now();
    let sent = emit(
        &url,
        &["tick", "7", "-n", "5", "-r", "20", "--wait-for", "1"],
        None,
    )
    .await;
    assert!(sent.status.success(), "{sent:?}");
    for seq in 1..=5 {
        let line = json(&next_line(&mut out, "a tick").await);
        assert_eq!(
            (line["seq"].as_u64(), line["data"].as_u64()),
            (Some(seq), Some(7))
        );
    }
    // Five at 20/s: four gaps of 50 ms at least, whatever the machine's load.
    assert!(started.elapsed() >= std::time::Duration::from_millis(200));
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
        (vec!["x", "{bad"], url.as_str(), "the payload is not JSON"),
        (
            vec!["x", "hello"],
            url.as_str(),
            "a JSON string needs its quotes",
        ),
        (vec!["x.+", "1"], url.as_str(), "invalid"),
        (
            vec!["nobody.listens", "1", "--wait-for", "1", "--timeout", "0.5"],
            url.as_str(),
            "did not appear within",
        ),
    ] {
        let output = emit(url, &args, None).await;
        let said = stderr(&output);
        assert!(!output.status.success(), "{args:?} {url}: {said}");
        assert!(said.contains(needle), "{args:?} {url}: {said}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tap_last_prints_the_retained_values_then_the_live_events() {
    let (_forwarder, url) = forwarder().await;
    let sensor = demitter::connect(&url).await.expect("joins the bus");
    for (name, value) in [("room.temp", 21), ("room.temp", 22), ("room.hum", 40)] {
        sensor.emit_retained(name, &value).await.expect("emits");
    }
    let (mut tap, mut out, _err) =
        tap(&url, &["room.+", "--last", "--count", "3", "--no-system"]).await;
    let mut values: Vec<(String, i64, u64)> = Vec::new();
    for what in ["a retained value", "the other retained value"] {
        let line = json(&next_line(&mut out, what).await);
        values.push((
            line["name"].as_str().unwrap_or_default().to_owned(),
            line["data"].as_i64().unwrap_or_default(),
            line["seq"].as_u64().unwrap_or_default(),
        ));
        assert_eq!(line["source"], sensor.id().as_str(), "{line}");
    }
    assert_eq!(
        values,
        [
            ("room.hum".to_owned(), 40, 1),
            ("room.temp".to_owned(), 22, 2)
        ],
        "each name's last value, sorted by name"
    );
    sensor.emit_retained("room.temp", &23).await.expect("emits");
    let line = json(&next_line(&mut out, "the live event").await);
    assert_eq!((&line["data"], &line["seq"]), (&23.into(), &3.into()));
    let status = tokio::time::timeout(WAIT, tap.wait())
        .await
        .expect("tap stops after --count events")
        .expect("tap ran");
    assert!(status.success());
    tokio::time::timeout(WAIT, sensor.close())
        .await
        .expect("closes");
}

/// Two terminals, as the README has it: `emit --retain` holds a value on the bus until it
/// is stopped, and `tap --last` (with the bus's own events, as by default) prints it first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emit_retain_holds_a_value_that_tap_last_prints() {
    let (_forwarder, url) = forwarder().await;
    let mut holder = common::demitter()
        .args(["emit", "sensor.temp", "21.5", "--retain", "--url", &url])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("emit starts");
    let mut held = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(
        holder.stderr.take().expect("stderr"),
    ));
    common::line_with(&mut held, "holding `sensor.temp`").await;
    let (mut tap, mut out, _err) = tap(&url, &["sensor.+", "--last", "--count", "1"]).await;
    let line = json(&common::line_with(&mut out, "\"sensor.temp\"").await);
    assert_eq!(line["data"], 21.5, "{line}");
    let status = tokio::time::timeout(WAIT, tap.wait())
        .await
        .expect("tap stops after --count events")
        .expect("tap ran");
    assert!(status.success());
    holder.start_kill().expect("the holder is stopped");
}

/// `emit -` emits one event per line of standard input (blank lines skipped), each
/// `--count` times; a line that is not JSON stops it with the line's number.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emit_reads_one_json_document_per_line_of_stdin() {
    let (_forwarder, url) = forwarder().await;
    let (mut tap, mut out, _err) = tap(&url, &["feed.+", "--count", "6", "--no-system"]).await;
    let sent = emit(
        &url,
        &["feed.item", "-", "-n", "2", "--wait-for", "1"],
        Some("1\n\n{\"a\": 2}\n\"three\""),
    )
    .await;
    assert!(sent.status.success(), "{sent:?}");
    assert_eq!(
        stdout(&sent).trim(),
        "emitted 6 events: reached 6 listeners in all (1 to 1 each)"
    );
    let mut data = Vec::new();
    for n in 0..6 {
        data.push(json(&next_line(&mut out, &format!("event {n}")).await)["data"].clone());
    }
    assert_eq!(
        data,
        [
            1.into(),
            1.into(),
            serde_json::json!({"a": 2}),
            serde_json::json!({"a": 2}),
            "three".into(),
            "three".into()
        ]
    );
    tokio::time::timeout(WAIT, tap.wait())
        .await
        .expect("tap stops after --count events")
        .expect("tap ran");
    let bad = emit(&url, &["feed.item", "-"], Some("1\nnope\n2\n")).await;
    assert_eq!(bad.status.code(), Some(1), "{bad:?}");
    assert!(
        stderr(&bad).contains("line 2 of standard input is not JSON")
            && stderr(&bad).contains("(1 event(s) emitted before it)"),
        "{bad:?}"
    );
}

/// The README's group example as it is written: the bus's own events printed beside the
/// group's (from a listener of their own, since a group member cannot take them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taps_in_one_group_share_the_events() {
    let (_forwarder, url) = forwarder().await;
    let args = ["job.+", "--group", "packers", "--count", "1"];
    let (mut first, mut first_out, _e1) = tap(&url, &args).await;
    let (mut second, mut second_out, _e2) = tap(&url, &args).await;
    let sent = emit(&url, &["job.new", "7", "-n", "2", "--wait-for", "2"], None).await;
    assert!(sent.status.success(), "{sent:?}");
    assert!(
        stdout(&sent).contains("reached 2 listeners in all"),
        "each event reached one member of the group: {sent:?}"
    );
    let mut seqs = Vec::new();
    for out in [&mut first_out, &mut second_out] {
        let line = json(&common::line_with(out, "\"job.new\"").await);
        assert_eq!(
            (&line["name"], &line["data"]),
            (&"job.new".into(), &7.into())
        );
        seqs.push(line["seq"].as_u64().unwrap_or_default());
    }
    seqs.sort_unstable();
    assert_eq!(seqs, [1, 2], "one event each");
    for tap in [&mut first, &mut second] {
        let status = tokio::time::timeout(WAIT, tap.wait())
            .await
            .expect("tap stops after --count events")
            .expect("tap ran");
        assert!(status.success());
    }
    let refused = common::run(&["tap", "job.+", "--group", "a.b", "--url", &url], None).await;
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("invalid group name"),
        "{refused:?}"
    );
}
