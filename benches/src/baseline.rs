//! What the raw-transport baselines send: binary event frames whose payload starts with the
//! send time, so every baseline carries the same bytes and reads its latency the same way.

use std::sync::Arc;

use bytes::{BufMut, BytesMut};
use demitter_core::{EventFrame, Frame, NodeId};

use crate::BenchError;
use crate::measure::now_ns;
use crate::run::EVENT;
use crate::scenario::Scenario;

/// Makes one baseline publisher's frames: `EVENT`, sequence numbers from 1, a payload of
/// the send time (8 bytes, big-endian) and padding up to the scenario's size.
#[derive(Debug)]
pub struct BaselineFrames {
    name: Arc<str>,
    source: NodeId,
    pad: Vec<u8>,
    seq: u64,
}

impl BaselineFrames {
    /// Frames for publisher number `publisher` of `scenario`.
    pub fn new(publisher: usize, scenario: &Scenario) -> Result<Self, BenchError> {
        Ok(Self {
            name: EVENT.into(),
            source: NodeId::new(&format!("baseline-{publisher}"))?,
            pad: vec![0x5a; scenario.payload.saturating_sub(8)],
            seq: 0,
        })
    }

    /// The next frame, stamped now.
    pub fn next_frame(&mut self) -> Frame {
        self.seq += 1;
        let mut payload = BytesMut::with_capacity(8 + self.pad.len());
        payload.put_u64(now_ns());
        payload.put_slice(&self.pad);
        Frame::Event(EventFrame {
            name: Arc::clone(&self.name),
            source: self.source.clone(),
            epoch: 1,
            seq: self.seq,
            payload: payload.freeze(),
        })
    }
}

/// The send time a baseline payload starts with, if it is long enough.
pub fn stamp(payload: &[u8]) -> Option<u64> {
    payload
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
}

/// The send time in a baseline frame's payload (`None` for anything else).
pub fn frame_stamp(frame: &Frame) -> Option<u64> {
    match frame {
        Frame::Event(e) => stamp(&e.payload),
        Frame::Control(_) => None,
    }
}
