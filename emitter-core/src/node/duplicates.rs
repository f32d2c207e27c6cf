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
//! - in anything else, from an incarnation it never heard say hello: the other was there
//!   first, and this node is refused.
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
}

impl Duplicates {
    /// A node in incarnation `epoch`, started at `now`.
    pub(crate) fn new(epoch: u64, now: Instant, heartbeat_interval: Duration) -> Self {
        Self {
            epoch,
            young_until: now + heartbeat_interval,
            newer: HashSet::default(),
            refused: false,
        }
    }

    /// Whether this node was refused.
    pub(crate) fn is_refused(&self) -> bool {
        self.refused
    }

    /// This node's id arrived in incarnation `epoch`, in a hello (`hello`), a goodbye
    /// (`bye`) or anything else.
    pub(crate) fn heard(&mut self, epoch: u64, hello: bool, bye: bool, now: Instant) -> Verdict {
        if epoch == self.epoch || self.refused {
            return Verdict::Echo;
        }
        if bye {
            self.newer.remove(&epoch);
            return Verdict::Echo;
        }
        if hello {
            if now < self.young_until && self.epoch > epoch {
                self.refused = true;
                return Verdict::Refused;
            }
            if self.newer.len() >= MAX_REMEMBERED {
                self.newer.clear();
            }
            let first = self.newer.insert(epoch);
            return Verdict::Newer { first };
        }
        if self.newer.contains(&epoch) {
            Verdict::Newer { first: false }
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
    fn a_restart_after_a_goodbye_is_not_a_duplicate() {
        let t0 = Instant::now();
        let mut old = Duplicates::new(5, t0, BEAT);
        let later = t0 + BEAT * 3;
        let mut new = Duplicates::new(9, later, BEAT);
        // The new one hears the old one's goodbye (its last words): not refused.
        assert_eq!(new.heard(5, false, true, later), Verdict::Echo);
        assert!(!new.is_refused());
        assert_eq!(old.heard(9, false, true, later), Verdict::Echo);
    }
}
