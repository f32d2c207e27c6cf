//! QUIC: emitters on a mesh of this project's QUIC nodes (mutual TLS), against raw `quinn`
//! streams with the same TLS carrying the same frames, batched the same way, with no
//! emitter and no mesh layer.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use demitter_core::{Emitter, Frame};
use demitter_quic::wire::{KIND_FRAME, RecordDecoder, frame_record};
use demitter_quic::{Hood, QuicConfig, QuicTransport};
use parking_lot::Mutex;
use tokio::sync::mpsc;

use crate::baseline::{BaselineFrames, frame_stamp};
use crate::emitters::run_on_new_emitters;
use crate::round_trips::{RawEnd, raw_baseline};
use crate::run::{Deliveries, Run};
use crate::scenario::{Layer, Outcome, Scenario};
use crate::{BenchError, Progress};

const NAME: &str = "quic";
/// Bytes per stream write in the baseline, as the transport batches.
const WRITE_BATCH: usize = 64 * 1024;
/// Records queued per subscriber in the baseline.
const BASELINE_QUEUE: usize = 1 << 16;

fn setup(e: impl std::fmt::Display) -> BenchError {
    BenchError::Setup(e.to_string())
}

/// Emitters on a mesh of QUIC nodes on loopback: the first node is every other's seed.
pub async fn emitters(scenario: &Scenario, progress: &Progress) -> Result<Outcome, BenchError> {
    let hood = Hood::create("bench").map_err(setup)?;
    let seed: Mutex<Option<SocketAddr>> = Mutex::new(None);
    let next = std::sync::atomic::AtomicUsize::new(0);
    run_on_new_emitters(NAME, scenario, progress, || {
        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut config = QuicConfig::new(hood.issue(&format!("node-{i}"))?).loopback();
        let mut seed = seed.lock();
        config.seeds.extend(seed.map(|s| s.to_string()));
        let transport = QuicTransport::bind(config)?;
        seed.get_or_insert(transport.local_addr());
        Emitter::with_config(transport, scenario.emitter_config())
    })
    .await
}

/// Frame records read from one raw stream.
struct RecordReader {
    recv: quinn::RecvStream,
    buf: BytesMut,
    decoder: RecordDecoder,
}

impl RecordReader {
    fn new(recv: quinn::RecvStream) -> Self {
        Self {
            recv,
            buf: BytesMut::new(),
            decoder: RecordDecoder::new(usize::MAX >> 1),
        }
    }

    /// The next record's frame (`Some(None)` for a record that is not a frame); `None`
    /// once the stream has ended.
    async fn next_frame(&mut self) -> Option<Option<Frame>> {
        loop {
            match self.decoder.next_record(&mut self.buf) {
                Ok(Some((KIND_FRAME, body))) => return Some(Frame::decode(body, usize::MAX).ok()),
                Ok(Some(_)) => return Some(None),
                Err(_) => return None,
                Ok(None) => {
                    let chunk = self.recv.read_chunk(usize::MAX, true).await.ok()??;
                    self.buf.extend_from_slice(&chunk.bytes);
                }
            }
        }
    }
}

/// A raw stream's reader: records in, send stamps out.
struct RawStream {
    conn: quinn::Connection,
    /// Accepted when the first bytes arrive.
    reader: Option<RecordReader>,
    // Keeps the endpoint open while reading.
    _endpoint: quinn::Endpoint,
}

impl Deliveries for RawStream {
    async fn next_stamp(&mut self) -> Option<Option<u64>> {
        if self.reader.is_none() {
            self.reader = Some(RecordReader::new(self.conn.accept_uni().await.ok()?));
        }
        let frame = self.reader.as_mut()?.next_frame().await?;
        Some(frame.and_then(|frame| frame_stamp(&frame)))
    }
}

/// One raw connection with the mesh's mutual TLS, from `client` to `server`: the dialer's
/// side and the listener's.
async fn connect(
    client: &quinn::Endpoint,
    config: &quinn::ClientConfig,
    server: &quinn::Endpoint,
) -> Result<(quinn::Connection, quinn::Connection), BenchError> {
    let addr = server.local_addr().map_err(setup)?;
    let connecting = client
        .connect_with(config.clone(), addr, "bench")
        .map_err(setup)?;
    let (accepted, connected) =
        tokio::join!(async { server.accept().await?.await.ok() }, connecting);
    Ok((
        connected.map_err(setup)?,
        accepted.ok_or_else(|| setup("the subscriber accepted no connection"))?,
    ))
}

/// Certificates of one hood for raw quinn: a server configuration, and a client endpoint
/// on loopback with its configuration.
fn raw_tls() -> Result<(quinn::ServerConfig, quinn::Endpoint, quinn::ClientConfig), BenchError> {
    let hood = Hood::create("bench").map_err(setup)?;
    let server = hood.issue("subscriber").map_err(setup)?;
    let client = hood.issue("publisher").map_err(setup)?;
    Ok((
        server.quinn_server_config().map_err(setup)?,
        quinn::Endpoint::client(SocketAddr::from(([127, 0, 0, 1], 0))).map_err(setup)?,
        client.quinn_client_config().map_err(setup)?,
    ))
}

