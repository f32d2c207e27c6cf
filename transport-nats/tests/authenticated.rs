//! An authenticated bus: mutual TLS with `demitter pki` certificates, and a server that
//! lets each node publish only on its own subjects. A node cannot emit under another's
//! name (the server refuses its subject, the core refuses its frame), a client without a
//! certificate of the hood (or a user) is refused, and a server that does not bind nodes
//! to their subjects fails the connect instead of making a bus that only looks
//! authenticated.

mod support;

use bytes::{Bytes, BytesMut};
use demitter_conformance::nats_server::available;
use demitter_conformance::support::{next_event, next_report, wait_for_count, within};
use demitter_conformance::test_config;
use demitter_core::{Emitter, ErrorKind, EventFrame, Frame, NodeId, Transport};
use demitter_nats::{NatsError, NatsTransport};
use support::PREFIX;
use support::secure::{self, HoodDir};
use tokio::sync::mpsc;

const PEERS: [&str; 3] = ["alice", "bob", "carol"];

/// An event frame named `name` claiming `source`, with `data` as its payload.
fn event_frame(source: &str, name: &str, seq: u64, data: u32) -> Bytes {
    let frame = Frame::Event(EventFrame {
        name: name.into(),
        source: NodeId::new(source).expect("valid"),
        epoch: 7,
        seq,
        payload: demitter_core::encode_payload(&data).expect("encodes"),
    });
    let mut bytes = BytesMut::new();
    frame.encode(&mut bytes);
    bytes.freeze()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cannot_emit_under_another_name() {
    if !available("a_node_cannot_emit_under_another_name") {
        return;
    }
    let hood = tokio::task::block_in_place(|| HoodDir::create(&PEERS));
    let server = tokio::task::block_in_place(|| secure::start_server(&hood, &PEERS));
    let addr = server.addr();
    let connect = |name: &'static str| {
        let config = secure::config(&hood, &addr, name);
        async move {
            let transport = NatsTransport::connect(config).await.expect("connects");
            assert!(
                transport.capabilities().authenticated,
                "{name} is authenticated"
            );
            assert_eq!(
                transport
                    .local_id()
                    .map(|id| id.as_str().to_owned())
                    .as_deref(),
                Some(name)
            );
            Emitter::with_config(transport, test_config()).expect("starts")
        }
    };
    let alice = within("alice connects", connect("alice")).await;
    let bob = within("bob connects", connect("bob")).await;
    assert_eq!(
        alice.id().as_str(),
        "alice",
        "the certificate's name is the id"
    );

    let mut errors = alice.errors();
    let mut events = alice.events::<u32>("auth.x").expect("valid");
    wait_for_count(&bob, "auth.x", 1).await;
    bob.emit("auth.x", &1u32).await.expect("emits");
    let real = next_event(&mut events, "bob's event").await;
    assert_eq!((real.source.as_str(), real.data), ("bob", 1));

    // Carol, with her own certificate, tries to pass as bob.
    let (refusals_tx, mut refusals) = mpsc::unbounded_channel();
    let identity = hood.identity("carol");
    let carol = within(
        "carol's raw client connects",
        async_nats::ConnectOptions::new()
            .require_tls(true)
            .add_root_certificates(identity.ca_cert)
            .add_client_certificate(identity.cert, identity.key)
            .event_callback(move |event| {
                if let async_nats::Event::ServerError(error) = event {
                    let _ = refusals_tx.send(error.to_string());
                }
                async {}
            })
            .connect(&addr),
    )
    .await
    .expect("carol is a user");
    // On bob's subject: the server refuses it.
    carol
        .publish(
            format!("{PREFIX}.e.bob.auth.x"),
            event_frame("bob", "auth.x", 1, 66),
        )
        .await
        .expect("queued");
    carol.flush().await.expect("flushed");
    let refusal = within("the server refuses bob's subject to carol", refusals.recv())
        .await
        .expect("carol's client runs");
    assert!(
        refusal.contains("Permissions Violation") && refusal.contains(".e.bob."),
        "{refusal}"
    );
    // On her own subject, claiming bob: the core refuses it.
    carol
        .publish(
            format!("{PREFIX}.e.carol.auth.x"),
            event_frame("bob", "auth.x", 2, 67),
        )
        .await
        .expect("queued");
    let forged = next_report(&mut errors, ErrorKind::Refused).await;
    assert!(
        forged.message.contains("`bob`") && forged.message.contains("carol"),
        "{forged}"
    );
    // Her own event, after both: NATS keeps her order, so had either forgery been
    // delivered it would have come first.
    carol
        .publish(
            format!("{PREFIX}.e.carol.auth.x"),
            event_frame("carol", "auth.x", 1, 3),
        )
        .await
        .expect("queued");
    carol.flush().await.expect("flushed");
    let next = next_event(&mut events, "carol's own event").await;
    assert_eq!((next.source.as_str(), next.data), ("carol", 3));
    assert_eq!(
        alice.error_counts().refused,
        1,
        "one forgery reached the core, refused"
    );

    bob.close().await;
    alice.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_are_refused() {
    if !available("strangers_are_refused") {
        return;
    }
    let hood = tokio::task::block_in_place(|| HoodDir::create(&["alice", "mallory"]));
    // Mallory has a certificate of the hood, but the server names no such user.
    let server = tokio::task::block_in_place(|| secure::start_server(&hood, &["alice"]));
    let addr = server.addr();
    let stranger_hood = tokio::task::block_in_place(|| HoodDir::create(&["alice"]));

    let refused = |config| async move {
        within("a refusal", NatsTransport::connect(config))
            .await
            .expect_err("refused")
    };
    let mut no_user = secure::config(&hood, &addr, "mallory");
    no_user.connect_timeout = std::time::Duration::from_secs(2);
    assert!(matches!(refused(no_user).await, NatsError::Connect { .. }));
    // A certificate of another hood, even with a user's name.
    let mut other_hood = secure::config(&stranger_hood, &addr, "alice");
    if let Some(identity) = other_hood.identity.as_mut() {
        // It trusts the server: only the server's refusal keeps it out.
        identity.ca_cert = hood.identity("alice").ca_cert;
    }
    assert!(matches!(
        refused(other_hood).await,
        NatsError::Connect { .. }
    ));
    // No certificate at all, and no TLS at all.
    let identity = hood.identity("alice");
    let anonymous = async_nats::ConnectOptions::new()
        .require_tls(true)
        .add_root_certificates(identity.ca_cert)
        .connect(&addr);
    assert!(within("an anonymous client", anonymous).await.is_err());
    let plain = async_nats::ConnectOptions::new().connect(&addr);
    assert!(within("a plain client", plain).await.is_err());
    // Alice herself gets in.
    let alice = within(
        "alice connects",
        NatsTransport::connect(secure::config(&hood, &addr, "alice")),
    )
    .await
    .expect("alice is a user");
    alice.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_binds_no_one_to_their_subjects_fails_the_connect() {
    if !available("a_server_that_binds_no_one_to_their_subjects_fails_the_connect") {
        return;
    }
    let hood = tokio::task::block_in_place(|| HoodDir::create(&["alice"]));
    let server = tokio::task::block_in_place(|| secure::start_server_without_permissions(&hood));
    let error = within(
        "the connect",
        NatsTransport::connect(secure::config(&hood, &server.addr(), "alice")),
    )
    .await
    .expect_err("refused");
    assert!(
        matches!(error, NatsError::PermissionsNotEnforced { .. }),
        "{error}"
    );
    // A missing certificate file is said as such, before any connection.
    let mut missing = secure::config(&hood, &server.addr(), "alice");
    if let Some(identity) = missing.identity.as_mut() {
        identity.key = hood.path().join("nobody.key");
    }
    let error = NatsTransport::connect(missing).await.expect_err("refused");
    assert!(matches!(error, NatsError::IdentityFile { .. }), "{error}");
}
