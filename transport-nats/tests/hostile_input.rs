//! Hostile messages to the NATS decoder: any subject and payload, mutated frames and plain
//! events, never panic; what is delivered is exactly what the subject and payload say (a
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

fn payloads() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        (
            prop::collection::vec((any::<usize>(), any::<u8>()), 0..6),
            any::<usize>()
        )
            .prop_map(|(edits, keep)| {
                let mut bytes = valid_frame();
                for (at, value) in edits {
                    let at = at % bytes.len();
                    bytes[at] = value;
                }
                bytes.truncate(keep % (bytes.len() + 1));
                bytes
            }),
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
        let len = payload.len();
        let parsed = BusSubject::parse(PREFIX, &subject);
        match decoder.decode(&subject, Bytes::from(payload)) {
            None => prop_assert!(
                matches!(parsed, Some(BusSubject::Control { to: Some(to), .. }) if to != "me"),
                "only control frames for another peer are skipped: {subject}"
            ),
            Some(Incoming::Frame { from, frame }) => {
                prop_assert!(len <= LIMIT);
                let sender = parsed
                    .and_then(|p| subject::unescape_segment(p.sender()))
                    .and_then(|s| NodeId::new(&s).ok());
                if authenticated {
                    prop_assert_eq!(from.as_ref(), sender.as_ref(), "from is the subject's sender");
                } else {
                    prop_assert!(from.is_none());
                }
                if !is_frame {
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
                        subject,
                        "a plain event's sender and name spell its subject"
                    );
                }
            }
            Some(Incoming::Report(report)) => prop_assert!(report.message.contains("NATS")),
            Some(other) => return Err(TestCaseError::fail(format!("unexpected {other:?}"))),
        }
    }
}
