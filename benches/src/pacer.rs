//! Even pacing for fixed-rate runs.
//!
//! tokio's timers have a resolution of one millisecond, so an `Interval` of 100 µs fires
//! ten times at each millisecond: events leave in bursts of ten, and their latency then
//! measures the burst (each event waits for the others to be emitted, batched and handled)
//! rather than the path. A paced publisher therefore runs on a thread of its own that
//! sleeps to absolute deadlines, with the thread's timer slack cut to 1 µs on Linux, and
//! publishes through the runtime's handle. When it falls behind it catches up at once, so
//! the rate holds.

use std::future::Future;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

/// Calls `publish_one` `rate` times a second, evenly spaced, until `deadline`.
pub(crate) fn spawn_paced<F, Fut>(
    rate: u64,
    deadline: Instant,
    mut publish_one: F,
) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let runtime = tokio::runtime::Handle::current();
    let period = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
    tokio::task::spawn_blocking(move || {
        tighten_timer_slack();
        let mut next = Instant::now();
        while next < deadline {
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            }
            runtime.block_on(publish_one());
            next += period;
        }
    })
}

/// Wakes this thread within a microsecond of its deadlines (the default slack is 50 µs).
fn tighten_timer_slack() {
    #[cfg(target_os = "linux")]
    if let Err(e) = nix::sys::prctl::set_timerslack(1_000) {
        eprintln!("note: could not tighten the pacer's timer slack ({e}); pacing is coarser");
    }
}
