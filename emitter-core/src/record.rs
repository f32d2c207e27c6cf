//! Records: the one framing the transports that choose their own wire format put around
//! frames and their own messages (QUIC on its streams, nng inside its messages).
//!
//! ```text
//! record = length:u32 (big-endian; counts the kind byte and the body) kind:u8 body
//! ```
//!
//! What a kind means is the transport's business; a length over the receiver's limit is
//! refused before anything is buffered for it.
//!
//! ```
//! use bytes::BytesMut;
//! use demitter_core::record::{RecordDecoder, put_record};
//!
//! let mut stream = BytesMut::new();
//! put_record(&mut stream, 7, b"hello");
//! let decoder = RecordDecoder::new(1024);
//! let (kind, body) = decoder.next_record(&mut stream)?.expect("a whole record");
//! assert_eq!((kind, &body[..]), (7, &b"hello"[..]));
//! assert!(decoder.next_record(&mut stream)?.is_none(), "nothing more");
//! # Ok::<(), demitter_core::Error>(())
//! ```

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::Error;
use crate::frame::Frame;

/// Bytes before a record's body: its length and kind.
pub const RECORD_HEADER: usize = 5;

/// Appends a record of `kind` holding `body`.
pub fn put_record(out: &mut BytesMut, kind: u8, body: &[u8]) {
    put_record_header(out, kind, body.len());
    out.put_slice(body);
}

/// Appends a record of `kind` holding `frame` ([`RECORD_HEADER`] plus
/// [`Frame::encoded_len`] bytes).
pub fn put_frame_record(out: &mut BytesMut, kind: u8, frame: &Frame) {
    let len = frame.encoded_len();
    out.reserve(RECORD_HEADER + len);
    put_record_header(out, kind, len);
    frame.encode(out);
}

/// Appends the header of a record of `kind` whose body of `body_len` bytes the caller
/// writes next (for bodies written in parts, straight into a queue).
pub fn put_record_header(out: &mut BytesMut, kind: u8, body_len: usize) {
    out.put_u32(u32::try_from(body_len + 1).unwrap_or(u32::MAX));
    out.put_u8(kind);
}

/// Splits records off a byte stream or a message, refusing bodies over a limit.
#[derive(Debug, Clone, Copy)]
pub struct RecordDecoder {
    max_body: usize,
}

impl RecordDecoder {
    /// Refuses bodies larger than `max_body` bytes.
    pub fn new(max_body: usize) -> Self {
        Self { max_body }
    }

    /// The next record's kind and body from a byte stream, if `buf` holds all of it (it
    /// waits for more otherwise). An error means the stream cannot go on: the next record
    /// boundary is unknown.
    pub fn next_record(&self, buf: &mut BytesMut) -> Result<Option<(u8, Bytes)>, Error> {
        let Some(len) = self.length(buf)? else {
            return Ok(None);
        };
        if buf.len() < 4 + len {
            buf.reserve(4 + len - buf.len());
            return Ok(None);
        }
        buf.advance(4);
        let mut record = buf.split_to(len).freeze();
        let kind = record.get_u8();
        Ok(Some((kind, record)))
    }

    /// The next record of a message that holds whole records, `None` at its end. A record
    /// that runs past the end, or a length over the limit, is an error, and the rest of
    /// the message is dropped.
    pub fn split_record(&self, rest: &mut Bytes) -> Option<Result<(u8, Bytes), Error>> {
        if rest.is_empty() {
            return None;
        }
        let whole = match self.length(rest) {
            Ok(Some(len)) if rest.len() >= 4 + len => Ok(len),
            Ok(_) => Err(Error::TruncatedRecord { left: rest.len() }),
            Err(e) => Err(e),
        };
        Some(
            whole
                .map(|len| {
                    rest.advance(4);
                    let mut record = rest.split_to(len);
                    let kind = record.get_u8();
                    (kind, record)
                })
                .inspect_err(|_| rest.clear()),
        )
    }

    /// The length a record at the front of `bytes` declares (kind and body), once its
    /// four bytes are there.
    fn length(self, bytes: &[u8]) -> Result<Option<usize>, Error> {
        let Some(prefix) = bytes.first_chunk::<4>() else {
            return Ok(None);
        };
        let len = u32::from_be_bytes(*prefix) as usize;
        if len == 0 {
            return Err(Error::MalformedFrame("a record without a kind byte".into()));
        }
        if len - 1 > self.max_body {
            return Err(Error::RecordTooLarge {
                size: len - 1,
                limit: self.max_body,
            });
        }
        Ok(Some(len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_waits_for_whole_records_and_refuses_oversize_ones() {
        let decoder = RecordDecoder::new(64);
        let mut whole = BytesMut::new();
        put_record(&mut whole, 1, b"abc");
        put_record(&mut whole, 2, &[9; 64]);
        let mut stream = whole.split_to(6);
        assert_eq!(decoder.next_record(&mut stream), Ok(None), "half a record");
        stream.unsplit(whole);
        let first = decoder.next_record(&mut stream).expect("fits");
        assert_eq!(first, Some((1, Bytes::from_static(b"abc"))));
        let second = decoder
            .next_record(&mut stream)
            .expect("fits")
            .expect("whole");
        assert_eq!((second.0, second.1.len()), (2, 64));
        put_record(&mut stream, 3, &[0; 65]);
        assert_eq!(
            decoder.next_record(&mut stream),
            Err(Error::RecordTooLarge {
                size: 65,
                limit: 64
            })
        );
        let mut empty = BytesMut::from(&[0u8, 0, 0, 0][..]);
        assert!(
            decoder.next_record(&mut empty).is_err(),
            "a record has a kind"
        );
    }

    #[test]
    fn a_message_yields_its_records_and_refuses_a_truncated_one() {
        let decoder = RecordDecoder::new(64);
        let mut out = BytesMut::new();
        put_record(&mut out, 1, b"abc");
        put_record(&mut out, 2, b"de");
        let mut message = out.clone().freeze();
        assert_eq!(
            decoder.split_record(&mut message),
            Some(Ok((1, Bytes::from_static(b"abc"))))
        );
        assert_eq!(
            decoder.split_record(&mut message),
            Some(Ok((2, Bytes::from_static(b"de"))))
        );
        assert_eq!(decoder.split_record(&mut message), None);
        let mut cut = out.freeze().slice(..10);
        assert!(decoder.split_record(&mut cut).is_some_and(|r| r.is_ok()));
        assert_eq!(
            decoder.split_record(&mut cut),
            Some(Err(Error::TruncatedRecord { left: 2 }))
        );
        assert_eq!(decoder.split_record(&mut cut), None, "the rest is dropped");
    }

    #[test]
    fn a_frame_record_holds_the_frame() {
        let frame = Frame::Control(crate::frame::ControlFrame {
            source: crate::NodeId::new("n").expect("valid"),
            body: Bytes::from_static(b"xyz"),
        });
        let mut out = BytesMut::new();
        put_frame_record(&mut out, 0, &frame);
        assert_eq!(out.len(), RECORD_HEADER + frame.encoded_len());
        let (kind, body) = RecordDecoder::new(1024)
            .next_record(&mut out)
            .expect("fits")
            .expect("whole");
        assert_eq!(kind, 0);
        assert_eq!(Frame::decode(body, 1024).expect("decodes"), frame);
    }
}
