//! The receive path alone, on one core: frames arriving from the hub are decoded,
//! sequence-checked, matched and queued by the receive loop, then decoded by a stream.

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use demitter_benches::hot_path::{RECEIVE_BATCH, ReceiveIntoStream};

fn receive(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut path = runtime.block_on(async { ReceiveIntoStream::new().expect("set up") });
    let mut group = c.benchmark_group("receive_path");
    group.throughput(Throughput::Elements(RECEIVE_BATCH));
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("one_stream_listener", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let start = Instant::now();
                path.run(iters * RECEIVE_BATCH).await.expect("received");
                start.elapsed()
            })
        });
    });
    group.finish();
    runtime.block_on(path.close());
}

criterion_group!(benches, receive);
criterion_main!(benches);
