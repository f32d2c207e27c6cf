//! Retained last values between nodes on a virtual clock ([`sim`]): a listener made
//! `with_last` gets every node's last value first, then the live events, with nothing
//! twice, nothing out of order and no false gap, even when it joins during a burst; and a
//! catch-up ends when its peers have answered or are known down.

mod sim;

use std::time::Duration;

use bytes::Bytes;
use demitter_core::protocol::{Control, RetainedValue};
use demitter_core::{ControlFrame, Error, ErrorKind, Frame, RawEvent};
use sim::{MAX_FRAME, Sim};

const SETTLE: Duration = Duration::from_millis(50);

/// Node `i` emits `value` as the retained value of `name`.
fn retain(sim: &mut Sim, i: usize, name: &str, value: u8) {
    sim.node(i)
        .emit_retained(name, Bytes::from(vec![value]))
        .expect("emits");
}

/// What listener `label` of node `i` received: (source, name, payload byte, seq).
fn got(sim: &Sim, i: usize, label: u64) -> Vec<(String, String, u8, u64)> {
    sim.nodes[i]
        .received
        .iter()
        .filter(|(l, _)| *l == label)
        .map(|(_, e): &(u64, RawEvent)| {
            (
                e.source.to_string(),
                e.name.to_string(),
                e.payload.first().copied().unwrap_or(0),
                e.seq,
            )
        })
        .collect()
}

fn entry(source: &str, name: &str, value: u8, seq: u64) -> (String, String, u8, u64) {
    (source.to_owned(), name.to_owned(), value, seq)
}

#[test]
fn a_late_listener_gets_every_nodes_last_value_first() {
    let mut sim = Sim::new(3, 1);
    sim.run_for(SETTLE);
    retain(&mut sim, 1, "temp.kitchen", 20);
    retain(&mut sim, 1, "temp.kitchen", 21);
    retain(&mut sim, 2, "temp.hall", 18);
    retain(&mut sim, 2, "temp.attic", 9);
    assert!(sim.node(2).clear_retained("temp.attic"));
    assert!(!sim.node(2).clear_retained("temp.attic"), "once");
    retain(&mut sim, 0, "temp.cellar", 12);
    retain(&mut sim, 1, "other.x", 1);
    // Plain events are not retained.
    sim.node(2)
        .emit("temp.garage", Bytes::from_static(&[5]))
        .expect("emits");
    sim.run_for(SETTLE);
    sim.listen_with_last(0, "temp.+", 7);
    assert_eq!(
        got(&sim, 0, 7),
        [],
        "nothing before the peers have answered"
    );
    sim.run_for(SETTLE);
    assert_eq!(
        got(&sim, 0, 7),
        [
            entry("n0", "temp.cellar", 12, 1),
            entry("n1", "temp.kitchen", 21, 2),
            entry("n2", "temp.hall", 18, 1),
        ]
    );
    // Then the live events.
    retain(&mut sim, 1, "temp.kitchen", 22);
    sim.run_for(SETTLE);
    assert_eq!(
        got(&sim, 0, 7).last(),
        Some(&entry("n1", "temp.kitchen", 22, 3))
    );
    assert!(
        sim.nodes[0].reports.is_empty(),
        "{:?}",
        sim.nodes[0].reports
    );
}

#[test]
fn a_listener_joining_during_a_burst_misses_nothing_and_gets_nothing_twice() {
    let mut sim = Sim::new(3, 2);
    sim.delay = Duration::from_millis(3);
    sim.run_for(SETTLE);
    // Node 0 already follows the name, so the live events are sequence-checked.
    sim.listen(0, "burst.+", 1);
    sim.run_for(SETTLE);
    let mut value = 0u8;
    for step in 0..40 {
        for _ in 0..5 {
            value = value.wrapping_add(1);
            retain(&mut sim, 1, "burst.a", value);
            sim.node(2)
                .emit("burst.b", Bytes::from(vec![value]))
                .expect("emits");
        }
        if step == 10 {
            sim.listen_with_last(0, "burst.+", 2);
        }
        sim.run_for(Duration::from_millis(1));
    }
    sim.run_for(SETTLE);
    let late = got(&sim, 0, 2);
    // First the retained value of node 1 (node 2 retains nothing), then node 1's live
    // events after it, each once, in order, up to the last.
    let a: Vec<u64> = late
        .iter()
        .filter(|(_, name, _, _)| name == "burst.a")
        .map(|e| e.3)
        .collect();
    assert_eq!(late[0].1, "burst.a", "the retained value first: {late:?}");
    assert!(a.windows(2).all(|w| w[1] == w[0] + 1), "{a:?}");
    assert_eq!(a.last(), Some(&200));
    let b: Vec<u64> = late
        .iter()
        .filter(|(_, name, _, _)| name == "burst.b")
        .map(|e| e.3)
        .collect();
    assert!(b.windows(2).all(|w| w[1] == w[0] + 1), "{b:?}");
    assert_eq!(b.last(), Some(&200));
    assert!(
        b[0] > 1,
        "live events of node 2 from the moment the listener came"
    );
    // The listener that was there all along got everything, once.
    assert_eq!(got(&sim, 0, 1).len(), 400);
    assert!(
        sim.nodes[0].reports.is_empty(),
        "{:?}",
        sim.nodes[0].reports
    );
}

