//! Interoperability with libzmq (through pyzmq): Demitter-format events from a libzmq peer
//! reach our emitters as typed events, our events reach a libzmq subscriber and decode with
//! a standard MessagePack library, and our emitters work through a libzmq proxy.
//!
//! Needs `python3` with `pyzmq` and `msgpack`; `.ci/run` installs them and runs
//! `cargo test -p demitter-zmq --features libzmq-interop --test libzmq_interop`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use demitter_core::{Emitter, EmitterConfig};
use demitter_forwarder::{Forwarder, ForwarderConfig};
use demitter_zmq::{ZmqConfig, ZmqTransport};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(20);

/// A Python child, killed when the test ends however it ends.
struct Python {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
}

impl Python {
    fn run(script: &str, args: &[String]) -> Self {
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(script)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs (it needs pyzmq and msgpack)");
        let stdout = child.stdout.take().expect("piped");
        let (tx, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Self { child, lines }
    }

    async fn line(&mut self, what: &str) -> String {
        tokio::time::timeout(WAIT, self.lines.recv())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for the python peer: {what}"))
            .unwrap_or_else(|| panic!("the python peer ended before: {what}"))
    }
}

impl Drop for Python {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn forwarder() -> Forwarder {
    Forwarder::bind(ForwarderConfig::loopback_free_ports())
        .await
        .expect("binds")
}

fn emitter(xsub: &str, xpub: &str) -> Emitter {
    Emitter::with_config(
        ZmqTransport::connect(ZmqConfig::new(xsub, xpub)),
        EmitterConfig::default(),
    )
    .expect("emitter")
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Chat {
    text: String,
    n: u64,
}

/// An XPUB (so it can see our subscription arrive: no slow-joiner guessing) that publishes
/// Demitter-format messages once our forwarder has subscribed to `s:chat.`.
const LIBZMQ_PUBLISHER: &str = r#"
import sys, zmq, msgpack
ctx = zmq.Context()
s = ctx.socket(zmq.XPUB)
s.connect(sys.argv[1])
while True:
    sub = s.recv()
    if sub[:1] == b"\x01" and b"s:chat.".startswith(sub[1:]):
        break
for n in range(100):
    s.send_multipart([b"s:chat.message", b"pyzmq-origin", msgpack.packb({"text": "hi from libzmq", "n": 2**60 + n})])
print("sent", flush=True)
sys.stdin.read()
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libzmq_publishers_reach_our_emitters_as_typed_events() {
    let f = forwarder().await;
    let ours = emitter(&f.xsub_addr().to_string(), &f.xpub_addr().to_string());
    let mut chats = ours.events::<Chat>("chat.+").expect("valid");
    let mut python = Python::run(LIBZMQ_PUBLISHER, &[format!("tcp://{}", f.xsub_addr())]);
    assert_eq!(python.line("publishing").await, "sent");
    for n in 0..100u64 {
        let event = tokio::time::timeout(WAIT, chats.recv())
            .await
            .expect("arrives")
            .expect("open")
            .expect("decodes as Chat");
        assert_eq!(
            event.data,
            Chat {
                text: "hi from libzmq".into(),
                n: (1 << 60) + n
            }
        );
        assert_eq!(
            (event.source.as_str(), event.seq),
            ("pyzmq-origin", 0),
            "a Demitter origin"
        );
    }
    ours.close().await;
    f.close().await;
}

/// A libzmq SUB that prints each event as JSON, decoded with msgpack.
const LIBZMQ_SUBSCRIBER: &str = r#"
import sys, json, zmq, msgpack
ctx = zmq.Context()
s = ctx.socket(zmq.SUB)
s.connect(sys.argv[1])
s.setsockopt(zmq.SUBSCRIBE, b"s:greeting")
print("subscribed", flush=True)
for _ in range(int(sys.argv[2])):
    topic, origin, payload = s.recv_multipart()
    print(json.dumps({"topic": topic.decode(), "origin": origin.decode(), "data": msgpack.unpackb(payload)}), flush=True)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_events_reach_libzmq_subscribers_and_decode_with_msgpack() {
    let f = forwarder().await;
    let ours = emitter(&f.xsub_addr().to_string(), &f.xpub_addr().to_string());
    let mut python = Python::run(
        LIBZMQ_SUBSCRIBER,
        &[format!("tcp://{}", f.xpub_addr()), "3".into()],
    );
    assert_eq!(python.line("subscribing").await, "subscribed");
    // Our emitter subscribes to the control topic; the libzmq SUB adds `s:greeting`.
    assert!(
        tokio::time::timeout(WAIT, f.wait_until(|s| s.topics == 2 && s.publishers == 1))
            .await
            .expect("subscribed")
    );
    for n in 0..3u64 {
        ours.emit(
            "greeting.hello",
            &Chat {
                text: format!("héllo {n}"),
                n: u64::MAX - n,
            },
        )
        .await
        .expect("emits");
    }
    for n in 0..3u64 {
        let line = python.line("an event").await;
        let json: serde_json::Value = serde_json::from_str(&line).expect("JSON");
        assert_eq!(json["topic"], "s:greeting.hello");
        assert!(
            json["origin"]
                .as_str()
                .is_some_and(|o| o.starts_with(ours.id().as_str())),
            "{json}"
        );
        assert_eq!(
            json["data"]["text"],
            format!("héllo {n}"),
            "named fields: {json}"
        );
        assert_eq!(
            json["data"]["n"].as_u64(),
            Some(u64::MAX - n),
            "u64 kept exactly: {json}"
        );
    }
    ours.close().await;
    f.close().await;
}

/// libzmq's own XSUB/XPUB proxy, on free ports.
const LIBZMQ_PROXY: &str = r#"
import zmq
ctx = zmq.Context()
xsub = ctx.socket(zmq.XSUB)
xpub = ctx.socket(zmq.XPUB)
xsub_port = xsub.bind_to_random_port("tcp://127.0.0.1")
xpub_port = xpub.bind_to_random_port("tcp://127.0.0.1")
print(xsub_port, xpub_port, flush=True)
zmq.proxy(xsub, xpub)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_emitters_work_through_a_libzmq_proxy() {
    let mut proxy = Python::run(LIBZMQ_PROXY, &[]);
    let ports = proxy.line("the proxy's ports").await;
    let (xsub, xpub) = ports.split_once(' ').expect("two ports");
    let (xsub, xpub) = (format!("127.0.0.1:{xsub}"), format!("127.0.0.1:{xpub}"));
    let a = emitter(&xsub, &xpub);
    let b = emitter(&xsub, &xpub);
    let once = b.once::<Chat>("via.proxy").expect("valid");
    tokio::time::timeout(WAIT, a.wait_for_listeners("via.proxy", 1))
        .await
        .expect("b's listener is seen through libzmq")
        .expect("open");
    let delivery = a
        .emit(
            "via.proxy",
            &Chat {
                text: "through libzmq".into(),
                n: 7,
            },
        )
        .await
        .expect("emits");
    assert_eq!(delivery.remote, 1);
    let event = tokio::time::timeout(WAIT, once)
        .await
        .expect("arrives")
        .expect("decodes");
    assert_eq!(event.data.text, "through libzmq");
    assert_eq!(&event.source, a.id());
    a.close().await;
    b.close().await;
}
