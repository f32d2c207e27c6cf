//! Where peers may be found, and when to dial each address next. Pure bookkeeping, no I/O:
//! the mesh asks which addresses are due, dials them and reports the outcome.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use demitter_core::{Backoff, NodeId};

/// How an address became known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// A seed or a discovery mechanism: kept until the mechanism says it is gone.
    Discovered,
    /// Gossip, or the address a connected peer listens on: forgotten when the peer leaves
    /// or stays unreachable for `forget_after`.
    Learned,
}

#[derive(Debug)]
struct Entry {
    name: Option<NodeId>,
    origin: Origin,
    failures: u32,
    next_attempt: Instant,
    dialing: bool,
    is_self: bool,
    unreachable_since: Option<Instant>,
}

/// Timing of dials and redials.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DialTiming {
    /// Between failed dials of one address.
    pub(crate) backoff: Backoff,
    /// How long the higher-named side of a pair waits for the lower-named one to dial,
    /// so that the two rarely dial each other at once.
    pub(crate) grace: Duration,
    /// How long a learned address may stay unreachable before it is forgotten.
    pub(crate) forget_after: Duration,
}

/// The addresses this node dials.
#[derive(Debug)]
pub(crate) struct Directory {
    me: NodeId,
    timing: DialTiming,
    entries: HashMap<SocketAddr, Entry>,
}

/// The most addresses remembered; gossip beyond it is ignored.
const MAX_ENTRIES: usize = 4096;

impl Directory {
    pub(crate) fn new(me: NodeId, timing: DialTiming) -> Self {
        Self {
            me,
            timing,
            entries: HashMap::new(),
        }
    }

    fn first_delay(&self, name: Option<&NodeId>) -> Duration {
        match name {
            Some(name) if self.me > *name => self.timing.grace,
            _ => Duration::ZERO,
        }
    }

    /// Remembers `addr` (for `name`, if known). Returns whether it is new.
    pub(crate) fn learn(
        &mut self,
        addr: SocketAddr,
        name: Option<NodeId>,
        origin: Origin,
        now: Instant,
    ) -> bool {
        if name.as_ref() == Some(&self.me) {
            return false;
        }
        if let Some(entry) = self.entries.get_mut(&addr) {
            if name.is_some() {
                entry.name = name;
            }
            if origin == Origin::Discovered {
                entry.origin = Origin::Discovered;
            }
            return false;
        }
        if self.entries.len() >= MAX_ENTRIES {
            return false;
        }
        let delay = self.first_delay(name.as_ref());
        self.entries.insert(
            addr,
            Entry {
                name,
                origin,
                failures: 0,
                next_attempt: now + delay,
                dialing: false,
                is_self: false,
                unreachable_since: None,
            },
        );
        true
    }

    /// Forgets a discovered address.
    pub(crate) fn forget(&mut self, addr: SocketAddr) {
        self.entries.remove(&addr);
    }

    /// The addresses to dial now (marked as being dialed). `connected` tells whether a
    /// peer already has a connection.
    pub(crate) fn due(
        &mut self,
        now: Instant,
        connected: impl Fn(&NodeId) -> bool,
    ) -> Vec<SocketAddr> {
        let mut due = Vec::new();
        for (addr, entry) in &mut self.entries {
            if entry.dialing || entry.is_self || entry.next_attempt > now {
                continue;
            }
            if entry.name.as_ref().is_some_and(&connected) {
                continue;
            }
            entry.dialing = true;
            due.push(*addr);
        }
        due
    }

    /// When the next address falls due (among those not connected and not being dialed).
    pub(crate) fn next_due(&self, connected: impl Fn(&NodeId) -> bool) -> Option<Instant> {
        self.entries
            .values()
            .filter(|e| !e.dialing && !e.is_self && !e.name.as_ref().is_some_and(&connected))
            .map(|e| e.next_attempt)
            .min()
    }

    /// A dial to `addr` reached peer `name`.
    pub(crate) fn dial_succeeded(&mut self, addr: SocketAddr, name: &NodeId) {
        if let Some(entry) = self.entries.get_mut(&addr) {
            entry.dialing = false;
            entry.failures = 0;
            entry.unreachable_since = None;
            entry.name = Some(name.clone());
        }
    }

    /// A dial to `addr` reached this node itself: never dial it again.
    pub(crate) fn dialed_self(&mut self, addr: SocketAddr) {
        if let Some(entry) = self.entries.get_mut(&addr) {
            entry.dialing = false;
            entry.is_self = true;
        }
    }

