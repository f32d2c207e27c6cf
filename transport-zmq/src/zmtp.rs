//! Just enough ZMTP 3.0 (RFC 23/ZMTP, NULL mechanism) for PUB, SUB, XSUB and XPUB peers:
//! the greeting, the READY handshake, and framing. Interoperates with libzmq and zmq.rs.
//!
//! ```text
//! greeting = %xFF 8%x00 %x7F  %x03 %x00  "NULL" 16%x00  as-server  31%x00   ; 64 bytes
//! frame    = flags:u8 size:(u8 | u64 if LONG) body                         ; big-endian
//! flags    = MORE %x01 | LONG %x02 | COMMAND %x04
//! READY    = command "READY" (name-len:u8 name value-len:u32 value)*      ; "Socket-Type"
//! ```
//!
//! A subscription travels as a one-frame message `%x01 topic` (subscribe) or `%x00 topic`
//! (cancel); ZMTP 3.1 peers may send `SUBSCRIBE` / `CANCEL` commands instead, also accepted.
//!
//! Public for the forwarder crate (`demitter-forwarder`), with [`conn`](crate::conn).

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::ZmqError;

/// The length of a ZMTP 3 greeting.
pub(crate) const GREETING_LEN: usize = 64;
/// The length of its signature, the part that says nothing about the peer.
pub(crate) const SIGNATURE_LEN: usize = 10;
const FLAG_MORE: u8 = 0x01;
const FLAG_LONG: u8 = 0x02;
const FLAG_COMMAND: u8 = 0x04;

/// The socket types this crate speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketType {
    /// An XPUB socket: the forwarder's subscriber side.
    XPub,
    /// An XSUB socket: the forwarder's publisher side.
    XSub,
    /// A PUB socket: a publisher.
    Pub,
    /// A SUB socket: a subscriber.
    Sub,
}

impl SocketType {
    /// The name ZMTP's READY command gives it (`XPUB`, ...).
    pub fn name(self) -> &'static str {
        match self {
            SocketType::XPub => "XPUB",
            SocketType::XSub => "XSUB",
            SocketType::Pub => "PUB",
            SocketType::Sub => "SUB",
        }
    }

    /// Whether a socket of this type may talk to one calling itself `peer`.
    pub fn accepts(self, peer: &str) -> bool {
        match self {
            SocketType::XPub => matches!(peer, "SUB" | "XSUB"),
            SocketType::XSub => matches!(peer, "PUB" | "XPUB"),
            SocketType::Pub => matches!(peer, "SUB" | "XSUB"),
            SocketType::Sub => matches!(peer, "PUB" | "XPUB"),
        }
    }
}

/// The security mechanisms this crate speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// No security (Demitter's, and ZeroMQ's default).
    Null,
    /// CURVE (RFC 25): authenticated and encrypted.
    Curve,
}

impl Mechanism {
    fn name(self) -> &'static [u8] {
        self.label().as_bytes()
    }

    /// Its name in the greeting: `NULL` or `CURVE`.
    pub fn label(self) -> &'static str {
        match self {
            Mechanism::Null => "NULL",
            Mechanism::Curve => "CURVE",
        }
    }
}

/// Our greeting: ZMTP 3.0 with `mechanism`, in the role `as_server`.
pub(crate) fn greeting_for(mechanism: Mechanism, as_server: bool) -> [u8; GREETING_LEN] {
    let mut g = [0u8; GREETING_LEN];
    g[0] = 0xFF;
    g[9] = 0x7F;
    g[10] = 3;
    g[11] = 0;
    let name = mechanism.name();
    g[12..12 + name.len()].copy_from_slice(name);
    g[32] = u8::from(as_server);
    g
}

/// Checks the signature a peer's greeting starts with (its first [`SIGNATURE_LEN`] bytes).
pub(crate) fn check_signature(g: &[u8; GREETING_LEN]) -> Result<(), ZmqError> {
    if g[0] != 0xFF || g[9] != 0x7F {
        return Err(ZmqError::Handshake("not a ZMTP greeting".into()));
    }
    Ok(())
}

