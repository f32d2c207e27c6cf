//! The bus's message format, documented in `docs/wire-format.md`.
//!
//! ```text
//! message = u8 version (1) | u8 kind | body
//! FRAMES (0):   { u32 length (big-endian) | frame }*   core frames, batched
//! ANNOUNCE (1): MessagePack map {url: str, known: [str]}
//! ```

use bytes::{Buf, BufMut, Bytes, BytesMut};
use demitter_core::Frame;
use serde::{Deserialize, Serialize};

use crate::error::NngError;

/// The format version every message starts with.
pub const VERSION: u8 = 1;
/// A batch of core frames.
pub const KIND_FRAMES: u8 = 0;
/// Where a node listens, and the nodes it knows.
pub const KIND_ANNOUNCE: u8 = 1;
/// Bytes before a message's body.
pub const HEADER: usize = 2;
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

/// Starts a FRAMES message in `out`.
pub fn start_frames(out: &mut BytesMut) {
    out.put_u8(VERSION);
    out.put_u8(KIND_FRAMES);
}

/// Appends one frame (whose `encoded_len` is `len`) to a FRAMES message.
pub fn put_frame(out: &mut BytesMut, frame: &Frame, len: usize) {
    out.put_u32(u32::try_from(len).unwrap_or(u32::MAX));
    frame.encode(out);
}

/// Appends raw bytes as one frame record (for tests that send garbage).
pub fn put_raw_frame(out: &mut BytesMut, bytes: &[u8]) {
    out.put_u32(u32::try_from(bytes.len()).unwrap_or(u32::MAX));
    out.put_slice(bytes);
}

/// An ANNOUNCE message.
pub fn announce_message(announce: &Announce) -> Vec<u8> {
    let mut out = vec![VERSION, KIND_ANNOUNCE];
    // Strings and lists of strings always encode.
    if rmp_serde::encode::write_named(&mut out, announce).is_err() {
        out.truncate(HEADER);
    }
    out
}

/// What a received message is.
#[derive(Debug)]
pub enum Message {
    /// Frame records: split them with [`FrameRecords`].
    Frames(FrameRecords),
    /// An announcement.
    Announce(Announce),
}

/// Parses a received message's header (and an announcement's body).
pub fn parse(mut bytes: Bytes) -> Result<Message, NngError> {
    if bytes.len() < HEADER {
        return Err(NngError::ShortMessage { len: bytes.len() });
    }
    let version = bytes.get_u8();
    if version != VERSION {
        return Err(NngError::UnsupportedVersion { version });
    }
    match bytes.get_u8() {
        KIND_FRAMES => Ok(Message::Frames(FrameRecords { rest: bytes })),
        KIND_ANNOUNCE => rmp_serde::from_slice::<Announce>(&bytes)
            .map(|mut a| {
                a.known.truncate(MAX_ANNOUNCED);
                Message::Announce(a)
            })
            .map_err(NngError::UndecodableAnnouncement),
        kind => Err(NngError::UnknownKind { kind }),
    }
}

/// The frame records of a FRAMES message, one by one.
#[derive(Debug)]
pub struct FrameRecords {
    rest: Bytes,
}

impl Iterator for FrameRecords {
    /// A frame's bytes, or why the rest of the message is unreadable.
    type Item = Result<Bytes, NngError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        if self.rest.len() < 4 {
            let left = self.rest.len();
            self.rest.clear();
            return Some(Err(NngError::StrayBytes { left }));
        }
        let len = self.rest.get_u32() as usize;
        if len > self.rest.len() {
            let left = self.rest.len();
            self.rest.clear();
            return Some(Err(NngError::TruncatedFrame { len, left }));
        }
        Some(Ok(self.rest.split_to(len)))
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
        start_frames(&mut out);
        put_frame(&mut out, &frame, frame.encoded_len());
        put_frame(&mut out, &frame, frame.encoded_len());
        let Ok(Message::Frames(records)) = parse(out.freeze()) else {
            panic!("frames");
        };
        let frames: Vec<Frame> = records
            .map(|r| Frame::decode(r.expect("record"), 1 << 20).expect("frame"))
            .collect();
        assert_eq!(frames, vec![frame.clone(), frame]);

        let announce = Announce {
            url: "tcp://127.0.0.1:1".into(),
            known: vec!["tcp://127.0.0.1:2".into()],
        };
        let Ok(Message::Announce(back)) = parse(Bytes::from(announce_message(&announce))) else {
            panic!("announce");
        };
        assert_eq!(back, announce);
    }

    #[test]
    fn broken_messages_are_errors_not_panics() {
        for bad in [&b""[..], b"\x01", b"\x02\x00", b"\x01\x07", b"\x01\x01\xff"] {
            assert!(parse(Bytes::copy_from_slice(bad)).is_err(), "{bad:?}");
        }
        let Ok(Message::Frames(mut records)) =
            parse(Bytes::from_static(b"\x01\x00\x00\x00\x00\x09ab"))
        else {
            panic!("frames header");
        };
        assert!(matches!(
            records.next(),
            Some(Err(NngError::TruncatedFrame { len: 9, left: 2 }))
        ));
        assert!(records.next().is_none());
    }
}
