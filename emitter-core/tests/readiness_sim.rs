//! A node that knows when it has heard the bus, on the virtual clock: a short-lived emitter
//! that waits for `readiness().ready` reaches every listener and counts them all, and a
//! node that hears of a peer without its interest waits for it.

mod sim;

use std::time::Duration;

use bytes::Bytes;
use sim::Sim;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Runs the bus in steps of 1 ms until node `i` has heard it; how long that took.
fn run_until_ready(sim: &mut Sim, i: usize) -> Duration {
    let start = sim.now;
    while !sim.node(i).readiness().ready {
        assert!(
            sim.now - start < Duration::from_secs(5),
            "node {i} never heard the bus: {:?}",
            sim.node(i).readiness()
        );
        sim.run_for(ms(1));
    }
    sim.now - start
}

#[test]
fn twenty_short_lived_emitters_reach_all_three_listeners() {
    let mut sim = Sim::new(4, 7);
    for i in 1..4 {
        sim.listen(i, "job.+", i as u64);
    }
    sim.run_for(ms(300));
    let emitter = Sim::id(0);
    for round in 0..20 {
        // A fresh process each time: a new incarnation that knows nothing.
        sim.restart(0);
        assert!(!sim.node(0).readiness().ready, "round {round}: not at once");
        let took = run_until_ready(&mut sim, 0);
        // No census on a broadcast bus: one heartbeat interval and a quarter.
        assert!(
            took >= ms(125) && took <= ms(130),
            "round {round}: {took:?}"
        );
        let delivery = sim
            .node(0)
            .emit("job.x", Bytes::from_static(&[0xc0]))
            .expect("emits")
            .delivery;
        assert_eq!(
            (delivery.remote, delivery.unheard, delivery.ready),
            (3, 0, true),
            "round {round}"
        );
        sim.node(0).close();
        sim.run_for(ms(20));
        sim.crash(0);
    }
    for i in 1..4 {
        assert_eq!(
            sim.nodes[i].received_from(&emitter, "job.x"),
            20,
            "node {i}"
        );
        assert!(
            sim.nodes[i].reports.is_empty(),
            "{:?}",
            sim.nodes[i].reports
        );
    }
}

#[test]
fn an_emit_before_the_bus_is_heard_says_so() {
    let mut sim = Sim::new(2, 8);
    sim.listen(1, "job.+", 1);
    sim.run_for(ms(300));
    sim.restart(0);
    let delivery = sim
        .node(0)
        .emit("job.x", Bytes::from_static(&[0xc0]))
        .expect("emits")
        .delivery;
    assert_eq!((delivery.remote, delivery.ready), (0, false));
    run_until_ready(&mut sim, 0);
    // Each change was dispatched as it happened: the last one is where the node stands.
    sim.run_for(ms(1));
    let last = sim.nodes[0].readiness.last().copied();
    assert_eq!(last.map(|r| (r.ready, r.unheard)), Some((true, 0)));
    assert_eq!(last, Some(sim.node(0).readiness()));
}

#[test]
fn a_peer_heard_without_its_interest_is_waited_for() {
    let mut sim = Sim::new(2, 9);
    sim.listen(1, "job.+", 1);
    sim.run_for(ms(300));
    // Node 0 restarts while every frame from node 1 is lost: it hears nobody.
    sim.restart(0);
    sim.cut(0, 1);
    run_until_ready(&mut sim, 0);
    assert_eq!(sim.node(0).listener_count_of("job.x"), Ok(0));
    // The link heals: node 1's next heartbeat makes it known before its interest is, and
    // node 0 waits for that interest (asked for at once) before it is ready again.
    sim.heal();
    let before = sim.nodes[0].readiness.len();
    run_until_ready_after_change(&mut sim, 0, before);
    let changes = &sim.nodes[0].readiness[before..];
    assert!(
        changes.iter().any(|r| !r.ready && r.unheard == 1),
        "{changes:?}"
    );
    assert_eq!(sim.node(0).listener_count_of("job.x"), Ok(1));
}

/// Runs until node `i` reported a readiness change after the `seen` first ones and is
/// ready again.
fn run_until_ready_after_change(sim: &mut Sim, i: usize, seen: usize) {
    let start = sim.now;
    while sim.nodes[i].readiness.len() == seen || !sim.node(i).readiness().ready {
        assert!(
            sim.now - start < Duration::from_secs(5),
            "node {i} never heard the peer"
        );
        sim.run_for(ms(1));
    }
}
