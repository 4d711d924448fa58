//! How many threads tapegrad's parallel kernels use (matrix products, large elementwise ops and
//! reductions), like `torch.set_num_threads` / `torch.get_num_threads`.
//!
//! The count is process-wide. It starts as the environment variable `TAPEGRAD_NUM_THREADS`, else
//! `RAYON_NUM_THREADS`, else the number of cores, and [`set_num_threads`] changes it at any time.
//!
//! Parallel work is a fork-join over `n` threads: the calling thread and `n - 1` helper threads
//! owned by tapegrad (named `tapegrad-0`, …). Between jobs the helpers spin for about a
//! millisecond before they sleep, as OpenMP's threads do under PyTorch: a training step runs many
//! short parallel ops with serial work between them, and waking a sleeping thread costs tens of
//! microseconds, more than many of those ops take. Spinning helpers use idle cores only (there is
//! one thread per core counting the caller); `TAPEGRAD_SPIN_US` sets the spin time in
//! microseconds (read once; 0 makes helpers sleep as soon as they are idle). A parallel call made while another is running (from
//! a second thread of the program, or from inside a task) runs serially on its caller.
//!
//! Matrix products call matrixmultiply one thread per block and spread the blocks over these
//! threads themselves: that keeps small and batched products parallel too and lets the count
//! change at run time (matrixmultiply fixes its own thread count once per process). To that end
//! tapegrad sets `MATMUL_NUM_THREADS=1` before its first product unless the variable is already
//! set; when a user sets it, matrixmultiply's own threading is used as configured and tapegrad
//! does not split products.
//!
//! ```
//! use tapegrad::parallel::{get_num_threads, set_num_threads};
//! let before = get_num_threads();
//! set_num_threads(1); // e.g. when running several single-threaded workers side by side
//! assert_eq!(get_num_threads(), 1);
//! set_num_threads(before);
//! ```

use std::any::Any;
use std::cell::Cell;
use std::mem::MaybeUninit;
use std::panic::{self, AssertUnwindSafe, Location};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once, OnceLock, RwLock};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// The thread count; 0 until first read or set.
static THREADS: AtomicUsize = AtomicUsize::new(0);

/// tapegrad's pool and the thread count it was built with (rebuilt when the count changes).
static POOL: RwLock<Option<(usize, Arc<Pool>)>> = RwLock::new(None);

/// Whether matrixmultiply was left single-threaded for tapegrad to split products itself.
static GEMM_SPLIT: AtomicUsize = AtomicUsize::new(0);
static GEMM_INIT: Once = Once::new();

/// The open flag of [`Shared::gate`].
const OPEN: usize = 1 << (usize::BITS - 1);

/// How long an idle helper spins, waiting for the next job, before it sleeps:
/// `TAPEGRAD_SPIN_US` microseconds (read once), 1000 by default.
fn spin_time() -> Duration {
    static SPIN: OnceLock<Duration> = OnceLock::new();
    *SPIN.get_or_init(|| {
        let us = std::env::var("TAPEGRAD_SPIN_US")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(1000);
        Duration::from_micros(us)
    })
}

thread_local! {
    /// Whether this thread is running a task of the pool (nested parallel calls run serially).
    static IN_TASK: Cell<bool> = const { Cell::new(false) };
}

/// Sets the number of threads tapegrad uses, like `torch.set_num_threads(n)`. It applies to the
/// whole process and takes effect for the next op.
///
/// # Panics
/// If `n` is 0.
#[track_caller]
pub fn set_num_threads(n: usize) {
    if n == 0 {
        panic!(
            "set_num_threads: the number of threads must be at least 1, got 0, at {}",
            Location::caller()
        );
    }
    THREADS.store(n, Ordering::Relaxed);
}

/// The number of threads tapegrad uses, like `torch.get_num_threads()`.
pub fn get_num_threads() -> usize {
    match THREADS.load(Ordering::Relaxed) {
        0 => {
            let n = default_threads();
            // Another thread may have set a count meanwhile; theirs wins.
            match THREADS.compare_exchange(0, n, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => n,
                Err(set) => set,
            }
        }
        n => n,
    }
}

