//! One ZMTP connection over TCP: the handshake (NULL, or CURVE as a client), then a reader
//! of frames and messages and a writer of ZMTP bytes (sealed into CURVE messages on a CURVE
//! connection). Public for the forwarder crate (`demitter-forwarder`), which speaks ZMTP
//! through it; an application wants [`ZmqTransport`](crate::ZmqTransport) instead.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::curve::{ClientHello, FLAG_BATCH, FLAG_COMMAND, FLAG_MORE, ServerHello};
use crate::curve_keys::{AllowList, CurvePublicKey, CurveSecretKey};
use crate::error::ZmqError;
use crate::zmtp::{self, GREETING_LEN, Mechanism, SocketType, ZmtpFrame, ZmtpFrameDecoder};

/// How long a peer has to complete the handshake.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// The most parts one message may have (Demitter's have 3; control messages too).
const MAX_PARTS: usize = 16;

/// The READY property with which a CURVE server says it binds names to keys: it drops
/// each message whose origin ([`wire::origin_id`](crate::wire::origin_id)) is not the
/// name its allow list gives the sender's key.
pub const NAMES_BOUND_PROPERTY: &str = "X-Demitter-Names";

/// The handshake property with which this crate's CURVE peers offer to take batches
/// ([`FLAG_BATCH`]): several frames in one box, up to the value's bytes (decimal). Each
/// side batches what it sends only to a peer that offered; libzmq never does.
pub const BATCH_PROPERTY: &str = "X-Demitter-Batch";

/// The most frame bytes one box holds: a box costs a fixed amount (a key derivation and
/// the MAC's setup) whatever it holds, and a frame of 64 B paid it on its own.
const BATCH_BYTES: usize = 64 * 1024;

/// What a MESSAGE frame's body adds to the frames it holds: its name and nonce, the
/// box's tag, and the flags.
const MESSAGE_OVERHEAD: usize = 16 + 16 + 1;

/// The batches a peer offered to take, in bytes, from its handshake metadata; `None` if
/// it did not offer (or said something unreadable).
fn batch_offer(metadata: &Bytes) -> Result<Option<usize>, ZmqError> {
    let offer = zmtp::property(metadata.clone(), BATCH_PROPERTY)?;
    Ok(offer
        .and_then(|value| std::str::from_utf8(&value).ok()?.parse::<usize>().ok())
        .map(|bytes| bytes.saturating_sub(MESSAGE_OVERHEAD).min(BATCH_BYTES))
        .filter(|bytes| *bytes > 0))
}

/// Our offer to take batches, as handshake properties: up to what our reader takes.
fn offer_batches(properties: &mut Vec<u8>, max_frame: usize) {
    zmtp::put_property(properties, BATCH_PROPERTY, max_frame.to_string().as_bytes());
}

/// A CURVE client's keys: its own secret key (its public key is derived) and the server's
/// public key, and the name the server's allow list binds its key to.
#[derive(Debug, Clone)]
pub struct CurveClientKeys {
    /// The name its key is allowed under: the emitter's id, which this project's
    /// forwarder checks every message's origin against.
    pub name: demitter_core::NodeId,
    /// The client's permanent secret key.
    pub secret: CurveSecretKey,
    /// The server's permanent public key.
    pub server: CurvePublicKey,
    /// Whether to accept a server that does not check names (libzmq's `zmq_proxy` as a
    /// CURVE server): then any allowed key may emit under any name, and the transport
    /// declares itself unauthenticated. `false` (the default) refuses such a server with
    /// [`ZmqError::NamesUnchecked`].
    pub unchecked_names: bool,
}

impl CurveClientKeys {
    /// Keys for the client `name` with `secret`, to a server with the public key `server`
    /// that checks names (this project's forwarder).
    ///
    /// ```
    /// use demitter_core::NodeId;
    /// use demitter_zmq::conn::CurveClientKeys;
    /// use demitter_zmq::curve_keys::CurveSecretKey;
    ///
    /// let server = CurveSecretKey::generate().public_key();
    /// let keys = CurveClientKeys::new(NodeId::new("alice")?, CurveSecretKey::generate(), server);
    /// assert!(!keys.unchecked_names);
    /// # Ok::<(), demitter_core::Error>(())
    /// ```
    pub fn new(
        name: demitter_core::NodeId,
        secret: CurveSecretKey,
        server: CurvePublicKey,
    ) -> Self {
        Self {
            name,
            secret,
            server,
            unchecked_names: false,
        }
    }
}