#[test]
fn each_peer_is_caught_up_with_on_its_own_and_one_known_down_is_not_waited_for() {
    let mut sim = Sim::new(3, 3);
    sim.run_for(SETTLE);
    retain(&mut sim, 1, "s.one", 1);
    retain(&mut sim, 2, "s.two", 2);
    sim.run_for(SETTLE);
    sim.crash(2);
    sim.listen_with_last(0, "s.+", 1);
    retain(&mut sim, 1, "s.one", 3);
    sim.run_for(SETTLE);
    assert_eq!(
        got(&sim, 0, 1),
        [entry("n1", "s.one", 3, 2)],
        "node 1's latest value, once, without waiting for node 2: the live event it \
         covers is not repeated"
    );
    sim.run_for(sim.presence.peer_timeout * 3);
    assert_eq!(got(&sim, 0, 1).len(), 1, "nothing from the crashed node");
    assert!(
        sim.nodes[0].reports.is_empty(),
        "{:?}",
        sim.nodes[0].reports
    );
    // It comes back in a new incarnation, remembering nothing, then retains anew: the
    // listener hears of it as of any peer that comes up.
    sim.restart(2);
    retain(&mut sim, 2, "s.two", 4);
    sim.run_for(SETTLE);
    assert_eq!(got(&sim, 0, 1)[1..], [entry("n2", "s.two", 4, 1)]);
}

#[test]
fn a_listener_added_before_its_peers_are_known_gets_their_values_when_they_come() {
    let mut sim = Sim::new(3, 6);
    retain(&mut sim, 1, "early.a", 1);
    retain(&mut sim, 2, "early.b", 2);
    // At once, before node 0 has heard from anyone.
    sim.listen_with_last(0, "early.+", 1);
    assert_eq!(sim.node(0).peers().count(), 0);
    sim.run_for(SETTLE);
    let mut values = got(&sim, 0, 1);
    values.sort();
    assert_eq!(
        values,
        [entry("n1", "early.a", 1, 1), entry("n2", "early.b", 2, 1)]
    );
}

#[test]
fn answers_not_asked_for_are_refused_and_a_removed_listener_gets_nothing() {
    let mut sim = Sim::new(2, 4);
    sim.run_for(SETTLE);
    retain(&mut sim, 1, "k.a", 1);
    sim.run_for(SETTLE);
    let listener = sim.listen_with_last(0, "k.+", 1);
    // A forged answer with a name the pattern does not match, before node 1's own.
    let epoch = sim.node(1).epoch();
    let forged = Control::LastValues {
        epoch,
        to: "n0".into(),
        id: 1,
        values: vec![
            RetainedValue {
                name: "elsewhere".into(),
                seq: 1,
                payload: vec![9],
            },
            RetainedValue {
                name: "$error".into(),
                seq: 1,
                payload: vec![9],
            },
        ],
        done: false,
    };
    sim.inject(
        0,
        Frame::Control(ControlFrame {
            source: Sim::id(1),
            body: forged.encode(),
        }),
    );
    sim.run_for(SETTLE);
    assert_eq!(got(&sim, 0, 1), [entry("n1", "k.a", 1, 1)]);
    let refused: Vec<_> = sim.nodes[0]
        .reports
        .iter()
        .filter(|r| r.kind == ErrorKind::Refused)
        .map(|r| r.count)
        .collect();
    assert_eq!(refused, [2]);
    assert!(sim.node(0).remove_listener(listener).is_some());
    let again = sim.listen_with_last(0, "k.+", 2);
    sim.node(0).remove_listener(again);
    sim.run_for(SETTLE);
    assert_eq!(got(&sim, 0, 2), [], "removed before its catch-up ended");
}

#[test]
fn many_values_come_in_parts_and_too_large_a_value_is_refused() {
    let mut sim = Sim::new(2, 5);
    sim.run_for(SETTLE);
    let big = Bytes::from(vec![7u8; MAX_FRAME / 8]);
    for i in 0..20 {
        sim.node(1)
            .emit_retained(&format!("big.{i:02}"), big.clone())
            .expect("fits");
    }
    sim.run_for(SETTLE);
    sim.listen_with_last(0, "big.+", 1);
    sim.run_for(SETTLE);
    let names: Vec<String> = got(&sim, 0, 1).into_iter().map(|e| e.1).collect();
    let expected: Vec<String> = (0..20).map(|i| format!("big.{i:02}")).collect();
    assert_eq!(names, expected);
    assert!(
        sim.nodes[0].reports.is_empty(),
        "{:?}",
        sim.nodes[0].reports
    );
    assert!(matches!(
        sim.node(1)
            .emit_retained("huge", Bytes::from(vec![0u8; MAX_FRAME - 200])),
        Err(Error::FrameTooLarge { .. })
    ));
}

#[test]
fn a_live_event_lost_after_the_value_is_reported() {
    let mut sim = Sim::new(2, 7);
    sim.run_for(SETTLE);
    retain(&mut sim, 1, "g.a", 1);
    sim.run_for(SETTLE);
    sim.listen_with_last(0, "g.a", 1);
    sim.run_for(SETTLE);
    assert_eq!(got(&sim, 0, 1), [entry("n1", "g.a", 1, 1)]);
    // The next one is lost on the way; the one after arrives.
    sim.cut(0, 1);
    retain(&mut sim, 1, "g.a", 2);
    sim.run_for(Duration::from_millis(5));
    sim.heal();
    retain(&mut sim, 1, "g.a", 3);
    sim.run_for(SETTLE);
    assert_eq!(got(&sim, 0, 1)[1..], [entry("n1", "g.a", 3, 3)]);
    assert_eq!(sim.nodes[0].reported_lost(&Sim::id(1), "g.a"), 1);
}
