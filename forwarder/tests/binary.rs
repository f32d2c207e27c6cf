//! The `demitter-forwarder` binary: starts, forwards, says where it listens, refuses bad
//! settings clearly, and stops cleanly on SIGTERM.

use std::process::Command;
use std::time::Duration;

mod support;

use support::{Running, forwarder, start_on};
use zeromq::{PubSocket, Socket, SocketRecv, SocketSend, SubSocket, ZmqMessage};

const WAIT: Duration = Duration::from_secs(10);

/// Starts the binary on free ports.
fn start() -> (Running, String, String) {
    start_on("0", "0")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwards_and_stops_cleanly_on_sigterm() {
    let (mut running, xsub, xpub) = start();
    let mut sub = SubSocket::new();
    sub.connect(&xpub).await.expect("sub connects");
    sub.subscribe("s:bin.").await.expect("subscribes");
    let mut publisher = PubSocket::new();
    publisher.connect(&xsub).await.expect("pub connects");
    // ZeroMQ's slow joiner: probe, paced, until one arrives.
    let got = tokio::time::timeout(WAIT, async {
        let mut probe = tokio::time::interval(Duration::from_millis(20));
        loop {
            probe.tick().await;
            let mut message = ZmqMessage::from("s:bin.hello".to_owned());
            message.push_back(b"origin".to_vec().into());
            message.push_back(b"\xc0".to_vec().into());
            publisher.send(message).await.expect("sends");
            if let Ok(Ok(message)) =
                tokio::time::timeout(Duration::from_millis(20), sub.recv()).await
            {
                return message;
            }
        }
    })
    .await
    .expect("a message crosses the binary");
    assert_eq!(&got.get(0).expect("topic")[..], b"s:bin.hello");

    let pid = running.0.id().to_string();
    let status = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let exit = tokio::time::timeout(WAIT, tokio::task::spawn_blocking(move || running.0.wait()))
        .await
        .expect("stops within the timeout")
        .expect("join")
        .expect("exit status");
    assert!(exit.success(), "clean exit on SIGTERM: {exit:?}");
}

#[test]
fn a_port_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
    let port = taken.local_addr().expect("address").port().to_string();
    let output = forwarder(&["--xsub-port", &port, "--xpub-port", "0"])
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("XSUB") && stderr.contains("in use"),
        "{stderr}"
    );
}

#[test]
fn a_bad_address_is_a_clear_error() {
    let output = forwarder(&[
        "--xpub-address",
        "not-an-ip",
        "--xsub-port",
        "0",
        "--xpub-port",
        "0",
    ])
    .output()
    .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("XPUB address \"not-an-ip\""), "{stderr}");
}

#[test]
fn the_environment_configures_it_like_demitter() {
    let output = forwarder(&["--help"]).output().expect("runs");
    let help = String::from_utf8_lossy(&output.stdout);
    for variable in [
        "XSUB_PORT",
        "XPUB_PORT",
        "XSUB_ADDRESS",
        "XPUB_ADDRESS",
        "LOG_LEVEL",
    ] {
        assert!(help.contains(variable), "--help names {variable}");
    }
    let output = forwarder(&["--xsub-port", "0", "--xpub-port", "0"])
        .env("LOG_LEVEL", "loud")
        .output()
        .expect("runs");
    assert!(!output.status.success(), "an unknown LOG_LEVEL is refused");
}
