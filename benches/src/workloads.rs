//! The request/reply and listener-group workloads, on the emitters of any transport.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use demitter_core::{Emitter, Event, EventStream, ListenOptions};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::emitters::RunEmitters;
use crate::measure::{latency_histogram, now_ns, percentiles_us, process_cpu_time};
use crate::run::{BenchEvent, Deliveries, EVENT, Run};
use crate::scenario::{Layer, Outcome, REQUESTS_IN_FLIGHT, Scenario};
use crate::{BenchError, Progress};

/// The request name, and the names of the event round trip it is measured against.
const REQUEST: &str = "bench.request";
const PING: &str = "bench.ping";
const PONG: &str = "bench.pong";

/// The group the members of [`groups`] join.
const GROUP: &str = "bench";

/// How long one request or round trip may take before it counts as lost.
const PATIENCE: Duration = Duration::from_secs(5);

/// What a request, a reply, a ping and a pong carry.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stamped {
    sent_ns: u64,
    pad: serde_bytes::ByteBuf,
}

impl Stamped {
    fn now(pad: &[u8]) -> Self {
        Self {
            sent_ns: now_ns(),
            pad: serde_bytes::ByteBuf::from(pad.to_vec()),
        }
    }
}

/// What one way of making round trips measured: latency one at a time, throughput with
/// [`REQUESTS_IN_FLIGHT`] in flight.
struct RoundTrips {
    latency: Histogram<u64>,
    sent: u64,
    answered: u64,
    failed: u64,
    per_sec: f64,
}

/// Request/reply from the first publisher to the first subscriber, then the same two
/// emitters' event round trip (an emit answered by an emit) as the baseline: each for
/// half the duration one at a time, then half with [`REQUESTS_IN_FLIGHT`] in flight.
pub async fn requests(
    transport: &str,
    emitters: &RunEmitters,
    scenario: &Scenario,
    progress: &Progress,
) -> Result<Vec<Outcome>, BenchError> {
    let (Some(requester), Some(responder)) =
        (emitters.publishers.first(), emitters.subscribers.first())
    else {
        return Err(BenchError::Setup(
            "request/reply needs a publisher and a subscriber".into(),
        ));
    };
    let _serving = responder.serve(REQUEST, |request: Event<Stamped>| async move {
        Ok::<_, String>(request.data)
    })?;
    let answerer = responder.clone();
    let _answering = responder.on(PING, move |ping: Event<Stamped>| {
        let answerer = answerer.clone();
        async move {
            // Lost pongs show as round trips that never ended.
            let _ = answerer.emit(PONG, &ping.data).await;
        }
    })?;
    let mut pongs =
        requester.events_with::<Stamped>(PONG, ListenOptions::default().capacity(1 << 12))?;
    settle(requester.wait_for_responders(REQUEST, 1)).await?;
    settle(requester.wait_for_listeners(PING, 1)).await?;
    settle(responder.wait_for_listeners(PONG, 1)).await?;
    let pad = vec![0x5a; scenario.payload.saturating_sub(16)];
    let half = scenario.duration / 2;
    progress.start(&format!("{transport} request/reply"));
    let cpu_before = process_cpu_time();
    let started = Instant::now();
    let replies = request_trips(requester, &pad, half).await;
    let cpu = cpu_share(cpu_before, started);
    let started = Instant::now();
    let cpu_before = process_cpu_time();
    let events = event_trips(requester, &mut pongs, &pad, half).await?;
    let event_cpu = cpu_share(cpu_before, started);
    Ok(vec![
        outcome(transport, Layer::Baseline, scenario, &events, event_cpu),
        outcome(transport, Layer::Emitter, scenario, &replies, cpu),
    ])
}

async fn settle<T>(
    wait: impl Future<Output = Result<T, demitter_core::Error>>,
) -> Result<T, BenchError> {
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .map_err(|_| BenchError::Setup("the bus did not settle within 10 s".into()))?
        .map_err(BenchError::from)
}

fn cpu_share(before: Option<Duration>, started: Instant) -> Option<f64> {
    before
        .zip(process_cpu_time())
        .map(|(a, b)| b.saturating_sub(a).as_secs_f64() / started.elapsed().as_secs_f64())
}

fn outcome(
    transport: &str,
    layer: Layer,
    scenario: &Scenario,
    trips: &RoundTrips,
    cpu_cores: Option<f64>,
) -> Outcome {
    Outcome {
        transport: transport.to_owned(),
        layer,
        scenario: scenario.clone(),
        sent: trips.sent,
        expected: trips.sent,
        received: trips.answered,
        lost: trips.sent - trips.answered,
        reported_lost: trips.failed,
        elapsed_secs: scenario.duration.as_secs_f64(),
        delivered_per_sec: trips.per_sec,
        latency_us: percentiles_us(&trips.latency),
        cpu_cores,
        shares: Vec::new(),
    }
}

