//! The nng bus's message decoder allocates within a bound on hostile input (see
//! `demitter_conformance::allocation`).

use std::alloc::System;

use bytes::Bytes;
use cap::Cap;
use demitter_conformance::allocation::decoders_stay_within;
use demitter_nng::wire::{self, Item};

#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);

#[test]
fn nng_messages_decode_within_the_bound() {
    let limit = 8 * 1024 * 1024;
    decoders_stay_within(&ALLOCATOR, limit, |bytes| {
        if let Ok(items) = wire::parse(Bytes::copy_from_slice(bytes), limit) {
            for item in items.flatten() {
                if let Item::Frame(body) = item {
                    let _ = demitter_core::Frame::decode(body, limit);
                }
            }
        }
    });
}
