//! The request/reply and listener-group workloads, on the emitters of any transport.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use demitter_core::{Emitter, Event, EventStream, ListenOptions};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde::{Deserialize, Serialize};

use crate::emitters::RunEmitters;
use crate::measure::{CpuClock, latency_histogram, now_ns};
use crate::round_trips::{PATIENCE, RoundTrips};
use crate::run::{BenchEvent, Deliveries, EVENT, Run};
use crate::scenario::{Layer, Outcome, REQUESTS_IN_FLIGHT, Scenario};
use crate::{BenchError, Progress};

/// The request name.
const REQUEST: &str = "bench.request";

/// The group the members of [`groups`] join.
const GROUP: &str = "bench";

/// What a request and its reply carry.
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

/// Request/reply from the first publisher to the first subscriber: for half the duration
/// one at a time, then for half with [`REQUESTS_IN_FLIGHT`] in flight. The transport's
/// raw round trip is its baseline ([`crate::transports::run`]).
pub async fn requests(
    transport: &str,
    emitters: &RunEmitters,
    scenario: &Scenario,
    progress: &Progress,
) -> Result<Outcome, BenchError> {
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
    settle(requester.wait_for_responders(REQUEST, 1)).await?;
    let pad = vec![0x5a; scenario.payload.saturating_sub(16)];
    progress.start(&format!("{transport} request/reply"));
    let cpu = CpuClock::start();
    let replies = request_trips(requester, &pad, scenario.duration / 2).await;
    Ok(replies.outcome(transport, Layer::Emitter, scenario, cpu.cores()))
}

async fn settle<T>(
    wait: impl Future<Output = Result<T, demitter_core::Error>>,
) -> Result<T, BenchError> {
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .map_err(|_| BenchError::Setup("the bus did not settle within 10 s".into()))?
        .map_err(BenchError::from)
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
