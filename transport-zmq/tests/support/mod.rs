//! A cluster of emitters on one embedded forwarder (NULL or CURVE), for the conformance
//! suite, and fast emitters for the other tests.

// Each test binary uses a part of this.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use demitter_conformance::{Cluster, ClusterCapabilities, ClusterFactory};
use demitter_core::faulty::{FaultSwitch, faulty};
use demitter_core::{DEFAULT_MAX_FRAME_BYTES, Emitter, EmitterConfig, Error, NodeId};
use demitter_forwarder::{Forwarder, ForwarderConfig, ForwarderCurve};
use demitter_zmq::conn::{self, CurveClientKeys};
use demitter_zmq::curve_keys::{AllowList, CurveSecretKey};
use demitter_zmq::zmtp::{self, SocketType};
use demitter_zmq::{ZmqConfig, ZmqTransport};

/// Builds clusters of emitters around a fresh forwarder on free loopback ports: with the
/// NULL mechanism, as Demitter speaks, or with CURVE, every node's key on the allow list.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ZmqClusterFactory {
    curve: bool,
}

impl ZmqClusterFactory {
    /// Plain NULL connections.
    pub(crate) const NULL: Self = Self { curve: false };
    /// CURVE: each node's own key, bound to its name, and the forwarder checks names.
    pub(crate) const CURVE: Self = Self { curve: true };
}

/// The name of the key a CURVE cluster injects raw frames with.
const INJECTOR: &str = "injector";

/// A CURVE cluster's keys: the forwarder's, and one per node and the injector's, each
/// allowed under its name.
#[derive(Debug)]
struct ClusterKeys {
    server: CurveSecretKey,
    nodes: Vec<CurveSecretKey>,
    injector: CurveSecretKey,
}

impl ClusterKeys {
    fn new(nodes: usize) -> Self {
        Self {
            server: CurveSecretKey::generate(),
            nodes: (0..nodes).map(|_| CurveSecretKey::generate()).collect(),
            injector: CurveSecretKey::generate(),
        }
    }

    fn allow_list(&self) -> AllowList {
        let mut lines = format!("{INJECTOR} {}\n", self.injector.public_key());
        for (i, key) in self.nodes.iter().enumerate() {
            let _ = writeln!(lines, "{} {}", node_name(i), key.public_key());
        }
        AllowList::parse(&lines).expect("names and keys of our own")
    }

    fn client(&self, name: &str, secret: &CurveSecretKey) -> CurveClientKeys {
        CurveClientKeys::new(
            NodeId::new(name).expect("a name of our own"),
            secret.clone(),
            self.server.public_key(),
        )
    }
}

fn node_name(i: usize) -> String {
    format!("node-{i}")
}

/// Emitters connected to one forwarder.
#[derive(Debug)]
pub(crate) struct ZmqCluster {
    forwarder: Option<Forwarder>,
    xsub: SocketAddr,
    xpub: SocketAddr,
    config: EmitterConfig,
    curve: Option<ClusterKeys>,
    nodes: Vec<(Emitter, FaultSwitch)>,
    /// Raw publishers that injected frames, kept open: closing a socket with unread data
    /// resets it, and the reset can discard what it sent.
    injectors: tokio::sync::Mutex<Vec<(conn::Reader, conn::Writer)>>,
}

fn forwarder_config(
    xsub: SocketAddr,
    xpub: SocketAddr,
    curve: Option<&ClusterKeys>,
) -> ForwarderConfig {
    ForwarderConfig {
        xsub,
        xpub,
        stats_interval: None,
        curve: curve.map(|keys| ForwarderCurve::new(keys.server.clone(), keys.allow_list())),
        ..ForwarderConfig::default()
    }
}

fn transport_error(e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::transport_failed("ZeroMQ", e)
}

impl ZmqCluster {
    /// Node `i`, on `config`; with CURVE, on its own key (and so under its key's name).
    fn start_node(&self, i: usize, config: EmitterConfig) -> Result<(Emitter, FaultSwitch), Error> {
        let mut zmq = ZmqConfig::new(self.xsub.to_string(), self.xpub.to_string());
        zmq.curve = self
            .curve
            .as_ref()
            .map(|keys| keys.client(&node_name(i), &keys.nodes[i]));
        // Killed, it sends nothing, as a crashed process would.
        let (transport, switch) = faulty(ZmqTransport::connect(zmq));
        Ok((Emitter::with_config(transport, config)?, switch))
    }
}

impl ClusterFactory for ZmqClusterFactory {
    type Cluster = ZmqCluster;