/// Checks a peer's greeting: ZMTP 3.x with `mechanism`. (Its as-server field is not
/// read: libzmq 4.3 sends 0 even as a CURVE server, and each side knows its role.)
pub(crate) fn check_greeting_for(
    g: &[u8; GREETING_LEN],
    wanted: Mechanism,
) -> Result<(), ZmqError> {
    check_signature(g)?;
    if g[10] < 3 {
        return Err(ZmqError::Handshake(format!(
            "peer speaks ZMTP {}.{}; version 3 or later is required",
            g[10], g[11]
        )));
    }
    let mechanism = &g[12..32];
    let end = mechanism
        .iter()
        .position(|b| *b == 0)
        .unwrap_or(mechanism.len());
    if &mechanism[..end] != wanted.name() {
        return Err(ZmqError::Handshake(format!(
            "peer wants the {} security mechanism; this connection speaks {}",
            String::from_utf8_lossy(&mechanism[..end]),
            String::from_utf8_lossy(wanted.name())
        )));
    }
    Ok(())
}

/// A command frame holding `body` (its name, length-prefixed, and its data).
pub(crate) fn command_frame(body: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(9 + body.len());
    put_frame(&mut out, FLAG_COMMAND, body);
    out.freeze()
}

/// A command's whole body again: its name, length-prefixed, then its data.
pub(crate) fn command_body(name: &str, data: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(1 + name.len() + data.len());
    body.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(data);
    body
}

/// The properties of a READY (or CURVE INITIATE) naming `socket_type`.
pub(crate) fn socket_type_property(socket_type: SocketType) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + socket_type.name().len());
    put_property(&mut out, "Socket-Type", socket_type.name().as_bytes());
    out
}

/// Appends the property `name` = `value` to a READY's (or INITIATE's) properties.
pub(crate) fn put_property(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(&u32::try_from(value.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(value);
}

/// The READY command announcing `socket_type`, as a frame.
pub(crate) fn ready(socket_type: SocketType) -> Bytes {
    command_frame(&command_body("READY", &socket_type_property(socket_type)))
}

/// A decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZmtpFrame {
    /// One part of a message.
    Part {
        /// Whether another part follows.
        more: bool,
        /// The part's bytes.
        body: Bytes,
    },
    /// A command.
    Command {
        /// Its name (`READY`, `SUBSCRIBE`, ...).
        name: String,
        /// The rest of its body.
        data: Bytes,
    },
}

/// The `Socket-Type` property of a READY command's data.
pub(crate) fn ready_socket_type(data: Bytes) -> Result<String, ZmqError> {
    let value = property(data, "Socket-Type")?
        .ok_or_else(|| ZmqError::Handshake("READY carries no Socket-Type".into()))?;
    String::from_utf8(value.to_vec())
        .map_err(|_| ZmqError::Malformed("Socket-Type is not UTF-8".into()))
}

/// The value of the property `wanted` (its name compared without case) in a READY
/// command's data, if it is there.
pub(crate) fn property(mut data: Bytes, wanted: &str) -> Result<Option<Bytes>, ZmqError> {
    while !data.is_empty() {
        let name_len = data.get_u8() as usize;
        if data.len() < name_len + 4 {
            return Err(ZmqError::Malformed("truncated READY property".into()));
        }
        let name = data.split_to(name_len);
        let value_len = data.get_u32() as usize;
        if data.len() < value_len {
            return Err(ZmqError::Malformed("truncated READY property value".into()));
        }
        let value = data.split_to(value_len);
        if name.eq_ignore_ascii_case(wanted.as_bytes()) {
            return Ok(Some(value));
        }
    }
    Ok(None)
}

/// Splits frames off a byte stream, refusing frames over `max_frame`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ZmtpFrameDecoder {
    max_frame: usize,
}

impl ZmtpFrameDecoder {
    pub(crate) fn new(max_frame: usize) -> Self {
        Self { max_frame }
    }

