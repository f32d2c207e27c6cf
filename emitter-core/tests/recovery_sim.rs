//! Recovery on the virtual clock ([`sim`]): a receiver that finds events missing asks
//! their source, which sends them again from its window; listeners get everything in
//! order; only what the window no longer has, or what does not come back in time, is
//! reported lost.

mod sim;

use std::time::Duration;

use demitter_core::node::RecoveryConfig;
use demitter_core::protocol::{Control, RepairedEvent};
use demitter_core::{ControlFrame, ErrorKind, Frame, RECOVERED, Recovered, decode_payload};
use sim::Sim;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn recovery(window_bytes: usize) -> RecoveryConfig {
    RecoveryConfig {
        window_bytes,
        window_age: Duration::from_secs(10),
        repair_deadline: ms(400),
        linger: ms(500),
    }
}

/// Two nodes, node 1 listening on `job.+` and subscribed.
fn two_nodes(recovery: RecoveryConfig, seed: u64) -> Sim {
    let mut sim = Sim::recovering(2, seed, recovery);
    sim.run_for(ms(300));
    let id = sim.listen(1, "job.+", 1);
    sim.run_until_subscribed(1, id);
    sim
}

/// The numbers node 1's listener (label 1) received, in the order it did.
fn received(sim: &Sim) -> Vec<u64> {
    sim.nodes[1]
        .received
        .iter()
        .filter(|(label, _)| *label == 1)
        .map(|(_, e)| e.seq)
        .collect()
}

fn gaps(sim: &Sim, i: usize) -> u64 {
    sim.nodes[i]
        .reports
        .iter()
        .filter(|r| r.kind == ErrorKind::Gap)
        .map(|r| r.count)
        .sum()
}

fn is_repair(frame: &Frame) -> bool {
    match frame {
        Frame::Control(control) => matches!(
            Control::decode(&control.body),
            Ok(Control::Repair { .. } | Control::Repaired { .. })
        ),
        Frame::Event(_) => false,
    }
}

fn node_0_events_3_and_4(from: usize, frame: &Frame) -> bool {
    from == 0 && matches!(frame, Frame::Event(e) if e.seq == 3 || e.seq == 4)
}

#[test]
fn events_lost_in_the_middle_come_back_in_order() {
    let mut sim = two_nodes(recovery(1 << 20), 1);
    sim.listen(1, RECOVERED, 2);
    sim.drop_frames = Some(node_0_events_3_and_4);
    sim.counting = Some(is_repair);
    for _ in 0..10 {
        sim.emit(0, "job.x");
        sim.run_for(ms(2));
    }
    sim.run_for(ms(100));
    assert_eq!(received(&sim), (1..=10).collect::<Vec<_>>());
    assert!(
        sim.nodes[1].reports.is_empty(),
        "{:?}",
        sim.nodes[1].reports
    );
    assert_eq!(sim.node(1).recovered(), 2);
    assert_eq!(sim.counted, 2, "one ask, one answer");
    let told: Vec<Recovered> = sim.nodes[1]
        .received
        .iter()
        .filter(|(label, _)| *label == 2)
        .map(|(_, e)| decode_payload(&e.payload).expect("decodes"))
        .collect();
    assert_eq!(
        told,
        [Recovered {
            peer: Sim::id(0).to_string(),
            event: "job.x".into(),
            count: 2,
        }]
    );
}

fn node_0_events_9_and_10(from: usize, frame: &Frame) -> bool {
    from == 0 && matches!(frame, Frame::Event(e) if e.seq >= 9)
}

#[test]
fn a_lost_tail_comes_back() {
    let mut sim = two_nodes(recovery(1 << 20), 2);
    sim.drop_frames = Some(node_0_events_9_and_10);
    for _ in 0..10 {
        sim.emit(0, "job.x");
    }
    // The marks (every 100 ms) tell node 1 what it missed; it asks at once.
    sim.run_for(ms(150));
    assert_eq!(received(&sim), (1..=10).collect::<Vec<_>>());
    assert!(
        sim.nodes[1].reports.is_empty(),
        "{:?}",
        sim.nodes[1].reports
    );
    assert_eq!(sim.node(1).recovered(), 2);
}