/// Performs the ZMTP handshake as `ours` (NULL mechanism, within five seconds) and checks
/// the peer can talk to us. Returns the reader, the writer, and the socket type the peer
/// named.
pub async fn handshake(
    stream: TcpStream,
    ours: SocketType,
    max_frame: usize,
) -> Result<(Reader, Writer, String), ZmqError> {
    stream.set_nodelay(true)?;
    let (mut read, mut write) = stream.into_split();
    let exchange = async {
        exchange_greetings(&mut read, &mut write, Mechanism::Null, false).await?;
        write.write_all(&zmtp::ready(ours)).await?;
        let mut reader = Reader::new(read, max_frame);
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
    Ok((reader, Writer::plain(write, max_frame), peer_type))
}

/// Performs the ZMTP handshake as `ours` with the CURVE mechanism as its client (within
/// five seconds): the server must prove it holds the secret key of `keys.server`, and learns
/// this client's public key. Returns the reader and writer, which open and seal every frame,
/// and the socket type the peer named.
pub async fn handshake_curve_client(
    stream: TcpStream,
    ours: SocketType,
    max_frame: usize,
    keys: &CurveClientKeys,
) -> Result<(Reader, Writer, String), ZmqError> {
    stream.set_nodelay(true)?;
    let (read, mut write) = stream.into_split();
    let exchange = async {
        let mut reader = curve_greetings(read, &mut write, false, max_frame).await?;
        let (waiting, hello) = ClientHello::start(&keys.secret, &keys.server)?;
        write.write_all(&zmtp::command_frame(&hello)).await?;
        // A server that cannot open HELLO (it was sealed for another server key) hangs up
        // without a word, as libzmq's does; this project's forwarder says so in ERROR.
        let welcome = match reader.handshake_command("WELCOME").await {
            Err(e) if e.is_silent_hangup() || matches!(e, ZmqError::Handshake(_)) => {
                return Err(ZmqError::Curve {
                    command: "HELLO",
                    reason: "the server hung up on it: is curve= the server's public key?",
                });
            }
            other => other?,
        };
        let mut properties = zmtp::socket_type_property(ours);
        offer_batches(&mut properties, max_frame);
        let (initiated, initiate) = waiting.welcome(&welcome, &properties)?;
        write.write_all(&zmtp::command_frame(&initiate)).await?;
        let ready = reader.handshake_command("READY").await?;
        let (metadata, codec) = initiated.ready(&ready)?;
        let batches = Batches {
            send: batch_offer(&metadata)?,
            receive: true,
        };
        let bound = zmtp::property(metadata.clone(), NAMES_BOUND_PROPERTY)?;
        if bound.as_deref() != Some(b"bound") && !keys.unchecked_names {
            return Err(ZmqError::NamesUnchecked);
        }
        let peer_type = zmtp::ready_socket_type(metadata)?;
        if !ours.accepts(&peer_type) {
            return Err(ZmqError::IncompatiblePeer {
                ours: ours.name(),
                theirs: peer_type,
            });
        }
        Ok::<_, ZmqError>((reader, codec, peer_type, batches))
    };
    let (reader, codec, peer_type, batches) = tokio::time::timeout(HANDSHAKE_TIMEOUT, exchange)
        .await
        .map_err(|_| ZmqError::Handshake(format!("no handshake within {HANDSHAKE_TIMEOUT:?}")))??;
    let (reader, writer) = sealed(reader, write, codec, max_frame, batches);
    Ok((reader, writer, peer_type))
}

/// Sends our CURVE greeting (as the server or not), checks the peer's, and returns the
/// reader for what follows.
async fn curve_greetings(
    mut read: OwnedReadHalf,
    write: &mut OwnedWriteHalf,
    as_server: bool,
    max_frame: usize,
) -> Result<Reader, ZmqError> {
    exchange_greetings(&mut read, write, Mechanism::Curve, as_server).await?;
    Ok(Reader::new(read, max_frame))
}

/// Exchanges ZMTP greetings naming `mechanism`, as libzmq does: our signature first, and
/// the rest of our greeting (which names the mechanism) once the peer's signature has
/// come. So a peer has always spoken before it learns our mechanism, and one that hangs
/// up over a mechanism it does not speak (libzmq does, on reading it) is told apart from
/// a port check, which says nothing ([`ZmqError::is_silent_hangup`]); any other peer that
/// leaves gets [`ZmqError::Handshake`].
async fn exchange_greetings(
    read: &mut OwnedReadHalf,
    write: &mut OwnedWriteHalf,
    mechanism: Mechanism,
    as_server: bool,
) -> Result<(), ZmqError> {
    let ours = zmtp::greeting_for(mechanism, as_server);
    let (signature, rest) = ours.split_at(zmtp::SIGNATURE_LEN);
    write.write_all(signature).await?;
    let mut theirs = [0u8; GREETING_LEN];
    let got = read_greeting(read, &mut theirs, 0, zmtp::SIGNATURE_LEN, mechanism).await?;
    zmtp::check_signature(&theirs)?;
    write.write_all(rest).await?;
    read_greeting(read, &mut theirs, got, GREETING_LEN, mechanism).await?;
    zmtp::check_greeting_for(&theirs, mechanism)
}

/// Reads the peer's greeting into `greeting` (which holds `got` bytes of it) until it
/// holds at least `wanted`, never past its end; returns how many it holds.
async fn read_greeting(
    read: &mut OwnedReadHalf,
    greeting: &mut [u8; GREETING_LEN],
    mut got: usize,
    wanted: usize,
    mechanism: Mechanism,
) -> Result<usize, ZmqError> {
    while got < wanted {
        let left = match read.read(&mut greeting[got..]).await {
            Ok(0) => None,
            Ok(n) => {
                got += n;
                continue;
            }
            Err(e) => Some(e),
        };
        return Err(match left {
            // Closed without a word: a port check, not a ZeroMQ peer.
            None if got == 0 => std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into(),
            Some(e) if got == 0 => e.into(),
            _ if got < zmtp::SIGNATURE_LEN => ZmqError::Handshake(format!(
                "the peer left inside its greeting ({got} of {GREETING_LEN} bytes)"
            )),
            _ => ZmqError::Handshake(format!(
                "the peer left inside its greeting ({got} of {GREETING_LEN} bytes), on hearing \
                 ours: a ZeroMQ peer that does not speak the {} mechanism?",
                mechanism.label()
            )),
        });
    }
    Ok(got)
}

/// What a CURVE connection's handshake agreed about batches.
#[derive(Debug, Clone, Copy)]
struct Batches {
    /// The peer takes batches of up to this many frame bytes.
    send: Option<usize>,
    /// We offered to take them.
    receive: bool,
}

/// The reader and writer of a connection whose handshake made `codec`: each frame (or
/// batch of frames) opened and sealed.
fn sealed(
    mut reader: Reader,
    write: OwnedWriteHalf,
    codec: crate::curve::CurveCodec,
    max_frame: usize,
    batches: Batches,
) -> (Reader, Writer) {
    let (opener, sealer) = codec.split();
    reader.curve = Some(opener);
    reader.takes_batches = batches.receive;
    let writer = Writer {
        write,
        curve: Some(Sealer {
            codec: sealer,
            decoder: ZmtpFrameDecoder::new(max_frame),
            batch_bytes: batches.send,
        }),
    };
    (reader, writer)
}

/// A CURVE client the server let in: who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurveClient {
    /// Its permanent public key, proven in the handshake.
    pub key: CurvePublicKey,
    /// The name the allow list binds the key to.
    pub name: String,
}

