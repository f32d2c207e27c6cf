//! The protocol on the virtual-clock bus: presence converging, a restart under the same id,
//! a lost tail whose first marks are lost too, a healed partition, and a property test over
//! random schedules of emits, losses and partitions.

mod sim;

use std::time::Duration;

use bytes::Bytes;
use proptest::prelude::*;
use sim::Sim;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn presence_converges_on_every_node() {
    let mut sim = Sim::new(3, 1);
    sim.listen(1, "order.+", 10);
    sim.listen(1, "order.+", 11);
    sim.listen(2, "order.paid", 20);
    sim.run_for(ms(50));
    for i in 0..3 {
        assert_eq!(
            sim.node(i).listener_count_of("order.paid"),
            Ok(3),
            "node {i}"
        );
        assert_eq!(sim.node(i).listener_count_of("order.+"), Ok(2), "node {i}");
        assert_eq!(sim.node(i).peers().count(), 2, "node {i}");
    }
}

#[test]
fn a_restarted_node_replaces_its_old_self() {
    let mut sim = Sim::new(2, 2);
    sim.listen(0, "$peer.+", 99);
    sim.listen(1, "job", 1);
    sim.run_for(ms(50));
    assert_eq!(sim.node(0).listener_count_of("job"), Ok(1));
    // It crashes (no goodbye) and comes back at once, listening on nothing.
    sim.crash(1);
    sim.restart(1);
    sim.run_for(ms(50));
    assert_eq!(
        sim.node(0).listener_count_of("job"),
        Ok(0),
        "the old incarnation's listener is gone"
    );
    sim.listen(1, "job", 2);
    sim.run_for(ms(50));
    assert_eq!(sim.node(0).listener_count_of("job"), Ok(1));
    let seen: Vec<String> = sim.nodes[0]
        .received
        .iter()
        .map(|(_, e)| e.name.to_string())
        .collect();
    assert_eq!(seen, ["$peer.up", "$peer.down", "$peer.up"]);
}

#[test]
fn a_lost_tail_is_reported_though_its_first_marks_are_lost_too() {
    let mut sim = Sim::new(2, 3);
    sim.listen(1, "tick", 1);
    sim.run_for(ms(50));
    sim.emit(0, "tick");
    sim.run_for(ms(50));
    // The link drops everything for 250 ms: four events and the marks of two ticks.
    sim.loss = 1.0;
    for _ in 0..4 {
        sim.emit(0, "tick");
    }
    sim.run_for(ms(250));
    assert!(sim.nodes[1].reports.is_empty(), "nothing revealed yet");
    sim.loss = 0.0;
    sim.run_for(ms(2_000));
    let source = Sim::id(0);
    assert_eq!(sim.nodes[1].received_from(&source, "tick"), 1);
    assert_eq!(sim.nodes[1].reported_lost(&source, "tick"), 4);
}

#[test]
fn a_healed_partition_reports_what_crossed_it_never() {
    let mut sim = Sim::new(3, 4);
    sim.listen(2, "price", 1);
    sim.run_for(ms(50));
    sim.emit(0, "price");
    sim.run_for(ms(50));
    sim.cut(0, 2);
    for _ in 0..10 {
        sim.emit(0, "price");
        sim.run_for(ms(100));
    }
    // Longer than the peer timeout: each side declared the other down.
    assert_eq!(sim.node(0).listener_count_of("price"), Ok(0));
    sim.heal();
    sim.emit(0, "price");
    sim.run_for(ms(1_000));
    let source = Sim::id(0);
    assert_eq!(sim.nodes[2].received_from(&source, "price"), 2);
    assert_eq!(sim.nodes[2].reported_lost(&source, "price"), 10);
    assert_eq!(sim.node(0).listener_count_of("price"), Ok(1), "counts heal");
}

#[test]
fn a_tail_lost_in_a_long_partition_is_reported_when_it_heals() {
    let mut sim = Sim::new(2, 6);
    sim.listen(1, "tick", 1);
    sim.run_for(ms(50));
    sim.emit(0, "tick");
    sim.run_for(ms(50));
    sim.cut(0, 1);
    for _ in 0..5 {
        sim.emit(0, "tick");
    }
    // Far longer than the peer timeout and than the repeats of the sender's marks.
    sim.run_for(ms(6_000));
    assert!(sim.nodes[1].reports.is_empty(), "nothing could be told yet");
    sim.heal();
    sim.run_for(ms(1_000));
    let source = Sim::id(0);
    assert_eq!(sim.nodes[1].received_from(&source, "tick"), 1);
    assert_eq!(sim.nodes[1].reported_lost(&source, "tick"), 5);
}

#[test]
fn a_run_of_emits_follows_listeners_coming_and_going() {
    let mut sim = Sim::new(2, 5);
    let emit = |sim: &mut Sim| {
        let emitted = sim
            .node(0)
            .emit("r", Bytes::from_static(&[0xc0]))
            .expect("emits");
        let local = emitted.local.map(|(_, to)| to.to_vec()).unwrap_or_default();
        (emitted.delivery.remote, local)
    };
    assert_eq!(emit(&mut sim), (0, vec![]));
    let remote = sim.listen(1, "r", 10);
    sim.run_for(ms(10));
    assert_eq!(emit(&mut sim), (1, vec![]), "a peer's new listener");
    let local = sim.listen(0, "+", 1);
    assert_eq!(emit(&mut sim), (1, vec![1]), "a new local listener");
    sim.node(1).remove_listener(remote);
    sim.run_for(ms(10));
    assert_eq!(emit(&mut sim), (0, vec![1]), "the peer's listener gone");
    sim.node(0).remove_listener(local);
    assert_eq!(emit(&mut sim), (0, vec![]), "the local one gone");
}

