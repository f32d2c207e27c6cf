//! Which NATS subscriptions a node holds for its listeners' patterns, and which of them
//! each message is read from.
//!
//! Each pattern wants one filter ([`subject::pattern_tokens`] under `PREFIX.e.*`). A node
//! subscribes to a wanted filter unless a subscription it holds already covers it, and
//! gives up a subscription once no wanted filter overlaps it, or once an older one covers
//! it. Subscriptions can therefore overlap for a while (a node that listens on `a.b`, then
//! on `a.#`, holds both while both are wanted), and NATS then sends an overlapped message
//! once per subscription. Of those copies the node reads the one of its **oldest**
//! subscription that matches the subject and drops the others unread ([`Owners`]).
//!
//! Why the oldest: a name's events and its sequence marks travel on the name's subject, in
//! the sender's order, and NATS keeps that order within each subscription (each has its own
//! channel in the client). Reading a subject from one subscription only keeps the order; the
//! oldest one is the one that has received the subject the longest, and it is never given up
//! while any wanted filter overlaps it, so the subject never moves to a younger one while a
//! listener wants it. Nothing is read twice, and nothing out of order.

use std::collections::HashMap;

use crate::subject::{self, filter_matches};

/// The filters the node's patterns want, counted (two listeners may want one filter).
#[derive(Debug, Default)]
pub(crate) struct WantedFilters {
    counts: HashMap<String, usize>,
    /// Changes made so far: the publisher compares it with the last it applied.
    version: u64,
}

impl WantedFilters {
    /// The filter that `pattern`'s events are received on, under `prefix`.
    pub(crate) fn filter_of(prefix: &str, pattern: &str) -> String {
        format!("{prefix}.e.*.{}", subject::pattern_tokens(pattern))
    }

    /// One more listener's pattern wants `filter`.
    pub(crate) fn add(&mut self, filter: String) {
        *self.counts.entry(filter).or_default() += 1;
        self.version += 1;
    }

    /// One listener's pattern no longer wants `filter`.
    pub(crate) fn remove(&mut self, filter: &str) {
        if let Some(count) = self.counts.get_mut(filter) {
            *count -= 1;
            if *count == 0 {
                self.counts.remove(filter);
            }
            self.version += 1;
        }
    }

    /// The number of changes made so far.
    pub(crate) fn version(&self) -> u64 {
        self.version
    }

    /// The filters wanted now, in a fixed order.
    pub(crate) fn filters(&self) -> Vec<String> {
        let mut filters: Vec<String> = self.counts.keys().cloned().collect();
        filters.sort();
        filters
    }
}

/// What to change in the subscriptions held to serve the wanted filters.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Filters to subscribe to, in this order, after those held.
    pub(crate) add: Vec<String>,
    /// Held filters to give up.
    pub(crate) retire: Vec<String>,
}

impl Plan {
    /// The changes that make `held` (oldest first) serve `wanted`: see the module docs.
    pub(crate) fn new(held: &[String], wanted: &[String]) -> Self {
        let mut kept: Vec<&String> = Vec::with_capacity(held.len());
        let mut retire = Vec::new();
        for h in held {
            let needed = wanted.iter().any(|w| overlaps(w, h));
            let shadowed = kept.iter().any(|older| covers(older, h));
            if needed && !shadowed {
                kept.push(h);
            } else {
                retire.push(h.clone());
            }
        }
        // The wanted filters no other wanted filter covers (the first of equal ones).
        let widest = wanted.iter().enumerate().filter(|(i, w)| {
            !wanted
                .iter()
                .enumerate()
                .any(|(j, other)| j != *i && covers(other, w) && (other != *w || j < *i))
        });
        let add = widest
            .map(|(_, w)| w)
            .filter(|w| !kept.iter().any(|k| covers(k, w)))
            .cloned()
            .collect();
        Self { add, retire }
    }
}

/// The subscriptions a receiver reads, oldest first, and which of them owns a subject.
#[derive(Debug, Default)]
pub(crate) struct Owners {
    filters: Vec<String>,
}

impl Owners {
    /// A subscription was added: the youngest.
    pub(crate) fn push(&mut self, filter: String) {
        self.filters.push(filter);
    }

    /// The subscription at `index` was given up.
    pub(crate) fn remove(&mut self, index: usize) {
        self.filters.remove(index);
    }

    /// Where the subscription of `filter` is, if held.
    pub(crate) fn position(&self, filter: &str) -> Option<usize> {
        self.filters.iter().position(|f| f == filter)
    }

    /// Whether a message on `subject` from the subscription at `index` is the copy to read:
    /// no older subscription matches the subject.
    pub(crate) fn reads(&self, index: usize, subject: &str) -> bool {
        !self.filters[..index.min(self.filters.len())]
            .iter()
            .any(|older| filter_matches(older, subject))
    }
}

/// Whether every subject that `inner` matches, `outer` matches too.
fn covers(outer: &str, inner: &str) -> bool {
    let (mut outer, mut inner) = (outer.split('.'), inner.split('.'));
    loop {
        match (outer.next(), inner.next()) {
            (Some(">"), Some(_)) | (None, None) => return true,
            (Some("*"), Some(i)) if i != ">" => {}
            (Some(o), Some(i)) if o == i && i != ">" => {}
            _ => return false,
        }
    }
}