    /// A dial to `addr` failed: back off, and forget a learned address unreachable for too
    /// long.
    pub(crate) fn dial_failed(&mut self, addr: SocketAddr, now: Instant) {
        let Some(entry) = self.entries.get_mut(&addr) else {
            return;
        };
        entry.dialing = false;
        entry.failures = entry.failures.saturating_add(1);
        entry.next_attempt = now + self.timing.backoff.delay(entry.failures);
        let since = *entry.unreachable_since.get_or_insert(now);
        if entry.origin == Origin::Learned && now.duration_since(since) >= self.timing.forget_after
        {
            self.entries.remove(&addr);
        }
    }

    /// The connection to `name` was lost: dial its addresses again soon (the lower-named
    /// side at once), or, if it left for good, forget its learned addresses.
    pub(crate) fn peer_lost(&mut self, name: &NodeId, left: bool, now: Instant) {
        let delay = self.first_delay(Some(name));
        self.entries.retain(|_, entry| {
            if entry.name.as_ref() != Some(name) {
                return true;
            }
            if left && entry.origin == Origin::Learned {
                return false;
            }
            entry.failures = 0;
            entry.unreachable_since = None;
            entry.next_attempt = now + delay;
            true
        });
    }

    /// How many addresses are known.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> NodeId {
        NodeId::new(s).expect("valid")
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn directory(me: &str) -> Directory {
        Directory::new(
            id(me),
            DialTiming {
                backoff: Backoff::new(Duration::from_millis(100), Duration::from_secs(1)),
                grace: Duration::from_millis(500),
                forget_after: Duration::from_secs(10),
            },
        )
    }

    #[test]
    fn the_lower_name_dials_first_and_failures_back_off() {
        let now = Instant::now();
        let mut d = directory("m");
        assert!(d.learn(addr(1), Some(id("z")), Origin::Learned, now));
        assert!(d.learn(addr(2), Some(id("a")), Origin::Learned, now));
        assert!(d.learn(addr(3), None, Origin::Discovered, now));
        assert!(
            !d.learn(addr(4), Some(id("m")), Origin::Learned, now),
            "never me"
        );
        let mut due = d.due(now, |_| false);
        due.sort();
        assert_eq!(due, vec![addr(1), addr(3)], "`a` is lower: it dials `m`");
        assert!(d.due(now, |_| false).is_empty(), "being dialed");
        assert_eq!(
            d.due(now + Duration::from_millis(500), |_| false),
            vec![addr(2)]
        );

        d.dial_failed(addr(1), now);
        assert_eq!(
            d.next_due(|_| false),
            Some(now + Duration::from_millis(200))
        );
        for _ in 0..10 {
            d.dial_failed(addr(1), now);
        }
        assert!(
            d.due(now + Duration::from_millis(999), |_| false)
                .is_empty()
        );
        assert_eq!(
            d.due(now + Duration::from_secs(1), |_| false),
            vec![addr(1)]
        );
    }

    #[test]
    fn connected_peers_are_not_dialed_and_self_never_again() {
        let now = Instant::now();
        let mut d = directory("m");
        d.learn(addr(1), None, Origin::Discovered, now);
        d.learn(addr(2), Some(id("b")), Origin::Learned, now);
        let due = d.due(now, |n| n.as_str() == "b");
        assert_eq!(due, vec![addr(1)]);
        d.dialed_self(addr(1));
        assert_eq!(d.next_due(|n| n.as_str() == "b"), None);
        assert!(
            d.due(now + Duration::from_secs(9), |_| false)
                .contains(&addr(2))
        );
    }

    #[test]
    fn learned_addresses_are_forgotten_when_unreachable_or_gone() {
        let now = Instant::now();
        let mut d = directory("m");
        d.learn(addr(1), Some(id("a")), Origin::Learned, now);
        d.learn(addr(2), None, Origin::Discovered, now);
        d.due(now, |_| false);
        d.dial_failed(addr(1), now);
        d.dial_failed(addr(2), now);
        d.due(now + Duration::from_secs(11), |_| false);
        d.dial_failed(addr(1), now + Duration::from_secs(11));
        d.dial_failed(addr(2), now + Duration::from_secs(11));
        assert_eq!(d.len(), 1, "the seed stays, the learned address goes");

        d.learn(addr(3), Some(id("b")), Origin::Learned, now);
        d.learn(addr(2), Some(id("b")), Origin::Discovered, now);
        d.peer_lost(&id("b"), true, now);
        assert_eq!(d.len(), 1, "b left: its learned address is forgotten");
        d.peer_lost(&id("b"), false, now);
        assert!(
            d.due(now, |_| false).is_empty(),
            "`b` is lower: it redials first"
        );
        let later = now + Duration::from_millis(500);
        assert_eq!(
            d.due(later, |_| false),
            vec![addr(2)],
            "the seed is redialed"
        );
    }
}
