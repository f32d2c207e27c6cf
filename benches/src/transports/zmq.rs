//! ZeroMQ: emitters through this project's forwarder, against the baseline the issue names:
//! raw zmq.rs PUB -> `zeromq::proxy` -> zmq.rs SUB, with no emitter layer.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use demitter_core::Emitter;
use demitter_forwarder::{Forwarder, ForwarderConfig};
use demitter_zmq::{ZmqConfig, ZmqTransport};
use zeromq::{
    PubSocket, Socket, SocketRecv, SocketSend, SubSocket, XPubSocket, XSubSocket, ZmqMessage,
};

use crate::baseline::stamp;
use crate::emitters::run_on_new_emitters;
use crate::measure::now_ns;
use crate::round_trips::{RawEnd, raw_baseline};
use crate::run::{Deliveries, Run};
use crate::scenario::{Layer, Outcome, Scenario};
use crate::{BenchError, Progress};

const NAME: &str = "zmq";

fn setup(e: impl std::fmt::Display) -> BenchError {
    BenchError::Setup(e.to_string())
}

/// Emitters connected through an embedded forwarder.
pub async fn emitters(scenario: &Scenario, progress: &Progress) -> Result<Outcome, BenchError> {
    let forwarder = Forwarder::bind(ForwarderConfig::loopback_free_ports())
        .await
        .map_err(setup)?;
    let (xsub, xpub) = (
        forwarder.xsub_addr().to_string(),
        forwarder.xpub_addr().to_string(),
    );
    let result = run_on_new_emitters(NAME, scenario, progress, || {
        let transport = ZmqTransport::connect(ZmqConfig::new(xsub.clone(), xpub.clone()));
        Emitter::with_config(transport, scenario.emitter_config())
    })
    .await;
    forwarder.close().await;
    result
}

struct RawSub(SubSocket);

impl Deliveries for RawSub {
    async fn next_stamp(&mut self) -> Option<Option<u64>> {
        let message = self.0.recv().await.ok()?;
        Some(message.get(2).and_then(|payload| stamp(payload)))
    }
}

fn free_port() -> Result<u16, BenchError> {
    Ok(TcpListener::bind("127.0.0.1:0")
        .map_err(setup)?
        .local_addr()
        .map_err(setup)?
        .port())
}

/// Starts `zeromq::proxy` (XSUB/XPUB) on free loopback ports and returns them. Its future
/// is not Send: it gets a thread and a runtime of its own, and lives until the process
/// ends (or ten minutes have passed).
fn start_proxy() -> Result<(u16, u16), BenchError> {
    let (xsub_port, xpub_port) = (free_port()?, free_port()?);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => return ready_tx.send(Err(e.to_string())).unwrap_or(()),
        };
        runtime.block_on(async move {
            let mut xsub = XSubSocket::new();
            let mut xpub = XPubSocket::new();
            let bound = async {
                xsub.bind(&format!("tcp://127.0.0.1:{xsub_port}")).await?;
                xpub.bind(&format!("tcp://127.0.0.1:{xpub_port}")).await?;
                Ok::<_, zeromq::ZmqError>(())
            }
            .await;
            let _ = ready_tx.send(bound.map_err(|e| e.to_string()));
            let _ = tokio::time::timeout(Duration::from_secs(600), zeromq::proxy(xsub, xpub, None))
                .await;
        });
    });
    ready_rx.recv().map_err(setup)?.map_err(setup)?;
    Ok((xsub_port, xpub_port))
}

/// A zmq.rs SUB connected to the proxy's XPUB port, subscribed to `prefix`.
async fn raw_sub(xpub_port: u16, prefix: &str) -> Result<SubSocket, BenchError> {
    let mut sub = SubSocket::new();
    sub.connect(&format!("tcp://127.0.0.1:{xpub_port}"))
        .await
        .map_err(setup)?;
    sub.subscribe(prefix).await.map_err(setup)?;
    Ok(sub)
}

/// A zmq.rs PUB connected to the proxy's XSUB port.
async fn raw_pub(xsub_port: u16) -> Result<PubSocket, BenchError> {
    let mut publisher = PubSocket::new();
    publisher
        .connect(&format!("tcp://127.0.0.1:{xsub_port}"))
        .await
        .map_err(setup)?;
    Ok(publisher)
}

