//! `nn::parallel::DistributedDataParallel` and `nn::SyncBatchNorm` over the threads backend
//! (`Backend::Threads(n)`: n ranks as n threads of this process, each with its own tape). The same
//! code runs over MPI in tests/ddp_mpi.rs.
//!
//! The central property: `n` ranks each training on `1/n` of a batch, with the gradients averaged
//! by DDP, follow the same trajectory as one process training on the whole batch (the loss is a
//! mean over the batch, so the average of the per-rank gradients is the whole-batch gradient).

// the `mpi` feature arrives with the MPI backend (issue 12); until then its code is compiled out
#![allow(unexpected_cfgs)]

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tapegrad::distributed::{launch, Backend, ProcessGroup};
use tapegrad::nn::parallel::{DdpOptions, DistributedDataParallel};
use tapegrad::nn::{self, Forward, Module, SyncBatchNorm};
use tapegrad::optim::{Adam, Optimizer, SGD};
use tapegrad::prelude::*;

/// linear(6→16) - tanh - linear(16→16) - tanh - linear(16→3)
#[derive(Module)]
struct Mlp {
    fc1: nn::Linear,
    fc2: nn::Linear,
    fc3: nn::Linear,
}

impl Mlp {
    fn new() -> Mlp {
        Mlp {
            fc1: nn::Linear::new(6, 16),
            fc2: nn::Linear::new(16, 16),
            fc3: nn::Linear::new(16, 3),
        }
    }
}

impl Forward for Mlp {
    fn forward(&self, x: &Tensor) -> Tensor {
        let h = self.fc1.forward(x).tanh();
        self.fc3.forward(&self.fc2.forward(&h).tanh())
    }
}

/// linear(6→16) - batch norm - tanh - linear(16→3): the norm is `SyncBatchNorm` over `group`, or
/// `BatchNorm1d` without one.
#[derive(Module)]
struct BnMlp {
    fc1: nn::Linear,
    bn: Norm,
    fc2: nn::Linear,
}

enum Norm {
    Plain(nn::BatchNorm1d),
    Sync(SyncBatchNorm),
}

impl Module for Norm {
    fn visit(&self, v: &mut nn::Visitor) {
        match self {
            Norm::Plain(b) => b.visit(v),
            Norm::Sync(b) => b.visit(v),
        }
    }
}

impl BnMlp {
    fn new(group: Option<&ProcessGroup>) -> BnMlp {
        let bn = nn::BatchNorm1d::new(16);
        BnMlp {
            // no bias before a batch norm: its gradient is 0 up to rounding, which Adam would
            // turn into full-size steps (rounding noise, different in every summation order)
            fc1: nn::Linear::with_bias(6, 16, false),
            bn: match group {
                Some(g) => Norm::Sync(SyncBatchNorm::from_batch_norm(&bn, g)),
                None => Norm::Plain(bn),
            },
            fc2: nn::Linear::new(16, 3),
        }
    }
}

impl Forward for BnMlp {
    fn forward(&self, x: &Tensor) -> Tensor {
        let h = self.fc1.forward(x);
        let h = match &self.bn {
            Norm::Plain(b) => b.forward(&h),
            Norm::Sync(b) => b.forward(&h),
        };
        self.fc2.forward(&h.tanh())
    }
}

const BATCH: usize = 24;
const STEPS: usize = 20;

/// A fixed regression batch: 24 inputs of 6 features and their 3 targets.
fn batch() -> (Tensor, Tensor) {
    let mut g = Generator::new(7);
    (
        Tensor::randn_with(&[BATCH, 6], &mut g),
        Tensor::randn_with(&[BATCH, 3], &mut g),
    )
}

/// Rows `[rank · B/n, (rank + 1) · B/n)` of `t`.
fn shard(t: &Tensor, rank: usize, world: usize) -> Tensor {
    let per = t.shape()[0] / world;
    t.narrow(0, (rank * per) as isize, per).contiguous()
}

