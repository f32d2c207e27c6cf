//! The discovery pump: runs every discovery mechanism and feeds what they find into the
//! node's directory of addresses, waking the dialer.

use std::sync::Arc;
use std::time::Instant;

use demitter_core::{AddressOrigin, ErrorKind, ErrorReport, NodeId};
use tokio::sync::mpsc;

use crate::discovery::{Discovery, DiscoverySink, Found, LocalNode, StaticSeeds};
use crate::link::LinkHost as _;
use crate::mesh::Mesh;

impl Mesh {
    /// Starts the discovery mechanisms and the task that feeds the directory from them.
    pub(crate) fn start_discovery(self: &Arc<Self>, runtime: &tokio::runtime::Handle) {
        let (found_tx, mut found_rx) = mpsc::channel(64);
        let local = LocalNode {
            name: self.me.to_string(),
            hood: self.config.identity.hood_fingerprint(),
            hood_digest: self.config.identity.hood_digest(),
            ip: self.local_addr.ip(),
            port: self.local_addr.port(),
        };
        let mut mechanisms = self.config.discovery.clone();
        if let Some(dht) = &self.config.dht {
            mechanisms.push(Arc::clone(dht) as Arc<dyn Discovery>);
        }
        if !self.config.seeds.is_empty() {
            mechanisms.push(Arc::new(StaticSeeds::new(self.config.seeds.clone())));
        }
        for mechanism in mechanisms {
            let run = mechanism.run(local.clone(), DiscoverySink(found_tx.clone()));
            let cancel = self.cancel.clone();
            self.tasks.spawn_on(
                async move {
                    tokio::select! {
                        () = cancel.cancelled() => {}
                        () = run => {}
                    }
                },
                runtime,
            );
        }
        drop(found_tx);
        let mesh = Arc::clone(self);
        self.tasks.spawn_on(
            async move {
                loop {
                    let found = tokio::select! {
                        () = mesh.cancel.cancelled() => break,
                        found = found_rx.recv() => match found {
                            Some(found) => found,
                            None => break,
                        },
                    };
                    match found {
                        Found::Address(addr) => {
                            mesh.directory.lock().learn(
                                addr,
                                None,
                                AddressOrigin::Discovered,
                                Instant::now(),
                            );
                            mesh.dial_wake.notify_one();
                        }
                        Found::Peer { name, addr } => match NodeId::new(&name) {
                            Ok(name) => {
                                mesh.directory.lock().learn(
                                    addr,
                                    Some(name),
                                    AddressOrigin::Discovered,
                                    Instant::now(),
                                );
                                mesh.dial_wake.notify_one();
                            }
                            Err(e) => tracing::warn!(%addr, "discovery found a peer with an invalid name: {e}"),
                        },
                        Found::Candidate(addr) => {
                            let new = mesh.directory.lock().learn(
                                addr,
                                None,
                                AddressOrigin::Learned,
                                Instant::now(),
                            );
                            if new {
                                mesh.dial_wake.notify_one();
                            }
                        }
                        Found::Gone(addr) => mesh.directory.lock().forget(&addr),
                        Found::Unavailable(reason) => {
                            tracing::debug!("{reason}");
                            mesh.report(ErrorReport::new(ErrorKind::Network, 1, reason)).await;
                        }
                    }
                }
            },
            runtime,
        );
    }
}
