//! The codec: frames (64 B and 4 KiB payloads) encoded and decoded, and MessagePack
//! payload encoding.

use bytes::{Bytes, BytesMut};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use demitter_core::record::put_frame_record;
use demitter_core::{EventFrame, Frame, NodeId, encode_payload};
use std::hint::black_box;

fn frame(size: usize) -> Frame {
    Frame::Event(EventFrame {
        name: "bench.data".into(),
        source: NodeId::new("node-0123456789abcdef").expect("valid id"),
        epoch: 42,
        seq: 1_000_000,
        payload: Bytes::from(vec![7u8; size]),
    })
}

fn codec(c: &mut Criterion) {
    let mut group = c.benchmark_group("frame");
    for size in [64usize, 4096] {
        let f = frame(size);
        let encoded = f.to_bytes();
        group.throughput(Throughput::Bytes(encoded.len() as u64));
        group.bench_with_input(BenchmarkId::new("encode", size), &f, |b, f| {
            let mut buf = BytesMut::with_capacity(8192);
            b.iter(|| {
                buf.clear();
                put_frame_record(&mut buf, 0, black_box(f));
                black_box(buf.len())
            });
        });
        group.bench_with_input(BenchmarkId::new("decode", size), &encoded, |b, bytes| {
            b.iter(|| Frame::decode(black_box(bytes.clone()), 1 << 20).expect("decodes"));
        });
    }
    group.finish();

    let mut group = c.benchmark_group("payload");
    for size in [64usize, 4096] {
        let data = serde_bytes::ByteBuf::from(vec![7u8; size]);
        group.bench_with_input(BenchmarkId::new("encode", size), &data, |b, data| {
            b.iter(|| encode_payload(black_box(data)).expect("encodes"));
        });
    }
    group.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
