//! One connection's life: the hello exchange, the writer that drains the peer's queue in
//! batches, and the reader that turns records into what the emitter receives.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use demitter_core::{
    CloseDeadlines, DecodeCache, ErrorKind, ErrorReport, Frame, Incoming, NodeId, SendQueue,
};
use tokio_util::sync::CancellationToken;

use crate::wire::{
    self, Hello, KIND_FRAME, KIND_HELLO, KIND_PEERS, PREAMBLE, Peers, RecordDecoder,
};

/// One live connection to a peer.
#[derive(Debug)]
pub(crate) struct Link {
    pub(crate) id: u64,
    pub(crate) peer: NodeId,
    pub(crate) incarnation: u64,
    pub(crate) dialed_by_me: bool,
    /// Where the peer listens: the address it connected from, with its listen port.
    pub(crate) addr: SocketAddr,
    pub(crate) conn: quinn::Connection,
    pub(crate) queue: SendQueue,
    /// Cancelled when the writer has sent everything and stopped.
    pub(crate) flushed: CancellationToken,
}

/// Why a connection was closed, as its QUIC application error code.
pub(crate) mod close_code {
    use quinn::VarInt;
    /// The peer is leaving.
    pub(crate) const BYE: VarInt = VarInt::from_u32(0);
    /// A second connection between the same pair; the other one stays.
    pub(crate) const DUPLICATE: VarInt = VarInt::from_u32(1);
    /// A newer incarnation of the peer connected.
    pub(crate) const REPLACED: VarInt = VarInt::from_u32(2);
    /// The peer's name is not allowed here.
    pub(crate) const REFUSED: VarInt = VarInt::from_u32(3);
    /// The peer broke the wire format.
    pub(crate) const PROTOCOL: VarInt = VarInt::from_u32(4);
    /// A node dialed itself.
    pub(crate) const SELF: VarInt = VarInt::from_u32(5);
    /// The node stopped without a goodbye (aborted).
    pub(crate) const ABORT: VarInt = VarInt::from_u32(6);
    /// Two live nodes with one name met: the newer gives way (see `namesake`).
    pub(crate) const NAMESAKE: VarInt = VarInt::from_u32(7);
}

/// What a link's reader and writer need from the node that owns the link (the mesh):
/// they know nothing else of it.
pub(crate) trait LinkHost: Send + Sync + 'static {
    /// The largest frame accepted.
    fn max_frame_bytes(&self) -> usize;
    /// The byte bound of each peer's queue (for reports).
    fn peer_queue_bytes(&self) -> usize;
    /// Cancelled when the node stops.
    fn stopping(&self) -> &CancellationToken;
    /// Hands what a link received to the emitter.
    fn deliver(&self, batch: Vec<Incoming>) -> impl Future<Output = ()> + Send;
    /// Puts a report on the emitter's error channel.
    fn report(&self, report: ErrorReport) -> impl Future<Output = ()> + Send {
        self.deliver(vec![Incoming::Report(report)])
    }
    /// Remembers the peers a gossip record names; tells the emitter of those it is not
    /// connected to (and of bad entries) through `out`.
    fn learn_gossip(&self, from: &NodeId, peers: Peers, out: &mut Vec<Incoming>);
    /// A link's first record arrived: the peer's gossip, which it sends first, is in.
    /// The first time, the emitter hears that this node has made contact with the bus.
    fn first_record(&self, out: &mut Vec<Incoming>);
    /// The link's connection ended.
    fn link_ended(
        self: &Arc<Self>,
        link: &Link,
        reason: &quinn::ConnectionError,
    ) -> impl Future<Output = ()> + Send;
}

/// Bytes gathered into one stream write.
const WRITE_BATCH: usize = 64 * 1024;
/// The largest hello accepted.
const MAX_HELLO: usize = 1024;

