//! The cost of the eager machinery on tiny tensors, where the arithmetic itself is negligible:
//! `(x * w + b).tanh().sum()` forward and backward on 16 elements, all three requiring grad.
//!
//! `cargo bench --bench eager_overhead`. The reported time is per forward + backward pass.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tapegrad::prelude::*;

fn eager_overhead(c: &mut Criterion) {
    let x = Tensor::randn(&[16]).requires_grad();
    let w = Tensor::randn(&[16]).requires_grad();
    let b = Tensor::randn(&[16]).requires_grad();
    let mut g = c.benchmark_group("eager_overhead");
    g.throughput(Throughput::Elements(1));
    g.bench_function("fwd_bwd_16", |bench| {
        bench.iter(|| {
            let y = (&x * &w + &b).tanh().sum();
            y.backward();
            black_box(y);
        })
    });
    // The forward alone, recording on the tape but never differentiated.
    g.bench_function("fwd_only_16", |bench| {
        bench.iter(|| black_box((&x * &w + &b).tanh().sum()))
    });
    // The same forward under no_grad: the ops without any recording.
    g.bench_function("fwd_no_grad_16", |bench| {
        let _guard = no_grad();
        bench.iter(|| black_box((&x * &w + &b).tanh().sum()))
    });
    g.finish();
}

criterion_group!(benches, eager_overhead);
criterion_main!(benches);
