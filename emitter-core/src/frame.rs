//! Frames: what transports carry, and the binary codec used by transports that are free to
//! choose their wire format (in-memory, QUIC, nng). `docs/wire-format.md` is the reference.
//!
//! ```text
//! frame   = version:u8 (= 1) kind:u8 body
//! event   = kind 1: source_len:u8 source epoch:u64 seq:u64 name_len:u8 name payload
//! control = kind 2: source_len:u8 source control-message
//! ```
//! Integers are big-endian; `payload` and `control-message` run to the end of the frame.
//! Transports carry frames whole and put their own framing around them; QUIC and nng use
//! [`record`](crate::record)s.

use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};

use crate::error::Error;
use crate::name::{is_system, validate_name};
use crate::node_id::NodeId;

/// The wire-format version this build writes and reads.
pub const FRAME_VERSION: u8 = 1;
const KIND_EVENT: u8 = 1;
const KIND_CONTROL: u8 = 2;
/// Bytes of an event frame besides source, name and payload.
pub(crate) const EVENT_OVERHEAD: usize = 1 + 1 + 1 + 8 + 8 + 1;
/// The longest event header: the overhead with a source and a name of 255 bytes each.
const MAX_HEADER_BYTES: usize = EVENT_OVERHEAD + 2 * 255;

/// The default limit on one frame: 8 MiB.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 8 * 1024 * 1024;

/// One emitted event, as it travels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFrame {
    /// The event name (never a `$` system event).
    pub name: Arc<str>,
    /// The emitter that emitted it.
    pub source: NodeId,
    /// The emitter's incarnation: random per emitter start, so a restarted emitter's
    /// sequence numbers are not mistaken for old ones.
    pub epoch: u64,
    /// The sequence number per (source, name), from 1; 0 means "not sequenced" (foreign
    /// emitters such as Demitter).
    pub seq: u64,
    /// The MessagePack payload.
    pub payload: Bytes,
}

/// A message of the core's presence protocol (interest, counts, liveness), opaque to
/// transports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlFrame {
    /// The emitter that sent it.
    pub source: NodeId,
    /// The encoded control message.
    pub body: Bytes,
}

/// What transports carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// An event.
    Event(EventFrame),
    /// A presence-protocol message.
    Control(ControlFrame),
}

impl Frame {
    /// The sender.
    pub fn source(&self) -> &NodeId {
        match self {
            Frame::Event(e) => &e.source,
            Frame::Control(c) => &c.source,
        }
    }

    /// The size of [`encode`](Self::encode)'s output, without a length prefix.
    pub fn encoded_len(&self) -> usize {
        match self {
            Frame::Event(e) => EVENT_OVERHEAD + e.source.len() + e.name.len() + e.payload.len(),
            Frame::Control(c) => 3 + c.source.len() + c.body.len(),
        }
    }

    /// Appends the frame, without a length prefix (for message-oriented transports).
    pub fn encode(&self, out: &mut BytesMut) {
        // Everything before the payload is written to the stack first, so the buffer is
        // touched twice (header, payload) rather than once per field.
        let mut header = [0u8; MAX_HEADER_BYTES];
        let (header_len, body) = self.header(&mut header);
        out.reserve(header_len + body.len());
        out.extend_from_slice(&header[..header_len]);
        out.extend_from_slice(body);
    }

    /// The frame as one buffer, without a length prefix.
    pub fn to_bytes(&self) -> Bytes {
        let mut header = [0u8; MAX_HEADER_BYTES];
        let (header_len, body) = self.header(&mut header);
        let mut out = Vec::with_capacity(header_len + body.len());
        out.extend_from_slice(&header[..header_len]);
        out.extend_from_slice(body);
        Bytes::from(out)
    }

