//! The QUIC stream's records, hellos and gossip.
#![no_main]

use bytes::BytesMut;
use demitter_quic::wire::{Hello, Peers, RecordDecoder, decode_message};
use libfuzzer_sys::fuzz_target;

const LIMIT: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let decoder = RecordDecoder::new(LIMIT);
    let mut buf = BytesMut::from(data);
    while let Ok(Some((_, body))) = decoder.next_record(&mut buf) {
        assert!(body.len() <= LIMIT);
        let _ = decode_message::<Hello>(&body);
        let _ = decode_message::<Peers>(&body);
    }
});