    /// The next whole frame in `buf`, if there is one.
    pub(crate) fn decode(self, buf: &mut BytesMut) -> Result<Option<ZmtpFrame>, ZmqError> {
        let Some(&flags) = buf.first() else {
            return Ok(None);
        };
        if flags & !(FLAG_MORE | FLAG_LONG | FLAG_COMMAND) != 0 {
            return Err(ZmqError::Malformed(format!(
                "reserved flag bits set: {flags:#04x}"
            )));
        }
        let header = if flags & FLAG_LONG != 0 { 9 } else { 2 };
        if buf.len() < header {
            return Ok(None);
        }
        let size = if flags & FLAG_LONG != 0 {
            let mut raw = [0u8; 8];
            raw.copy_from_slice(&buf[1..9]);
            u64::from_be_bytes(raw)
        } else {
            u64::from(buf[1])
        };
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        if size > self.max_frame {
            return Err(ZmqError::Malformed(format!(
                "frame of {size} bytes exceeds the limit of {} bytes",
                self.max_frame
            )));
        }
        if buf.len() < header + size {
            buf.reserve(header + size - buf.len());
            return Ok(None);
        }
        buf.advance(header);
        let mut body = buf.split_to(size).freeze();
        if flags & FLAG_COMMAND != 0 {
            if body.is_empty() {
                return Err(ZmqError::Malformed("empty command".into()));
            }
            let name_len = body.get_u8() as usize;
            if body.len() < name_len {
                return Err(ZmqError::Malformed("truncated command name".into()));
            }
            let name = String::from_utf8_lossy(&body.split_to(name_len)).into_owned();
            return Ok(Some(ZmtpFrame::Command { name, data: body }));
        }
        Ok(Some(ZmtpFrame::Part {
            more: flags & FLAG_MORE != 0,
            body,
        }))
    }
}

/// A whole message found in a buffer without copying: its exact bytes (all frames, as
/// received) and its topic (the first frame's body, a slice of the same bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawMessage {
    /// Every frame of the message, exactly as received.
    pub bytes: Bytes,
    /// The first frame's body (a slice of `bytes`).
    pub topic: Bytes,
}

impl RawMessage {
    /// The body of part `index` (0 is the topic), a slice of `bytes`; `None` if the
    /// message has fewer parts. (Its frames were checked when it was split off.)
    pub fn part(&self, index: usize) -> Option<Bytes> {
        let mut at = 0;
        for i in 0..=index {
            let flags = *self.bytes.get(at)?;
            let (header, size) = if flags & FLAG_LONG != 0 {
                let raw: [u8; 8] = self.bytes.get(at + 1..at + 9)?.try_into().ok()?;
                (9, usize::try_from(u64::from_be_bytes(raw)).ok()?)
            } else {
                (2, usize::from(*self.bytes.get(at + 1)?))
            };
            let body = at + header..at + header + size;
            if body.end > self.bytes.len() {
                return None;
            }
            if i == index {
                return Some(self.bytes.slice(body));
            }
            at = body.end;
        }
        None
    }
}

/// What [`ZmtpFrameDecoder::split_message`] found at the front of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Split {
    /// Not all of it has arrived yet.
    Incomplete,
    /// A command frame, split off and returned.
    Command(ZmtpFrame),
    /// A whole message, split off as it came.
    Message(RawMessage),
}

impl ZmtpFrameDecoder {
    /// Splits the next whole message (all its frames) off `buf` without copying, or the next
    /// command. Refuses frames over the limit and messages of more than `max_parts` parts.
    pub(crate) fn split_message(
        self,
        buf: &mut BytesMut,
        max_parts: usize,
    ) -> Result<Split, ZmqError> {
        let mut at = 0;
        let mut parts = 0;
        let mut topic = 0..0;
        loop {
            let Some(&flags) = buf.get(at) else {
                return Ok(Split::Incomplete);
            };
            if flags & FLAG_COMMAND != 0 && parts == 0 {
                return Ok(match self.decode(buf)? {
                    Some(frame) => Split::Command(frame),
                    None => Split::Incomplete,
                });
            }
            if flags & !(FLAG_MORE | FLAG_LONG) != 0 {
                return Err(ZmqError::Malformed(format!(
                    "unexpected flags {flags:#04x} inside a message"
                )));
            }
            let header = if flags & FLAG_LONG != 0 { 9 } else { 2 };
            if buf.len() < at + header {
                return Ok(Split::Incomplete);
            }
            let size = if flags & FLAG_LONG != 0 {
                let mut raw = [0u8; 8];
                raw.copy_from_slice(&buf[at + 1..at + 9]);
                usize::try_from(u64::from_be_bytes(raw)).unwrap_or(usize::MAX)
            } else {
                usize::from(buf[at + 1])
            };
            if size > self.max_frame {
                return Err(ZmqError::Malformed(format!(
                    "frame of {size} bytes exceeds the limit of {} bytes",
                    self.max_frame
                )));
            }
            let end = at + header + size;
            if buf.len() < end {
                buf.reserve(end - buf.len());
                return Ok(Split::Incomplete);
            }
            if parts == 0 {
                topic = at + header..end;
            }
            parts += 1;
            if flags & FLAG_MORE == 0 {
                let bytes = buf.split_to(end).freeze();
                let topic = bytes.slice(topic);
                return Ok(Split::Message(RawMessage { bytes, topic }));
            }
            if parts >= max_parts {
                return Err(ZmqError::Malformed(format!(
                    "message of more than {max_parts} parts"
                )));
            }
            at = end;
        }
    }
}

