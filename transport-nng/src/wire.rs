//! The bus's message format, documented in `docs/wire-format.md`.
//!
//! ```text
//! message = u8 version (2) | record*         records: demitter_core::record
//! record kind 0 FRAME:    one core frame (many per message, batched)
//! record kind 1 ANNOUNCE: MessagePack map {url: str, known: [str]}
//! ```

use bytes::{Buf, Bytes, BytesMut};
use demitter_core::Frame;
use demitter_core::record::{RecordDecoder, put_frame_record, put_record};
use serde::{Deserialize, Serialize};

use crate::error::NngError;

/// The format version every message starts with (1 had one kind per message).
pub const VERSION: u8 = 2;
/// A record holding one core frame.
pub const KIND_FRAME: u8 = 0;
/// A record holding an announcement: where a node listens, and the nodes it knows.
pub const KIND_ANNOUNCE: u8 = 1;
/// Bytes before a message's records.
pub const HEADER: usize = 1;
/// The most URLs an announcement may carry; more are ignored.
pub const MAX_ANNOUNCED: usize = 1024;

/// A node's announcement: its listen URL and the listen URLs of the nodes it knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announce {
    /// Where the sender listens.
    pub url: String,
    /// Other nodes' listen URLs.
    pub known: Vec<String>,
}

/// Starts a message in `out`.
pub fn start_message(out: &mut BytesMut) {
    out.extend_from_slice(&[VERSION]);
}

/// Appends one frame record to a message.
pub fn put_frame(out: &mut BytesMut, frame: &Frame) {
    put_frame_record(out, KIND_FRAME, frame);
}

/// Appends raw bytes as one frame record (for tests that send garbage).
pub fn put_raw_frame(out: &mut BytesMut, bytes: &[u8]) {
    put_record(out, KIND_FRAME, bytes);
}

/// A message holding one announcement.
pub fn announce_message(announce: &Announce) -> BytesMut {
    let mut out = BytesMut::new();
    start_message(&mut out);
    // Strings and lists of strings always encode.
    let body = rmp_serde::to_vec_named(announce).unwrap_or_default();
    put_record(&mut out, KIND_ANNOUNCE, &body);
    out
}

/// What one record of a received message holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Item {
    /// A core frame's bytes (decode them with [`Frame::decode`]).
    Frame(Bytes),
    /// An announcement.
    Announce(Announce),
}

/// Checks a received message's version; its records follow from the returned iterator,
/// none with a body over `max_body` bytes.
pub fn parse(mut bytes: Bytes, max_body: usize) -> Result<Items, NngError> {
    let Some(&version) = bytes.first() else {
        return Err(NngError::ShortMessage { len: 0 });
    };
    if version != VERSION {
        return Err(NngError::UnsupportedVersion { version });
    }
    bytes.advance(HEADER);
    Ok(Items {
        rest: bytes,
        decoder: RecordDecoder::new(max_body),
    })
}

/// The records of a received message, one by one. A record that is unreadable ends the
/// message; one of an unknown kind or an undecodable announcement is an error on its own,
/// and the records after it still come.
#[derive(Debug)]
pub struct Items {
    rest: Bytes,
    decoder: RecordDecoder,
}

impl Iterator for Items {
    type Item = Result<Item, NngError>;

    fn next(&mut self) -> Option<Self::Item> {
        let record = match self.decoder.split_record(&mut self.rest)? {
            Ok(record) => record,
            Err(e) => return Some(Err(NngError::Record(e))),
        };
        Some(match record {
            (KIND_FRAME, body) => Ok(Item::Frame(body)),
            (KIND_ANNOUNCE, body) => rmp_serde::from_slice::<Announce>(&body)
                .map(|mut a| {
                    a.known.truncate(MAX_ANNOUNCED);
                    Item::Announce(a)
                })
                .map_err(NngError::UndecodableAnnouncement),
            (kind, _) => Err(NngError::UnknownKind { kind }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use demitter_core::{EventFrame, NodeId};

    #[test]
    fn frames_and_announcements_round_trip() {
        let frame = Frame::Event(EventFrame {
            name: "a.b".into(),
            source: NodeId::new("n1").expect("valid"),
            epoch: 1,
            seq: 2,
            payload: Bytes::from_static(b"\xc0"),
        });
        let mut out = BytesMut::new();
        start_message(&mut out);
        put_frame(&mut out, &frame);
        put_frame(&mut out, &frame);
        let frames: Vec<Frame> = parse(out.freeze(), 1 << 20)
            .expect("a message")
            .map(|item| match item.expect("an item") {
                Item::Frame(bytes) => Frame::decode(bytes, 1 << 20).expect("frame"),
                Item::Announce(a) => panic!("not an announcement: {a:?}"),
            })
            .collect();
        assert_eq!(frames, vec![frame.clone(), frame]);

        let announce = Announce {
            url: "tcp://127.0.0.1:1".into(),
            known: vec!["tcp://127.0.0.1:2".into()],
        };
        let items: Vec<Item> = parse(announce_message(&announce).freeze(), 1 << 20)
            .expect("a message")
            .map(|item| item.expect("an item"))
            .collect();
        assert_eq!(items, vec![Item::Announce(announce)]);
    }

    #[test]
    fn broken_messages_are_errors_not_panics() {
        for bad in [&b""[..], b"\x01", b"\x03"] {
            assert!(parse(Bytes::copy_from_slice(bad), 64).is_err(), "{bad:?}");
        }
        let mut out = BytesMut::new();
        start_message(&mut out);
        put_record(&mut out, 9, b"?");
        put_raw_frame(&mut out, b"ab");
        let mut cut = out.freeze();
        cut.truncate(cut.len() - 1);
        let mut items = parse(cut, 64).expect("a message");
        assert!(matches!(
            items.next(),
            Some(Err(NngError::UnknownKind { kind: 9 }))
        ));
        assert!(matches!(
            items.next(),
            Some(Err(NngError::Record(
                demitter_core::Error::TruncatedRecord { .. }
            )))
        ));
        assert!(items.next().is_none(), "the rest of the message is dropped");
    }
}