    async fn build(&self, nodes: usize, config: EmitterConfig) -> Result<ZmqCluster, Error> {
        let any: SocketAddr = "127.0.0.1:0".parse().map_err(transport_error)?;
        let curve = self.curve.then(|| ClusterKeys::new(nodes));
        let forwarder = Forwarder::bind(forwarder_config(any, any, curve.as_ref()))
            .await
            .map_err(transport_error)?;
        let mut cluster = ZmqCluster {
            xsub: forwarder.xsub_addr(),
            xpub: forwarder.xpub_addr(),
            forwarder: Some(forwarder),
            config,
            curve,
            nodes: Vec::new(),
            injectors: tokio::sync::Mutex::default(),
        };
        for i in 0..nodes {
            let node = cluster.start_node(i, cluster.config.clone())?;
            cluster.nodes.push(node);
        }
        Ok(cluster)
    }
}

impl Cluster for ZmqCluster {
    fn node(&self, i: usize) -> &Emitter {
        &self.nodes[i].0
    }

    fn len(&self) -> usize {
        self.nodes.len()
    }

    fn capabilities(&self) -> ClusterCapabilities {
        ClusterCapabilities::new(true, true)
    }

    fn faults(&self, i: usize) -> &FaultSwitch {
        &self.nodes[i].1
    }

    async fn kill(&mut self, i: usize) {
        let (node, switch) = &self.nodes[i];
        switch.kill();
        node.close().await;
    }

    async fn restart(&mut self, i: usize) -> Result<(), Error> {
        let config = self.config.clone().with_id(self.nodes[i].0.id().as_str());
        self.nodes[i] = self.start_node(i, config)?;
        Ok(())
    }

    async fn start_namesake(&self, i: usize) -> Result<Emitter, Error> {
        let config = self.config.clone().with_id(self.nodes[i].0.id().as_str());
        Ok(self.start_node(i, config)?.0)
    }

    async fn restart_hub(&mut self) -> Result<(), Error> {
        if let Some(forwarder) = self.forwarder.take() {
            forwarder.close().await;
        }
        let config = forwarder_config(self.xsub, self.xpub, self.curve.as_ref());
        let forwarder = Forwarder::bind(config).await.map_err(transport_error)?;
        self.forwarder = Some(forwarder);
        Ok(())
    }

    async fn inject_raw(&self, _i: usize, bytes: Bytes) -> Result<(), Error> {
        // A raw publisher sends the bytes as the body of a control message, which every node
        // receives: how a hostile peer on the bus would reach them. With CURVE it is an
        // allowed key of its own, sending under that key's name.
        let stream = tokio::net::TcpStream::connect(self.xsub)
            .await
            .map_err(transport_error)?;
        // Room for the oversize frames the suite injects.
        let max = 2 * DEFAULT_MAX_FRAME_BYTES;
        let (reader, mut writer) = match &self.curve {
            None => conn::handshake(stream, SocketType::Pub, max)
                .await
                .map(|(reader, writer, _)| (reader, writer)),
            Some(keys) => {
                let injector = keys.client(INJECTOR, &keys.injector);
                conn::handshake_curve_client(stream, SocketType::Pub, max, &injector)
                    .await
                    .map(|(reader, writer, _)| (reader, writer))
            }
        }
        .map_err(transport_error)?;
        let mut message = BytesMut::new();
        zmtp::put_message(
            &mut message,
            &[
                demitter_zmq::wire::CONTROL_TOPIC,
                INJECTOR.as_bytes(),
                &bytes,
            ],
        );
        writer.write_all(&message).await.map_err(transport_error)?;
        self.injectors.lock().await.push((reader, writer));
        Ok(())
    }

    fn max_frame_bytes(&self) -> usize {
        DEFAULT_MAX_FRAME_BYTES
    }

    async fn shutdown(self) {
        for (node, _) in &self.nodes {
            node.close().await;
        }
        if let Some(forwarder) = self.forwarder {
            forwarder.close().await;
        }
    }
}

/// A forwarder with both sides on free ports of `ip` (no CURVE), and their addresses.
pub(crate) async fn forwarder_on(ip: std::net::IpAddr) -> (Forwarder, String, String) {
    let any = SocketAddr::new(ip, 0);
    let forwarder = Forwarder::bind(forwarder_config(any, any, None))
        .await
        .expect("the forwarder binds");
    let (xsub, xpub) = (
        forwarder.xsub_addr().to_string(),
        forwarder.xpub_addr().to_string(),
    );
    (forwarder, xsub, xpub)
}

/// Settings for the forwarder at `xsub` / `xpub`, redialing fast (20 ms to 200 ms).
pub(crate) fn fast_config(xsub: &str, xpub: &str) -> ZmqConfig {
    let mut config = ZmqConfig::new(xsub, xpub);
    config.reconnect_min = std::time::Duration::from_millis(20);
    config.reconnect_max = std::time::Duration::from_millis(200);
    config
}

/// An emitter on `config` with the suite's fast heartbeats.
pub(crate) fn emitter_on(config: ZmqConfig) -> Emitter {
    Emitter::with_config(
        ZmqTransport::connect(config),
        demitter_conformance::test_config(),
    )
    .expect("emitter")
}
