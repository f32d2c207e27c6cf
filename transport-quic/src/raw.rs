//! [`RawPeer`]: a bare connection to a node that sends whatever bytes it is given. For
//! testing how nodes treat hostile or broken peers, and for tools; applications use
//! [`QuicTransport`](crate::QuicTransport).

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use crate::error::QuicError;
use crate::pki::PeerIdentity;
use crate::tls;
use crate::wire::{self, Hello, KIND_HELLO, PREAMBLE};

/// A connection to one node, with our stream open and the hello sent.
#[derive(Debug)]
pub struct RawPeer {
    endpoint: quinn::Endpoint,
    conn: quinn::Connection,
    send: quinn::SendStream,
    /// The node's stream, once accepted, and what was read of it.
    recv: Option<quinn::RecvStream>,
    buf: bytes::BytesMut,
}

fn connect_error(e: impl std::error::Error + Send + Sync + 'static) -> QuicError {
    QuicError::Connect(Box::new(e))
}

impl RawPeer {
    /// Connects to `addr` as `identity` and says hello.
    pub async fn connect(identity: &PeerIdentity, addr: SocketAddr) -> Result<Self, QuicError> {
        let transport = Arc::new(quinn::TransportConfig::default());
        Self::connect_with(tls::client_config(identity, transport)?, addr).await
    }

    /// Connects to `addr` presenting no certificate (and trusting any), and says hello.
    pub async fn connect_anonymous(addr: SocketAddr) -> Result<Self, QuicError> {
        Self::connect_with(tls::anonymous_client_config()?, addr).await
    }

    async fn connect_with(
        config: quinn::ClientConfig,
        addr: SocketAddr,
    ) -> Result<Self, QuicError> {
        let local = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
        let endpoint = quinn::Endpoint::client(local).map_err(connect_error)?;
        let conn = endpoint
            .connect_with(config, addr, tls::SERVER_NAME)
            .map_err(connect_error)?
            .await
            .map_err(connect_error)?;
        let mut send = conn.open_uni().await.map_err(connect_error)?;
        let mut hello = PREAMBLE.to_vec();
        hello.extend_from_slice(&wire::message_record(
            KIND_HELLO,
            &Hello {
                incarnation: fastrand::u64(..),
                listen_port: 0,
                uptime_ms: 0,
            },
        ));
        send.write_all(&hello).await.map_err(connect_error)?;
        Ok(Self {
            endpoint,
            conn,
            send,
            recv: None,
            buf: bytes::BytesMut::new(),
        })
    }

    /// The next record the node sent (its kind and body), reading its stream (the
    /// preamble checked) as needed; `None` once the stream or connection ends.
    pub async fn next_record(&mut self) -> Option<(u8, bytes::Bytes)> {
        if self.recv.is_none() {
            let mut recv = self.conn.accept_uni().await.ok()?;
            let mut preamble = [0u8; PREAMBLE.len()];
            recv.read_exact(&mut preamble).await.ok()?;
            if preamble != PREAMBLE {
                return None;
            }
            self.recv = Some(recv);
        }
        let decoder = wire::RecordDecoder::new(u32::MAX as usize);
        loop {
            if let Some(record) = decoder.next_record(&mut self.buf).ok()? {
                return Some(record);
            }
            let chunk = self
                .recv
                .as_mut()?
                .read_chunk(usize::MAX, true)
                .await
                .ok()??;
            self.buf.extend_from_slice(&chunk.bytes);
        }
    }

    /// Writes `bytes` to the stream as they are (build records with [`wire`]).
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<(), QuicError> {
        self.send.write_all(bytes).await.map_err(connect_error)
    }

    /// Waits until the node closes the connection, and says why.
    pub async fn closed(&self) -> String {
        self.conn.closed().await.to_string()
    }

    /// Closes the connection.
    pub async fn close(self) {
        self.conn.close(quinn::VarInt::from_u32(0), b"bye");
        self.endpoint.wait_idle().await;
    }
}