/// All parameters and buffers of `m`, flattened in `state_dict` order (f32 values as f64).
fn flat_state(m: &impl Module) -> Vec<f64> {
    m.state_dict()
        .values()
        .filter(|t| t.dtype().is_float())
        .flat_map(|t| t.to_dtype(DType::F64).to_vec::<f64>())
        .collect()
}

/// Trains `model` for STEPS Adam steps on (x, y) with the mean squared error.
fn train(model: &(impl Module + Forward), x: &Tensor, y: &Tensor) {
    let mut opt = Adam::new(model.parameters(), 1e-2);
    for _ in 0..STEPS {
        let loss = (model.forward(x) - y).powf(2.0).mean();
        opt.zero_grad();
        loss.backward();
        opt.step();
    }
}

/// The state of a model of `make`, started from `init`, trained by one process on the whole batch.
fn single_process<M: Module + Forward>(
    init: &BTreeMap<String, Tensor>,
    make: impl Fn() -> M,
) -> Vec<f64> {
    let model = make();
    model.load_state_dict(init, true).unwrap();
    let (x, y) = batch();
    train(&model, &x, &y);
    flat_state(&model)
}

/// The states of every rank of `world` threads, each training a DDP-wrapped model of `make`
/// (started from `init` on rank 0 only: DDP broadcasts it) on its shard of the batch.
fn data_parallel<M, F>(world: usize, init: &BTreeMap<String, Tensor>, make: F) -> Vec<Vec<f64>>
where
    M: Module + Forward,
    F: Fn(&ProcessGroup) -> M + Sync,
{
    launch(Backend::Threads(world), |pg| {
        let model = make(&pg);
        if pg.rank() == 0 {
            model.load_state_dict(init, true).unwrap();
        }
        let ddp = DistributedDataParallel::new(model, &pg).unwrap();
        let (x, y) = batch();
        let (x, y) = (shard(&x, pg.rank(), world), shard(&y, pg.rank(), world));
        train(&ddp, &x, &y);
        flat_state(&ddp.module)
    })
    .unwrap()
}

fn assert_rel_close(got: &[f64], want: &[f64], rel: f64, what: &str) {
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= rel * scale.max(1e-12) || (g - w).abs() <= rel * w.abs(),
            "{what}: element {i}: {g} vs {w} (relative tolerance {rel})"
        );
    }
}

#[test]
fn two_and_four_thread_ranks_train_like_one_process_on_the_whole_batch() {
    let init = Mlp::new().state_dict();
    let want = single_process(&init, Mlp::new);
    for world in [2, 4] {
        let ranks = data_parallel(world, &init, |_| Mlp::new());
        for (r, got) in ranks.iter().enumerate() {
            assert_rel_close(got, &want, 1e-5, &format!("world {world}, rank {r}"));
        }
        // the replicas are equal to the bit
        assert!(
            ranks.iter().all(|s| s == &ranks[0]),
            "world {world}: replicas differ"
        );
    }
}

#[test]
fn sync_batch_norm_ranks_train_like_batch_norm_on_the_whole_batch() {
    let init = BnMlp::new(None).state_dict();
    // running statistics included: they are buffers in flat_state
    let want = single_process(&init, || BnMlp::new(None));
    for world in [2, 4] {
        let ranks = data_parallel(world, &init, |pg| BnMlp::new(Some(pg)));
        for (r, got) in ranks.iter().enumerate() {
            assert_rel_close(got, &want, 1e-5, &format!("world {world}, rank {r}"));
        }
    }
}

