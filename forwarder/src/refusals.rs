//! Logging refused connections once per peer address: a refused ZeroMQ client redials
//! every 100 ms or so, and a warning each time would bury everything else. Every refusal is
//! still counted ([`ForwarderStats::refused`](crate::ForwarderStats::refused)).

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};

/// Addresses remembered at most; past it the memory starts again (and each address is
/// warned about once more).
const REMEMBERED: usize = 4096;

/// The peer addresses already warned about.
#[derive(Debug, Default)]
pub(crate) struct RefusalLog {
    warned: HashSet<IpAddr>,
}

impl RefusalLog {
    /// Logs a refusal of `peer` (a `side`, for `why`): at warn the first time for its
    /// address, at debug after.
    pub(crate) fn refused(&mut self, peer: SocketAddr, side: &str, why: &str) {
        if self.warned.len() >= REMEMBERED {
            self.warned.clear();
        }
        if self.warned.insert(peer.ip()) {
            tracing::warn!(%peer, "{side} refused: {why} (more refusals of this address are counted, not logged)");
        } else {
            tracing::debug!(%peer, "{side} refused: {why}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_is_remembered_until_the_memory_is_full() {
        let mut log = RefusalLog::default();
        let peer = |i: u32, port| SocketAddr::from((std::net::Ipv4Addr::from(i), port));
        log.refused(peer(1, 1000), "publisher", "a NULL peer");
        log.refused(peer(1, 1001), "subscriber", "a NULL peer");
        assert_eq!(log.warned.len(), 1, "one address, whatever its ports");
        for i in 2..=REMEMBERED as u32 {
            log.refused(peer(i, 1), "publisher", "an unknown key");
        }
        assert_eq!(log.warned.len(), REMEMBERED);
        log.refused(peer(1, 1002), "publisher", "a NULL peer");
        assert_eq!(log.warned.len(), 1, "full: started again");
    }
}