/// A raw server endpoint on loopback.
fn raw_server(config: &quinn::ServerConfig) -> Result<quinn::Endpoint, BenchError> {
    quinn::Endpoint::server(config.clone(), SocketAddr::from(([127, 0, 0, 1], 0))).map_err(setup)
}

/// Sends what is queued for one subscriber, many records per write.
async fn write_batches(mut send: quinn::SendStream, mut queue: mpsc::Receiver<Bytes>) {
    let mut records = Vec::new();
    let mut buf = Vec::with_capacity(WRITE_BATCH);
    while queue.recv_many(&mut records, 1024).await > 0 {
        for record in records.drain(..) {
            buf.extend_from_slice(&record);
            if buf.len() >= WRITE_BATCH {
                if send.write_all(&buf).await.is_err() {
                    return;
                }
                buf.clear();
            }
        }
        if !buf.is_empty() {
            if send.write_all(&buf).await.is_err() {
                return;
            }
            buf.clear();
        }
    }
    let _ = send.finish();
}

/// Raw quinn: each publisher has one connection and one uni stream per subscriber, with
/// the mesh's mutual TLS, carrying the same frame records.
pub async fn baseline(scenario: &Scenario, progress: &Progress) -> Result<Outcome, BenchError> {
    let (server_config, client_endpoint, client_config) = raw_tls()?;
    let mut run = Run::new();
    let mut queues: Vec<Vec<mpsc::Sender<Bytes>>> = vec![Vec::new(); scenario.publishers];
    for _ in 0..scenario.subscribers {
        let endpoint = raw_server(&server_config)?;
        for publisher_queues in &mut queues {
            let (outbound, inbound) = connect(&client_endpoint, &client_config, &endpoint).await?;
            let send = outbound.open_uni().await.map_err(setup)?;
            let (tx, rx) = mpsc::channel(BASELINE_QUEUE);
            tokio::spawn(write_batches(send, rx));
            publisher_queues.push(tx);
            run.subscribe(RawStream {
                conn: inbound,
                reader: None,
                _endpoint: endpoint.clone(),
            });
        }
    }
    run.start_clock();
    for (i, subscribers) in queues.into_iter().enumerate() {
        let counters = Arc::clone(run.counters());
        let mut frames = BaselineFrames::new(i, scenario)?;
        run.publish(scenario, move || {
            let record = frame_record(&frames.next_frame());
            let failed = subscribers
                .iter()
                .filter(|q| q.try_send(record.clone()).is_err())
                .count();
            counters.published(&if failed == 0 { Ok(()) } else { Err(failed) });
            std::future::ready(())
        });
    }
    run.finish(NAME, Layer::Baseline, scenario, progress, |c| {
        c.send_failures.load(std::sync::atomic::Ordering::Relaxed)
    })
    .await
}

/// One end of a raw bidirectional stream carrying frame records.
struct StreamEnd {
    conn: quinn::Connection,
    /// Opened by the requester; accepted by the responder when the first bytes arrive.
    streams: Option<(quinn::SendStream, RecordReader)>,
    // Keeps the endpoint open.
    _endpoint: quinn::Endpoint,
}

impl StreamEnd {
    async fn streams(&mut self) -> Option<&mut (quinn::SendStream, RecordReader)> {
        if self.streams.is_none() {
            let (send, recv) = self.conn.accept_bi().await.ok()?;
            self.streams = Some((send, RecordReader::new(recv)));
        }
        self.streams.as_mut()
    }
}

impl RawEnd for StreamEnd {
    type Message = Frame;

    async fn send(&mut self, frame: Frame) -> bool {
        let Some((send, _)) = self.streams().await else {
            return false;
        };
        send.write_all(&frame_record(&frame)).await.is_ok()
    }

    async fn recv(&mut self) -> Option<Frame> {
        let (_, reader) = self.streams().await?;
        loop {
            if let Some(frame) = reader.next_frame().await? {
                return Some(frame);
            }
        }
    }
}

/// Raw quinn with the mesh's mutual TLS: one connection, one bidirectional stream, the
/// same frame records each way, one write per record.
pub async fn round_trips(scenario: &Scenario, progress: &Progress) -> Result<Outcome, BenchError> {
    let (server_config, client_endpoint, client_config) = raw_tls()?;
    let server = raw_server(&server_config)?;
    let (outbound, inbound) = connect(&client_endpoint, &client_config, &server).await?;
    let (send, recv) = outbound.open_bi().await.map_err(setup)?;
    let requester = StreamEnd {
        conn: outbound,
        streams: Some((send, RecordReader::new(recv))),
        _endpoint: client_endpoint,
    };
    let responder = StreamEnd {
        conn: inbound,
        streams: None,
        _endpoint: server,
    };
    let mut frames = BaselineFrames::new(0, scenario)?;
    raw_baseline(
        NAME,
        scenario,
        progress,
        (requester, responder),
        move || frames.next_frame(),
    )
    .await
}
