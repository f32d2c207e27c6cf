//! Hostile input to the QUIC stream's decoders: arbitrary and mutated record streams, hellos
//! and gossip never panic, and nothing over the limit gets through.

use bytes::BytesMut;
use demitter_quic::wire::{
    Hello, KIND_HELLO, KIND_PEERS, PeerAddress, Peers, RecordDecoder, decode_message,
    message_record,
};
use proptest::prelude::*;

const LIMIT: usize = 512;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn record_streams_yield_records_within_the_limit_or_stop(
        chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..128), 0..16),
    ) {
        let decoder = RecordDecoder::new(LIMIT);
        let mut buf = BytesMut::new();
        'feed: for chunk in chunks {
            buf.extend_from_slice(&chunk);
            loop {
                match decoder.next_record(&mut buf) {
                    Ok(Some((_, body))) => prop_assert!(body.len() <= LIMIT),
                    Ok(None) => break,
                    // An oversize record, or one without a kind: the connection is closed
                    // (code 4).
                    Err(demitter_core::Error::RecordTooLarge { size, .. }) => {
                        prop_assert!(size > LIMIT);
                        break 'feed;
                    }
                    Err(demitter_core::Error::MalformedFrame(_)) => break 'feed,
                    Err(other) => prop_assert!(false, "unexpected error {other}"),
                }
            }
        }
    }

    #[test]
    fn hellos_and_gossip_decode_or_fail(
        body in prop::collection::vec(any::<u8>(), 0..400),
        edits in prop::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        keep in any::<usize>(),
    ) {
        let _ = decode_message::<Hello>("hello", &body);
        let _ = decode_message::<Peers>("gossip", &body);
        let peers = Peers {
            peers: vec![PeerAddress { name: "alice".into(), addr: "127.0.0.1:4816".into() }],
        };
        for valid in [
            message_record(KIND_HELLO, &Hello { incarnation: 7, listen_port: 4816, uptime_ms: 0 }),
            message_record(KIND_PEERS, &peers),
        ] {
            let mut bytes = valid[5..].to_vec();
            for (at, value) in &edits {
                if !bytes.is_empty() {
                    let at = at % bytes.len();
                    bytes[at] = *value;
                }
            }
            bytes.truncate(keep % (bytes.len() + 1));
            let _ = decode_message::<Hello>("hello", &bytes);
            let _ = decode_message::<Peers>("gossip", &bytes);
        }
    }
}
