//! The core's decoders allocate within a bound on hostile input: frames, frame streams,
//! control messages, and payloads typed and dynamic (see
//! `demitter_conformance::allocation`).

use std::alloc::System;
use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use cap::Cap;
use demitter_conformance::allocation::decoders_stay_within;
use demitter_core::protocol::Control;
use demitter_core::record::RecordDecoder;
use demitter_core::{DEFAULT_MAX_FRAME_BYTES, Frame, RawPayload, decode_payload};

#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);

#[test]
fn core_decoders_allocate_within_the_bound() {
    let limit = DEFAULT_MAX_FRAME_BYTES;
    decoders_stay_within(&ALLOCATOR, limit, |bytes| {
        let shared = Bytes::copy_from_slice(bytes);
        let _ = Frame::decode(shared.clone(), limit);
        let _ = Control::decode(bytes);
        let _ = decode_payload::<BTreeMap<String, Vec<String>>>(bytes);
        let _ = decode_payload::<serde_json::Value>(bytes);
        let _ = RawPayload::new(shared.clone()).to_value();
        let decoder = RecordDecoder::new(limit);
        let mut buf = BytesMut::from(bytes);
        while let Ok(Some(_)) = decoder.next_record(&mut buf) {}
        let mut message = shared;
        while let Some(Ok(_)) = decoder.split_record(&mut message) {}
    });
}
