//! Hostile input to the core's decoders: arbitrary and mutated bytes as frames, frame
//! streams, control messages and payloads (typed and dynamic) never panic, are refused past
//! the size limit, and what does decode is a frame that encodes back to itself.

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use demitter_core::protocol::{
    Control, InterestEntry, RepairedEvent, ReplyOutcome, Role, SequenceMark,
};
use demitter_core::record::RecordDecoder;
use demitter_core::{ControlFrame, Error, EventFrame, Frame, NodeId, RawPayload, decode_payload};
use proptest::prelude::*;

const LIMIT: usize = 4096;

fn event_frame(payload: &[u8]) -> Frame {
    Frame::Event(EventFrame {
        name: "orders.created".into(),
        source: NodeId::new("node-a").expect("valid"),
        epoch: 7,
        seq: 42,
        payload: Bytes::copy_from_slice(payload),
    })
}

fn control_bytes() -> Vec<Bytes> {
    let entry = InterestEntry {
        pattern: "orders.+".into(),
        count: 2,
        since: 0,
        role: Role::Listen,
    };
    let members = InterestEntry {
        pattern: "jobs.#".into(),
        count: 1,
        since: 1,
        role: Role::Group("workers".into()),
    };
    let responders = InterestEntry {
        pattern: "calc.+".into(),
        count: 1,
        since: 2,
        role: Role::Serve,
    };
    [
        Control::Hello {
            epoch: 1,
            version: 2,
            interest: vec![entry.clone(), members, responders],
        },
        Control::Snapshot {
            epoch: 1,
            version: 3,
            interest: vec![entry],
        },
        Control::Delta {
            epoch: 1,
            version: 4,
            pattern: "x.#".into(),
            count: None,
            since: 0,
            role: Role::Listen,
        },
        Control::Delta {
            epoch: 1,
            version: 5,
            pattern: "y.+".into(),
            count: Some(1),
            since: 5,
            role: Role::Group("g".into()),
        },
        Control::Sequences {
            epoch: 1,
            last: vec![SequenceMark {
                name: "orders.created".into(),
                seq: 9,
            }],
            moved: 3,
        },
        Control::MarksRequest {
            epoch: 1,
            to: "node-b".into(),
            after: 2,
        },
        Control::Marks {
            epoch: 1,
            to: "node-b".into(),
            after: 2,
            moved: 3,
            last: vec![SequenceMark {
                name: "orders.created".into(),
                seq: 9,
            }],
        },
        Control::Bye { epoch: 1 },
        Control::Request {
            epoch: 1,
            to: "node-b".into(),
            id: 7,
            name: "stock.count".into(),
            payload: b"\xa6apples".to_vec(),
        },
        Control::Reply {
            epoch: 1,
            to: "node-a".into(),
            id: 7,
            outcome: ReplyOutcome::Value(b"\x07".to_vec()),
        },
        Control::Reply {
            epoch: 1,
            to: "node-a".into(),
            id: 8,
            outcome: ReplyOutcome::Failed("out of pears".into()),
        },
    ]
    .iter()
    .chain(recovery_controls().iter())
    .map(Control::encode)
    .collect()
}

/// A repair asked for and answered, and a node leaving without loss.
fn recovery_controls() -> [Control; 4] {
    [
        Control::Closing {
            epoch: 2,
            last: vec![SequenceMark {
                name: "orders.created".into(),
                seq: 12,
            }],
            done: true,
        },
        Control::Settled {
            epoch: 1,
            to: "node-a".into(),
        },
        Control::Repair {
            epoch: 1,
            to: "node-a".into(),
            of_epoch: 2,
            name: "orders.created".into(),
            missing: vec![[3, 4], [9, 12]],
        },
        Control::Repaired {
            epoch: 2,
            to: "node-b".into(),
            name: "orders.created".into(),
            events: vec![RepairedEvent {
                seq: 3,
                payload: b"\x07".to_vec(),
            }],
            gone: vec![[4, 4]],
            done: true,
        },
    ]
}