/// `TAPEGRAD_NUM_THREADS`, else `RAYON_NUM_THREADS`, else the number of cores.
fn default_threads() -> usize {
    ["TAPEGRAD_NUM_THREADS", "RAYON_NUM_THREADS"]
        .iter()
        .find_map(|v| {
            std::env::var(v)
                .ok()
                .and_then(|s| s.trim().parse::<usize>().ok())
        })
        .filter(|&n| n > 0)
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
}

/// One parallel call: `tasks` tasks, taken in turn by whichever thread is free.
struct Job<'a> {
    tasks: usize,
    task: &'a (dyn Fn(usize) + Sync),
}

/// What the caller and the helpers share.
struct Shared {
    /// Bumped for each job (and at shutdown); helpers wait for it to change.
    epoch: AtomicU64,
    /// The current [`Job`], as an address (valid while `gate` is not 0).
    job: AtomicUsize,
    /// The next task to take.
    next: AtomicUsize,
    /// [`OPEN`] while helpers may join the current job, plus the number of helpers working on
    /// it. The caller closes it once it runs out of tasks and waits for the count to drain, so a
    /// helper that wakes late (descheduled, asleep) never holds the caller up: it finds the job
    /// closed and leaves it alone.
    gate: AtomicUsize,
    /// Per helper: whether it is asleep (then the caller wakes it).
    sleeping: Vec<AtomicBool>,
    threads: OnceLock<Vec<Thread>>,
    shutdown: AtomicBool,
    /// The first panic of a task on a helper, re-raised on the caller.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
}

impl Shared {
    /// Takes tasks of `job` until none is left. A panic skips the remaining tasks.
    fn work(&self, job: &Job) -> Result<(), Box<dyn Any + Send>> {
        let was = IN_TASK.with(|c| c.replace(true));
        let r = panic::catch_unwind(AssertUnwindSafe(|| loop {
            let t = self.next.fetch_add(1, Ordering::Relaxed);
            if t >= job.tasks {
                break;
            }
            (job.task)(t);
        }));
        IN_TASK.with(|c| c.set(was));
        if r.is_err() {
            self.next.store(usize::MAX / 2, Ordering::Relaxed);
        }
        r
    }

    /// Joins the current job if it is still open.
    fn join(&self) -> bool {
        let mut g = self.gate.load(Ordering::Acquire);
        while g & OPEN != 0 {
            match self
                .gate
                .compare_exchange_weak(g, g + 1, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return true,
                Err(now) => g = now,
            }
        }
        false
    }

    /// A helper's life: wait for a job (spinning, then asleep), work on it, repeat.
    fn helper(&self, i: usize) {
        // the epoch the pool was made with (a job may already be waiting when this thread starts)
        let mut seen = 0;
        let spin = spin_time();
        loop {
            let start = Instant::now();
            let mut spins = 0u32;
            loop {
                let e = self.epoch.load(Ordering::Acquire);
                if e != seen {
                    seen = e;
                    break;
                }
                spins = spins.wrapping_add(1);
                if spins >= 1 << 12 {
                    // a while without work: let other runnable threads go first
                    std::thread::yield_now();
                }
                if spins % 256 == 0 && start.elapsed() > spin {
                    // announce the sleep, then re-check: the caller bumps the epoch before it
                    // reads `sleeping`, so one of the two sees the other (both SeqCst)
                    self.sleeping[i].store(true, Ordering::SeqCst);
                    if self.epoch.load(Ordering::SeqCst) == seen {
                        std::thread::park();
                    }
                    self.sleeping[i].store(false, Ordering::SeqCst);
                } else {
                    std::hint::spin_loop();
                }
            }
            if self.shutdown.load(Ordering::Acquire) {
                return;
            }
            if !self.join() {
                continue;
            }
            // SAFETY: the caller keeps the job alive until `gate` drains to 0, after our
            // decrement below.
            let job = unsafe { &*(self.job.load(Ordering::Acquire) as *const Job) };
            if let Err(p) = self.work(job) {
                self.panic
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get_or_insert(p);
            }
            self.gate.fetch_sub(1, Ordering::Release);
        }
    }
}