fn node_0_events_2_to_5(from: usize, frame: &Frame) -> bool {
    from == 0 && matches!(frame, Frame::Event(e) if (2..=5).contains(&e.seq))
}

#[test]
fn what_the_window_no_longer_has_is_reported_and_the_rest_delivered_in_order() {
    // Room for three events: by the time the ask comes, 2 to 5 have left it.
    let mut sim = two_nodes(recovery(3 * (64 + 5 + 1)), 3);
    sim.drop_frames = Some(node_0_events_2_to_5);
    for _ in 0..10 {
        sim.emit(0, "job.x");
    }
    sim.run_for(ms(100));
    assert_eq!(received(&sim), [1, 6, 7, 8, 9, 10]);
    assert_eq!(gaps(&sim, 1), 4);
    assert_eq!(sim.node(1).recovered(), 0);
}

fn node_0_events_3_and_4_and_every_repair(from: usize, frame: &Frame) -> bool {
    node_0_events_3_and_4(from, frame) || is_repair(frame)
}

#[test]
fn a_repair_that_never_comes_is_reported_at_the_deadline_and_what_waited_delivered() {
    let mut sim = two_nodes(recovery(1 << 20), 4);
    sim.drop_frames = Some(node_0_events_3_and_4_and_every_repair);
    for _ in 0..10 {
        sim.emit(0, "job.x");
        sim.run_for(ms(2));
    }
    sim.run_for(ms(300));
    assert_eq!(received(&sim), [1, 2], "the rest waits for the repair");
    assert!(sim.nodes[1].reports.is_empty());
    sim.run_for(ms(200));
    assert_eq!(received(&sim), [1, 2, 5, 6, 7, 8, 9, 10]);
    assert_eq!(gaps(&sim, 1), 2);
}

#[test]
fn without_recovery_a_loss_is_reported_at_once() {
    let mut sim = two_nodes(RecoveryConfig::OFF, 5);
    sim.drop_frames = Some(node_0_events_3_and_4);
    sim.counting = Some(is_repair);
    for _ in 0..10 {
        sim.emit(0, "job.x");
        sim.run_for(ms(2));
    }
    assert_eq!(received(&sim), [1, 2, 5, 6, 7, 8, 9, 10]);
    assert_eq!(gaps(&sim, 1), 2);
    assert_eq!(sim.counted, 0, "nothing asked");
}

#[test]
fn a_source_that_leaves_before_answering_leaves_its_losses_reported() {
    let mut sim = two_nodes(recovery(1 << 20), 6);
    sim.drop_frames = Some(node_0_events_3_and_4_and_every_repair);
    for _ in 0..6 {
        sim.emit(0, "job.x");
    }
    sim.run_for(ms(5));
    sim.node(0).close();
    sim.run_for(ms(20));
    assert_eq!(received(&sim), [1, 2, 5, 6]);
    assert_eq!(gaps(&sim, 1), 2);
}

#[test]
fn under_random_loss_every_event_arrives_once_in_order() {
    let mut recovered = 0;
    for seed in 0..40 {
        let mut sim = two_nodes(
            RecoveryConfig {
                repair_deadline: Duration::from_secs(3),
                ..recovery(1 << 20)
            },
            100 + seed,
        );
        sim.loss = 0.05;
        for _ in 0..200 {
            sim.emit(0, "job.x");
            sim.run_for(ms(1));
        }
        sim.loss = 0.0;
        sim.run_for(Duration::from_secs(2));
        assert_eq!(
            received(&sim),
            (1..=200).collect::<Vec<_>>(),
            "seed {seed}: {:?}",
            sim.nodes[1].reports
        );
        assert!(sim.nodes[1].reports.is_empty(), "seed {seed}");
        recovered += sim.node(1).recovered();
    }
    // About 5% of 8,000 events were lost on the way, and came back.
    assert!((200..=600).contains(&recovered), "{recovered} recovered");
}

