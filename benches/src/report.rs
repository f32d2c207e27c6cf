//! Results as a Markdown table and as JSON.

use std::fmt::Write as _;

use crate::scenario::{Layer, Outcome};

/// What the table's columns mean, printed under it.
pub const LEGEND: &str = "\
delivered/s: events received per second, over all subscribers. × baseline: that rate over \
the raw transport's in the same scenario of the same run (× peer: over the peer system's). \
lost: events that did not arrive: sent × subscribers (a group run: sent) minus received, \
counted once the run has drained. reported lost: the losses the system said it had; for an \
emitter row, the gaps and lag its subscribers reported (equal to lost when nothing was lost \
silently); for a baseline row, the publishes the raw transport refused, which were never \
sent and so are not in lost (a baseline can report more than it lost), and nothing for what \
a raw transport drops without a word, as zmq.rs's PUB does. p50/p99/p99.9: microseconds \
from publish to delivery. CPU cores: the process's CPU time over the run's. shares: each \
group member's part of the events.";

/// A Markdown table of `outcomes`, each emitter row with its ratio to the baseline row of
/// the same scenario (measured in the same invocation) and, when a peer system ran
/// (`--peer`), to the peer's row of the same scenario.
pub fn markdown(outcomes: &[Outcome]) -> String {
    let mut out = String::from(
        "| transport | scenario | layer | delivered/s | × baseline | × peer | lost | reported lost | p50 µs | p99 µs | p99.9 µs | CPU cores | shares |\n\
         |---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    let ratio = |o: &Outcome, to: Option<&Outcome>| {
        to.map_or_else(
            || "–".to_owned(),
            |b| {
                format!(
                    "{:.2}",
                    o.delivered_per_sec / b.delivered_per_sec.max(f64::MIN_POSITIVE)
                )
            },
        )
    };
    for o in outcomes {
        let (to_baseline, to_peer) = match o.layer {
            Layer::Baseline => ("1.00".to_owned(), "–".to_owned()),
            Layer::Peer => ("–".to_owned(), "1.00".to_owned()),
            Layer::Emitter => (
                ratio(o, baseline_for(outcomes, o)),
                ratio(o, peer_for(outcomes, o)),
            ),
        };
        let cpu = o
            .cpu_cores
            .map_or_else(|| "–".to_owned(), |c| format!("{c:.2}"));
        let [p50, p99, p999] = o.latency_us;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:.1} | {:.1} | {:.1} | {} | {} |",
            o.transport,
            o.scenario,
            o.layer,
            thousands(o.delivered_per_sec),
            to_baseline,
            to_peer,
            o.lost,
            o.reported_lost,
            p50,
            p99,
            p999,
            cpu,
            shares(o)
        );
    }
    out
}

/// A group run's member shares as percentages (`–` for other runs).
fn shares(o: &Outcome) -> String {
    if o.shares.is_empty() {
        return "–".to_owned();
    }
    o.shares
        .iter()
        .map(|s| format!("{:.1}%", s * 100.0))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The baseline row measured for the same transport and scenario.
pub fn baseline_for<'a>(outcomes: &'a [Outcome], o: &Outcome) -> Option<&'a Outcome> {
    outcomes.iter().find(|b| {
        b.layer == Layer::Baseline
            && b.transport == o.transport
            && b.scenario.to_string() == o.scenario.to_string()
    })
}

/// The first peer system's row measured for the same scenario.
pub fn peer_for<'a>(outcomes: &'a [Outcome], o: &Outcome) -> Option<&'a Outcome> {
    outcomes
        .iter()
        .find(|p| p.layer == Layer::Peer && p.scenario.to_string() == o.scenario.to_string())
}

fn thousands(x: f64) -> String {
    let n = x.round() as u64;
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::scenario::Scenario;

    fn outcome(transport: &str, layer: Layer, delivered_per_sec: f64) -> Outcome {
        Outcome {
            transport: transport.into(),
            layer,
            scenario: Scenario {
                publishers: 1,
                subscribers: 1,
                bystanders: 0,
                payload: 64,
                duration: std::time::Duration::from_secs(1),
                rate: None,
                congestion: demitter_core::Congestion::Drop,
                workload: crate::scenario::Workload::Events,
                recovery: false,
            },
            sent: 1,
            expected: 1,
            received: 1,
            lost: 0,
            reported_lost: 0,
            elapsed_secs: 1.0,
            delivered_per_sec,
            latency_us: [1.0, 2.0, 3.0],
            cpu_cores: None,
            shares: Vec::new(),
        }
    }

    #[test]
    fn emitter_rows_are_compared_with_their_baseline_and_the_peer() {
        let table = markdown(&[
            outcome("quic", Layer::Emitter, 600.0),
            outcome("quic", Layer::Baseline, 1000.0),
            outcome("zenoh", Layer::Peer, 800.0),
        ]);
        let rows: Vec<&str> = table.lines().skip(2).collect();
        assert!(
            rows[0].contains("| emitter | 600 | 0.60 | 0.75 |"),
            "{table}"
        );
        assert!(
            rows[1].contains("| baseline | 1,000 | 1.00 | – |"),
            "{table}"
        );
        assert!(rows[2].contains("| peer | 800 | – | 1.00 |"), "{table}");
    }

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(1234.4), "1,234");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
    }
}
