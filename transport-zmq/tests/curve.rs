//! CURVE end to end on our own stack: emitters with allowed keys talk through a CURVE
//! forwarder; a NULL peer, a client with an unknown key and one with the wrong server key
//! are refused, counted by the forwarder, and told why.

use std::time::Duration;

use demitter_core::{Emitter, EmitterConfig};
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
    let forwarder = Forwarder::bind(ForwarderConfig {
        curve: Some(ForwarderCurve::new(server.clone(), allow)),
        ..ForwarderConfig::loopback_free_ports()
    })
    .await
    .expect("binds");
    let keys = |secret: &CurveSecretKey, server: CurvePublicKey| {
        Some(CurveClientKeys {
            secret: secret.clone(),
            server,
        })
    };
    let a = emitter(&forwarder, keys(&alice, server.public_key()));
    let b = emitter(&forwarder, keys(&bob, server.public_key()));
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

    // A NULL peer, a key the allow list does not hold, and a client with the wrong
    // server key: each refused in its handshake, told why, and counted.
    let strangers = [
        None,
        keys(&CurveSecretKey::generate(), server.public_key()),
        keys(&alice, CurveSecretKey::generate().public_key()),
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
        assert!(
            matches!(why, ZmqError::Handshake(_) | ZmqError::Io(_)),
            "stranger {n}: {why}"
        );
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
    assert_eq!(
        forwarder.stats().publishers,
        2,
        "only alice and bob are on the bus"
    );
    a.close().await;
    b.close().await;
    forwarder.close().await;
}
