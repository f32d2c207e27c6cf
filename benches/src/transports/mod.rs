//! The transports this harness was built with. Each offers emitters for a scenario and a
//! baseline: the raw transport moving the same frames without the emitter layer.

pub mod memory;
pub mod nats;
#[cfg(feature = "nng")]
pub mod nng;
pub mod quic;
pub mod zmq;

use crate::scenario::{Outcome, Scenario};
use crate::{BenchError, Progress};

/// The transports compiled in, by the name `--transport` takes.
pub const AVAILABLE: &[&str] = &[
    "mem",
    "zmq",
    "quic",
    "nats",
    "nats-routed",
    #[cfg(feature = "nng")]
    "nng",
];

/// Runs `scenario` on `transport`: the emitter layer, then the baseline.
pub async fn run(
    transport: &str,
    scenario: &Scenario,
    progress: &Progress,
) -> Result<[Outcome; 2], BenchError> {
    match transport {
        "mem" => Ok([
            memory::emitters(scenario, progress).await?,
            memory::baseline(scenario, progress).await?,
        ]),
        "zmq" => Ok([
            zmq::emitters(scenario, progress).await?,
            zmq::baseline(scenario, progress).await?,
        ]),
        "quic" => Ok([
            quic::emitters(scenario, progress).await?,
            quic::baseline(scenario, progress).await?,
        ]),
        "nats" | "nats-routed" => {
            let routed = transport == "nats-routed";
            Ok([
                nats::emitters(routed, scenario, progress).await?,
                nats::baseline(routed, scenario, progress).await?,
            ])
        }
        #[cfg(feature = "nng")]
        "nng" => Ok([
            nng::emitters(scenario, progress).await?,
            nng::baseline(scenario, progress).await?,
        ]),
        other => Err(BenchError::UnknownTransport {
            name: other.to_owned(),
            available: AVAILABLE.join(", "),
        }),
    }
}
