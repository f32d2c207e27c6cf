//! Several frames of one subject in one NATS message, written by the publisher when frames
//! of one subject wait in its queue one after another, and read by the receiver.
//!
//! ```text
//! batch = 0xC1 1*record        ; record = length:u32 kind:u8 frame (`demitter_core::record`), kind 0
//! ```
//!
//! `0xC1` is never the first byte of a frame (the frame version, `0x01`) nor of any
//! MessagePack value (MessagePack never uses it), so a batch is told apart from both a
//! frame and a plain client's event. A frame alone goes alone, as it is: a batch is made
//! only of frames already waiting, so batching adds no wait.

use async_nats::Subject;
use bytes::{BufMut, Bytes, BytesMut};
use demitter_core::record::{RecordDecoder, put_record};

/// The first byte of a batch.
pub(crate) const BATCH_MARK: u8 = 0xC1;
/// The kind of the records in a batch: a frame.
pub(crate) const FRAME_RECORD: u8 = 0;

/// Gathers the frames of one subject that come one after another into one message.
#[derive(Debug)]
pub(crate) struct Batcher {
    /// The most bytes of one message.
    limit: usize,
    subject: Option<Subject>,
    /// The pending message's frame, while it is the only one.
    alone: Option<Bytes>,
    /// The pending batch, once it holds two frames or more.
    batch: BytesMut,
}

/// A message to publish: its subject and payload.
pub(crate) type Message = (Subject, Bytes);

impl Batcher {
    /// A batcher making messages of at most `limit` bytes.
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            limit,
            subject: None,
            alone: None,
            batch: BytesMut::new(),
        }
    }

    /// Adds `frame`, for `subject`: returns the pending message if the frame does not
    /// join it (another subject, or no room), to be published before the frame's.
    /// Refused if a new subject is not UTF-8.
    pub(crate) fn push(
        &mut self,
        subject: Bytes,
        frame: Bytes,
    ) -> Result<Option<Message>, std::str::Utf8Error> {
        let same = self
            .subject
            .as_ref()
            .is_some_and(|s| s.as_bytes() == &subject[..]);
        let grown = self.pending_len() + RECORD_LEN + frame.len();
        if same && grown <= self.limit {
            if let Some(first) = self.alone.take() {
                self.batch
                    .reserve(1 + 2 * RECORD_LEN + first.len() + frame.len());
                self.batch.put_u8(BATCH_MARK);
                put_record(&mut self.batch, FRAME_RECORD, &first);
            }
            put_record(&mut self.batch, FRAME_RECORD, &frame);
            return Ok(None);
        }
        let subject = Subject::from_utf8(subject)?;
        let pending = self.take();
        self.subject = Some(subject);
        self.alone = Some(frame);
        Ok(pending)
    }

    /// The pending message, if any.
    pub(crate) fn take(&mut self) -> Option<Message> {
        let subject = self.subject.take()?;
        let payload = match self.alone.take() {
            Some(frame) => frame,
            None => self.batch.split().freeze(),
        };
        Some((subject, payload))
    }

    fn pending_len(&self) -> usize {
        self.alone
            .as_ref()
            .map_or(self.batch.len(), |f| 1 + RECORD_LEN + f.len())
    }
}

/// Bytes a record adds around a frame.
const RECORD_LEN: usize = demitter_core::record::RECORD_HEADER;

/// The frames of a batch's payload (after [`BATCH_MARK`]), each at most `max_frame` bytes;
/// an error for a record that is cut short, over the limit, or of another kind (the
/// records before it stand).
pub(crate) fn frames(
    mut records: Bytes,
    max_frame: usize,
) -> impl Iterator<Item = Result<Bytes, String>> {
    let decoder = RecordDecoder::new(max_frame);
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed {
            return None;
        }
        let next = match decoder.split_record(&mut records)? {
            Ok((FRAME_RECORD, frame)) => Ok(frame),
            Ok((kind, _)) => Err(format!("a batch record of unknown kind {kind}")),
            Err(e) => Err(format!("a batch record: {e}")),
        };
        failed = next.is_err();
        Some(next)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn frames_of_one_subject_share_a_message_and_a_frame_alone_goes_as_it_is() {
        let mut batcher = Batcher::new(1024);
        assert_eq!(
            batcher.push(subject("a"), Bytes::from_static(b"\x01one")),
            Ok(None)
        );
        assert_eq!(
            batcher.push(subject("a"), Bytes::from_static(b"\x01two")),
            Ok(None)
        );
        let (first, batch) = batcher
            .push(subject("b"), Bytes::from_static(b"\x01three"))
            .expect("UTF-8")
            .expect("another subject ends the batch");
        assert_eq!(first.as_str(), "a");
        assert_eq!(batch[0], BATCH_MARK);
        let read: Vec<Bytes> = frames(batch.slice(1..), 1024)
            .collect::<Result<_, _>>()
            .expect("whole records");
        assert_eq!(read, [&b"\x01one"[..], b"\x01two"]);
        let (second, alone) = batcher.take().expect("pending");
        assert_eq!((second.as_str(), &alone[..]), ("b", &b"\x01three"[..]));
        assert!(batcher.take().is_none());
    }

    #[test]
    fn a_batch_stays_within_its_limit() {
        let mut batcher = Batcher::new(40);
        let frame = Bytes::from(vec![1u8; 10]);
        let mut messages = Vec::new();
        for _ in 0..10 {
            messages.extend(batcher.push(subject("a"), frame.clone()).expect("UTF-8"));
        }
        messages.extend(batcher.take());
        assert!(messages.iter().all(|(_, payload)| payload.len() <= 40));
        let count: usize = messages
            .iter()
            .map(|(_, p)| {
                if p[0] == BATCH_MARK {
                    frames(p.slice(1..), 40).count()
                } else {
                    1
                }
            })
            .sum();
        assert_eq!(count, 10, "every frame, once");
    }

    #[test]
    fn a_bad_record_ends_the_batch_with_an_error() {
        let mut records = BytesMut::new();
        put_record(&mut records, FRAME_RECORD, b"\x01ok");
        put_record(&mut records, 9, b"\x01odd");
        put_record(&mut records, FRAME_RECORD, b"\x01after");
        let read: Vec<_> = frames(records.freeze(), 1024).collect();
        assert_eq!(read.len(), 2);
        assert!(
            read[1]
                .as_ref()
                .is_err_and(|e| e.contains("unknown kind 9"))
        );
        let cut = Bytes::from_static(b"\x00\x00\x00\x09\x00ab");
        assert!(frames(cut, 1024).all(|r| r.is_err()));
        assert!(
            Batcher::new(64)
                .push(Bytes::from_static(b"\xff"), Bytes::new())
                .is_err()
        );
    }
}
