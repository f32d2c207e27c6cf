//! The nng bus's message decoder allocates within a bound on hostile input (see
//! `demitter_conformance::allocation`).

use std::alloc::System;

use bytes::Bytes;
use cap::Cap;
use demitter_conformance::allocation::decoders_stay_within;
use demitter_nng::wire::{self, Message};

#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);

#[test]
fn nng_messages_decode_within_the_bound() {
    let limit = 8 * 1024 * 1024;
    decoders_stay_within(&ALLOCATOR, limit, |bytes| {
        if let Ok(Message::Frames(records)) = wire::parse(Bytes::copy_from_slice(bytes)) {
            for record in records.flatten() {
                let _ = demitter_core::Frame::decode(record, limit);
            }
        }
    });
}
