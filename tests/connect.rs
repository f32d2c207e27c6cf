//! `demitter::connect`: the URL grammar and its errors.

use std::time::Duration;

use demitter::Error;

#[tokio::test]
async fn mem_urls_join_the_named_hub() {
    let a = demitter::connect("mem://facade-test")
        .await
        .expect("connects");
    let b = demitter::connect("mem://facade-test")
        .await
        .expect("connects");
    let once = b.once::<u8>("ping").expect("valid");
    tokio::time::timeout(Duration::from_secs(10), a.wait_for_listeners("ping", 1))
        .await
        .expect("b's listener is seen")
        .expect("open");
    a.emit("ping", &7u8).await.expect("emits");
    let event = tokio::time::timeout(Duration::from_secs(10), once)
        .await
        .expect("arrives")
        .expect("decodes");
    assert_eq!(event.data, 7);
}

#[tokio::test]
async fn bad_urls_are_clear_errors() {
    for (url, needle) in [
        ("no-scheme", "SCHEME://"),
        ("mem://", "hub name"),
        ("carrier-pigeon://x", "unknown scheme"),
        #[cfg(feature = "zmq")]
        ("zmq://localhost", "HOST:XSUB_PORT"),
        #[cfg(feature = "zmq")]
        ("zmq://:5555", "host is missing"),
        #[cfg(feature = "zmq")]
        ("zmq://localhost:port", "not a port"),
        #[cfg(feature = "zmq")]
        ("zmq://localhost:5555?xpub=nope", "not a port"),
        #[cfg(feature = "zmq")]
        ("zmq://localhost:5555?pub=1", "unknown parameter"),
        #[cfg(feature = "quic")]
        ("quic://127.0.0.1", "quic://HOST:PORTS"),
        #[cfg(feature = "quic")]
        ("quic://somewhere:4816?hood=x&peer=y", "not an IP address"),
        #[cfg(feature = "quic")]
        ("quic://0.0.0.0:4819-4816?hood=x&peer=y", "backwards"),
        #[cfg(feature = "quic")]
        ("quic://0.0.0.0:4816", "hood=DIR&peer=NAME"),
        #[cfg(feature = "quic")]
        ("quic://0.0.0.0:4816?hood=/nonexistent&peer=y", "hood.crt"),
        #[cfg(feature = "quic")]
        (
            "quic://0.0.0.0:4816?hood=x&peer=y&mdns=maybe",
            "mdns=`maybe`: use on or off",
        ),
        #[cfg(feature = "quic")]
        (
            "quic://0.0.0.0:4816?hood=x&peer=y&dht=",
            "dht= needs on, off, or HOST:PORT",
        ),
        #[cfg(feature = "quic")]
        (
            "quic://0.0.0.0:4816?hood=x&peer=y&dht=10.0.0.2",
            "`10.0.0.2` is not HOST:PORT",
        ),
        #[cfg(feature = "quic")]
        (
            "quic://0.0.0.0:4816?hood=x&peer=y&dht=on&dht-port=70000",
            "not a UDP port",
        ),
        #[cfg(feature = "quic")]
        (
            "quic://0.0.0.0:4816?hood=x&peer=y&dht-port=6881",
            "needs dht=",
        ),
        #[cfg(feature = "quic")]
        ("quic://[::1]:4816?hood=x&peer=y&dht=on", "IPv4 only"),
        #[cfg(feature = "quic")]
        (
            "quic://0.0.0.0:4816?hood=x&peer=y&colour=blue",
            "unknown parameter",
        ),
    ] {
        let err = demitter::connect(url).await.expect_err(url);
        assert!(matches!(err, Error::InvalidUrl { .. }), "{err:?}");
        assert!(err.to_string().contains(needle), "{url}: {err}");
    }
}

#[cfg(feature = "zmq")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zmq_urls_reach_a_forwarder() {
    use demitter::forwarder::{Forwarder, ForwarderConfig};
    let forwarder = Forwarder::bind(ForwarderConfig::loopback_free_ports())
        .await
        .expect("binds");
    let url = forwarder.url();
    assert_eq!(
        url,
        format!(
            "zmq://127.0.0.1:{}?xpub={}",
            forwarder.xsub_addr().port(),
            forwarder.xpub_addr().port()
        )
    );
    let a = demitter::connect(&url).await.expect("connects");
    let b = demitter::connect(&url).await.expect("connects");
    let once = b.once::<String>("via.zmq").expect("valid");
    tokio::time::timeout(Duration::from_secs(10), a.wait_for_listeners("via.zmq", 1))
        .await
        .expect("b's listener is seen through the forwarder")
        .expect("open");
    a.emit("via.zmq", "hello").await.expect("emits");
    let event = tokio::time::timeout(Duration::from_secs(10), once)
        .await
        .expect("arrives")
        .expect("decodes");
    assert_eq!(event.data, "hello");
    a.close().await;
    b.close().await;
    forwarder.close().await;
}

/// The README's promise: `connect` returns at once, and a wrong address is heard on
/// `errors()`.
#[cfg(feature = "zmq")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zmq_url_with_nothing_there_is_heard_on_errors() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let port = closed.local_addr().expect("bound").port();
    drop(closed);
    let emitter = demitter::connect(&format!("zmq://127.0.0.1:{port}?xpub={port}"))
        .await
        .expect("connect returns at once");
    let report = tokio::time::timeout(Duration::from_secs(10), emitter.errors().recv())
        .await
        .expect("a report in time")
        .expect("open");
    assert_eq!(report.kind, demitter::ErrorKind::Network, "{report}");
    assert!(
        report.message.contains("cannot reach the forwarder's")
            && report.message.contains(&format!("127.0.0.1:{port}")),
        "{report}"
    );
    emitter.close().await;
}

