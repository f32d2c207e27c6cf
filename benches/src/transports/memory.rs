//! The in-memory transport: emitters on a [`MemoryHub`], and the hub alone as baseline.

use std::sync::Arc;

use demitter_core::{Destination, Emitter, Frame, Incoming, MemoryHub, MemoryTransport, Transport};

use crate::baseline::{BaselineFrames, frame_stamp};
use crate::emitters::run_on_new_emitters;
use crate::round_trips::{RawEnd, raw_baseline};
use crate::run::{Deliveries, Run};
use crate::scenario::{Layer, Outcome, Scenario};
use crate::{BenchError, Progress};

const NAME: &str = "mem";

/// Emitters joined to one hub.
pub async fn emitters(scenario: &Scenario, progress: &Progress) -> Result<Outcome, BenchError> {
    let hub = MemoryHub::new();
    run_on_new_emitters(NAME, scenario, progress, || {
        Emitter::with_config(hub.join(), scenario.emitter_config())
    })
    .await
}

/// A raw hub member: frames in, send stamps out.
struct RawMember(MemoryTransport);

impl Deliveries for RawMember {
    async fn next_stamp(&mut self) -> Option<Option<u64>> {
        Some(match self.0.recv().await? {
            Incoming::Frame { frame, .. } => frame_stamp(&frame),
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
    for i in 0..scenario.publishers {
        let transport = Arc::new(hub.join());
        let counters = Arc::clone(run.counters());
        let mut frames = BaselineFrames::new(i, scenario)?;
        run.publish(scenario, move || {
            let frame = frames.next_frame();
            counters.published(&transport.send(frame, Destination::All));
            std::future::ready(())
        });
    }
    run.finish(NAME, Layer::Baseline, scenario, progress, |c| {
        c.send_failures.load(std::sync::atomic::Ordering::Relaxed)
    })
    .await
}

impl RawEnd for RawMember {
    type Message = Frame;

    async fn send(&mut self, frame: Frame) -> bool {
        self.0.send(frame, Destination::All).is_ok()
    }

    async fn recv(&mut self) -> Option<Frame> {
        loop {
            if let Incoming::Frame { frame, .. } = self.0.recv().await? {
                return Some(frame);
            }
        }
    }
}

/// Two hub members, one sending frames and the other sending them back.
pub async fn round_trips(scenario: &Scenario, progress: &Progress) -> Result<Outcome, BenchError> {
    let hub = MemoryHub::new();
    let mut frames = BaselineFrames::new(0, scenario)?;
    let ends = (RawMember(hub.join()), RawMember(hub.join()));
    raw_baseline(NAME, scenario, progress, ends, move || frames.next_frame()).await
}
