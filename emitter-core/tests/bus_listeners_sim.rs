//! `bus_listeners` (the entries behind `Emitter::listeners`) on the virtual-clock bus: over
//! random adds and removes of listeners, spies, group members and responders, crashes,
//! restarts and cuts, every node's listing is exactly as long as its `listener_count`, for
//! every name and pattern, at every step; and once the links heal, every node lists the
//! same listeners.

mod sim;

use std::time::Duration;

use demitter_core::node::{CountSubject, ListenerFlags};
use demitter_core::{BusListener, Pattern};
use proptest::prelude::*;
use sim::Sim;

const NODES: usize = 3;
const PATTERNS: &[&str] = &["a.x", "a.+", "#", "a.#", "b"];
const NAMES: &[&str] = &["a.x", "a.y", "b", "c.d"];

#[derive(Debug, Clone)]
enum Step {
    Listen(usize, usize),
    Spy(usize, usize),
    Join(usize, usize, bool),
    Serve(usize, usize),
    Remove(usize, usize),
    Crash(usize),
    Restart(usize),
    Cut(usize, usize),
    Heal,
    Run(u64),
}

fn step() -> impl Strategy<Value = Step> {
    let node = 0..NODES;
    let pattern = 0..PATTERNS.len();
    prop_oneof![
        4 => (node.clone(), pattern.clone()).prop_map(|(n, p)| Step::Listen(n, p)),
        1 => (node.clone(), pattern.clone()).prop_map(|(n, p)| Step::Spy(n, p)),
        2 => (node.clone(), pattern.clone(), any::<bool>()).prop_map(|(n, p, g)| Step::Join(n, p, g)),
        1 => (node.clone(), pattern.clone()).prop_map(|(n, p)| Step::Serve(n, p)),
        3 => (node.clone(), 0..16usize).prop_map(|(n, k)| Step::Remove(n, k)),
        1 => node.clone().prop_map(Step::Crash),
        1 => node.clone().prop_map(Step::Restart),
        1 => (node.clone(), node).prop_map(|(a, b)| Step::Cut(a, b)),
        1 => Just(Step::Heal),
        4 => (1..400u64).prop_map(Step::Run),
    ]
}

/// Every subject a listing can be asked for: each name, each wildcard pattern, and the
/// responders of each name.
fn subjects() -> Vec<CountSubject> {
    let mut subjects: Vec<CountSubject> = NAMES
        .iter()
        .chain(PATTERNS)
        .map(|text| CountSubject::parse(text).expect("valid"))
        .collect();
    subjects.extend(NAMES.iter().map(|name| CountSubject::responders(name)));
    subjects
}

