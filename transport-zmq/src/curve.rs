//! The CURVE security mechanism of ZMTP 3.0 (ZMTP-CURVE, RFC 25, which is CurveZMQ, RFC 26):
//! the handshake and the MESSAGE boxes, as state machines that do no I/O. The connection
//! feeds them the bodies of the commands it reads and sends the bodies they return; the
//! primitives (X25519, XSalsa20-Poly1305) are RustCrypto's, and nothing here is
//! cryptography of its own beyond the protocol's framing.
//!
//! ```text
//! C: HELLO     %d5 "HELLO" %x1 %x0 72%x00 C' nonce:8 Box[64%x00](C'->S)        200 octets
//! S: WELCOME   %d7 "WELCOME" nonce:16 Box[S' cookie](S->C')                    168
//!              cookie = nonce:16 SecretBox[C' s'](K)                             96
//! C: INITIATE  %d8 "INITIATE" cookie nonce:8 Box[C vouch metadata](C'->S')    257+
//!              vouch  = nonce:16 Box[C' S](C->S')                                96
//! S: READY     %d5 "READY" nonce:8 Box[metadata](S'->C')                        30+
//!    MESSAGE   %d7 "MESSAGE" nonce:8 Box[flags data](X'->Y')                    33+
//! ```
//!
//! Short nonces count up from 1 on each side, through the handshake and the messages (the
//! client's HELLO is 1, its INITIATE 2, its first MESSAGE 3; the server's READY is 1), and
//! each side refuses a short nonce that does not rise. Long nonces are random. The cookie
//! key is made for one connection and dropped once its INITIATE is read, so a replayed
//! INITIATE, or one carrying another connection's cookie, does not open. Transient keys
//! live as long as the state machine that made them, and are wiped with it.

use bytes::{BufMut, Bytes, BytesMut};
use demitter_curve_box::{
    KeyPairBox, PublicKey, SecretKey, SecretKeyBox, generate_secret_key, random_bytes,
};

use crate::curve_keys::{CurvePublicKey, CurveSecretKey};
use crate::error::ZmqError;

const HELLO: &[u8] = b"\x05HELLO";
const WELCOME: &[u8] = b"\x07WELCOME";
const INITIATE: &[u8] = b"\x08INITIATE";
const READY: &[u8] = b"\x05READY";
const MESSAGE: &[u8] = b"\x07MESSAGE";

const HELLO_LEN: usize = 200;
const WELCOME_LEN: usize = 168;
const COOKIE_LEN: usize = 96;
/// INITIATE up to its box: the name, the cookie and the short nonce.
const INITIATE_HEADER: usize = 9 + COOKIE_LEN + 8;
/// The box's contents before the metadata: C and the vouch.
const INITIATE_FIXED: usize = 32 + 16 + 80;
/// READY and MESSAGE up to their boxes.
const SHORT_HEADER: usize = 6 + 8;
const MESSAGE_HEADER: usize = 8 + 8;
/// What a box adds to what it holds.
const TAG: usize = 16;

/// A MESSAGE's flag: more parts follow.
pub const FLAG_MORE: u8 = 0x01;
/// A MESSAGE's flag: the data is a command (ZMTP 3.1's SUBSCRIBE and CANCEL).
pub const FLAG_COMMAND: u8 = 0x02;
/// A MESSAGE's flag, this project's own: the data is whole ZMTP frames, several in one
/// box. Sent only to a peer that asked for it in its handshake metadata (which libzmq
/// never does), and only on its own.
pub const FLAG_BATCH: u8 = 0x80;

/// Why a HELLO sealed for another server key is refused.
pub(crate) const HELLO_SIGNATURE_NOT_OPENED: &str =
    "its signature does not open with this server's key";

fn refused(command: &'static str, reason: &'static str) -> ZmqError {
    ZmqError::Curve { command, reason }
}

/// A 24-octet nonce: a prefix and a short (8) or long (16) part.
fn nonce(prefix: &[u8], tail: &[u8]) -> demitter_curve_box::Nonce {
    let mut n = [0u8; 24];
    n[..prefix.len()].copy_from_slice(prefix);
    n[prefix.len()..].copy_from_slice(tail);
    n
}

fn long_nonce() -> [u8; 16] {
    random_bytes()
}

fn key_at(bytes: &[u8], at: usize) -> PublicKey {
    let mut key = [0u8; 32];
    key.copy_from_slice(&bytes[at..at + 32]);
    PublicKey::from(key)
}

fn short_nonce_at(bytes: &[u8], at: usize) -> u64 {
    let mut n = [0u8; 8];
    n.copy_from_slice(&bytes[at..at + 8]);
    u64::from_be_bytes(n)
}