    /// Writes everything before the payload (or control message) into `header`: its
    /// length, and what follows it.
    fn header<'a>(&'a self, header: &mut [u8; MAX_HEADER_BYTES]) -> (usize, &'a [u8]) {
        header[0] = FRAME_VERSION;
        match self {
            Frame::Event(e) => {
                header[1] = KIND_EVENT;
                let mut at = put_short_str(header, 2, &e.source);
                header[at..at + 8].copy_from_slice(&e.epoch.to_be_bytes());
                header[at + 8..at + 16].copy_from_slice(&e.seq.to_be_bytes());
                at = put_short_str(header, at + 16, &e.name);
                (at, &e.payload)
            }
            Frame::Control(c) => {
                header[1] = KIND_CONTROL;
                (put_short_str(header, 2, &c.source), &c.body)
            }
        }
    }

    /// Decodes one frame (no length prefix) from untrusted bytes, refusing anything larger
    /// than `max_bytes`. Never panics.
    pub fn decode(bytes: Bytes, max_bytes: usize) -> Result<Frame, Error> {
        Self::decode_cached(bytes, max_bytes, &mut DecodeCache::none())
    }

    /// [`decode`](Self::decode), reusing the sources and names `cache` remembers.
    pub fn decode_cached(
        mut bytes: Bytes,
        max_bytes: usize,
        cache: &mut DecodeCache,
    ) -> Result<Frame, Error> {
        if bytes.len() > max_bytes {
            return Err(Error::FrameTooLarge {
                size: bytes.len(),
                limit: max_bytes,
            });
        }
        if bytes.len() < 2 {
            return Err(malformed(format!(
                "{} bytes is too short for a frame",
                bytes.len()
            )));
        }
        let version = bytes.get_u8();
        if version != FRAME_VERSION {
            return Err(malformed(format!(
                "unsupported version {version} (this build reads version {FRAME_VERSION})"
            )));
        }
        match bytes.get_u8() {
            KIND_EVENT => {
                let source = take_node_id(&mut bytes, cache)?;
                if bytes.len() < 16 {
                    return Err(malformed("truncated event header".into()));
                }
                let epoch = bytes.get_u64();
                let seq = bytes.get_u64();
                let name = take_short_str(&mut bytes, "event name", |name| {
                    cache.event_name_bytes(name)
                })?;
                Ok(Frame::Event(EventFrame {
                    name,
                    source,
                    epoch,
                    seq,
                    payload: bytes,
                }))
            }
            KIND_CONTROL => {
                let source = take_node_id(&mut bytes, cache)?;
                Ok(Frame::Control(ControlFrame {
                    source,
                    body: bytes,
                }))
            }
            other => Err(malformed(format!("unknown frame kind {other}"))),
        }
    }
}

/// Remembers the sources and event names seen last, so decoding a frame from a known
/// sender or of a known event reuses the shared string instead of allocating (and
/// validating) a new one. Keep one per connection or receive loop.
#[derive(Debug, Default)]
pub struct DecodeCache {
    sources: Recent<NodeId>,
    names: Recent<Arc<str>>,
}

impl DecodeCache {
    /// A cache that remembers nothing: one-off decoding allocates no cache entries.
    fn none() -> Self {
        Self {
            sources: Recent::with_capacity(0),
            names: Recent::with_capacity(0),
        }
    }

    /// The node id `id`, reused if it was seen recently; an error if it is not a valid id.
    pub fn source(&mut self, id: &str) -> Result<NodeId, Error> {
        self.source_bytes(id.as_bytes())
    }

    /// [`source`](Self::source) from bytes not yet known to be UTF-8: a byte string seen
    /// recently was valid then, so it is not checked again.
    fn source_bytes(&mut self, id: &[u8]) -> Result<NodeId, Error> {
        self.sources.get_or_insert(id, |id| {
            let id = utf8(id, "source")?;
            NodeId::new(id).map_err(|e| malformed(e.to_string()))
        })
    }

    /// Remembers `id` as the most recent source, so frames from it decode to this very
    /// id (for example the authenticated peer of a connection).
    pub fn remember_source(&mut self, id: NodeId) {
        self.sources.remember(id);
    }

    /// The event name `name`, reused if it was seen recently; an error if it is not a valid
    /// event name or names a system event (those never travel).
    pub fn event_name(&mut self, name: &str) -> Result<Arc<str>, Error> {
        self.event_name_bytes(name.as_bytes())
    }