/// The ERROR reason for a client key the allow list does not hold: ZAP's status code for
/// a failed authentication, as libzmq's CURVE server sends it, so that a libzmq client's
/// monitor reports `ZMQ_EVENT_HANDSHAKE_FAILED_AUTH` with 400.
pub const KEY_NOT_ALLOWED: &str = "400";

/// The ERROR reason for a HELLO that does not open with the server's key: the client
/// sealed it for another server key (libzmq's server hangs up without a word).
pub const HELLO_NOT_OPENED: &str = "HELLO does not open with this server's key";

/// Performs the ZMTP handshake as `ours` with the CURVE mechanism as its server (within
/// five seconds), letting in only clients whose key `allow` lists: a client with another
/// key is sent ERROR ([`KEY_NOT_ALLOWED`]) and refused ([`ZmqError::CurveClientRefused`]),
/// and one whose HELLO does not open is sent ERROR ([`HELLO_NOT_OPENED`]). Returns the reader
/// and writer, the socket type the peer named, and who the client is.
///
/// Its READY tells the client that names are bound to keys ([`NAMES_BOUND_PROPERTY`]):
/// the caller must drop each message whose origin is not [`CurveClient::name`].
pub async fn handshake_curve_server(
    stream: TcpStream,
    ours: SocketType,
    max_frame: usize,
    secret: &CurveSecretKey,
    allow: &AllowList,
) -> Result<(Reader, Writer, String, CurveClient), ZmqError> {
    stream.set_nodelay(true)?;
    let (read, mut write) = stream.into_split();
    let exchange = async {
        let mut reader = curve_greetings(read, &mut write, true, max_frame).await?;
        let hello = reader.handshake_command("HELLO").await?;
        let (welcomed, welcome) = match ServerHello::new(secret).hello(&hello) {
            Ok(welcomed) => welcomed,
            Err(e) => {
                // Sealed for another key: the client is told (a malformed HELLO is not).
                if matches!(&e, ZmqError::Curve { reason, .. } if *reason == crate::curve::HELLO_SIGNATURE_NOT_OPENED)
                {
                    let _ = write
                        .write_all(&zmtp::command_frame(&crate::curve::error_body(
                            HELLO_NOT_OPENED,
                        )))
                        .await;
                }
                return Err(e);
            }
        };
        write.write_all(&zmtp::command_frame(&welcome)).await?;
        let initiate = reader.handshake_command("INITIATE").await?;
        let known = welcomed.initiate(&initiate)?;
        let Some(name) = allow.name_of(&known.client).map(str::to_owned) else {
            let _ = write
                .write_all(&zmtp::command_frame(&crate::curve::error_body(
                    KEY_NOT_ALLOWED,
                )))
                .await;
            return Err(ZmqError::CurveClientRefused { key: known.client });
        };
        let peer_type = zmtp::ready_socket_type(known.metadata.clone())?;
        // Batches both ways, if the client offered to take them.
        let send = batch_offer(&known.metadata)?;
        let batches = Batches {
            send,
            receive: send.is_some(),
        };
        if !ours.accepts(&peer_type) {
            return Err(ZmqError::IncompatiblePeer {
                ours: ours.name(),
                theirs: peer_type,
            });
        }
        let client = CurveClient {
            key: known.client,
            name,
        };
        let mut properties = zmtp::socket_type_property(ours);
        zmtp::put_property(&mut properties, NAMES_BOUND_PROPERTY, b"bound");
        if batches.receive {
            offer_batches(&mut properties, max_frame);
        }
        let (ready, codec) = known.accept(&properties)?;
        write.write_all(&zmtp::command_frame(&ready)).await?;
        Ok::<_, ZmqError>((reader, codec, peer_type, client, batches))
    };
    let (reader, codec, peer_type, client, batches) =
        tokio::time::timeout(HANDSHAKE_TIMEOUT, exchange)
            .await
            .map_err(|_| {
                ZmqError::Handshake(format!("no handshake within {HANDSHAKE_TIMEOUT:?}"))
            })??;
    let (reader, writer) = sealed(reader, write, codec, max_frame, batches);
    Ok((reader, writer, peer_type, client))
}