#[test]
fn sync_batch_norm_forward_matches_batch_norm_on_the_whole_batch() {
    let mut g = Generator::new(3);
    let x = Tensor::randn_with(&[8, 4, 3], &mut g);
    let w = Tensor::randn_with(&[8, 4, 3], &mut g); // each loss is Σ y · w
    let bn = nn::BatchNorm1d::new(4);
    let xr = x.detach().requires_grad();
    let want_y = bn.forward(&xr);
    (&want_y * &w).sum().backward();
    let want_dx = xr.grad().unwrap();
    let outs = launch(Backend::Threads(2), |pg| {
        let s = SyncBatchNorm::new(4, &pg);
        let xs = shard(&x, pg.rank(), 2).requires_grad();
        let y = s.forward(&xs);
        (&y * shard(&w, pg.rank(), 2)).sum().backward();
        (
            y.detach(),
            xs.grad().unwrap(),
            s.running_mean,
            s.running_var,
        )
    })
    .unwrap();
    let f = |t: &Tensor| t.to_dtype(DType::F64).to_vec::<f64>();
    for (r, (y, dx, rm, rv)) in outs.iter().enumerate() {
        assert_rel_close(
            &f(y),
            &f(&shard(&want_y, r, 2)),
            1e-5,
            &format!("y, rank {r}"),
        );
        // the gradient of the ranks' total loss equals batch_norm's on the whole batch
        assert_rel_close(
            &f(dx),
            &f(&shard(&want_dx, r, 2)),
            1e-5,
            &format!("dx, rank {r}"),
        );
        assert_rel_close(&f(rm), &f(&bn.running_mean), 1e-5, "running_mean");
        assert_rel_close(&f(rv), &f(&bn.running_var), 1e-5, "running_var");
    }
}

#[test]
fn two_runs_with_the_same_world_size_are_bitwise_identical() {
    let init = Mlp::new().state_dict();
    let a = data_parallel(3, &init, |_| Mlp::new());
    let b = data_parallel(3, &init, |_| Mlp::new());
    assert_eq!(a, b);
}

#[test]
fn construction_copies_rank_0_parameters_to_every_rank() {
    let states = launch(Backend::Threads(3), |pg| {
        // every thread draws its own random initialisation
        let model = Mlp::new();
        let ddp = DistributedDataParallel::new(model, &pg).unwrap();
        flat_state(&ddp.module)
    })
    .unwrap();
    assert_eq!(states[0], states[1]);
    assert_eq!(states[0], states[2]);
}

#[test]
fn state_dict_keys_are_prefixed_with_module_as_in_pytorch() {
    let keys = launch(Backend::Threads(1), |pg| {
        let ddp = DistributedDataParallel::new(nn::Linear::new(2, 2), &pg).unwrap();
        ddp.state_dict().into_keys().collect::<Vec<_>>()
    })
    .unwrap();
    assert_eq!(keys[0], ["module.bias", "module.weight"]);
}

#[test]
fn small_bucket_caps_make_several_buckets_in_reverse_order_with_the_same_gradients() {
    let init = Mlp::new().state_dict();
    let (x, y) = batch();
    // whole-batch gradients of one process
    let model = Mlp::new();
    model.load_state_dict(&init, true).unwrap();
    (model.forward(&x) - &y).powf(2.0).mean().backward();
    let want: Vec<f64> = model
        .parameters()
        .iter()
        .flat_map(|p| p.grad().unwrap().to_dtype(DType::F64).to_vec::<f64>())
        .collect();
    let out = launch(Backend::Threads(2), |pg| {
        let model = Mlp::new();
        model.load_state_dict(&init, true).unwrap();
        // 400-byte buckets
        let opts = DdpOptions {
            bucket_cap_mb: 400.0 / 1048576.0,
            first_bucket_cap_mb: 400.0 / 1048576.0,
            ..Default::default()
        };
        let ddp = DistributedDataParallel::with_options(model, &pg, opts).unwrap();
        let (x, y) = (shard(&x, pg.rank(), 2), shard(&y, pg.rank(), 2));
        (ddp.forward(&x) - &y).powf(2.0).mean().backward();
        let grads: Vec<f64> = ddp
            .parameters()
            .iter()
            .flat_map(|p| p.grad().unwrap().to_dtype(DType::F64).to_vec::<f64>())
            .collect();
        (ddp.bucket_names(), grads)
    })
    .unwrap();
    let (buckets, _) = &out[0];
    // reversed: fc3.bias, fc3.weight (204 bytes), fc2.bias (268), fc2.weight (1292 ≥ 400: the
    // bucket closes), then fc1.bias, fc1.weight (448 ≥ 400: closes)
    assert_eq!(
        buckets,
        &vec![
            vec![
                "fc3.bias".to_string(),
                "fc3.weight".into(),
                "fc2.bias".into(),
                "fc2.weight".into()
            ],
            vec!["fc1.bias".to_string(), "fc1.weight".into()],
        ]
    );
    for (_, grads) in &out {
        assert_rel_close(grads, &want, 1e-6, "bucketed gradients");
    }
}

