//! CURVE end to end on our own stack: emitters with allowed keys talk through a CURVE
//! forwarder; a NULL peer, a client with an unknown key and one with the wrong server key
//! are refused, counted by the forwarder, and told why.

use std::time::Duration;

use demitter_core::{Emitter, EmitterConfig, NodeId, Transport};
use demitter_forwarder::{Forwarder, ForwarderConfig, ForwarderCurve};
use demitter_zmq::ZmqError;
use demitter_zmq::conn::{self, CurveClientKeys};
use demitter_zmq::curve_keys::{AllowList, CurvePublicKey, CurveSecretKey};
use demitter_zmq::zmtp::SocketType;
use demitter_zmq::{ZmqConfig, ZmqTransport};

const WAIT: Duration = Duration::from_secs(20);

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, future)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

fn emitter(forwarder: &Forwarder, keys: Option<CurveClientKeys>) -> Emitter {
    let mut config = ZmqConfig::new(
        forwarder.xsub_addr().to_string(),
        forwarder.xpub_addr().to_string(),
    );
    config.curve = keys;
    Emitter::with_config(ZmqTransport::connect(config), EmitterConfig::default())
        .expect("an emitter")
}

fn keys(name: &str, secret: &CurveSecretKey, server: CurvePublicKey) -> CurveClientKeys {
    CurveClientKeys::new(NodeId::new(name).expect("an id"), secret.clone(), server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_keys_talk_through_a_curve_forwarder_and_others_are_refused() {
    let server = CurveSecretKey::generate();
    let (alice, bob) = (CurveSecretKey::generate(), CurveSecretKey::generate());
    let allow = AllowList::parse(&format!(
        "alice {}\nbob {}\n",
        alice.public_key(),
        bob.public_key()
    ))
    .expect("an allow list");
    let curve = ForwarderCurve::new(server.clone(), allow);
    let forwarder = Forwarder::bind(ForwarderConfig {
        curve: Some(curve.clone()),
        ..ForwarderConfig::loopback_free_ports()
    })
    .await
    .expect("binds");
    let checked = ZmqTransport::connect(ZmqConfig {
        curve: Some(keys("alice", &alice, server.public_key())),
        ..ZmqConfig::new("127.0.0.1:1", "127.0.0.1:2")
    });
    assert!(
        checked.capabilities().authenticated,
        "names checked: sources are proven"
    );
    checked.close().await;
    let unchecked = ZmqTransport::connect(ZmqConfig {
        curve: Some(CurveClientKeys {
            unchecked_names: true,
            ..keys("alice", &alice, server.public_key())
        }),
        ..ZmqConfig::new("127.0.0.1:1", "127.0.0.1:2")
    });
    assert!(
        !unchecked.capabilities().authenticated,
        "names unchecked: any key may claim any source"
    );
    unchecked.close().await;
    let a = emitter(&forwarder, Some(keys("alice", &alice, server.public_key())));
    let b = emitter(&forwarder, Some(keys("bob", &bob, server.public_key())));
    assert_eq!(
        a.id().as_str(),
        "alice",
        "the key's name is the emitter's id"
    );
    let once = b.once::<String>("sealed.hello").expect("valid");
    within(
        "alice to see bob's listener",
        a.wait_for_listeners("sealed.hello", 1),
    )
    .await
    .expect("open");
    let delivery = a.emit("sealed.hello", "hi bob").await.expect("emits");
    assert_eq!(delivery.remote, 1);
    let event = within("bob's event", once).await.expect("decodes");
    assert_eq!(event.data, "hi bob");
    assert_eq!(forwarder.stats().refused, 0, "nobody refused yet");

    // Kept open: it counts among the publishers below.
    let _raw = forged_names_are_dropped(&forwarder, &a, &b, &alice, server.public_key()).await;

    strangers_are_refused(&forwarder, &alice, server.public_key()).await;
    // Alice, bob and alice's raw connection; none of the strangers.
    assert!(
        within(
            "the publishers' gauge",
            forwarder.wait_until(|g| g.publishers == 3)
        )
        .await,
        "the forwarder runs"
    );

    // Alice's key removed from the allow list: her connections (the emitter's and the raw
    // one) are closed, and bob's stay.
    curve.replace_allow_list(
        AllowList::parse(&format!("bob {}", bob.public_key())).expect("an allow list"),
    );
    assert!(
        within(
            "alice's publishers to be closed",
            forwarder.wait_until(|g| g.publishers == 1)
        )
        .await,
        "the forwarder runs"
    );
    a.close().await;
    b.close().await;
    forwarder.close().await;
}

/// Alice's key cannot emit under another name: the forwarder drops it and counts it.
async fn forged_names_are_dropped(
    forwarder: &Forwarder,
    a: &Emitter,
    b: &Emitter,
    alice: &CurveSecretKey,
    server: CurvePublicKey,
) -> (conn::Reader, conn::Writer) {
    let mut heard = b.events::<String>("forged.x").expect("valid");
    within("bob's listener", a.wait_for_listeners("forged.x", 1))
        .await
        .expect("open");
    let stream = tokio::net::TcpStream::connect(forwarder.xsub_addr())
        .await
        .expect("connects");
    let alice_keys = keys("alice", alice, server);
    let (reader, mut raw, _) =
        conn::handshake_curve_client(stream, SocketType::Pub, 1 << 20, &alice_keys)
            .await
            .expect("alice's key is allowed");
    // Another name; a name that starts with hers but decodes as `alice@carol`; a control
    // message whose whole origin is the id; then her own name.
    let control = demitter_zmq::wire::CONTROL_TOPIC;
    let sent: [(&[u8], &[u8], &str); 4] = [
        (b"s:forged.x", b"carol", "forged"),
        (b"s:forged.x", b"alice@carol@1:2", "forged"),
        (control, b"alice@1:2", "forged"),
        (b"s:forged.x", b"alice", "honest"),
    ];
    for (topic, origin, text) in sent {
        let mut message = bytes::BytesMut::new();
        let payload = [&[0xa0 | text.len() as u8][..], text.as_bytes()].concat();
        demitter_zmq::zmtp::put_message(&mut message, &[topic, origin, &payload]);
        raw.write_all(&message).await.expect("written");
    }
    let event = within("the honest event", heard.recv())
        .await
        .expect("open")
        .expect("decodes");
    assert_eq!(
        (event.data.as_str(), event.source.as_str()),
        ("honest", "alice"),
        "only what alice's key sent as alice"
    );
    assert!(
        within(
            "the forgery to be counted",
            forwarder.wait_until(|g| g.forged >= 3)
        )
        .await,
        "the forwarder runs"
    );
    assert_eq!(forwarder.stats().forged, 3);
    (reader, raw)
}

/// A NULL peer, a key the allow list does not hold, and a client with the wrong server
/// key: each refused in its handshake, told why, and counted.
async fn strangers_are_refused(
    forwarder: &Forwarder,
    alice: &CurveSecretKey,
    server: CurvePublicKey,
) {
    let strangers = [
        None,
        Some(keys("eve", &CurveSecretKey::generate(), server)),
        Some(keys(
            "alice",
            alice,
            CurveSecretKey::generate().public_key(),
        )),
    ];
    for (n, stranger) in strangers.into_iter().enumerate() {
        let stream = tokio::net::TcpStream::connect(forwarder.xsub_addr())
            .await
            .expect("connects");
        let handshake = async {
            match &stranger {
                None => conn::handshake(stream, SocketType::Pub, 1 << 20)
                    .await
                    .map(|_| ()),
                Some(keys) => conn::handshake_curve_client(stream, SocketType::Pub, 1 << 20, keys)
                    .await
                    .map(|_| ()),
            }
        };
        let why = within("the stranger's handshake", handshake)
            .await
            .expect_err("refused");
        // The NULL peer hears a mechanism it does not speak; the CURVE ones are told why.
        let told = why.to_string();
        match n {
            0 => assert!(
                matches!(why, ZmqError::Handshake(_) | ZmqError::Io(_)),
                "the NULL peer: {why}"
            ),
            1 => assert!(
                matches!(&why, ZmqError::PeerRefused { reason } if reason == conn::KEY_NOT_ALLOWED)
                    && told.contains("does not allow this client's CURVE key"),
                "the unknown key: {told}"
            ),
            _ => assert!(
                matches!(&why, ZmqError::PeerRefused { reason } if reason == conn::HELLO_NOT_OPENED)
                    && told.contains("is curve= the server's public key?"),
                "the wrong server key: {told}"
            ),
        }
        let counted = (n + 1) as u64;
        assert!(
            within(
                "the forwarder to count the refusal",
                forwarder.wait_until(|g| g.refused >= counted)
            )
            .await,
            "the forwarder runs"
        );
    }
    assert_eq!(forwarder.stats().refused, 3, "each refusal counted once");
}
