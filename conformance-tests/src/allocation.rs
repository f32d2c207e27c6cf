//! Allocation bounds for decoders of hostile input. A test binary installs a capped
//! allocator as its global allocator and hands it to [`decoders_stay_within`], which runs
//! its decoders on 2,000 hostile inputs, each under a cap of what is allocated already plus
//! the configured limit plus 64 bytes per input byte. A decoder that believed a declared
//! length and tried to reserve more would have its allocation refused, and the process
//! would abort with "memory allocation of N bytes failed", failing the test.
//!
//! The cap is process-wide: a binary that uses this holds that single test.
//!
//! ```no_run
//! use std::alloc::System;
//! use cap::Cap;
//!
//! #[global_allocator]
//! static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);
//!
//! # fn main() {
//! demitter_conformance::allocation::decoders_stay_within(&ALLOCATOR, 1 << 20, |bytes| {
//!     let _ = demitter_core::protocol::Control::decode(bytes);
//! });
//! # }
//! ```

use std::alloc::System;

use cap::Cap;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// Inputs: arbitrary bytes, and MessagePack headers declaring huge collections, strings and
/// binaries, followed by a little.
pub fn hostile_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..600),
        (
            prop::sample::select(vec![0xdc_u8, 0xdd, 0xde, 0xdf, 0xc5, 0xc6, 0xda, 0xdb]),
            any::<u32>(),
            prop::collection::vec(any::<u8>(), 0..64),
        )
            .prop_map(|(header, len, rest)| {
                let mut out = vec![header];
                out.extend_from_slice(&len.to_be_bytes());
                out.extend(rest);
                out
            }),
    ]
}

/// Runs `decode` on 2,000 hostile inputs (and on each with a 4-byte big-endian length in
/// front, as length-prefixed records are framed), each under the cap described in the
/// [module docs](self), `limit` being the configured frame limit.
///
/// # Panics
///
/// If `decode` panics; and the process aborts if it allocates past the cap.
pub fn decoders_stay_within(allocator: &Cap<System>, limit: usize, decode: impl Fn(&[u8])) {
    let mut runner = TestRunner::new(Config::with_cases(2_000));
    runner
        .run(&(hostile_bytes(), any::<u32>()), |(bytes, declared)| {
            let mut prefixed = declared.to_be_bytes().to_vec();
            prefixed.extend_from_slice(&bytes);
            for input in [&bytes[..], &prefixed[..]] {
                let bound = limit + 64 * input.len();
                allocator
                    .set_limit(allocator.allocated() + bound)
                    .expect("the cap can be set");
                decode(input);
                allocator
                    .set_limit(usize::MAX)
                    .expect("the cap can be lifted");
            }
            Ok(())
        })
        .expect("every decode stays within the bound");
}
