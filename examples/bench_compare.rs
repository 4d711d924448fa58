//! The tapegrad side of `scripts/compare_pytorch.py`: runs the benchmark workloads and prints their
//! timings as one JSON object, for the script to set against PyTorch's on the same workloads.
//!
//! ```text
//! cargo run --release --example bench_compare -- [--threads N] [--only SUBSTRING] [--quick]
//! ```
//!
//! Each workload is timed as the best of several repetitions of a batch of calls (the minimum is
//! the measurement least disturbed by other processes); `seconds` is the time of one call.
//! `scripts/compare_pytorch.py` mirrors this list exactly: keep the two in step.

use std::hint::black_box;
use std::time::Instant;

use serde_json::{json, Value};
use tapegrad::prelude::*;

/// Seconds per call of `f`: the best of `reps` batches, each sized to last about `target` seconds.
fn time_it(mut f: impl FnMut(), reps: usize, target: f64) -> f64 {
    f(); // warm up (allocator, thread pool, caches)
    let t = Instant::now();
    f();
    let once = t.elapsed().as_secs_f64().max(1e-9);
    let calls = ((target / once) as usize).clamp(1, 1_000_000);
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..calls {
                f();
            }
            t.elapsed().as_secs_f64() / calls as f64
        })
        .fold(f64::INFINITY, f64::min)
}

type BinaryFn = fn(&Tensor, &Tensor) -> Tensor;

/// One workload: its name, the work per call (for a rate) and how to run one call.
struct Workload {
    name: String,
    /// Floating-point operations (matmul) or elements (elementwise) per call, 0 for none.
    work: f64,
    unit: &'static str,
    run: Box<dyn FnMut()>,
}

fn workloads() -> Vec<Workload> {
    let mut w = Vec::new();
    // The eager-overhead loop: 10,000 tiny forward + backward passes per call; the script reports
    // the time per pass.
    {
        let x = Tensor::randn(&[16]).requires_grad();
        let wt = Tensor::randn(&[16]).requires_grad();
        let b = Tensor::randn(&[16]).requires_grad();
        w.push(Workload {
            name: "eager_overhead_x10000".into(),
            work: 10_000.0,
            unit: "iter",
            run: Box::new(move || {
                for _ in 0..10_000 {
                    let y = (&x * &wt + &b).tanh().sum();
                    y.backward();
                }
            }),
        });
    }
    for n in [256usize, 512, 1024, 2048] {
        let a = Tensor::randn(&[n, n]);
        let b = Tensor::randn(&[n, n]);
        w.push(Workload {
            name: format!("matmul_f32_{n}"),
            work: 2.0 * (n as f64).powi(3),
            unit: "flop",
            run: Box::new(move || {
                black_box(a.matmul(&b));
            }),
        });
    }
    for (nb, n) in [(64usize, 64usize), (16, 128)] {
        let a = Tensor::randn(&[nb, n, n]);
        let b = Tensor::randn(&[nb, n, n]);
        w.push(Workload {
            name: format!("bmm_f32_{nb}x{n}"),
            work: 2.0 * nb as f64 * (n as f64).powi(3),
            unit: "flop",
            run: Box::new(move || {
                black_box(a.matmul(&b));
            }),
        });
    }
    for size in [1usize << 20, 1 << 24] {
        let tag = format!("{}M", size >> 20);
        let a = Tensor::randn(&[size]);
        let b = Tensor::randn(&[size]);
        let ops: [(&str, BinaryFn); 5] = [
            ("add", |a, b| a + b),
            ("mul", |a, b| a * b),
            ("tanh", |a, _| a.tanh()),
            ("exp", |a, _| a.exp()),
            ("sum", |a, _| a.sum()),
        ];
        for (op, f) in ops {
            let (a, b) = (a.clone(), b.clone());
            w.push(Workload {
                name: format!("{op}_f32_{tag}"),
                work: size as f64,
                unit: "elem",
                run: Box::new(move || {
                    black_box(f(&a, &b));
                }),
            });
        }
    }
    w
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1).cloned())
    };
    if let Some(n) = value("--threads") {
        tapegrad::parallel::set_num_threads(n.parse().expect("--threads takes a number"));
    }
    let only = value("--only");
    let quick = args.iter().any(|a| a == "--quick");
    let (reps, target) = if quick { (3, 0.05) } else { (5, 0.2) };
    let mut results = Vec::<Value>::new();
    for mut wl in workloads() {
        if only.as_ref().is_some_and(|o| !wl.name.contains(o.as_str())) {
            continue;
        }
        let s = time_it(&mut wl.run, reps, target);
        results.push(json!({
            "name": wl.name,
            "seconds": s,
            "work": wl.work,
            "unit": wl.unit,
        }));
    }
    let out = json!({
        "library": "tapegrad",
        "threads": tapegrad::parallel::get_num_threads(),
        "results": results,
    });
    println!("{out}");
}