/// Opens our stream with the hello, and reads the peer's. Returns the peer's hello, both
/// streams and whatever arrived after the hello.
pub(crate) async fn handshake(
    hello: &Hello,
    conn: &quinn::Connection,
) -> Result<(Hello, quinn::SendStream, quinn::RecvStream, BytesMut), DialError> {
    let lost = |e: &quinn::ConnectionError| classify(e);
    let mut send = conn.open_uni().await.map_err(|e| lost(&e))?;
    let mut first = PREAMBLE.to_vec();
    first.extend_from_slice(&wire::message_record(KIND_HELLO, hello));
    send.write_all(&first).await.map_err(|e| match e {
        quinn::WriteError::ConnectionLost(e) => lost(&e),
        other => DialError::Unreachable(other.to_string()),
    })?;
    let mut recv = conn.accept_uni().await.map_err(|e| lost(&e))?;
    let mut preamble = [0u8; PREAMBLE.len()];
    recv.read_exact(&mut preamble).await.map_err(|e| match e {
        quinn::ReadExactError::ReadError(quinn::ReadError::ConnectionLost(e)) => lost(&e),
        other => DialError::Refused(format!("no stream preamble: {other}")),
    })?;
    if preamble[..5] != PREAMBLE[..5] {
        return Err(DialError::Refused(
            "not a demitter peer (bad preamble)".into(),
        ));
    }
    if preamble[5] != PREAMBLE[5] {
        return Err(DialError::Refused(format!(
            "wire format version {} (this build speaks {})",
            preamble[5], PREAMBLE[5]
        )));
    }
    let decoder = RecordDecoder::new(MAX_HELLO);
    let mut buf = BytesMut::new();
    loop {
        match decoder.next_record(&mut buf) {
            Ok(Some((KIND_HELLO, body))) => {
                let hello = wire::decode_message::<Hello>("hello", &body)
                    .map_err(|e| DialError::Refused(e.to_string()))?;
                return Ok((hello, send, recv, buf));
            }
            Ok(Some((kind, _))) => {
                return Err(DialError::Refused(format!(
                    "the first record is of kind {kind}, not a hello"
                )));
            }
            Err(e) => {
                return Err(DialError::Refused(format!("an unreadable hello: {e}")));
            }
            Ok(None) => match recv.read_chunk(MAX_HELLO, true).await {
                Ok(Some(chunk)) => buf.extend_from_slice(&chunk.bytes),
                Ok(None) => {
                    return Err(DialError::Refused(
                        "the stream ended before the hello".into(),
                    ));
                }
                Err(quinn::ReadError::ConnectionLost(e)) => return Err(lost(&e)),
                Err(e) => return Err(DialError::Refused(e.to_string())),
            },
        }
    }
}

/// Sends the peer's queue, many records per write, until the queue is closed and empty.
pub(crate) async fn write_loop(
    host: Arc<impl LinkHost>,
    link: Arc<Link>,
    mut send: quinn::SendStream,
) {
    loop {
        let drained = link.queue.drain(WRITE_BATCH);
        if let Some(dropped) = drained.dropped_events {
            tracing::debug!(peer = %link.peer, dropped, "peer caught up after events were dropped for it");
            host.report(
                ErrorReport::new(
                    ErrorKind::Network,
                    dropped,
                    format!(
                        "{dropped} event(s) for peer `{}` were dropped: it fell more than {} bytes behind (slow or stalled)",
                        link.peer,
                        host.peer_queue_bytes()
                    ),
                )
                .with_peer(link.peer.as_str()),
            )
            .await;
        }
        if !drained.bytes.is_empty() {
            // Handed over, not copied: QUIC keeps the chunk until the peer acknowledges it.
            if let Err(e) = send.write_chunk(drained.bytes).await {
                tracing::debug!(peer = %link.peer, "stream closed: {e}");
                break;
            }
            continue;
        }
        if drained.finished {
            let _ = send.finish();
            CloseDeadlines::DEFAULT
                .flushed("the peer's acknowledgement of our stream", send.stopped())
                .await;
            break;
        }
        tokio::select! {
            () = link.queue.ready() => {}
            () = host.stopping().cancelled() => break,
        }
    }
    link.flushed.cancel();
}

/// What [`take_record`] left the read loop to do.
enum Taken {
    /// Read on.
    More,
    /// Nothing more is buffered.
    Drained,
    /// The stream is beyond repair.
    Broken,
}

/// Turns one record (or its absence, or the decoder's error) into what the emitter hears.
fn take_record(
    host: &impl LinkHost,
    link: &Link,
    record: Result<Option<(u8, bytes::Bytes)>, demitter_core::Error>,
    max_frame: usize,
    cache: &mut DecodeCache,
    batch: &mut Vec<Incoming>,
) -> Taken {
    let bad = |message: String| {
        Incoming::Report(
            ErrorReport::new(ErrorKind::Deserialization, 1, message).with_peer(link.peer.as_str()),
        )
    };
    match record {
        Ok(Some((KIND_FRAME, body))) => match Frame::decode_cached(body, max_frame, cache) {
            Ok(frame) => batch.push(Incoming::Frame {
                from: Some(link.peer.clone()),
                frame,
            }),
            Err(e) => batch.push(bad(format!("from peer `{}`: {e}", link.peer))),
        },
        Ok(Some((KIND_PEERS, body))) => match wire::decode_message::<Peers>("gossip", &body) {
            Ok(peers) => host.learn_gossip(&link.peer, peers, batch),
            Err(e) => batch.push(bad(format!("from peer `{}`: {e}", link.peer))),
        },
        Ok(Some((kind, _))) => batch.push(bad(format!(
            "peer `{}` sent a record of unknown kind {kind}; skipped",
            link.peer
        ))),
        Ok(None) => return Taken::Drained,
        Err(e) => {
            batch.push(bad(format!("peer `{}` sent {e}; disconnected", link.peer)));
            return Taken::Broken;
        }
    }
    Taken::More
}

