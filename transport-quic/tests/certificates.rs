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
