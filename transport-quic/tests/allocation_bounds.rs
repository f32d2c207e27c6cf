//! The QUIC stream's decoders allocate within a bound on hostile input: record streams,
//! hellos and gossip (see `demitter_conformance::allocation`).

use std::alloc::System;

use bytes::BytesMut;
use cap::Cap;
use demitter_conformance::allocation::decoders_stay_within;
use demitter_quic::wire::{Hello, Peers, RecordDecoder, decode_message};

#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);

#[test]
fn quic_records_and_messages_decode_within_the_bound() {
    let limit = 8 * 1024 * 1024;
    decoders_stay_within(&ALLOCATOR, limit, |bytes| {
        let _ = decode_message::<Hello>("hello", bytes);
        let _ = decode_message::<Peers>("gossip", bytes);
        let decoder = RecordDecoder::new(limit);
        let mut buf = BytesMut::from(bytes);
        while let Ok(Some((_, body))) = decoder.next_record(&mut buf) {
            let _ = demitter_core::Frame::decode(body, limit);
        }
    });
}