/// Writes ZMTP bytes to a connection: as they are, or on a CURVE connection each frame
/// sealed into a MESSAGE.
#[derive(Debug)]
pub struct Writer {
    write: OwnedWriteHalf,
    curve: Option<Sealer>,
}

/// Seals the frames of ZMTP bytes.
struct Sealer {
    codec: crate::curve::CurveSealer,
    decoder: ZmtpFrameDecoder,
    /// When the peer takes batches: the most frame bytes in one.
    batch_bytes: Option<usize>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer").finish_non_exhaustive()
    }
}

impl Writer {
    fn plain(write: OwnedWriteHalf, max_frame: usize) -> Self {
        let _ = max_frame;
        Self { write, curve: None }
    }

    /// Writes whole ZMTP frames (this crate's own: never half a frame).
    pub async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match &mut self.curve {
            None => self.write.write_all(bytes).await,
            Some(sealer) => {
                let sealed = sealer.seal(bytes).map_err(std::io::Error::other)?;
                self.write.write_all(&sealed).await
            }
        }
    }

    /// Shuts the writing half down.
    pub async fn shutdown(&mut self) -> std::io::Result<()> {
        self.write.shutdown().await
    }
}

impl Sealer {
    /// `bytes`' frames, each sealed into a MESSAGE and framed as a message part; to a peer
    /// that takes batches, runs of whole frames sealed together, as many as fit.
    fn seal(&mut self, bytes: &[u8]) -> Result<BytesMut, ZmqError> {
        let mut frames = BytesMut::from(bytes);
        let mut out = BytesMut::with_capacity(bytes.len() + bytes.len() / 2 + 64);
        // The frames waiting to be sealed together: `bytes[batch.start..batch.end]`.
        let mut batch = 0..0;
        loop {
            let start = bytes.len() - frames.len();
            let Some(frame) = self.decoder.decode(&mut frames)? else {
                break;
            };
            let end = bytes.len() - frames.len();
            if let Some(limit) = self.batch_bytes
                && end - start <= limit
            {
                if end - batch.start > limit {
                    self.seal_batch(&bytes[batch.clone()], &mut out)?;
                    batch = start..start;
                }
                batch.end = end;
                continue;
            }
            self.seal_batch(&bytes[batch], &mut out)?;
            batch = end..end;
            match frame {
                ZmtpFrame::Part { more, body } => {
                    let flags = if more { FLAG_MORE } else { 0 };
                    self.codec.seal_frame(flags, &body, &mut out)?;
                }
                ZmtpFrame::Command { name, data } => {
                    let body = zmtp::command_body(&name, &data);
                    self.codec.seal_frame(FLAG_COMMAND, &body, &mut out)?;
                }
            }
        }
        self.seal_batch(&bytes[batch], &mut out)?;
        if !frames.is_empty() {
            return Err(ZmqError::Malformed(
                "half a frame handed to a CURVE writer".into(),
            ));
        }
        Ok(out)
    }