#[test]
fn no_sync_accumulates_locally_and_the_next_backward_reduces_the_sum() {
    let init = Mlp::new().state_dict();
    let (x, y) = batch();
    let world = 2;
    // one process: the sum of the gradients of both micro-batches of both ranks, averaged
    // over ranks = the gradient of (loss(mb 0) + loss(mb 1)) on the whole batch
    let model = Mlp::new();
    model.load_state_dict(&init, true).unwrap();
    for _ in 0..2 {
        (model.forward(&x) - &y).powf(2.0).mean().backward();
    }
    let want: Vec<f64> = flat_grads(&model);
    let out = launch(Backend::Threads(world), |pg| {
        let model = Mlp::new();
        model.load_state_dict(&init, true).unwrap();
        let ddp = DistributedDataParallel::new(model, &pg).unwrap();
        let (x, y) = (shard(&x, pg.rank(), world), shard(&y, pg.rank(), world));
        let local = {
            let _no_sync = ddp.no_sync();
            (ddp.forward(&x) - &y).powf(2.0).mean().backward();
            flat_grads(&ddp)
        };
        (ddp.forward(&x) - &y).powf(2.0).mean().backward();
        (local, flat_grads(&ddp))
    })
    .unwrap();
    // under no_sync the ranks' gradients are their own (different batches)
    assert_ne!(out[0].0, out[1].0);
    for (_, synced) in &out {
        assert_rel_close(synced, &want, 1e-6, "accumulated then reduced");
    }
}

fn flat_grads(m: &impl Module) -> Vec<f64> {
    m.parameters()
        .iter()
        .flat_map(|p| p.grad().unwrap().to_dtype(DType::F64).to_vec::<f64>())
        .collect()
}

/// An MLP whose `head_b` is used only when the input has more than 3 rows.
#[derive(Module)]
struct TwoHeads {
    trunk: nn::Linear,
    head_a: nn::Linear,
    head_b: nn::Linear,
}

impl Forward for TwoHeads {
    fn forward(&self, x: &Tensor) -> Tensor {
        let h = self.trunk.forward(x).tanh();
        if x.shape()[0] > 3 {
            self.head_a.forward(&h) + self.head_b.forward(&h)
        } else {
            self.head_a.forward(&h)
        }
    }
}

fn two_heads() -> TwoHeads {
    TwoHeads {
        trunk: nn::Linear::new(6, 8),
        head_a: nn::Linear::new(8, 3),
        head_b: nn::Linear::new(8, 3),
    }
}

#[test]
fn find_unused_parameters_lets_a_forward_skip_parameters() {
    let (x, _) = batch();
    let out = launch(Backend::Threads(2), |pg| {
        let opts = DdpOptions {
            find_unused_parameters: true,
            ..Default::default()
        };
        let ddp = DistributedDataParallel::with_options(two_heads(), &pg, opts).unwrap();
        // rank 0 uses head_b (4 rows), rank 1 does not (2 rows); then nobody uses it
        let rows = if pg.rank() == 0 { 4 } else { 2 };
        ddp.forward(&x.narrow(0, 0, rows)).sum().backward();
        let b_grad = ddp.module.head_b.weight.grad().map(|g| g.to_vec::<f32>());
        let a_grad = ddp.module.head_a.weight.grad().unwrap().to_vec::<f32>();
        ddp.zero_grad();
        ddp.forward(&x.narrow(0, 0, 2)).sum().backward();
        let b_after = ddp.module.head_b.weight.grad();
        (a_grad, b_grad, b_after.is_none())
    })
    .unwrap();
    // used on one rank: reduced (rank 1 contributes zeros), equal on both ranks
    assert_eq!(out[0].0, out[1].0);
    assert!(out[0].1.is_some());
    assert_eq!(out[0].1, out[1].1);
    // unused on every rank: left without a gradient, as PyTorch does
    assert!(out[0].2 && out[1].2);
}

