//! The in-memory transport's cluster, so the suite runs on it.

use std::sync::Arc;

use bytes::Bytes;
use demitter_core::faulty::{FaultSwitch, faulty};
use demitter_core::{Emitter, EmitterConfig, Error, MemoryHub, MemoryTransport, Transport};

use crate::cluster::{Cluster, ClusterCapabilities, ClusterFactory};

/// Builds clusters on a fresh [`MemoryHub`].
#[derive(Debug, Clone, Copy, Default)]
pub struct MemoryClusterFactory;

/// Emitters joined to one [`MemoryHub`].
#[derive(Debug)]
pub struct MemoryCluster {
    hub: MemoryHub,
    config: EmitterConfig,
    nodes: Vec<Emitter>,
    transports: Vec<Arc<MemoryTransport>>,
    faults: Vec<FaultSwitch>,
}

impl MemoryCluster {
    fn start_node(
        &self,
        config: EmitterConfig,
    ) -> Result<(Emitter, Arc<MemoryTransport>, FaultSwitch), Error> {
        let transport = Arc::new(self.hub.join());
        let (wrapped, faults) = faulty(Arc::clone(&transport));
        let shared: Arc<dyn Transport> = Arc::new(wrapped);
        Ok((Emitter::from_shared(shared, config)?, transport, faults))
    }
}

impl ClusterFactory for MemoryClusterFactory {
    type Cluster = MemoryCluster;

    async fn build(&self, nodes: usize, config: EmitterConfig) -> Result<MemoryCluster, Error> {
        let mut cluster = MemoryCluster {
            hub: MemoryHub::new(),
            config,
            nodes: Vec::new(),
            transports: Vec::new(),
            faults: Vec::new(),
        };
        for _ in 0..nodes {
            let (node, transport, faults) = cluster.start_node(cluster.config.clone())?;
            cluster.nodes.push(node);
            cluster.transports.push(transport);
            cluster.faults.push(faults);
        }
        Ok(cluster)
    }
}

impl Cluster for MemoryCluster {
    fn node(&self, i: usize) -> &Emitter {
        &self.nodes[i]
    }

    fn len(&self) -> usize {
        self.nodes.len()
    }

    fn capabilities(&self) -> ClusterCapabilities {
        ClusterCapabilities::new(true, false)
    }

    fn faults(&self, i: usize) -> &FaultSwitch {
        &self.faults[i]
    }

    async fn kill(&mut self, i: usize) {
        self.transports[i].detach();
        self.nodes[i].close().await;
    }

    async fn restart(&mut self, i: usize) -> Result<(), Error> {
        let config = self.config.clone().with_id(self.nodes[i].id().as_str());
        let (node, transport, faults) = self.start_node(config)?;
        self.nodes[i] = node;
        self.transports[i] = transport;
        self.faults[i] = faults;
        Ok(())
    }

    async fn start_namesake(&self, i: usize) -> Result<Emitter, Error> {
        let config = self.config.clone().with_id(self.nodes[i].id().as_str());
        Ok(self.start_node(config)?.0)
    }

    async fn restart_hub(&mut self) -> Result<(), Error> {
        Err(Error::Transport(
            "the in-memory transport has no hub process to restart".into(),
        ))
    }

    async fn inject_raw(&self, i: usize, bytes: Bytes) -> Result<(), Error> {
        self.transports[i].inject(bytes)
    }

    fn max_frame_bytes(&self) -> usize {
        self.transports[0].capabilities().max_frame_bytes
    }

    async fn shutdown(self) {
        for node in &self.nodes {
            node.close().await;
        }
    }
}