/// Whether some subject matches both filters.
fn overlaps(a: &str, b: &str) -> bool {
    let (mut a, mut b) = (a.split('.'), b.split('.'));
    loop {
        match (a.next(), b.next()) {
            (Some(">"), Some(_)) | (Some(_), Some(">")) | (None, None) => return true,
            (Some(x), Some(y)) if x == y || x == "*" || y == "*" => {}
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn filters(list: &[&str]) -> Vec<String> {
        list.iter().map(|f| (*f).to_owned()).collect()
    }

    #[test]
    fn covering_and_overlapping_follow_the_wildcards() {
        assert!(covers("a.>", "a.b.c") && covers("a.>", "a.*") && covers("*.b", "a.b"));
        assert!(!covers("a.*", "a.>") && !covers("a.b", "a.*") && !covers("a.>", "a"));
        assert!(overlaps("a.*", "*.b") && overlaps("a.>", "*.b.c") && overlaps(">", "x"));
        assert!(!overlaps("a.*", "b.*") && !overlaps("a.*", "a.b.c") && !overlaps("a", "a.>"));
    }

    #[test]
    fn a_covered_pattern_adds_no_subscription_and_an_unwanted_one_is_given_up() {
        let plan = Plan::new(
            &filters(&["p.e.*.a.>"]),
            &filters(&["p.e.*.a.>", "p.e.*.a.b"]),
        );
        assert_eq!(plan, Plan::default());
        let plan = Plan::new(
            &filters(&["p.e.*.a.b"]),
            &filters(&["p.e.*.a.>", "p.e.*.a.b"]),
        );
        assert_eq!(
            plan.add,
            filters(&["p.e.*.a.>"]),
            "younger and wider: both held"
        );
        assert!(plan.retire.is_empty());
        let plan = Plan::new(
            &filters(&["p.e.*.a.b", "p.e.*.a.>"]),
            &filters(&["p.e.*.x"]),
        );
        assert_eq!(plan.add, filters(&["p.e.*.x"]));
        assert_eq!(plan.retire, filters(&["p.e.*.a.b", "p.e.*.a.>"]));
        let plan = Plan::new(
            &filters(&["p.e.*.a.>", "p.e.*.a.b"]),
            &filters(&["p.e.*.a.b"]),
        );
        assert_eq!(
            plan.retire,
            filters(&["p.e.*.a.b"]),
            "the older one covers it"
        );
    }

    fn token() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("a".to_owned()),
            Just("b".to_owned()),
            Just("*".to_owned())
        ]
    }

    fn filter() -> impl Strategy<Value = String> {
        (proptest::collection::vec(token(), 1..4), any::<bool>()).prop_map(|(mut t, tail)| {
            if tail {
                t.push(">".to_owned());
            }
            t.join(".")
        })
    }

    fn subject() -> impl Strategy<Value = String> {
        proptest::collection::vec(prop_oneof![Just("a"), Just("b"), Just("c")], 1..5)
            .prop_map(|t| t.join("."))
    }

    proptest! {
        #[test]
        fn covering_and_overlapping_agree_with_matching(
            a in filter(),
            b in filter(),
            subjects in proptest::collection::vec(subject(), 1..32),
        ) {
            for s in &subjects {
                if covers(&a, &b) && filter_matches(&b, s) {
                    prop_assert!(filter_matches(&a, s), "{a} covers {b} but not {s}");
                }
                if filter_matches(&a, s) && filter_matches(&b, s) {
                    prop_assert!(overlaps(&a, &b), "{a} and {b} both match {s}");
                }
            }
        }

        /// After any run of changes, every subject a wanted filter matches is read from
        /// exactly one subscription, and from the same one for as long as it is wanted.
        #[test]
        fn each_wanted_subject_is_read_once_and_from_one_subscription(
            steps in proptest::collection::vec((filter(), any::<bool>()), 1..12),
            subjects in proptest::collection::vec(subject(), 1..16),
        ) {
            let mut wanted = WantedFilters::default();
            let mut held: Vec<String> = Vec::new();
            let mut owners = Owners::default();
            let mut reader: HashMap<String, String> = HashMap::new();
            for (filter, add) in steps {
                if add { wanted.add(filter) } else { wanted.remove(&filter) }
                let plan = Plan::new(&held, &wanted.filters());
                for gone in &plan.retire {
                    let at = owners.position(gone).expect("held");
                    owners.remove(at);
                    held.retain(|h| h != gone);
                }
                for new in plan.add {
                    owners.push(new.clone());
                    held.push(new);
                }
                for s in &subjects {
                    let wants = wanted.filters().iter().any(|w| filter_matches(w, s));
                    let reading: Vec<&String> = held
                        .iter()
                        .enumerate()
                        .filter(|(i, h)| filter_matches(h, s) && owners.reads(*i, s))
                        .map(|(_, h)| h)
                        .collect();
                    if wants {
                        prop_assert_eq!(reading.len(), 1, "{} read from {:?}", s, reading);
                        if let Some(before) = reader.get(s) {
                            prop_assert_eq!(before, reading[0], "{} moved", s);
                        }
                        reader.insert(s.clone(), reading[0].clone());
                    } else {
                        prop_assert!(reading.len() <= 1);
                        reader.remove(s);
                    }
                }
            }
        }
    }
}
