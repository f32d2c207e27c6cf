//! Demitter's wire format, and how this project's own traffic fits beside it.
//!
//! Every message has exactly three frames, as Demitter requires:
//!
//! | message | frame 1 (topic) | frame 2 (origin) | frame 3 |
//! | --- | --- | --- | --- |
//! | event | `s:` + event name | `<id>@<epoch in hex>:<seq>` | MessagePack payload |
//! | control | [`CONTROL_TOPIC`] | `<id>` | a presence-protocol message |
//!
//! A Demitter origin carries no `@`: such events are unsequenced (`seq` 0). Demitter drops
//! messages whose origin is its own; ours never equals another emitter's. The control topic
//! starts with a byte no Demitter topic (`s:`, `n:`, `g:`, `y:`) can start with.

use std::io::Write as _;

use bytes::{Bytes, BytesMut};
use demitter_core::{ControlFrame, DecodeCache, Error, EventFrame, Frame, NodeId};

use crate::zmtp;

/// The topic of this project's control messages.
pub const CONTROL_TOPIC: &[u8] = b"\x01demitter/control";

/// The topic prefix of subscription confirmations: a client subscribes to
/// `SYNC_PREFIX + n` after its other subscriptions, and this project's forwarder answers
/// with one message on exactly that topic, proving every earlier subscription is in place.
pub const SYNC_PREFIX: &[u8] = b"\x01demitter/sync/";

/// The topic prefix of Demitter's string-named events.
pub const EVENT_PREFIX: &[u8] = b"s:";

/// The confirmation topic whose answer carries the census (the first one a client asks,
/// before any change of its subscriptions): this project's forwarder puts the ids of the
/// nodes it heard on the control topic lately in the answer's third frame ([`census`]).
pub const CENSUS_SYNC: &[u8] = b"\x01demitter/sync/0";

/// The confirmation topic a client asks once it has heard its own hello come back: this
/// project's forwarder answers it with a census too, taken after that hello passed (see
/// `docs/wire-format.md`, "The census"). It is no subscription to keep.
pub const CENSUS_AGAIN: &[u8] = b"\x01demitter/sync/census";

/// The census frame: [`CENSUS_MARK`], then each id as one byte of length and the id (an
/// id is 1 to 255 bytes).
pub fn census<'a>(ids: impl Iterator<Item = &'a [u8]>) -> Bytes {
    let mut out = BytesMut::new();
    out.extend_from_slice(&[CENSUS_MARK]);
    for id in ids {
        let Ok(len) = u8::try_from(id.len()) else {
            continue;
        };
        out.extend_from_slice(&[len]);
        out.extend_from_slice(id);
    }
    out.freeze()
}

/// The first byte of a census frame: an empty frame (from a forwarder that gives no
/// census) is no census, not an empty bus.
pub const CENSUS_MARK: u8 = 1;

/// The ids of a census frame: `None` for an empty frame (no census); an error for one
/// that does not decode (another first byte, truncated, or an invalid id).
pub fn decode_census(bytes: &[u8]) -> Result<Option<Vec<NodeId>>, Error> {
    let Some((&mark, mut bytes)) = bytes.split_first() else {
        return Ok(None);
    };
    if mark != CENSUS_MARK {
        return Err(Error::MalformedFrame(format!(
            "a census that starts with {mark:#04x}"
        )));
    }
    let mut ids = Vec::new();
    while let Some((&len, rest)) = bytes.split_first() {
        let Some(id) = rest.get(..usize::from(len)) else {
            return Err(Error::MalformedFrame("a truncated census".into()));
        };
        let id = std::str::from_utf8(id)
            .map_err(|_| Error::MalformedFrame("a census id that is not UTF-8".into()))?;
        ids.push(NodeId::new(id)?);
        bytes = &rest[usize::from(len)..];
    }
    Ok(Some(ids))
}

