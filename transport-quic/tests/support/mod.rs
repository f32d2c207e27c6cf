//! A mesh of emitters on loopback, one hood, for the conformance suite and the other tests.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use demitter_conformance::{Cluster, ClusterCapabilities, ClusterFactory};
use demitter_core::faulty::{FaultSwitch, faulty};
use demitter_core::{Emitter, EmitterConfig, Error, Transport};
use demitter_quic::wire::{KIND_FRAME, raw_record};
use demitter_quic::{Hood, PeerIdentity, QuicConfig, QuicTransport, RawPeer};

/// The frame limit the test meshes use (small, so oversize input is cheap to send).
pub const MAX_FRAME: usize = 2 * 1024 * 1024;
/// The longest a mesh may take to form.
pub const MESH_TIMEOUT: Duration = Duration::from_secs(20);

/// Fast timers for tests: a lost connection is noticed within a second.
pub fn fast_config(identity: PeerIdentity) -> QuicConfig {
    let mut config = QuicConfig::new(identity).loopback();
    config.idle_timeout = Duration::from_secs(1);
    config.keep_alive = Duration::from_millis(200);
    config.reconnect_min = Duration::from_millis(50);
    config.reconnect_max = Duration::from_millis(500);
    config.max_frame_bytes = MAX_FRAME;
    config
}

/// The conformance suite's emitter settings (fast heartbeats), for the other tests.
pub fn fast_config_emitter() -> EmitterConfig {
    demitter_conformance::support::test_config()
}

/// Builds meshes of emitters: node 0 first, every later node seeded with node 0 only, so
/// gossip has to find the rest.
#[derive(Debug, Clone, Copy, Default)]
pub struct QuicClusterFactory;

/// One node: its emitter and its transport.
#[derive(Debug)]
pub struct Node {
    pub emitter: Emitter,
    /// What its transport loses of what it sends.
    pub faults: FaultSwitch,
    pub transport: Arc<QuicTransport>,
    pub identity: PeerIdentity,
}

/// A mesh of emitters on loopback.
#[derive(Debug)]
pub struct QuicCluster {
    pub hood: Hood,
    config: EmitterConfig,
    pub nodes: Vec<Node>,
    injectors: tokio::sync::Mutex<Vec<RawPeer>>,
}

fn transport_error(e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::transport_failed("QUIC", e)
}

/// Starts one node.
pub fn start_node(
    identity: &PeerIdentity,
    seeds: &[SocketAddr],
    config: EmitterConfig,
) -> Result<Node, Error> {
    let mut quic = fast_config(identity.clone());
    quic.seeds = seeds.iter().map(ToString::to_string).collect();
    Node::new(QuicTransport::bind(quic)?, identity, config)
}

impl Node {
    /// An emitter on `transport`, behind the fault-injecting wrapper (which passes
    /// everything until told otherwise).
    pub fn new(
        transport: QuicTransport,
        identity: &PeerIdentity,
        config: EmitterConfig,
    ) -> Result<Node, Error> {
        let transport = Arc::new(transport);
        let shared: Arc<dyn Transport> = Arc::clone(&transport) as Arc<dyn Transport>;
        let (wrapped, faults) = faulty(shared);
        let shared: Arc<dyn Transport> = Arc::new(wrapped);
        Ok(Node {
            emitter: Emitter::from_shared(shared, config)?,
            faults,
            transport,
            identity: identity.clone(),
        })
    }
}

impl QuicCluster {
    /// Waits until every node is connected to every other.
    pub async fn wait_for_full_mesh(&self) {
        let others = self.nodes.len() - 1;
        for node in &self.nodes {
            tokio::time::timeout(MESH_TIMEOUT, node.transport.wait_for_peers(others))
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "{} connected to {:?} only",
                        node.transport.name(),
                        node.transport.connected_peers()
                    )
                });
        }
    }

    fn seed_for(&self, i: usize) -> Vec<SocketAddr> {
        let seed = usize::from(i == 0);
        match self.nodes.get(seed) {
            Some(node) if seed != i => vec![node.transport.local_addr()],
            _ => Vec::new(),
        }
    }
}

impl ClusterFactory for QuicClusterFactory {
    type Cluster = QuicCluster;

    async fn build(&self, nodes: usize, config: EmitterConfig) -> Result<QuicCluster, Error> {
        let hood = Hood::create("conformance")?;
        let mut cluster = QuicCluster {
            hood,
            config,
            nodes: Vec::new(),
            injectors: tokio::sync::Mutex::new(Vec::new()),
        };
        for i in 0..nodes {
            let identity = cluster.hood.issue(&format!("node-{i}"))?;
            let seeds = cluster.seed_for(i);
            let node = start_node(&identity, &seeds, cluster.config.clone())?;
            cluster.nodes.push(node);
        }
        cluster.wait_for_full_mesh().await;
        Ok(cluster)
    }
}

impl Cluster for QuicCluster {
    fn node(&self, i: usize) -> &Emitter {
        &self.nodes[i].emitter
    }

    fn len(&self) -> usize {
        self.nodes.len()
    }

    fn capabilities(&self) -> ClusterCapabilities {
        ClusterCapabilities::new(true, false)
    }

    fn faults(&self, i: usize) -> &FaultSwitch {
        &self.nodes[i].faults
    }

    async fn kill(&mut self, i: usize) {
        self.nodes[i].transport.abort();
        self.nodes[i].emitter.close().await;
    }

    async fn restart(&mut self, i: usize) -> Result<(), Error> {
        let seeds = self.seed_for(i);
        let identity = self.nodes[i].identity.clone();
        self.nodes[i] = start_node(&identity, &seeds, self.config.clone())?;
        Ok(())
    }

    async fn start_namesake(&self, i: usize) -> Result<Emitter, Error> {
        // The same certificate, seeded with another node: it must not dial node `i` first
        // to be found out.
        let other = usize::from(i == 0);
        let seeds = [self.nodes[other].transport.local_addr()];
        let node = start_node(&self.nodes[i].identity, &seeds, self.config.clone())?;
        Ok(node.emitter)
    }

    async fn restart_hub(&mut self) -> Result<(), Error> {
        Err(Error::Transport(
            "a QUIC mesh has no hub: every node is a peer".into(),
        ))
    }

    async fn inject_raw(&self, i: usize, bytes: Bytes) -> Result<(), Error> {
        // A peer of the hood (authenticated, but hostile) sends the bytes as a frame record.
        let identity = self.hood.issue("injector")?;
        let mut raw = RawPeer::connect(&identity, self.nodes[i].transport.local_addr()).await?;
        raw.send_raw(&raw_record(KIND_FRAME, &bytes))
            .await
            .map_err(transport_error)?;
        self.injectors.lock().await.push(raw);
        Ok(())
    }

    fn max_frame_bytes(&self) -> usize {
        MAX_FRAME
    }

    async fn shutdown(self) {
        for raw in self.injectors.into_inner() {
            raw.close().await;
        }
        for node in &self.nodes {
            node.emitter.close().await;
        }
    }
}
