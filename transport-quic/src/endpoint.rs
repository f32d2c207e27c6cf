//! The QUIC endpoint's settings and its socket.

use std::net::{SocketAddr, UdpSocket};

use quinn::VarInt;

use crate::config::QuicConfig;
use crate::error::QuicError;

/// The QUIC transport settings of the mesh's connections.
pub(crate) fn transport_config(config: &QuicConfig) -> Result<quinn::TransportConfig, QuicError> {
    let mut transport = quinn::TransportConfig::default();
    let idle = quinn::IdleTimeout::try_from(config.idle_timeout)
        .map_err(|_| QuicError::Config("idle_timeout is too long".into()))?;
    transport
        .max_idle_timeout(Some(idle))
        .keep_alive_interval(Some(config.keep_alive))
        .max_concurrent_bidi_streams(VarInt::from_u32(0))
        .max_concurrent_uni_streams(VarInt::from_u32(4))
        .stream_receive_window(VarInt::from_u32(8 * 1024 * 1024))
        .receive_window(VarInt::from_u32(16 * 1024 * 1024))
        .send_window(16 * 1024 * 1024)
        .datagram_receive_buffer_size(None);
    Ok(transport)
}

/// Binds the first free port of the configured range.
pub(crate) fn bind_first_free(config: &QuicConfig) -> Result<UdpSocket, QuicError> {
    let mut last = std::io::Error::other("no port to try");
    for &port in config.ports.ports() {
        match UdpSocket::bind(SocketAddr::new(config.bind_ip, port)) {
            Ok(socket) => return Ok(socket),
            Err(e) => last = e,
        }
    }
    Err(QuicError::NoFreePort {
        ip: config.bind_ip,
        ports: config.ports.to_string(),
        last,
    })
}