fn check(steps: Vec<Step>) -> Result<(), TestCaseError> {
    let mut sim = Sim::new(NODES, 7);
    // Per node: (listener id, is a responder) of what it added, to remove at random.
    let mut added: Vec<Vec<(u64, bool)>> = vec![Vec::new(); NODES];
    let subjects = subjects();
    for step in steps {
        match step {
            Step::Listen(n, p) => added[n].push((sim.listen(n, PATTERNS[p], 1), false)),
            Step::Spy(n, p) => {
                let spy = ListenerFlags {
                    spy: true,
                    ..ListenerFlags::default()
                };
                let pattern = Pattern::new(PATTERNS[p]).expect("valid");
                let id = sim.node(n).add_listener(pattern, spy, 2).expect("open");
                added[n].push((id, false));
            }
            Step::Join(n, p, first) => {
                let pattern = Pattern::new(PATTERNS[p]).expect("valid");
                let group = if first { "workers" } else { "packers" };
                let id = sim
                    .node(n)
                    .add_group_member(pattern, group, 3)
                    .expect("open");
                added[n].push((id, false));
            }
            Step::Serve(n, p) => {
                let pattern = Pattern::new(PATTERNS[p]).expect("valid");
                added[n].push((sim.node(n).add_responder(pattern).expect("open"), true));
            }
            Step::Remove(n, k) if !added[n].is_empty() => {
                let at = k % added[n].len();
                let (id, responder) = added[n].remove(at);
                if responder {
                    sim.node(n).remove_responder(id);
                } else {
                    sim.node(n).remove_listener(id);
                }
            }
            Step::Crash(n) => sim.crash(n),
            Step::Restart(n) => {
                sim.restart(n);
                added[n].clear();
            }
            Step::Cut(a, b) if a != b => sim.cut(a, b),
            // Nothing to remove, or a node cut from itself.
            Step::Remove(..) | Step::Cut(..) => {}
            Step::Heal => sim.heal(),
            Step::Run(ms) => sim.run_for(Duration::from_millis(ms)),
        }
        for n in 0..NODES {
            for subject in &subjects {
                let node = sim.node(n);
                let listed = node.bus_listeners(subject);
                prop_assert_eq!(
                    listed.len(),
                    node.listener_count(subject),
                    "node {} on {:?}: {:?}",
                    n,
                    subject,
                    listed
                );
                prop_assert!(listed.iter().all(|l| l.local == (l.node == *node.id())));
            }
        }
    }
    // Healed and given time, the nodes that are up agree on every listener.
    sim.heal();
    for n in 0..NODES {
        if !sim.nodes[n].up {
            sim.restart(n);
        }
    }
    sim.run_for(Duration::from_secs(2));
    for subject in &subjects {
        let sorted = |listed: Vec<BusListener>| {
            let mut keys: Vec<(String, String, Option<String>)> = listed
                .into_iter()
                .map(|l| (l.node.to_string(), l.pattern.as_str().to_owned(), l.group))
                .collect();
            keys.sort();
            keys
        };
        let first = sorted(sim.node(0).bus_listeners(subject));
        for n in 1..NODES {
            prop_assert_eq!(
                &sorted(sim.node(n).bus_listeners(subject)),
                &first,
                "node {} and node 0 on {:?}",
                n,
                subject
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn every_listing_is_as_long_as_the_count_and_converges(
        steps in proptest::collection::vec(step(), 1..40)
    ) {
        check(steps)?;
    }
}

#[test]
fn a_listing_names_each_listener_where_it_lives() {
    let mut sim = Sim::new(2, 1);
    sim.listen(0, "a.+", 1);
    sim.listen(1, "a.x", 2);
    sim.listen(1, "a.x", 3);
    let pattern = Pattern::new("a.#").expect("valid");
    sim.node(1)
        .add_group_member(pattern, "workers", 4)
        .expect("open");
    sim.run_for(Duration::from_millis(50));
    let listed = sim
        .node(0)
        .bus_listeners(&CountSubject::parse("a.x").expect("valid"));
    let keys: Vec<(bool, &str, &str, Option<&str>)> = listed
        .iter()
        .map(|l| {
            (
                l.local,
                l.node.as_str(),
                l.pattern.as_str(),
                l.group.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        keys,
        [
            (true, "n0", "a.+", None),
            (false, "n1", "a.#", Some("workers")),
            (false, "n1", "a.x", None),
            (false, "n1", "a.x", None),
        ]
    );
}

#[test]
fn responders_are_listed_on_their_own_pattern_wherever_they_are() {
    let mut sim = Sim::new(2, 1);
    for n in 0..2 {
        let pattern = Pattern::new("calc.+").expect("valid");
        sim.node(n).add_responder(pattern).expect("open");
    }
    sim.run_for(Duration::from_millis(50));
    let listed = sim
        .node(0)
        .bus_listeners(&CountSubject::responders("calc.double"));
    let keys: Vec<(bool, &str, &str)> = listed
        .iter()
        .map(|l| (l.local, l.node.as_str(), l.pattern.as_str()))
        .collect();
    assert_eq!(keys, [(true, "n0", "calc.+"), (false, "n1", "calc.+")]);
}
