//! [`MessageDecoder`]: a NATS message of the bus (its subject and payload) as what the
//! emitter receives.
//!
//! A message is one of three things:
//!
//! - **a frame** (its payload starts with the frame version and a frame kind): decoded as
//!   on every transport;
//! - **a batch** of frames of one subject (its payload starts with `0xC1`, see
//!   `crate::batch`): each decoded as a frame, a record that is not one reported;
//! - **a plain event**, from a NATS client that is not an emitter: any other payload on an
//!   event subject `PREFIX.e.SENDER.NAME…` is the event's MessagePack data, delivered
//!   unsequenced (`seq` 0, as Demitter's events are on ZeroMQ) with `SENDER` as its source
//!   and the name the subject spells. A MessagePack value that starts with the byte `1` is
//!   that one byte, so no plain event is mistaken for a frame.
//!
//! On an authenticated bus the subject's sender is each message's proven sender (the
//! servers let each node publish only on its own subjects), and the core refuses a frame
//! that claims another.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use demitter_core::{
    DecodeCache, ErrorKind, ErrorReport, EventFrame, FRAME_VERSION, Frame, Incoming, NodeId,
};

use crate::batch::{self, BATCH_MARK};
use crate::subject::{self, BusSubject};

/// The frame kinds (the byte after the version).
const FRAME_KINDS: [u8; 2] = [1, 2];

/// Turns the bus's messages into what the emitter receives. Never panics, and allocates
/// within the frame limit, whatever the subject and payload.
///
/// ```
/// use bytes::Bytes;
/// use demitter_core::{Frame, Incoming};
/// use demitter_nats::decode::MessageDecoder;
/// let mut decoder = MessageDecoder::new("demitter", 1 << 20);
/// let mut received = Vec::new();
/// decoder.decode("demitter.e.shop-1.orders.new", Bytes::from_static(b"\x07"), &mut received);
/// let [Incoming::Frame { frame: Frame::Event(event), .. }] = &received[..] else { panic!() };
/// assert_eq!((event.source.as_str(), &*event.name, event.seq), ("shop-1", "orders.new", 0));
/// ```
#[derive(Debug)]
pub struct MessageDecoder {
    prefix: String,
    max_frame_bytes: usize,
    /// Whether the subject's sender token is each message's proven sender.
    authenticated: bool,
    /// This node's id as a subject token, once known: control frames for other peers are
    /// skipped unread.
    own_token: Arc<OnceLock<String>>,
    cache: DecodeCache,
    /// The last proven sender, by its subject token: messages come in runs from one.
    last_sender: Option<(String, NodeId)>,
}

impl MessageDecoder {
    /// A decoder for the bus under `prefix`, refusing frames (and plain events) over
    /// `max_frame_bytes`.
    pub fn new(prefix: &str, max_frame_bytes: usize) -> Self {
        Self {
            prefix: prefix.to_owned(),
            max_frame_bytes,
            authenticated: false,
            own_token: Arc::default(),
            cache: DecodeCache::default(),
            last_sender: None,
        }
    }

    /// On an authenticated bus: each frame comes `from` the node its subject names.
    #[must_use]
    pub fn authenticated(mut self) -> Self {
        self.authenticated = true;
        self
    }

    /// For node `id`: control frames for other peers are skipped.
    #[must_use]
    pub fn for_node(self, id: &str) -> Self {
        let _ = self.own_token.set(subject::escape_segment(id));
        self
    }

    /// Learns this node's id when `own_token` is set (by the sender, from its first frame).
    #[must_use]
    pub(crate) fn sharing_own_token(mut self, own_token: Arc<OnceLock<String>>) -> Self {
        self.own_token = own_token;
        self
    }

