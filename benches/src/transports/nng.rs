//! nng: emitters on a bus of this project's nng nodes (frames batched into messages), against
//! raw nng bus0 sockets carrying the same frames one per message, with no emitter layer.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use demitter_core::{Emitter, Frame};
use demitter_nng::{NngConfig, NngTransport};
use parking_lot::Mutex;
use tokio::sync::mpsc;

use crate::baseline::{BaselineFrames, frame_stamp};
use crate::emitters::run_on_new_emitters;
use crate::round_trips::{RawEnd, raw_baseline};
use crate::run::{Deliveries, Run};
use crate::scenario::{Layer, Outcome, Scenario};
use crate::{BenchError, Progress};

const NAME: &str = "nng";
/// Batches of stamps queued from a raw subscriber's reader thread.
const READER_QUEUE: usize = 64;

fn setup(e: impl std::fmt::Display) -> BenchError {
    BenchError::Setup(e.to_string())
}

/// Emitters on a bus of nng nodes on loopback: the first node is every other's seed.
pub async fn emitters(scenario: &Scenario, progress: &Progress) -> Result<Outcome, BenchError> {
    let seed: Mutex<Option<String>> = Mutex::new(None);
    run_on_new_emitters(NAME, scenario, progress, || {
        let mut seed = seed.lock();
        let mut config = NngConfig::loopback();
        config.peers.extend(seed.clone());
        let transport = NngTransport::bind(config)?;
        seed.get_or_insert_with(|| transport.url().to_owned());
        Emitter::with_config(transport, scenario.emitter_config())
    })
    .await
}

/// Stamps read from a raw bus0 socket by a thread of its own, handed over in batches.
struct RawSubscriber {
    batches: mpsc::Receiver<Vec<Option<u64>>>,
    ready: std::vec::IntoIter<Option<u64>>,
}

impl Deliveries for RawSubscriber {
    async fn next_stamp(&mut self) -> Option<Option<u64>> {
        loop {
            if let Some(stamp) = self.ready.next() {
                return Some(stamp);
            }
            self.ready = self.batches.recv().await?.into_iter();
        }
    }
}

/// How many messages the reader takes without waiting before it hands them over.
const READ_BATCH: usize = 1024;

/// Reads one frame per message until the socket closes.
fn read_frames(socket: &nng::Socket, stamps: &mpsc::Sender<Vec<Option<u64>>>) {
    let stamp = |message: nng::Message| {
        Frame::decode(Bytes::copy_from_slice(message.as_slice()), usize::MAX)
            .ok()
            .and_then(|frame| frame_stamp(&frame))
    };
    while let Ok(first) = socket.recv() {
        let mut batch = vec![stamp(first)];
        while batch.len() < READ_BATCH {
            match socket.try_recv() {
                Ok(message) => batch.push(stamp(message)),
                Err(_) => break,
            }
        }
        if stamps.blocking_send(batch).is_err() {
            return;
        }
    }
}

