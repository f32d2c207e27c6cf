//! Request/reply between nodes on a virtual clock ([`sim`]): requests rotate among the
//! nodes that serve, replies reach the requester alone and only from the node asked, and
//! each failure (no responder, lost, timed out) comes when it is known, deterministically.

mod sim;

use std::time::Duration;

use demitter_core::node::RequestFailure;
use demitter_core::protocol::{Control, ReplyOutcome};
use demitter_core::{ControlFrame, Error, ErrorKind, Frame, Pattern};
use sim::Sim;

const SETTLE: Duration = Duration::from_millis(50);
const PATIENT: Duration = Duration::from_secs(60);

/// Node `i` requests `name`.
fn request(sim: &mut Sim, i: usize, name: &str, timeout: Duration) -> Result<u64, Error> {
    let now = sim.now;
    sim.node(i).request(now, name, b"\xc0", timeout)
}

/// Node `i` answers every request it holds with its own index.
fn answer_all(sim: &mut Sim, i: usize) {
    let requests = std::mem::take(&mut sim.nodes[i].requests);
    for request in requests {
        sim.node(i).reply(
            &request.from,
            request.id,
            ReplyOutcome::Value(vec![i as u8]),
        );
    }
}

#[test]
fn requests_rotate_and_replies_come_from_the_node_asked() {
    let mut sim = Sim::new(3, 1);
    for i in [1, 2] {
        sim.node(i)
            .add_responder(Pattern::new("stock.+").expect("valid"))
            .expect("open");
    }
    sim.run_for(SETTLE);
    assert_eq!(sim.node(0).responder_count("stock.count"), 2);
    assert_eq!(sim.node(0).responder_count("other"), 0);
    let mut asked = Vec::new();
    for _ in 0..4 {
        let id = request(&mut sim, 0, "stock.count", PATIENT).expect("a responder is known");
        sim.run_for(SETTLE);
        for i in [1, 2] {
            if !sim.nodes[i].requests.is_empty() {
                asked.push(i);
            }
            answer_all(&mut sim, i);
        }
        sim.run_for(SETTLE);
        let (got, result) = sim.nodes[0].replies.pop().expect("a reply");
        let reply = result.expect("answered");
        assert_eq!(got, id);
        assert_eq!(reply.source, Sim::id(asked[asked.len() - 1]));
        assert_eq!(&reply.payload[..], [asked[asked.len() - 1] as u8]);
    }
    assert_eq!(asked, [2, 1, 2, 1], "in turn, one responder each time");
    assert!(sim.nodes[1].replies.is_empty() && sim.nodes[2].replies.is_empty());
}

#[test]
fn a_reply_from_a_node_not_asked_or_too_late_is_ignored() {
    let mut sim = Sim::new(3, 2);
    sim.node(1)
        .add_responder(Pattern::new("q").expect("valid"))
        .expect("open");
    sim.run_for(SETTLE);
    let id = request(&mut sim, 0, "q", Duration::from_millis(200)).expect("known");
    // Node 2, which was not asked, answers first.
    let forged = Control::Reply {
        epoch: sim.node(2).epoch(),
        to: "n0".into(),
        id,
        outcome: ReplyOutcome::Value(vec![66]),
    };
    sim.inject(
        0,
        Frame::Control(ControlFrame {
            source: Sim::id(2),
            body: forged.encode(),
        }),
    );
    sim.run_for(SETTLE);
    assert!(
        sim.nodes[0].replies.is_empty(),
        "only the node asked may answer"
    );
    sim.run_for(Duration::from_millis(200));
    let (got, result) = sim.nodes[0].replies.pop().expect("an outcome");
    assert_eq!(got, id);
    assert_eq!(
        result.map(|_| ()),
        Err(RequestFailure::TimedOut {
            after: Duration::from_millis(200)
        })
    );
    // The answer, late: nobody waits for it.
    answer_all(&mut sim, 1);
    sim.run_for(SETTLE);
    assert!(sim.nodes[0].replies.is_empty());
}

#[test]
fn failures_come_when_they_are_known() {
    let mut sim = Sim::new(2, 3);
    assert!(matches!(
        request(&mut sim, 0, "q", PATIENT),
        Err(Error::NoResponder { .. })
    ));
    sim.node(1)
        .add_responder(Pattern::new("q").expect("valid"))
        .expect("open");
    sim.run_for(SETTLE);
    let id = request(&mut sim, 0, "q", PATIENT).expect("known");
    sim.run_for(SETTLE);
    assert_eq!(sim.nodes[1].requests.len(), 1, "the responder has it");
    sim.crash(1);
    let timeout = sim.presence.peer_timeout;
    sim.run_for(timeout + timeout / 2);
    let (got, result) = sim.nodes[0].replies.pop().expect("an outcome");
    assert_eq!(got, id);
    assert_eq!(
        result.map(|_| ()),
        Err(RequestFailure::Lost {
            responder: Sim::id(1)
        }),
        "lost as soon as the peer is declared down, long before the timeout"
    );
    assert_eq!(
        sim.node(0).responder_count("q"),
        0,
        "its responder is gone too"
    );
}

#[test]
fn a_request_for_a_system_name_is_refused_and_reported() {
    let mut sim = Sim::new(2, 4);
    sim.node(1)
        .add_responder(Pattern::new("#").expect("valid"))
        .expect("open");
    sim.run_for(SETTLE);
    let hostile = Control::Request {
        epoch: sim.node(0).epoch(),
        to: "n1".into(),
        id: 9,
        name: "$peer.up".into(),
        payload: Vec::new(),
    };
    sim.inject(
        1,
        Frame::Control(ControlFrame {
            source: Sim::id(0),
            body: hostile.encode(),
        }),
    );
    sim.run_for(SETTLE);
    assert!(sim.nodes[1].requests.is_empty(), "no responder runs on it");
    assert!(
        sim.nodes[1]
            .reports
            .iter()
            .any(|r| r.kind == ErrorKind::Deserialization),
        "{:?}",
        sim.nodes[1].reports
    );
}