    /// Appends to `into` what a message on `subject` brings: its frames, and a report of
    /// each part dropped and why; nothing for control frames for another peer.
    pub fn decode(&mut self, subject: &str, payload: Bytes, into: &mut Vec<Incoming>) {
        if self.for_another(subject) {
            return;
        }
        let from = if self.authenticated {
            self.sender_of(subject)
        } else {
            None
        };
        if payload.first() == Some(&BATCH_MARK) {
            if payload.len() == 1 {
                into.push(incoming(subject, from, Err("an empty batch".to_owned())));
                return;
            }
            for record in batch::frames(payload.slice(1..), self.max_frame_bytes) {
                let decoded = record.and_then(|frame| {
                    if is_frame(&frame) {
                        self.frame(frame)
                    } else {
                        Err("a batch record that is not a frame".to_owned())
                    }
                });
                into.push(incoming(subject, from.clone(), decoded));
            }
            return;
        }
        let decoded = if is_frame(&payload) {
            self.frame(payload)
        } else {
            self.plain_event(subject, payload)
        };
        into.push(incoming(subject, from, decoded));
    }

    fn frame(&mut self, bytes: Bytes) -> Result<Frame, String> {
        Frame::decode_cached(bytes, self.max_frame_bytes, &mut self.cache)
            .map_err(|e| e.to_string())
    }

    /// Whether `subject` is a control subject for a peer that is not this node.
    fn for_another(&self, subject: &str) -> bool {
        let Some(own) = self.own_token.get() else {
            return false;
        };
        matches!(
            BusSubject::parse(&self.prefix, subject),
            Some(BusSubject::Control { to: Some(to), .. }) if to != own
        )
    }

    /// Who sent a message on `subject`; `None` if it names no node.
    fn sender_of(&mut self, subject: &str) -> Option<NodeId> {
        let token = BusSubject::parse(&self.prefix, subject)?.sender();
        if let Some((last, id)) = &self.last_sender
            && last == token
        {
            return Some(id.clone());
        }
        let id = NodeId::new(&subject::unescape_segment(token)?).ok()?;
        self.last_sender = Some((token.to_owned(), id.clone()));
        Some(id)
    }

    /// A plain NATS client's event: its subject's sender and name, its payload the data.
    fn plain_event(&mut self, subject: &str, payload: Bytes) -> Result<Frame, String> {
        let Some(BusSubject::Event { sender, name }) = BusSubject::parse(&self.prefix, subject)
        else {
            return Err(format!(
                "not a frame, and not on an event subject ({}.e.SENDER.NAME)",
                self.prefix
            ));
        };
        if payload.len() > self.max_frame_bytes {
            return Err(format!(
                "{} bytes, over the limit of {}",
                payload.len(),
                self.max_frame_bytes
            ));
        }
        let spelled = |what| format!("its {what} is not spelled as the subject mapping escapes");
        let source = subject::unescape_segment(sender).ok_or_else(|| spelled("sender"))?;
        let name = subject::unescape_name(name).ok_or_else(|| spelled("name"))?;
        Ok(Frame::Event(EventFrame {
            source: self.cache.source(&source).map_err(|e| e.to_string())?,
            name: self.cache.event_name(&name).map_err(|e| e.to_string())?,
            epoch: 0,
            seq: 0,
            payload,
        }))
    }
}

/// A frame from `from`, or the report of why a message (or part) on `subject` was dropped.
fn incoming(subject: &str, from: Option<NodeId>, decoded: Result<Frame, String>) -> Incoming {
    match decoded {
        Ok(frame) => Incoming::Frame { from, frame },
        Err(why) => Incoming::Report(ErrorReport::new(
            ErrorKind::Deserialization,
            1,
            format!("dropped a message from NATS on {subject}: {why}"),
        )),
    }
}

/// Whether a payload is a frame: it starts with the frame version and a frame kind.
fn is_frame(payload: &[u8]) -> bool {
    matches!(payload, [version, kind, ..] if *version == FRAME_VERSION && FRAME_KINDS.contains(kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_and_plain_payloads_are_told_apart() {
        let frame = Frame::Event(EventFrame {
            name: "a".into(),
            source: NodeId::new("n").expect("valid"),
            epoch: 1,
            seq: 1,
            payload: Bytes::from_static(b"\x01"),
        });
        assert!(is_frame(&frame.to_bytes()));
        for plain in [
            &b""[..],
            b"\x01",
            b"\x81\xa1a\x01",
            b"\xa5hello",
            b"\x02\x01",
        ] {
            assert!(!is_frame(plain), "{plain:?}");
        }
    }
}
