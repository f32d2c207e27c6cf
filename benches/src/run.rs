//! Running a scenario on emitters: the same for every transport.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use demitter_core::{Emitter, ListenOptions};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::measure::{latency_histogram, now_ns, percentiles_us, process_cpu_time};
use crate::scenario::{Layer, Outcome, Scenario};
use crate::{BenchError, Progress};

/// The event the harness sends.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchEvent {
    /// When it was emitted, from [`now_ns`].
    pub sent_ns: u64,
    /// Padding up to the scenario's payload size.
    pub pad: serde_bytes::ByteBuf,
}

/// The event name the harness uses.
pub const EVENT: &str = "bench.data";

/// How long delivery may stay idle after publishing before the rest counts as lost.
pub const DRAIN_IDLE: Duration = Duration::from_millis(500);

/// Counters shared by the tasks of one run.
#[derive(Debug, Default)]
pub struct Counters {
    /// Events published.
    pub sent: AtomicU64,
    /// Events delivered, over all subscribers.
    pub received: AtomicU64,
    /// Send failures the publishers saw.
    pub send_failures: AtomicU64,
    /// When the last event was delivered, from [`now_ns`].
    pub last_delivery_ns: AtomicU64,
}

impl Counters {
    /// Records one delivery of an event stamped `sent_ns` into `latency`.
    pub fn delivered(&self, sent_ns: u64, latency: &mut Histogram<u64>) {
        let now = now_ns();
        latency.saturating_record(now.saturating_sub(sent_ns));
        self.received.fetch_add(1, Ordering::Relaxed);
        self.last_delivery_ns.fetch_max(now, Ordering::Relaxed);
    }

    /// From `start_ns` to the last delivery (or `floor`, if longer or nothing arrived).
    pub fn elapsed_since(&self, start_ns: u64, floor: Duration) -> Duration {
        let last = self.last_delivery_ns.load(Ordering::Relaxed);
        Duration::from_nanos(last.saturating_sub(start_ns)).max(floor)
    }
}

/// Publishes `scenario`'s events from `publishers` to `subscribers` and measures.
pub async fn run_emitters(
    transport: &str,
    publishers: &[Emitter],
    subscribers: &[Emitter],
    scenario: &Scenario,
    progress: &Progress,
) -> Result<Outcome, BenchError> {
    let counters = Arc::new(Counters::default());
    let stop = CancellationToken::new();
    let mut receivers = Vec::new();
    for sub in subscribers {
        let mut events =
            sub.events_with::<BenchEvent>(EVENT, ListenOptions::default().capacity(1 << 16))?;
        let counters = Arc::clone(&counters);
        let stop = stop.clone();
        receivers.push(tokio::spawn(async move {
            let mut latency = latency_histogram();
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    item = events.recv() => match item {
                        Some(Ok(event)) => counters.delivered(event.data.sent_ns, &mut latency),
                        Some(Err(_lagged_or_undecodable)) => {}
                        None => break,
                    },
                }
            }
            latency
        }));
    }
    for publisher in publishers {
        tokio::time::timeout(
            Duration::from_secs(10),
            publisher.wait_for_listeners(EVENT, subscribers.len()),
        )
        .await
        .map_err(|_| {
            BenchError::Setup("subscribers were not seen by every publisher within 10 s".into())
        })??;
    }
    let cpu_before = process_cpu_time();
    let start = Instant::now();
    let start_ns = now_ns();
    let deadline = start + scenario.duration;
    let per_publisher_rate = scenario.rate.map(|r| (r / publishers.len() as u64).max(1));
    let mut senders = Vec::new();
    for publisher in publishers {
        let publisher = publisher.clone();
        let counters = Arc::clone(&counters);
        let mut event = BenchEvent {
            sent_ns: 0,
            pad: serde_bytes::ByteBuf::from(vec![0x5a; scenario.payload]),
        };
        senders.push(tokio::spawn(async move {
            let mut pacer = per_publisher_rate.map(|rate| {
                let mut i = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
                i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                i
            });
            while Instant::now() < deadline {
                if let Some(pacer) = pacer.as_mut() {
                    pacer.tick().await;
                }
                event.sent_ns = now_ns();
                match publisher.emit(EVENT, &event).await {
                    Ok(_) => counters.sent.fetch_add(1, Ordering::Relaxed),
                    Err(_) => counters.send_failures.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    progress.track(scenario.duration, &counters).await;
    for sender in senders {
        sender
            .await
            .map_err(|e| BenchError::Setup(format!("publisher task failed: {e}")))?;
    }
    let expected = counters.sent.load(Ordering::Relaxed) * subscribers.len() as u64;
    drain(&counters, expected).await;
    let cpu = cpu_before
        .zip(process_cpu_time())
        .map(|(a, b)| (b - a).as_secs_f64() / start.elapsed().as_secs_f64());
    let elapsed = counters.elapsed_since(start_ns, scenario.duration);
    stop.cancel();
    let mut latency = latency_histogram();
    for receiver in receivers {
        let h: Histogram<u64> = receiver
            .await
            .map_err(|e| BenchError::Setup(format!("subscriber task failed: {e}")))?;
        latency
            .add(&h)
            .map_err(|e| BenchError::Setup(format!("merging histograms: {e}")))?;
    }
    // What the subscribers were told they missed. (Publishers also report the same drops
    // as send failures; counting both would count each loss twice.)
    let reported_lost = subscribers
        .iter()
        .map(|s| {
            let c = s.error_counts();
            c.gap + c.lagged
        })
        .sum::<u64>();
    Ok(outcome(
        transport,
        Layer::Emitter,
        scenario,
        &counters,
        expected,
        reported_lost,
        elapsed,
        &latency,
        cpu,
    ))
}

/// Waits until everything expected arrived, or delivery stayed idle for [`DRAIN_IDLE`].
pub async fn drain(counters: &Counters, expected: u64) {
    let mut last = counters.received.load(Ordering::Relaxed);
    let mut idle_since = Instant::now();
    while last < expected && idle_since.elapsed() < DRAIN_IDLE {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let now = counters.received.load(Ordering::Relaxed);
        if now != last {
            last = now;
            idle_since = Instant::now();
        }
    }
}

/// Assembles an [`Outcome`].
#[allow(clippy::too_many_arguments)]
pub fn outcome(
    transport: &str,
    layer: Layer,
    scenario: &Scenario,
    counters: &Counters,
    expected: u64,
    reported_lost: u64,
    elapsed: Duration,
    latency: &Histogram<u64>,
    cpu_cores: Option<f64>,
) -> Outcome {
    let received = counters.received.load(Ordering::Relaxed);
    Outcome {
        transport: transport.to_owned(),
        layer,
        scenario: scenario.clone(),
        sent: counters.sent.load(Ordering::Relaxed),
        expected,
        received,
        lost: expected.saturating_sub(received),
        reported_lost,
        elapsed_secs: elapsed.as_secs_f64(),
        delivered_per_sec: received as f64 / elapsed.as_secs_f64(),
        latency_us: percentiles_us(latency),
        cpu_cores,
    }
}
