//! The nng bus's messages: batches of frame records and announcements.
#![no_main]

use bytes::Bytes;
use demitter_core::Frame;
use demitter_nng::wire::{self, MAX_ANNOUNCED, Message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match wire::parse(Bytes::copy_from_slice(data)) {
        Ok(Message::Frames(records)) => {
            for body in records.flatten() {
                assert!(body.len() <= data.len());
                let _ = Frame::decode(body, 64 * 1024);
            }
        }
        Ok(Message::Announce(announce)) => assert!(announce.known.len() <= MAX_ANNOUNCED),
        Err(_) => {}
    }
});
