//! [`PeerDirectory`]: where peers may be found, who dials whom, and when to dial each
//! address next. Written once for every transport that dials its peers (QUIC, nng), and
//! pure bookkeeping with the time passed in: the transport asks which addresses are due,
//! dials them, and reports the outcome.
//!
//! One connection per pair: [`dials_first`] is the rule both sides apply, the lower name
//! dials. The higher-named side waits [`DialTiming::grace`] before dialing (so that the
//! two rarely dial each other at once), or never, on a network where two connections of
//! one pair would deliver everything twice.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use demitter_core::{AddressOrigin, Backoff, DialTiming, PeerDirectory};
//!
//! let timing = DialTiming {
//!     backoff: Backoff::new(Duration::from_millis(100), Duration::from_secs(5)),
//!     grace: Some(Duration::from_millis(500)),
//!     forget_after: Duration::from_secs(60),
//! };
//! let now = Instant::now();
//! let mut directory = PeerDirectory::new("m".to_owned(), timing);
//! directory.learn("10.0.0.1:4816", Some("z".to_owned()), AddressOrigin::Learned, now);
//! directory.learn("10.0.0.2:4816", Some("a".to_owned()), AddressOrigin::Learned, now);
//! // `m` dials `z` now; `a` is lower and dials `m`, so `m` waits for it.
//! assert_eq!(directory.due(now, |_| false), vec!["10.0.0.1:4816"]);
//! directory.dial_failed(&"10.0.0.1:4816", now);
//! assert_eq!(directory.next_due(|_| false), Some(now + Duration::from_millis(200)));
//! ```

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

use crate::backoff::Backoff;
use crate::node_id::NodeId;

/// Whether `me` dials `peer` first: the lower name of a pair dials, and of two connections
/// of one pair both sides keep the one the lower name dialed.
pub fn dials_first<N: Ord + ?Sized>(me: &N, peer: &N) -> bool {
    me < peer
}

/// How an address became known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressOrigin {
    /// A seed or a discovery mechanism: dialed by whoever names it, and kept until the
    /// mechanism says it is gone.
    Discovered,
    /// Gossip, or the address a connected peer listens on: dialed by the rule of
    /// [`dials_first`], and forgotten when the peer leaves or stays unreachable for
    /// [`DialTiming::forget_after`].
    Learned,
}

#[derive(Debug)]
struct Entry<N> {
    name: Option<N>,
    origin: AddressOrigin,
    failures: u32,
    /// `None`: never (the peer dials this node).
    next_attempt: Option<Instant>,
    dialing: bool,
    is_self: bool,
    unreachable_since: Option<Instant>,
}

/// Timing of dials and redials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DialTiming {
    /// Between failed dials of one address.
    pub backoff: Backoff,
    /// How long the higher-named side of a pair waits for the lower-named one to dial
    /// before dialing itself; `None`: it never dials a learned address of a lower-named
    /// peer, and waits to be dialed.
    pub grace: Option<Duration>,
    /// How long a learned address may stay unreachable before it is forgotten.
    pub forget_after: Duration,
}

/// The addresses a node dials, by address `A`, with the peer's name `N` where known.
#[derive(Debug)]
pub struct PeerDirectory<A, N = NodeId> {
    me: N,
    timing: DialTiming,
    entries: HashMap<A, Entry<N>>,
}

/// The most addresses remembered; gossip beyond it is ignored.
pub const MAX_DIRECTORY_ENTRIES: usize = 4096;

impl<A: Clone + Eq + Hash, N: Clone + Ord> PeerDirectory<A, N> {
    /// An empty directory for the node named `me`.
    pub fn new(me: N, timing: DialTiming) -> Self {
        Self {
            me,
            timing,
            entries: HashMap::new(),
        }
    }

    /// Remembers `addr` (for `name`, if known). Returns whether it is new. This node's own
    /// name, and anything beyond [`MAX_DIRECTORY_ENTRIES`], is not remembered; learning an
    /// address again fills in its name and raises it to `Discovered`.
    pub fn learn(&mut self, addr: A, name: Option<N>, origin: AddressOrigin, now: Instant) -> bool {
        if name.as_ref() == Some(&self.me) {
            return false;
        }
        if let Some(entry) = self.entries.get_mut(&addr) {
            if name.is_some() {
                entry.name = name;
            }
            if origin == AddressOrigin::Discovered {
                entry.origin = AddressOrigin::Discovered;
            }
            return false;
        }
        if self.entries.len() >= MAX_DIRECTORY_ENTRIES {
            return false;
        }
        let next_attempt = first_attempt(&self.me, self.timing, name.as_ref(), origin, now);
        self.entries.insert(
            addr,
            Entry {
                name,
                origin,
                failures: 0,
                next_attempt,
                dialing: false,
                is_self: false,
                unreachable_since: None,
            },
        );
        true
    }