/// `bytes` with each `(position, value)` written over it, then cut to `keep` bytes.
fn mutate(bytes: &[u8], edits: &[(usize, u8)], keep: usize) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for (at, value) in edits {
        if !out.is_empty() {
            let at = at % out.len();
            out[at] = *value;
        }
    }
    out.truncate(keep % (out.len() + 1));
    out
}

#[derive(Debug, serde::Deserialize)]
#[allow(dead_code)]
struct Order {
    id: u64,
    items: Vec<String>,
    notes: BTreeMap<String, f64>,
    paid: Option<bool>,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn arbitrary_bytes_are_a_frame_or_an_error(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(frame) = Frame::decode(Bytes::from(bytes), LIMIT) {
            let again = Frame::decode(frame.to_bytes(), LIMIT);
            prop_assert_eq!(again.ok(), Some(frame));
        }
    }

    #[test]
    fn mutated_frames_are_a_frame_or_an_error(
        payload in prop::collection::vec(any::<u8>(), 0..64),
        edits in prop::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        keep in any::<usize>(),
    ) {
        let control = Frame::Control(ControlFrame {
            source: NodeId::new("node-b").expect("valid"),
            body: Bytes::copy_from_slice(&payload),
        });
        for frame in [event_frame(&payload), control] {
            let bytes = mutate(&frame.to_bytes(), &edits, keep);
            if let Ok(frame) = Frame::decode(Bytes::from(bytes), LIMIT) {
                prop_assert!(frame.encoded_len() <= LIMIT);
            }
        }
    }

    #[test]
    fn frames_over_the_limit_are_refused(extra in 1usize..2048) {
        let frame = event_frame(&vec![0u8; LIMIT + extra]);
        let refused = Frame::decode(frame.to_bytes(), LIMIT);
        prop_assert!(matches!(refused, Err(Error::FrameTooLarge { .. })), "{refused:?}");
    }

    #[test]
    fn a_record_stream_never_yields_more_than_the_limit(
        chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..96), 0..24),
    ) {
        let decoder = RecordDecoder::new(256);
        let mut buf = BytesMut::new();
        'feed: for chunk in chunks {
            buf.extend_from_slice(&chunk);
            loop {
                match decoder.next_record(&mut buf) {
                    Ok(Some((_, body))) => prop_assert!(body.len() <= 256),
                    Ok(None) => break,
                    // An oversize length: the stream cannot go on (the transport drops it).
                    Err(_) => break 'feed,
                }
            }
        }
    }

    #[test]
    fn arbitrary_control_messages_decode_or_fail(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(control) = Control::decode(&bytes) {
            prop_assert_eq!(Control::decode(&control.encode()).ok(), Some(control));
        }
    }

    #[test]
    fn mutated_control_messages_decode_or_fail(
        which in any::<usize>(),
        edits in prop::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        keep in any::<usize>(),
    ) {
        let all = control_bytes();
        let valid = &all[which % all.len()];
        let _ = Control::decode(&mutate(valid, &edits, keep));
    }

    #[test]
    fn arbitrary_payloads_decode_or_fail_typed_and_dynamic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = decode_payload::<Order>(&bytes);
        let _ = decode_payload::<serde_json::Value>(&bytes);
        let _ = RawPayload::new(Bytes::from(bytes)).to_value();
    }
}

/// A few bytes that declare huge collections: the decoders must not believe them.
#[test]
fn declared_lengths_are_not_trusted() {
    for bomb in [
        &b"\xdd\xff\xff\xff\xff"[..],                   // array32 of 4 billion
        b"\xdf\xff\xff\xff\xff",                        // map32 of 4 billion
        b"\xdb\xff\xff\xff\xff",                        // str32 of 4 GiB
        b"\xc6\xff\xff\xff\xff",                        // bin32 of 4 GiB
        b"\x85\xa2id\x01\xa5items\xdd\xff\xff\xff\xff", // a map whose array lies
    ] {
        assert!(decode_payload::<Order>(bomb).is_err());
        assert!(decode_payload::<serde_json::Value>(bomb).is_err());
        assert!(
            RawPayload::new(Bytes::from_static(bomb))
                .to_value()
                .is_err()
        );
        assert!(Control::decode(bomb).is_err());
    }
}
