//! Two live nodes with one id: the newer is refused, the older told.
//!
//! A node hears its own id back on a broadcast bus (its echo, in its own incarnation). Its
//! id in another incarnation is another node, unless that one is leaving. Which of the two
//! is newer follows from what each hears: a node that joins says hello, and whoever hears
//! that hello was there before it. So a node that hears its id in another incarnation:
//!
//! - in a hello: the other is newer. This node reports it, and answers (any message that
//!   is not a hello refuses the newcomer). If this node is itself within its first
//!   heartbeat interval, the two started together and neither is older: the higher
//!   incarnation gives way, so exactly one of them is refused;
//! - in anything else, from an incarnation it never heard say hello: on a broadcast bus
//!   the other was there first (this node's hello reached it, and it answered). On a mesh
//!   whose nodes connect one by one (nng), neither may have heard the other's hello; the
//!   epochs, start times where clocks agree, tell which started later. So this node is
//!   refused if its epoch is the higher, and otherwise takes the other for the newer
//!   (reports and answers it, as for a hello). Clocks that disagree by more than the time
//!   between the two starts can keep both.
//! - in a goodbye, from a later incarnation it never heard: one met late that gave way at
//!   once, on hearing this node first. It is reported all the same.
//!
//! A transport that finds a namesake itself (a mesh, where a node never hears its own id
//! on the bus) says so with [`Incoming::DuplicateId`](crate::Incoming::DuplicateId), and
//! the node is refused just the same.
//!
//! A refused node sends its goodbye and nothing more: `emit` and `ready` fail with
//! [`Error::DuplicateId`](crate::Error::DuplicateId).

use std::time::{Duration, Instant};

use foldhash::HashSet;

/// The most newer incarnations remembered (a bus where one id keeps restarting beside a
/// live node would otherwise grow this without bound).
const MAX_REMEMBERED: usize = 64;

/// What hearing this node's own id in another incarnation means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Its own echo, or a leaving node: nothing to do.
    Echo,
    /// A newer node took this id: reported the first time (`first`), its frames dropped.
    Newer {
        /// Whether this is the first word of it (report and answer it).
        first: bool,
    },
    /// This node is the newer one: it must give way.
    Refused,
    /// A newer node this node never heard from before said goodbye: one met late on a
    /// mesh that gave way to this node at once (reported, nothing to answer).
    GaveWay,
}

/// The tracker.
#[derive(Debug)]
pub(crate) struct Duplicates {
    epoch: u64,
    /// Until when this node counts as just started.
    young_until: Instant,
    /// Incarnations of this id heard saying hello after this node started.
    newer: HashSet<u64>,
    /// Set once this node was refused.
    refused: bool,
    /// Where the node this one gave way to is, if the transport said.
    other_address: Option<String>,
}

impl Duplicates {
    /// A node in incarnation `epoch`, started at `now`.
    pub(crate) fn new(epoch: u64, now: Instant, heartbeat_interval: Duration) -> Self {
        Self {
            epoch,
            young_until: now + heartbeat_interval,
            newer: HashSet::default(),
            refused: false,
            other_address: None,
        }
    }

    /// Whether this node was refused.
    pub(crate) fn is_refused(&self) -> bool {
        self.refused
    }

    /// Where the node this one gave way to is, if the transport said.
    pub(crate) fn other_address(&self) -> Option<&str> {
        self.other_address.as_deref()
    }

    /// The transport found another live node with this id that was there first (at
    /// `address`, if it knows): this node is refused. Whether it was not already.
    pub(crate) fn refuse(&mut self, address: Option<String>) -> bool {
        if self.refused {
            return false;
        }
        self.refused = true;
        self.other_address = address;
        true
    }

    /// Remembers a newer incarnation; whether it is new to this node.
    fn remember_newer(&mut self, epoch: u64) -> bool {
        if self.newer.len() >= MAX_REMEMBERED {
            self.newer.clear();
        }
        self.newer.insert(epoch)
    }

