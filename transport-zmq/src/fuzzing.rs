//! Entry points for the fuzz targets (feature `fuzzing`): the crate's private decoders, fed
//! whatever the fuzzer makes. Not a public API.

use bytes::{Bytes, BytesMut};
use demitter_core::DecodeCache;

use crate::wire;
use crate::zmtp::{Split, ZmtpFrameDecoder};

/// The frame limit the targets use.
const LIMIT: usize = 64 * 1024;

/// A ZMTP byte stream, split into frames and into whole messages.
pub fn zmtp_stream(data: &[u8]) {
    let mut buf = BytesMut::from(data);
    while let Ok(Some(_)) = ZmtpFrameDecoder::new(LIMIT).decode(&mut buf) {}
    let mut buf = BytesMut::from(data);
    while let Ok(split) = ZmtpFrameDecoder::new(LIMIT).split_message(&mut buf, 8) {
        if split == Split::Incomplete {
            break;
        }
    }
}

/// A Demitter message: `data` cut into up to four parts at the bytes `0xff`.
pub fn demitter_message(data: &[u8]) {
    let parts: Vec<Bytes> = data
        .split(|b| *b == 0xff)
        .take(4)
        .map(Bytes::copy_from_slice)
        .collect();
    let _ = wire::decode(parts, LIMIT, &mut DecodeCache::default());
}

/// The CURVE mechanism's commands: `data` as each of HELLO, WELCOME and INITIATE.
pub fn curve_commands(data: &[u8]) {
    crate::curve::decode_hostile(data);
}
