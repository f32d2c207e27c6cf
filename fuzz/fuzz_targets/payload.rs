//! MessagePack payloads, decoded to a typed struct, to JSON-shaped values and to rmpv values.
#![no_main]

use std::collections::BTreeMap;

use bytes::Bytes;
use demitter_core::{RawPayload, decode_payload};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, serde::Deserialize)]
#[allow(dead_code)]
struct Order {
    id: u64,
    items: Vec<String>,
    notes: BTreeMap<String, f64>,
    paid: Option<bool>,
}

fuzz_target!(|data: &[u8]| {
    let _ = decode_payload::<Order>(data);
    let _ = decode_payload::<serde_json::Value>(data);
    let _ = RawPayload::new(Bytes::copy_from_slice(data)).to_value();
});
