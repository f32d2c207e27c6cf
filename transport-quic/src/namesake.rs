//! Two live nodes with one name: the newer gives way.
//!
//! A node's name is its certificate's, and a mesh never connects a node to its own name,
//! so a node cannot hear a namesake on the bus the way a broadcast bus's node does. A peer
//! sees both instead: when a node connects in an incarnation other than the one the peer
//! is connected to, the peer takes it for a restart and closes the old connection with
//! code `REPLACED`, giving the new incarnation's listen address as the reason. An old
//! incarnation that is in fact alive hears that close, and dials the address. The two
//! namesakes exchange hellos, and each compares the same two hellos: the one whose
//! transport has run for less time (`uptime_ms`; the higher incarnation on a tie) is the
//! newer. It closes the connection with code `NAMESAKE` and its emitter gives way
//! ([`Incoming::DuplicateId`]); it dials and accepts no more, so the peers go back to the
//! older node as it redials them. The older one reports the newcomer once.
//!
//! An old incarnation that crashed hears nothing, and the restart simply takes over.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use demitter_core::{ErrorKind, ErrorReport, Incoming};

use crate::link::{DialError, LinkHost as _, close_code};
use crate::mesh::Mesh;
use crate::tls;
use crate::wire::Hello;

/// The most namesakes' addresses remembered as told (a name restarting over and over
/// beside a live node would otherwise grow the set without bound).
const MAX_TOLD: usize = 64;

/// Whether the node that sent `mine` is the newer of the two namesakes that exchanged
/// `mine` and `theirs`. Both sides compare the same pair, so exactly one is newer.
pub(crate) fn is_newer(mine: &Hello, theirs: &Hello) -> bool {
    (mine.uptime_ms, theirs.incarnation) < (theirs.uptime_ms, mine.incarnation)
}

impl Mesh {
    /// A link ended: if a peer replaced it with another incarnation of this node's name
    /// while this node is alive, that incarnation is a namesake: dial it to settle which
    /// of the two stays.
    pub(crate) fn check_replacement(self: &Arc<Self>, reason: &quinn::ConnectionError) {
        let quinn::ConnectionError::ApplicationClosed(close) = reason else {
            return;
        };
        if close.error_code != close_code::REPLACED
            || self.gave_way.load(Ordering::Acquire)
            || self.closing.load(Ordering::Acquire)
        {
            return;
        }
        // Peers of an older build give no address: nothing to dial.
        let Some(addr) = std::str::from_utf8(&close.reason)
            .ok()
            .and_then(|text| text.parse::<SocketAddr>().ok())
        else {
            return;
        };
        let mesh = Arc::clone(self);
        self.tasks
            .spawn(async move { mesh.dial_namesake(addr).await });
    }

    /// Dials the namesake at `addr`; `establish` settles the rest.
    async fn dial_namesake(self: Arc<Self>, addr: SocketAddr) {
        tracing::debug!(%addr, "a peer took another incarnation of this name for a restart; dialing it");
        let connecting =
            match self
                .endpoint
                .connect_with(self.client_config.clone(), addr, tls::SERVER_NAME)
            {
                Ok(connecting) => connecting,
                Err(e) => {
                    tracing::debug!(%addr, "cannot dial the namesake: {e}");
                    return;
                }
            };
        match tokio::time::timeout(self.config.handshake_timeout, connecting).await {
            Ok(Ok(conn)) => {
                if let Err(e) = self.establish(conn, true).await {
                    tracing::debug!(%addr, "the namesake's connection: {e}");
                }
            }
            // Gone already (it gave way, or the other incarnation was a restart that
            // ended): nothing to settle.
            Ok(Err(e)) => tracing::debug!(%addr, "the namesake did not answer: {e}"),
            Err(_) => tracing::debug!(%addr, "the namesake did not answer in time"),
        }
    }

    /// A namesake at `addr` gave way to this node, which was there first: reported once.
    pub(crate) async fn namesake_gave_way(&self, addr: SocketAddr) {
        let first = {
            let mut told = self.namesakes_told.lock();
            if told.len() >= MAX_TOLD {
                told.clear();
            }
            told.insert(addr)
        };
        if first {
            tracing::warn!(name = %self.me, %addr, "another node started with this node's name; it was told to give way");
            self.report(
                ErrorReport::new(
                    ErrorKind::Refused,
                    1,
                    format!(
                        "another node started with this node's name `{}` at {addr}; it was told to give way",
                        self.me
                    ),
                )
                .with_peer(addr.to_string()),
            )
            .await;
        }
    }

    /// Two live nodes with this name exchanged hellos over `conn`: the newer gives way,
    /// the older reports it. Returns what `establish` returns for it.
    pub(crate) async fn meet_namesake(
        &self,
        conn: &quinn::Connection,
        mine: &Hello,
        theirs: &Hello,
        addr: SocketAddr,
    ) -> DialError {
        if is_newer(mine, theirs) {
            conn.close(
                close_code::NAMESAKE,
                b"a node with this name was there first",
            );
            if !self.gave_way.swap(true, Ordering::AcqRel) {
                tracing::warn!(name = %self.me, %addr, "another live node has this node's name and was there first; giving way");
                self.dial_wake.notify_one();
                let address = Some(addr.to_string());
                self.deliver(vec![Incoming::DuplicateId { address }]).await;
            }
        } else {
            self.namesake_gave_way(addr).await;
            // The newer one closes it, having seen the same two hellos; closed here too
            // if it does not in time (not as `NAMESAKE`: that would tell it to give way).
            if tokio::time::timeout(self.config.handshake_timeout, conn.closed())
                .await
                .is_err()
            {
                conn.close(
                    close_code::DUPLICATE,
                    b"a node with this name was there first",
                );
            }
        }
        DialError::Namesake
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(incarnation: u64, uptime_ms: u64) -> Hello {
        Hello {
            incarnation,
            listen_port: 4816,
            uptime_ms,
        }
    }

    #[test]
    fn the_node_running_for_less_time_is_the_newer_and_exactly_one_is() {
        let (old, new) = (hello(9, 60_000), hello(3, 20));
        assert!(is_newer(&new, &old));
        assert!(!is_newer(&old, &new));
        // A tie: the higher incarnation gives way.
        let (a, b) = (hello(3, 500), hello(8, 500));
        assert!(is_newer(&b, &a));
        assert!(!is_newer(&a, &b));
    }
}
