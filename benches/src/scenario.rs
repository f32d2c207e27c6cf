//! What a benchmark run does and what it found.

use std::fmt;
use std::time::Duration;

use demitter_core::node::RecoveryConfig;
use demitter_core::{Congestion, EmitterConfig};
use serde::Serialize;

/// One benchmark scenario.
#[derive(Debug, Clone, Serialize)]
pub struct Scenario {
    /// Emitting nodes.
    pub publishers: usize,
    /// Listening nodes; each listens for every event.
    pub subscribers: usize,
    /// Nodes that listen only on a name the publishers never emit: what a transport that
    /// filters before delivery spares them, and one that does not makes them pay.
    pub bystanders: usize,
    /// Payload bytes per event.
    pub payload: usize,
    /// How long publishers publish.
    #[serde(serialize_with = "as_secs")]
    pub duration: Duration,
    /// Events per second across all publishers; `None` for flat out.
    pub rate: Option<u64>,
    /// What the publishers' `emit` does when the transport's queue is full.
    #[serde(serialize_with = "congestion_name")]
    pub congestion: Congestion,
    /// What is measured.
    pub workload: Workload,
    /// Whether the emitters recover lost events
    /// ([`RecoveryConfig::ON`](demitter_core::node::RecoveryConfig::ON)) or only report
    /// them.
    pub recovery: bool,
}

/// What a run measures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    /// Events from the publishers to every subscriber, against the raw transport.
    #[default]
    Events,
    /// Request/reply between the first publisher (requester) and the first subscriber
    /// (responder): latency one request at a time, throughput with
    /// [`REQUESTS_IN_FLIGHT`] in flight; against the raw transport's round trip (a
    /// message sent back as it came), measured the same way in the same run.
    Requests,
    /// Events flat out (or at the rate) from the publishers to the subscribers as the
    /// members of one listener group: each event reaches one of them, and each member's
    /// share is measured.
    Groups,
}

/// Requests in flight in the throughput half of [`Workload::Requests`].
pub const REQUESTS_IN_FLIGHT: usize = 16;

impl Scenario {
    /// The settings of the scenario's emitters.
    pub fn emitter_config(&self) -> EmitterConfig {
        EmitterConfig {
            congestion: self.congestion,
            recovery: if self.recovery {
                RecoveryConfig::ON
            } else {
                RecoveryConfig::OFF
            },
            ..EmitterConfig::default()
        }
    }
}

/// `--congestion block` waits this long at most in one `emit`.
pub const BLOCK_DEADLINE: Duration = Duration::from_secs(1);

fn congestion_name<S: serde::Serializer>(c: &Congestion, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(match c {
        Congestion::Block { .. } => "block",
        _ => "drop",
    })
}

fn as_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rate = self
            .rate
            .map_or_else(|| "flat out".to_owned(), |r| format!("{r}/s"));
        write!(
            f,
            "{}→{} {} B {}",
            self.publishers, self.subscribers, self.payload, rate
        )?;
        if matches!(self.congestion, Congestion::Block { .. }) {
            f.write_str(" block")?;
        }
        if self.bystanders > 0 {
            write!(f, " +{} bystander(s)", self.bystanders)?;
        }
        if self.recovery != EmitterConfig::default().recovery.is_on() {
            f.write_str(if self.recovery {
                " recovery on"
            } else {
                " recovery off"
            })?;
        }
        match self.workload {
            Workload::Events => {}
            Workload::Requests => f.write_str(" request/reply")?,
            Workload::Groups => f.write_str(" one group")?,
        }
        Ok(())
    }
}

/// Whether a result is the emitter or the raw transport under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    /// Emitters on the transport: what users get.
    Emitter,
    /// The raw transport moving the same frames, no emitter layer: the baseline.
    Baseline,
    /// Another project doing the same job (`--peer`), for comparison.
    Peer,
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layer::Emitter => "emitter",
            Layer::Baseline => "baseline",
            Layer::Peer => "peer",
        })
    }
}

/// What one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The transport.
    pub transport: String,
    /// Emitter or baseline.
    pub layer: Layer,
    /// The scenario.
    pub scenario: Scenario,
    /// Events published.
    pub sent: u64,
    /// Events that should have arrived: sent × subscribers.
    pub expected: u64,
    /// Events that did arrive, over all subscribers.
    pub received: u64,
    /// `expected - received`: events that did not arrive.
    pub lost: u64,
    /// Losses the subscribers were told of (sequence gaps and listener lag; for the
    /// baseline, which has no sequence checks, the publishers' send failures).
    pub reported_lost: u64,
    /// Seconds from the first publish to the last delivery.
    pub elapsed_secs: f64,
    /// Delivered events per second, over all subscribers.
    pub delivered_per_sec: f64,
    /// Latency percentiles in microseconds: p50, p99, p99.9.
    pub latency_us: [f64; 3],
    /// Process CPU time over wall time (1.0 = one core busy), where measurable.
    pub cpu_cores: Option<f64>,
    /// For [`Workload::Groups`], each member's share of the events delivered (else empty).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shares: Vec<f64>,
}
