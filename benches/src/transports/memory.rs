//! The in-memory transport: emitters on a [`MemoryHub`], and the hub alone as baseline.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};
use demitter_core::{
    Emitter, EmitterConfig, EventFrame, Frame, Incoming, MemoryHub, NodeId, Transport,
};
use tokio_util::sync::CancellationToken;

use crate::measure::{latency_histogram, now_ns, process_cpu_time};
use crate::run::{Counters, EVENT, drain, outcome, run_emitters};
use crate::scenario::{Layer, Outcome, Scenario};
use crate::{BenchError, Progress};

const NAME: &str = "mem";

/// Emitters joined to one hub.
pub async fn emitters(scenario: &Scenario, progress: &Progress) -> Result<Outcome, BenchError> {
    let hub = MemoryHub::new();
    let join = || Emitter::with_config(hub.join(), EmitterConfig::default());
    let publishers = (0..scenario.publishers)
        .map(|_| join())
        .collect::<Result<Vec<_>, _>>()?;
    let subscribers = (0..scenario.subscribers)
        .map(|_| join())
        .collect::<Result<Vec<_>, _>>()?;
    let result = run_emitters(NAME, &publishers, &subscribers, scenario, progress).await;
    for e in publishers.iter().chain(&subscribers) {
        e.close().await;
    }
    result
}

/// The hub alone: frames built, sent, received and decoded, nothing else.
pub async fn baseline(scenario: &Scenario, progress: &Progress) -> Result<Outcome, BenchError> {
    let hub = MemoryHub::new();
    let counters = Arc::new(Counters::default());
    let stop = CancellationToken::new();
    let mut receivers = Vec::new();
    for _ in 0..scenario.subscribers {
        let transport = hub.join();
        let counters = Arc::clone(&counters);
        let stop = stop.clone();
        receivers.push(tokio::spawn(async move {
            let mut latency = latency_histogram();
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    item = transport.recv() => match item {
                        Some(Incoming::Frame { frame: Frame::Event(e), .. }) => {
                            let stamp = e.payload.get(..8).and_then(|b| b.try_into().ok()).map_or(0, u64::from_be_bytes);
                            counters.delivered(stamp, &mut latency);
                        }
                        Some(_) => {}
                        None => break,
                    },
                }
            }
            transport.close().await;
            latency
        }));
    }
    let cpu_before = process_cpu_time();
    let start = Instant::now();
    let start_ns = now_ns();
    let deadline = start + scenario.duration;
    let mut senders = Vec::new();
    for i in 0..scenario.publishers {
        let transport = hub.join();
        let counters = Arc::clone(&counters);
        let source = NodeId::new(&format!("baseline-{i}"))?;
        let pad = vec![0x5a; scenario.payload.saturating_sub(8)];
        let rate = scenario
            .rate
            .map(|r| (r / scenario.publishers as u64).max(1));
        senders.push(tokio::spawn(async move {
            let mut pacer = rate.map(|rate| {
                let mut i =
                    tokio::time::interval(std::time::Duration::from_secs_f64(1.0 / rate as f64));
                i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                i
            });
            let name: Arc<str> = EVENT.into();
            let mut seq = 0;
            while Instant::now() < deadline {
                if let Some(pacer) = pacer.as_mut() {
                    pacer.tick().await;
                }
                seq += 1;
                let mut payload = BytesMut::with_capacity(8 + pad.len());
                payload.put_u64(now_ns());
                payload.put_slice(&pad);
                let frame = Frame::Event(EventFrame {
                    name: Arc::clone(&name),
                    source: source.clone(),
                    epoch: 1,
                    seq,
                    payload: Bytes::from(payload),
                });
                match transport.send(frame, demitter_core::Destination::All) {
                    Ok(()) => counters.sent.fetch_add(1, Ordering::Relaxed),
                    Err(_) => counters.send_failures.fetch_add(1, Ordering::Relaxed),
                };
                // The same cooperative yield `emit` makes, so both layers share the worker
                // with their receivers alike.
                tokio::task::coop::consume_budget().await;
            }
            transport.close().await;
        }));
    }
    progress.track(scenario.duration, &counters).await;
    for sender in senders {
        sender
            .await
            .map_err(|e| BenchError::Setup(format!("publisher task failed: {e}")))?;
    }
    let expected = counters.sent.load(Ordering::Relaxed) * scenario.subscribers as u64;
    drain(&counters, expected).await;
    let cpu = cpu_before
        .zip(process_cpu_time())
        .map(|(a, b)| (b - a).as_secs_f64() / start.elapsed().as_secs_f64());
    let elapsed = counters.elapsed_since(start_ns, scenario.duration);
    stop.cancel();
    let mut latency = latency_histogram();
    for receiver in receivers {
        let h = receiver
            .await
            .map_err(|e| BenchError::Setup(format!("subscriber task failed: {e}")))?;
        latency
            .add(&h)
            .map_err(|e| BenchError::Setup(format!("merging histograms: {e}")))?;
    }
    let reported = counters.send_failures.load(Ordering::Relaxed);
    Ok(outcome(
        NAME,
        Layer::Baseline,
        scenario,
        &counters,
        expected,
        reported,
        elapsed,
        &latency,
        cpu,
    ))
}
