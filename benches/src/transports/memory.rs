//! The in-memory transport: emitters on a [`MemoryHub`], and the hub alone as baseline.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use demitter_core::{
    Destination, Emitter, EventFrame, Frame, Incoming, MemoryHub, MemoryTransport, NodeId,
    Transport,
};

use crate::emitters::run_on_new_emitters;
use crate::measure::now_ns;
use crate::run::{Deliveries, EVENT, Run};
use crate::scenario::{Layer, Outcome, Scenario};
use crate::{BenchError, Progress};

const NAME: &str = "mem";

/// Emitters joined to one hub.
pub async fn emitters(scenario: &Scenario, progress: &Progress) -> Result<Outcome, BenchError> {
    let hub = MemoryHub::new();
    run_on_new_emitters(NAME, scenario, progress, || Emitter::new(hub.join())).await
}

/// A raw hub member: frames in, send stamps out.
struct RawMember(MemoryTransport);

impl Deliveries for RawMember {
    async fn next_stamp(&mut self) -> Option<Option<u64>> {
        Some(match self.0.recv().await? {
            Incoming::Frame {
                frame: Frame::Event(e),
                ..
            } => e
                .payload
                .get(..8)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes),
            _ => None,
        })
    }
}

/// The hub alone: the same binary frames built, queued, received and decoded, with no
/// emitter layer (no presence, sequence checks, dispatch or MessagePack).
pub async fn baseline(scenario: &Scenario, progress: &Progress) -> Result<Outcome, BenchError> {
    let hub = MemoryHub::new();
    let mut run = Run::new();
    for _ in 0..scenario.subscribers {
        run.subscribe(RawMember(hub.join()));
    }
    run.start_clock();
    let name: Arc<str> = EVENT.into();
    for i in 0..scenario.publishers {
        let transport = Arc::new(hub.join());
        let counters = Arc::clone(run.counters());
        let source = NodeId::new(&format!("baseline-{i}"))?;
        let pad: Arc<[u8]> = vec![0x5a; scenario.payload.saturating_sub(8)].into();
        let name = Arc::clone(&name);
        let mut seq = 0;
        run.publish(scenario, move || {
            seq += 1;
            let mut payload = BytesMut::with_capacity(8 + pad.len());
            payload.put_u64(now_ns());
            payload.put_slice(&pad);
            let frame = Frame::Event(EventFrame {
                name: Arc::clone(&name),
                source: source.clone(),
                epoch: 1,
                seq,
                payload: Bytes::from(payload),
            });
            counters.published(&transport.send(frame, Destination::All));
            std::future::ready(())
        });
    }
    run.finish(NAME, Layer::Baseline, scenario, progress, |c| {
        c.send_failures.load(std::sync::atomic::Ordering::Relaxed)
    })
    .await
}