    /// [`event_name`](Self::event_name) from bytes not yet known to be UTF-8.
    fn event_name_bytes(&mut self, name: &[u8]) -> Result<Arc<str>, Error> {
        self.names.get_or_insert(name, |name| {
            let name = utf8(name, "event name")?;
            validate_name(name)?;
            if is_system(name) {
                return Err(malformed(format!(
                    "system event {name:?} is never sent over the wire"
                )));
            }
            Ok(name.into())
        })
    }
}

fn utf8<'a>(bytes: &'a [u8], what: &str) -> Result<&'a str, Error> {
    std::str::from_utf8(bytes).map_err(|_| malformed(format!("{what} is not UTF-8")))
}

/// The last few strings of one kind, most recent first.
#[derive(Debug)]
struct Recent<T> {
    items: Vec<T>,
    capacity: usize,
}

impl<T> Default for Recent<T> {
    fn default() -> Self {
        Self::with_capacity(Self::CAPACITY)
    }
}

impl<T> Recent<T> {
    /// Strings remembered at most, by default.
    const CAPACITY: usize = 16;

    fn with_capacity(capacity: usize) -> Self {
        Self {
            items: Vec::new(),
            capacity,
        }
    }
}

impl<T: Clone + std::ops::Deref<Target = str>> Recent<T> {
    fn get_or_insert(
        &mut self,
        key: &[u8],
        make: impl FnOnce(&[u8]) -> Result<T, Error>,
    ) -> Result<T, Error> {
        if let Some(at) = self.items.iter().position(|item| item.as_bytes() == key) {
            // Most recent first: a stream from one sender hits on the first compare.
            self.items[..=at].rotate_right(1);
            return Ok(self.items[0].clone());
        }
        let item = make(key)?;
        if self.capacity > 0 {
            self.remember(item.clone());
        }
        Ok(item)
    }

    fn remember(&mut self, item: T) {
        if self.capacity == 0 {
            return;
        }
        if self.items.len() == self.capacity {
            self.items.pop();
        }
        self.items.insert(0, item);
    }
}

fn malformed(reason: String) -> Error {
    Error::MalformedFrame(reason)
}

/// Writes `s` with its one-byte length at `at`; returns where the next field starts.
fn put_short_str(header: &mut [u8; MAX_HEADER_BYTES], at: usize, s: &str) -> usize {
    // Names and ids are validated to at most 255 bytes before they reach a frame.
    let len = s.len().min(255);
    header[at] = len as u8;
    header[at + 1..at + 1 + len].copy_from_slice(&s.as_bytes()[..len]);
    at + 1 + len
}

/// Splits off a length-prefixed string and hands its bytes to `build` still borrowed, so
/// the only allocation is whatever `build` makes of them.
fn take_short_str<T>(
    bytes: &mut Bytes,
    what: &str,
    build: impl FnOnce(&[u8]) -> Result<T, Error>,
) -> Result<T, Error> {
    let Some((&len, rest)) = bytes.split_first() else {
        return Err(malformed(format!("truncated before the {what}")));
    };
    let len = usize::from(len);
    let Some(text) = rest.get(..len) else {
        return Err(malformed(format!(
            "{what} of {len} bytes, but only {} left",
            rest.len()
        )));
    };
    let built = build(text)?;
    bytes.advance(1 + len);
    Ok(built)
}

