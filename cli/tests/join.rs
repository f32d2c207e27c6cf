//! Every command joins its bus first and fails, with a non-zero exit and one line that
//! names the cause, when it cannot: nothing there, the ports swapped, a server that is not
//! a forwarder, a QUIC peer of another hood, a seed that does not answer. A forwarder's log
//! stays quiet under normal use, and a lost forwarder is said once and its return too.

mod common;

use common::{
    emit, forwarder, forwarder_on, line_with, next_line, run, stderr, tap, tap_with, temp_dir,
};
use demitter::quic::pki::{create_hood, create_peer};
use demitter::quic::{PeerIdentity, QuicConfig, QuicTransport};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Runs `args`, expects exit 1 and a stderr of one `error:` line containing `needle`.
async fn fails_with_one_line(args: &[&str], needle: &str) {
    exits_with_one_line(args, 1, needle).await;
}

/// Runs `args`, expects exit `code` and a stderr of one `error:` line containing `needle`.
async fn exits_with_one_line(args: &[&str], code: i32, needle: &str) {
    let output = run(args, None).await;
    let said = stderr(&output);
    assert_eq!(output.status.code(), Some(code), "{args:?}: {said}");
    assert_eq!(said.lines().count(), 1, "one line, not a log: {said}");
    assert!(
        said.starts_with("error: ") && said.contains(needle),
        "{args:?}: {said}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_zmq_address_fails_at_once_with_its_cause() {
    let (_forwarder, url) = forwarder().await;
    let ports: Vec<&str> = url
        .trim_start_matches("zmq://127.0.0.1:")
        .split("?xpub=")
        .collect();
    let swapped = format!("zmq://127.0.0.1:{}?xpub={}", ports[1], ports[0]);
    for command in [vec!["emit", "user.x", "1"], vec!["tap", "#"]] {
        let mut args = command.clone();
        args.extend(["--url", &swapped]);
        fails_with_one_line(&args, "are the two ports swapped?").await;
    }

    // Nothing listening, with a hint to start a forwarder.
    let free = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let port = free.local_addr().expect("bound").port();
    drop(free);
    let nothing = format!("zmq://127.0.0.1:{port}");
    fails_with_one_line(
        &["emit", "user.x", "--url", &nothing],
        "`demitter forwarder` starts one",
    )
    .await;

    // A server that answers, but not in ZMTP (an HTTP server, say).
    let http = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let http_port = http.local_addr().expect("bound").port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = http.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 64];
                let _ = stream.read(&mut buf).await;
                let _ = stream
                    .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                    .await;
            });
        }
    });
    let web = format!("zmq://127.0.0.1:{http_port}?xpub={http_port}");
    for command in [vec!["emit", "user.x", "1"], vec!["tap", "#"]] {
        let mut args = command.clone();
        args.extend(["--url", &web]);
        fails_with_one_line(&args, "does not answer as a ZeroMQ forwarder").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quic_peer_of_another_hood_or_a_dead_seed_fails_the_join() {
    let dir = temp_dir("join-quic");
    let (office, other) = (dir.join("office"), dir.join("other"));
    create_hood(&office, "office").expect("a hood");
    create_hood(&other, "other").expect("another hood");
    for (hood, peer) in [(&office, "alice"), (&office, "carol"), (&other, "bob")] {
        create_peer(hood, peer).expect("a peer");
    }
    let identity = PeerIdentity::load(&office, "alice").expect("alice's files");
    let transport =
        QuicTransport::bind(QuicConfig::new(identity).loopback()).expect("alice listens");
    let seed = transport.local_addr().to_string();
    let alice = demitter::Emitter::new(transport).expect("alice's emitter");
    let url = |hood: &std::path::Path, peer: &str, seed: &str| {
        format!(
            "quic://127.0.0.1:0?hood={}&peer={peer}&seed={seed}",
            hood.display()
        )
    };
    fails_with_one_line(
        &["emit", "hello", "--url", &url(&other, "bob", &seed)],
        "a peer of another hood?",
    )
    .await;

    // A seed where nothing answers: a UDP port held, and never read.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("a port");
    let silent_addr = silent.local_addr().expect("bound").to_string();
    fails_with_one_line(
        &[
            "emit",
            "hello",
            "-t",
            "1",
            "--url",
            &url(&office, "carol", &silent_addr),
        ],
        "no seed answered within 1s",
    )
    .await;

    // The same peer joins through the right seed.
    let joined = run(
        &["emit", "hello", "--url", &url(&office, "carol", &seed)],
        None,
    )
    .await;
    assert!(joined.status.success(), "{joined:?}");

    // A peer whose files are missing is told how to make them.
    fails_with_one_line(
        &["emit", "hello", "--url", &url(&office, "dave", &seed)],
        "`demitter pki peer",
    )
    .await;
    // A usage error: the certificate names the node.
    exits_with_one_line(
        &[
            "emit",
            "hello",
            "--id",
            "x",
            "--url",
            &url(&office, "carol", &seed),
        ],
        2,
        "--id does not apply to quic://",
    )
    .await;
    alice.close().await;
    std::fs::remove_dir_all(&dir).expect("cleaned up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn normal_use_leaves_no_warning_in_the_forwarders_log() {
    let mut forwarder = forwarder_on((0, 0), true).await;
    let url = forwarder.url.clone();
    let (mut tap, mut out, _err) = tap(&url, &["user.+", "--count", "1", "--no-system"]).await;
    let sent = emit(&url, &["user.x", "1", "--wait-for", "1"], None).await;
    assert!(sent.status.success(), "{sent:?}");
    next_line(&mut out, "the event").await;
    tokio::time::timeout(common::WAIT, tap.wait())
        .await
        .expect("tap ends")
        .expect("tap ran");
    // The forwarder saw probes, a tap and an emit come and go; then it is stopped.
    forwarder.child.start_kill().expect("stopped");
    let mut log = forwarder.log.take().expect("its log");
    let mut lines = Vec::new();
    while let Ok(Some(line)) = log.next_line().await {
        lines.push(line);
    }
    assert!(
        lines.iter().all(|l| !l.contains("WARN")),
        "no warnings: {lines:#?}"
    );
    assert!(
        lines.iter().all(|l| !l.contains('\x1b')),
        "no colour codes in a redirected log: {lines:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_forwarder_is_said_once_and_its_return_too() {
    let mut first = forwarder_on((0, 0), false).await;
    let url = first.url.clone();
    let (_tap, mut out, mut err) = tap_with(&url, &["#"], &[]).await;
    first.child.kill().await.expect("the forwarder is killed");
    let lost = line_with(&mut out, "\"$error\"").await;
    assert!(lost.contains("lost the forwarder"), "{lost}");
    let _again = forwarder_on((first.xsub, first.xpub), false).await;
    // Until the line that says it is back, stderr says nothing of the loss: its report is
    // the $error line above, said once.
    loop {
        let line = next_line(&mut err, "the reconnection").await;
        assert!(!line.contains('\x1b'), "no colour codes: {line}");
        assert!(
            !line.contains("distributed error") && !line.contains("lost the forwarder"),
            "{line}"
        );
        if line.contains("reconnected to the forwarder") {
            break;
        }
    }
}

/// A CURVE forwarder that does not allow the key: the client is told so in the handshake
/// (ZMTP's ERROR) and says it, in one line; `--id` on a CURVE URL is a usage error, since
/// the key names the node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_curve_key_the_forwarder_does_not_allow_fails_the_join_with_its_cause() {
    use demitter::forwarder::{Forwarder, ForwarderConfig, ForwarderCurve};
    use demitter::zmq::curve_keys::{AllowList, CurveSecretKey, write_key_pair};
    let dir = temp_dir("join-curve");
    let eve = write_key_pair(&dir.join("keys"), "eve").expect("eve's keys");
    let allow = AllowList::parse(&format!(
        "alice {}",
        CurveSecretKey::generate().public_key()
    ))
    .expect("an allow list");
    let forwarder = Forwarder::bind(ForwarderConfig {
        curve: Some(ForwarderCurve::new(CurveSecretKey::generate(), allow)),
        ..ForwarderConfig::loopback_free_ports()
    })
    .await
    .expect("a CURVE forwarder");
    let url = format!("{}&secret={}", forwarder.url(), eve.secret.display());
    assert!(
        url.contains("&curve="),
        "the forwarder's URL names its key: {url}"
    );
    for command in [vec!["emit", "user.x", "1"], vec!["tap", "#"]] {
        let mut args = command.clone();
        args.extend(["--url", &url]);
        fails_with_one_line(&args, "does not allow this client's CURVE key").await;
    }
    exits_with_one_line(
        &["emit", "user.x", "--id", "mallory", "--url", &url],
        2,
        "--id does not apply to a CURVE zmq:// URL",
    )
    .await;
    forwarder.close().await;
    std::fs::remove_dir_all(&dir).expect("cleaned up");
}

/// A QUIC node of the hood at `office` named `name`, seeded with `seed`; with the address
/// it listens on.
fn quic_node(
    office: &std::path::Path,
    name: &str,
    seed: Option<String>,
) -> (demitter::Emitter, String) {
    let identity = PeerIdentity::load(office, name).expect("the peer's files");
    let mut config = QuicConfig::new(identity).loopback();
    config.seeds = seed.into_iter().collect();
    let transport = QuicTransport::bind(config).expect("listens");
    let addr = transport.local_addr().to_string();
    (demitter::Emitter::new(transport).expect("an emitter"), addr)
}

/// Short-lived QUIC peers (an `emit` that joins through one node, emits and leaves) are
/// nobody's refusal: the nodes of the mesh (one the visitor seeded with, one it heard of
/// and may have been dialing as it left) report nothing, however its connections end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_lived_quic_emits_reach_every_listener_and_leave_without_refusals() {
    let dir = temp_dir("join-quic-leaving");
    let office = dir.join("office");
    create_hood(&office, "office").expect("a hood");
    for peer in ["alice", "bob", "carol"] {
        create_peer(&office, peer).expect("a peer");
    }
    let node = |name: &str, seed: Option<String>| quic_node(&office, name, seed);
    let (alice, seed) = node("alice", None);
    let (carol, _) = node("carol", Some(seed.clone()));
    let mut at_alice = alice.events::<serde_json::Value>("hello").expect("valid");
    let mut at_carol = carol.events::<serde_json::Value>("hello").expect("valid");
    tokio::time::timeout(common::WAIT, alice.wait_for_listeners("hello", 2))
        .await
        .expect("alice and carol know each other")
        .expect("open");
    let url = format!(
        "quic://127.0.0.1:0?hood={}&peer=bob&seed={seed}",
        office.display()
    );
    // As a user types it, ten times: each emit hears of carol from alice, waits until it
    // has heard both, and reaches both (issue 31: carol used to get none of them).
    for n in 0..10 {
        let sent = emit(&url, &["hello", &n.to_string()], None).await;
        assert!(sent.status.success(), "{sent:?}");
        let said = String::from_utf8_lossy(&sent.stdout);
        assert_eq!(said.trim(), "reached 2 listeners", "emit {n}: {sent:?}");
        for (name, stream) in [("alice", &mut at_alice), ("carol", &mut at_carol)] {
            let event = tokio::time::timeout(common::WAIT, stream.recv())
                .await
                .unwrap_or_else(|_| panic!("{name} gets event {n}"))
                .expect("open")
                .expect("decodes");
            assert_eq!(event.data, n, "{name}");
        }
    }
    for (name, node) in [("alice", &alice), ("carol", &carol)] {
        let counts = node.error_counts();
        assert_eq!(counts.refused, 0, "{name}: no refusals: {counts:?}");
    }
    alice.close().await;
    carol.close().await;
    std::fs::remove_dir_all(&dir).expect("cleaned up");
}

/// A tap started with a running node's certificate name (issue 31: it was told "no seed
/// answered" at best) gives way, exits 1 and names the id; the running node is told.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quic_tap_with_a_running_nodes_name_is_refused_naming_it() {
    let dir = temp_dir("join-quic-namesake");
    let office = dir.join("office");
    create_hood(&office, "office").expect("a hood");
    for peer in ["alice", "carol"] {
        create_peer(&office, peer).expect("a peer");
    }
    let node = |name: &str, seed: Option<String>| quic_node(&office, name, seed);
    let (alice, alice_addr) = node("alice", None);
    let (carol, carol_addr) = node("carol", Some(alice_addr.clone()));
    let mut at_alice = alice.errors();
    tokio::time::timeout(common::WAIT, carol.ready())
        .await
        .expect("carol hears alice")
        .expect("open");
    // Seeded with carol, as alice: carol takes it for alice restarted, and alice, still
    // running, finds it out.
    let url = format!(
        "quic://127.0.0.1:0?hood={}&peer=alice&seed={carol_addr}",
        office.display()
    );
    let refused = run(&["tap", "hello", "--no-system", "--url", &url], None).await;
    let said = stderr(&refused);
    assert_eq!(refused.status.code(), Some(1), "{said}");
    assert!(
        said.contains("another node on the bus already has the id \"alice\""),
        "{said}"
    );
    // Seeded with alice herself (issue 31: "no seed answered within 5s"): the two meet at
    // once, and the newcomer gives way.
    let direct = format!(
        "quic://127.0.0.1:0?hood={}&peer=alice&seed={alice_addr}",
        office.display()
    );
    let refused = run(&["emit", "hello", "--url", &direct], None).await;
    let said = stderr(&refused);
    assert_eq!(refused.status.code(), Some(1), "{said}");
    assert!(said.contains("already has the id \"alice\""), "{said}");
    let told = tokio::time::timeout(common::WAIT, async {
        loop {
            let report = at_alice.recv().await.expect("open");
            if report.kind == demitter::ErrorKind::Refused {
                return report;
            }
        }
    })
    .await
    .expect("alice is told");
    assert!(told.message.contains("`alice`"), "{told}");
    alice.close().await;
    carol.close().await;
    std::fs::remove_dir_all(&dir).expect("cleaned up");
}