/// Seals `plain` in a box with `nonce`. Sealing cannot fail for inputs of these sizes.
fn seal(with: &KeyPairBox, nonce: &demitter_curve_box::Nonce, plain: &[u8]) -> Vec<u8> {
    with.seal(nonce, plain).unwrap_or_default()
}

/// The box of one connection's transient keys, and the keys, to make another.
struct Session {
    boxed: KeyPairBox,
    peer: PublicKey,
    ours: SecretKey,
}

impl Session {
    fn new(peer: PublicKey, ours: SecretKey) -> Self {
        Self {
            boxed: KeyPairBox::new(&peer, &ours),
            peer,
            ours,
        }
    }

    /// Another box of the same keys (one for each direction of a split connection).
    fn another_box(&self) -> KeyPairBox {
        KeyPairBox::new(&self.peer, &self.ours)
    }
}

/// The short nonces of one connection: those this side sends, and the last it received.
#[derive(Debug)]
struct ShortNonces {
    next: u64,
    peer: u64,
}

impl ShortNonces {
    fn new() -> Self {
        Self { next: 1, peer: 0 }
    }

    /// The next nonce to send; an error once they run out (after 2^64 - 1 commands).
    fn take(&mut self, command: &'static str) -> Result<[u8; 8], ZmqError> {
        let n = self.next;
        self.next = n
            .checked_add(1)
            .ok_or_else(|| refused(command, "the short nonces ran out"))?;
        Ok(n.to_be_bytes())
    }

    /// Accepts a received nonce if it rises.
    fn accept(&mut self, command: &'static str, nonce: u64) -> Result<(), ZmqError> {
        if nonce <= self.peer {
            return Err(refused(command, "its short nonce did not rise"));
        }
        self.peer = nonce;
        Ok(())
    }
}

/// The client's handshake, waiting for WELCOME. Made with its HELLO.
pub struct ClientHello {
    secret: CurveSecretKey,
    server: PublicKey,
    transient: SecretKey,
    nonces: ShortNonces,
}

impl std::fmt::Debug for ClientHello {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientHello").finish_non_exhaustive()
    }
}

impl ClientHello {
    /// Starts a handshake with the server whose permanent key is `server`, as the client of
    /// `secret`: returns the state and the HELLO body to send.
    pub fn start(
        secret: &CurveSecretKey,
        server: &CurvePublicKey,
    ) -> Result<(Self, Bytes), ZmqError> {
        let transient = generate_secret_key();
        let server = PublicKey::from(*server.as_bytes());
        let mut nonces = ShortNonces::new();
        let short = nonces.take("HELLO")?;
        let signature = seal(
            &KeyPairBox::new(&server, &transient),
            &nonce(b"CurveZMQHELLO---", &short),
            &[0u8; 64],
        );
        let mut hello = BytesMut::with_capacity(HELLO_LEN);
        hello.put_slice(HELLO);
        hello.put_slice(&[1, 0]);
        hello.put_bytes(0, 72);
        hello.put_slice(transient.public_key().as_bytes());
        hello.put_slice(&short);
        hello.put_slice(&signature);
        Ok((
            Self {
                secret: secret.clone(),
                server,
                transient,
                nonces,
            },
            hello.freeze(),
        ))
    }

    /// Reads the server's WELCOME and answers with INITIATE, carrying `metadata` (ZMTP
    /// properties).
    pub fn welcome(
        mut self,
        body: &[u8],
        metadata: &[u8],
    ) -> Result<(ClientInitiate, Bytes), ZmqError> {
        if body.len() != WELCOME_LEN || !body.starts_with(WELCOME) {
            return Err(refused("WELCOME", "not a 168-octet WELCOME"));
        }
        let opened = KeyPairBox::new(&self.server, &self.transient)
            .open(&nonce(b"WELCOME-", &body[8..24]), &body[24..])
            .map_err(|_| refused("WELCOME", "its box does not open with the server's key"))?;
        let server_transient = key_at(&opened, 0);
        let cookie = &opened[32..32 + COOKIE_LEN];

        let vouch_nonce = long_nonce();
        let mut vouched = Vec::with_capacity(64);
        vouched.extend_from_slice(self.transient.public_key().as_bytes());
        vouched.extend_from_slice(self.server.as_bytes());
        let vouch = seal(
            &KeyPairBox::new(&server_transient, self.secret.box_key()),
            &nonce(b"VOUCH---", &vouch_nonce),
            &vouched,
        );
        let mut plain = Vec::with_capacity(INITIATE_FIXED + metadata.len());
        plain.extend_from_slice(self.secret.public_key().as_bytes());
        plain.extend_from_slice(&vouch_nonce);
        plain.extend_from_slice(&vouch);
        plain.extend_from_slice(metadata);
        let session = Session::new(server_transient, self.transient.clone());
        let short = self.nonces.take("INITIATE")?;
        let sealed = seal(&session.boxed, &nonce(b"CurveZMQINITIATE", &short), &plain);
        let mut initiate = BytesMut::with_capacity(INITIATE_HEADER + sealed.len());
        initiate.put_slice(INITIATE);
        initiate.put_slice(cookie);
        initiate.put_slice(&short);
        initiate.put_slice(&sealed);
        Ok((
            ClientInitiate {
                session,
                nonces: self.nonces,
            },
            initiate.freeze(),
        ))
    }
}