#[test]
fn an_unused_parameter_without_find_unused_parameters_is_a_clear_error_not_a_hang() {
    let (x, _) = batch();
    let messages = launch(Backend::Threads(2), |pg| {
        let ddp = DistributedDataParallel::new(two_heads(), &pg).unwrap();
        common::panic_message(|| ddp.forward(&x.narrow(0, 0, 2)).sum().backward())
    })
    .unwrap();
    for m in messages {
        assert!(m.contains("find_unused_parameters: true"), "{m}");
        assert!(
            m.contains("head_b.weight") && m.contains("head_b.bias"),
            "{m}"
        );
    }
}

#[test]
fn ranks_with_different_models_all_get_an_error_naming_the_parameter() {
    let results = Arc::new(Mutex::new(Vec::new()));
    let r = results.clone();
    launch(Backend::Threads(3), move |pg| {
        let hidden = if pg.rank() == 2 { 5 } else { 8 };
        let model = nn::Sequential::new()
            .add(nn::Linear::new(4, hidden))
            .add(nn::Linear::new(hidden, 2));
        let err = DistributedDataParallel::new(model, &pg)
            .err()
            .map(|e| e.to_string());
        r.lock().unwrap().push((pg.rank(), err));
    })
    .unwrap();
    let results = results.lock().unwrap();
    assert_eq!(results.len(), 3);
    for (rank, err) in results.iter() {
        let err = err
            .as_ref()
            .unwrap_or_else(|| panic!("rank {rank} got no error"));
        assert!(
            err.contains("'0.weight'") && err.contains("rank 2"),
            "rank {rank}: {err}"
        );
        assert!(
            err.contains("[8, 4]") && err.contains("[5, 4]"),
            "rank {rank}: {err}"
        );
    }
}

#[test]
fn the_gradients_are_reduced_while_backward_runs() {
    // With one-parameter buckets, the first bucket's all_reduce is launched from a hook inside
    // backward, before the first layer's gradient exists.
    let seen = launch(Backend::Threads(2), |pg| {
        let opts = DdpOptions {
            bucket_cap_mb: 1e-9,
            first_bucket_cap_mb: 1e-9,
            ..Default::default()
        };
        let ddp = DistributedDataParallel::with_options(Mlp::new(), &pg, opts).unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let l = log.clone();
        let first = ddp.module.fc1.weight.clone();
        let _h = ddp
            .module
            .fc3
            .weight
            .register_post_accumulate_grad_hook(move |_| {
                l.lock().unwrap().push(first.grad().is_none());
            });
        ddp.forward(&Tensor::randn(&[4, 6])).sum().backward();
        let v = log.lock().unwrap().clone();
        v
    })
    .unwrap();
    assert_eq!(seen, vec![vec![true], vec![true]]);
}

#[test]
fn sgd_example_replicas_stay_equal() {
    let w = launch(Backend::Threads(2), |pg| {
        let ddp = DistributedDataParallel::new(nn::Linear::new(3, 1), &pg).unwrap();
        let mut opt = SGD::new(ddp.parameters(), 0.1);
        let x = Tensor::full(&[4, 3], pg.rank() as f32 + 1.0);
        let loss = ddp.forward(&x).powf(2.0).mean();
        opt.zero_grad();
        loss.backward();
        opt.step();
        ddp.module.weight.to_vec::<f32>()
    })
    .unwrap();
    assert_eq!(w[0], w[1]);
}

// ----- the same over MPI, with real processes --------------------------------------------------
//
// The test binary is its own MPI program: each driver test below starts
// `mpirun -np N <this test binary> --ignored --exact mpi_worker`, with `TAPEGRAD_DDP_WORKER`
// saying what the worker does and `TAPEGRAD_DDP_OUT` where it writes (one file per rank). Every
// mpirun gets a hard wall-clock limit, after which it is killed and the test fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The wall-clock limit of one mpirun.
const MPIRUN_LIMIT: Duration = Duration::from_secs(120);

