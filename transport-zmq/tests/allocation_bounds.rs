//! The ZMTP decoder and Demitter's message decoder allocate within a bound on hostile input
//! (see `demitter_conformance::allocation`). They are private: this test reaches them
//! through the fuzzing entry points, so it needs `--features fuzzing` (which `.ci/run`
//! passes).

#![cfg(feature = "fuzzing")]

use std::alloc::System;

use cap::Cap;
use demitter_conformance::allocation::decoders_stay_within;
use demitter_zmq::fuzzing;

#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);

#[test]
fn zmtp_and_demitter_messages_decode_within_the_bound() {
    // The fuzzing entry points decode with a 64 KiB frame limit.
    decoders_stay_within(&ALLOCATOR, 64 * 1024, |bytes| {
        fuzzing::zmtp_stream(bytes);
        fuzzing::demitter_message(bytes);
    });
}
