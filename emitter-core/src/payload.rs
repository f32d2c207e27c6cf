//! Event payloads: MessagePack with named fields, so Node (msgpackr) and Python read them
//! as objects.

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Error;

/// Encodes `data` as MessagePack, struct fields by name.
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
    // Room for a small event at once, instead of growing through 8, 16, 32, ... bytes.
    let mut out = Vec::with_capacity(128);
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