/// Node 1 hands node 0 `message` as if from node 1.
fn from_node_1(sim: &mut Sim, message: &Control) {
    let frame = Frame::Control(ControlFrame {
        source: Sim::id(1),
        body: message.encode(),
    });
    sim.inject(0, frame);
}

fn count_answers(frame: &Frame) -> bool {
    match frame {
        Frame::Control(control) => {
            matches!(Control::decode(&control.body), Ok(Control::Repaired { .. }))
        }
        Frame::Event(_) => false,
    }
}

#[test]
fn hostile_asks_and_answers_cost_bounded_work_and_change_nothing() {
    let mut sim = two_nodes(recovery(1 << 20), 7);
    for _ in 0..5 {
        sim.emit(0, "job.x");
    }
    sim.run_for(ms(20));
    let epoch = sim.node(0).epoch();
    let asker = sim.node(1).epoch();
    sim.counting = Some(count_answers);
    // Everything a number can say, and more ranges than are read.
    let mut missing = vec![[1, u64::MAX], [0, 3], [9, 2], [u64::MAX, u64::MAX]];
    missing.extend((0..10_000).map(|i| [i + 100, i + 100]));
    from_node_1(
        &mut sim,
        &Control::Repair {
            epoch: asker,
            to: Sim::id(0).to_string(),
            of_epoch: epoch,
            name: "job.x".into(),
            missing,
        },
    );
    // An answer nobody asked for, with events for numbers never missed.
    from_node_1(
        &mut sim,
        &Control::Repaired {
            epoch: asker,
            to: Sim::id(0).to_string(),
            name: "job.x".into(),
            events: vec![RepairedEvent {
                seq: 1,
                payload: vec![0xc0],
            }],
            gone: vec![[0, u64::MAX]],
            done: true,
        },
    );
    sim.run_for(ms(20));
    assert_eq!(sim.counted, 1, "one answer, in one part");
    assert_eq!(received(&sim), [1, 2, 3, 4, 5]);
    assert!(sim.nodes[0].received.is_empty());
    assert!(
        sim.nodes[0].reports.is_empty(),
        "{:?}",
        sim.nodes[0].reports
    );
    assert!(
        sim.nodes[1].reports.is_empty(),
        "{:?}",
        sim.nodes[1].reports
    );
}

fn node_0_events_8_to_10(from: usize, frame: &Frame) -> bool {
    from == 0 && matches!(frame, Frame::Event(e) if e.seq >= 8)
}

#[test]
fn a_node_that_emits_and_leaves_lingers_until_its_last_events_are_repaired() {
    let mut sim = two_nodes(recovery(1 << 20), 8);
    // A third node that follows nothing is not waited for.
    let _ = sim.add_named("bystander");
    sim.run_for(ms(100));
    sim.drop_frames = Some(node_0_events_8_to_10);
    for _ in 0..10 {
        sim.emit(0, "job.x");
    }
    assert_eq!(sim.node(0).linger(), 1, "node 1 follows job.x");
    assert!(sim.node(0).emit(name(), bytes()).is_err(), "no new events");
    sim.run_for(ms(10));
    assert_eq!(sim.node(0).lingering_for(), 0, "node 1 has them all");
    sim.node(0).close();
    sim.run_for(ms(50));
    assert_eq!(received(&sim), (1..=10).collect::<Vec<_>>());
    assert!(
        sim.nodes[1].reports.is_empty(),
        "{:?}",
        sim.nodes[1].reports
    );
    assert_eq!(sim.node(1).recovered(), 3);
}

fn name() -> &'static str {
    "job.x"
}

fn bytes() -> bytes::Bytes {
    bytes::Bytes::from_static(&[0xc0])
}

#[test]
fn without_recovery_nothing_lingers() {
    let mut sim = two_nodes(RecoveryConfig::OFF, 9);
    sim.emit(0, "job.x");
    assert_eq!(sim.node(0).linger(), 0);
    assert!(sim.node(0).emit(name(), bytes()).is_ok());
}