fn take_node_id(bytes: &mut Bytes, cache: &mut DecodeCache) -> Result<NodeId, Error> {
    take_short_str(bytes, "source", |id| cache.source_bytes(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> Frame {
        Frame::Event(EventFrame {
            name: "user.login".into(),
            source: NodeId::new("node-a").expect("valid"),
            epoch: 7,
            seq: 42,
            payload: Bytes::from_static(b"\x81\xa1a\x01"),
        })
    }

    #[test]
    fn round_trips_both_kinds() {
        let control = Frame::Control(ControlFrame {
            source: NodeId::new("n").expect("valid"),
            body: Bytes::from_static(b"xyz"),
        });
        for frame in [event(), control] {
            let bytes = frame.to_bytes();
            assert_eq!(bytes.len(), frame.encoded_len());
            assert_eq!(Frame::decode(bytes, 1024).expect("decodes"), frame);
        }
    }

    #[test]
    fn the_decode_cache_reuses_strings_and_stays_bounded() {
        let mut cache = DecodeCache::default();
        let a1 = cache.source("a").expect("valid");
        let a2 = cache.source("a").expect("valid");
        assert!(
            std::sync::Arc::ptr_eq(a1.as_arc(), a2.as_arc()),
            "reused, not reallocated"
        );
        let peer = NodeId::new("peer-b").expect("valid");
        cache.remember_source(peer.clone());
        let from_peer = cache.source("peer-b").expect("valid");
        assert!(std::sync::Arc::ptr_eq(peer.as_arc(), from_peer.as_arc()));
        let n1 = cache.event_name("user.login").expect("valid");
        let n2 = cache.event_name("user.login").expect("valid");
        assert!(std::sync::Arc::ptr_eq(&n1, &n2), "reused, not reallocated");
        for i in 0..100 {
            cache.source(&format!("n{i}")).expect("valid");
            cache.event_name(&format!("e.{i}")).expect("valid");
        }
        assert_eq!(cache.sources.items.len(), Recent::<NodeId>::CAPACITY);
        assert_eq!(cache.names.items.len(), Recent::<Arc<str>>::CAPACITY);
        assert!(cache.source("").is_err());
        assert!(
            cache.event_name("$peer.up").is_err(),
            "system events never travel"
        );
        assert!(cache.event_name("a.+").is_err(), "not a name");
    }

    #[test]
    fn the_bytes_are_the_documented_layout_either_way_they_are_written() {
        let mut expected = vec![FRAME_VERSION, KIND_EVENT, 6];
        expected.extend_from_slice(b"node-a");
        expected.extend_from_slice(&7u64.to_be_bytes());
        expected.extend_from_slice(&42u64.to_be_bytes());
        expected.push(10);
        expected.extend_from_slice(b"user.login");
        expected.extend_from_slice(b"\x81\xa1a\x01");
        assert_eq!(&event().to_bytes()[..], &expected[..]);
        let mut appended = BytesMut::from(&b"before"[..]);
        event().encode(&mut appended);
        assert_eq!(&appended[6..], &expected[..]);
    }

    #[test]
    fn a_warm_cache_still_refuses_what_it_has_not_seen() {
        let mut cache = DecodeCache::default();
        let good = event().to_bytes();
        for _ in 0..3 {
            Frame::decode_cached(good.clone(), 1024, &mut cache).expect("decodes");
        }
        // The same name with one byte turned into invalid UTF-8.
        let mut bad = good.to_vec();
        let at = bad.len() - 5;
        bad[at] = 0xff;
        assert!(matches!(
            Frame::decode_cached(bad.into(), 1024, &mut cache),
            Err(Error::MalformedFrame(reason)) if reason.contains("UTF-8")
        ));
    }

    #[test]
    fn an_overlong_name_built_by_hand_is_cut_not_a_panic() {
        let Frame::Event(mut e) = event() else {
            unreachable!()
        };
        e.name = "n".repeat(1000).into();
        let bytes = Frame::Event(e).to_bytes();
        assert_eq!(bytes[2 + 1 + 6 + 16], 255);
    }

    #[test]
    fn hostile_frames_are_errors_not_panics() {
        let good = event().to_bytes();
        // Every truncation of a valid frame is refused or decodes to a shorter payload.
        for cut in 0..good.len() {
            let _ = Frame::decode(good.slice(..cut), 1024);
        }
        assert!(matches!(
            Frame::decode(good.clone(), 8),
            Err(Error::FrameTooLarge { .. })
        ));
        let mut wrong_version = good.to_vec();
        wrong_version[0] = 9;
        assert!(Frame::decode(wrong_version.into(), 1024).is_err());
        let mut wrong_kind = good.to_vec();
        wrong_kind[1] = 9;
        assert!(Frame::decode(wrong_kind.into(), 1024).is_err());
        let system = Frame::Event(EventFrame {
            name: "$peer.up".into(),
            ..match event() {
                Frame::Event(e) => e,
                Frame::Control(_) => unreachable!(),
            }
        });
        assert!(Frame::decode(system.to_bytes(), 1024).is_err());
    }
}
