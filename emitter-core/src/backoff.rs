//! Exponential backoff between attempts to reach a peer, written once for every
//! transport.
//!
//! ```
//! use std::time::Duration;
//! use demitter_core::Backoff;
//!
//! let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
//! assert_eq!(backoff.delay(0), Duration::from_millis(100));
//! assert_eq!(backoff.delay(2), Duration::from_millis(400));
//! assert_eq!(backoff.delay(40), Duration::from_secs(1), "never more than the cap");
//! ```

use std::time::Duration;

/// The pause before the next attempt: `min` after the first failure, doubling with each
/// further one, never more than `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first pause.
    pub min: Duration,
    /// The longest pause.
    pub max: Duration,
}

impl Backoff {
    /// Pauses from `min`, doubling up to `max`.
    pub fn new(min: Duration, max: Duration) -> Self {
        Self { min, max }
    }

    /// The pause after `failures` failures in a row beyond the first.
    pub fn delay(&self, failures: u32) -> Duration {
        let factor = 1u32 << failures.min(16);
        self.min.saturating_mul(factor).min(self.max)
    }
}