    /// This node's id arrived in incarnation `epoch`, in a hello (`hello`), a goodbye
    /// (`bye`) or anything else.
    pub(crate) fn heard(&mut self, epoch: u64, hello: bool, bye: bool, now: Instant) -> Verdict {
        if epoch == self.epoch || self.refused {
            return Verdict::Echo;
        }
        if bye {
            let known = self.newer.remove(&epoch);
            return if !known && epoch > self.epoch {
                Verdict::GaveWay
            } else {
                Verdict::Echo
            };
        }
        if hello {
            if now < self.young_until && self.epoch > epoch {
                self.refused = true;
                return Verdict::Refused;
            }
            let first = self.remember_newer(epoch);
            return Verdict::Newer { first };
        }
        if self.newer.contains(&epoch) {
            Verdict::Newer { first: false }
        } else if epoch > self.epoch {
            // Never heard it join, and it started later: a namesake met late on a mesh.
            self.remember_newer(epoch);
            Verdict::Newer { first: true }
        } else {
            self.refused = true;
            Verdict::Refused
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEAT: Duration = Duration::from_secs(1);

    #[test]
    fn the_node_that_hears_a_hello_is_the_older_and_the_other_gives_way() {
        let t0 = Instant::now();
        let later = t0 + BEAT * 3;
        let mut old = Duplicates::new(5, t0, BEAT);
        let mut new = Duplicates::new(9, later, BEAT);
        assert_eq!(old.heard(5, false, false, later), Verdict::Echo);
        assert_eq!(
            old.heard(9, true, false, later),
            Verdict::Newer { first: true }
        );
        assert_eq!(
            old.heard(9, false, false, later),
            Verdict::Newer { first: false }
        );
        // The newcomer hears the older one's answer (or heartbeat): it never heard it
        // join, so it was there first.
        assert_eq!(new.heard(5, false, false, later), Verdict::Refused);
        assert!(new.is_refused());
        assert_eq!(new.heard(5, false, false, later), Verdict::Echo);
        assert!(!old.is_refused());
    }

    #[test]
    fn two_started_together_leave_exactly_one_standing() {
        let t0 = Instant::now();
        for (ea, eb) in [(3, 8), (8, 3)] {
            let mut a = Duplicates::new(ea, t0, BEAT);
            let mut b = Duplicates::new(eb, t0, BEAT);
            let soon = t0 + BEAT / 10;
            let at_a = a.heard(eb, true, false, soon);
            let at_b = b.heard(ea, true, false, soon);
            // Each then hears the other's answer.
            if !a.is_refused() {
                a.heard(eb, false, false, soon);
            }
            if !b.is_refused() {
                b.heard(ea, false, false, soon);
            }
            assert_ne!(a.is_refused(), b.is_refused(), "{at_a:?} {at_b:?}");
            assert!(if ea > eb {
                a.is_refused()
            } else {
                b.is_refused()
            });
        }
    }

    #[test]
    fn two_that_never_heard_each_others_hello_leave_the_later_start() {
        let t0 = Instant::now();
        let later = t0 + BEAT * 5;
        let mut old = Duplicates::new(5, t0, BEAT);
        let mut new = Duplicates::new(9, later, BEAT);
        // A mesh connected them long after both said hello: each first hears the other's
        // heartbeat.
        assert_eq!(
            old.heard(9, false, false, later),
            Verdict::Newer { first: true }
        );
        assert_eq!(new.heard(5, false, false, later), Verdict::Refused);
        assert_eq!(
            old.heard(9, false, false, later),
            Verdict::Newer { first: false }
        );
        assert!(!old.is_refused());
        // Had the new one heard the old one first, it would have given way at once: the
        // old one learns of it from its goodbye.
        let mut other = Duplicates::new(5, t0, BEAT);
        assert_eq!(other.heard(9, false, true, later), Verdict::GaveWay);
    }

    #[test]
    fn a_refusal_from_the_transport_is_taken_once_with_its_address() {
        let mut node = Duplicates::new(5, Instant::now(), BEAT);
        assert!(node.refuse(Some("10.0.0.7:4816".into())));
        assert!(node.is_refused());
        assert!(!node.refuse(Some("10.0.0.8:4816".into())));
        assert_eq!(node.other_address(), Some("10.0.0.7:4816"));
    }

    #[test]
    fn a_restart_after_a_goodbye_is_not_a_duplicate() {
        let t0 = Instant::now();
        let mut old = Duplicates::new(5, t0, BEAT);
        let later = t0 + BEAT * 3;
        let mut new = Duplicates::new(9, later, BEAT);
        // The new one hears the old one's goodbye (its last words): not refused.
        assert_eq!(new.heard(5, false, true, later), Verdict::Echo);
        assert!(!new.is_refused());
        // The old one, had it heard the new one join, is not told of its goodbye again.
        assert_eq!(
            old.heard(9, true, false, later),
            Verdict::Newer { first: true }
        );
        assert_eq!(old.heard(9, false, true, later), Verdict::Echo);
    }
}
