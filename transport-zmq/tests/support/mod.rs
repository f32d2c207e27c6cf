//! A cluster of emitters on one embedded forwarder, for the conformance suite, and fast
//! emitters for the other tests.

// Each test binary uses a part of this.
#![allow(dead_code)]

use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use demitter_conformance::{Cluster, ClusterCapabilities, ClusterFactory};
use demitter_core::faulty::{KillSwitch, killable};
use demitter_core::{DEFAULT_MAX_FRAME_BYTES, Emitter, EmitterConfig, Error};
use demitter_forwarder::{Forwarder, ForwarderConfig};
use demitter_zmq::{ZmqConfig, ZmqTransport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Builds clusters of emitters around a fresh forwarder on free loopback ports.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ZmqClusterFactory;

/// Emitters connected to one forwarder.
#[derive(Debug)]
pub(crate) struct ZmqCluster {
    forwarder: Option<Forwarder>,
    xsub: SocketAddr,
    xpub: SocketAddr,
    config: EmitterConfig,
    nodes: Vec<(Emitter, KillSwitch)>,
    /// Raw publishers that injected frames, kept open: closing a socket with unread data
    /// resets it, and the reset can discard what it sent.
    injectors: tokio::sync::Mutex<Vec<RawPublisher>>,
}

fn forwarder_config(xsub: SocketAddr, xpub: SocketAddr) -> ForwarderConfig {
    ForwarderConfig {
        xsub,
        xpub,
        stats_interval: None,
        ..ForwarderConfig::default()
    }
}

fn transport_error(e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::transport_failed("ZeroMQ", e)
}

impl ZmqCluster {
    fn start_node(&self, config: EmitterConfig) -> Result<(Emitter, KillSwitch), Error> {
        // Killed, it sends nothing, as a crashed process would.
        let (transport, switch) = killable(ZmqTransport::connect(ZmqConfig::new(
            self.xsub.to_string(),
            self.xpub.to_string(),
        )));
        Ok((Emitter::with_config(transport, config)?, switch))
    }
}

impl ClusterFactory for ZmqClusterFactory {
    type Cluster = ZmqCluster;

    async fn build(&self, nodes: usize, config: EmitterConfig) -> Result<ZmqCluster, Error> {
        let any: SocketAddr = "127.0.0.1:0".parse().map_err(transport_error)?;
        let forwarder = Forwarder::bind(forwarder_config(any, any))
            .await
            .map_err(transport_error)?;
        let mut cluster = ZmqCluster {
            xsub: forwarder.xsub_addr(),
            xpub: forwarder.xpub_addr(),
            forwarder: Some(forwarder),
            config,
            nodes: Vec::new(),
            injectors: tokio::sync::Mutex::default(),
        };
        for _ in 0..nodes {
            let node = cluster.start_node(cluster.config.clone())?;
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

    async fn kill(&mut self, i: usize) {
        let (node, switch) = &self.nodes[i];
        switch.kill();
        node.close().await;
    }

    async fn restart(&mut self, i: usize) -> Result<(), Error> {
        let config = self.config.clone().with_id(self.nodes[i].0.id().as_str());
        self.nodes[i] = self.start_node(config)?;
        Ok(())
    }

    async fn restart_hub(&mut self) -> Result<(), Error> {
        if let Some(forwarder) = self.forwarder.take() {
            forwarder.close().await;
        }
        let forwarder = Forwarder::bind(forwarder_config(self.xsub, self.xpub))
            .await
            .map_err(transport_error)?;
        self.forwarder = Some(forwarder);
        Ok(())
    }

    async fn inject_raw(&self, _i: usize, bytes: Bytes) -> Result<(), Error> {
        // A raw publisher sends the bytes as the body of a control message, which every node
        // receives: how a hostile peer on the bus would reach them.
        let stream = tokio::net::TcpStream::connect(self.xsub)
            .await
            .map_err(transport_error)?;
        let mut raw = RawPublisher::handshake(stream).await?;
        raw.send(&[demitter_zmq::wire::CONTROL_TOPIC, b"injector", &bytes])
            .await?;
        self.injectors.lock().await.push(raw);
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

/// Just enough of a ZMTP 3.0 PUB to push raw messages at the forwarder.
#[derive(Debug)]
struct RawPublisher(tokio::net::TcpStream);

impl RawPublisher {
    async fn handshake(mut stream: tokio::net::TcpStream) -> Result<Self, Error> {
        let mut greeting = [0u8; 64];
        greeting[0] = 0xFF;
        greeting[9] = 0x7F;
        greeting[10] = 3;
        greeting[12..16].copy_from_slice(b"NULL");
        stream.write_all(&greeting).await.map_err(transport_error)?;
        let body: Vec<u8> = [
            &[5u8][..],
            b"READY",
            &[11],
            b"Socket-Type",
            &3u32.to_be_bytes(),
            b"PUB",
        ]
        .concat();
        let mut ready = vec![0x04, u8::try_from(body.len()).map_err(transport_error)?];
        ready.extend_from_slice(&body);
        stream.write_all(&ready).await.map_err(transport_error)?;
        // The forwarder's greeting (64 bytes) and READY (2 + 22 + "XSUB"), read like a real
        // peer.
        let mut theirs = [0u8; 64 + 2 + 22 + 4];
        stream
            .read_exact(&mut theirs)
            .await
            .map_err(transport_error)?;
        Ok(Self(stream))
    }

    async fn send(&mut self, parts: &[&[u8]]) -> Result<(), Error> {
        let mut out = BytesMut::new();
        for (i, part) in parts.iter().enumerate() {
            let more = u8::from(i + 1 < parts.len());
            out.extend_from_slice(&[more | 0x02]);
            out.extend_from_slice(&(part.len() as u64).to_be_bytes());
            out.extend_from_slice(part);
        }
        self.0.write_all(&out).await.map_err(transport_error)?;
        self.0.flush().await.map_err(transport_error)
    }
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
