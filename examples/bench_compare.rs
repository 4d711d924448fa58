//! The tapegrad side of `scripts/compare_pytorch.py`: runs the benchmark workloads and prints their
//! timings as one JSON object, for the script to set against PyTorch's on the same workloads.
//!
//! ```text
//! cargo run --release --example bench_compare -- [--threads N] [--only SUBSTRING] [--quick]
//!     [--clock wall|cpu]
//! cargo run --release --example bench_compare -- --mlp-memory STEPS
//! ```
//!
//! The second form trains the MLP of `mlp_step` for STEPS steps and exits, for the script to read
//! the process's peak memory (`ru_maxrss`).
//!
//! Each workload is timed as the best of several repetitions of a batch of calls (the minimum is
//! the measurement least disturbed by other processes); `seconds` is the time of one call, in
//! elapsed time, or with `--clock cpu` in CPU time of the process (summed over its threads).
//! `scripts/compare_pytorch.py` mirrors this list exactly: keep the two in step.

use std::hint::black_box;
use std::time::Instant;

use serde_json::{json, Value};
use tapegrad::prelude::*;

#[path = "../benches/common/train_steps.rs"]
mod train_steps;

/// What time is measured: elapsed (wall-clock) time, or the CPU time of the whole process (all
/// threads), which other processes on a busy machine disturb much less.
#[derive(Clone, Copy)]
enum Clock {
    Wall,
    Cpu,
}

impl Clock {
    /// Seconds since an arbitrary origin.
    fn now(self) -> f64 {
        match self {
            Clock::Wall => {
                static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
                START.get_or_init(Instant::now).elapsed().as_secs_f64()
            }
            Clock::Cpu => {
                let mut ts = libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                };
                // SAFETY: clock_gettime writes one timespec through a valid pointer.
                let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
                assert_eq!(rc, 0, "clock_gettime(CLOCK_PROCESS_CPUTIME_ID) failed");
                ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
            }
        }
    }
}

/// Seconds per call of `f`: the best of `reps` batches, each sized to last about `target` seconds.
fn time_it(mut f: impl FnMut(), reps: usize, target: f64, clock: Clock) -> f64 {
    f(); // warm up (allocator, thread pool, caches)
    let t = clock.now();
    f();
    let once = (clock.now() - t).max(1e-9);
    let calls = ((target / once) as usize).clamp(1, 1_000_000);
    (0..reps)
        .map(|_| {
            let t = clock.now();
            for _ in 0..calls {
                f();
            }
            (clock.now() - t) / calls as f64
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

/// The workloads whose name `keep` accepts; the inputs of the others are never built (they
/// would cost time and memory, and pollute a profile of one workload).
fn workloads(keep: impl Fn(&str) -> bool) -> Vec<Workload> {
    let mut w = Vec::new();
    let mut add =
        |name: String, work: f64, unit: &'static str, make: &dyn Fn() -> Box<dyn FnMut()>| {
            if keep(&name) {
                w.push(Workload {
                    name,
                    work,
                    unit,
                    run: make(),
                });
            }
        };
    // The eager-overhead loop: 10,000 tiny forward + backward passes per call; the script reports
    // the time per pass.
    add("eager_overhead_x10000".into(), 10_000.0, "iter", &|| {
        let x = Tensor::randn(&[16]).requires_grad();
        let wt = Tensor::randn(&[16]).requires_grad();
        let b = Tensor::randn(&[16]).requires_grad();
        Box::new(move || {
            for _ in 0..10_000 {
                let y = (&x * &wt + &b).tanh().sum();
                y.backward();
            }
        })
    });
    for n in [256usize, 512, 1024, 2048] {
        add(
            format!("matmul_f32_{n}"),
            2.0 * (n as f64).powi(3),
            "flop",
            &|| {
                let a = Tensor::randn(&[n, n]);
                let b = Tensor::randn(&[n, n]);
                Box::new(move || {
                    black_box(a.matmul(&b));
                })
            },
        );
    }
    for (nb, n) in [(64usize, 64usize), (16, 128)] {
        let flop = 2.0 * nb as f64 * (n as f64).powi(3);
        add(format!("bmm_f32_{nb}x{n}"), flop, "flop", &|| {
            let a = Tensor::randn(&[nb, n, n]);
            let b = Tensor::randn(&[nb, n, n]);
            Box::new(move || {
                black_box(a.matmul(&b));
            })
        });
    }
    for size in [1usize << 20, 1 << 24] {
        let tag = format!("{}M", size >> 20);
        let ops: [(&str, BinaryFn); 6] = [
            ("add", |a, b| a + b),
            ("mul", |a, b| a * b),
            ("tanh", |a, _| a.tanh()),
            ("exp", |a, _| a.exp()),
            ("gelu", |a, _| a.gelu()),
            ("sum", |a, _| a.sum()),
        ];
        for (op, f) in ops {
            add(format!("{op}_f32_{tag}"), size as f64, "elem", &|| {
                let a = Tensor::randn(&[size]);
                let b = Tensor::randn(&[size]);
                Box::new(move || {
                    black_box(f(&a, &b));
                })
            });
        }
    }
    // Training steps (benches/common/train_steps.rs): one call is one whole step.
    add("mlp_step".into(), 0.0, "step", &|| {
        let mut mlp = train_steps::mlp_step();
        Box::new(move || {
            black_box(mlp.step());
        })
    });
    add("cnn_step".into(), 0.0, "step", &|| {
        let mut cnn = train_steps::cnn_step();
        Box::new(move || {
            black_box(cnn.step());
        })
    });
    add("transformer_step".into(), 0.0, "step", &|| {
        let (block, x) = train_steps::transformer_block();
        Box::new(move || {
            black_box(train_steps::transformer_step(&block, &x));
        })
    });
    w
}

/// `--mlp-memory STEPS`: trains the MLP for STEPS steps on fresh random batches, then exits; the
/// parent (`scripts/compare_pytorch.py --memory`) reads this child's peak resident memory.
fn mlp_memory(steps: usize) {
    let mut mlp = train_steps::mlp_step();
    let mut last = 0.0;
    for _ in 0..steps {
        mlp.x = Tensor::randn(&[64, 784]);
        mlp.y = Tensor::randint(0, 10, &[64]);
        last = mlp.step().item();
    }
    println!(
        "{}",
        json!({ "library": "tapegrad", "steps": steps, "last_loss": last })
    );
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
    if let Some(steps) = value("--mlp-memory") {
        mlp_memory(steps.parse().expect("--mlp-memory takes a number of steps"));
        return;
    }
    let only = value("--only");
    let quick = args.iter().any(|a| a == "--quick");
    let clock = match value("--clock").as_deref() {
        None | Some("wall") => Clock::Wall,
        Some("cpu") => Clock::Cpu,
        Some(other) => panic!("--clock takes wall or cpu, got {other}"),
    };
    let (reps, target) = if quick { (3, 0.05) } else { (5, 0.2) };
    let mut results = Vec::<Value>::new();
    for mut wl in workloads(|name| only.as_ref().is_none_or(|o| name.contains(o.as_str()))) {
        let s = time_it(&mut wl.run, reps, target, clock);
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