/// The calling thread plus helper threads.
struct Pool {
    shared: Arc<Shared>,
    /// Held by the caller of the running job.
    busy: Mutex<()>,
}

impl Pool {
    fn new(threads: usize) -> Pool {
        let helpers = threads.saturating_sub(1);
        let shared = Arc::new(Shared {
            epoch: AtomicU64::new(0),
            job: AtomicUsize::new(0),
            next: AtomicUsize::new(0),
            gate: AtomicUsize::new(0),
            sleeping: (0..helpers).map(|_| AtomicBool::new(false)).collect(),
            threads: OnceLock::new(),
            shutdown: AtomicBool::new(false),
            panic: Mutex::new(None),
        });
        let threads: Vec<Thread> = (0..helpers)
            .map(|i| {
                let sh = shared.clone();
                std::thread::Builder::new()
                    .name(format!("tapegrad-{i}"))
                    .spawn(move || sh.helper(i))
                    .expect("tapegrad: could not start the worker threads")
                    .thread()
                    .clone()
            })
            .collect();
        let _ = shared.threads.set(threads);
        Pool {
            shared,
            busy: Mutex::new(()),
        }
    }

    /// Runs the job on the caller and the helpers; returns when every task has finished.
    fn run(&self, job: &Job) {
        let sh = &*self.shared;
        sh.job.store(job as *const Job as usize, Ordering::Relaxed);
        sh.next.store(0, Ordering::Relaxed);
        sh.gate.store(OPEN, Ordering::Release);
        sh.epoch.fetch_add(1, Ordering::SeqCst);
        for (i, t) in sh.threads.get().into_iter().flatten().enumerate() {
            if sh.sleeping[i].load(Ordering::SeqCst) {
                t.unpark();
            }
        }
        let mine = sh.work(job);
        // no task left: close the job, then wait for the helpers that joined it (they may still
        // read `job`), even when a task panicked here
        sh.gate.fetch_and(!OPEN, Ordering::AcqRel);
        let mut spins = 0u32;
        while sh.gate.load(Ordering::Acquire) != 0 {
            spins = spins.wrapping_add(1);
            if spins > 1 << 16 {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
        let theirs = sh.panic.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Err(p) = mine {
            panic::resume_unwind(p);
        }
        if let Some(p) = theirs {
            panic::resume_unwind(p);
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let sh = &*self.shared;
        sh.shutdown.store(true, Ordering::SeqCst);
        sh.epoch.fetch_add(1, Ordering::SeqCst);
        for t in sh.threads.get().into_iter().flatten() {
            t.unpark();
        }
    }
}

/// tapegrad's pool, sized to the current thread count.
fn pool() -> Arc<Pool> {
    let n = get_num_threads();
    if let Some((m, p)) = POOL.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
        if *m == n {
            return p.clone();
        }
    }
    let mut slot = POOL.write().unwrap_or_else(|e| e.into_inner());
    match slot.as_ref() {
        Some((m, p)) if *m == n => p.clone(),
        _ => {
            let p = Arc::new(Pool::new(n));
            *slot = Some((n, p.clone()));
            p
        }
    }
}

/// Whether work on `len` elements should be spread over threads: at least `threshold` elements and
/// more than one thread allowed by [`set_num_threads`].
pub(crate) fn worth_splitting(len: usize, threshold: usize) -> bool {
    len >= threshold && get_num_threads() > 1
}

/// Runs `task(i)` for every `i in 0..tasks`, spread over the calling thread and tapegrad's
/// helpers; returns when all have finished. Serially, in order, when there is one task or one
/// thread, from inside a task, or while another parallel call is running. A panic in a task is
/// re-raised here (after every thread has stopped).
pub(crate) fn for_each_task(tasks: usize, task: impl Fn(usize) + Sync) {
    if tasks <= 1 || get_num_threads() <= 1 || IN_TASK.with(Cell::get) {
        return (0..tasks).for_each(task);
    }
    let pool = pool();
    let Ok(_busy) = pool.busy.try_lock() else {
        return (0..tasks).for_each(task);
    };
    pool.run(&Job { tasks, task: &task });
}

/// `f(item)` for each item (moved into its task), spread over the threads.
pub(crate) fn for_each_item<T: Send>(items: Vec<T>, f: impl Fn(T) + Sync) {
    let slots: Vec<Mutex<Option<T>>> = items.into_iter().map(|t| Mutex::new(Some(t))).collect();
    for_each_task(slots.len(), |i| {
        let item = slots[i].lock().unwrap_or_else(|e| e.into_inner()).take();
        f(item.expect("each task takes its own item once"))
    });
}

/// Where to cut an n-d array of `shape` into blocks for the threads: `(axis, block length)`.
/// The outermost axis long enough for two blocks per thread (so that row-major blocks stay
/// contiguous), else the longest; about four blocks per thread.
pub(crate) fn split_axis(shape: &[usize]) -> (usize, usize) {
    let threads = get_num_threads();
    let (axis, &len) = shape
        .iter()
        .enumerate()
        .find(|&(_, &n)| n >= 2 * threads)
        .or_else(|| {
            shape
                .iter()
                .enumerate()
                .max_by_key(|&(i, &n)| (n, std::cmp::Reverse(i)))
        })
        .unwrap_or((0, &1));
    (axis, len.div_ceil(4 * threads).max(1))
}

/// A new array of `shape` written block by block, the blocks spread over the threads:
/// `fill(block, axis, start)` must write every element of `block`, the part of the output
/// along `axis` from index `start` (blocks cut by [`split_axis`]). The inputs of an elementwise
/// op are cut the same way with `slice_axis(axis, start..start + block.len_of(axis))`.
pub(crate) fn build_in_blocks<T: Send>(
    shape: &[usize],
    fill: impl Fn(ndarray::ArrayViewMutD<MaybeUninit<T>>, ndarray::Axis, usize) + Sync,
) -> ndarray::ArrayD<T> {
    let mut out = ndarray::ArrayD::<T>::uninit(ndarray::IxDyn(shape));
    if shape.is_empty() {
        fill(out.view_mut(), ndarray::Axis(0), 0);
    } else {
        let (axis, block) = split_axis(shape);
        let ax = ndarray::Axis(axis);
        let blocks: Vec<_> = out.axis_chunks_iter_mut(ax, block).enumerate().collect();
        for_each_item(blocks, |(i, b)| fill(b, ax, i * block));
    }
    // SAFETY: the blocks cover the output, and `fill` wrote every element of each.
    unsafe { out.assume_init() }
}

/// The part of `a` that matches a block from [`build_in_blocks`]: indices `start..start + len`
/// along `axis` (all of a 0-d array).
pub(crate) fn block_of<'a, T, D: ndarray::Dimension>(
    a: &'a ndarray::ArrayView<'a, T, D>,
    axis: ndarray::Axis,
    start: usize,
    len: usize,
) -> ndarray::ArrayView<'a, T, D> {
    if a.ndim() == 0 {
        a.view()
    } else {
        a.slice_axis(axis, (start..start + len).into())
    }
}

