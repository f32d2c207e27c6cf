//! What a transport provides to run the suite: a way to build a cluster of emitters, and
//! hooks to hurt it.

use std::future::Future;

use bytes::Bytes;
use demitter_core::faulty::FaultSwitch;
use demitter_core::{Emitter, EmitterConfig, Error};

/// What a cluster can do beyond running emitters. A case whose hook is not offered checks
/// that the hook refuses clearly instead; no case is skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
#[expect(
    clippy::struct_excessive_bools,
    reason = "independent declarations, each read on its own"
)]
pub struct ClusterCapabilities {
    /// [`Cluster::restart`] brings a killed node back.
    pub restart: bool,
    /// The transport has a hub or broker, and [`Cluster::restart_hub`] restarts it.
    pub hub_restart: bool,
    /// The transport may drop part of a burst sent flat out (reporting it as gaps) even
    /// when every queue of the emitter has room: nng's bus drops what does not fit in its
    /// 16-message queue per peer when the receiving side is not scheduled for a while.
    /// Cases that send bursts then check order and exact accounting instead of "no loss".
    pub burst_loss: bool,
    /// A fresh node is ready once a quiet period has passed since it started (the
    /// transport cannot count the bus), so peers whose connections to it are not up by
    /// then are not waited for: nng, whose peers redial a restarted node with backoff.
    /// Cases that start a node and emit at once then also wait until it counts the
    /// listeners, and check the rest.
    pub ready_by_time: bool,
}

impl ClusterCapabilities {
    /// Declared capabilities.
    pub fn new(restart: bool, hub_restart: bool) -> Self {
        Self {
            restart,
            hub_restart,
            burst_loss: false,
            ready_by_time: false,
        }
    }

    /// Declares that bursts may lose events inside the transport (see
    /// [`burst_loss`](Self::burst_loss)).
    #[must_use]
    pub fn with_burst_loss(mut self) -> Self {
        self.burst_loss = true;
        self
    }

    /// Declares that a fresh node's readiness comes from time alone (see
    /// [`ready_by_time`](Self::ready_by_time)).
    #[must_use]
    pub fn with_ready_by_time(mut self) -> Self {
        self.ready_by_time = true;
        self
    }
}

/// A running cluster of emitters on one transport.
pub trait Cluster: Send {
    /// The emitter of node `i`.
    fn node(&self, i: usize) -> &Emitter;

    /// How many nodes there are.
    fn len(&self) -> usize;

    /// Whether there are no nodes.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What the hooks can do.
    fn capabilities(&self) -> ClusterCapabilities;

    /// What node `i`'s transport loses of what it sends (the fault-injecting wrapper of
    /// [`demitter_core::faulty`]): at first nothing.
    fn faults(&self, i: usize) -> &FaultSwitch;

    /// Kills node `i` abruptly, as a crash would: no goodbye reaches the others.
    fn kill(&mut self, i: usize) -> impl Future<Output = ()> + Send;

    /// Starts node `i` again after [`kill`](Self::kill): a new emitter with the same id.
    fn restart(&mut self, i: usize) -> impl Future<Output = Result<(), Error>> + Send;

    /// Starts one more emitter on the bus with node `i`'s id while node `i` runs (a second
    /// process misconfigured with the same id, or the same certificate), outside the
    /// cluster: the caller closes it.
    fn start_namesake(&self, i: usize) -> impl Future<Output = Result<Emitter, Error>> + Send;

    /// Restarts the hub or broker while traffic flows.
    fn restart_hub(&mut self) -> impl Future<Output = Result<(), Error>> + Send;

    /// Delivers `bytes` to node `i` as one frame from the network, framed however the
    /// transport frames things.
    fn inject_raw(&self, i: usize, bytes: Bytes) -> impl Future<Output = Result<(), Error>> + Send;

    /// The largest frame the transport accepts.
    fn max_frame_bytes(&self) -> usize;

    /// Closes every node and whatever the cluster started.
    fn shutdown(self) -> impl Future<Output = ()> + Send;
}

/// Builds clusters for the suite.
pub trait ClusterFactory: Sync {
    /// The cluster type.
    type Cluster: Cluster;

    /// A cluster of `nodes` emitters, each built with `config` (the suite sets short
    /// heartbeats so that lost peers are noticed quickly).
    fn build(
        &self,
        nodes: usize,
        config: EmitterConfig,
    ) -> impl Future<Output = Result<Self::Cluster, Error>> + Send;
}
