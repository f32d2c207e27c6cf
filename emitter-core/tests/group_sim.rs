//! Listener groups between nodes on a virtual clock ([`sim`]): each event reaches one
//! member of each group, members share alike wherever they are, a group counts once in
//! what `emit` reached, and what a lost member's node never took, or what never arrived,
//! is reported.

mod sim;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use demitter_core::{Delivery, Error, ErrorKind, Pattern};
use sim::Sim;

const SETTLE: Duration = Duration::from_millis(50);

/// Adds a member labelled `label` of `group` on node `i`.
fn join(sim: &mut Sim, i: usize, group: &str, pattern: &str, label: u64) -> u64 {
    let pattern = Pattern::new(pattern).expect("valid");
    sim.node(i)
        .add_group_member(pattern, group, label)
        .expect("open")
}

/// Node `i` emits `name`; what it reached.
fn emit(sim: &mut Sim, i: usize, name: &str) -> Delivery {
    sim.node(i)
        .emit(name, Bytes::from_static(&[0xc0]))
        .expect("emits")
        .delivery
}

/// How many events each label received on node `i`.
fn per_label(sim: &Sim, i: usize) -> BTreeMap<u64, usize> {
    let mut counts = BTreeMap::new();
    for (label, _) in &sim.nodes[i].received {
        *counts.entry(*label).or_insert(0) += 1;
    }
    counts
}

#[test]
fn each_event_reaches_one_member_and_members_share_alike() {
    let mut sim = Sim::new(4, 1);
    join(&mut sim, 1, "w", "job.+", 1);
    join(&mut sim, 2, "w", "job.+", 2);
    join(&mut sim, 2, "w", "job.#", 3);
    sim.listen(3, "job.+", 4);
    sim.run_for(SETTLE);
    assert_eq!(sim.node(0).listener_count_of("job.x").expect("valid"), 4);
    assert_eq!(
        sim.node(0).group_members("job.x"),
        BTreeMap::from([("w".to_owned(), 3)])
    );
    for _ in 0..90 {
        let reached = emit(&mut sim, 0, "job.x");
        assert_eq!(
            (reached.local, reached.remote),
            (0, 2),
            "the group once, the listener outside it once"
        );
    }
    sim.run_for(SETTLE);
    assert_eq!(per_label(&sim, 1), BTreeMap::from([(1, 30)]));
    assert_eq!(per_label(&sim, 2), BTreeMap::from([(2, 30), (3, 30)]));
    assert_eq!(per_label(&sim, 3), BTreeMap::from([(4, 90)]));
    // Every event once among the members, each with its own sequence number.
    let mut seqs: Vec<u64> = [1, 2]
        .iter()
        .flat_map(|&i| sim.nodes[i].received.iter().map(|(_, e)| e.seq))
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=90).collect::<Vec<_>>());
    for i in 0..4 {
        assert!(
            sim.nodes[i].reports.is_empty(),
            "{:?}",
            sim.nodes[i].reports
        );
    }
}

#[test]
fn a_member_on_the_emitting_node_takes_its_turn() {
    let mut sim = Sim::new(2, 2);
    join(&mut sim, 0, "w", "job", 1);
    join(&mut sim, 1, "w", "job", 2);
    sim.run_for(SETTLE);
    let reached: Vec<(usize, usize)> = (0..4)
        .map(|_| {
            let d = emit(&mut sim, 0, "job");
            (d.local, d.remote)
        })
        .collect();
    assert_eq!(reached, [(0, 1), (1, 0), (0, 1), (1, 0)]);
    sim.run_for(SETTLE);
    assert_eq!(per_label(&sim, 0), BTreeMap::from([(1, 2)]));
    assert_eq!(per_label(&sim, 1), BTreeMap::from([(2, 2)]));
}

#[test]
fn a_lost_members_share_goes_to_the_others_and_what_it_never_took_is_reported() {
    let mut sim = Sim::new(3, 3);
    join(&mut sim, 1, "w", "job", 1);
    join(&mut sim, 2, "w", "job", 2);
    sim.run_for(SETTLE);
    let mut emitted = 0;
    for step in 0..400 {
        emit(&mut sim, 0, "job");
        emitted += 1;
        if step == 100 {
            sim.crash(2);
        }
        sim.run_for(Duration::from_millis(5));
    }
    sim.run_for(SETTLE);
    let to_1 = sim.nodes[1].received.len();
    let to_2 = sim.nodes[2].received.len();
    let reported: u64 = sim.nodes[0]
        .reports
        .iter()
        .filter(|r| r.kind == ErrorKind::Network && r.peer.as_deref() == Some("n2"))
        .map(|r| r.count)
        .sum();
    assert!(
        reported > 0,
        "what was in flight to the lost node is reported"
    );
    assert!(to_1 + to_2 <= emitted, "nothing twice");
    assert!(
        to_1 + to_2 + reported as usize >= emitted,
        "every event reached a member or is reported: {to_1} + {to_2} + {reported} < {emitted}"
    );
    // What went to it from its last acknowledgement (at most one mark interval, 100 ms,
    // before the crash) until it was declared down (the peer timeout after): half of one
    // emit every 5 ms.
    let window = sim.presence.peer_timeout + Duration::from_millis(100);
    let bound = (window.as_millis() / 5 / 2 + 2) as u64;
    assert!(
        reported <= bound,
        "no more than was sent to it since its last acknowledgement: {reported} > {bound}"
    );
    // Once it is known down, node 1 takes everything.
    let before = sim.nodes[1].received.len();
    for _ in 0..10 {
        emit(&mut sim, 0, "job");
    }
    sim.run_for(SETTLE);
    assert_eq!(sim.nodes[1].received.len(), before + 10);
}

