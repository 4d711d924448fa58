//! f32 matrix products: square n = 256 … 2048 and small batched products, reported in FLOP/s
//! (criterion's "elements" are floating-point operations, 2n³ per product).
//!
//! `cargo bench --bench matmul`; set the threads with `TAPEGRAD_NUM_THREADS=1` (default: all
//! cores).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tapegrad::prelude::*;

fn square(c: &mut Criterion) {
    let mut g = c.benchmark_group("matmul_f32");
    g.sample_size(10);
    for n in [256usize, 512, 1024, 2048] {
        let a = Tensor::randn(&[n, n]);
        let b = Tensor::randn(&[n, n]);
        g.throughput(Throughput::Elements(2 * (n as u64).pow(3)));
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |bench, _| {
            bench.iter(|| black_box(a.matmul(&b)))
        });
    }
    g.finish();
}

fn batched(c: &mut Criterion) {
    let mut g = c.benchmark_group("bmm_f32");
    g.sample_size(10);
    for (nb, n) in [(64usize, 64usize), (16, 128)] {
        let a = Tensor::randn(&[nb, n, n]);
        let b = Tensor::randn(&[nb, n, n]);
        g.throughput(Throughput::Elements(2 * nb as u64 * (n as u64).pow(3)));
        g.bench_function(format!("{nb}x{n}"), |bench| {
            bench.iter(|| black_box(a.matmul(&b)))
        });
    }
    g.finish();
}

criterion_group!(benches, square, batched);
criterion_main!(benches);
