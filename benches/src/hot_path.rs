//! The two hot paths of the emitter layer, set up once and run for any number of events:
//! in-process `emit` to local listeners, and the receive path (frames from the hub decoded,
//! sequence-checked, matched, queued and read by a stream). The criterion benchmarks time
//! them; `demitter-instructions` runs them under callgrind, whose instruction counts repeat
//! exactly on a noisy machine.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use demitter_core::{
    Destination, Emitter, EmitterConfig, Event, EventFrame, Frame, ListenOptions, MemoryConfig,
    MemoryHub, MemoryTransport, NodeId, Transport, encode_payload,
};

use crate::BenchError;

/// Frames the receive path is handed at a time (then read back by the stream).
pub const RECEIVE_BATCH: u64 = 10_000;

/// One emitter with `listeners` handlers on `bench.tick`, each adding the payload to a
/// counter.
#[derive(Debug)]
pub struct EmitToListeners {
    emitter: Emitter,
    seen: Arc<AtomicU64>,
}

impl EmitToListeners {
    /// Sets it up (within a tokio runtime).
    pub fn new(listeners: usize) -> Result<Self, BenchError> {
        Self::with_config(listeners, EmitterConfig::default())
    }

    /// Sets it up with the emitter built with `config`.
    pub fn with_config(listeners: usize, config: EmitterConfig) -> Result<Self, BenchError> {
        let emitter = Emitter::with_config(MemoryHub::new().join(), config)?;
        let seen = Arc::new(AtomicU64::new(0));
        for _ in 0..listeners {
            let seen = Arc::clone(&seen);
            emitter.on("bench.tick", move |e: Event<u64>| {
                seen.fetch_add(e.data, Ordering::Relaxed);
                async {}
            })?;
        }
        Ok(Self { emitter, seen })
    }

    /// Emits `events` events, each awaited (with its listeners) before the next.
    pub async fn run(&self, events: u64) -> Result<(), BenchError> {
        for _ in 0..events {
            self.emitter.emit("bench.tick", &1u64).await?;
        }
        Ok(())
    }

    /// How many times a listener ran.
    pub fn seen(&self) -> u64 {
        self.seen.load(Ordering::Relaxed)
    }

    /// Closes the emitter.
    pub async fn close(self) {
        self.emitter.close().await;
    }
}

/// A receiving emitter with one stream on `bench.rx`, and a raw hub member that feeds it
/// event frames from a made-up sender.
#[derive(Debug)]
pub struct ReceiveIntoStream {
    receiver: Emitter,
    stream: demitter_core::EventStream<u64>,
    sender: MemoryTransport,
    source: NodeId,
    name: Arc<str>,
    payload: Bytes,
    seq: u64,
}

impl ReceiveIntoStream {
    /// Sets it up (within a tokio runtime).
    pub fn new() -> Result<Self, BenchError> {
        Self::with_config(EmitterConfig::default())
    }

    /// Sets it up with the receiver built with `config`.
    pub fn with_config(config: EmitterConfig) -> Result<Self, BenchError> {
        let hub = MemoryHub::with_config(MemoryConfig {
            inbox_capacity: 1 << 20,
            ..MemoryConfig::default()
        });
        let receiver = Emitter::with_config(hub.join(), config)?;
        let stream =
            receiver.events_with::<u64>("bench.rx", ListenOptions::default().capacity(1 << 20))?;
        Ok(Self {
            receiver,
            stream,
            sender: hub.join(),
            source: NodeId::new("bench-sender")?,
            name: "bench.rx".into(),
            payload: encode_payload(&42u64)?,
            seq: 0,
        })
    }

    /// Sends `events` frames, [`RECEIVE_BATCH`] at a time, each batch read back whole by
    /// the stream.
    pub async fn run(&mut self, events: u64) -> Result<(), BenchError> {
        let mut left = events;
        while left > 0 {
            let batch = left.min(RECEIVE_BATCH);
            for _ in 0..batch {
                self.seq += 1;
                let frame = Frame::Event(EventFrame {
                    name: Arc::clone(&self.name),
                    source: self.source.clone(),
                    epoch: 7,
                    seq: self.seq,
                    payload: self.payload.clone(),
                });
                self.sender.send(frame, Destination::All)?;
            }
            for _ in 0..batch {
                match self.stream.recv().await {
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e.into()),
                    None => return Err(demitter_core::Error::Closed.into()),
                }
            }
            left -= batch;
        }
        Ok(())
    }

    /// Closes the receiver.
    pub async fn close(self) {
        self.receiver.close().await;
    }
}