#[cfg(feature = "quic")]
#[tokio::test]
async fn quic_urls_start_mesh_nodes() {
    use demitter::quic::dht::DhtBootstrap;
    use demitter::quic::pki;
    let dir = std::env::temp_dir().join(format!("demitter-connect-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    pki::create_hood(&dir, "facade").expect("hood");
    pki::create_peer(&dir, "alice").expect("peer");
    pki::create_peer(&dir, "bob").expect("peer");
    // A port for alice that bob can be told about: ask the system for a free one.
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free port")
        .port();
    let hood = dir.display();
    let a = demitter::connect(&format!("quic://127.0.0.1:{port}?hood={hood}&peer=alice"))
        .await
        .expect("alice starts");
    let b = demitter::connect(&format!(
        "quic://127.0.0.1:0?hood={hood}&peer=bob&seed=127.0.0.1:{port}"
    ))
    .await
    .expect("bob starts");
    assert_eq!(a.id().as_str(), "alice", "the certificate names the node");
    // The DHT parameters, read without binding or sending anything: `dht=on` is the
    // public DHT through mainline's routers, `dht=HOST:PORT` a private one.
    let with = |query: &str| {
        demitter::quic_config(&format!(
            "quic://127.0.0.1:0?hood={hood}&peer=alice&{query}"
        ))
        .expect("parses")
        .dht
        .map(|dht| (dht.bootstrap().clone(), dht.port()))
    };
    assert_eq!(with("dht=on"), Some((DhtBootstrap::Public, 0)));
    assert_eq!(
        with("dht=off&dht=on&dht-port=7000"),
        Some((DhtBootstrap::Public, 7000))
    );
    assert_eq!(
        with("dht=10.0.0.2:6881,dht.example:6881"),
        Some((
            DhtBootstrap::Nodes(vec!["10.0.0.2:6881".into(), "dht.example:6881".into()]),
            0
        ))
    );
    assert_eq!(with("dht=off"), None);
    assert_eq!(with("mdns=off"), None, "no DHT unless asked");
    let once = b.once::<String>("via.quic").expect("valid");
    tokio::time::timeout(Duration::from_secs(10), a.wait_for_listeners("via.quic", 1))
        .await
        .expect("bob's listener is seen over the mesh")
        .expect("open");
    a.emit("via.quic", "hello").await.expect("emits");
    let event = tokio::time::timeout(Duration::from_secs(10), once)
        .await
        .expect("arrives")
        .expect("decodes");
    assert_eq!((&*event.source, event.data.as_str()), ("alice", "hello"));
    a.close().await;
    b.close().await;
    std::fs::remove_dir_all(&dir).ok();
}

#[cfg(feature = "nng")]
#[tokio::test]
async fn nng_urls_start_bus_nodes() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free port")
        .port();
    let a = demitter::connect(&format!("nng+tcp://127.0.0.1:{port}"))
        .await
        .expect("the first node starts");
    let b = demitter::connect(&format!("nng+tcp://127.0.0.1:0?peer=127.0.0.1:{port}"))
        .await
        .expect("the second node starts");
    let once = b.once::<String>("via.nng").expect("valid");
    tokio::time::timeout(Duration::from_secs(10), a.wait_for_listeners("via.nng", 1))
        .await
        .expect("the listener is seen over the bus")
        .expect("open");
    a.emit("via.nng", "hello").await.expect("emits");
    let event = tokio::time::timeout(Duration::from_secs(10), once)
        .await
        .expect("arrives")
        .expect("decodes");
    assert_eq!(event.data, "hello");
    for bad in ["nng+tcp://127.0.0.1", "nng+tcp://127.0.0.1:1?seed=x"] {
        let err = demitter::connect(bad).await.expect_err(bad);
        assert!(matches!(err, Error::InvalidUrl { .. }), "{err:?}");
    }
    a.close().await;
    b.close().await;
}

#[cfg(feature = "nats")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_urls_reach_a_server() {
    use demitter_conformance::nats_server::{NatsServer, available};
    if !available("nats_urls_reach_a_server") {
        return;
    }
    let server = tokio::task::block_in_place(NatsServer::start);
    let url = format!("nats://{}?prefix=facade", server.addr());
    let a = demitter::connect(&url).await.expect("connects");
    let b = demitter::connect(&url).await.expect("connects");
    let once = b.once::<String>("via.nats").expect("valid");
    tokio::time::timeout(Duration::from_secs(10), a.wait_for_listeners("via.nats", 1))
        .await
        .expect("the listener is seen through the server")
        .expect("open");
    a.emit("via.nats", "hello").await.expect("emits");
    let event = tokio::time::timeout(Duration::from_secs(10), once)
        .await
        .expect("arrives")
        .expect("decodes");
    assert_eq!(event.data, "hello");
    for (bad, needle) in [
        ("nats://", "no server"),
        ("nats://127.0.0.1:1?prefix=a.b", "prefix"),
        ("nats://127.0.0.1:1?colour=blue", "prefix=NAME"),
    ] {
        let err = demitter::connect(bad).await.expect_err(bad);
        assert!(matches!(err, Error::InvalidUrl { .. }), "{err:?}");
        assert!(err.to_string().contains(needle), "{bad}: {err}");
    }
    a.close().await;
    b.close().await;
}
