//! One ZMTP connection over TCP: the handshake, then a reader of frames and messages and a
//! raw writer. Public for the forwarder crate (`demitter-forwarder`), which speaks ZMTP
//! through it; an application wants [`ZmqTransport`](crate::ZmqTransport) instead.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::error::ZmqError;
use crate::zmtp::{self, GREETING_LEN, SocketType, ZmtpFrame, ZmtpFrameDecoder};

/// How long a peer has to complete the handshake.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// The most parts one message may have (Demitter's have 3; control messages too).
const MAX_PARTS: usize = 16;

/// Performs the ZMTP handshake as `ours` (NULL mechanism, within five seconds) and checks
/// the peer can talk to us. Returns the reader, the raw writer, and the socket type the
/// peer named.
pub async fn handshake(
    stream: TcpStream,
    ours: SocketType,
    max_frame: usize,
) -> Result<(Reader, OwnedWriteHalf, String), ZmqError> {
    stream.set_nodelay(true)?;
    let (mut read, mut write) = stream.into_split();
    let exchange = async {
        write.write_all(&zmtp::greeting()).await?;
        let mut greeting = [0u8; GREETING_LEN];
        read.read_exact(&mut greeting).await?;
        zmtp::check_greeting(&greeting)?;
        write.write_all(&zmtp::ready(ours)).await?;
        let mut reader = Reader {
            read,
            buf: BytesMut::with_capacity(64 * 1024),
            decoder: ZmtpFrameDecoder::new(max_frame),
            parts: Vec::new(),
        };
        let peer_type = match reader.next_frame().await? {
            Some(ZmtpFrame::Command { name, data }) if name == "READY" => {
                zmtp::ready_socket_type(data)?
            }
            Some(ZmtpFrame::Command { name, data }) if name == "ERROR" => {
                return Err(ZmqError::Handshake(format!(
                    "peer refused: {}",
                    String::from_utf8_lossy(&data)
                )));
            }
            other => {
                return Err(ZmqError::Handshake(format!(
                    "expected READY, got {other:?}"
                )));
            }
        };
        if !ours.accepts(&peer_type) {
            return Err(ZmqError::IncompatiblePeer {
                ours: ours.name(),
                theirs: peer_type,
            });
        }
        Ok::<_, ZmqError>((reader, peer_type))
    };
    let (reader, peer_type) = tokio::time::timeout(HANDSHAKE_TIMEOUT, exchange)
        .await
        .map_err(|_| ZmqError::Handshake(format!("no handshake within {HANDSHAKE_TIMEOUT:?}")))??;
    Ok((reader, write, peer_type))
}

/// Reads frames and whole messages from a connection. Both reads are cancel-safe: bytes
/// and the parts of a message read so far stay in the reader.
#[derive(Debug)]
pub struct Reader {
    read: OwnedReadHalf,
    buf: BytesMut,
    decoder: ZmtpFrameDecoder,
    /// The parts of the message being read.
    parts: Vec<Bytes>,
}

impl Reader {
    /// Reads more bytes into the buffer. `false` at a clean end of stream (nothing left
    /// half-read); an error if the stream ends inside a `what`.
    async fn fill(&mut self, what: &str) -> Result<bool, ZmqError> {
        if self.buf.capacity() - self.buf.len() < 4096 {
            self.buf.reserve(64 * 1024);
        }
        if self.read.read_buf(&mut self.buf).await? > 0 {
            return Ok(true);
        }
        if self.buf.is_empty() {
            Ok(false)
        } else {
            Err(ZmqError::Malformed(format!(
                "connection closed inside a {what}"
            )))
        }
    }

    /// The next frame; `None` at a clean end of stream.
    pub async fn next_frame(&mut self) -> Result<Option<ZmtpFrame>, ZmqError> {
        loop {
            if let Some(frame) = self.decoder.decode(&mut self.buf)? {
                return Ok(Some(frame));
            }
            if !self.fill("frame").await? {
                return Ok(None);
            }
        }
    }

    /// The next message (its parts), or a command on its own; `None` at end of stream.
    pub async fn next_message(&mut self) -> Result<Option<Received>, ZmqError> {
        loop {
            match self.next_frame().await? {
                None if self.parts.is_empty() => return Ok(None),
                None => {
                    return Err(ZmqError::Malformed(
                        "connection closed inside a message".into(),
                    ));
                }
                Some(ZmtpFrame::Command { .. }) => {
                    if !self.parts.is_empty() {
                        return Err(ZmqError::Malformed("command inside a message".into()));
                    }
                    return Ok(Some(Received::Command));
                }
                Some(ZmtpFrame::Part { more, body }) => {
                    self.parts.push(body);
                    if !more {
                        return Ok(Some(Received::Message(std::mem::take(&mut self.parts))));
                    }
                    if self.parts.len() >= MAX_PARTS {
                        return Err(ZmqError::Malformed(format!(
                            "message of more than {MAX_PARTS} parts"
                        )));
                    }
                }
            }
        }
    }
}

impl Reader {
    /// The next whole message as received (for forwarding untouched), skipping commands;
    /// `None` at a clean end of stream.
    pub async fn next_raw_message(&mut self) -> Result<Option<zmtp::RawMessage>, ZmqError> {
        loop {
            match self.decoder.split_message(&mut self.buf, MAX_PARTS)? {
                zmtp::Split::Message(message) => return Ok(Some(message)),
                zmtp::Split::Command(_) => continue,
                zmtp::Split::Incomplete => {}
            }
            if !self.fill("message").await? {
                return Ok(None);
            }
        }
    }
}

/// What a reader yields.
#[derive(Debug)]
pub enum Received {
    /// A message's parts.
    Message(Vec<Bytes>),
    /// A command frame (nothing this crate acts on after the handshake).
    Command,
}
