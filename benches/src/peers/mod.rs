//! Other projects doing the same job, measured by the same harness in the same invocation
//! (`--peer NAME`), so that a ratio to them comes from one run on one machine.

#[cfg(feature = "zenoh")]
pub mod zenoh;

use crate::scenario::{Outcome, Scenario};
use crate::{BenchError, Progress};

/// The peer systems compiled in, by the name `--peer` takes.
pub const AVAILABLE: &[&str] = &[
    #[cfg(feature = "zenoh")]
    "zenoh",
];

/// Runs `scenario` on the peer system `name`.
// Without a peer system compiled in, nothing here awaits or uses the scenario.
#[cfg_attr(not(feature = "zenoh"), allow(clippy::unused_async, unused_variables))]
pub async fn run(
    name: &str,
    scenario: &Scenario,
    progress: &Progress,
) -> Result<Outcome, BenchError> {
    match name {
        #[cfg(feature = "zenoh")]
        "zenoh" => zenoh::run(scenario, progress).await,
        other => Err(BenchError::UnknownPeer {
            name: other.to_owned(),
            available: if AVAILABLE.is_empty() {
                "none (build with --features zenoh for Zenoh)".to_owned()
            } else {
                AVAILABLE.join(", ")
            },
        }),
    }
}
