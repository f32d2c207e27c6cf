//! The core's binary frames: one frame, and a length-prefixed stream of them.
#![no_main]

use bytes::{Bytes, BytesMut};
use demitter_core::{Frame, FrameDecoder};
use libfuzzer_sys::fuzz_target;

const LIMIT: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = Frame::decode(Bytes::copy_from_slice(data), LIMIT) {
        assert_eq!(Frame::decode(frame.to_bytes(), LIMIT).ok(), Some(frame));
    }
    let decoder = FrameDecoder::new(LIMIT);
    let mut buf = BytesMut::from(data);
    while let Ok(Some(frame)) = decoder.next_frame(&mut buf) {
        assert!(frame.len() <= LIMIT);
    }
});