/// Raw pointers are not `Sync`; tasks writing disjoint parts of one buffer share its address.
struct SendPtr<T>(*mut T);
impl<T> SendPtr<T> {
    /// The address (a method, so that closures capture the whole `Sync` wrapper).
    fn get(&self) -> *mut T {
        self.0
    }
}
// SAFETY: used only to hand disjoint blocks of one buffer to the tasks of one call.
unsafe impl<T> Send for SendPtr<T> {}
unsafe impl<T> Sync for SendPtr<T> {}

/// `f(start, block)` for consecutive blocks `out[start..start + chunk]` (the last one shorter),
/// spread over the threads when `parallel`.
pub(crate) fn for_each_chunk_mut<T: Send>(
    out: &mut [T],
    chunk: usize,
    parallel: bool,
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    let (len, chunk) = (out.len(), chunk.max(1));
    if !parallel {
        return out
            .chunks_mut(chunk)
            .enumerate()
            .for_each(|(i, b)| f(i * chunk, b));
    }
    let base = SendPtr(out.as_mut_ptr());
    for_each_task(len.div_ceil(chunk), |i| {
        let start = i * chunk;
        let n = chunk.min(len - start);
        // SAFETY: task i alone gets out[start..start + n], inside `out`.
        f(start, unsafe {
            std::slice::from_raw_parts_mut(base.get().add(start), n)
        })
    });
}

