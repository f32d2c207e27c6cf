//! The QUIC transport's wire format (see `docs/wire-format.md`, "QUIC").
//!
//! Each side of a connection opens one unidirectional stream and keeps it for the life of
//! the connection. The stream starts with [`PREAMBLE`] and then carries records:
//!
//! ```text
//! u32 length (big-endian, of what follows) | u8 kind | body
//! ```
//!
//! | kind | body |
//! | --- | --- |
//! | 0 `FRAME` | one core frame (`Frame::encode`: events and presence control) |
//! | 1 `HELLO` | MessagePack map `{incarnation: u64, listen_port: u16}`; first record, once |
//! | 2 `PEERS` | MessagePack map `{peers: [{name, addr}]}`: peers the sender is connected to |
//!
//! Unknown kinds are reported and skipped (newer peers may add some); a length over the
//! limit ends the connection, since the next record boundary is unknown.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use demitter_core::Frame;
use serde::{Deserialize, Serialize};

use crate::error::QuicError;

/// What every stream starts with: `DMTRQ` and the format version, 1.
pub const PREAMBLE: [u8; 6] = *b"DMTRQ\x01";

/// A core frame.
pub const KIND_FRAME: u8 = 0;
/// The first record: who the sender is beyond its certificate.
pub const KIND_HELLO: u8 = 1;
/// Gossip: peers the sender is connected to.
pub const KIND_PEERS: u8 = 2;

/// The most peers one gossip record may list.
pub const MAX_GOSSIP_PEERS: usize = 1024;

/// The first record on a stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Random per transport start: a connection with a new incarnation replaces an old one.
    pub incarnation: u64,
    /// The port the sender listens on (its address is the one the connection came from).
    pub listen_port: u16,
}

/// A peer and where it listens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerAddress {
    /// Its certificate name.
    pub name: String,
    /// `ip:port`.
    pub addr: String,
}

/// A gossip record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peers {
    /// The peers.
    pub peers: Vec<PeerAddress>,
}

/// A record whose length prefix is over the limit: the stream cannot go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Oversize {
    /// The length it announced.
    pub size: usize,
    /// The limit.
    pub limit: usize,
}

/// Encodes a core frame as a record.
pub fn frame_record(frame: &Frame) -> Bytes {
    let len = frame.encoded_len();
    let mut out = BytesMut::with_capacity(RECORD_HEADER + len);
    put_frame_record(frame, len, &mut out);
    out.freeze()
}

/// Bytes before a record's body: its length and kind.
pub const RECORD_HEADER: usize = 5;

/// Appends `frame`, whose [`encoded_len`](Frame::encoded_len) is `len`, as a record
/// (`RECORD_HEADER + len` bytes).
pub fn put_frame_record(frame: &Frame, len: usize, out: &mut BytesMut) {
    out.put_u32(u32::try_from(len + 1).unwrap_or(u32::MAX));
    out.put_u8(KIND_FRAME);
    frame.encode(out);
}

/// Encodes a mesh message as a record.
pub fn message_record<T: Serialize>(kind: u8, message: &T) -> Bytes {
    // Plain structs of numbers and strings always encode.
    let body = rmp_serde::to_vec_named(message).unwrap_or_default();
    raw_record(kind, &body)
}

/// A record with an arbitrary body (also for tests that send garbage).
pub fn raw_record(kind: u8, body: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(5 + body.len());
    out.put_u32(u32::try_from(body.len() + 1).unwrap_or(u32::MAX));
    out.put_u8(kind);
    out.put_slice(body);
    out.freeze()
}

/// Splits records off a stream's bytes.
#[derive(Debug, Clone, Copy)]
pub struct RecordDecoder {
    max_body: usize,
}

impl RecordDecoder {
    /// Refuses bodies larger than `max_body` bytes.
    pub fn new(max_body: usize) -> Self {
        Self { max_body }
    }

    /// The next record's kind and body, if `buf` holds all of it.
    pub fn next_record(&self, buf: &mut BytesMut) -> Result<Option<(u8, Bytes)>, Oversize> {
        if buf.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        if len == 0 || len - 1 > self.max_body {
            return Err(Oversize {
                size: len.saturating_sub(1),
                limit: self.max_body,
            });
        }
        if buf.len() < 4 + len {
            buf.reserve(4 + len - buf.len());
            return Ok(None);
        }
        buf.advance(4);
        let mut record = buf.split_to(len).freeze();
        let kind = record.get_u8();
        Ok(Some((kind, record)))
    }
}

/// Decodes a mesh message body; `what` names it in the error.
pub fn decode_message<'a, T: Deserialize<'a>>(
    what: &'static str,
    body: &'a [u8],
) -> Result<T, QuicError> {
    rmp_serde::from_slice(body).map_err(|source| QuicError::UndecodableMessage { what, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_oversize_is_refused() {
        let decoder = RecordDecoder::new(64);
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&message_record(
            KIND_HELLO,
            &Hello {
                incarnation: 7,
                listen_port: 4816,
            },
        ));
        buf.extend_from_slice(&raw_record(9, b"abc")[..5]);
        let (kind, body) = decoder.next_record(&mut buf).expect("fits").expect("whole");
        assert_eq!(kind, KIND_HELLO);
        let hello: Hello = decode_message("hello", &body).expect("decodes");
        assert_eq!(hello.listen_port, 4816);
        assert_eq!(decoder.next_record(&mut buf), Ok(None), "half a record");
        buf.extend_from_slice(b"abc");
        assert_eq!(
            decoder.next_record(&mut buf),
            Ok(Some((9, Bytes::from_static(b"abc"))))
        );
        buf.extend_from_slice(&raw_record(KIND_FRAME, &[0; 65]));
        assert_eq!(
            decoder.next_record(&mut buf),
            Err(Oversize {
                size: 65,
                limit: 64
            })
        );
        let mut empty = BytesMut::from(&[0u8, 0, 0, 0][..]);
        assert!(
            decoder.next_record(&mut empty).is_err(),
            "a record has a kind"
        );
        assert!(matches!(
            decode_message::<Hello>("hello", b"\xc1"),
            Err(QuicError::UndecodableMessage { what: "hello", .. })
        ));
    }
}
