//! Two live nodes with one id, on the virtual clock: the newer gives way with
//! `Error::DuplicateId`, the older is told, nothing the newer sent is dropped without a
//! report, and a restart after a goodbye is no duplicate.

mod sim;

use std::time::Duration;

use bytes::Bytes;
use demitter_core::{Error, ErrorKind};
use sim::Sim;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn refusals(sim: &Sim, i: usize) -> u64 {
    sim.nodes[i]
        .reports
        .iter()
        .filter(|r| r.kind == ErrorKind::Refused)
        .map(|r| r.count)
        .sum()
}

#[test]
fn a_second_node_with_a_running_nodes_id_gives_way_within_a_heartbeat() {
    let mut sim = Sim::new(2, 11);
    sim.listen(0, "job.+", 1);
    sim.run_for(ms(500));
    let dup = sim.add_named("n0");
    // It emits at once, before it knows: the older node drops that event, and says so.
    sim.node(dup)
        .emit("job.x", Bytes::from_static(&[0xc0]))
        .expect("not refused yet");
    // One heartbeat interval (100 ms here) at most.
    sim.run_for(ms(100));
    assert!(sim.node(dup).readiness().refused);
    match sim.node(dup).emit("job.x", Bytes::from_static(&[0xc0])) {
        Err(Error::DuplicateId { id, .. }) => assert_eq!(id, "n0"),
        other => panic!("expected DuplicateId, got {other:?}"),
    }
    assert!(refusals(&sim, dup) >= 1, "the newer one hears why");
    assert!(!sim.node(0).is_closed(), "the older one goes on");
    assert_eq!(
        refusals(&sim, 0),
        2,
        "the older one is told of the newcomer and of its event: {:?}",
        sim.nodes[0].reports
    );
    assert!(sim.nodes[0].received.is_empty());
    // The bus settles on the older node: its listener is counted again.
    sim.run_for(ms(600));
    assert_eq!(sim.node(1).listener_count_of("job.x"), Ok(1));
}

#[test]
fn two_nodes_started_together_with_one_id_leave_exactly_one() {
    for seed in 0..20 {
        let mut sim = Sim::new(1, seed);
        let (a, b) = (sim.add_named("dup"), sim.add_named("dup"));
        sim.run_for(ms(300));
        let refused = [a, b].map(|i| sim.node(i).readiness().refused);
        assert_eq!(
            refused.iter().filter(|r| **r).count(),
            1,
            "seed {seed}: {refused:?}"
        );
    }
}

#[test]
fn a_node_restarted_after_its_goodbye_is_no_duplicate() {
    let mut sim = Sim::new(2, 12);
    sim.run_for(ms(300));
    sim.node(0).close();
    sim.run_for(ms(5));
    sim.restart(0);
    sim.run_for(ms(500));
    assert!(!sim.node(0).readiness().refused);
    assert!(sim.node(0).readiness().ready);
    assert_eq!(refusals(&sim, 0), 0);
}

#[test]
fn a_node_the_transport_finds_a_namesake_for_gives_way_naming_where_it_is() {
    let mut sim = Sim::new(2, 13);
    sim.listen(1, "job.+", 1);
    sim.run_for(ms(300));
    let now = sim.now;
    sim.node(0).handle_incoming(
        now,
        demitter_core::Incoming::DuplicateId {
            address: Some("127.0.0.1:4816".into()),
        },
    );
    sim.run_for(ms(50));
    assert!(sim.node(0).readiness().refused);
    match sim.node(0).emit("job.x", Bytes::from_static(&[0xc0])) {
        Err(Error::DuplicateId { id, address }) => {
            assert_eq!(id, "n0");
            assert_eq!(address.as_deref(), Some("127.0.0.1:4816"));
        }
        other => panic!("expected DuplicateId, got {other:?}"),
    }
    assert_eq!(refusals(&sim, 0), 1, "{:?}", sim.nodes[0].reports);
    // It said goodbye: the other node no longer waits for it.
    assert!(sim.node(1).readiness().ready);
}