/// Requests one at a time for `span`, then [`REQUESTS_IN_FLIGHT`] at a time for `span`.
async fn request_trips(requester: &Emitter, pad: &[u8], span: Duration) -> RoundTrips {
    let one = |requester: Emitter, pad: Vec<u8>| async move {
        let started = Instant::now();
        let reply = requester
            .request::<_, Stamped>(REQUEST, &Stamped::now(&pad), PATIENCE)
            .await;
        (reply.is_ok(), started.elapsed())
    };
    let mut latency = latency_histogram();
    let deadline = Instant::now() + span;
    while Instant::now() < deadline {
        let (ok, took) = one(requester.clone(), pad.to_vec()).await;
        if ok {
            let _ = latency.record(took.as_nanos().try_into().unwrap_or(u64::MAX));
        }
    }
    let (mut sent, mut answered, mut failed) = (0u64, 0u64, 0u64);
    let mut in_flight = FuturesUnordered::new();
    let started = Instant::now();
    let deadline = started + span;
    for _ in 0..REQUESTS_IN_FLIGHT {
        in_flight.push(one(requester.clone(), pad.to_vec()));
        sent += 1;
    }
    while let Some((ok, _)) = in_flight.next().await {
        if ok {
            answered += 1;
        } else {
            failed += 1;
        }
        if Instant::now() < deadline {
            in_flight.push(one(requester.clone(), pad.to_vec()));
            sent += 1;
        }
    }
    RoundTrips {
        latency,
        sent,
        answered,
        failed,
        per_sec: answered as f64 / started.elapsed().as_secs_f64(),
    }
}

/// Pings answered by pongs: one at a time for `span`, then [`REQUESTS_IN_FLIGHT`] at a
/// time for `span`.
async fn event_trips(
    requester: &Emitter,
    pongs: &mut EventStream<Stamped>,
    pad: &[u8],
    span: Duration,
) -> Result<RoundTrips, BenchError> {
    let mut latency = latency_histogram();
    let deadline = Instant::now() + span;
    while Instant::now() < deadline {
        requester.emit(PING, &Stamped::now(pad)).await?;
        // A lost one the throughput half counts.
        if let Ok(Some(Ok(pong))) = tokio::time::timeout(PATIENCE, pongs.recv()).await {
            let _ = latency.record(now_ns().saturating_sub(pong.data.sent_ns));
        }
    }
    let (mut sent, mut answered, mut out) = (0u64, 0u64, 0u64);
    let started = Instant::now();
    let deadline = started + span;
    for _ in 0..REQUESTS_IN_FLIGHT {
        requester.emit(PING, &Stamped::now(pad)).await?;
        (sent, out) = (sent + 1, out + 1);
    }
    while out > 0 {
        match tokio::time::timeout(PATIENCE, pongs.recv()).await {
            Ok(Some(Ok(_))) => (answered, out) = (answered + 1, out - 1),
            // Nothing more will come: what is out is lost.
            _ => break,
        }
        if Instant::now() < deadline {
            requester.emit(PING, &Stamped::now(pad)).await?;
            (sent, out) = (sent + 1, out + 1);
        }
    }
    Ok(RoundTrips {
        latency,
        sent,
        answered,
        failed: 0,
        per_sec: answered as f64 / started.elapsed().as_secs_f64(),
    })
}

/// A member's stream that counts what it delivers.
struct Counted {
    events: EventStream<BenchEvent>,
    delivered: Arc<AtomicU64>,
}

impl Deliveries for Counted {
    async fn next_stamp(&mut self) -> Option<Option<u64>> {
        let item = self.events.recv().await?;
        self.delivered.fetch_add(1, Ordering::Relaxed);
        Some(item.ok().map(|e| e.data.sent_ns))
    }
}

/// Events from the publishers to the subscribers as members of one group: each event to
/// one of them. Returns the run's outcome with each member's share.
pub async fn groups(
    transport: &str,
    emitters: &RunEmitters,
    scenario: &Scenario,
    progress: &Progress,
) -> Result<Outcome, BenchError> {
    let mut run = Run::new();
    let mut delivered = Vec::new();
    for member in &emitters.subscribers {
        let count = Arc::new(AtomicU64::new(0));
        delivered.push(Arc::clone(&count));
        run.subscribe(Counted {
            events: member.events_with::<BenchEvent>(
                EVENT,
                ListenOptions::default().group(GROUP).capacity(1 << 16),
            )?,
            delivered: count,
        });
    }
    for publisher in &emitters.publishers {
        settle(publisher.wait_for_listeners(EVENT, emitters.subscribers.len())).await?;
    }
    run.start_clock();
    let pad: Arc<[u8]> = vec![0x5a; scenario.payload.saturating_sub(16)].into();
    for publisher in &emitters.publishers {
        let (publisher, counters) = (publisher.clone(), Arc::clone(run.counters()));
        let pad = Arc::clone(&pad);
        run.publish(scenario, move || {
            let (publisher, counters, pad) =
                (publisher.clone(), Arc::clone(&counters), Arc::clone(&pad));
            async move {
                let event = BenchEvent {
                    sent_ns: now_ns(),
                    pad: serde_bytes::ByteBuf::from(pad.to_vec()),
                };
                counters.published(&publisher.emit(EVENT, &event).await);
            }
        });
    }
    let members = emitters.subscribers.clone();
    let mut outcome = run
        .finish(transport, Layer::Emitter, scenario, progress, move |_| {
            members
                .iter()
                .map(|m| {
                    let c = m.error_counts();
                    c.gap + c.lagged
                })
                .sum()
        })
        .await?;
    let total: u64 = delivered.iter().map(|d| d.load(Ordering::Relaxed)).sum();
    outcome.shares = delivered
        .iter()
        .map(|d| d.load(Ordering::Relaxed) as f64 / total.max(1) as f64)
        .collect();
    Ok(outcome)
}