/// A frame as one ZMTP message, in one buffer.
pub(crate) fn encode(frame: &Frame) -> Bytes {
    let mut out = BytesMut::with_capacity(frame.encoded_len() + 64);
    match frame {
        Frame::Event(e) => {
            // `<id>@<epoch hex>:<seq>`, formatted on the stack: no allocation per event.
            let mut origin = [0u8; 300];
            let mut cursor = std::io::Cursor::new(&mut origin[..]);
            // An id is at most 255 bytes, so this always fits.
            let _ = write!(cursor, "{}@{:x}:{}", e.source, e.epoch, e.seq);
            let origin_len = usize::try_from(cursor.position()).unwrap_or(0);
            let topic_len = EVENT_PREFIX.len() + e.name.len();
            zmtp::put_frame_header(&mut out, true, topic_len);
            out.extend_from_slice(EVENT_PREFIX);
            out.extend_from_slice(e.name.as_bytes());
            zmtp::put_message(&mut out, &[&origin[..origin_len], &e.payload]);
        }
        Frame::Control(c) => {
            zmtp::put_message(&mut out, &[CONTROL_TOPIC, c.source.as_bytes(), &c.body]);
        }
    }
    out.freeze()
}

/// A received message as a frame, refusing what breaks the format or the size limit.
/// `Ok(None)` for Demitter topics this project does not map (`n:`, `g:`, `y:`).
pub(crate) fn decode(
    parts: Vec<Bytes>,
    max_bytes: usize,
    cache: &mut DecodeCache,
) -> Result<Option<Frame>, Error> {
    let size: usize = parts.iter().map(Bytes::len).sum();
    if size > max_bytes {
        return Err(Error::FrameTooLarge {
            size,
            limit: max_bytes,
        });
    }
    let [topic, origin, body]: [Bytes; 3] = parts.try_into().map_err(|parts: Vec<Bytes>| {
        Error::MalformedFrame(format!(
            "{} frames; Demitter messages have exactly 3",
            parts.len()
        ))
    })?;
    let origin = std::str::from_utf8(&origin)
        .map_err(|_| Error::MalformedFrame("origin is not UTF-8".into()))?;
    if topic[..] == *CONTROL_TOPIC {
        let source = cache.source(origin)?;
        return Ok(Some(Frame::Control(ControlFrame { source, body })));
    }
    let Some(name) = topic.strip_prefix(EVENT_PREFIX) else {
        return Ok(None);
    };
    let name = std::str::from_utf8(name)
        .map_err(|_| Error::MalformedFrame("event name is not UTF-8".into()))?;
    let name = cache.event_name(name)?;
    let (id, epoch, seq) = parse_origin(origin);
    Ok(Some(Frame::Event(EventFrame {
        name,
        source: cache.source(id)?,
        epoch,
        seq,
        payload: body,
    })))
}

/// The node id a message's origin (its second part) names, exactly as the transport's
/// decoder reads it: the whole origin of a control message; the part before the last `@`
/// of an event's `<id>@<epoch hex>:<seq>`, or the whole origin when it has no such tail.
/// What a forwarder that binds names to keys must compare, so that no origin it lets
/// through decodes as another name.
pub fn origin_id<'a>(topic: &[u8], origin: &'a [u8]) -> &'a [u8] {
    if topic == CONTROL_TOPIC {
        return origin;
    }
    match std::str::from_utf8(origin) {
        Ok(text) => parse_origin(text).0.as_bytes(),
        // Refused by every decoder anyway.
        Err(_) => origin,
    }
}

