//! The receive path alone, on one core: frames arriving from the hub are decoded,
//! sequence-checked, matched and queued by the receive loop, then decoded by a stream.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use demitter_core::{
    Destination, Emitter, EventFrame, Frame, ListenOptions, MemoryConfig, MemoryHub, NodeId,
    Transport, encode_payload,
};

const BATCH: u64 = 10_000;

fn receive(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let hub = MemoryHub::with_config(MemoryConfig {
        inbox_capacity: 1 << 20,
        ..MemoryConfig::default()
    });
    let (receiver, mut stream, sender) = runtime.block_on(async {
        let receiver = Emitter::new(hub.join()).expect("emitter");
        let stream = receiver
            .events_with::<u64>("bench.rx", ListenOptions::default().capacity(1 << 20))
            .expect("listens");
        (receiver, stream, hub.join())
    });
    let source = NodeId::new("bench-sender").expect("valid id");
    let name: Arc<str> = "bench.rx".into();
    let payload: Bytes = encode_payload(&42u64).expect("encodes");
    let mut seq = 0;
    let mut group = c.benchmark_group("receive_path");
    group.throughput(Throughput::Elements(BATCH));
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("one_stream_listener", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    for _ in 0..BATCH {
                        seq += 1;
                        let frame = Frame::Event(EventFrame {
                            name: Arc::clone(&name),
                            source: source.clone(),
                            epoch: 7,
                            seq,
                            payload: payload.clone(),
                        });
                        sender.send(frame, Destination::All).expect("queued");
                    }
                    for _ in 0..BATCH {
                        stream.recv().await.expect("open").expect("decodes");
                    }
                }
                start.elapsed()
            })
        });
    });
    group.finish();
    runtime.block_on(receiver.close());
}

criterion_group!(benches, receive);
criterion_main!(benches);