    /// Remembers what a peer gossiped: `(name, address)` pairs, as learned addresses.
    /// Returns whether any is new.
    pub fn learn_gossip(&mut self, peers: impl IntoIterator<Item = (N, A)>, now: Instant) -> bool {
        let mut learned = false;
        for (name, addr) in peers {
            learned |= self.learn(addr, Some(name), AddressOrigin::Learned, now);
        }
        learned
    }

    /// Forgets an address (a discovery mechanism says it is gone).
    pub fn forget(&mut self, addr: &A) {
        self.entries.remove(addr);
    }

    /// The addresses to dial now, marked as being dialed until the outcome is reported.
    /// `connected` tells whether a peer already has a connection.
    pub fn due(&mut self, now: Instant, connected: impl Fn(&N) -> bool) -> Vec<A> {
        let mut due = Vec::new();
        for (addr, entry) in &mut self.entries {
            if entry.dialing || entry.is_self || entry.next_attempt.is_none_or(|at| at > now) {
                continue;
            }
            if entry.name.as_ref().is_some_and(&connected) {
                continue;
            }
            entry.dialing = true;
            due.push(addr.clone());
        }
        due
    }

    /// When the next address falls due (among those not connected and not being dialed).
    pub fn next_due(&self, connected: impl Fn(&N) -> bool) -> Option<Instant> {
        self.entries
            .values()
            .filter(|e| !e.dialing && !e.is_self && !e.name.as_ref().is_some_and(&connected))
            .filter_map(|e| e.next_attempt)
            .min()
    }

    /// A dial to `addr` reached peer `name` (or, on a network that redials by itself,
    /// was handed to it).
    pub fn dial_succeeded(&mut self, addr: &A, name: &N) {
        if let Some(entry) = self.entries.get_mut(addr) {
            entry.dialing = false;
            entry.failures = 0;
            entry.unreachable_since = None;
            entry.name = Some(name.clone());
        }
    }

    /// A dial to `addr` reached this node itself: never dial it again.
    pub fn dialed_self(&mut self, addr: &A) {
        if let Some(entry) = self.entries.get_mut(addr) {
            entry.dialing = false;
            entry.is_self = true;
        }
    }

    /// A dial to `addr` failed: back off, and forget a learned address unreachable for too
    /// long. Returns whether the failure is one to report: the first of a streak at an
    /// address a seed or a discovery mechanism gave, which is how this node joins (a
    /// learned address that stops answering is a peer gone, which its loss says).
    pub fn dial_failed(&mut self, addr: &A, now: Instant) -> bool {
        let Some(entry) = self.entries.get_mut(addr) else {
            return false;
        };
        entry.dialing = false;
        entry.failures = entry.failures.saturating_add(1);
        let report = entry.failures == 1 && entry.origin == AddressOrigin::Discovered;
        entry.next_attempt = Some(now + self.timing.backoff.delay(entry.failures));
        let since = *entry.unreachable_since.get_or_insert(now);
        if entry.origin == AddressOrigin::Learned
            && now.duration_since(since) >= self.timing.forget_after
        {
            self.entries.remove(addr);
        }
        report
    }

    /// The connection to `name` was lost: dial its addresses again soon (by the rule of
    /// [`dials_first`]), or, if it left for good, forget its learned addresses.
    pub fn peer_lost(&mut self, name: &N, left: bool, now: Instant) {
        let timing = self.timing;
        let me = &self.me;
        self.entries.retain(|_, entry| {
            if entry.name.as_ref() != Some(name) {
                return true;
            }
            if left && entry.origin == AddressOrigin::Learned {
                return false;
            }
            entry.failures = 0;
            entry.unreachable_since = None;
            entry.next_attempt = first_attempt(me, timing, Some(name), entry.origin, now);
            true
        });
    }

    /// The known addresses (other than this node's own), in no particular order.
    pub fn addresses(&self) -> impl Iterator<Item = &A> {
        self.entries
            .iter()
            .filter(|(_, e)| !e.is_self)
            .map(|(addr, _)| addr)
    }

