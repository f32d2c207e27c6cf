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

/// A CURVE handshake with the forwarder at `addr` (`tcp://HOST:PORT`) as the client of
/// `secret`.
async fn curve_handshake(
    addr: &str,
    secret: &demitter_zmq::curve_keys::CurveSecretKey,
    server: demitter_zmq::curve_keys::CurvePublicKey,
) -> Result<(), demitter_zmq::ZmqError> {
    let stream = tokio::net::TcpStream::connect(addr.trim_start_matches("tcp://"))
        .await
        .expect("connects");
    let keys = demitter_zmq::conn::CurveClientKeys::new(
        demitter_core::NodeId::new("client").expect("an id"),
        secret.clone(),
        server,
    );
    let shaken = demitter_zmq::conn::handshake_curve_client(
        stream,
        demitter_zmq::zmtp::SocketType::Pub,
        1 << 20,
        &keys,
    );
    tokio::time::timeout(WAIT, shaken)
        .await
        .expect("the forwarder answers or hangs up")
        .map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curve_flags_guard_the_forwarder_and_sighup_rereads_the_allow_list() {
    use std::io::{BufRead, BufReader, Write as _};

    use demitter_zmq::curve_keys::{CurvePublicKey, CurveSecretKey, write_key_pair};

    let dir = std::env::temp_dir().join(format!("demitter-fwd-curve-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a directory");
    let server = write_key_pair(&dir, "forwarder").expect("keys");
    let alice = write_key_pair(&dir, "alice").expect("keys");
    let bob = write_key_pair(&dir, "bob").expect("keys");
    let allow = dir.join("allow");
    std::fs::write(&allow, format!("{}\n", alice.allow_line)).expect("written");
    let (secret_arg, allow_arg) = (
        server.secret.display().to_string(),
        allow.display().to_string(),
    );

    let refused = forwarder(&["--curve-secret", &secret_arg])
        .output()
        .expect("runs");
    assert!(
        !refused.status.success()
            && String::from_utf8_lossy(&refused.stderr).contains("--curve-allow"),
        "{refused:?}"
    );

    let mut child = forwarder(&[
        "--xsub-port",
        "0",
        "--xpub-port",
        "0",
        "--stats-every",
        "0",
        "--curve-secret",
        &secret_arg,
        "--curve-allow",
        &allow_arg,
    ])
    .env("LOG_LEVEL", "info")
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .expect("the binary starts");
    let lines = |from: Box<dyn std::io::Read + Send>| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(from).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        rx
    };
    let stdout = lines(Box::new(child.stdout.take().expect("piped")));
    let stderr = lines(Box::new(child.stderr.take().expect("piped")));
    let running = Running(child);
    let until = |rx: &std::sync::mpsc::Receiver<String>, needle: &str| loop {
        let line = rx
            .recv_timeout(WAIT)
            .unwrap_or_else(|_| panic!("no line with {needle:?}"));
        if line.contains(needle) {
            return line;
        }
    };
    let listening = until(&stdout, "listening");
    let xsub = listening
        .split_whitespace()
        .find(|w| w.starts_with("tcp://"))
        .expect("an endpoint")
        .trim_end_matches(',')
        .to_owned();
    let public = CurvePublicKey::read_file(&server.public).expect("the public key");
    let said = until(&stdout, "CURVE");
    assert!(
        said.contains(&public.to_z85()) && said.contains("1 client key"),
        "{said}"
    );

    let alice_key = CurveSecretKey::read_file(&alice.secret).expect("alice's key");
    let bob_key = CurveSecretKey::read_file(&bob.secret).expect("bob's key");
    curve_handshake(&xsub, &alice_key, public)
        .await
        .expect("alice is allowed");
    assert!(
        curve_handshake(&xsub, &bob_key, public).await.is_err(),
        "bob is not, yet"
    );

    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&allow)
        .expect("opens");
    writeln!(file, "{}", bob.allow_line).expect("written");
    drop(file);
    let status = Command::new("kill")
        .args(["-HUP", &running.0.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    until(&stderr, "re-read the CURVE allow list");
    curve_handshake(&xsub, &bob_key, public)
        .await
        .expect("bob is allowed now");
    drop(running);
    std::fs::remove_dir_all(&dir).expect("cleaned up");
}