fn put_frame(out: &mut BytesMut, flags: u8, body: &[u8]) {
    put_header(out, flags, body.len());
    out.put_slice(body);
}

fn put_header(out: &mut BytesMut, flags: u8, len: usize) {
    if len > 255 {
        out.put_u8(flags | FLAG_LONG);
        out.put_u64(len as u64);
    } else {
        out.put_u8(flags);
        out.put_u8(len as u8);
    }
}

/// Appends the header of a message part of `len` bytes, for a body written separately.
pub(crate) fn put_frame_header(out: &mut BytesMut, more: bool, len: usize) {
    put_header(out, if more { FLAG_MORE } else { 0 }, len);
}

/// Appends a message of `parts` as frames.
pub fn put_message(out: &mut BytesMut, parts: &[&[u8]]) {
    let last = parts.len().saturating_sub(1);
    for (i, part) in parts.iter().enumerate() {
        put_frame(out, if i < last { FLAG_MORE } else { 0 }, part);
    }
}

/// A subscription message: `%x01 topic` or `%x00 topic`.
pub fn subscription(subscribe: bool, topic: &[u8]) -> Bytes {
    let mut body = Vec::with_capacity(topic.len() + 1);
    body.push(u8::from(subscribe));
    body.extend_from_slice(topic);
    let mut out = BytesMut::new();
    put_message(&mut out, &[&body]);
    out.freeze()
}

