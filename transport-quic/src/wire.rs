//! The QUIC transport's wire format (see `docs/wire-format.md`, "QUIC").
//!
//! Each side of a connection opens one unidirectional stream and keeps it for the life of
//! the connection. The stream starts with [`PREAMBLE`] and then carries records:
//!
//! ```text
//! u32 length (big-endian, of what follows) | u8 kind | body     (demitter_core::record)
//! ```
//!
//! | kind | body |
//! | --- | --- |
//! | 0 `FRAME` | one core frame (`Frame::encode`: events and presence control) |
//! | 1 `HELLO` | MessagePack map `{incarnation: u64, listen_port: u16, uptime_ms: u64}`; first record, once |
//! | 2 `PEERS` | MessagePack map `{peers: [{name, addr}]}`: peers the sender is connected to |
//!
//! Unknown kinds are reported and skipped (newer peers may add some); a length over the
//! limit ends the connection, since the next record boundary is unknown.

use bytes::{Bytes, BytesMut};
use demitter_core::Frame;
use demitter_core::record::{put_frame_record, put_record};
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
    /// How long the sender's transport had been running when it sent this hello, in
    /// milliseconds: of two live nodes with one name, the one running longer stays (0
    /// from a peer that does not say).
    #[serde(default)]
    pub uptime_ms: u64,
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

pub use demitter_core::record::{RECORD_HEADER, RecordDecoder};

/// Encodes a core frame as a record.
pub fn frame_record(frame: &Frame) -> Bytes {
    let mut out = BytesMut::new();
    put_frame_record(&mut out, KIND_FRAME, frame);
    out.freeze()
}

/// Encodes a mesh message as a record.
pub fn message_record<T: Serialize>(kind: u8, message: &T) -> Bytes {
    // Plain structs of numbers and strings always encode.
    let body = rmp_serde::to_vec_named(message).unwrap_or_default();
    raw_record(kind, &body)
}

/// A record with an arbitrary body (also for tests that send garbage).
pub fn raw_record(kind: u8, body: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(RECORD_HEADER + body.len());
    put_record(&mut out, kind, body);
    out.freeze()
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
    fn messages_travel_as_records_of_their_kind() {
        let decoder = RecordDecoder::new(64);
        let mut buf = BytesMut::from(
            &message_record(
                KIND_HELLO,
                &Hello {
                    incarnation: 7,
                    listen_port: 4816,
                    uptime_ms: 1,
                },
            )[..],
        );
        let (kind, body) = decoder.next_record(&mut buf).expect("fits").expect("whole");
        assert_eq!(kind, KIND_HELLO);
        let hello: Hello = decode_message("hello", &body).expect("decodes");
        assert_eq!(hello.listen_port, 4816);
        assert!(matches!(
            decode_message::<Hello>("hello", b"\xc1"),
            Err(QuicError::UndecodableMessage { what: "hello", .. })
        ));
    }
}
