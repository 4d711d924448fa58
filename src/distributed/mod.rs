//! Process groups and collectives, like `torch.distributed`: `init_process_group`, `all_reduce`,
//! `broadcast`, `all_gather`, `reduce_scatter`, `barrier`, with a timeout.
//!
//! Two backends run the same user code:
//!
//! - [`Backend::Threads(n)`](Backend::Threads): `n` worker threads of this process, each with its
//!   own tape, exchanging tensors in memory. Nothing to install; data parallelism on one machine.
//!   Reductions run in rank order, so results are bitwise reproducible.
//! - [`Backend::Mpi`]: one rank per process, started by `mpirun`. **Not available yet**: the API
//!   is in place (the same user code will run on it), but `init_process_group(Backend::Mpi)`
//!   returns an error until the MPI transport is written.
//!
//! [`launch`] runs a function once per rank (on `n` threads, or once in this MPI process), like
//! `torch.multiprocessing.spawn`; [`init_process_group`] joins a group from code that starts its
//! own threads or runs under `mpirun`. Each rank's group is also its thread's *default group*, which
//! the free functions ([`all_reduce`], [`rank`], …) use, as PyTorch's do.
//!
//! ```
//! use tapegrad::distributed::{self, Backend, ReduceOp};
//! use tapegrad::prelude::*;
//!
//! // two ranks, each holding t = rank + 1
//! let sums = distributed::launch(Backend::Threads(2), |pg| {
//!     let t = Tensor::full(&[3], pg.rank() as f32 + 1.0);
//!     pg.all_reduce(&t, ReduceOp::Sum).unwrap(); // in place: 1 + 2 on every rank
//!     t.to_vec::<f32>()
//! })
//! .unwrap();
//! assert_eq!(sums, vec![vec![3.0; 3], vec![3.0; 3]]);
//! ```
//!
//! # Collectives and autograd
//! Collectives are not recorded on the tape (torch.distributed's are not differentiable either):
//! they read a tensor's values and write the result into it in place, whatever its
//! `requires_grad`. Gradients are averaged across ranks by all-reducing `.grad` after backward.
//!
//! # Timeouts and failures
//! Every collective has a deadline, [`ProcessGroup::timeout`] after it was issued (30 minutes by
//! default as in PyTorch; [`InitOptions::timeout`], or the environment variable
//! `TAPEGRAD_DIST_TIMEOUT_S`). A collective that not every rank reaches in time returns an
//! [`Error::Distributed`] naming the op and its number ("all_reduce
//! #17") and the ranks that did not arrive. A rank that leaves the group — its function in
//! [`launch`] returned or panicked, or its thread exited — makes the collectives it never reached
//! fail at once on the other ranks, naming it. Ranks that call different collectives, or pass
//! tensors of different shapes or dtypes, get an error naming the op and every rank's shape,
//! never a garbage result. After any such failure the group is *broken*: every later collective
//! on it fails at once.

mod group;
mod payload;
mod threads;

use std::any::Any;
use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

pub use group::{ProcessGroup, Work};

use crate::tensor::Tensor;
use crate::{Error, Result};

/// Where the ranks of a group run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// One rank per process, started by `mpirun` (not available yet: initializing it is an
    /// error).
    Mpi,
    /// `n` ranks on `n` threads of this process.
    Threads(usize),
}

/// How [`ProcessGroup::all_reduce`] and [`ProcessGroup::reduce_scatter`] combine the ranks'
/// values, like `torch.distributed.ReduceOp`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReduceOp {
    /// The sum (on bool: any).
    Sum,
    /// The sum divided by the world size (integers round toward zero; not for bool).
    Avg,
    /// The largest value (on bool: any).
    Max,
    /// The smallest value (on bool: all).
    Min,
    /// The product (on bool: all).
    Product,
}

impl ReduceOp {
    #[allow(dead_code)] // for the MPI backend's headers
    /// Every op, in declaration order (`op as usize` indexes it).
    pub(crate) const ALL: [ReduceOp; 5] = [
        ReduceOp::Sum,
        ReduceOp::Avg,
        ReduceOp::Max,
        ReduceOp::Min,
        ReduceOp::Product,
    ];
}

