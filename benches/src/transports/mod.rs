//! The transports this harness was built with. Each offers emitters for a scenario and a
//! baseline: the raw transport moving the same frames without the emitter layer.

pub mod memory;
pub mod nats;
#[cfg(feature = "nng")]
pub mod nng;
pub mod quic;
pub mod zmq;
pub mod zmq_curve;

use crate::scenario::{Outcome, Scenario, Workload};
use crate::{BenchError, Progress};

/// The transports compiled in, by the name `--transport` takes.
pub const AVAILABLE: &[&str] = &[
    "mem",
    "zmq",
    "zmq-curve",
    "quic",
    "nats",
    "nats-routed",
    #[cfg(feature = "nng")]
    "nng",
];

/// Runs `scenario` on `transport`: the emitter layer, then the baseline: for events the
/// raw transport moving the same frames, for requests the raw transport's round trip
/// (see [`Workload`]). Groups have no baseline: their measure is each member's share.
pub async fn run(
    transport: &str,
    scenario: &Scenario,
    progress: &Progress,
) -> Result<Vec<Outcome>, BenchError> {
    let mut outcomes = vec![emitters(transport, scenario, progress).await?];
    match scenario.workload {
        Workload::Events => outcomes.push(baseline(transport, scenario, progress).await?),
        Workload::Requests => outcomes.push(round_trips(transport, scenario, progress).await?),
        Workload::Groups => {}
    }
    Ok(outcomes)
}

async fn emitters(
    transport: &str,
    scenario: &Scenario,
    progress: &Progress,
) -> Result<Outcome, BenchError> {
    match transport {
        "mem" => memory::emitters(scenario, progress).await,
        "zmq" => zmq::emitters(scenario, progress).await,
        "zmq-curve" => zmq_curve::emitters(scenario, progress).await,
        "quic" => quic::emitters(scenario, progress).await,
        "nats" | "nats-routed" => {
            nats::emitters(transport == "nats-routed", scenario, progress).await
        }
        #[cfg(feature = "nng")]
        "nng" => nng::emitters(scenario, progress).await,
        other => Err(unknown(other)),
    }
}

async fn baseline(
    transport: &str,
    scenario: &Scenario,
    progress: &Progress,
) -> Result<Outcome, BenchError> {
    match transport {
        "mem" => memory::baseline(scenario, progress).await,
        "zmq" => zmq::baseline(scenario, progress).await,
        "zmq-curve" => zmq_curve::baseline(scenario, progress).await,
        "quic" => quic::baseline(scenario, progress).await,
        "nats" | "nats-routed" => {
            nats::baseline(transport == "nats-routed", scenario, progress).await
        }
        #[cfg(feature = "nng")]
        "nng" => nng::baseline(scenario, progress).await,
        other => Err(unknown(other)),
    }
}

async fn round_trips(
    transport: &str,
    scenario: &Scenario,
    progress: &Progress,
) -> Result<Outcome, BenchError> {
    match transport {
        "mem" => memory::round_trips(scenario, progress).await,
        "zmq" => zmq::round_trips(scenario, progress).await,
        // CURVE's requests against the raw zmq.rs round trip, as plain ZeroMQ's.
        "zmq-curve" => zmq::round_trips(scenario, progress)
            .await
            .map(|outcome| Outcome {
                transport: transport.to_owned(),
                ..outcome
            }),
        "quic" => quic::round_trips(scenario, progress).await,
        "nats" | "nats-routed" => {
            nats::round_trips(transport == "nats-routed", scenario, progress).await
        }
        #[cfg(feature = "nng")]
        "nng" => nng::round_trips(scenario, progress).await,
        other => Err(unknown(other)),
    }
}

fn unknown(name: &str) -> BenchError {
    BenchError::UnknownTransport {
        name: name.to_owned(),
        available: AVAILABLE.join(", "),
    }
}
