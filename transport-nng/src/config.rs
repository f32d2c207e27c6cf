//! [`NngConfig`]: where a node listens, whom it dials, and its limits.

use std::time::Duration;

use crate::error::NngError;

/// Settings of one bus node. [`NngConfig::new`] gives the defaults.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NngConfig {
    /// Where to listen, `tcp://IP:PORT` (port 0: one the system picks). The default is
    /// loopback: nng carries no authentication, so listen elsewhere only on a network you
    /// trust.
    pub listen: String,
    /// Listen URLs of nodes to dial and keep dialing (the seeds); the rest of the bus is
    /// learned from their announcements.
    pub peers: Vec<String>,
    /// The largest frame sent or accepted. Default 8 MiB.
    pub max_frame_bytes: usize,
    /// Bytes of frames queued for the writer before `send` refuses more (they are dropped
    /// and reported; receivers see the gap). Default 16 MiB.
    pub send_queue_bytes: usize,
    /// How often a node announces where it listens and whom it knows. Default 500 ms.
    pub announce_every: Duration,
    /// The first redial delay after a connection fails or drops. Default 50 ms.
    pub reconnect_min: Duration,
    /// The longest redial delay. Default 1 s.
    pub reconnect_max: Duration,
}

impl NngConfig {
    /// Defaults, listening on `listen`.
    pub fn new(listen: impl Into<String>) -> Self {
        Self {
            listen: listen.into(),
            peers: Vec::new(),
            max_frame_bytes: 8 * 1024 * 1024,
            send_queue_bytes: 16 * 1024 * 1024,
            announce_every: Duration::from_millis(500),
            reconnect_min: Duration::from_millis(50),
            reconnect_max: Duration::from_secs(1),
        }
    }

    /// Listens on loopback at a port the system picks.
    pub fn loopback() -> Self {
        Self::new("tcp://127.0.0.1:0")
    }

    /// Adds a node to dial.
    #[must_use]
    pub fn with_peer(mut self, url: impl Into<String>) -> Self {
        self.peers.push(url.into());
        self
    }

    pub(crate) fn validate(&self) -> Result<(), NngError> {
        let bad = |what: &str| Err(NngError::Config(what.to_owned()));
        if !self.listen.starts_with("tcp://") {
            return bad("listen must be a tcp://IP:PORT URL");
        }
        if let Some(peer) = self.peers.iter().find(|p| !p.starts_with("tcp://")) {
            return Err(NngError::Config(format!(
                "peer {peer:?} is not a tcp:// URL"
            )));
        }
        if self.max_frame_bytes < 1024 || self.max_frame_bytes > (u32::MAX as usize) / 2 {
            return bad("max_frame_bytes must be between 1 KiB and 2 GiB");
        }
        if self.send_queue_bytes < self.max_frame_bytes || self.announce_every.is_zero() {
            return bad(
                "send_queue_bytes must hold a frame of max_frame_bytes, and announce_every be non-zero",
            );
        }
        if self.reconnect_min.is_zero() || self.reconnect_min > self.reconnect_max {
            return bad("reconnect_min must be non-zero and at most reconnect_max");
        }
        Ok(())
    }
}
