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

/// Our forwarder as a CURVE server with `secret`, letting in the keys of `allow` (an allow
/// file's text).
async fn curve_forwarder(
    secret: &demitter_zmq::curve_keys::CurveSecretKey,
    allow: &str,
) -> Forwarder {
    let allow = demitter_zmq::curve_keys::AllowList::parse(allow).expect("an allow list");
    Forwarder::bind(ForwarderConfig {
        curve: Some(demitter_forwarder::ForwarderCurve::new(
            secret.clone(),
            allow,
        )),
        ..ForwarderConfig::loopback_free_ports()
    })
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

/// The XSUB and XPUB endpoints a proxy script prints (`XSUB_PORT XPUB_PORT`).
async fn proxy_endpoints(proxy: &mut Python) -> (String, String) {
    let ports = proxy.line("the proxy's ports").await;
    let (xsub, xpub) = ports.split_once(' ').expect("two ports");
    (format!("127.0.0.1:{xsub}"), format!("127.0.0.1:{xpub}"))
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
    let (xsub, xpub) = proxy_endpoints(&mut proxy).await;
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

/// A libzmq XPUB socket as a CURVE server with the `zmq_curve(7)` test key: prints its
/// port, waits for a subscription, then publishes `[b"curve.topic", b"sealed hello"]`.
const CURVE_PUB: &str = r#"
import zmq
ctx = zmq.Context()
pub = ctx.socket(zmq.XPUB)
pub.curve_server = True
pub.curve_secretkey = b"JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6"
port = pub.bind_to_random_port("tcp://127.0.0.1")
print(port, flush=True)
pub.recv()  # the subscription: the subscriber is ready
pub.send_multipart([b"curve.topic", b"sealed hello"])
pub.recv()  # held open until the test ends it
"#;

/// A ZMTP 3.0 greeting for the CURVE mechanism, in the role `as_server`.
fn curve_greeting(as_server: bool) -> [u8; 64] {
    let mut greeting = [0u8; 64];
    greeting[0] = 0xFF;
    greeting[9] = 0x7F;
    greeting[10] = 3;
    greeting[12..17].copy_from_slice(b"CURVE");
    greeting[32] = u8::from(as_server);
    greeting
}

/// Reads one ZMTP frame: its flags and body.
fn read_frame(stream: &mut std::net::TcpStream) -> (u8, Vec<u8>) {
    use std::io::Read as _;
    let mut flags = [0u8; 1];
    stream.read_exact(&mut flags).expect("a frame");
    let len = if flags[0] & 0x02 != 0 {
        let mut len = [0u8; 8];
        stream.read_exact(&mut len).expect("a long size");
        usize::try_from(u64::from_be_bytes(len)).expect("fits")
    } else {
        let mut len = [0u8; 1];
        stream.read_exact(&mut len).expect("a size");
        usize::from(len[0])
    };
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).expect("a body");
    (flags[0], body)
}

/// Writes one ZMTP frame.
fn write_frame(stream: &mut std::net::TcpStream, command: bool, body: &[u8]) {
    use std::io::Write as _;
    let mut frame = Vec::with_capacity(9 + body.len());
    let flags = if command { 0x04 } else { 0x00 };
    if let Ok(short) = u8::try_from(body.len()) {
        frame.extend_from_slice(&[flags, short]);
    } else {
        frame.push(flags | 0x02);
        frame.extend_from_slice(&(body.len() as u64).to_be_bytes());
    }
    frame.extend_from_slice(body);
    stream.write_all(&frame).expect("written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_curve_handshake_and_messages_work_with_libzmq() {
    use demitter_zmq::curve::{ClientHello, FLAG_MORE};
    use demitter_zmq::curve_keys::{CurvePublicKey, CurveSecretKey};
    use std::io::{Read as _, Write as _};

    let mut publisher = Python::run(CURVE_PUB, &[]);
    let port = publisher.line("the CURVE publisher's port").await;
    let received = tokio::task::spawn_blocking(move || {
        let mut stream =
            std::net::TcpStream::connect(format!("127.0.0.1:{port}")).expect("connects");
        stream.set_read_timeout(Some(WAIT)).expect("a timeout");
        // ZMTP 3.0, CURVE, as a client.
        stream.write_all(&curve_greeting(false)).expect("greets");
        let mut theirs = [0u8; 64];
        stream.read_exact(&mut theirs).expect("a greeting");
        assert_eq!(&theirs[12..17], b"CURVE", "libzmq speaks CURVE");
        // (libzmq 4.3.5 sends as-server 0 even as a CURVE server: the roles are each
        // side's configuration, not the greeting's.)

        let server = CurvePublicKey::from_z85("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7")
            .expect("the test key");
        let (waiting, hello) =
            ClientHello::start(&CurveSecretKey::generate(), &server).expect("starts");
        write_frame(&mut stream, true, &hello);
        let (_, welcome) = read_frame(&mut stream);
        let mut metadata = b"\x0bSocket-Type".to_vec();
        metadata.extend_from_slice(&3u32.to_be_bytes());
        metadata.extend_from_slice(b"SUB");
        let (initiated, initiate) = waiting.welcome(&welcome, &metadata).expect("a WELCOME");
        write_frame(&mut stream, true, &initiate);
        let (_, ready) = read_frame(&mut stream);
        let (their_metadata, mut codec) = initiated.ready(&ready).expect("a READY");
        assert!(
            their_metadata.windows(3).any(|w| w == b"PUB"),
            "libzmq's READY names its socket type"
        );
        // A ZMTP 3.0 subscription: a message of 0x01 and the topic.
        let subscribe = codec.seal(0, b"\x01curve.").expect("sealed");
        write_frame(&mut stream, false, &subscribe);
        let (_, topic) = read_frame(&mut stream);
        let (_, data) = read_frame(&mut stream);
        (
            codec.open(&topic).expect("opens"),
            codec.open(&data).expect("opens"),
        )
    })
    .await
    .expect("the client ran");
    assert_eq!(received.0.0, FLAG_MORE, "the topic, with more to follow");
    assert_eq!(&received.0.1[..], b"curve.topic");
    assert_eq!((received.1.0, &received.1.1[..]), (0, &b"sealed hello"[..]));
}

/// A libzmq SUB socket as a CURVE client with the `zmq_curve(7)` client key, connecting
/// to a server whose public key is the first argument on the port of the second: prints
/// the first message it receives.
const CURVE_SUB: &str = r#"
import sys, zmq
ctx = zmq.Context()
sub = ctx.socket(zmq.SUB)
sub.curve_serverkey = sys.argv[1].encode()
sub.curve_publickey = b"Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"
sub.curve_secretkey = b"D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs"
sub.setsockopt(zmq.SUBSCRIBE, b"curve.")
sub.connect("tcp://127.0.0.1:" + sys.argv[2])
topic, data = sub.recv_multipart()
print(topic.decode(), data.decode(), flush=True)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libzmq_clients_pass_our_curve_server_handshake() {
    use demitter_zmq::curve::{FLAG_MORE, ServerHello};
    use demitter_zmq::curve_keys::{CurvePublicKey, CurveSecretKey};
    use std::io::{Read as _, Write as _};

    let server = CurveSecretKey::generate();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
    let port = listener.local_addr().expect("bound").port();
    let mut subscriber = Python::run(CURVE_SUB, &[server.public_key().to_z85(), port.to_string()]);
    let client = tokio::task::spawn_blocking(move || {
        let (mut stream, _) = listener.accept().expect("libzmq connects");
        stream.set_read_timeout(Some(WAIT)).expect("a timeout");
        stream.write_all(&curve_greeting(true)).expect("greets");
        let mut theirs = [0u8; 64];
        stream.read_exact(&mut theirs).expect("a greeting");
        assert_eq!(&theirs[12..17], b"CURVE");
        let (_, hello) = read_frame(&mut stream);
        let (welcomed, welcome) = ServerHello::new(&server).hello(&hello).expect("a HELLO");
        write_frame(&mut stream, true, &welcome);
        let (_, initiate) = read_frame(&mut stream);
        let known = welcomed.initiate(&initiate).expect("an INITIATE");
        assert!(known.metadata.windows(3).any(|w| w == b"SUB"));
        let mut metadata = b"\x0bSocket-Type".to_vec();
        metadata.extend_from_slice(&3u32.to_be_bytes());
        metadata.extend_from_slice(b"PUB");
        let client = known.client;
        let (ready, mut codec) = known.accept(&metadata).expect("accepted");
        write_frame(&mut stream, true, &ready);
        let (_, subscription) = read_frame(&mut stream);
        let (flags, topic) = codec.open(&subscription).expect("opens");
        assert_eq!(
            (flags, &topic[..]),
            (0, &b"\x01curve."[..]),
            "a ZMTP 3.0 subscription"
        );
        let topic = codec.seal(FLAG_MORE, b"curve.topic").expect("sealed");
        let data = codec.seal(0, b"from our server").expect("sealed");
        write_frame(&mut stream, false, &topic);
        write_frame(&mut stream, false, &data);
        stream.flush().expect("flushed");
        (client, stream)
    })
    .await
    .expect("the server ran");
    assert_eq!(
        client.0,
        CurvePublicKey::from_z85("Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID").expect("the test key"),
        "the server knows the client by its permanent key"
    );
    assert_eq!(
        subscriber.line("the message, through CURVE").await,
        "curve.topic from our server"
    );
}

/// libzmq's XSUB/XPUB proxy as a CURVE server (both sides) with the `zmq_curve(7)` test
/// key, on free ports.
const LIBZMQ_CURVE_PROXY: &str = r#"
import zmq
ctx = zmq.Context()
sockets = []
for kind in (zmq.XSUB, zmq.XPUB):
    s = ctx.socket(kind)
    s.curve_server = True
    s.curve_secretkey = b"JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6"
    sockets.append(s)
ports = [s.bind_to_random_port("tcp://127.0.0.1") for s in sockets]
print(*ports, flush=True)
zmq.proxy(*sockets)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_emitters_work_through_a_libzmq_curve_proxy() {
    use demitter_zmq::conn::CurveClientKeys;
    use demitter_zmq::curve_keys::{CurvePublicKey, CurveSecretKey};

    let mut proxy = Python::run(LIBZMQ_CURVE_PROXY, &[]);
    let (xsub, xpub) = proxy_endpoints(&mut proxy).await;
    let server =
        CurvePublicKey::from_z85("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7").expect("the test key");
    let curve_emitter = |name: &str| {
        let mut config = ZmqConfig::new(&xsub, &xpub);
        config.curve = Some(CurveClientKeys {
            // libzmq's proxy checks no names.
            unchecked_names: true,
            ..CurveClientKeys::new(
                demitter_core::NodeId::new(name).expect("an id"),
                CurveSecretKey::generate(),
                server,
            )
        });
        Emitter::with_config(ZmqTransport::connect(config), EmitterConfig::default())
            .expect("emitter")
    };
    let (a, b) = (curve_emitter("curve-a"), curve_emitter("curve-b"));
    let once = b.once::<Chat>("via.curve").expect("valid");
    tokio::time::timeout(WAIT, a.wait_for_listeners("via.curve", 1))
        .await
        .expect("b's listener is seen through libzmq's CURVE proxy")
        .expect("open");
    let chat = Chat {
        text: "sealed".into(),
        n: 9,
    };
    assert_eq!(a.emit("via.curve", &chat).await.expect("emits").remote, 1);
    let event = tokio::time::timeout(WAIT, once)
        .await
        .expect("arrives")
        .expect("decodes");
    assert_eq!(event.data, chat);

    // A client with the wrong server key is refused in its handshake.
    let handshake = |name: &str, server: CurvePublicKey| {
        let keys = CurveClientKeys::new(
            demitter_core::NodeId::new(name).expect("an id"),
            CurveSecretKey::generate(),
            server,
        );
        let xsub = xsub.clone();
        async move {
            let stream = tokio::net::TcpStream::connect(&xsub)
                .await
                .expect("connects");
            let shaken = demitter_zmq::conn::handshake_curve_client(
                stream,
                demitter_zmq::zmtp::SocketType::Pub,
                1 << 20,
                &keys,
            );
            tokio::time::timeout(WAIT, shaken)
                .await
                .expect("libzmq answers or hangs up")
                .map(|_| ())
        }
    };
    let refused = handshake("stranger", CurveSecretKey::generate().public_key()).await;
    assert!(refused.is_err(), "the wrong server key is refused");
    // Right keys, but names checked (the default): libzmq's proxy does not bind names to
    // keys, so a client that relies on it refuses the proxy.
    let refused = handshake("careful", server).await;
    assert!(
        matches!(refused, Err(demitter_zmq::ZmqError::NamesUnchecked)),
        "a proxy that checks no names is refused: {refused:?}"
    );
    a.close().await;
    b.close().await;
}

/// libzmq PUB and SUB sockets as CURVE clients of a forwarder whose public key is the first
/// argument (XSUB port second, XPUB port third), with the `zmq_curve(7)` client key, or with
/// a key of their own if the fourth argument is `stranger`: publishes until its subscriber
/// hears, then prints what it heard; a stranger (or a client given the wrong server key,
/// `wrong-server`, or one with no key at all, `null`, speaking the NULL mechanism) prints
/// `nothing` after a second.
const CURVE_PUB_SUB: &str = r#"
import sys, time, zmq
server, xsub, xpub, who = sys.argv[1].encode(), sys.argv[2], sys.argv[3], sys.argv[4]
if who == "stranger":
    public, secret = zmq.curve_keypair()
else:
    public = b"Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"
    secret = b"D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs"
ctx = zmq.Context()
def curve(kind):
    s = ctx.socket(kind)
    if who != "null":
        s.curve_serverkey, s.curve_publickey, s.curve_secretkey = server, public, secret
    return s
sub = curve(zmq.SUB)
sub.setsockopt(zmq.SUBSCRIBE, b"s:curve.")
sub.connect("tcp://127.0.0.1:" + xpub)
pub = curve(zmq.PUB)
pub.connect("tcp://127.0.0.1:" + xsub)
deadline = time.time() + (20 if who == "allowed" else 1)
while time.time() < deadline:
    pub.send_multipart([b"s:curve.hello", b"pyclient", b"\xa6sealed"])
    if sub.poll(20):
        topic, origin, data = sub.recv_multipart()
        print(topic.decode(), origin.decode(), data.hex(), flush=True)
        sys.exit(0)
print("nothing", flush=True)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libzmq_curve_clients_talk_through_our_curve_forwarder() {
    use demitter_zmq::curve_keys::CurveSecretKey;

    let secret =
        CurveSecretKey::from_z85("JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6").expect("the test key");
    let f = curve_forwarder(&secret, "pyclient Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID").await;
    let args = |who: &str| {
        vec![
            secret.public_key().to_z85(),
            f.xsub_addr().port().to_string(),
            f.xpub_addr().port().to_string(),
            who.to_owned(),
        ]
    };
    let mut allowed = Python::run(CURVE_PUB_SUB, &args("allowed"));
    assert_eq!(
        allowed.line("a message through our forwarder").await,
        "s:curve.hello pyclient a67365616c6564"
    );
    let mut stranger = Python::run(CURVE_PUB_SUB, &args("stranger"));
    assert_eq!(stranger.line("the stranger's outcome").await, "nothing");
    assert!(
        tokio::time::timeout(WAIT, f.wait_until(|g| g.refused >= 2))
            .await
            .expect("the stranger's sockets are refused and counted"),
        "the forwarder runs"
    );
    // Its sockets retry while it runs: count from when it has ended.
    drop(stranger);
    let before = f.stats().refused;
    let mut wrong_args = args("wrong-server");
    wrong_args[0] = CurveSecretKey::generate().public_key().to_z85();
    let mut wrong = Python::run(CURVE_PUB_SUB, &wrong_args);
    assert_eq!(
        wrong.line("the wrong server key's outcome").await,
        "nothing"
    );
    assert!(
        tokio::time::timeout(WAIT, f.wait_until(|g| g.refused >= before + 2))
            .await
            .expect("its sockets are refused and counted"),
        "the forwarder runs"
    );
    drop(wrong);
    // No key at all: libzmq's NULL sockets.
    let before = f.stats().refused;
    let mut null = Python::run(CURVE_PUB_SUB, &args("null"));
    assert_eq!(null.line("the NULL client's outcome").await, "nothing");
    assert!(
        tokio::time::timeout(WAIT, f.wait_until(|g| g.refused >= before + 2))
            .await
            .expect("its sockets are refused and counted"),
        "the forwarder runs"
    );
    f.close().await;
}

/// A libzmq CURVE client with a key of its own, watching its handshakes: how the server
/// ended the one to the forwarder's XPUB side (the second argument, the server key first).
const CURVE_MONITOR: &str = r#"
import sys, zmq
from zmq.utils.monitor import recv_monitor_message
server, xpub = sys.argv[1].encode(), sys.argv[2]
ctx = zmq.Context()
s = ctx.socket(zmq.SUB)
s.curve_publickey, s.curve_secretkey = zmq.curve_keypair()
s.curve_serverkey = server
failed = zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
monitor = s.get_monitor_socket(failed)
s.connect("tcp://127.0.0.1:" + xpub)
if monitor.poll(10000):
    event = recv_monitor_message(monitor)
    kind = "auth" if event["event"] == zmq.EVENT_HANDSHAKE_FAILED_AUTH else str(event["event"])
    print(kind, event["value"], flush=True)
else:
    print("nothing", flush=True)
"#;

/// Our CURVE forwarder refuses a key it does not allow as libzmq's servers do, with ZMTP's
/// ERROR and ZAP's status 400: a libzmq client's monitor reports the authentication failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_libzmq_client_with_a_key_not_allowed_hears_error_400() {
    use demitter_zmq::curve_keys::CurveSecretKey;

    let secret = CurveSecretKey::generate();
    let allow = format!("someone {}", CurveSecretKey::generate().public_key());
    let f = curve_forwarder(&secret, &allow).await;
    let mut client = Python::run(
        CURVE_MONITOR,
        &[
            secret.public_key().to_z85(),
            f.xpub_addr().port().to_string(),
        ],
    );
    assert_eq!(
        client.line("the client's handshake event").await,
        "auth 400"
    );
    drop(client);
    f.close().await;
}
