//! The cross-transport benchmark harness behind the `demitter-bench` binary.
//!
//! A scenario (publishers, subscribers, payload size, duration, a fixed rate or flat out)
//! runs twice in one invocation: on emitters over a transport, and on the raw transport
//! moving the same frames without the emitter layer (the baseline). Results are quoted as
//! the ratio between the two, never as a lone absolute figure.

pub mod baseline;
pub mod chart;
pub mod cli;
pub mod emitters;
pub mod hot_path;
pub mod measure;
pub mod peers;
pub mod report;
pub mod round_trips;
pub mod run;
pub mod scenario;
pub mod transports;
pub mod workloads;

use std::sync::atomic::Ordering;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::run::Counters;

/// What can stop a benchmark.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// The emitter layer failed.
    #[error(transparent)]
    Emitter(#[from] demitter_core::Error),
    /// Starting or running a scenario failed.
    #[error("benchmark setup failed: {0}")]
    Setup(String),
    /// `--transport` named a transport this build does not have.
    #[error("unknown transport `{name}`; this build has: {available}")]
    UnknownTransport {
        /// The name given.
        name: String,
        /// The names available.
        available: String,
    },
    /// `--peer` named a peer system this build does not have.
    #[error("unknown peer system `{name}`; this build has: {available}")]
    UnknownPeer {
        /// The name given.
        name: String,
        /// The names available.
        available: String,
    },
    /// Writing output failed.
    #[error("could not write {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Drawing the chart failed.
    #[error("could not draw the chart: {0}")]
    Chart(String),
    /// Stopped before every run had finished ([`cli::run_until`]).
    #[error("interrupted after {finished} of {runs} runs")]
    Interrupted {
        /// The runs that finished.
        finished: usize,
        /// The runs asked for.
        runs: usize,
    },
}

/// A progress bar on a terminal, nothing elsewhere.
#[derive(Debug, Clone)]
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A progress display if `show` (standard error is a terminal), else a silent one.
    pub fn new(show: bool) -> Self {
        Self {
            bar: show.then(ProgressBar::hidden),
        }
    }

    /// Shows `label` and the delivered count while a run of `duration` publishes.
    pub fn start(&self, label: &str) {
        if let Some(bar) = &self.bar {
            bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix} [{bar:30}] {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar.set_prefix(label.to_owned());
            bar.set_length(100);
            bar.set_position(0);
        }
    }

    /// Ticks for `duration`, showing delivered events, then returns.
    pub async fn track(&self, duration: Duration, counters: &Counters) {
        let Some(bar) = &self.bar else {
            tokio::time::sleep(duration).await;
            return;
        };
        let start = std::time::Instant::now();
        while start.elapsed() < duration {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let done = (start.elapsed().as_secs_f64() / duration.as_secs_f64()).min(1.0);
            bar.set_position((done * 100.0) as u64);
            bar.set_message(format!(
                "{} delivered",
                counters.received.load(Ordering::Relaxed)
            ));
        }
        bar.finish_and_clear();
    }
}
