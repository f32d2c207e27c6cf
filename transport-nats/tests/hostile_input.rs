//! Hostile messages to the NATS decoder: any subject and payload, mutated frames, batches
//! and plain events, never panic; what is delivered is exactly what the subject and payload say (a
//! plain event's sender and name spell its subject back, an authenticated frame comes from
//! the node its subject names), and nothing over the limit gets through.

use bytes::{Bytes, BytesMut};
use demitter_core::{EventFrame, Frame, Incoming, NodeId};
use demitter_nats::decode::MessageDecoder;
use demitter_nats::subject::{self, BusSubject};
use proptest::prelude::*;

const PREFIX: &str = "p";
const LIMIT: usize = 1 << 16;

fn valid_frame() -> Vec<u8> {
    let frame = Frame::Event(EventFrame {
        name: "orders.created".into(),
        source: NodeId::new("node-a").expect("valid"),
        epoch: 1,
        seq: 2,
        payload: Bytes::from_static(b"\x91\x01"),
    });
    let mut bytes = BytesMut::new();
    frame.encode(&mut bytes);
    bytes.to_vec()
}

/// Subjects of the bus, mutated, and arbitrary ones.
fn subjects() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("node-a".to_owned()),
        Just("~".to_owned()),
        Just("~20".to_owned()),
        Just("~2E".to_owned()),
        Just("~zz".to_owned()),
        Just("$x".to_owned()),
        "[a-z~0-9A-F$]{0,5}",
    ];
    prop_oneof![
        (token.clone(), prop::collection::vec(token.clone(), 1..4))
            .prop_map(|(sender, name)| format!("{PREFIX}.e.{sender}.{}", name.join("."))),
        (token.clone(), prop::option::of(token)).prop_map(|(sender, to)| match to {
            Some(to) => format!("{PREFIX}.c.{sender}.{to}"),
            None => format!("{PREFIX}.c.{sender}"),
        }),
        "[a-z.~]{0,24}",
        any::<String>(),
    ]
}

/// A batch of `n` valid frames (`0xC1`, then each as a record).
fn valid_batch(n: usize) -> Vec<u8> {
    let mut bytes = BytesMut::from(&b"\xc1"[..]);
    for _ in 0..n {
        demitter_core::record::put_record(&mut bytes, 0, &valid_frame());
    }
    bytes.to_vec()
}

fn mutated(mut bytes: Vec<u8>, edits: Vec<(usize, u8)>, keep: usize) -> Vec<u8> {
    for (at, value) in edits {
        let at = at % bytes.len();
        bytes[at] = value;
    }
    bytes.truncate(keep % (bytes.len() + 1));
    bytes
}

fn payloads() -> impl Strategy<Value = Vec<u8>> {
    let edits = || prop::collection::vec((any::<usize>(), any::<u8>()), 0..6);
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        (edits(), any::<usize>()).prop_map(|(edits, keep)| mutated(valid_frame(), edits, keep)),
        (0..4usize, edits(), any::<usize>()).prop_map(|(n, edits, keep)| mutated(
            valid_batch(n),
            edits,
            keep
        )),
        (1..4usize).prop_map(valid_batch),
        Just(vec![0x07; LIMIT + 1]),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn what_gets_through_is_what_the_subject_and_payload_say(
        subject in subjects(),
        payload in payloads(),
        authenticated in any::<bool>(),
    ) {
        let decoder = MessageDecoder::new(PREFIX, LIMIT).for_node("me");
        let mut decoder = if authenticated { decoder.authenticated() } else { decoder };
        let is_frame = payload.starts_with(&[1, 1]) || payload.starts_with(&[1, 2]);
        let is_batch = payload.first() == Some(&0xc1);
        let len = payload.len();
        let parsed = BusSubject::parse(PREFIX, &subject);
        let mut received = Vec::new();
        decoder.decode(&subject, Bytes::from(payload), &mut received);
        if received.is_empty() {
            prop_assert!(
                matches!(parsed, Some(BusSubject::Control { to: Some(to), .. }) if to != "me"),
                "only control frames for another peer are skipped: {subject}"
            );
        }
        if !is_batch {
            prop_assert!(received.len() <= 1, "one message, one frame or report");
        }
        for item in received {
          match item {
            Incoming::Frame { from, frame } => {
                prop_assert!(len <= LIMIT || is_batch);
                prop_assert!(frame.encoded_len() <= LIMIT);
                let sender = parsed
                    .and_then(|p| subject::unescape_segment(p.sender()))
                    .and_then(|s| NodeId::new(&s).ok());
                if authenticated {
                    prop_assert_eq!(from.as_ref(), sender.as_ref(), "from is the subject's sender");
                } else {
                    prop_assert!(from.is_none());
                }
                if !is_frame && !is_batch {
                    let Frame::Event(event) = frame else {
                        return Err(TestCaseError::fail("a plain message is an event"));
                    };
                    prop_assert_eq!(event.seq, 0);
                    prop_assert_eq!(
                        format!(
                            "{PREFIX}.e.{}.{}",
                            subject::escape_segment(event.source.as_str()),
                            subject::escape_name(&event.name)
                        ),
                        subject.clone(),
                        "a plain event's sender and name spell its subject"
                    );
                }
            }
            Incoming::Report(report) => prop_assert!(report.message.contains("NATS")),
            other => return Err(TestCaseError::fail(format!("unexpected {other:?}"))),
          }
        }
    }
}