/// The client's handshake, waiting for READY.
pub struct ClientInitiate {
    session: Session,
    nonces: ShortNonces,
}

impl std::fmt::Debug for ClientInitiate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientInitiate").finish_non_exhaustive()
    }
}

impl ClientInitiate {
    /// Reads the server's READY: its metadata, and the codec of the connection's messages.
    pub fn ready(mut self, body: &[u8]) -> Result<(Bytes, CurveCodec), ZmqError> {
        if body.len() < SHORT_HEADER + TAG || !body.starts_with(READY) {
            return Err(refused("READY", "not a READY"));
        }
        let short = short_nonce_at(body, 6);
        self.nonces.accept("READY", short)?;
        let metadata = self
            .session
            .boxed
            .open(
                &nonce(b"CurveZMQREADY---", &body[6..14]),
                &body[SHORT_HEADER..],
            )
            .map_err(|_| refused("READY", "its box does not open"))?;
        Ok((
            Bytes::from(metadata),
            CurveCodec {
                session: self.session,
                nonces: self.nonces,
                send_prefix: b"CurveZMQMESSAGEC",
                receive_prefix: b"CurveZMQMESSAGES",
            },
        ))
    }
}

/// The server's side of one connection's handshake, waiting for HELLO.
pub struct ServerHello {
    secret: CurveSecretKey,
}

impl std::fmt::Debug for ServerHello {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHello").finish_non_exhaustive()
    }
}

impl ServerHello {
    /// A handshake for one connection to the server of `secret`.
    pub fn new(secret: &CurveSecretKey) -> Self {
        Self {
            secret: secret.clone(),
        }
    }

    /// Reads the client's HELLO and answers with WELCOME.
    pub fn hello(self, body: &[u8]) -> Result<(ServerWelcome, Bytes), ZmqError> {
        if body.len() != HELLO_LEN || !body.starts_with(HELLO) {
            return Err(refused("HELLO", "not a 200-octet HELLO"));
        }
        if body[6..8] != [1, 0] {
            return Err(refused("HELLO", "not CurveZMQ version 1.0"));
        }
        if body[8..80].iter().any(|b| *b != 0) {
            return Err(refused("HELLO", "its padding is not zero"));
        }
        let client_transient = key_at(body, 80);
        let mut nonces = ShortNonces::new();
        nonces.accept("HELLO", short_nonce_at(body, 112))?;
        let signature = KeyPairBox::new(&client_transient, self.secret.box_key())
            .open(&nonce(b"CurveZMQHELLO---", &body[112..120]), &body[120..])
            .map_err(|_| refused("HELLO", HELLO_SIGNATURE_NOT_OPENED))?;
        if signature != [0u8; 64] {
            return Err(refused("HELLO", "its signature is not 64 zero octets"));
        }

        let transient = generate_secret_key();
        let cookie = SecretKeyBox::generate();
        let cookie_nonce = long_nonce();
        let mut kept = Vec::with_capacity(64);
        kept.extend_from_slice(client_transient.as_bytes());
        kept.extend_from_slice(&transient.to_bytes());
        let cookie_box = cookie
            .seal(&nonce(b"COOKIE--", &cookie_nonce), kept.as_slice())
            .unwrap_or_default();
        zeroize::Zeroize::zeroize(&mut kept);
        let mut plain = Vec::with_capacity(32 + COOKIE_LEN);
        plain.extend_from_slice(transient.public_key().as_bytes());
        plain.extend_from_slice(&cookie_nonce);
        plain.extend_from_slice(&cookie_box);
        let welcome_nonce = long_nonce();
        let sealed = seal(
            &KeyPairBox::new(&client_transient, self.secret.box_key()),
            &nonce(b"WELCOME-", &welcome_nonce),
            &plain,
        );
        let mut welcome = BytesMut::with_capacity(WELCOME_LEN);
        welcome.put_slice(WELCOME);
        welcome.put_slice(&welcome_nonce);
        welcome.put_slice(&sealed);
        // The server keeps only the cookie key (and C', to check the cookie against): its
        // transient secret comes back in the cookie.
        drop(transient);
        Ok((
            ServerWelcome {
                secret: self.secret,
                client_transient,
                cookie,
                nonces,
            },
            welcome.freeze(),
        ))
    }
}