/// `mpirun`, or `None` after printing why `test` is skipped (a failure under `CI=true`).
fn mpirun_or_skip(test: &str) -> Option<PathBuf> {
    let ci = std::env::var("CI").as_deref() == Ok("true");
    if !cfg!(feature = "mpi") {
        assert!(
            !ci,
            "{test}: CI=true but tapegrad was built without the `mpi` feature"
        );
        eprintln!("skipped {test}: built without the `mpi` feature");
        return None;
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("mpirun"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            !ci,
            "{test}: CI=true but mpirun is not on PATH (apt-get install openmpi-bin)"
        );
        eprintln!("skipped {test}: mpirun not found (apt-get install openmpi-bin)");
    }
    found
}

/// Runs `np` workers doing `job` under mpirun, killed after [`MPIRUN_LIMIT`]; returns the output
/// and the time it took.
fn run_mpi(
    mpirun: &Path,
    np: usize,
    job: &str,
    out: &Path,
    extra_env: &[(&str, &str)],
) -> (Output, Duration) {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(mpirun);
    cmd.args([
        "--allow-run-as-root",
        "--oversubscribe",
        "-np",
        &np.to_string(),
    ])
    .arg(&exe)
    .args([
        "--ignored",
        "--exact",
        "mpi_worker",
        "--nocapture",
        "--test-threads",
        "1",
    ])
    .env("TAPEGRAD_DDP_WORKER", job)
    .env("TAPEGRAD_DDP_OUT", out)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let start = Instant::now();
    let mut child = cmd.spawn().expect("mpirun starts");
    // drain the pipes on threads so a chatty child cannot block on a full pipe
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut so, &mut v).ok();
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut se, &mut v).ok();
        v
    });
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > MPIRUN_LIMIT {
            child.kill().ok();
            child.wait().ok();
            panic!("mpirun -np {np} ({job}) did not finish within {MPIRUN_LIMIT:?}: killed");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let elapsed = start.elapsed();
    let output = Output {
        status,
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
    };
    (output, elapsed)
}

