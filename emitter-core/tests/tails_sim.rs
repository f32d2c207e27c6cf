//! The tail of a burst on the virtual clock: a name's last events are reported lost even
//! when every repeat of its marks is lost for a long time while the link stays up (the
//! receiver asks, when a heartbeat names an announcement it missed); and asking costs
//! nothing once nothing is missed.

mod sim;

use std::time::Duration;

use demitter_core::Frame;
use demitter_core::protocol::Control;
use sim::Sim;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn decoded(frame: &Frame) -> Option<Control> {
    match frame {
        Frame::Control(control) => Control::decode(&control.body).ok(),
        Frame::Event(_) => None,
    }
}

/// Node 0's events, marks and answers of marks are lost; its heartbeats are not.
fn tail_of_node_0(from: usize, frame: &Frame) -> bool {
    from == 0
        && match frame {
            Frame::Event(_) => true,
            Frame::Control(_) => matches!(
                decoded(frame),
                Some(Control::Sequences { .. } | Control::Marks { .. })
            ),
        }
}

#[test]
fn a_tail_whose_marks_are_all_lost_for_ten_seconds_is_reported() {
    let mut sim = Sim::new(2, 41);
    sim.run_for(ms(300));
    let id = sim.listen(1, "job.+", 1);
    sim.run_until_subscribed(1, id);
    sim.emit(0, "job.x");
    sim.run_for(ms(50));
    assert_eq!(sim.nodes[1].received.len(), 1);
    // The tail, and every mark of it for ten seconds (the repeats end after about 3 s).
    sim.drop_frames = Some(tail_of_node_0);
    sim.counting = Some(is_ask);
    for _ in 0..3 {
        sim.emit(0, "job.x");
    }
    sim.run_for(ms(10_000));
    assert!(sim.nodes[1].reports.is_empty(), "nothing could tell yet");
    // One ask per heartbeat of node 0's (every 100 ms) at most.
    assert!(
        (90..=101).contains(&sim.counted),
        "{} asks in 10 s",
        sim.counted
    );
    // The link stayed up all along.
    assert_eq!(sim.node(1).readiness().unheard, 0);
    sim.drop_frames = None;
    // Within a heartbeat and a link's delay, node 1 asks again and hears.
    sim.run_for(ms(110));
    let source = Sim::id(0);
    assert_eq!(sim.nodes[1].received_from(&source, "job.x"), 1);
    assert_eq!(sim.nodes[1].reported_lost(&source, "job.x"), 3);
}

#[test]
fn nothing_is_asked_when_nothing_was_missed() {
    let mut sim = Sim::new(3, 42);
    sim.run_for(ms(300));
    for i in 0..3 {
        let id = sim.listen(i, "#", 1);
        sim.run_until_subscribed(i, id);
    }
    sim.counting = Some(is_ask);
    for round in 0..20 {
        sim.emit(round % 3, "job.x");
        sim.emit(round % 3, &format!("job.{round}"));
        sim.run_for(ms(150));
    }
    sim.run_for(ms(5_000));
    assert_eq!(sim.counted, 0, "no announcement was missed");
    for n in &sim.nodes {
        assert!(n.reports.is_empty(), "{:?}", n.reports);
    }
}

fn is_ask(frame: &Frame) -> bool {
    matches!(decoded(frame), Some(Control::MarksRequest { .. }))
}