#[test]
fn a_group_event_lost_on_the_way_or_come_too_late_is_reported() {
    let mut sim = Sim::new(2, 4);
    let member = join(&mut sim, 1, "w", "job", 1);
    sim.run_for(SETTLE);
    emit(&mut sim, 0, "job");
    sim.run_for(SETTLE);
    sim.cut(0, 1);
    emit(&mut sim, 0, "job");
    sim.run_for(Duration::from_millis(5));
    sim.heal();
    emit(&mut sim, 0, "job");
    sim.run_for(SETTLE);
    assert_eq!(sim.nodes[1].received.len(), 2);
    let gaps: Vec<u64> = sim.nodes[1]
        .reports
        .iter()
        .filter(|r| r.kind == ErrorKind::Gap)
        .map(|r| r.count)
        .collect();
    assert_eq!(gaps, [1]);
    // The member leaves as an event for it is on its way: the node says it dropped it.
    emit(&mut sim, 0, "job");
    sim.node(1).remove_listener(member);
    sim.run_for(SETTLE);
    assert!(
        sim.nodes[1]
            .reports
            .iter()
            .any(|r| r.kind == ErrorKind::Emission && r.message.contains("no longer has a member")),
        "{:?}",
        sim.nodes[1].reports
    );
    assert_eq!(sim.node(0).listener_count_of("job").expect("valid"), 0);
    assert_eq!(emit(&mut sim, 0, "job").remote, 0, "no member left");
}

#[test]
fn bad_group_names_and_system_patterns_are_refused() {
    let mut sim = Sim::new(1, 5);
    for bad in ["", "a.b", "a+", "$x"] {
        assert!(matches!(
            sim.node(0)
                .add_group_member(Pattern::new("job").expect("valid"), bad, 1),
            Err(Error::InvalidGroup { .. })
        ));
    }
    assert!(matches!(
        sim.node(0)
            .add_group_member(Pattern::new("$error").expect("valid"), "w", 1),
        Err(Error::ReservedName(_))
    ));
}

#[test]
fn the_lost_tail_of_a_burst_is_reported_and_the_sender_does_not_count_it_again() {
    let mut sim = Sim::new(2, 6);
    join(&mut sim, 1, "w", "job", 1);
    sim.run_for(SETTLE);
    emit(&mut sim, 0, "job");
    sim.run_for(SETTLE);
    // The last two of the burst are lost, and so is the mark right after them; no later
    // event reveals them.
    sim.cut(0, 1);
    emit(&mut sim, 0, "job");
    emit(&mut sim, 0, "job");
    sim.run_for(Duration::from_millis(150));
    sim.heal();
    sim.run_for(Duration::from_millis(300));
    assert_eq!(sim.nodes[1].received.len(), 1);
    let gaps: u64 = sim.nodes[1]
        .reports
        .iter()
        .filter(|r| r.kind == ErrorKind::Gap)
        .map(|r| r.count)
        .sum();
    assert_eq!(gaps, 2, "{:?}", sim.nodes[1].reports);
    // Acknowledged as reported: the sender has nothing left to report if node 1 goes.
    sim.crash(1);
    sim.run_for(sim.presence.peer_timeout * 2);
    assert!(
        !sim.nodes[0]
            .reports
            .iter()
            .any(|r| r.message.contains("not taken before it was lost")),
        "{:?}",
        sim.nodes[0].reports
    );
}

#[test]
fn listeners_members_and_responders_on_one_pattern_are_told_apart() {
    let mut sim = Sim::new(2, 5);
    sim.listen(1, "job.+", 1);
    join(&mut sim, 1, "w", "job.+", 2);
    sim.node(1)
        .add_responder(Pattern::new("job.+").expect("valid"))
        .expect("open");
    // Listeners on patterns that spell what groups and responders were once announced
    // as: plain listeners, whatever they look like.
    sim.listen(1, "$group.w.job.+", 3);
    sim.listen(1, "$serve.job.+", 4);
    sim.run_for(SETTLE);
    let node = sim.node(0);
    assert_eq!(
        node.listener_count_of("job.x").expect("valid"),
        2,
        "the listener and the member"
    );
    assert_eq!(
        node.group_members("job.x"),
        BTreeMap::from([("w".to_owned(), 1)])
    );
    assert_eq!(node.responder_count("job.x"), 1);
    assert_eq!(node.listener_count_of("$group.w.job.x").expect("valid"), 1);
    assert_eq!(node.responder_count("$group.w.job.x"), 0);
    for _ in 0..3 {
        let reached = emit(&mut sim, 0, "job.x");
        assert_eq!((reached.local, reached.remote), (0, 2));
    }
    sim.run_for(SETTLE);
    assert_eq!(per_label(&sim, 1), BTreeMap::from([(1, 3), (2, 3)]));
    for i in 0..2 {
        assert!(
            sim.nodes[i].reports.is_empty(),
            "{:?}",
            sim.nodes[i].reports
        );
    }
}
