//! The measurement skeleton every run shares: subscribers that count and time deliveries,
//! paced publishers, the drain at the end, and the resulting [`Outcome`].

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tokio::time::{Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::measure::{CpuClock, latency_histogram, now_ns, percentiles_us};
use crate::scenario::{Layer, Outcome, Scenario, Workload};
use crate::{BenchError, Progress};

/// The event the harness sends through emitters.
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

/// Something a subscriber reads deliveries from.
pub trait Deliveries: Send + 'static {
    /// The next delivery's send stamp (`Some(None)` for something that is not a delivery);
    /// `None` when the source has ended.
    fn next_stamp(&mut self) -> impl Future<Output = Option<Option<u64>>> + Send;
}

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
    fn delivered(&self, sent_ns: u64, latency: &mut Histogram<u64>) {
        let now = now_ns();
        latency.saturating_record(now.saturating_sub(sent_ns));
        self.received.fetch_add(1, Ordering::Relaxed);
        self.last_delivery_ns.fetch_max(now, Ordering::Relaxed);
    }

    /// Records the result of one publish attempt.
    pub fn published<T, E>(&self, result: &Result<T, E>) {
        let counter = if result.is_ok() {
            &self.sent
        } else {
            &self.send_failures
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// One run in progress.
#[derive(Debug)]
pub struct Run {
    counters: Arc<Counters>,
    stop: CancellationToken,
    receivers: Vec<JoinHandle<Histogram<u64>>>,
    senders: Vec<JoinHandle<()>>,
    start: Instant,
    start_ns: u64,
    cpu: CpuClock,
}

impl Default for Run {
    fn default() -> Self {
        Self::new()
    }
}

impl Run {
    /// A run with nothing attached yet.
    pub fn new() -> Self {
        Self {
            counters: Arc::default(),
            stop: CancellationToken::new(),
            receivers: Vec::new(),
            senders: Vec::new(),
            start: Instant::now(),
            start_ns: now_ns(),
            cpu: CpuClock::start(),
        }
    }

    /// The run's counters.
    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// Starts a subscriber reading `source` until the run ends.
    pub fn subscribe(&mut self, mut source: impl Deliveries) {
        let counters = Arc::clone(&self.counters);
        let stop = self.stop.clone();
        self.receivers.push(tokio::spawn(async move {
            let mut latency = latency_histogram();
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    item = source.next_stamp() => match item {
                        Some(Some(stamp)) => counters.delivered(stamp, &mut latency),
                        Some(None) => {}
                        None => break,
                    },
                }
            }
            latency
        }));
    }

    /// Starts the clock: publishers added from now on publish until `scenario.duration`
    /// has passed.
    pub fn start_clock(&mut self) {
        self.cpu = CpuClock::start();
        self.start = Instant::now();
        self.start_ns = now_ns();
    }

    /// Starts a publisher: `publish_one` is called until the deadline, paced to this
    /// publisher's share of `scenario.rate` by a tokio interval. tokio's timers resolve to a
    /// millisecond, so above 1,000 events/s the events leave in bursts at each millisecond
    /// (ten at a time at 10,000/s), for the emitters and the baselines alike.
    pub fn publish<F, Fut>(&mut self, scenario: &Scenario, mut publish_one: F)
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        let deadline = self.start + scenario.duration;
        let mut pacer = pacer(scenario);
        self.senders.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                if let Some(pacer) = pacer.as_mut() {
                    pacer.tick().await;
                }
                publish_one().await;
                // Share the worker with receivers, as `emit` itself does.
                tokio::task::coop::consume_budget().await;
            }
        }));
    }

    /// Waits out the run, drains, and measures. `reported_lost` says what the system
    /// reported lost once everything has settled.
    pub async fn finish(
        self,
        transport: &str,
        layer: Layer,
        scenario: &Scenario,
        progress: &Progress,
        reported_lost: impl FnOnce(&Counters) -> u64,
    ) -> Result<Outcome, BenchError> {
        progress.track(scenario.duration, &self.counters).await;
        for sender in self.senders {
            sender
                .await
                .map_err(|e| BenchError::Setup(format!("publisher task failed: {e}")))?;
        }
        let sent = self.counters.sent.load(Ordering::Relaxed);
        // A group's members share the events; anyone else gets each one.
        let expected = match scenario.workload {
            Workload::Groups => sent,
            _ => sent * scenario.subscribers as u64,
        };
        drain(&self.counters, expected).await;
        let cpu_cores = self.cpu.cores();
        let last = self.counters.last_delivery_ns.load(Ordering::Relaxed);
        let elapsed =
            Duration::from_nanos(last.saturating_sub(self.start_ns)).max(scenario.duration);
        self.stop.cancel();
        let mut latency = latency_histogram();
        for receiver in self.receivers {
            let h = receiver
                .await
                .map_err(|e| BenchError::Setup(format!("subscriber task failed: {e}")))?;
            latency
                .add(&h)
                .map_err(|e| BenchError::Setup(format!("merging histograms: {e}")))?;
        }
        let received = self.counters.received.load(Ordering::Relaxed);
        Ok(Outcome {
            transport: transport.to_owned(),
            layer,
            scenario: scenario.clone(),
            sent,
            expected,
            received,
            lost: expected.saturating_sub(received),
            reported_lost: reported_lost(&self.counters),
            elapsed_secs: elapsed.as_secs_f64(),
            delivered_per_sec: received as f64 / elapsed.as_secs_f64(),
            latency_us: percentiles_us(&latency),
            cpu_cores,
            shares: Vec::new(),
        })
    }
}

/// This publisher's pacing: its share of the scenario's rate, or none for flat out.
fn pacer(scenario: &Scenario) -> Option<Interval> {
    let rate = scenario.rate? / scenario.publishers.max(1) as u64;
    let mut interval = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(1) as f64));
    interval.set_missed_tick_behavior(MissedTickBehavior::Burst);
    Some(interval)
}

/// Waits until everything expected arrived, or delivery stayed idle for [`DRAIN_IDLE`].
async fn drain(counters: &Counters, expected: u64) {
    let mut last = counters.received.load(Ordering::Relaxed);
    let mut idle_since = Instant::now();
    let mut poll = tokio::time::interval(Duration::from_millis(5));
    while last < expected && idle_since.elapsed() < DRAIN_IDLE {
        poll.tick().await;
        let now = counters.received.load(Ordering::Relaxed);
        if now != last {
            last = now;
            idle_since = Instant::now();
        }
    }
}