    /// How many addresses are known.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no address is known.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// When an address of `name` (learned as `origin`) is next dialed by `me`: at once unless
/// the peer dials first, then after the grace, or never.
fn first_attempt<N: Ord>(
    me: &N,
    timing: DialTiming,
    name: Option<&N>,
    origin: AddressOrigin,
    now: Instant,
) -> Option<Instant> {
    match name {
        Some(name) if !dials_first(me, name) => match (timing.grace, origin) {
            (Some(grace), _) => Some(now + grace),
            (None, AddressOrigin::Discovered) => Some(now),
            (None, AddressOrigin::Learned) => None,
        },
        _ => Some(now),
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;

    fn id(s: &str) -> NodeId {
        NodeId::new(s).expect("valid")
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn directory(me: &str) -> PeerDirectory<SocketAddr> {
        PeerDirectory::new(
            id(me),
            DialTiming {
                backoff: Backoff::new(Duration::from_millis(100), Duration::from_secs(1)),
                grace: Some(Duration::from_millis(500)),
                forget_after: Duration::from_secs(10),
            },
        )
    }

    #[test]
    fn the_first_failure_of_a_streak_at_a_seed_is_the_one_reported() {
        let now = Instant::now();
        let mut d = directory("m");
        d.learn(addr(3), None, AddressOrigin::Discovered, now);
        assert!(d.dial_failed(&addr(3), now), "the first failure at a seed");
        assert!(!d.dial_failed(&addr(3), now), "the same streak");
        d.dial_succeeded(&addr(3), &id("s"));
        assert!(d.dial_failed(&addr(3), now), "a new streak");
    }

    #[test]
    fn the_lower_name_dials_first_and_failures_back_off() {
        let now = Instant::now();
        let mut d = directory("m");
        assert!(d.learn(addr(1), Some(id("z")), AddressOrigin::Learned, now));
        assert!(d.learn(addr(2), Some(id("a")), AddressOrigin::Learned, now));
        assert!(d.learn(addr(3), None, AddressOrigin::Discovered, now));
        assert!(
            !d.learn(addr(4), Some(id("m")), AddressOrigin::Learned, now),
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

        assert!(
            !d.dial_failed(&addr(1), now),
            "a learned address: its peer's loss is what is said"
        );
        assert_eq!(
            d.next_due(|_| false),
            Some(now + Duration::from_millis(200))
        );
        for _ in 0..10 {
            d.dial_failed(&addr(1), now);
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
        d.learn(addr(1), None, AddressOrigin::Discovered, now);
        d.learn(addr(2), Some(id("b")), AddressOrigin::Learned, now);
        let due = d.due(now, |n| n.as_str() == "b");
        assert_eq!(due, vec![addr(1)]);
        d.dialed_self(&addr(1));
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
        d.learn(addr(1), Some(id("a")), AddressOrigin::Learned, now);
        d.learn(addr(2), None, AddressOrigin::Discovered, now);
        d.due(now, |_| false);
        d.dial_failed(&addr(1), now);
        d.dial_failed(&addr(2), now);
        d.due(now + Duration::from_secs(11), |_| false);
        d.dial_failed(&addr(1), now + Duration::from_secs(11));
        d.dial_failed(&addr(2), now + Duration::from_secs(11));
        assert_eq!(d.len(), 1, "the seed stays, the learned address goes");

        d.learn(addr(3), Some(id("b")), AddressOrigin::Learned, now);
        d.learn(addr(2), Some(id("b")), AddressOrigin::Discovered, now);
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

    #[test]
    fn without_a_grace_the_higher_name_waits_to_be_dialed_except_for_seeds() {
        let now = Instant::now();
        let mut d = PeerDirectory::new(
            "tcp://b".to_owned(),
            DialTiming {
                backoff: Backoff::new(Duration::from_millis(100), Duration::from_secs(1)),
                grace: None,
                forget_after: Duration::from_secs(10),
            },
        );
        let url = |s: &str| format!("tcp://{s}");
        for peer in ["a", "c"] {
            d.learn(url(peer), Some(url(peer)), AddressOrigin::Learned, now);
        }
        d.learn(url("a0"), Some(url("a0")), AddressOrigin::Discovered, now);
        let mut due = d.due(now, |_| false);
        due.sort();
        assert_eq!(due, vec![url("a0"), url("c")], "`a` is lower: it dials");
        assert_eq!(d.next_due(|_| false), None, "and `b` never dials `a`");
        d.peer_lost(&url("a"), false, now);
        assert!(d.due(now + Duration::from_secs(60), |_| false).is_empty());
        assert_eq!(d.addresses().count(), 3);
    }
}
