//! `demitter dht` runs a private DHT's node; QUIC nodes with `dht=` and no seed find each
//! other through it; a DHT node that is not there, or a port that is taken, fails with one
//! line that says so. Everything on loopback: no packet leaves this machine.

mod common;

use common::{Running, demitter, emit, line_with, run, stderr, stdout, tap, temp_dir};
use demitter::quic::pki::{create_hood, create_peer};

/// A hood with alice and bob, and the URL of one of them on the DHT node at `dht`.
fn hood(name: &str) -> impl Fn(&str, &str) -> String {
    let dir = temp_dir(name);
    create_hood(&dir, "office").expect("a hood");
    for peer in ["alice", "bob"] {
        create_peer(&dir, peer).expect("a peer");
    }
    move |peer: &str, dht: &str| {
        format!(
            "quic://127.0.0.1:0?hood={}&peer={peer}&dht={dht}",
            dir.display()
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_with_no_seed_find_each_other_through_demitter_dht() {
    let url = hood("dht-cli");
    let mut command = demitter();
    command.args(["dht", "--port", "0", "--bind", "127.0.0.1"]);
    let dht = Running::start(command, "demitter dht", true, "dht=").await;
    let at = dht.ready_line.trim_start_matches("dht=").to_owned();
    assert!(at.starts_with("127.0.0.1:"), "{}", dht.ready_line);

    let (mut tap, mut events, _err) = tap(&url("alice", &at), &["x.#"]).await;
    let emitted = emit(&url("bob", &at), &["x.y", "7"], None).await;
    assert!(emitted.status.success(), "{}", stderr(&emitted));
    assert_eq!(stdout(&emitted).trim(), "reached 1 listener");
    let line = line_with(&mut events, "x.y").await;
    let event = common::json(&line);
    assert_eq!(
        (event["source"].as_str(), event["data"].as_i64()),
        (Some("bob"), Some(7))
    );
    tap.kill().await.expect("the tap stops");
    assert!(dht.stop().await.is_empty(), "nothing more on stdout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dht_node_that_is_not_there_fails_the_join_with_one_line() {
    let url = hood("dht-cli-down");
    let closed = std::net::UdpSocket::bind("127.0.0.1:0").expect("a port");
    let down = closed.local_addr().expect("bound").to_string();
    drop(closed);
    let output = run(&["emit", "x.y", "--url", &url("bob", &down)], None).await;
    let said = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{said}");
    assert_eq!(said.lines().count(), 1, "one line, not a log: {said}");
    assert!(
        said.starts_with("error: could not join the bus: DHT discovery cannot announce this node")
            && said.contains(&down)
            && said.contains("`demitter dht`"),
        "{said}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_port_fails_demitter_dht_with_one_line() {
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").expect("a port");
    let port = taken.local_addr().expect("bound").port().to_string();
    let output = run(&["dht", "--port", &port, "--bind", "127.0.0.1"], None).await;
    let said = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{said}");
    assert!(stdout(&output).is_empty());
    assert!(
        said.starts_with(&format!(
            "error: QUIC transport: could not start a DHT node on 127.0.0.1:{port}"
        )),
        "{said}"
    );
    drop(taken);
}
