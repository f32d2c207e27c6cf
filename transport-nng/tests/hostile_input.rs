//! Hostile input to the nng bus's message decoder: arbitrary and mutated messages never
//! panic, frame records never reach past their message, announcements stay bounded.

use bytes::{Bytes, BytesMut};
use demitter_core::{EventFrame, Frame, NodeId};
use demitter_nng::wire::{self, Announce, Item, MAX_ANNOUNCED};
use proptest::prelude::*;

fn valid_messages() -> Vec<Vec<u8>> {
    let frame = Frame::Event(EventFrame {
        name: "orders.created".into(),
        source: NodeId::new("node-a").expect("valid"),
        epoch: 1,
        seq: 2,
        payload: Bytes::from_static(b"\x91\x01"),
    });
    let mut frames = BytesMut::new();
    wire::start_message(&mut frames);
    wire::put_frame(&mut frames, &frame);
    wire::put_frame(&mut frames, &frame);
    let announce = wire::announce_message(&Announce {
        url: "tcp://127.0.0.1:1".into(),
        known: vec!["tcp://127.0.0.1:2".into()],
    });
    vec![frames.to_vec(), announce.to_vec()]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn messages_parse_into_bounded_records_or_fail(
        which in 0usize..2,
        noise in prop::collection::vec(any::<u8>(), 0..400),
        edits in prop::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        keep in any::<usize>(),
    ) {
        let mut bytes = if noise.len() % 3 == 0 { noise } else { valid_messages()[which].clone() };
        for (at, value) in &edits {
            if !bytes.is_empty() {
                let at = at % bytes.len();
                bytes[at] = *value;
            }
        }
        bytes.truncate(keep % (bytes.len() + 1));
        let total = bytes.len();
        if let Ok(items) = wire::parse(Bytes::from(bytes), 1 << 20) {
            let mut seen = 1;
            for item in items {
                match item {
                    Ok(Item::Frame(body)) => {
                        seen += 5 + body.len();
                        prop_assert!(seen <= total);
                        let _ = Frame::decode(body, 1 << 20);
                    }
                    Ok(Item::Announce(announce)) => {
                        prop_assert!(announce.known.len() <= MAX_ANNOUNCED);
                    }
                    Err(_) => {}
                }
            }
        }
    }
}