/// The server's handshake, waiting for INITIATE.
pub struct ServerWelcome {
    secret: CurveSecretKey,
    client_transient: PublicKey,
    cookie: SecretKeyBox,
    nonces: ShortNonces,
}

impl std::fmt::Debug for ServerWelcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerWelcome").finish_non_exhaustive()
    }
}

/// A client whose INITIATE opened: who it is, and what it said of itself. The server
/// decides whether to let it in ([`accept`](Self::accept)) or not (drop it, and send
/// ERROR).
pub struct ServerInitiated {
    /// The client's permanent key, proven by its vouch.
    pub client: CurvePublicKey,
    /// The client's metadata (ZMTP properties).
    pub metadata: Bytes,
    session: Session,
    nonces: ShortNonces,
}

impl std::fmt::Debug for ServerInitiated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerInitiated")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl ServerWelcome {
    /// Reads the client's INITIATE: its cookie must be this connection's, its vouch must
    /// bind its permanent key to this connection and this server.
    pub fn initiate(mut self, body: &[u8]) -> Result<ServerInitiated, ZmqError> {
        if body.len() < INITIATE_HEADER + INITIATE_FIXED + TAG || !body.starts_with(INITIATE) {
            return Err(refused("INITIATE", "not an INITIATE"));
        }
        let cookie = &body[9..9 + COOKIE_LEN];
        let kept = self
            .cookie
            .open(&nonce(b"COOKIE--", &cookie[..16]), &cookie[16..])
            .map_err(|_| refused("INITIATE", "its cookie is not this connection's"))?;
        let kept = zeroize::Zeroizing::new(kept);
        if kept[..32] != *self.client_transient.as_bytes() {
            return Err(refused("INITIATE", "its cookie is for another client key"));
        }
        let mut transient_bytes = zeroize::Zeroizing::new([0u8; 32]);
        transient_bytes.copy_from_slice(&kept[32..64]);
        let transient = SecretKey::from(*transient_bytes);
        self.nonces
            .accept("INITIATE", short_nonce_at(body, 9 + COOKIE_LEN))?;
        let session = Session::new(self.client_transient.clone(), transient.clone());
        let plain = session
            .boxed
            .open(
                &nonce(b"CurveZMQINITIATE", &body[105..113]),
                &body[INITIATE_HEADER..],
            )
            .map_err(|_| refused("INITIATE", "its box does not open"))?;
        let client = key_at(&plain, 0);
        let vouch = KeyPairBox::new(&client, &transient)
            .open(&nonce(b"VOUCH---", &plain[32..48]), &plain[48..128])
            .map_err(|_| refused("INITIATE", "its vouch does not open with the client's key"))?;
        if vouch[..32] != *self.client_transient.as_bytes()
            || vouch[32..64] != *self.secret.public_key().as_bytes()
        {
            return Err(refused(
                "INITIATE",
                "its vouch is for another connection or server",
            ));
        }
        Ok(ServerInitiated {
            client: CurvePublicKey::from_bytes(*client.as_bytes()),
            metadata: Bytes::copy_from_slice(&plain[INITIATE_FIXED..]),
            session,
            nonces: self.nonces,
        })
    }
}

impl ServerInitiated {
    /// Lets the client in: the READY body carrying `metadata`, and the connection's codec.
    pub fn accept(mut self, metadata: &[u8]) -> Result<(Bytes, CurveCodec), ZmqError> {
        let short = self.nonces.take("READY")?;
        let sealed = seal(
            &self.session.boxed,
            &nonce(b"CurveZMQREADY---", &short),
            metadata,
        );
        let mut ready = BytesMut::with_capacity(SHORT_HEADER + sealed.len());
        ready.put_slice(READY);
        ready.put_slice(&short);
        ready.put_slice(&sealed);
        Ok((
            ready.freeze(),
            CurveCodec {
                session: self.session,
                nonces: self.nonces,
                send_prefix: b"CurveZMQMESSAGES",
                receive_prefix: b"CurveZMQMESSAGEC",
            },
        ))
    }
}

/// The ERROR body refusing a client, with `reason` (at most 255 octets).
pub fn error_body(reason: &str) -> Bytes {
    let reason = &reason.as_bytes()[..reason.len().min(255)];
    let mut body = BytesMut::with_capacity(7 + reason.len());
    body.put_slice(b"\x05ERROR");
    body.put_u8(u8::try_from(reason.len()).unwrap_or(u8::MAX));
    body.put_slice(reason);
    body.freeze()
}

