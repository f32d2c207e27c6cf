//! In-process `emit` to one and to eight local listeners, on one core (a current-thread
//! runtime): the cost of the emitter layer itself.

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use demitter_benches::hot_path::EmitToListeners;

fn emit(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("emit_in_process");
    group.throughput(Throughput::Elements(1));
    for listeners in [1usize, 8] {
        let path = runtime.block_on(async { EmitToListeners::new(listeners).expect("set up") });
        group.bench_function(BenchmarkId::from_parameter(listeners), |b| {
            b.iter_custom(|iters| {
                runtime.block_on(async {
                    let start = Instant::now();
                    path.run(iters).await.expect("emits");
                    start.elapsed()
                })
            });
        });
        assert!(path.seen() > 0, "the listeners ran");
        runtime.block_on(path.close());
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3));
    targets = emit
}
criterion_main!(benches);