/// Raw nng: each subscriber a listening bus0 socket, each publisher a bus0 socket dialing
/// them all, one frame per message, sent blocking (nng drops what a full peer queue cannot
/// take, and says nothing).
pub async fn baseline(scenario: &Scenario, progress: &Progress) -> Result<Outcome, BenchError> {
    let mut run = Run::new();
    let mut sockets = Vec::new();
    let mut urls = Vec::new();
    for _ in 0..scenario.subscribers {
        let socket = nng::Socket::new(nng::Protocol::Bus0).map_err(setup)?;
        let listener = nng::Listener::new(&socket, "tcp://127.0.0.1:0").map_err(setup)?;
        let port =
            nng::options::Options::get_opt::<nng::options::transport::tcp::BoundPort>(&listener)
                .map_err(setup)?;
        urls.push(format!("tcp://127.0.0.1:{port}"));
        let (tx, rx) = mpsc::channel(READER_QUEUE);
        let reader = socket.clone();
        std::thread::Builder::new()
            .name("bench-nng-reader".into())
            .spawn(move || read_frames(&reader, &tx))
            .map_err(setup)?;
        run.subscribe(RawSubscriber {
            batches: rx,
            ready: Vec::new().into_iter(),
        });
        sockets.push(socket);
    }
    let mut publishers = Vec::new();
    for _ in 0..scenario.publishers {
        let socket = nng::Socket::new(nng::Protocol::Bus0).map_err(setup)?;
        for url in &urls {
            // Synchronous: connected when it returns, so nothing is sent into the void.
            socket.dial(url).map_err(setup)?;
        }
        publishers.push(socket);
    }
    run.start_clock();
    for (i, socket) in publishers.iter().enumerate() {
        let counters = Arc::clone(run.counters());
        let mut frames = BaselineFrames::new(i, scenario)?;
        let socket = socket.clone();
        let mut buf = BytesMut::new();
        run.publish(scenario, move || {
            let frame = frames.next_frame();
            buf.clear();
            frame.encode(&mut buf);
            // A blocking send, as nng users write it: bus0 accepts a message once its
            // queue has room (a non-blocking send refuses most of a burst).
            let sent = tokio::task::block_in_place(|| socket.send(&buf[..]));
            counters.published(&sent.map_err(|(_, e)| e));
            std::future::ready(())
        });
    }
    let outcome = run
        .finish(NAME, Layer::Baseline, scenario, progress, |c| {
            c.send_failures.load(std::sync::atomic::Ordering::Relaxed)
        })
        .await;
    for socket in publishers.iter().chain(&sockets) {
        socket.close();
    }
    outcome
}

/// Messages a bus end's reader thread may queue.
const END_QUEUE: usize = 1024;

/// One end of a raw round trip: a bus0 socket, read by a thread of its own so that
/// waiting for an answer can time out.
struct BusEnd {
    socket: nng::Socket,
    incoming: mpsc::Receiver<nng::Message>,
}

impl BusEnd {
    fn new(socket: nng::Socket) -> Result<Self, BenchError> {
        let (tx, incoming) = mpsc::channel(END_QUEUE);
        let reader = socket.clone();
        std::thread::Builder::new()
            .name("bench-nng-end".into())
            .spawn(move || {
                while let Ok(message) = reader.recv() {
                    if tx.blocking_send(message).is_err() {
                        return;
                    }
                }
            })
            .map_err(setup)?;
        Ok(Self { socket, incoming })
    }
}

impl Drop for BusEnd {
    fn drop(&mut self) {
        // Ends the reader thread.
        self.socket.close();
    }
}

impl RawEnd for BusEnd {
    type Message = nng::Message;

    async fn send(&mut self, message: nng::Message) -> bool {
        // Blocking, as the event baseline sends.
        tokio::task::block_in_place(|| self.socket.send(message)).is_ok()
    }

    async fn recv(&mut self) -> Option<nng::Message> {
        self.incoming.recv().await
    }
}

/// Raw nng: two bus0 sockets, one listening and one dialing it, the same frames each way,
/// one per message.
pub async fn round_trips(scenario: &Scenario, progress: &Progress) -> Result<Outcome, BenchError> {
    let listening = nng::Socket::new(nng::Protocol::Bus0).map_err(setup)?;
    let listener = nng::Listener::new(&listening, "tcp://127.0.0.1:0").map_err(setup)?;
    let port = nng::options::Options::get_opt::<nng::options::transport::tcp::BoundPort>(&listener)
        .map_err(setup)?;
    let dialing = nng::Socket::new(nng::Protocol::Bus0).map_err(setup)?;
    // Synchronous: connected when it returns.
    dialing
        .dial(&format!("tcp://127.0.0.1:{port}"))
        .map_err(setup)?;
    let ends = (BusEnd::new(dialing)?, BusEnd::new(listening)?);
    let mut frames = BaselineFrames::new(0, scenario)?;
    let mut buf = BytesMut::new();
    let make = move || {
        buf.clear();
        frames.next_frame().encode(&mut buf);
        nng::Message::from(&buf[..])
    };
    raw_baseline(NAME, scenario, progress, ends, make).await
}