/// The boxes of one connection's messages, after the handshake, each way.
pub struct CurveCodec {
    session: Session,
    nonces: ShortNonces,
    send_prefix: &'static [u8; 16],
    receive_prefix: &'static [u8; 16],
}

impl std::fmt::Debug for CurveCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CurveCodec").finish_non_exhaustive()
    }
}

impl CurveCodec {
    /// The MESSAGE body carrying one frame's `data` with its `flags` ([`FLAG_MORE`],
    /// [`FLAG_COMMAND`]).
    pub fn seal(&mut self, flags: u8, data: &[u8]) -> Result<Bytes, ZmqError> {
        let short = u64::from_be_bytes(self.nonces.take("MESSAGE")?);
        sealed_message(&self.session.boxed, self.send_prefix, short, flags, data)
    }

    /// Opens a MESSAGE body: its flags and data. A box that does not open, or a short
    /// nonce that does not rise (a replayed or reordered message), is refused; the
    /// connection cannot go on after it.
    pub fn open(&mut self, body: &[u8]) -> Result<(u8, Bytes), ZmqError> {
        let (flags, data, short) = open_message(
            &self.session.boxed,
            self.receive_prefix,
            self.nonces.peer,
            body,
        )?;
        self.nonces.peer = short;
        Ok((flags, data))
    }
}

/// Feeds `data` to every decoder of the mechanism, each in the state that reads it: for the
/// fuzz targets and the hostile-input tests.
impl CurveCodec {
    /// The two directions apart, for a connection read and written by different tasks:
    /// each has its own nonces.
    pub fn split(self) -> (CurveOpener, CurveSealer) {
        let ShortNonces { next, peer } = self.nonces;
        (
            CurveOpener {
                session: self.session.another_box(),
                peer,
                prefix: self.receive_prefix,
            },
            CurveSealer {
                session: self.session.boxed,
                next,
                prefix: self.send_prefix,
            },
        )
    }
}

/// What opens the MESSAGEs a connection receives (see [`CurveCodec::open`]).
pub struct CurveOpener {
    session: KeyPairBox,
    peer: u64,
    prefix: &'static [u8; 16],
}

/// What seals the MESSAGEs a connection sends (see [`CurveCodec::seal`]).
pub struct CurveSealer {
    session: KeyPairBox,
    next: u64,
    prefix: &'static [u8; 16],
}

impl CurveOpener {
    /// Opens a MESSAGE body: its flags and data (see [`CurveCodec::open`]).
    pub fn open(&mut self, body: &[u8]) -> Result<(u8, Bytes), ZmqError> {
        let (flags, data, nonce) = open_message(&self.session, self.prefix, self.peer, body)?;
        self.peer = nonce;
        Ok((flags, data))
    }
}

impl CurveSealer {
    /// The MESSAGE body carrying `data` with its `flags` (see [`CurveCodec::seal`]).
    pub fn seal(&mut self, flags: u8, data: &[u8]) -> Result<Bytes, ZmqError> {
        let short = self.take()?;
        sealed_message(&self.session, self.prefix, short, flags, data)
    }

    /// Appends to `out` the ZMTP frame of a MESSAGE carrying `data` with its `flags`,
    /// sealed where it lies: the data is copied once, into `out`.
    pub fn seal_frame(
        &mut self,
        flags: u8,
        data: &[u8],
        out: &mut BytesMut,
    ) -> Result<(), ZmqError> {
        let short = self.take()?;
        crate::zmtp::put_frame_header(out, false, MESSAGE_HEADER + TAG + 1 + data.len());
        seal_message(&self.session, self.prefix, short, flags, data, out)
    }

    /// The next short nonce.
    fn take(&mut self) -> Result<u64, ZmqError> {
        let short = self.next;
        self.next = short
            .checked_add(1)
            .ok_or_else(|| refused("MESSAGE", "the short nonces ran out"))?;
        Ok(short)
    }
}

/// A MESSAGE body: `data` and its `flags`, sealed with short nonce `short`.
fn sealed_message(
    session: &KeyPairBox,
    prefix: &[u8; 16],
    short: u64,
    flags: u8,
    data: &[u8],
) -> Result<Bytes, ZmqError> {
    let mut message = BytesMut::with_capacity(MESSAGE_HEADER + TAG + 1 + data.len());
    seal_message(session, prefix, short, flags, data, &mut message)?;
    Ok(message.freeze())
}

