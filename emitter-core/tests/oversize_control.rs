//! A control message the node builds is held to the transport's frame limit, as events
//! are: one that would exceed it is not transmitted, and the refusal is reported.

use std::time::Instant;

use demitter_core::node::{Dispatch, ListenerFlags, Node, NodeConfig, Transmit};
use demitter_core::{Capabilities, ErrorKind, Incoming, NodeId, Pattern};

const LIMIT: usize = 512;

fn node(id: &str, now: Instant) -> Node<()> {
    let id = NodeId::new(id).expect("a valid id");
    Node::new(NodeConfig::new(id, Capabilities::broadcast(LIMIT)), now)
}

#[test]
fn a_snapshot_over_the_frame_limit_is_reported_not_sent() {
    let now = Instant::now();
    let mut big = node("big", now);
    let mut newcomer = node("newcomer", now);
    // Each listener goes out as a small delta; together they outgrow one frame.
    for i in 0..40 {
        let pattern =
            Pattern::new(&format!("a.rather.long.pattern.name.{i:03}.#")).expect("a valid pattern");
        big.add_listener(pattern, ListenerFlags::default(), ())
            .expect("added");
    }
    let mut sizes = Vec::new();
    while let Some(t) = big.poll_transmit() {
        if let Transmit::Frame { frame, .. } = t {
            sizes.push(frame.encoded_len());
        }
    }
    assert!(
        !sizes.is_empty() && sizes.iter().all(|s| *s <= LIMIT),
        "{sizes:?}"
    );
    while big.poll_dispatch().is_some() {}

    // The newcomer's hello asks for the whole interest: one snapshot, too large.
    while let Some(t) = newcomer.poll_transmit() {
        if let Transmit::Frame { frame, .. } = t {
            big.handle_incoming(now, Incoming::Frame { from: None, frame });
        }
    }
    while let Some(t) = big.poll_transmit() {
        if let Transmit::Frame { frame, .. } = t {
            assert!(
                frame.encoded_len() <= LIMIT,
                "sent {} bytes",
                frame.encoded_len()
            );
        }
    }
    let reports: Vec<_> = std::iter::from_fn(|| big.poll_dispatch())
        .filter_map(|d| match d {
            Dispatch::Report(report) => Some(report),
            _ => None,
        })
        .collect();
    assert!(
        reports
            .iter()
            .any(|r| r.kind == ErrorKind::Emission && r.message.contains("was not sent")),
        "{reports:?}"
    );
}
