//! Whole training steps, where the tape, the allocator and every kernel add up: an MLP step, a
//! small CNN step and a pre-LN transformer encoder block forward + backward (the workloads are
//! described in `benches/common/train_steps.rs`, shared with `examples/bench_compare.rs`).
//!
//! `cargo bench --bench train_steps`. `scripts/compare_pytorch.py --only step` times the same
//! workloads against PyTorch.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};

#[path = "common/train_steps.rs"]
mod train_steps;

fn train_steps(c: &mut Criterion) {
    tapegrad::prelude::manual_seed(0);
    let mut g = c.benchmark_group("train_steps");
    let mut mlp = train_steps::mlp_step();
    g.bench_function("mlp_step", |b| b.iter(|| black_box(mlp.step())));
    let mut cnn = train_steps::cnn_step();
    g.bench_function("cnn_step", |b| b.iter(|| black_box(cnn.step())));
    let (block, x) = train_steps::transformer_block();
    g.bench_function("transformer_step", |b| {
        b.iter(|| black_box(train_steps::transformer_step(&block, &x)))
    });
    g.finish();
}

criterion_group!(benches, train_steps);
criterion_main!(benches);