/// Appends a MESSAGE body to `out`: `data` and its `flags` copied once and sealed where
/// they lie, with short nonce `short`.
fn seal_message(
    session: &KeyPairBox,
    prefix: &[u8; 16],
    short: u64,
    flags: u8,
    data: &[u8],
    out: &mut BytesMut,
) -> Result<(), ZmqError> {
    let short = short.to_be_bytes();
    out.put_slice(MESSAGE);
    out.put_slice(&short);
    let tag_at = out.len();
    // The box is its tag, then the sealed bytes.
    out.put_bytes(0, TAG);
    out.put_u8(flags);
    out.put_slice(data);
    let tag = session
        .seal_in_place(&nonce(prefix, &short), &mut out[tag_at + TAG..])
        .map_err(|_| refused("MESSAGE", "it could not be sealed"))?;
    out[tag_at..tag_at + TAG].copy_from_slice(&tag);
    Ok(())
}

/// Opens a MESSAGE body whose short nonce must be above `last`: its flags, data and nonce.
fn open_message(
    session: &KeyPairBox,
    prefix: &[u8; 16],
    last: u64,
    body: &[u8],
) -> Result<(u8, Bytes, u64), ZmqError> {
    if body.len() < MESSAGE_HEADER + TAG + 1 || !body.starts_with(MESSAGE) {
        return Err(refused("MESSAGE", "not a MESSAGE"));
    }
    let short = short_nonce_at(body, 8);
    let plain = session
        .open(&nonce(prefix, &body[8..16]), &body[MESSAGE_HEADER..])
        .map_err(|_| refused("MESSAGE", "its box does not open"))?;
    // Only a message that opened moves the nonce: a forged one cannot push it up.
    if short <= last {
        return Err(refused("MESSAGE", "its short nonce did not rise"));
    }
    let flags = plain[0];
    if flags & !(FLAG_MORE | FLAG_COMMAND) != 0 && flags != FLAG_BATCH {
        return Err(refused("MESSAGE", "reserved flags are set"));
    }
    Ok((flags, Bytes::from(plain).slice(1..), short))
}