    /// Whole frames in one box, if there are any.
    fn seal_batch(&mut self, frames: &[u8], out: &mut BytesMut) -> Result<(), ZmqError> {
        if !frames.is_empty() {
            self.codec.seal_frame(FLAG_BATCH, frames, out)?;
        }
        Ok(())
    }
}

/// Reads frames and whole messages from a connection. Both reads are cancel-safe: bytes
/// and the parts of a message read so far stay in the reader.
pub struct Reader {
    read: OwnedReadHalf,
    buf: BytesMut,
    decoder: ZmtpFrameDecoder,
    /// The parts of the message being read.
    parts: Vec<Bytes>,
    /// On a CURVE connection, what opens each frame.
    curve: Option<crate::curve::CurveOpener>,
    /// Whether we offered to take batches (so a batch is not an error).
    takes_batches: bool,
    /// The frames of the last batch opened, not yet read.
    batch: BytesMut,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("buffered", &self.buf.len())
            .field("curve", &self.curve.is_some())
            .finish_non_exhaustive()
    }
}

impl Reader {
    fn new(read: OwnedReadHalf, max_frame: usize) -> Self {
        Self {
            read,
            buf: BytesMut::with_capacity(64 * 1024),
            decoder: ZmtpFrameDecoder::new(max_frame),
            parts: Vec::new(),
            curve: None,
            takes_batches: false,
            batch: BytesMut::new(),
        }
    }

