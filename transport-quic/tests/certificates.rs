//! Mutual TLS refusals: every peer that cannot prove it belongs to the hood (or, with an
//! allow list, is not on it) is refused with a clear report and a count on the error
//! channel, and never gets a connection that carries frames.

mod support;

use std::time::{Duration, SystemTime};

use demitter_core::{Emitter, ErrorKind, ErrorReport, ErrorStream};
use demitter_quic::pki::Validity;
use demitter_quic::{Hood, PeerIdentity, QuicTransport, RawPeer};
use support::{MESH_TIMEOUT, fast_config};

const WAIT: Duration = Duration::from_secs(10);

async fn next_refusal(errors: &mut ErrorStream) -> ErrorReport {
    tokio::time::timeout(WAIT, async {
        loop {
            let report = errors.recv().await.expect("open");
            if report.kind == ErrorKind::Refused {
                return report;
            }
        }
    })
    .await
    .expect("a refusal is reported")
}

/// A node of `hood` called `server`, listening on loopback.
fn server(hood: &Hood, allowed: Option<&[&str]>) -> (Emitter, std::net::SocketAddr) {
    let mut config = fast_config(hood.issue("server").expect("issues"));
    if let Some(names) = allowed {
        config = config.allow_only(names.iter().copied());
    }
    let transport = QuicTransport::bind(config).expect("binds");
    let addr = transport.local_addr();
    (Emitter::new(transport).expect("emitter"), addr)
}

/// Connects as `identity`, expects the server to refuse it with a report that contains
/// `reason`, and the connection to be closed.
async fn assert_refused(identity: Option<&PeerIdentity>, allowed: Option<&[&str]>, reason: &str) {
    let hood = Hood::create("lab").expect("hood");
    let (node, addr) = server(&hood, allowed);
    let mut errors = node.errors();
    let attempt = match identity {
        Some(identity) => RawPeer::connect(identity, addr).await,
        None => RawPeer::connect_anonymous(addr).await,
    };
    let report = next_refusal(&mut errors).await;
    assert!(
        report.message.contains(reason),
        "expected {reason:?} in: {report}"
    );
    if let Ok(raw) = attempt {
        // TLS 1.3 lets the client finish first; the server then closes the connection.
        tokio::time::timeout(WAIT, raw.closed())
            .await
            .expect("the refused connection is closed");
    }
    assert_eq!(node.error_counts().refused, 1);
    node.close().await;
}

fn self_signed(hood: &Hood, name: &str) -> PeerIdentity {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let cert = params.self_signed(&key).expect("signs");
    PeerIdentity::from_pem(hood.cert_pem(), &cert.pem(), &key.serialize_pem()).expect("pem")
}

#[tokio::test]
async fn no_certificate_is_refused() {
    assert_refused(None, None, "no certificate").await;
}

#[tokio::test]
async fn a_self_signed_certificate_is_refused() {
    // It claims the hood's certificate as its anchor, but nothing signed it.
    let hood = Hood::create("lab").expect("hood");
    assert_refused(
        Some(&self_signed(&hood, "mallory")),
        None,
        "invalid peer certificate",
    )
    .await;
}

#[tokio::test]
async fn a_certificate_of_another_hood_is_refused() {
    let other = Hood::create("elsewhere").expect("hood");
    let stranger = other.issue("stranger").expect("issues");
    assert_refused(Some(&stranger), None, "UnknownIssuer").await;
}

#[tokio::test]
async fn an_expired_certificate_is_refused() {
    // Signed by the server's own hood, so expiry is the only thing wrong with it.
    let hood = Hood::create("lab").expect("hood");
    let day = Duration::from_secs(86_400);
    let expired = hood
        .issue_with(
            "old-timer",
            Validity {
                not_before: SystemTime::now() - 30 * day,
                not_after: SystemTime::now() - day,
            },
        )
        .expect("issues");
    let (node, addr) = server(&hood, None);
    let mut errors = node.errors();
    let attempt = RawPeer::connect(&expired, addr).await;
    let report = next_refusal(&mut errors).await;
    assert!(report.message.contains("certificate expired"), "{report}");
    if let Ok(raw) = attempt {
        tokio::time::timeout(WAIT, raw.closed())
            .await
            .expect("the refused connection is closed");
    }
    node.close().await;
}

#[tokio::test]
async fn a_name_not_allowed_is_refused_and_an_allowed_one_is_not() {
    let hood = Hood::create("lab").expect("hood");
    let (node, addr) = server(&hood, Some(&["alice"]));
    let mut errors = node.errors();

    let mallory = RawPeer::connect(&hood.issue("mallory").expect("issues"), addr)
        .await
        .expect("the TLS handshake itself succeeds");
    let report = next_refusal(&mut errors).await;
    assert!(
        report
            .message
            .contains("`mallory` is not among the allowed peers"),
        "{report}"
    );
    let why = tokio::time::timeout(WAIT, mallory.closed())
        .await
        .expect("mallory is disconnected");
    assert!(why.contains("not among the allowed peers"), "{why}");

    let alice = support::start_node(
        &hood.issue("alice").expect("issues"),
        &[addr],
        support::fast_config_emitter(),
    )
    .expect("starts");
    tokio::time::timeout(MESH_TIMEOUT, alice.transport.wait_for_peers(1))
        .await
        .expect("alice is allowed in");
    assert_eq!(node.error_counts().refused, 1, "only mallory was refused");
    alice.emitter.close().await;
    node.close().await;
}

