//! A bus of emitters on loopback nng sockets, for the conformance suite and other tests.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use demitter_conformance::{Cluster, ClusterCapabilities, ClusterFactory};
use demitter_core::faulty::{FaultSwitch, faulty};
use demitter_core::{Emitter, EmitterConfig, Error, RawPayload, Transport};
use demitter_nng::{NngConfig, NngTransport, wire};

/// The frame limit the test buses use.
pub const MAX_FRAME: usize = 2 * 1024 * 1024;
/// The longest a bus may take to form.
pub const MESH_TIMEOUT: Duration = Duration::from_secs(20);

/// Fast timers for tests.
pub fn fast_config(listen: &str) -> NngConfig {
    let mut config = NngConfig::new(listen);
    config.announce_every = Duration::from_millis(100);
    config.reconnect_min = Duration::from_millis(20);
    config.reconnect_max = Duration::from_millis(200);
    config.max_frame_bytes = MAX_FRAME;
    config
}

/// Builds buses: node 0 first, every later node dialing node 0 only, so the announcements
/// have to complete the mesh.
#[derive(Debug, Clone, Copy, Default)]
pub struct NngClusterFactory;

/// One node.
#[derive(Debug)]
pub struct Node {
    pub emitter: Emitter,
    /// What its transport loses of what it sends.
    pub faults: FaultSwitch,
    pub transport: Arc<NngTransport>,
    pub url: String,
    pub id: String,
}

/// A bus of emitters.
#[derive(Debug)]
pub struct NngCluster {
    config: EmitterConfig,
    pub nodes: Vec<Node>,
    injectors: parking_lot::Mutex<Vec<nng::Socket>>,
}

/// Starts a node listening on `listen`, dialing `seeds`.
pub fn start_node(
    listen: &str,
    seeds: &[String],
    id: &str,
    config: EmitterConfig,
) -> Result<Node, Error> {
    let mut nng = fast_config(listen);
    nng.peers = seeds.to_vec();
    let transport = Arc::new(NngTransport::bind(nng)?);
    let shared: Arc<dyn Transport> = Arc::clone(&transport) as Arc<dyn Transport>;
    // Behind the fault-injecting wrapper, which passes everything until told otherwise.
    let (wrapped, faults) = faulty(shared);
    let shared: Arc<dyn Transport> = Arc::new(wrapped);
    Ok(Node {
        url: transport.url().to_owned(),
        emitter: Emitter::from_shared(shared, config.with_id(id))?,
        faults,
        transport,
        id: id.to_owned(),
    })
}

impl NngCluster {
    /// Waits until every node has heard of every other.
    pub async fn wait_for_full_mesh(&self) {
        let others = self.nodes.len() - 1;
        for node in &self.nodes {
            // Subscribed before looking, so no arrival is missed between the two.
            let mut ups = node
                .emitter
                .events::<RawPayload>("$peer.up")
                .expect("a valid pattern");
            tokio::time::timeout(MESH_TIMEOUT, async {
                while node.emitter.peers().len() < others {
                    ups.recv().await;
                }
            })
            .await
            .unwrap_or_else(|_| panic!("{} sees {:?} only", node.url, node.emitter.peers()));
        }
    }

    fn seeds_for(&self, i: usize) -> Vec<String> {
        match self.nodes.first() {
            Some(node) if i != 0 => vec![node.url.clone()],
            _ => Vec::new(),
        }
    }
}

impl ClusterFactory for NngClusterFactory {
    type Cluster = NngCluster;

    async fn build(&self, nodes: usize, config: EmitterConfig) -> Result<NngCluster, Error> {
        let mut cluster = NngCluster {
            config,
            nodes: Vec::new(),
            injectors: parking_lot::Mutex::new(Vec::new()),
        };
        for i in 0..nodes {
            let seeds = cluster.seeds_for(i);
            let node = start_node(
                "tcp://127.0.0.1:0",
                &seeds,
                &format!("node-{i}"),
                cluster.config.clone(),
            )?;
            cluster.nodes.push(node);
        }
        cluster.wait_for_full_mesh().await;
        Ok(cluster)
    }
}

impl Cluster for NngCluster {
    fn node(&self, i: usize) -> &Emitter {
        &self.nodes[i].emitter
    }

    fn len(&self) -> usize {
        self.nodes.len()
    }

    fn capabilities(&self) -> ClusterCapabilities {
        ClusterCapabilities::new(true, false)
            .with_burst_loss()
            .with_ready_by_time()
    }

    fn faults(&self, i: usize) -> &FaultSwitch {
        &self.nodes[i].faults
    }

    async fn kill(&mut self, i: usize) {
        self.nodes[i].transport.abort();
        self.nodes[i].emitter.close().await;
    }

    async fn restart(&mut self, i: usize) -> Result<(), Error> {
        // The same address and id: the others' dialers find it again by themselves.
        let seeds = self.seeds_for(i);
        let (url, id) = (self.nodes[i].url.clone(), self.nodes[i].id.clone());
        self.nodes[i] = start_node(&url, &seeds, &id, self.config.clone())?;
        Ok(())
    }

    async fn start_namesake(&self, i: usize) -> Result<Emitter, Error> {
        // Seeded with another node: it must not dial node `i` first to be found out.
        let other = usize::from(i == 0);
        let seeds = vec![self.nodes[other].url.clone()];
        let node = start_node(
            "tcp://127.0.0.1:0",
            &seeds,
            &self.nodes[i].id,
            self.config.clone(),
        )?;
        Ok(node.emitter)
    }

    async fn restart_hub(&mut self) -> Result<(), Error> {
        Err(Error::Transport(
            "an nng bus has no hub: every node is a peer".into(),
        ))
    }

    async fn inject_raw(&self, i: usize, bytes: Bytes) -> Result<(), Error> {
        let socket =
            nng::Socket::new(nng::Protocol::Bus0).map_err(|e| Error::transport_failed("nng", e))?;
        socket
            .dial(&self.nodes[i].url)
            .map_err(|e| Error::transport_failed("nng", e))?;
        let mut message = BytesMut::new();
        wire::start_message(&mut message);
        wire::put_raw_frame(&mut message, &bytes);
        socket
            .send(&message[..])
            .map_err(|(_, e)| Error::transport_failed("nng", e))?;
        // Kept open until shutdown: closing it now could discard the message unsent.
        self.injectors.lock().push(socket);
        Ok(())
    }

    fn max_frame_bytes(&self) -> usize {
        MAX_FRAME
    }

    async fn shutdown(self) {
        for socket in self.injectors.into_inner() {
            socket.close();
        }
        for node in &self.nodes {
            node.emitter.close().await;
        }
    }
}
