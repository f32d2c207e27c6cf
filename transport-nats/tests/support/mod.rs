//! A bus of emitters on one `nats-server`, for the conformance suite and other tests.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use bytes::Bytes;
use demitter_conformance::{Cluster, ClusterCapabilities, ClusterFactory};
use demitter_core::faulty::{FaultSwitch, faulty};
use demitter_core::{Emitter, EmitterConfig, Error, Transport};
use demitter_nats::{NatsConfig, NatsTransport};

use demitter_conformance::nats_server::NatsServer;

pub mod secure;

/// The frame limit the test buses use: below the test servers' `max_payload`, so that a
/// raw client can still send one byte more than the limit.
pub const MAX_FRAME: usize = 2 * 1024 * 1024;
/// The bus prefix of the tests.
pub const PREFIX: &str = "demitter-test";

/// The transport settings of the tests, on the server at `addr`.
pub fn config(addr: &str) -> NatsConfig {
    config_on(&[addr.to_owned()])
}

/// The transport settings of the tests, on `servers` (tried in this order).
pub fn config_on(servers: &[String]) -> NatsConfig {
    let mut config = NatsConfig::new(servers.iter().cloned());
    PREFIX.clone_into(&mut config.prefix);
    config.max_frame_bytes = MAX_FRAME;
    config.send_queue_bytes = 4 * MAX_FRAME;
    config
}

/// Builds buses on a server of their own.
#[derive(Debug, Clone, Copy, Default)]
pub struct NatsClusterFactory {
    /// With mutual TLS, each node bound by the server's permissions to its own subjects:
    /// an authenticated bus.
    pub authenticated: bool,
}

impl NatsClusterFactory {
    /// Plain TCP, unauthenticated.
    pub const PLAIN: Self = Self {
        authenticated: false,
    };
    /// Mutual TLS and per-node permissions.
    pub const AUTHENTICATED: Self = Self {
        authenticated: true,
    };
}

/// The most nodes an authenticated test bus has certificates for.
const SECURE_NODES: usize = 8;
/// The raw client's name on an authenticated bus.
const RAW: &str = "raw";

/// One node.
#[derive(Debug)]
pub struct Node {
    pub emitter: Emitter,
    /// What its transport loses of what it sends.
    pub faults: FaultSwitch,
    pub transport: Arc<NatsTransport>,
    pub id: String,
}

/// A bus of emitters and its server.
#[derive(Debug)]
pub struct NatsCluster {
    config: EmitterConfig,
    pub nodes: Vec<Node>,
    pub server: NatsServer,
    raw: async_nats::Client,
    /// The hood of an authenticated bus.
    hood: Option<secure::HoodDir>,
}

impl NatsCluster {
    /// The transport settings of node `id`.
    fn node_config(&self, id: &str) -> NatsConfig {
        match &self.hood {
            Some(hood) => secure::config(hood, &self.server.addr(), id),
            None => config(&self.server.addr()),
        }
    }
}

/// Starts a node named `id` on the server at `addr`.
pub async fn start_node(addr: &str, id: &str, config: EmitterConfig) -> Result<Node, Error> {
    start_node_on(&[addr.to_owned()], id, config).await
}

/// Starts a node named `id` on `servers` (the first that answers, in this order).
pub async fn start_node_on(
    servers: &[String],
    id: &str,
    config: EmitterConfig,
) -> Result<Node, Error> {
    start_node_with(config_on(servers), id, config).await
}

/// Starts a node named `id` with these transport settings.
pub async fn start_node_with(
    nats: NatsConfig,
    id: &str,
    config: EmitterConfig,
) -> Result<Node, Error> {
    let transport = Arc::new(NatsTransport::connect(nats).await?);
    let shared: Arc<dyn Transport> = Arc::clone(&transport) as Arc<dyn Transport>;
    // Behind the fault-injecting wrapper, which passes everything until told otherwise.
    let (wrapped, faults) = faulty(shared);
    let shared: Arc<dyn Transport> = Arc::new(wrapped);
    Ok(Node {
        emitter: Emitter::from_shared(shared, config.with_id(id))?,
        faults,
        transport,
        id: id.to_owned(),
    })
}

impl ClusterFactory for NatsClusterFactory {
    type Cluster = NatsCluster;

    async fn build(&self, nodes: usize, config: EmitterConfig) -> Result<NatsCluster, Error> {
        let names: Vec<String> = (0..nodes.max(SECURE_NODES))
            .map(|i| format!("node-{i}"))
            .chain([RAW.to_owned()])
            .collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let hood = self
            .authenticated
            .then(|| tokio::task::block_in_place(|| secure::HoodDir::create(&names)));
        let (server, raw) = match &hood {
            Some(hood) => {
                let server = tokio::task::block_in_place(|| secure::start_server(hood, &names));
                let raw = secure::raw_client(hood, &server.addr(), RAW).await;
                (server, raw)
            }
            None => {
                let server = tokio::task::block_in_place(NatsServer::start);
                let raw = async_nats::connect(server.addr()).await;
                (server, raw)
            }
        };
        let raw = raw.map_err(|e| Error::transport_failed("nats", e))?;
        let mut cluster = NatsCluster {
            config,
            nodes: Vec::new(),
            server,
            raw,
            hood,
        };
        for i in 0..nodes {
            let id = format!("node-{i}");
            let node =
                start_node_with(cluster.node_config(&id), &id, cluster.config.clone()).await?;
            cluster.nodes.push(node);
        }
        Ok(cluster)
    }
}

impl Cluster for NatsCluster {
    fn node(&self, i: usize) -> &Emitter {
        &self.nodes[i].emitter
    }

    fn len(&self) -> usize {
        self.nodes.len()
    }

    fn capabilities(&self) -> ClusterCapabilities {
        ClusterCapabilities::new(true, true)
    }

    fn faults(&self, i: usize) -> &FaultSwitch {
        &self.nodes[i].faults
    }

    async fn kill(&mut self, i: usize) {
        self.nodes[i].transport.abort();
        self.nodes[i].emitter.close().await;
    }

    async fn restart(&mut self, i: usize) -> Result<(), Error> {
        let id = self.nodes[i].id.clone();
        self.nodes[i] = start_node_with(self.node_config(&id), &id, self.config.clone()).await?;
        Ok(())
    }

    async fn start_namesake(&self, i: usize) -> Result<Emitter, Error> {
        let id = &self.nodes[i].id;
        let node = start_node_with(self.node_config(id), id, self.config.clone()).await?;
        Ok(node.emitter)
    }

    async fn restart_hub(&mut self) -> Result<(), Error> {
        tokio::task::block_in_place(|| self.server.start_again());
        Ok(())
    }

    async fn inject_raw(&self, i: usize, bytes: Bytes) -> Result<(), Error> {
        // Every node of the bus hears it; node `i` among them. On an authenticated bus the
        // raw client may publish only on its own subjects.
        let _ = i;
        self.raw
            .publish(format!("{PREFIX}.c.{RAW}"), bytes)
            .await
            .map_err(|e| Error::transport_failed("nats", e))?;
        self.raw
            .flush()
            .await
            .map_err(|e| Error::transport_failed("nats", e))
    }

    fn max_frame_bytes(&self) -> usize {
        MAX_FRAME
    }

    async fn shutdown(self) {
        for node in &self.nodes {
            node.emitter.close().await;
        }
    }
}
