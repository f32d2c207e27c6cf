//! NATS: emitters on one `nats-server` on loopback, against raw `async-nats` clients
//! publishing the same frames through the same server, with no emitter layer.

use std::sync::Arc;

use demitter_conformance::nats_server::{NatsServer, missing};
use demitter_core::{Emitter, Frame};
use demitter_nats::{NatsConfig, NatsTransport};
use futures_util::StreamExt as _;

use crate::baseline::{BaselineFrames, frame_stamp};
use crate::emitters::RunEmitters;
use crate::run::{Deliveries, Run};
use crate::scenario::{Layer, Outcome, Scenario};
use crate::{BenchError, Progress};

const NAME: &str = "nats";
/// The subject of the baseline's frames.
const RAW_SUBJECT: &str = "bench.raw";

fn setup(e: impl std::fmt::Display) -> BenchError {
    BenchError::Setup(e.to_string())
}

/// A server of the run's own, or why there is none.
fn server() -> Result<NatsServer, BenchError> {
    if let Some(why) = missing() {
        return Err(BenchError::Setup(format!(
            "--transport nats needs nats-server: {why}"
        )));
    }
    Ok(tokio::task::block_in_place(NatsServer::start))
}

async fn join(server: &NatsServer, scenario: &Scenario) -> Result<Emitter, BenchError> {
    let transport = NatsTransport::connect(NatsConfig::new([server.addr()]))
        .await
        .map_err(setup)?;
    Ok(Emitter::with_config(transport, scenario.emitter_config())?)
}

/// Emitters, each with its own connection to one server.
pub async fn emitters(scenario: &Scenario, progress: &Progress) -> Result<Outcome, BenchError> {
    let server = server()?;
    RunEmitters::join(scenario, || join(&server, scenario))
        .await?
        .run(NAME, scenario, progress)
        .await
}

struct RawSubscriber(async_nats::Subscriber);

impl Deliveries for RawSubscriber {
    async fn next_stamp(&mut self) -> Option<Option<u64>> {
        let message = self.0.next().await?;
        Some(
            Frame::decode(message.payload, usize::MAX)
                .ok()
                .and_then(|frame| frame_stamp(&frame)),
        )
    }
}

/// Raw `async-nats`: each subscriber and each publisher a client of its own, one frame per
/// message on one subject (the client drops what a full subscription cannot take, and
/// says so only as a slow-consumer event).
pub async fn baseline(scenario: &Scenario, progress: &Progress) -> Result<Outcome, BenchError> {
    let server = server()?;
    let mut run = Run::new();
    for _ in 0..scenario.subscribers {
        let client = async_nats::connect(server.addr()).await.map_err(setup)?;
        let subscriber = client.subscribe(RAW_SUBJECT).await.map_err(setup)?;
        // The subscription is in place at the server once a round trip has gone by.
        client.flush().await.map_err(setup)?;
        run.subscribe(RawSubscriber(subscriber));
    }
    let mut publishers = Vec::new();
    for _ in 0..scenario.publishers {
        publishers.push(async_nats::connect(server.addr()).await.map_err(setup)?);
    }
    run.start_clock();
    for (i, client) in publishers.iter().enumerate() {
        let counters = Arc::clone(run.counters());
        let frames = Arc::new(parking_lot::Mutex::new(BaselineFrames::new(i, scenario)?));
        let client = client.clone();
        run.publish(scenario, move || {
            let payload = frames.lock().next_frame().to_bytes();
            let (client, counters) = (client.clone(), Arc::clone(&counters));
            async move {
                counters.published(&client.publish(RAW_SUBJECT, payload).await);
            }
        });
    }
    let outcome = run
        .finish(NAME, Layer::Baseline, scenario, progress, |_| 0)
        .await;
    for client in &publishers {
        let _ = client.flush().await;
    }
    drop(server);
    outcome
}
