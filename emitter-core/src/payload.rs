//! Event payloads: MessagePack with named fields, so Node (msgpackr) and Python read them
//! as objects.

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Error;

/// Encodes `data` as MessagePack, struct fields by name.
///
/// Small payloads (up to 1 KiB) are cut from a buffer each thread keeps, so encoding one
/// allocates nothing most of the time; holding such a payload for long keeps its 16 KiB
/// chunk alive. Larger payloads get a buffer of their own.
///
/// ```
/// #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
/// struct Bid { lot: u32, amount: u64 }
/// let bytes = demitter_core::encode_payload(&Bid { lot: 1, amount: 5 })?;
/// let back: Bid = demitter_core::decode_payload(&bytes)?;
/// assert_eq!(back, Bid { lot: 1, amount: 5 });
/// # Ok::<(), demitter_core::Error>(())
/// ```
pub fn encode_payload<T: Serialize + ?Sized>(data: &T) -> Result<Bytes, Error> {
    ARENA.with(|arena| match arena.try_borrow_mut() {
        Ok(mut arena) => encode_in_arena(&mut arena, data),
        // A `Serialize` that itself encodes a payload: the inner one gets its own buffer.
        Err(_) => encode_alone(data),
    })
}

/// Payloads up to this size are cut from a shared per-thread buffer; larger ones get a
/// buffer of their own, so a big payload never keeps more than itself alive.
const ARENA_MAX_PAYLOAD: usize = 1024;
/// The per-thread buffer small payloads are cut from. A payload still held keeps its
/// chunk alive (at most this much); once every payload cut from a chunk is gone, the chunk
/// is written over again, so a steady stream of emits allocates nothing.
const ARENA_CHUNK: usize = 16 * 1024;

thread_local! {
    static ARENA: std::cell::RefCell<BytesMut> = std::cell::RefCell::new(BytesMut::new());
}

fn encode_in_arena<T: Serialize + ?Sized>(arena: &mut BytesMut, data: &T) -> Result<Bytes, Error> {
    if arena.capacity() < ARENA_MAX_PAYLOAD {
        arena.reserve(ARENA_CHUNK);
    }
    let written = rmp_serde::encode::write_named(&mut (&mut *arena).writer(), data);
    if let Err(e) = written {
        arena.clear();
        return Err(Error::Encode(e.to_string()));
    }
    if arena.len() <= ARENA_MAX_PAYLOAD {
        return Ok(arena.split().freeze());
    }
    let alone = Bytes::copy_from_slice(arena);
    arena.clear();
    if arena.capacity() > ARENA_CHUNK {
        // Grown for the big one: let that memory go.
        *arena = BytesMut::new();
    }
    Ok(alone)
}

fn encode_alone<T: Serialize + ?Sized>(data: &T) -> Result<Bytes, Error> {
    let mut out = Vec::new();
    rmp_serde::encode::write_named(&mut out, data)
        .map(|()| Bytes::from(out))
        .map_err(|e| Error::Encode(e.to_string()))
}

/// Decodes a MessagePack payload into `T`.
pub fn decode_payload<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    rmp_serde::from_slice(bytes).map_err(|e| Error::Decode(e.to_string()))
}

/// A type a listener can receive as its event's `data`.
///
/// Every `serde` type is one (decoded from MessagePack); so is [`RawPayload`], which keeps
/// the bytes as they came.
pub trait FromPayload: Sized + Send + 'static {
    /// Builds the value from the event's MessagePack bytes.
    fn from_payload(bytes: &Bytes) -> Result<Self, Error>;
}

impl<T: DeserializeOwned + Send + 'static> FromPayload for T {
    fn from_payload(bytes: &Bytes) -> Result<Self, Error> {
        decode_payload(bytes)
    }
}

/// A payload left as raw MessagePack bytes, for tools that handle any event.
///
/// ```
/// use demitter_core::{RawPayload, encode_payload};
/// let raw = RawPayload::new(encode_payload(&serde_json::json!({"a": [1, 2]}))?);
/// assert_eq!(raw.to_value()?.to_string(), r#"{"a": [1, 2]}"#);
/// # Ok::<(), demitter_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawPayload(Bytes);

impl RawPayload {
    /// Wraps MessagePack bytes.
    pub fn new(bytes: Bytes) -> Self {
        Self(bytes)
    }

    /// The MessagePack bytes.
    pub fn bytes(&self) -> &Bytes {
        &self.0
    }

    /// Decodes into a typed value.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, Error> {
        decode_payload(&self.0)
    }

    /// Decodes into a dynamic MessagePack value.
    ///
    /// Decoding goes through `rmp-serde`, which never preallocates more than the input can
    /// hold, so hostile length prefixes cannot exhaust memory.
    pub fn to_value(&self) -> Result<rmpv::Value, Error> {
        decode_payload(&self.0)
    }
}

impl FromPayload for RawPayload {
    fn from_payload(bytes: &Bytes) -> Result<Self, Error> {
        Ok(Self(bytes.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_cut_from_one_buffer_keep_their_bytes_while_it_is_reused() {
        // Enough emits to fill and reuse the per-thread chunk many times over, with some
        // payloads kept alive across the reuse.
        let mut kept = Vec::new();
        for i in 0u64..20_000 {
            let bytes = encode_payload(&(i, "x".repeat(usize::try_from(i % 50).unwrap_or(0))))
                .expect("encodes");
            if i % 97 == 0 {
                kept.push((i, bytes));
            }
        }
        for (i, bytes) in kept {
            let (n, text): (u64, String) = decode_payload(&bytes).expect("decodes");
            assert_eq!(n, i);
            assert_eq!(text.len(), usize::try_from(i % 50).unwrap_or(0));
        }
    }

    #[test]
    fn a_big_payload_gets_its_own_buffer_and_small_ones_go_on() {
        let big = "b".repeat(3 * ARENA_CHUNK);
        let small_before = encode_payload(&1u8).expect("encodes");
        let encoded = encode_payload(&big).expect("encodes");
        let small_after = encode_payload(&2u8).expect("encodes");
        assert_eq!(decode_payload::<String>(&encoded).expect("decodes"), big);
        assert_eq!(decode_payload::<u8>(&small_before).expect("decodes"), 1);
        assert_eq!(decode_payload::<u8>(&small_after).expect("decodes"), 2);
        ARENA.with_borrow(|arena| assert!(arena.capacity() <= ARENA_CHUNK));
    }

    #[test]
    fn a_serialize_that_encodes_a_payload_itself_is_served() {
        struct Nested;
        impl Serialize for Nested {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                // Encoded while the outer encoding holds this thread's buffer.
                let inner = encode_payload(&7u8).map_err(serde::ser::Error::custom)?;
                let back: u8 = decode_payload(&inner).map_err(serde::ser::Error::custom)?;
                s.serialize_u8(back + 1)
            }
        }
        let outer = encode_payload(&Nested).expect("encodes");
        assert_eq!(decode_payload::<u8>(&outer).expect("decodes"), 8);
    }

    #[test]
    fn a_failed_encoding_leaves_nothing_behind() {
        struct Fails;
        impl Serialize for Fails {
            fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(serde::ser::Error::custom("no"))
            }
        }
        assert!(matches!(encode_payload(&Fails), Err(Error::Encode(_))));
        let next = encode_payload(&"ok").expect("encodes");
        assert_eq!(decode_payload::<String>(&next).expect("decodes"), "ok");
    }
}