/// A vector of `len` values written by `fill(start, block)` over consecutive blocks of `chunk`
/// (every slot of each block must be written), spread over the threads when `parallel`.
pub(crate) fn fill_vec<T: Send>(
    len: usize,
    chunk: usize,
    parallel: bool,
    fill: impl Fn(usize, &mut [MaybeUninit<T>]) + Sync,
) -> Vec<T> {
    let mut v = Vec::with_capacity(len);
    for_each_chunk_mut(&mut v.spare_capacity_mut()[..len], chunk, parallel, fill);
    // SAFETY: `fill` wrote every one of the first len slots.
    unsafe { v.set_len(len) };
    v
}

/// `f(i)` for `i in 0..len`, collected in order, spread over the threads when `parallel`.
pub(crate) fn map_collect<T: Send>(
    len: usize,
    parallel: bool,
    f: impl Fn(usize) -> T + Sync,
) -> Vec<T> {
    let chunk = len.div_ceil(4 * get_num_threads()).max(1);
    fill_vec(len, chunk, parallel, |start, block| {
        for (j, slot) in block.iter_mut().enumerate() {
            slot.write(f(start + j));
        }
    })
}

/// How many threads a matrix product may be split over by tapegrad: the thread count, or 1 when
/// the user configured matrixmultiply's own threading through `MATMUL_NUM_THREADS`.
///
/// The first call leaves matrixmultiply single-threaded (by setting `MATMUL_NUM_THREADS=1` when it
/// is unset) so that the blocks tapegrad spreads over its pool do not each start more threads.
/// matrixmultiply reads the variable once, at its first product, so this must run before any.
pub(crate) fn gemm_threads() -> usize {
    GEMM_INIT.call_once(|| {
        let user_set = std::env::var_os("MATMUL_NUM_THREADS").is_some_and(|v| !v.is_empty());
        if !user_set {
            std::env::set_var("MATMUL_NUM_THREADS", "1");
        }
        GEMM_SPLIT.store(usize::from(!user_set), Ordering::Relaxed);
    });
    if GEMM_SPLIT.load(Ordering::Relaxed) == 1 {
        get_num_threads()
    } else {
        1
    }
}

/// Tests that change the process-wide thread count take this lock, one at a time.
#[cfg(test)]
static TEST_COUNT_LOCK: Mutex<()> = Mutex::new(());