/// Options of [`init_process_group_with`] and [`launch_with`].
#[derive(Clone, Debug)]
pub struct InitOptions {
    /// How long a collective (and the start-up handshake) may wait for the other ranks: 30
    /// minutes by default, as in PyTorch, or `TAPEGRAD_DIST_TIMEOUT_S` seconds when that
    /// environment variable is set.
    pub timeout: Duration,
    /// The world size the program expects; starting with another is an error (as
    /// `init_process_group(world_size=…)` in PyTorch).
    pub expected_world_size: Option<usize>,
}

impl Default for InitOptions {
    fn default() -> InitOptions {
        let from_env = std::env::var("TAPEGRAD_DIST_TIMEOUT_S")
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s > 0.0);
        InitOptions {
            timeout: from_env.map_or(Duration::from_secs(30 * 60), Duration::from_secs_f64),
            expected_world_size: None,
        }
    }
}

impl InitOptions {
    /// The default options with this timeout.
    pub fn with_timeout(timeout: Duration) -> InitOptions {
        InitOptions {
            timeout,
            ..InitOptions::default()
        }
    }
}

/// The thread's default group; the thread leaves it when it exits (`.1`: unless replaced).
struct DefaultGroup(ProcessGroup, bool);

impl Drop for DefaultGroup {
    fn drop(&mut self) {
        if self.1 {
            self.0.leave("its thread exited");
        }
    }
}

thread_local! {
    static DEFAULT: RefCell<Option<DefaultGroup>> = const { RefCell::new(None) };
}

fn set_default(pg: Option<ProcessGroup>) {
    let old = DEFAULT.with(|d| d.replace(pg.map(|pg| DefaultGroup(pg, true))));
    if let Some(mut old) = old {
        // replaced, not exited: the rank stays in the old group
        old.1 = false;
    }
}

/// This thread's default group, if [`init_process_group`] or [`launch`] set one.
pub fn default_group() -> Option<ProcessGroup> {
    DEFAULT.with(|d| d.borrow().as_ref().map(|g| g.0.clone()))
}

/// Whether this thread has a default group, like `dist.is_initialized()`.
pub fn is_initialized() -> bool {
    DEFAULT.with(|d| d.borrow().is_some())
}

/// Joins a process group and makes it this thread's default group, like
/// `dist.init_process_group(backend)`, with the default [`InitOptions`].
///
/// - `Backend::Mpi`: not available yet (an error).
/// - `Backend::Threads(n)`: the first `n` threads of this process that call it form a group, with
///   ranks in order of arrival, once all `n` have joined (within the timeout).
///
/// Inside [`launch`], the rank's group is already the default and is returned.
///
/// # Errors
/// If the group cannot be formed within the timeout (naming the ranks that did not join), if
/// the world size differs from [`InitOptions::expected_world_size`], if another group is already
/// this thread's default, or for `Backend::Mpi` (not available yet).
pub fn init_process_group(backend: Backend) -> Result<ProcessGroup> {
    init_process_group_with(backend, InitOptions::default())
}

/// [`init_process_group`] with options (timeout, expected world size).
///
/// # Errors
/// As [`init_process_group`].
pub fn init_process_group_with(backend: Backend, opts: InitOptions) -> Result<ProcessGroup> {
    let world = match backend {
        Backend::Threads(n) => Some(n),
        Backend::Mpi => None,
    };
    if let Some(pg) = default_group() {
        let same_backend =
            pg.backend() == backend_name(backend) && world.is_none_or(|n| n == pg.world_size());
        if !same_backend {
            return Err(Error::Distributed(format!(
                "init_process_group({backend:?}): this thread already belongs to {pg:?}; call \
                 destroy_process_group() first"
            )));
        }
        check_world_size(&pg, &opts)?;
        return Ok(pg);
    }
    let pg = match backend {
        Backend::Threads(n) => {
            check_threads(n)?;
            let (hub, rank) = threads::join(n, opts.timeout)?;
            ProcessGroup::new(hub.transport(rank), "threads", opts.timeout)
        }
        Backend::Mpi => init_mpi(&opts)?,
    };
    check_world_size(&pg, &opts)?;
    set_default(Some(pg.clone()));
    Ok(pg)
}

fn backend_name(backend: Backend) -> &'static str {
    match backend {
        Backend::Threads(_) => "threads",
        Backend::Mpi => "mpi",
    }
}

