//! Results as a Markdown table and as JSON.

use std::fmt::Write as _;

use crate::scenario::{Layer, Outcome};

/// A Markdown table of `outcomes`, each emitter row with its ratio to the baseline row of
/// the same scenario (measured in the same invocation).
pub fn markdown(outcomes: &[Outcome]) -> String {
    let mut out = String::from(
        "| transport | scenario | layer | delivered/s | × baseline | lost | reported lost | p50 µs | p99 µs | p99.9 µs | CPU cores |\n\
         |---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for o in outcomes {
        let ratio = match o.layer {
            Layer::Baseline => "1.00".to_owned(),
            Layer::Emitter => baseline_for(outcomes, o).map_or_else(
                || "–".to_owned(),
                |b| {
                    format!(
                        "{:.2}",
                        o.delivered_per_sec / b.delivered_per_sec.max(f64::MIN_POSITIVE)
                    )
                },
            ),
        };
        let cpu = o
            .cpu_cores
            .map_or_else(|| "–".to_owned(), |c| format!("{c:.2}"));
        let [p50, p99, p999] = o.latency_us;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {:.1} | {:.1} | {:.1} | {} |",
            o.transport,
            o.scenario,
            o.layer,
            thousands(o.delivered_per_sec),
            ratio,
            o.lost,
            o.reported_lost,
            p50,
            p99,
            p999,
            cpu
        );
    }
    out
}

/// The baseline row measured for the same transport and scenario.
pub fn baseline_for<'a>(outcomes: &'a [Outcome], o: &Outcome) -> Option<&'a Outcome> {
    outcomes.iter().find(|b| {
        b.layer == Layer::Baseline
            && b.transport == o.transport
            && b.scenario.to_string() == o.scenario.to_string()
    })
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

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(1234.4), "1,234");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
    }
}