#[test]
fn a_run_of_received_events_follows_listeners_coming_and_going() {
    let mut sim = Sim::new(2, 6);
    let labels =
        |sim: &Sim| -> Vec<u64> { sim.nodes[1].received.iter().map(|(l, _)| *l).collect() };
    let first = sim.listen(1, "r", 1);
    sim.run_for(ms(10));
    sim.emit(0, "r");
    sim.run_for(ms(10));
    assert_eq!(labels(&sim), [1]);
    let second = sim.listen(1, "+", 2);
    sim.emit(0, "r");
    sim.run_for(ms(10));
    assert_eq!(
        labels(&sim),
        [1, 1, 2],
        "a listener added during a run of one name"
    );
    sim.node(1).remove_listener(first);
    sim.emit(0, "r");
    sim.run_for(ms(10));
    assert_eq!(labels(&sim), [1, 1, 2, 2], "the removed one gets no more");
    sim.node(1).remove_listener(second);
    sim.emit(0, "r");
    sim.run_for(ms(10));
    assert_eq!(labels(&sim).len(), 4, "nobody left");
    assert!(
        sim.nodes[1].reports.is_empty(),
        "{:?}",
        sim.nodes[1].reports
    );
}

#[derive(Debug, Clone)]
enum Step {
    Emit { node: usize, name: usize },
    Loss(u8),
    Cut(usize, usize),
    Heal,
    Run(u64),
}

const NODES: usize = 4;
const NAMES: [&str; 4] = ["a.x", "a.y", "b", "c.d.e"];

/// Emits, cuts, heals and runs; with `lossy`, random loss too.
fn step(lossy: bool) -> impl Strategy<Value = Step> {
    let loss_weight = u32::from(lossy);
    prop_oneof![
        6 => (0..NODES, 0..NAMES.len()).prop_map(|(node, name)| Step::Emit { node, name }),
        loss_weight => (0u8..=100).prop_map(Step::Loss),
        1 => (0..NODES, 0..NODES).prop_map(|(a, b)| Step::Cut(a, b)),
        1 => Just(Step::Heal),
        2 => (1u64..1_000).prop_map(Step::Run),
    ]
}

/// Runs `steps` on four nodes for at most `max_faulty` of virtual time, heals every link,
/// and checks that every receiver has, for every sender and name, received or been told it
/// lost each event sent, and that every node agrees on the counts.
fn check_schedule(seed: u64, steps: Vec<Step>, max_faulty: u64) -> Result<(), TestCaseError> {
    let mut sim = Sim::new(NODES, seed);
    for node in 0..NODES {
        sim.listen(node, "a.+", 1);
        sim.listen(node, "#", 2);
    }
    sim.run_for(ms(50));
    // Every (sender, name) starts with an event that arrives: a receiver takes the first
    // event it sees as the start.
    let mut sent = [[0u64; NAMES.len()]; NODES];
    for (node, counts) in sent.iter_mut().enumerate() {
        for (name, count) in counts.iter_mut().enumerate() {
            sim.emit(node, NAMES[name]);
            *count += 1;
        }
    }
    sim.run_for(ms(50));
    let mut faulty = 0;
    for step in steps {
        match step {
            Step::Emit { node, name } => {
                sim.emit(node, NAMES[name]);
                sent[node][name] += 1;
            }
            Step::Loss(p) => sim.loss = f64::from(p) / 100.0,
            Step::Cut(a, b) if a != b => sim.cut(a, b),
            Step::Heal => sim.heal(),
            Step::Run(t) if faulty + t <= max_faulty => {
                faulty += t;
                sim.run_for(ms(t));
            }
            Step::Cut(..) | Step::Run(_) => {}
        }
    }
    sim.heal();
    sim.loss = 0.0;
    sim.run_for(ms(5_000));
    for (r, receiver) in sim.nodes.iter().enumerate() {
        for (s, counts) in sent.iter().enumerate().filter(|(s, _)| *s != r) {
            let source = Sim::id(s);
            for (name, &count) in counts.iter().enumerate() {
                let listeners = if NAMES[name].starts_with("a.") { 2 } else { 1 };
                let received = receiver.received_from(&source, NAMES[name]) as u64;
                let lost = receiver.reported_lost(&source, NAMES[name]);
                prop_assert_eq!(
                    received + lost * listeners,
                    count * listeners,
                    "node {} from node {}, `{}`",
                    r,
                    s,
                    NAMES[name]
                );
            }
        }
    }
    for i in 0..NODES {
        prop_assert_eq!(sim.node(i).listener_count_of("a.x"), Ok(2 * NODES));
        prop_assert_eq!(sim.node(i).listener_count_of("b"), Ok(NODES));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Lossy links and partitions for up to 2.5 s: less than the senders' marks repeat
    /// over (about 3 s), so one of them gets through.
    #[test]
    fn every_event_is_received_or_reported_on_lossy_links(
        seed: u64,
        steps in prop::collection::vec(step(true), 1..40),
    ) {
        check_schedule(seed, steps, 2_500)?;
    }

    /// Partitions of any length (up to 20 s here): a peer that comes back is sent every
    /// last number at once.
    #[test]
    fn every_event_is_received_or_reported_across_long_partitions(
        seed: u64,
        steps in prop::collection::vec(step(false), 1..40),
    ) {
        check_schedule(seed, steps, 20_000)?;
    }
}