fn check_threads(n: usize) -> Result<()> {
    if n == 0 {
        return Err(Error::Distributed(
            "Backend::Threads(0): a group needs at least one rank".into(),
        ));
    }
    Ok(())
}

fn check_world_size(pg: &ProcessGroup, opts: &InitOptions) -> Result<()> {
    match opts.expected_world_size {
        Some(want) if want != pg.world_size() => {
            let how = match pg.backend() {
                "mpi" => "mpirun started",
                _ => "the backend has",
            };
            Err(Error::Distributed(format!(
                "init_process_group: expected a world size of {want}, but {how} {} ranks \
                 (this is rank {})",
                pg.world_size(),
                pg.rank()
            )))
        }
        _ => Ok(()),
    }
}

fn init_mpi(_: &InitOptions) -> Result<ProcessGroup> {
    // The MPI transport (a comm thread issuing non-blocking Open MPI collectives through the
    // `mpi` crate, behind a cargo feature `mpi`) is not written yet.
    Err(Error::Distributed(
        "Backend::Mpi is not available yet in this version of tapegrad (the MPI backend is \
         still to come); Backend::Threads(n) runs the same code on threads"
            .into(),
    ))
}

/// Leaves this thread's default group and forgets it, like `dist.destroy_process_group()`.
/// Does nothing without a default group.
pub fn destroy_process_group() {
    let old = DEFAULT.with(|d| d.borrow_mut().take());
    if let Some(DefaultGroup(pg, _)) = &old {
        pg.leave("destroy_process_group was called");
    }
}

/// Runs `f` once per rank and returns this process's results in rank order, like
/// `torch.multiprocessing.spawn`, with the default [`InitOptions`].
///
/// - `Backend::Threads(n)`: on `n` new threads of this process, each with its own tape and with
///   its rank's group as its default group; returns `n` results.
/// - `Backend::Mpi`: once, on this thread, in this process of an `mpirun` job, returning one
///   result (not available yet: an error).
///
/// When `f` returns or panics, its rank leaves the group, so collectives the other ranks wait
/// on in vain fail at once, naming it. The same `f` runs on both backends.
///
/// # Errors
/// If the group cannot be formed, or if `f` panicked on a rank: the error carries the rank and
/// the panic message (of the first rank to panic, then the others).
pub fn launch<F, R>(backend: Backend, f: F) -> Result<Vec<R>>
where
    F: Fn(ProcessGroup) -> R + Send + Sync,
    R: Send,
{
    launch_with(backend, InitOptions::default(), f)
}

/// [`launch`] with options (timeout, expected world size).
///
/// # Errors
/// As [`launch`].
pub fn launch_with<F, R>(backend: Backend, opts: InitOptions, f: F) -> Result<Vec<R>>
where
    F: Fn(ProcessGroup) -> R + Send + Sync,
    R: Send,
{
    let order = AtomicUsize::new(0);
    let outcomes: Vec<std::result::Result<R, Failure>> = match backend {
        Backend::Threads(n) => {
            check_threads(n)?;
            if let Some(want) = opts.expected_world_size.filter(|&w| w != n) {
                return Err(Error::Distributed(format!(
                    "launch: expected a world size of {want}, but Backend::Threads({n}) starts \
                     {n} ranks"
                )));
            }
            let hub = threads::Hub::full(n);
            let (f, order) = (&f, &order);
            std::thread::scope(|s| {
                let handles: Vec<_> = (0..n)
                    .map(|r| {
                        let pg = ProcessGroup::new(hub.transport(r), "threads", opts.timeout);
                        std::thread::Builder::new()
                            .name(format!("tapegrad-rank-{r}"))
                            .stack_size(8 << 20)
                            .spawn_scoped(s, move || run_rank(pg, f, order))
                            .expect("launch: cannot spawn a rank's thread")
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().expect("run_rank catches panics"))
                    .collect()
            })
        }
        Backend::Mpi => {
            let pg = init_process_group_with(Backend::Mpi, opts)?;
            let out = run_rank(pg, &f, &order);
            vec![out]
        }
    };
    let mut failures: Vec<&Failure> = outcomes.iter().filter_map(|o| o.as_ref().err()).collect();
    if failures.is_empty() {
        return Ok(outcomes.into_iter().map(|o| o.ok().unwrap()).collect());
    }
    failures.sort_by_key(|f| f.order);
    let all: Vec<String> = failures
        .iter()
        .map(|f| format!("rank {} panicked: {}", f.rank, f.message))
        .collect();
    Err(Error::Distributed(format!(
        "launch: {}",
        all.join("; then ")
    )))
}

/// A rank whose function panicked.
struct Failure {
    rank: usize,
    message: String,
    /// When it panicked, relative to the other ranks (0 = first).
    order: usize,
}

/// Runs one rank's function with `pg` as the thread's default group, then leaves the group.
fn run_rank<F, R>(pg: ProcessGroup, f: &F, order: &AtomicUsize) -> std::result::Result<R, Failure>
where
    F: Fn(ProcessGroup) -> R,
{
    set_default(Some(pg.clone()));
    let out = catch_unwind(AssertUnwindSafe(|| f(pg.clone())));
    let out = match out {
        Ok(r) => {
            pg.leave("its function returned");
            Ok(r)
        }
        Err(p) => {
            let message = panic_message(&*p);
            let order = order.fetch_add(1, Ordering::SeqCst);
            pg.leave(&format!("it panicked: {message}"));
            Err(Failure {
                rank: pg.rank(),
                message,
                order,
            })
        }
    };
    DEFAULT.with(|d| d.borrow_mut().take());
    out
}

fn panic_message(p: &(dyn Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic without a message)".to_owned()
    }
}

