//! [`ForwarderConfig`]: where a forwarder listens and what each subscriber may queue.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use demitter_zmq::curve_keys::{AllowList, CurveSecretKey};

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
    /// With CURVE, both sides speak only the CURVE mechanism as its server and let in
    /// only the keys of the allow list; `None` (the default) is the NULL mechanism, as
    /// Demitter's processes speak.
    pub curve: Option<ForwarderCurve>,
}

/// CURVE on both sides of a forwarder: its secret key, and which client keys may connect
/// under which names. The allow list is shared, so that it can be replaced while the
/// forwarder runs; each connection is checked against the list of its handshake.
#[derive(Debug, Clone)]
pub struct ForwarderCurve {
    /// The forwarder's permanent secret key.
    pub secret: CurveSecretKey,
    /// The client keys let in, and their names.
    pub allow: Arc<RwLock<AllowList>>,
}

impl ForwarderCurve {
    /// CURVE with this key and allow list.
    pub fn new(secret: CurveSecretKey, allow: AllowList) -> Self {
        Self {
            secret,
            allow: Arc::new(RwLock::new(allow)),
        }
    }
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
            curve: None,
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