#[doc(hidden)]
pub fn decode_hostile(data: &[u8]) {
    let (client, server) = (CurveSecretKey::generate(), CurveSecretKey::generate());
    let start = || ClientHello::start(&client, &server.public_key());
    let welcomed = |hello: &[u8]| ServerHello::new(&server).hello(hello);
    // `data` as HELLO, as WELCOME, as INITIATE.
    let _ = welcomed(data);
    if let Ok((waiting, _)) = start() {
        let _ = waiting.welcome(data, b"");
    }
    let Ok((waiting, hello)) = start() else {
        return;
    };
    let Ok((server_waiting, welcome)) = welcomed(&hello) else {
        return;
    };
    let _ = server_waiting.initiate(data);
    // As READY, after a real WELCOME.
    if let Ok((initiated, _)) = waiting.welcome(&welcome, b"") {
        let _ = initiated.ready(data);
    }
    // As a MESSAGE, and as the frames of a batch that an allowed peer sealed, opened and
    // split as a reader does.
    let Ok((waiting, hello)) = start() else {
        return;
    };
    let Ok((server_waiting, welcome)) = welcomed(&hello) else {
        return;
    };
    let Ok((initiated, initiate)) = waiting.welcome(&welcome, b"") else {
        return;
    };
    let Ok((ready, mut server_codec)) = server_waiting
        .initiate(&initiate)
        .and_then(|known| known.accept(b""))
    else {
        return;
    };
    let Ok((_, mut client_codec)) = initiated.ready(&ready) else {
        return;
    };
    let _ = server_codec.open(data);
    if let Ok(sealed) = client_codec.seal(FLAG_BATCH, data)
        && let Ok((FLAG_BATCH, frames)) = server_codec.open(&sealed)
    {
        let mut frames = bytes::BytesMut::from(&frames[..]);
        while let Ok(Some(_)) = crate::zmtp::ZmtpFrameDecoder::new(64 * 1024).decode(&mut frames) {}
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    struct Handshake {
        client: CurveCodec,
        server: CurveCodec,
        client_key: CurvePublicKey,
        client_metadata: Bytes,
        server_metadata: Bytes,
    }

    fn handshake(client: &CurveSecretKey, server: &CurveSecretKey) -> Result<Handshake, ZmqError> {
        let (waiting, hello) = ClientHello::start(client, &server.public_key())?;
        let (welcomed, welcome) = ServerHello::new(server).hello(&hello)?;
        let (initiated, initiate) = waiting.welcome(&welcome, b"client-meta")?;
        let known = welcomed.initiate(&initiate)?;
        let (client_key, client_metadata) = (known.client, known.metadata.clone());
        let (ready, server_codec) = known.accept(b"server-meta")?;
        let (server_metadata, client_codec) = initiated.ready(&ready)?;
        Ok(Handshake {
            client: client_codec,
            server: server_codec,
            client_key,
            client_metadata,
            server_metadata,
        })
    }

    #[test]
    fn a_handshake_proves_the_client_and_messages_flow_both_ways() {
        let (client, server) = (CurveSecretKey::generate(), CurveSecretKey::generate());
        let mut done = handshake(&client, &server).expect("handshake");
        assert_eq!(done.client_key, client.public_key());
        assert_eq!(&done.client_metadata[..], b"client-meta");
        assert_eq!(&done.server_metadata[..], b"server-meta");
        for n in 0..3u8 {
            let data = format!("secret number {n}");
            let sealed = done
                .client
                .seal(FLAG_MORE, data.as_bytes())
                .expect("sealed");
            assert!(
                !sealed.windows(data.len()).any(|w| w == data.as_bytes()),
                "the data is not in clear"
            );
            assert_eq!(
                done.server.open(&sealed).expect("opens"),
                (FLAG_MORE, Bytes::from(data))
            );
            let back = done.server.seal(0, b"back").expect("sealed");
            assert_eq!(
                done.client.open(&back).expect("opens"),
                (0, Bytes::from_static(b"back"))
            );
        }
    }

    #[test]
    fn frames_sealed_in_place_open_as_boxes_sealed_apart() {
        let (client, server) = (CurveSecretKey::generate(), CurveSecretKey::generate());
        let done = handshake(&client, &server).expect("handshake");
        let (_, mut sealer) = done.client.split();
        let (mut opener, _) = done.server.split();
        let mut out = BytesMut::new();
        let long = vec![9u8; 300];
        let sent: [(u8, &[u8]); 4] = [
            (FLAG_MORE, b"first"),
            (0, &long),
            (FLAG_BATCH, b""),
            (FLAG_COMMAND, b"\x09SUBSCRIBE"),
        ];
        for (flags, data) in sent {
            sealer.seal_frame(flags, data, &mut out).expect("sealed");
        }
        // One apart, after them: the nonces run on.
        let apart = sealer.seal(0, b"apart").expect("sealed");
        for (flags, data) in sent {
            let Some(crate::zmtp::ZmtpFrame::Part { more: false, body }) =
                crate::zmtp::ZmtpFrameDecoder::new(1 << 20)
                    .decode(&mut out)
                    .expect("a frame")
            else {
                panic!("a frame for {data:?}");
            };
            assert!(!body.windows(5).any(|w| w == b"first"), "not in clear");
            assert_eq!(
                opener.open(&body).expect("opens"),
                (flags, Bytes::copy_from_slice(data))
            );
        }
        assert!(out.is_empty());
        assert_eq!(
            opener.open(&apart).expect("opens"),
            (0, Bytes::from_static(b"apart"))
        );
    }

    #[test]
    fn the_wrong_server_key_and_tampered_commands_are_refused() {
        let (client, server, other) = (
            CurveSecretKey::generate(),
            CurveSecretKey::generate(),
            CurveSecretKey::generate(),
        );
        // A client that has the wrong key for the server.
        let (_, hello) = ClientHello::start(&client, &other.public_key()).expect("starts");
        let refused = ServerHello::new(&server)
            .hello(&hello)
            .expect_err("refused");
        assert!(refused.to_string().contains("signature"), "{refused}");
        // Every byte of each handshake command matters.
        let (waiting, hello) = ClientHello::start(&client, &server.public_key()).expect("starts");
        for at in [0, 7, 80, 112, 150, 199] {
            let mut bad = hello.to_vec();
            bad[at] ^= 1;
            assert!(
                ServerHello::new(&server).hello(&bad).is_err(),
                "HELLO byte {at}"
            );
        }
        let (welcomed, welcome) = ServerHello::new(&server).hello(&hello).expect("hello");
        let mut bad = welcome.to_vec();
        bad[100] ^= 1;
        assert!(
            ClientHello::start(&client, &server.public_key())
                .expect("starts")
                .0
                .welcome(&bad, b"")
                .is_err()
        );
        let (_, initiate) = waiting.welcome(&welcome, b"").expect("welcome");
        assert!(welcomed.initiate(&initiate).is_ok());
        for at in [9, 50, 105, 120, 200, initiate.len() - 1] {
            // The connection's own state, which would read the INITIATE unchanged.
            let (waiting, hello) =
                ClientHello::start(&client, &server.public_key()).expect("starts");
            let (welcomed, welcome) = ServerHello::new(&server).hello(&hello).expect("hello");
            let (_, initiate) = waiting.welcome(&welcome, b"").expect("welcome");
            let mut bad = initiate.to_vec();
            bad[at] ^= 1;
            assert!(welcomed.initiate(&bad).is_err(), "INITIATE byte {at}");
        }
    }

    #[test]
    fn replays_stale_cookies_and_repeated_nonces_are_refused() {
        let (client, server) = (CurveSecretKey::generate(), CurveSecretKey::generate());
        let (waiting, hello) = ClientHello::start(&client, &server.public_key()).expect("starts");
        let (welcomed, welcome) = ServerHello::new(&server).hello(&hello).expect("hello");
        let (_, initiate) = waiting.welcome(&welcome, b"").expect("welcome");
        // The same HELLO and INITIATE replayed on a new connection: the new connection's
        // cookie key does not open the old cookie.
        let (replayed, _) = ServerHello::new(&server)
            .hello(&hello)
            .expect("a HELLO is stateless");
        let stale = replayed.initiate(&initiate).expect_err("a stale cookie");
        assert!(stale.to_string().contains("cookie"), "{stale}");
        let known = welcomed.initiate(&initiate).expect("the right connection");
        let (_, mut server_codec) = known.accept(b"").expect("ready");

        let mut done = handshake(&client, &server).expect("handshake");
        let first = done.client.seal(0, b"one").expect("sealed");
        let second = done.client.seal(0, b"two").expect("sealed");
        done.server.open(&second).expect("opens");
        let reordered = done.server.open(&first).expect_err("an older nonce");
        assert!(
            reordered.to_string().contains("did not rise"),
            "{reordered}"
        );
        let replay = done.server.open(&second).expect_err("the same nonce");
        assert!(replay.to_string().contains("did not rise"), "{replay}");
        // Another connection's messages do not open here.
        let foreign = done.client.seal(0, b"x").expect("sealed");
        assert!(server_codec.open(&foreign).is_err());
        // Forged bytes do not move the nonce: the real next message still opens.
        let next = done.client.seal(0, b"three").expect("sealed");
        let mut forged = next.to_vec();
        *forged.last_mut().expect("bytes") ^= 1;
        assert!(done.server.open(&forged).is_err());
        assert_eq!(&done.server.open(&next).expect("opens").1[..], b"three");
    }

    #[test]
    fn short_and_garbage_commands_are_errors_not_panics() {
        let server = CurveSecretKey::generate();
        let client = CurveSecretKey::generate();
        for len in [0, 1, 6, 199, 201] {
            let junk = vec![5u8; len];
            assert!(ServerHello::new(&server).hello(&junk).is_err());
        }
        let (waiting, hello) = ClientHello::start(&client, &server.public_key()).expect("starts");
        let (welcomed, _) = ServerHello::new(&server).hello(&hello).expect("hello");
        assert!(welcomed.initiate(INITIATE).is_err());
        assert!(waiting.welcome(b"\x07WELCOME", b"").is_err());
        let mut done = handshake(&client, &server).expect("handshake");
        for junk in [&b""[..], b"\x07MESSAGE", b"\x07MESSAGE12345678", &[0u8; 40]] {
            assert!(done.server.open(junk).is_err());
        }
        assert_eq!(&error_body("no")[..], b"\x05ERROR\x02no");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn any_bytes_are_refused_or_read_never_a_panic(
            data in prop::collection::vec(any::<u8>(), 0..400),
        ) {
            decode_hostile(&data);
        }

        /// Whatever byte of a handshake is changed, and however, the handshake fails.
        #[test]
        fn any_changed_byte_of_a_handshake_is_refused(
            command in 0..4usize,
            at in any::<prop::sample::Index>(),
            flip in 1..=255u8,
        ) {
            let (client, server) = (CurveSecretKey::generate(), CurveSecretKey::generate());
            let (waiting, hello) = ClientHello::start(&client, &server.public_key()).expect("starts");
            let flipped = |bytes: &Bytes| {
                let mut bad = bytes.to_vec();
                let i = at.index(bad.len());
                bad[i] ^= flip;
                bad
            };
            if command == 0 {
                prop_assert!(ServerHello::new(&server).hello(&flipped(&hello)).is_err());
                return Ok(());
            }
            let (welcomed, welcome) = ServerHello::new(&server).hello(&hello).expect("hello");
            if command == 1 {
                prop_assert!(waiting.welcome(&flipped(&welcome), b"meta").is_err());
                return Ok(());
            }
            let (initiated, initiate) = waiting.welcome(&welcome, b"meta").expect("welcome");
            if command == 2 {
                prop_assert!(welcomed.initiate(&flipped(&initiate)).is_err());
                return Ok(());
            }
            let (ready, _) = welcomed.initiate(&initiate).expect("initiate").accept(b"m").expect("ready");
            prop_assert!(initiated.ready(&flipped(&ready)).is_err());
        }
    }
}
