//! The receiving task: what the bus subscription brings, decoded, to the emitter in
//! batches.
//!
//! A message is one of two things:
//!
//! - **a frame** (its payload starts with the frame version and a frame kind): decoded as
//!   on every transport;
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

use async_nats::Subscriber;
use bytes::Bytes;
use demitter_core::{
    DecodeCache, ErrorKind, ErrorReport, EventFrame, FRAME_VERSION, Frame, InboxSender, Incoming,
    NodeId,
};
use futures_util::StreamExt as _;
use tokio_util::sync::CancellationToken;

use crate::subject::{self, BusSubject};

/// The most frames handed to the emitter in one batch.
const RECEIVE_BATCH: usize = 256;
/// A batch is handed over once it holds this many bytes: with the inbox's batches, what
/// the inbox may hold stays near 16 MiB whatever the size of the events.
const RECEIVE_BATCH_BYTES: usize = 64 * 1024;
/// The frame kinds (the byte after the version).
const FRAME_KINDS: [u8; 2] = [1, 2];

/// How the receiving task reads messages.
pub(crate) struct Receiving {
    /// The largest frame (or plain event) accepted.
    pub(crate) max_frame_bytes: usize,
    /// The bus's subject prefix.
    pub(crate) prefix: String,
    /// Whether the subject's sender token is each message's proven sender.
    pub(crate) authenticated: bool,
    /// This node's id as a subject token, once known: control frames for other peers are
    /// skipped unread.
    pub(crate) own_token: Arc<OnceLock<String>>,
}

/// Hands what the bus subscription receives to the emitter, in batches, until cancelled.
pub(crate) async fn receive(
    mut subscriber: Subscriber,
    inbox: InboxSender,
    how: Receiving,
    cancel: CancellationToken,
) {
    let mut decoder = Decoder {
        how,
        cache: DecodeCache::default(),
        last_sender: None,
    };
    loop {
        let first = tokio::select! {
            () = cancel.cancelled() => break,
            message = subscriber.next() => message,
        };
        let Some(first) = first else { break };
        let mut bytes = first.payload.len();
        let mut batch = Vec::with_capacity(16);
        batch.extend(decoder.decode(first));
        while batch.len() < RECEIVE_BATCH && bytes < RECEIVE_BATCH_BYTES {
            match futures_util::FutureExt::now_or_never(subscriber.next()) {
                Some(Some(message)) => {
                    bytes += message.payload.len();
                    batch.extend(decoder.decode(message));
                }
                _ => break,
            }
        }
        if batch.is_empty() {
            continue;
        }
        tokio::select! {
            () = cancel.cancelled() => break,
            sent = inbox.send(batch) => if !sent { break },
        }
    }
}

/// Turns messages into what the emitter receives.
struct Decoder {
    how: Receiving,
    cache: DecodeCache,
    /// The last proven sender, by its subject token: messages come in runs from one.
    last_sender: Option<(String, NodeId)>,
}

impl Decoder {
    /// What `message` brings; `None` for a control frame for another peer.
    fn decode(&mut self, message: async_nats::Message) -> Option<Incoming> {
        if self.for_another(&message.subject) {
            return None;
        }
        let from = if self.how.authenticated {
            self.sender_of(&message.subject)
        } else {
            None
        };
        let payload = message.payload;
        let decoded = if is_frame(&payload) {
            Frame::decode_cached(payload, self.how.max_frame_bytes, &mut self.cache)
                .map_err(|e| e.to_string())
        } else {
            self.plain_event(&message.subject, payload)
        };
        Some(match decoded {
            Ok(frame) => Incoming::Frame { from, frame },
            Err(why) => Incoming::Report(ErrorReport::new(
                ErrorKind::Deserialization,
                1,
                format!("dropped a message from NATS on {}: {why}", message.subject),
            )),
        })
    }

    /// Whether `subject` is a control subject for a peer that is not this node.
    fn for_another(&self, subject: &str) -> bool {
        let Some(own) = self.how.own_token.get() else {
            return false;
        };
        matches!(
            BusSubject::parse(&self.how.prefix, subject),
            Some(BusSubject::Control { to: Some(to), .. }) if to != own
        )
    }

    /// Who sent a message on `subject`; `None` if it names no node.
    fn sender_of(&mut self, subject: &str) -> Option<NodeId> {
        let token = BusSubject::parse(&self.how.prefix, subject)?.sender();
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
        let Some(BusSubject::Event { sender, name }) = BusSubject::parse(&self.how.prefix, subject)
        else {
            return Err(format!(
                "not a frame, and not on an event subject ({}.e.SENDER.NAME)",
                self.how.prefix
            ));
        };
        if payload.len() > self.how.max_frame_bytes {
            return Err(format!(
                "{} bytes, over the limit of {}",
                payload.len(),
                self.how.max_frame_bytes
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