/// zmq.rs PUB -> `zeromq::proxy` (XSUB/XPUB) -> zmq.rs SUB, the same three frames.
pub async fn baseline(scenario: &Scenario, progress: &Progress) -> Result<Outcome, BenchError> {
    let (xsub_port, xpub_port) = start_proxy()?;
    let mut run = Run::new();
    let mut subs = Vec::new();
    for _ in 0..scenario.subscribers {
        subs.push(raw_sub(xpub_port, "s:bench.").await?);
    }
    let mut publishers = Vec::new();
    for _ in 0..scenario.publishers {
        publishers.push(raw_pub(xsub_port).await?);
    }
    // The slow joiner: wait until a probe from every publisher reaches every subscriber.
    for publisher in &mut publishers {
        for sub in &mut subs {
            tokio::time::timeout(Duration::from_secs(10), async {
                let mut probe = tokio::time::interval(Duration::from_millis(20));
                loop {
                    probe.tick().await;
                    let _ = publisher.send(message(DATA, &[0; 8])).await;
                    if let Ok(Ok(_)) =
                        tokio::time::timeout(Duration::from_millis(20), sub.recv()).await
                    {
                        return;
                    }
                }
            })
            .await
            .map_err(|_| BenchError::Setup("the baseline proxy never connected".into()))?;
        }
    }
    // Drain probes still in flight before measuring.
    for sub in &mut subs {
        while let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(100), sub.recv()).await {}
    }
    for sub in subs {
        run.subscribe(RawSub(sub));
    }
    run.start_clock();
    let pad: Arc<[u8]> = vec![0x5a; scenario.payload.saturating_sub(8)].into();
    for publisher in publishers {
        let publisher = Arc::new(tokio::sync::Mutex::new(publisher));
        let counters = Arc::clone(run.counters());
        let pad = Arc::clone(&pad);
        run.publish(scenario, move || {
            let (publisher, counters, pad) = (
                Arc::clone(&publisher),
                Arc::clone(&counters),
                Arc::clone(&pad),
            );
            async move {
                let mut payload = now_ns().to_be_bytes().to_vec();
                payload.extend_from_slice(&pad);
                let result = publisher.lock().await.send(message(DATA, &payload)).await;
                counters.published(&result);
            }
        });
    }
    run.finish(NAME, Layer::Baseline, scenario, progress, |_| 0)
        .await
}

/// The topics of the baseline's events, of its round trips' requests and of their answers.
const DATA: &str = "s:bench.data";
const PING: &str = "s:bench.ping";
const PONG: &str = "s:bench.pong";

/// Demitter's three frames: topic, origin, payload.
fn message(topic: &str, payload: &[u8]) -> ZmqMessage {
    let mut message = ZmqMessage::from(topic.to_owned());
    message.push_back(Bytes::from_static(b"baseline"));
    message.push_back(Bytes::copy_from_slice(payload));
    message
}

/// One end of a raw round trip through the proxy: a PUB sending on one topic and a SUB
/// subscribed to the other.
struct PubSubEnd {
    publisher: PubSocket,
    subscriber: SubSocket,
    topic: &'static str,
}

impl RawEnd for PubSubEnd {
    type Message = Bytes;

    async fn send(&mut self, payload: Bytes) -> bool {
        self.publisher
            .send(message(self.topic, &payload))
            .await
            .is_ok()
    }

    async fn recv(&mut self) -> Option<Bytes> {
        loop {
            if let Some(payload) = self.subscriber.recv().await.ok()?.get(2) {
                return Some(payload.clone());
            }
        }
    }
}

/// zmq.rs PUB and SUB on each side of `zeromq::proxy`: requests on one topic, answers on
/// another, Demitter's three frames each way.
pub async fn round_trips(scenario: &Scenario, progress: &Progress) -> Result<Outcome, BenchError> {
    let (xsub_port, xpub_port) = start_proxy()?;
    let requester = PubSubEnd {
        publisher: raw_pub(xsub_port).await?,
        subscriber: raw_sub(xpub_port, PONG).await?,
        topic: PING,
    };
    let responder = PubSubEnd {
        publisher: raw_pub(xsub_port).await?,
        subscriber: raw_sub(xpub_port, PING).await?,
        topic: PONG,
    };
    let pad = vec![0x5a; scenario.payload.saturating_sub(8)];
    let make = move || {
        let mut payload = now_ns().to_be_bytes().to_vec();
        payload.extend_from_slice(&pad);
        Bytes::from(payload)
    };
    raw_baseline(NAME, scenario, progress, (requester, responder), make).await
}