/// `<id>@<epoch hex>:<seq>`, or a plain id (a Demitter origin: unsequenced).
fn parse_origin(origin: &str) -> (&str, u64, u64) {
    let parsed = origin.rsplit_once('@').and_then(|(id, rest)| {
        let (epoch, seq) = rest.split_once(':')?;
        Some((id, u64::from_str_radix(epoch, 16).ok()?, seq.parse().ok()?))
    });
    parsed.unwrap_or((origin, 0, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_census_round_trips_and_refuses_garbage() {
        let frame = census([&b"alice"[..], b"b@x"].into_iter());
        let ids: Vec<String> = decode_census(&frame)
            .expect("decodes")
            .expect("a census")
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(ids, ["alice", "b@x"]);
        assert!(decode_census(b"\x01\x05ab").is_err(), "truncated");
        assert!(decode_census(b"\x01\x02\xff\xfe").is_err(), "not UTF-8");
        assert!(decode_census(b"\x01\x00").is_err(), "an empty id");
        assert!(decode_census(b"\x07").is_err(), "not a census");
        assert_eq!(decode_census(b"\x01").expect("decodes"), Some(Vec::new()));
        assert_eq!(decode_census(b"").expect("decodes"), None, "no census");
    }
    use crate::zmtp::{ZmtpFrame, ZmtpFrameDecoder};
    use demitter_core::NodeId;

    fn parts_of(encoded: &Bytes) -> Vec<Bytes> {
        let mut buf = BytesMut::from(&encoded[..]);
        let mut parts = Vec::new();
        while let Some(ZmtpFrame::Part { body, .. }) = ZmtpFrameDecoder::new(1 << 20)
            .decode(&mut buf)
            .expect("decodes")
        {
            parts.push(body);
        }
        parts
    }

    #[test]
    fn events_and_control_round_trip() {
        let event = Frame::Event(EventFrame {
            name: "user.login".into(),
            source: NodeId::new("node@with@ats").expect("valid"),
            epoch: 0xabc,
            seq: 42,
            payload: Bytes::from_static(b"\x81\xa1a\x01"),
        });
        let control = Frame::Control(ControlFrame {
            source: NodeId::new("n").expect("valid"),
            body: Bytes::from_static(b"body"),
        });
        for frame in [event, control] {
            let encoded = encode(&frame);
            let parts = parts_of(&encoded);
            assert_eq!(parts.len(), 3);
            let back = decode(parts, 1 << 20, &mut DecodeCache::default()).expect("decodes");
            assert_eq!(back, Some(frame));
        }
    }

    proptest::proptest! {
        /// Whatever origin a message carries, the source it decodes as is the id
        /// `origin_id` names: a forwarder comparing `origin_id` lets no other name through.
        #[test]
        fn origin_id_is_the_decoded_source(
            control in proptest::bool::ANY,
            origin in "[a-c@:0-9]{0,12}",
        ) {
            let topic: &[u8] = if control { CONTROL_TOPIC } else { b"s:x" };
            let parts = vec![
                Bytes::copy_from_slice(topic),
                Bytes::from(origin.clone()),
                Bytes::new(),
            ];
            if let Ok(Some(frame)) = decode(parts, 1024, &mut DecodeCache::default()) {
                let source = match &frame {
                    Frame::Event(e) => &e.source,
                    Frame::Control(c) => &c.source,
                };
                proptest::prop_assert_eq!(
                    source.as_str().as_bytes(),
                    origin_id(topic, origin.as_bytes())
                );
            }
        }
    }

    #[test]
    fn origin_ids_are_read_as_the_decoder_reads_them() {
        for (topic, origin, id) in [
            (&b"s:x"[..], &b"a@1f:2"[..], &b"a"[..]),
            (b"s:x", b"a@b@1:2", b"a@b"),
            (b"s:x", b"a@junk", b"a@junk"),
            (b"s:x", b"plain", b"plain"),
            (CONTROL_TOPIC, b"a@1:2", b"a@1:2"),
        ] {
            assert_eq!(origin_id(topic, origin), id, "{origin:?}");
        }
    }

    #[test]
    fn demitter_messages_are_unsequenced_events() {
        let parts = vec![
            Bytes::from_static(b"s:chat.message"),
            Bytes::from_static(b"6f1c2b0e-demitter-origin"),
            Bytes::from_static(b"\xa2hi"),
        ];
        let Some(Frame::Event(e)) =
            decode(parts, 1024, &mut DecodeCache::default()).expect("decodes")
        else {
            panic!("an event");
        };
        assert_eq!(
            (&*e.name, e.source.as_str(), e.seq),
            ("chat.message", "6f1c2b0e-demitter-origin", 0)
        );
    }

    #[test]
    fn bad_messages_are_errors_and_foreign_topics_are_skipped() {
        let mut cache = DecodeCache::default();
        let three = |t: &'static [u8], o: &'static [u8]| {
            vec![Bytes::from_static(t), Bytes::from_static(o), Bytes::new()]
        };
        assert!(decode(vec![Bytes::from_static(b"s:x")], 1024, &mut cache).is_err());
        assert!(decode(three(b"s:a+b", b"o"), 1024, &mut cache).is_err());
        assert!(decode(three(b"s:$peer.up", b"o"), 1024, &mut cache).is_err());
        assert!(decode(three(b"s:x", b"\xff"), 1024, &mut cache).is_err());
        assert!(matches!(
            decode(
                vec![Bytes::from(vec![0u8; 2000]), Bytes::new(), Bytes::new()],
                1024,
                &mut cache
            ),
            Err(Error::FrameTooLarge { .. })
        ));
        assert_eq!(
            decode(three(b"n:42", b"o"), 1024, &mut cache).expect("skipped"),
            None
        );
    }
}
