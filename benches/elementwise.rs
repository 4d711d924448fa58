//! Large elementwise ops and reductions, 1M to 16M f32 elements, reported in elements per second.
//!
//! `cargo bench --bench elementwise`; set the threads with `TAPEGRAD_NUM_THREADS=1` (default: all
//! cores).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tapegrad::prelude::*;

type BinaryFn = fn(&Tensor, &Tensor) -> Tensor;

fn elementwise(c: &mut Criterion) {
    let ops: [(&str, BinaryFn); 6] = [
        ("add", |a, b| a + b),
        ("mul", |a, b| a * b),
        ("tanh", |a, _| a.tanh()),
        ("exp", |a, _| a.exp()),
        ("sum", |a, _| a.sum()),
        ("sum_dim0", |a, _| a.sum_dim(0, false)),
    ];
    for (name, f) in ops {
        let mut g = c.benchmark_group(name);
        g.sample_size(10);
        for size in [1usize << 20, 1 << 22, 1 << 24] {
            // 2-d so that the reduction over dim 0 is a real (strided) reduction
            let a = Tensor::randn(&[size / 1024, 1024]);
            let b = Tensor::randn(&[size / 1024, 1024]);
            g.throughput(Throughput::Elements(size as u64));
            g.bench_with_input(
                BenchmarkId::from_parameter(format!("{}M", size >> 20)),
                &size,
                |bench, _| bench.iter(|| black_box(f(&a, &b))),
            );
        }
        g.finish();
    }
}

criterion_group!(benches, elementwise);
criterion_main!(benches);
