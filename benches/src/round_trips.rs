//! Round trips, measured the same way for request/reply on emitters and for the raw
//! transports under them: latency one at a time, then throughput with
//! [`REQUESTS_IN_FLIGHT`] in flight.

use std::future::Future;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::measure::{CpuClock, latency_histogram, percentiles_us};
use crate::scenario::{Layer, Outcome, REQUESTS_IN_FLIGHT, Scenario};
use crate::{BenchError, Progress};

/// How long one round trip may take before it counts as lost.
pub const PATIENCE: Duration = Duration::from_secs(5);

/// How long a raw requester probes for its first answer: the time a transport may take
/// to join both directions (ZeroMQ's slow joiner, NATS subscriptions reaching the server).
const WARM_UP: Duration = Duration::from_secs(10);

/// How often a raw requester probes while warming up.
const PROBE_EVERY: Duration = Duration::from_millis(20);

/// How long answers to extra probes may keep arriving after the first.
const PROBE_DRAIN: Duration = Duration::from_millis(100);

/// What one way of making round trips measured.
#[derive(Debug)]
pub struct RoundTrips {
    /// Latency of round trips made one at a time.
    pub latency: Histogram<u64>,
    /// Round trips started with [`REQUESTS_IN_FLIGHT`] in flight.
    pub sent: u64,
    /// Of those, the ones answered.
    pub answered: u64,
    /// Of those, the ones the layer reported failed.
    pub failed: u64,
    /// Answered round trips per second with [`REQUESTS_IN_FLIGHT`] in flight.
    pub per_sec: f64,
}

impl RoundTrips {
    /// The row of a report: `sent`, `answered` and `failed` as sent, received and reported
    /// lost.
    pub fn outcome(
        &self,
        transport: &str,
        layer: Layer,
        scenario: &Scenario,
        cpu_cores: Option<f64>,
    ) -> Outcome {
        Outcome {
            transport: transport.to_owned(),
            layer,
            scenario: scenario.clone(),
            sent: self.sent,
            expected: self.sent,
            received: self.answered,
            lost: self.sent - self.answered,
            reported_lost: self.failed,
            elapsed_secs: scenario.duration.as_secs_f64(),
            delivered_per_sec: self.per_sec,
            latency_us: percentiles_us(&self.latency),
            cpu_cores,
            shares: Vec::new(),
        }
    }
}

/// One end of a raw transport's round trip: what it sends reaches the other end, in order
/// as far as the transport keeps order.
pub trait RawEnd: Send + 'static {
    /// What travels.
    type Message: Send + 'static;

    /// Sends one message; `false` if the transport refused it.
    fn send(&mut self, message: Self::Message) -> impl Future<Output = bool> + Send;

    /// The next message from the other end; `None` once this end is closed.
    fn recv(&mut self) -> impl Future<Output = Option<Self::Message>> + Send;
}

/// Sends back everything `end` receives, until it closes.
async fn echo<E: RawEnd>(mut end: E) {
    while let Some(message) = end.recv().await {
        if !end.send(message).await {
            return;
        }
    }
}

/// The raw transport's round trip: `requester` sends what `make` makes and `responder`
/// sends it back. First probes until the first answer (so that a transport's joining
/// time is not measured), then one at a time for `span`, then [`REQUESTS_IN_FLIGHT`] at
/// a time for `span`.
pub async fn raw_round_trips<Q, S>(
    mut requester: Q,
    responder: S,
    mut make: impl FnMut() -> Q::Message,
    span: Duration,
) -> Result<RoundTrips, BenchError>
where
    Q: RawEnd,
    S: RawEnd<Message = Q::Message>,
{
    let echoing = tokio::spawn(echo(responder));
    let trips = async {
        warm_up(&mut requester, &mut make).await?;
        let mut latency = latency_histogram();
        let deadline = Instant::now() + span;
        while Instant::now() < deadline {
            let started = Instant::now();
            if !requester.send(make()).await {
                return Err(BenchError::Setup("the raw requester could not send".into()));
            }
            // A lost one the throughput half counts.
            if let Ok(Some(_)) = tokio::time::timeout(PATIENCE, requester.recv()).await {
                latency
                    .saturating_record(started.elapsed().as_nanos().try_into().unwrap_or(u64::MAX));
            }
        }
        let mut tally = Tally::default();
        let started = Instant::now();
        let deadline = started + span;
        for _ in 0..REQUESTS_IN_FLIGHT {
            tally.start(&mut requester, make()).await;
        }
        while tally.out > 0 {
            match tokio::time::timeout(PATIENCE, requester.recv()).await {
                Ok(Some(_)) => (tally.answered, tally.out) = (tally.answered + 1, tally.out - 1),
                // Nothing more will come: what is out is lost.
                _ => break,
            }
            if Instant::now() < deadline {
                tally.start(&mut requester, make()).await;
            }
        }
        Ok(RoundTrips {
            latency,
            sent: tally.sent,
            answered: tally.answered,
            failed: tally.failed,
            per_sec: tally.answered as f64 / started.elapsed().as_secs_f64(),
        })
    }
    .await;
    echoing.abort();
    trips
}

/// The round trips of a throughput half so far.
#[derive(Debug, Default)]
struct Tally {
    sent: u64,
    answered: u64,
    failed: u64,
    /// Sent and not yet answered.
    out: u64,
}

impl Tally {
    /// Sends the first half of one more round trip.
    async fn start<Q: RawEnd>(&mut self, requester: &mut Q, message: Q::Message) {
        self.sent += 1;
        if requester.send(message).await {
            self.out += 1;
        } else {
            self.failed += 1;
        }
    }
}

/// Probes until the first answer comes back, then lets the answers to other probes drain.
async fn warm_up<Q: RawEnd>(
    requester: &mut Q,
    make: &mut impl FnMut() -> Q::Message,
) -> Result<(), BenchError> {
    let answered = tokio::time::timeout(WARM_UP, async {
        loop {
            if !requester.send(make()).await {
                return false;
            }
            if let Ok(Some(_)) = tokio::time::timeout(PROBE_EVERY, requester.recv()).await {
                return true;
            }
        }
    })
    .await;
    if answered != Ok(true) {
        return Err(BenchError::Setup(format!(
            "the raw transport answered no probe within {WARM_UP:?}"
        )));
    }
    while let Ok(Some(_)) = tokio::time::timeout(PROBE_DRAIN, requester.recv()).await {}
    Ok(())
}

/// The baseline row of a request/reply run: the raw transport's round trip between
/// `requester` and `responder`, for half the scenario's duration one at a time and half
/// with [`REQUESTS_IN_FLIGHT`] in flight, as the emitters' requests are measured.
pub async fn raw_baseline<Q, S>(
    transport: &str,
    scenario: &Scenario,
    progress: &Progress,
    (requester, responder): (Q, S),
    make: impl FnMut() -> Q::Message,
) -> Result<Outcome, BenchError>
where
    Q: RawEnd,
    S: RawEnd<Message = Q::Message>,
{
    progress.start(&format!("{transport} raw round trip"));
    let cpu = CpuClock::start();
    let trips = raw_round_trips(requester, responder, make, scenario.duration / 2).await?;
    Ok(trips.outcome(transport, Layer::Baseline, scenario, cpu.cores()))
}