/// Runs `f` with the thread count set to `n`, then restores the count (also when `f` panics).
/// Tests that change the count take turns through it.
#[cfg(test)]
pub(crate) fn with_threads<R>(n: usize, f: impl FnOnce() -> R) -> R {
    struct Restore(usize);
    impl Drop for Restore {
        fn drop(&mut self) {
            set_num_threads(self.0);
        }
    }
    let _turn = TEST_COUNT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let _restore = Restore(get_num_threads());
    set_num_threads(n);
    f()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// The names of the threads that ran the tasks of one parallel call.
    fn thread_names(tasks: usize) -> HashSet<String> {
        let names = Mutex::new(HashSet::new());
        for_each_task(tasks, |_| {
            // long enough for every helper to join in
            std::thread::sleep(Duration::from_millis(2));
            let name = std::thread::current().name().unwrap_or("").to_owned();
            names.lock().unwrap().insert(name);
        });
        names.into_inner().unwrap()
    }

    #[test]
    fn set_num_threads_changes_the_pool_size() {
        let me = std::thread::current().name().unwrap_or("").to_owned();
        for n in [1, 3, 2] {
            with_threads(n, || {
                assert_eq!(get_num_threads(), n);
                // the caller and n - 1 helpers
                let mut want: HashSet<String> =
                    (0..n - 1).map(|i| format!("tapegrad-{i}")).collect();
                want.insert(me.clone());
                // (a parallel op of a test running alongside makes this call serial: try again)
                let got = (0..100).map(|_| thread_names(8 * n)).find(|g| *g == want);
                assert_eq!(got, Some(want), "{n} threads");
            });
        }
    }

    #[test]
    fn for_each_task_runs_every_task_once() {
        with_threads(2, || {
            for tasks in [0, 1, 2, 7, 1000] {
                let seen = Mutex::new(Vec::new());
                for_each_task(tasks, |i| seen.lock().unwrap().push(i));
                let mut seen = seen.into_inner().unwrap();
                seen.sort();
                assert_eq!(seen, (0..tasks).collect::<Vec<_>>());
            }
        });
    }

    #[test]
    fn nested_and_concurrent_calls_run_serially_and_finish() {
        with_threads(2, || {
            let count = AtomicUsize::new(0);
            std::thread::scope(|s| {
                for _ in 0..3 {
                    s.spawn(|| {
                        for _ in 0..50 {
                            for_each_task(4, |_| {
                                for_each_task(3, |_| {
                                    count.fetch_add(1, Ordering::Relaxed);
                                })
                            });
                        }
                    });
                }
            });
            assert_eq!(count.into_inner(), 3 * 50 * 4 * 3);
        });
    }

    #[test]
    fn a_panicking_task_panics_the_caller_and_the_pool_keeps_working() {
        with_threads(2, || {
            for bad in [0, 5] {
                let r = panic::catch_unwind(|| {
                    for_each_task(8, |i| {
                        std::thread::sleep(Duration::from_micros(200));
                        assert!(i != bad, "task {i} fails");
                    })
                });
                let msg = r.unwrap_err();
                let msg = msg.downcast_ref::<String>().cloned().unwrap_or_default();
                assert_eq!(msg, format!("task {bad} fails"));
            }
            let v = map_collect(1000, true, |i| i * 2);
            assert_eq!(v, (0..1000).map(|i| i * 2).collect::<Vec<_>>());
        });
    }

    #[test]
    fn blocks_cover_every_element_whichever_axis_is_cut() {
        with_threads(2, || {
            // cut along dim 0 (9 >= 4), along the longest (dim 2: no dim reaches 4 before it), 1-d
            for shape in [vec![9, 2, 3], vec![1, 3, 50], vec![1000]] {
                let src = ndarray::ArrayD::from_shape_fn(ndarray::IxDyn(&shape), |ix| {
                    ndarray::Dimension::slice(&ix)
                        .iter()
                        .fold(0usize, |acc, &i| acc * 100 + i)
                });
                let sv = src.view();
                let out = build_in_blocks(&shape, |o, ax, start| {
                    let x = block_of(&sv, ax, start, o.len_of(ax));
                    ndarray::Zip::from(o).and(&x).for_each(|o, &x| {
                        o.write(x);
                    })
                });
                assert_eq!(out, src, "{shape:?}");
            }
        });
    }

    #[test]
    fn chunked_fills_cover_every_element() {
        with_threads(3, || {
            for (len, chunk) in [(0, 4), (10, 3), (1000, 7), (5, 100)] {
                for parallel in [false, true] {
                    let v = fill_vec(len, chunk, parallel, |start, block| {
                        for (j, slot) in block.iter_mut().enumerate() {
                            slot.write(start + j);
                        }
                    });
                    assert_eq!(v, (0..len).collect::<Vec<_>>());
                }
            }
        });
    }

    #[test]
    #[should_panic(expected = "set_num_threads: the number of threads must be at least 1, got 0")]
    fn zero_threads_is_an_error() {
        set_num_threads(0);
    }
}