// ----- PyTorch-style free functions on the default group ---------------------------------------

#[track_caller]
fn default_or_panic(op: &str) -> ProcessGroup {
    default_group().unwrap_or_else(|| {
        panic!(
            "{op}: this thread has no default process group; call init_process_group first (or \
             run inside distributed::launch), at {}",
            std::panic::Location::caller()
        )
    })
}

fn default_or_err(op: &str) -> Result<ProcessGroup> {
    default_group().ok_or_else(|| {
        Error::Distributed(format!(
            "{op}: this thread has no default process group; call init_process_group first (or \
             run inside distributed::launch)"
        ))
    })
}

/// This thread's rank in its default group, like `dist.get_rank()`.
///
/// # Panics
/// If the thread has no default group.
#[track_caller]
pub fn rank() -> usize {
    default_or_panic("rank").rank()
}

/// The world size of this thread's default group, like `dist.get_world_size()`.
///
/// # Panics
/// If the thread has no default group.
#[track_caller]
pub fn world_size() -> usize {
    default_or_panic("world_size").world_size()
}

/// [`ProcessGroup::barrier`] on the default group, like `dist.barrier()`.
///
/// # Errors
/// Without a default group, or as [`ProcessGroup::barrier`].
pub fn barrier() -> Result<()> {
    default_or_err("barrier")?.barrier()
}

/// [`ProcessGroup::broadcast`] on the default group, like `dist.broadcast(t, src)`.
///
/// # Errors
/// Without a default group, or as [`ProcessGroup::broadcast`].
pub fn broadcast(t: &Tensor, src: usize) -> Result<()> {
    default_or_err("broadcast")?.broadcast(t, src)
}

/// [`ProcessGroup::all_reduce`] on the default group, like `dist.all_reduce(t, op)`.
///
/// # Errors
/// Without a default group, or as [`ProcessGroup::all_reduce`].
pub fn all_reduce(t: &Tensor, op: ReduceOp) -> Result<()> {
    default_or_err("all_reduce")?.all_reduce(t, op)
}

/// [`ProcessGroup::all_gather`] on the default group, like `dist.all_gather(list, t)`.
///
/// # Errors
/// Without a default group, or as [`ProcessGroup::all_gather`].
pub fn all_gather(t: &Tensor) -> Result<Vec<Tensor>> {
    default_or_err("all_gather")?.all_gather(t)
}

/// [`ProcessGroup::reduce_scatter`] on the default group, like
/// `dist.reduce_scatter_tensor(out, t, op)`.
///
/// # Errors
/// Without a default group, or as [`ProcessGroup::reduce_scatter`].
pub fn reduce_scatter(t: &Tensor, op: ReduceOp) -> Result<Tensor> {
    default_or_err("reduce_scatter")?.reduce_scatter(t, op)
}

pub mod ddp;
pub mod sync_batch_norm;
pub use ddp::{DdpOptions, DistributedDataParallel, NoSync};
pub use sync_batch_norm::{all_reduce_with_grad, SyncBatchNorm};
