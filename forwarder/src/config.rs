//! [`ForwarderConfig`]: where a forwarder listens and what each subscriber may queue.

use std::net::SocketAddr;
use std::sync::Arc;
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
/// under which names. The allow list can be replaced while the forwarder runs
/// ([`replace_allow_list`](Self::replace_allow_list)): new connections are checked
/// against the new list, and connections whose key it no longer holds are closed.
#[derive(Debug, Clone)]
pub struct ForwarderCurve {
    /// The forwarder's permanent secret key.
    pub secret: CurveSecretKey,
    allow: Arc<tokio::sync::watch::Sender<Arc<AllowList>>>,
}

impl ForwarderCurve {
    /// CURVE with this key and allow list.
    pub fn new(secret: CurveSecretKey, allow: AllowList) -> Self {
        Self {
            secret,
            allow: Arc::new(tokio::sync::watch::Sender::new(Arc::new(allow))),
        }
    }

    /// The allow list now.
    pub fn allow_list(&self) -> Arc<AllowList> {
        Arc::clone(&self.allow.borrow())
    }

    /// Replaces the allow list: the connections of keys it does not hold are closed.
    pub fn replace_allow_list(&self, allow: AllowList) {
        self.allow.send_replace(Arc::new(allow));
    }

    /// Follows the allow list's replacements.
    pub(crate) fn watch_allow_list(&self) -> tokio::sync::watch::Receiver<Arc<AllowList>> {
        self.allow.subscribe()
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
