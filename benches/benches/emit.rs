//! In-process `emit` to one and to eight local listeners, on one core (a current-thread
//! runtime): the cost of the emitter layer itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use demitter_core::{Emitter, Event, MemoryHub};

fn emit(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("emit_in_process");
    group.throughput(Throughput::Elements(1));
    for listeners in [1usize, 8] {
        let (emitter, seen) = runtime.block_on(async {
            let emitter = Emitter::new(MemoryHub::new().join()).expect("emitter");
            let seen = Arc::new(AtomicU64::new(0));
            for _ in 0..listeners {
                let seen = Arc::clone(&seen);
                emitter
                    .on("bench.tick", move |e: Event<u64>| {
                        seen.fetch_add(e.data, Ordering::Relaxed);
                        async {}
                    })
                    .expect("listens");
            }
            (emitter, seen)
        });
        group.bench_function(BenchmarkId::from_parameter(listeners), |b| {
            b.iter_custom(|iters| {
                runtime.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        emitter.emit("bench.tick", &1u64).await.expect("emits");
                    }
                    start.elapsed()
                })
            });
        });
        assert!(seen.load(Ordering::Relaxed) > 0, "the listeners ran");
        runtime.block_on(emitter.close());
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3));
    targets = emit
}
criterion_main!(benches);