#[tokio::test]
async fn a_node_refuses_a_seed_from_another_hood() {
    let (stranger, stranger_addr) = server(&Hood::create("elsewhere").expect("hood"), None);
    let hood = Hood::create("lab").expect("hood");
    let node = support::start_node(
        &hood.issue("dialer").expect("issues"),
        &[stranger_addr],
        support::fast_config_emitter(),
    )
    .expect("starts");
    let mut errors = node.emitter.errors();
    let report = next_refusal(&mut errors).await;
    assert!(report.message.contains("UnknownIssuer"), "{report}");
    assert!(node.transport.connected_peers().is_empty());
    node.emitter.close().await;
    stranger.close().await;
}

/// A node of `hood` named `name`, seeded with `seed`, its transport kept for the test.
fn node(
    hood: &Hood,
    name: &str,
    seed: Option<std::net::SocketAddr>,
    allowed: Option<&[&str]>,
) -> (Emitter, std::sync::Arc<QuicTransport>) {
    let mut config = fast_config(hood.issue(name).expect("issues"));
    config.seeds.extend(seed.map(|s| s.to_string()));
    if let Some(names) = allowed {
        config = config.allow_only(names.iter().copied());
    }
    let transport = std::sync::Arc::new(QuicTransport::bind(config).expect("binds"));
    let shared: std::sync::Arc<dyn demitter_core::Transport> = transport.clone();
    let emitter = Emitter::from_shared(shared, support::fast_config_emitter()).expect("emitter");
    (emitter, transport)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_removed_from_the_allowed_names_is_disconnected_and_stays_out() {
    let hood = Hood::create("lab").expect("hood");
    let (server, server_transport) = node(&hood, "server", None, Some(&["alice", "bob"]));
    let mut ups = server
        .events::<demitter_core::PeerChange>(demitter_core::PEER_UP)
        .expect("valid");
    let addr = server_transport.local_addr();
    let (alice, _a) = node(&hood, "alice", Some(addr), None);
    let (bob, _b) = node(&hood, "bob", Some(addr), None);
    for _ in 0..2 {
        tokio::time::timeout(MESH_TIMEOUT, ups.recv())
            .await
            .expect("alice and bob join")
            .expect("open")
            .expect("decodes");
    }
    let mut downs = server
        .events::<demitter_core::PeerChange>(demitter_core::PEER_DOWN)
        .expect("valid");
    let mut errors = server.errors();

    server_transport.set_allowed_peers(Some(["alice"])).await;
    let down = tokio::time::timeout(WAIT, downs.recv())
        .await
        .expect("bob goes down")
        .expect("open")
        .expect("decodes");
    assert_eq!(down.data.peer, "bob");
    let revoked = next_refusal(&mut errors).await;
    assert!(
        revoked
            .message
            .contains("`bob` is no longer among the allowed peers"),
        "{revoked}"
    );
    // Bob keeps redialing its seed, and is refused each time.
    let again = next_refusal(&mut errors).await;
    assert!(
        again
            .message
            .contains("`bob` is not among the allowed peers"),
        "{again}"
    );
    assert_eq!(
        server_transport
            .connected_peers()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["alice"]
    );
    for emitter in [alice, bob, server] {
        emitter.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unauthenticated_client_cannot_inject_an_event() {
    use demitter_core::{EventFrame, Frame, NodeId};
    let hood = Hood::create("lab").expect("hood");
    let (server, server_transport) = node(&hood, "server", None, None);
    let addr = server_transport.local_addr();
    let (alice, _a) = node(&hood, "alice", Some(addr), None);
    let mut events = server.events::<String>("inject.+").expect("valid");
    let mut errors = server.errors();
    tokio::time::timeout(WAIT, alice.wait_for_listeners("inject.fence", 1))
        .await
        .expect("the server's listener is seen")
        .expect("open");

    // Claims to be alice, without a certificate.
    let forged = Frame::Event(EventFrame {
        name: "inject.evil".into(),
        source: NodeId::new("alice").expect("valid"),
        epoch: 1,
        seq: 1,
        payload: demitter_core::encode_payload("forged").expect("encodes"),
    });
    if let Ok(mut raw) = RawPeer::connect_anonymous(addr).await {
        let _ = raw.send_raw(&demitter_quic::wire::PREAMBLE).await;
        let _ = raw
            .send_raw(&demitter_quic::wire::frame_record(&forged))
            .await;
    }
    let refusal = next_refusal(&mut errors).await;
    assert!(refusal.message.contains("certificate"), "{refusal}");

    alice.emit("inject.fence", "real").await.expect("emits");
    let first = tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("the fence arrives")
        .expect("open")
        .expect("decodes");
    assert_eq!(
        (&*first.name, first.data.as_str()),
        ("inject.fence", "real")
    );
    for emitter in [alice, server] {
        emitter.close().await;
    }
}