/// Reads the peer's records until its stream or the connection ends, then ends the link.
pub(crate) async fn read_loop(
    host: Arc<impl LinkHost>,
    link: Arc<Link>,
    mut recv: quinn::RecvStream,
    mut buf: BytesMut,
) {
    let max_frame = host.max_frame_bytes();
    let decoder = RecordDecoder::new(max_frame);
    // Frames from this peer name it as their source: decoded to the very id the link
    // holds, the core's "is the source the peer?" check is a pointer compare.
    let mut cache = DecodeCache::default();
    cache.remember_source(link.peer.clone());
    let mut first = true;
    loop {
        let mut batch = Vec::new();
        let mut broken = false;
        loop {
            let record = decoder.next_record(&mut buf);
            let is_record = matches!(record, Ok(Some(_)));
            match take_record(&*host, &link, record, max_frame, &mut cache, &mut batch) {
                Taken::More => {}
                Taken::Drained => break,
                Taken::Broken => {
                    broken = true;
                    break;
                }
            }
            if first && is_record {
                // After the first record: the peer's gossip, which it sends first, is in.
                first = false;
                host.first_record(&mut batch);
            }
        }
        host.deliver(batch).await;
        if broken {
            link.conn
                .close(close_code::PROTOCOL, b"record over the size limit");
            break;
        }
        match recv.read_chunk(usize::MAX, true).await {
            Ok(Some(chunk)) => buf.extend_from_slice(&chunk.bytes),
            Ok(None) => {
                // The peer finished its stream: it is leaving and closes next.
                if !CloseDeadlines::DEFAULT
                    .left("a peer that ended its stream", link.conn.closed())
                    .await
                {
                    link.conn.close(close_code::BYE, b"you left");
                }
                break;
            }
            Err(e) => {
                tracing::debug!(peer = %link.peer, "stream ended: {e}");
                break;
            }
        }
    }
    let reason = link.conn.closed().await;
    host.link_ended(&link, &reason).await;
}

/// Why a dial or an incoming connection did not become a link.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DialError {
    #[error("unreachable: {0}")]
    Unreachable(String),
    #[error("refused: {0}")]
    Refused(String),
    #[error("the peer's name is not allowed")]
    NotAllowed,
    #[error("that address is this node")]
    SelfConnection,
    #[error("a live node with this node's name")]
    Namesake,
}

/// Sorts a failed connection: a refused certificate (a TLS alert, from either side), a
/// QUIC version we do not share, or a peer that refuses us by name are refusals; the rest
/// (a peer that left or went quiet, or is not there yet) is not.
pub(crate) fn classify(e: &quinn::ConnectionError) -> DialError {
    use quinn::ConnectionError as E;
    match e {
        E::VersionMismatch => DialError::Refused(format!("the QUIC handshake failed: {e}")),
        _ if is_tls_refusal(e) => DialError::Refused(format!("the TLS handshake failed: {e}")),
        // A node with the dialer's name that gave way (or had given way already).
        E::ApplicationClosed(close) if close.error_code == close_code::NAMESAKE => {
            DialError::Namesake
        }
        E::ApplicationClosed(close) if close.error_code == close_code::REFUSED => {
            DialError::Refused(format!(
                "the peer refused us: {}",
                String::from_utf8_lossy(&close.reason)
            ))
        }
        _ => DialError::Unreachable(e.to_string()),
    }
}

/// Whether a failed connection ended in a TLS alert, raised by either side (a crypto error
/// code, 0x100 to 0x1ff): a certificate refused, as opposed to a peer that closed the
/// connection or left during the handshake, which is no one's refusal.
pub(crate) fn is_tls_refusal(e: &quinn::ConnectionError) -> bool {
    let code = match e {
        quinn::ConnectionError::TransportError(error) => error.code,
        quinn::ConnectionError::ConnectionClosed(close) => close.error_code,
        _ => return false,
    };
    (0x100..0x200).contains(&u64::from(code))
}
