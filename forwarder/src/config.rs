//! [`ForwarderConfig`]: where a forwarder listens and what each subscriber may queue.

use std::net::SocketAddr;
use std::time::Duration;

/// Settings of a [`Forwarder`](crate::Forwarder).
#[derive(Debug, Clone)]
pub struct ForwarderConfig {
    /// Where publishers connect (Demitter's `XSUB_ADDRESS:XSUB_PORT`). Default
    /// `127.0.0.1:5555`; port 0 picks a free port.
    pub xsub: SocketAddr,
    /// Where subscribers connect (Demitter's `XPUB_ADDRESS:XPUB_PORT`). Default
    /// `127.0.0.1:5556`.
    pub xpub: SocketAddr,
    /// Messages queued per subscriber before further ones to it are dropped and counted.
    pub subscriber_queue: usize,
    /// Bytes queued per subscriber (besides the one batch of up to 64 KiB being written to
    /// it) before further messages to it are dropped and counted: with `subscriber_queue`,
    /// what a slow subscriber can pin.
    pub subscriber_queue_bytes: usize,
    /// The largest frame accepted from a peer; a peer sending more is disconnected.
    pub max_frame_bytes: usize,
    /// How often statistics are logged (at info level); `None` for never.
    pub stats_interval: Option<Duration>,
}

impl Default for ForwarderConfig {
    fn default() -> Self {
        Self {
            xsub: SocketAddr::from(([127, 0, 0, 1], 5555)),
            xpub: SocketAddr::from(([127, 0, 0, 1], 5556)),
            subscriber_queue: 65_536,
            subscriber_queue_bytes: 16 * 1024 * 1024,
            max_frame_bytes: demitter_core::DEFAULT_MAX_FRAME_BYTES + 64 * 1024,
            stats_interval: Some(Duration::from_secs(10)),
        }
    }
}

impl ForwarderConfig {
    /// Both sides on free loopback ports (read them back with
    /// [`Forwarder::xsub_addr`](crate::Forwarder::xsub_addr) / [`Forwarder::xpub_addr`](crate::Forwarder::xpub_addr)) and no statistics lines: an
    /// embedded forwarder for tests and single-machine programs.
    pub fn loopback_free_ports() -> Self {
        let any = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        Self {
            xsub: any,
            xpub: any,
            stats_interval: None,
            ..Self::default()
        }
    }
}
