//! Hostile input to the ZeroMQ decoders (ZMTP frames and messages, greetings, READY
//! properties, Demitter's three-part messages, the forwarder's census): arbitrary and
//! mutated bytes never panic and nothing over the limits gets through.

use bytes::{Bytes, BytesMut};
use demitter_core::DecodeCache;
use proptest::prelude::*;

use crate::wire;
use crate::zmtp::{self, GREETING_LEN, Split, ZmtpFrameDecoder};

const LIMIT: usize = 512;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn zmtp_streams_yield_frames_within_the_limit_or_stop(
        chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..128), 0..16),
    ) {
        let decoder = ZmtpFrameDecoder::new(LIMIT);
        let mut buf = BytesMut::new();
        'feed: for chunk in chunks {
            buf.extend_from_slice(&chunk);
            loop {
                match decoder.decode(&mut buf) {
                    Ok(Some(zmtp::ZmtpFrame::Part { body, .. })) => prop_assert!(body.len() <= LIMIT),
                    Ok(Some(zmtp::ZmtpFrame::Command { data, .. })) => prop_assert!(data.len() <= LIMIT),
                    Ok(None) => break,
                    Err(_) => break 'feed,
                }
            }
        }
    }

    #[test]
    fn whole_messages_are_split_within_the_limits_or_refused(
        bytes in prop::collection::vec(any::<u8>(), 0..1024),
        max_parts in 1usize..5,
    ) {
        let mut buf = BytesMut::from(&bytes[..]);
        let decoder = ZmtpFrameDecoder::new(LIMIT);
        while let Ok(split) = decoder.split_message(&mut buf, max_parts) {
            match split {
                Split::Incomplete => break,
                Split::Command(_) => {}
                Split::Message(message) => {
                    prop_assert!(message.bytes.len() <= max_parts * (LIMIT + 9));
                }
            }
        }
    }

    #[test]
    fn greetings_and_ready_properties_are_checked_not_trusted(
        greeting in prop::collection::vec(any::<u8>(), GREETING_LEN..=GREETING_LEN),
        ready in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        let greeting: [u8; GREETING_LEN] = greeting.try_into().expect("the right length");
        let _ = zmtp::check_greeting_for(&greeting, zmtp::Mechanism::Null);
        let _ = zmtp::check_greeting_for(&greeting, zmtp::Mechanism::Curve);
        let _ = zmtp::ready_socket_type(Bytes::from(ready));
    }

    #[test]
    fn demitter_messages_decode_within_the_limit_or_fail(
        parts in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..200), 0..5),
        topic in prop::sample::select(vec![&b"s:orders.created"[..], b"\x01", b"n:", b"s:", b"s:$peer.up", b""]),
    ) {
        let mut parts: Vec<Bytes> = parts.into_iter().map(Bytes::from).collect();
        if let Some(first) = parts.first_mut() {
            *first = Bytes::from_static(topic);
        }
        let size: usize = parts.iter().map(Bytes::len).sum();
        let decoded = wire::decode(parts, LIMIT, &mut DecodeCache::default());
        if size > LIMIT {
            prop_assert!(decoded.is_err(), "{size} bytes over a limit of {LIMIT} got through");
        }
        if let Ok(Some(frame)) = decoded {
            prop_assert!(frame.encoded_len() <= LIMIT + 64);
        }
    }

    #[test]
    fn a_census_decodes_to_valid_ids_or_fails(
        mut bytes in prop::collection::vec(any::<u8>(), 0..300),
        marked in any::<bool>(),
    ) {
        if marked && let Some(first) = bytes.first_mut() {
            *first = wire::CENSUS_MARK;
        }
        if let Ok(Some(ids)) = wire::decode_census(&bytes) {
            let sizes: usize = ids.iter().map(|id| id.as_str().len() + 1).sum();
            prop_assert_eq!(sizes + 1, bytes.len(), "every byte accounted for");
        }
    }
}