    /// The body of the handshake command `expected`; an ERROR is the server's refusal.
    async fn handshake_command(&mut self, expected: &str) -> Result<Vec<u8>, ZmqError> {
        match self.next_frame().await? {
            Some(ZmtpFrame::Command { name, data }) if name == expected => {
                Ok(zmtp::command_body(&name, &data))
            }
            Some(ZmtpFrame::Command { name, data }) if name == "ERROR" => {
                let reason = data.get(1..).unwrap_or_default();
                Err(ZmqError::PeerRefused {
                    reason: String::from_utf8_lossy(reason).into_owned(),
                })
            }
            other => Err(ZmqError::Handshake(format!(
                "expected {expected}, got {other:?}"
            ))),
        }
    }

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
            if !self.batch.is_empty() {
                return match self.decoder.decode(&mut self.batch)? {
                    Some(frame) => Ok(Some(frame)),
                    None => Err(ZmqError::Malformed("half a frame in a batch".into())),
                };
            }
            if let Some(frame) = self.decoder.decode(&mut self.buf)? {
                let Some(opener) = &mut self.curve else {
                    return Ok(Some(frame));
                };
                match open_frame(opener, frame)? {
                    Opened::Frame(frame) => return Ok(Some(frame)),
                    Opened::Batch(frames) if self.takes_batches => {
                        self.batch = frames
                            .try_into_mut()
                            .unwrap_or_else(|shared| BytesMut::from(&shared[..]));
                        continue;
                    }
                    Opened::Batch(_) => {
                        return Err(ZmqError::Curve {
                            command: "MESSAGE",
                            reason: "a batch, which this side did not offer to take",
                        });
                    }
                }
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
        if self.curve.is_some() {
            return self.next_opened_message().await;
        }
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

impl Reader {
    /// On a CURVE connection, the next whole message, opened and framed again as ZMTP
    /// bytes (to be sealed again for each connection it is forwarded to), skipping commands.
    async fn next_opened_message(&mut self) -> Result<Option<zmtp::RawMessage>, ZmqError> {
        loop {
            let parts = match self.next_message().await? {
                None => return Ok(None),
                Some(Received::Command) => continue,
                Some(Received::Message(parts)) => parts,
            };
            let refs: Vec<&[u8]> = parts.iter().map(|p| &p[..]).collect();
            let mut bytes = BytesMut::new();
            zmtp::put_message(&mut bytes, &refs);
            let bytes = bytes.freeze();
            let header = if parts[0].len() > 255 { 9 } else { 2 };
            let topic = bytes.slice(header..header + parts[0].len());
            return Ok(Some(zmtp::RawMessage { bytes, topic }));
        }
    }
}

/// What a CURVE connection's MESSAGE held.
enum Opened {
    /// One frame.
    Frame(ZmtpFrame),
    /// Whole ZMTP frames, several in one box.
    Batch(Bytes),
}

/// A CURVE connection's frame, opened: a MESSAGE holding a message part, a command, or a
/// batch of frames.
fn open_frame(
    opener: &mut crate::curve::CurveOpener,
    frame: ZmtpFrame,
) -> Result<Opened, ZmqError> {
    let ZmtpFrame::Part { body, .. } = frame else {
        return Err(ZmqError::Malformed(
            "a command in clear on a CURVE connection".into(),
        ));
    };
    let (flags, data) = opener.open(&body)?;
    if flags == FLAG_BATCH {
        return Ok(Opened::Batch(data));
    }
    if flags & FLAG_COMMAND == 0 {
        return Ok(Opened::Frame(ZmtpFrame::Part {
            more: flags & FLAG_MORE != 0,
            body: data,
        }));
    }
    let name_len = usize::from(*data.first().unwrap_or(&0));
    if name_len == 0 || data.len() < 1 + name_len {
        return Err(ZmqError::Malformed(
            "a sealed command without a name".into(),
        ));
    }
    let name = String::from_utf8_lossy(&data[1..=name_len]).into_owned();
    Ok(Opened::Frame(ZmtpFrame::Command {
        name,
        data: data.slice(1 + name_len..),
    }))
}

/// What a reader yields.
#[derive(Debug)]
pub enum Received {
    /// A message's parts.
    Message(Vec<Bytes>),
    /// A command frame (nothing this crate acts on after the handshake).
    Command,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs our CURVE server's handshake (an XSUB with `server_key`, letting in `allow`)
    /// against what `peer` does with a TCP connection to it, on loopback: both outcomes.
    async fn meet_curve_server<F, Fut, T>(
        server_key: &CurveSecretKey,
        allow: &AllowList,
        max_frame: usize,
        peer: F,
    ) -> (Result<(Reader, Writer, String, CurveClient), ZmqError>, T)
    where
        F: FnOnce(TcpStream) -> Fut,
        Fut: std::future::Future<Output = T>,
    {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let addr = listener.local_addr().expect("bound");
        let server = async {
            let (stream, _) = listener.accept().await.expect("accepts");
            handshake_curve_server(stream, SocketType::XSub, max_frame, server_key, allow).await
        };
        let client = async { peer(TcpStream::connect(addr).await.expect("connects")).await };
        tokio::time::timeout(Duration::from_secs(10), async {
            tokio::join!(server, client)
        })
        .await
        .expect("the handshake ends in time")
    }

    /// A CURVE client (a PUB) and server (an XSUB) of this crate, connected on loopback.
    async fn curve_pair(max_frame: usize) -> ((Reader, Writer), (Reader, Writer)) {
        let server_key = CurveSecretKey::generate();
        let client_key = CurveSecretKey::generate();
        let allow = AllowList::parse(&format!("client {}", client_key.public_key()))
            .expect("an allow list");
        let keys = CurveClientKeys::new(
            demitter_core::NodeId::new("client").expect("an id"),
            client_key.clone(),
            server_key.public_key(),
        );
        let keys = &keys;
        let (server, client) =
            meet_curve_server(&server_key, &allow, max_frame, |stream| async move {
                handshake_curve_client(stream, SocketType::Pub, max_frame, keys).await
            })
            .await;
        let (sr, sw, _, _) = server.expect("the server's handshake");
        let (cr, cw, _) = client.expect("the client's handshake");
        ((cr, cw), (sr, sw))
    }

    fn outer_frames(sealed: &BytesMut) -> usize {
        let mut sealed = sealed.clone();
        let mut n = 0;
        while ZmtpFrameDecoder::new(1 << 24)
            .decode(&mut sealed)
            .expect("frames")
            .is_some()
        {
            n += 1;
        }
        n
    }

    #[tokio::test]
    async fn our_curve_peers_box_runs_of_frames_together_and_read_them_back() {
        let ((_client_reader, mut client), (mut server, _server_writer)) =
            curve_pair(1 << 20).await;
        // 200 small messages of three parts, one too big for a batch, and 200 more.
        let mut plain = BytesMut::new();
        let mut sent = Vec::new();
        let big = vec![7u8; BATCH_BYTES + 1];
        for i in 0..401u32 {
            let body = if i == 200 {
                big.clone()
            } else {
                i.to_be_bytes().to_vec()
            };
            let parts: [&[u8]; 3] = [b"s:x", b"client", &body];
            zmtp::put_message(&mut plain, &parts);
            sent.push(parts.iter().map(|p| p.to_vec()).collect::<Vec<_>>());
        }
        let sealer = client.curve.as_mut().expect("CURVE");
        assert!(sealer.batch_bytes.is_some(), "our server offered batches");
        let sealed = sealer.seal(&plain).expect("sealed");
        // Before the big frame: its message's first two parts join the run; the big part
        // goes alone; the rest is one more run.
        assert_eq!(outer_frames(&sealed), 3, "two batches and the big frame");
        client.write.write_all(&sealed).await.expect("written");
        for (i, parts) in sent.iter().enumerate() {
            let message = tokio::time::timeout(Duration::from_secs(10), server.next_message())
                .await
                .expect("in time")
                .expect("opens")
                .expect("open");
            let Received::Message(got) = message else {
                panic!("message {i}: a command");
            };
            let got: Vec<Vec<u8>> = got.iter().map(|p| p.to_vec()).collect();
            assert_eq!(&got, parts, "message {i}");
        }
    }

    #[tokio::test]
    async fn a_batch_to_a_reader_that_did_not_offer_is_refused() {
        let ((mut client_reader, _client), (_server_reader, mut server)) =
            curve_pair(1 << 20).await;
        client_reader.takes_batches = false;
        let mut plain = BytesMut::new();
        zmtp::put_message(&mut plain, &[b"s:x", b"server", b"1"]);
        server.write_all(&plain).await.expect("written");
        let refused = tokio::time::timeout(Duration::from_secs(10), client_reader.next_frame())
            .await
            .expect("in time");
        assert!(
            matches!(refused, Err(ZmqError::Curve { .. })),
            "refused: {refused:?}"
        );
    }

    #[test]
    fn batch_offers_are_read_within_bounds() {
        let offer = |value: &[u8]| {
            let mut properties = Vec::new();
            zmtp::put_property(&mut properties, BATCH_PROPERTY, value);
            batch_offer(&Bytes::from(properties)).expect("well formed")
        };
        assert_eq!(offer(b"1048576"), Some(BATCH_BYTES));
        assert_eq!(
            offer(b"1033"),
            Some(1000),
            "the MESSAGE's own bytes come off"
        );
        assert_eq!(offer(b"33"), None, "no room for a frame");
        assert_eq!(offer(b"lots"), None);
        assert_eq!(batch_offer(&Bytes::new()).expect("empty"), None);
    }

    /// What our CURVE server's handshake makes of a raw TCP peer that does `peer`.
    async fn curve_server_meets<F, Fut>(peer: F) -> ZmqError
    where
        F: FnOnce(TcpStream) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let key = CurveSecretKey::generate();
        let allow = AllowList::parse("").expect("an empty allow list");
        let (outcome, ()) = meet_curve_server(&key, &allow, 1 << 20, peer).await;
        let Err(refusal) = outcome else {
            panic!("the server let the peer in");
        };
        refusal
    }

    /// libzmq reads the whole greeting it is sent, and a NULL socket that finds CURVE in it
    /// hangs up; if it had not yet sent its signature, it would pass for a port check.
    #[tokio::test]
    async fn a_peer_hears_our_mechanism_only_after_its_signature() {
        let refusal = curve_server_meets(|mut peer| async move {
            let mut heard = [0u8; GREETING_LEN];
            let mut got = 0;
            while got < zmtp::SIGNATURE_LEN {
                got += peer.read(&mut heard[got..]).await.expect("reads");
            }
            assert_eq!(
                got,
                zmtp::SIGNATURE_LEN,
                "the signature, and nothing yet after it"
            );
            let null = zmtp::greeting_for(Mechanism::Null, false);
            peer.write_all(&null[..zmtp::SIGNATURE_LEN])
                .await
                .expect("writes");
            peer.read_exact(&mut heard[got..]).await.expect("the rest");
            assert_eq!(&heard[12..17], b"CURVE");
            // Leaves, as libzmq does over a mechanism it does not speak.
        })
        .await;
        assert!(
            matches!(&refusal, ZmqError::Handshake(why) if why.contains("left inside its greeting")),
            "{refusal:?}"
        );
        assert!(!refusal.is_silent_hangup());
    }

    #[tokio::test]
    async fn a_peer_that_says_nothing_is_a_port_check() {
        for reads_first in [false, true] {
            let refusal = curve_server_meets(|mut peer| async move {
                if reads_first {
                    let mut signature = [0u8; zmtp::SIGNATURE_LEN];
                    peer.read_exact(&mut signature)
                        .await
                        .expect("our signature");
                }
            })
            .await;
            assert!(refusal.is_silent_hangup(), "{refusal:?}");
        }
    }

    #[tokio::test]
    async fn a_peer_that_is_not_zmtp_hears_no_mechanism() {
        let refusal = curve_server_meets(|mut peer| async move {
            peer.write_all(b"GET / HTTP/1.1\r\n\r\n")
                .await
                .expect("writes");
            let mut heard = Vec::new();
            let _ = peer.read_to_end(&mut heard).await;
            assert_eq!(heard.len(), zmtp::SIGNATURE_LEN, "{heard:?}");
        })
        .await;
        assert!(
            matches!(&refusal, ZmqError::Handshake(why) if why.contains("not a ZMTP greeting")),
            "{refusal:?}"
        );
    }
}