fn out_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tapegrad_ddp_{name}_{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn read_state(dir: &Path, rank: usize) -> Vec<f64> {
    let text = std::fs::read_to_string(dir.join(format!("rank{rank}.txt")))
        .unwrap_or_else(|e| panic!("rank {rank} wrote no result: {e}"));
    text.split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect()
}

#[cfg_attr(not(feature = "mpi"), allow(dead_code))]
fn write_state(dir: &Path, rank: usize, state: &[f64]) {
    // full precision: `{:e}` of an f64 round-trips
    let text: Vec<String> = state.iter().map(|v| format!("{v:e}")).collect();
    std::fs::write(dir.join(format!("rank{rank}.txt")), text.join(" ")).unwrap();
}

/// The fixed initial state every run starts from (the same in every process: its own generator).
fn fixed_init<M: Module>(m: M) -> M {
    let mut g = Generator::new(11);
    for (_, t) in m.state_dict_handles() {
        if t.dtype().is_float() && t.is_requires_grad() {
            let _ng = no_grad();
            t.copy_(&(Tensor::randn_with(t.shape(), &mut g) * 0.3).to_dtype(t.dtype()));
        }
    }
    m
}

/// What one MPI rank does, chosen by `TAPEGRAD_DDP_WORKER`; started by the driver tests only.
#[test]
#[ignore = "an MPI worker: started by the mpi_* tests under mpirun"]
fn mpi_worker() {
    let Ok(job) = std::env::var("TAPEGRAD_DDP_WORKER") else {
        return;
    };
    #[cfg(feature = "mpi")]
    {
        let out = PathBuf::from(std::env::var("TAPEGRAD_DDP_OUT").unwrap());
        mpi_jobs::run(&job, &out);
    }
    #[cfg(not(feature = "mpi"))]
    panic!("mpi_worker ({job}): built without the `mpi` feature");
}

#[cfg(feature = "mpi")]
mod mpi_jobs {
    use super::*;
    use tapegrad::distributed::{init_process_group_with, InitOptions};

    pub fn run(job: &str, out: &Path) {
        let timeout = std::env::var("TAPEGRAD_DDP_TIMEOUT_SECS")
            .map(|s| Duration::from_secs(s.parse().unwrap()))
            .unwrap_or(Duration::from_secs(60));
        let pg = init_process_group_with(
            Backend::Mpi,
            InitOptions {
                timeout,
                ..Default::default()
            },
        )
        .unwrap();
        let (rank, world) = (pg.rank(), pg.world_size());
        match job {
            "mlp" | "bn" => {
                let model: Box<dyn ModuleForward> = if job == "mlp" {
                    Box::new(fixed_init(Mlp::new()))
                } else {
                    Box::new(fixed_init(BnMlp::new(Some(&pg))))
                };
                let ddp = DistributedDataParallel::new(model, &pg).unwrap();
                let (x, y) = batch();
                train(&ddp, &shard(&x, rank, world), &shard(&y, rank, world));
                write_state(out, rank, &flat_state(&ddp.module));
            }
            "mismatch" => {
                let hidden = if rank == 1 { 5 } else { 8 };
                let model = nn::Sequential::new()
                    .add(nn::Linear::new(4, hidden))
                    .add(nn::Linear::new(hidden, 2));
                match DistributedDataParallel::new(model, &pg) {
                    Ok(_) => {
                        std::fs::write(out.join(format!("rank{rank}.txt")), "no error").unwrap()
                    }
                    Err(e) => {
                        std::fs::write(out.join(format!("rank{rank}.txt")), e.to_string()).unwrap()
                    }
                }
            }
            "die" => {
                // rank 1 leaves abruptly at step 5; rank 0 checkpoints after every step
                let ddp = DistributedDataParallel::new(fixed_init(Mlp::new()), &pg).unwrap();
                let mut opt = Adam::new(ddp.parameters(), 1e-2);
                let (x, y) = batch();
                let (x, y) = (shard(&x, rank, world), shard(&y, rank, world));
                for step in 0..1000 {
                    if rank == 1 && step == 5 {
                        std::process::exit(3);
                    }
                    let loss = (ddp.forward(&x) - &y).powf(2.0).mean();
                    opt.zero_grad();
                    loss.backward();
                    opt.step();
                    if rank == 0 {
                        let mut sd = ddp.module.state_dict();
                        sd.insert("step".into(), Tensor::from_values(vec![step as i64], &[]));
                        tapegrad::io::safetensors::save(&sd, out.join("ckpt.safetensors")).unwrap();
                    }
                }
            }
            other => panic!("mpi_worker: unknown job {other}"),
        }
    }
}

/// Module + Forward as one object type, for a worker that picks its model at run time.
trait ModuleForward: Module + Forward {}
impl<T: Module + Forward> ModuleForward for T {}
impl Forward for Box<dyn ModuleForward> {
    fn forward(&self, x: &Tensor) -> Tensor {
        (**self).forward(x)
    }
}

/// The states after training over `np` MPI processes (job `mlp` or `bn`).
fn mpi_states(mpirun: &Path, np: usize, job: &str) -> Vec<Vec<f64>> {
    let dir = out_dir(&format!("{job}{np}"));
    let (o, _) = run_mpi(mpirun, np, job, &dir, &[]);
    assert!(
        o.status.success(),
        "mpirun -np {np} {job} failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let states = (0..np).map(|r| read_state(&dir, r)).collect();
    std::fs::remove_dir_all(&dir).ok();
    states
}

#[test]
#[ignore = "the MPI backend (Backend::Mpi, feature `mpi`) is not implemented yet: issue 12"]
fn mpi_ranks_train_like_one_process_and_like_the_threads_backend() {
    let Some(mpirun) =
        mpirun_or_skip("mpi_ranks_train_like_one_process_and_like_the_threads_backend")
    else {
        return;
    };
    let init = fixed_init(Mlp::new()).state_dict();
    let want = single_process(&init, Mlp::new);
    for np in [2, 4] {
        let states = mpi_states(&mpirun, np, "mlp");
        for (r, s) in states.iter().enumerate() {
            assert_rel_close(s, &want, 1e-5, &format!("MPI np {np}, rank {r}"));
        }
        assert!(
            states.iter().all(|s| s == &states[0]),
            "np {np}: replicas differ"
        );
        // the same seed and world size: the same bits
        assert_eq!(
            mpi_states(&mpirun, np, "mlp")[0],
            states[0],
            "np {np}: two runs differ"
        );
        let threads = data_parallel(np, &init, |_| Mlp::new());
        assert_rel_close(
            &threads[0],
            &states[0],
            1e-6,
            &format!("threads vs MPI, np {np}"),
        );
    }
}

#[test]
#[ignore = "the MPI backend (Backend::Mpi, feature `mpi`) is not implemented yet: issue 12"]
fn mpi_sync_batch_norm_ranks_train_like_batch_norm_on_the_whole_batch() {
    let Some(mpirun) =
        mpirun_or_skip("mpi_sync_batch_norm_ranks_train_like_batch_norm_on_the_whole_batch")
    else {
        return;
    };
    let init = fixed_init(BnMlp::new(None)).state_dict();
    let want = single_process(&init, || BnMlp::new(None));
    for np in [2, 4] {
        for (r, s) in mpi_states(&mpirun, np, "bn").iter().enumerate() {
            assert_rel_close(
                s,
                &want,
                1e-5,
                &format!("MPI SyncBatchNorm np {np}, rank {r}"),
            );
        }
    }
}

#[test]
#[ignore = "the MPI backend (Backend::Mpi, feature `mpi`) is not implemented yet: issue 12"]
fn mpi_ranks_with_different_models_all_report_the_first_differing_parameter() {
    let Some(mpirun) =
        mpirun_or_skip("mpi_ranks_with_different_models_all_report_the_first_differing_parameter")
    else {
        return;
    };
    let dir = out_dir("mismatch");
    let (o, _) = run_mpi(&mpirun, 3, "mismatch", &dir, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for r in 0..3 {
        let msg = std::fs::read_to_string(dir.join(format!("rank{r}.txt"))).unwrap();
        assert!(
            msg.contains("'0.weight'") && msg.contains("rank 1 has"),
            "rank {r}: {msg}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
#[ignore = "the MPI backend (Backend::Mpi, feature `mpi`) is not implemented yet: issue 12"]
fn mpi_a_rank_that_dies_stops_the_others_and_the_checkpoint_is_the_last_complete_one() {
    let Some(mpirun) = mpirun_or_skip(
        "mpi_a_rank_that_dies_stops_the_others_and_the_checkpoint_is_the_last_complete_one",
    ) else {
        return;
    };
    let dir = out_dir("die");
    let (o, took) = run_mpi(
        &mpirun,
        2,
        "die",
        &dir,
        &[("TAPEGRAD_DDP_TIMEOUT_SECS", "20")],
    );
    assert!(!o.status.success(), "the run should fail when a rank dies");
    // within the timeout (20 s) and mpirun's teardown, far below the wall-clock limit
    assert!(took < Duration::from_secs(60), "took {took:?}");
    let ckpt = tapegrad::io::safetensors::load(dir.join("ckpt.safetensors"))
        .expect("the checkpoint on disk loads");
    // rank 1 left before step 5: rank 0 cannot have completed step 5 or later
    let step = ckpt["step"].to_vec::<i64>()[0];
    assert!((0..5).contains(&step), "checkpoint of step {step}");
    let model = Mlp::new();
    let mut sd = ckpt.clone();
    sd.remove("step");
    model
        .load_state_dict(&sd, true)
        .expect("the checkpoint loads into the model");
    std::fs::remove_dir_all(&dir).ok();
}
