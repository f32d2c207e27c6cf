//! Pattern matching: one event name against an index of 10, 1,000 and 10,000 patterns.
//! The index should keep the cost per event roughly flat as patterns are added.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use demitter_core::{Pattern, PatternIndex};
use std::hint::black_box;

/// An index like a busy node's: exact names, one-segment wildcards and deep wildcards.
fn index_of(n: usize) -> PatternIndex<u32> {
    let mut index = PatternIndex::new();
    for i in 0..n {
        let text = match i % 3 {
            0 => format!("svc{i}.user.login"),
            1 => format!("svc{i}.user.+"),
            _ => format!("svc{i}.#"),
        };
        let pattern = Pattern::new(&text).expect("valid pattern");
        *index.get_or_insert_with(&pattern, || 0) += 1;
    }
    index
}

fn matching(c: &mut Criterion) {
    let mut group = c.benchmark_group("match_one_event");
    for n in [10usize, 1_000, 10_000] {
        let index = index_of(n);
        // A name that three patterns match, whatever the size of the index.
        let name = "svc7.user.login";
        group.bench_with_input(BenchmarkId::from_parameter(n), &index, |b, index| {
            b.iter(|| {
                let mut total = 0;
                index.for_each_match(black_box(name), |_, v| total += *v);
                black_box(total)
            });
        });
    }
    group.finish();
}

criterion_group!(benches, matching);
criterion_main!(benches);
