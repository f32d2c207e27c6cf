//! Raw ZMTP 3.0 peers for tests that need misbehaving ones.
// Compiled into each test binary that uses it, and none uses all of it.
#![allow(dead_code)]

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Our greeting and READY as `socket_type`.
pub(crate) fn hello(socket_type: &str) -> Vec<u8> {
    let mut out = vec![0u8; 64];
    out[0] = 0xFF;
    out[9] = 0x7F;
    out[10] = 3;
    out[12..16].copy_from_slice(b"NULL");
    let len = u32::try_from(socket_type.len()).expect("short");
    let body = [
        &[5u8][..],
        b"READY",
        &[11],
        b"Socket-Type",
        &len.to_be_bytes(),
        socket_type.as_bytes(),
    ]
    .concat();
    out.extend_from_slice(&[0x04, u8::try_from(body.len()).expect("short")]);
    out.extend_from_slice(&body);
    out
}

/// Completes the handshake as `socket_type` with whatever is at the other end, reading its
/// greeting (64 bytes) and READY: 2 header bytes, then "READY" and the one property
/// Socket-Type (1 + 5 + 1 + 11 + 4 bytes, and the type itself).
pub(crate) async fn handshake(stream: &mut TcpStream, socket_type: &str, peer_type_len: usize) {
    stream.write_all(&hello(socket_type)).await.expect("writes");
    let mut theirs = vec![0u8; 64 + 2 + 22 + peer_type_len];
    stream
        .read_exact(&mut theirs)
        .await
        .expect("the peer's handshake");
}

/// A one-frame subscription message.
pub(crate) fn subscription(topic: &[u8]) -> Vec<u8> {
    let mut out = vec![0x00, u8::try_from(topic.len() + 1).expect("short"), 0x01];
    out.extend_from_slice(topic);
    out
}