/// What a subscription frame or command says, if it is one.
pub fn parse_subscription(frame: &ZmtpFrame) -> Option<(bool, Bytes)> {
    match frame {
        ZmtpFrame::Part { more: false, body } if !body.is_empty() => match body[0] {
            1 => Some((true, body.slice(1..))),
            0 => Some((false, body.slice(1..))),
            _ => None,
        },
        ZmtpFrame::Command { name, data } if name == "SUBSCRIBE" => Some((true, data.clone())),
        ZmtpFrame::Command { name, data } if name == "CANCEL" => Some((false, data.clone())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(bytes: &[u8]) -> Vec<ZmtpFrame> {
        let mut buf = BytesMut::from(bytes);
        let dec = ZmtpFrameDecoder::new(1 << 20);
        let mut out = Vec::new();
        while let Some(f) = dec.decode(&mut buf).expect("well-formed") {
            out.push(f);
        }
        assert!(buf.is_empty());
        out
    }

    #[test]
    fn a_raw_messages_parts_are_found_short_and_long() {
        let long = vec![7u8; 300];
        let mut bytes = BytesMut::new();
        put_message(&mut bytes, &[b"topic", &long, b"last"]);
        let bytes = bytes.freeze();
        let message = RawMessage {
            topic: bytes.slice(2..7),
            bytes,
        };
        assert_eq!(message.part(0).as_deref(), Some(&b"topic"[..]));
        assert_eq!(message.part(1).as_deref(), Some(&long[..]));
        assert_eq!(message.part(2).as_deref(), Some(&b"last"[..]));
        assert_eq!(message.part(3), None);
    }

    #[test]
    fn greeting_round_trips_and_refuses_others() {
        let null = greeting_for(Mechanism::Null, false);
        let curve = greeting_for(Mechanism::Curve, true);
        assert!(check_greeting_for(&null, Mechanism::Null).is_ok());
        assert!(check_greeting_for(&curve, Mechanism::Null).is_err());
        assert!(check_greeting_for(&curve, Mechanism::Curve).is_ok());
        assert!(check_greeting_for(&null, Mechanism::Curve).is_err());
        let mut v2 = null;
        v2[10] = 2;
        assert!(check_greeting_for(&v2, Mechanism::Null).is_err());
        assert!(check_signature(&null).is_ok());
        assert!(check_signature(&[0u8; GREETING_LEN]).is_err());
        assert!(check_greeting_for(&[0u8; GREETING_LEN], Mechanism::Null).is_err());
    }

    #[test]
    fn ready_carries_the_socket_type() {
        let frames = decode_all(&ready(SocketType::XPub));
        let [ZmtpFrame::Command { name, data }] = frames.as_slice() else {
            panic!("one command: {frames:?}");
        };
        assert_eq!(name, "READY");
        assert_eq!(ready_socket_type(data.clone()).expect("present"), "XPUB");
        assert!(SocketType::XSub.accepts("PUB") && !SocketType::XSub.accepts("SUB"));
        assert!(SocketType::XPub.accepts("SUB") && !SocketType::XPub.accepts("PUB"));
    }

    #[test]
    fn messages_short_and_long_round_trip() {
        let long = vec![7u8; 300];
        let mut out = BytesMut::new();
        put_message(&mut out, &[b"s:topic", b"origin", &long]);
        let frames = decode_all(&out);
        assert_eq!(frames.len(), 3);
        assert!(
            matches!(&frames[0], ZmtpFrame::Part { more: true, body } if &body[..] == b"s:topic")
        );
        assert!(matches!(&frames[2], ZmtpFrame::Part { more: false, body } if body.len() == 300));
    }

    #[test]
    fn whole_messages_split_off_as_received() {
        let mut out = BytesMut::new();
        put_message(&mut out, &[b"s:topic", b"origin", &[9u8; 300]]);
        let one = out.clone().freeze();
        put_message(&mut out, &[b"s:next", b"o", b"p"]);
        let dec = ZmtpFrameDecoder::new(1 << 20);
        let mut partial = BytesMut::from(&out[..one.len() - 1]);
        assert_eq!(
            dec.split_message(&mut partial, 16).expect("ok"),
            Split::Incomplete
        );
        let Split::Message(first) = dec.split_message(&mut out, 16).expect("ok") else {
            panic!("a message");
        };
        assert_eq!(
            (first.bytes.clone(), &first.topic[..]),
            (one, &b"s:topic"[..])
        );
        let Split::Message(second) = dec.split_message(&mut out, 16).expect("ok") else {
            panic!("a message");
        };
        assert_eq!(&second.topic[..], b"s:next");
        assert!(out.is_empty());
        let mut many = BytesMut::new();
        put_message(&mut many, &[b"a", b"b", b"c"]);
        assert!(dec.split_message(&mut many, 2).is_err());
        let mut command = BytesMut::from(&ready(SocketType::Pub)[..]);
        assert!(matches!(
            dec.split_message(&mut command, 16),
            Ok(Split::Command(_))
        ));
    }

    #[test]
    fn subscriptions_as_messages_and_as_commands() {
        let frames = decode_all(&subscription(true, b"s:user."));
        assert_eq!(
            parse_subscription(&frames[0]),
            Some((true, Bytes::from_static(b"s:user.")))
        );
        let cancel = ZmtpFrame::Command {
            name: "CANCEL".into(),
            data: Bytes::from_static(b"s:x"),
        };
        assert_eq!(
            parse_subscription(&cancel),
            Some((false, Bytes::from_static(b"s:x")))
        );
    }

    #[test]
    fn hostile_frames_are_errors_or_wait_for_more() {
        let dec = ZmtpFrameDecoder::new(16);
        let mut oversize = BytesMut::from(&[0x02, 0, 0, 0, 0, 0, 0, 1, 0][..]);
        assert!(dec.decode(&mut oversize).is_err());
        let mut reserved = BytesMut::from(&[0x80, 0][..]);
        assert!(dec.decode(&mut reserved).is_err());
        let mut partial = BytesMut::from(&[0x00, 5, b'a'][..]);
        assert_eq!(dec.decode(&mut partial).expect("not an error"), None);
        let mut empty_command = BytesMut::from(&[0x04, 0][..]);
        assert!(dec.decode(&mut empty_command).is_err());
    }
}
