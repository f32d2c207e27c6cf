//! Clocks, latency histograms and CPU time.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// Nanoseconds since a process-wide origin: what publishers stamp into events and
/// subscribers subtract from (both in this process).
pub fn now_ns() -> u64 {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    let origin = *ORIGIN.get_or_init(Instant::now);
    u64::try_from(origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// A latency histogram from 1 ns to 60 s, 3 significant digits.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).unwrap_or_else(|_| {
        // The bounds above are valid constants; this cannot fail.
        Histogram::new(3).unwrap_or_else(|_| unreachable!("3 significant digits is valid"))
    })
}

/// p50, p99 and p99.9 in microseconds.
pub fn percentiles_us(h: &Histogram<u64>) -> [f64; 3] {
    [0.5, 0.99, 0.999].map(|q| h.value_at_quantile(q) as f64 / 1_000.0)
}

/// CPU time this process has used (user + system), where the platform tells.
pub fn process_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // Linux reports clock ticks of 1/100 s (USER_HZ) on every mainstream architecture.
    Some(Duration::from_millis((utime + stime) * 10))
}

/// CPU time against wall time from a starting point.
#[derive(Debug, Clone, Copy)]
pub struct CpuClock {
    cpu: Option<Duration>,
    wall: Instant,
}

impl CpuClock {
    /// Starts now.
    pub fn start() -> Self {
        Self {
            cpu: process_cpu_time(),
            wall: Instant::now(),
        }
    }

    /// Process CPU time since the start over wall time (1.0 = one core busy), where the
    /// platform tells.
    pub fn cores(&self) -> Option<f64> {
        self.cpu
            .zip(process_cpu_time())
            .map(|(a, b)| b.saturating_sub(a).as_secs_f64() / self.wall.elapsed().as_secs_f64())
    }
}
