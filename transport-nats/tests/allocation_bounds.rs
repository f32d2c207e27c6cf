//! The NATS message decoder allocates within a bound on hostile input (see
//! `demitter_conformance::allocation`), whatever the subject: frames, plain events and
//! control frames, plain and authenticated.

use std::alloc::System;

use bytes::Bytes;
use cap::Cap;
use demitter_conformance::allocation::decoders_stay_within;
use demitter_nats::decode::MessageDecoder;

#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);

/// Subjects of every kind the decoder tells apart.
const SUBJECTS: [&str; 6] = [
    "p.e.node-a.orders.new",
    "p.e.node-a.a~20b.~",
    "p.c.node-a",
    "p.c.node-a.me",
    "p.c.node-a.someone-else",
    "p.elsewhere",
];

#[test]
fn nats_messages_decode_within_the_bound() {
    let limit = 8 * 1024 * 1024;
    let mut plain = MessageDecoder::new("p", limit).for_node("me");
    let mut authenticated = MessageDecoder::new("p", limit)
        .for_node("me")
        .authenticated();
    let decoders = std::sync::Mutex::new([&mut plain, &mut authenticated]);
    decoders_stay_within(&ALLOCATOR, limit, |bytes| {
        let Some((&which, payload)) = bytes.split_first() else {
            return;
        };
        // A subject of the bus, or one made of the input itself.
        let made = String::from_utf8_lossy(&payload[..payload.len().min(40)]).into_owned();
        let subject = SUBJECTS
            .get(usize::from(which) % (SUBJECTS.len() + 1))
            .map_or(made.as_str(), |s| s);
        let mut decoders = decoders.lock().expect("not poisoned");
        let mut received = Vec::new();
        for decoder in decoders.iter_mut() {
            decoder.decode(subject, Bytes::copy_from_slice(payload), &mut received);
        }
    });
}
