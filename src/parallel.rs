//! How many threads tapegrad's parallel kernels use (matrix products, large elementwise ops and
//! reductions), like `torch.set_num_threads` / `torch.get_num_threads`.
//!
//! The count is process-wide. It starts as the environment variable `TAPEGRAD_NUM_THREADS`, else
//! `RAYON_NUM_THREADS`, else the number of cores, and [`set_num_threads`] changes it at any time.
//! Parallel work runs on a rayon pool owned by tapegrad and sized to that count (not on rayon's
//! global pool, whose size cannot change once built), so a program's own rayon work does not
//! compete with tapegrad's for a fixed number of threads.
//!
//! Matrix products call matrixmultiply one thread per block and spread the blocks over this pool
//! themselves: that keeps small and batched products parallel too and lets the count change at run
//! time (matrixmultiply fixes its own thread count once per process). To that end tapegrad sets
//! `MATMUL_NUM_THREADS=1` before its first product unless the variable is already set; when a user
//! sets it, matrixmultiply's own threading is used as configured and tapegrad does not split
//! products.
//!
//! ```
//! use tapegrad::parallel::{get_num_threads, set_num_threads};
//! let before = get_num_threads();
//! set_num_threads(1); // e.g. when running several single-threaded workers side by side
//! assert_eq!(get_num_threads(), 1);
//! set_num_threads(before);
//! ```

use std::panic::Location;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Once, RwLock};

use rayon::{ThreadPool, ThreadPoolBuilder};

/// The thread count; 0 until first read or set.
static THREADS: AtomicUsize = AtomicUsize::new(0);

/// tapegrad's pool and the thread count it was built with (rebuilt when the count changes).
static POOL: RwLock<Option<(usize, Arc<ThreadPool>)>> = RwLock::new(None);

/// Whether matrixmultiply was left single-threaded for tapegrad to split products itself.
static GEMM_SPLIT: AtomicUsize = AtomicUsize::new(0);
static GEMM_INIT: Once = Once::new();

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

/// tapegrad's pool, sized to the current thread count.
fn pool() -> Arc<ThreadPool> {
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
            let p = Arc::new(
                ThreadPoolBuilder::new()
                    .num_threads(n)
                    .thread_name(|i| format!("tapegrad-{i}"))
                    .build()
                    .expect("tapegrad: could not start the worker threads"),
            );
            // The old pool's threads exit once the last task holding it finishes.
            *slot = Some((n, p.clone()));
            p
        }
    }
}

/// Runs `f` on tapegrad's pool: rayon parallel iterators inside `f` (ndarray's `par_*` methods
/// included) use [`get_num_threads`] threads. Called from a thread of that pool, `f` runs in place.
pub(crate) fn install<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    pool().install(f)
}

/// Whether work on `len` elements should be spread over threads: at least `threshold` elements and
/// more than one thread allowed by [`set_num_threads`].
pub(crate) fn worth_splitting(len: usize, threshold: usize) -> bool {
    len >= threshold && get_num_threads() > 1
}

/// Runs `task(i)` for `i in 0..tasks`, spread over tapegrad's pool (in place when `tasks <= 1`).
pub(crate) fn for_each_task(tasks: usize, task: impl Fn(usize) + Sync + Send) {
    use rayon::prelude::*;
    match tasks {
        0 => {}
        1 => task(0),
        _ => install(|| (0..tasks).into_par_iter().for_each(task)),
    }
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
pub(crate) static TEST_COUNT_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::Mutex;

    #[test]
    fn set_num_threads_changes_the_pool_size() {
        let _g = TEST_COUNT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let before = get_num_threads();
        for n in [1, 3] {
            set_num_threads(n);
            assert_eq!(get_num_threads(), n);
            assert_eq!(install(rayon::current_num_threads), n);
        }
        set_num_threads(before);
    }

    #[test]
    fn for_each_task_runs_every_task_once_on_pool_threads() {
        let _g = TEST_COUNT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let before = get_num_threads();
        set_num_threads(2);
        let seen = Mutex::new(Vec::new());
        let names = Mutex::new(HashSet::new());
        for_each_task(7, |i| {
            seen.lock().unwrap().push(i);
            let name = std::thread::current().name().map(str::to_owned);
            names.lock().unwrap().insert(name);
        });
        set_num_threads(before);
        let mut seen = seen.into_inner().unwrap();
        seen.sort();
        assert_eq!(seen, (0..7).collect::<Vec<_>>());
        let names = names.into_inner().unwrap();
        assert!(names
            .iter()
            .all(|n| n.as_deref().is_some_and(|n| n.starts_with("tapegrad-"))));
    }

    #[test]
    #[should_panic(expected = "set_num_threads: the number of threads must be at least 1, got 0")]
    fn zero_threads_is_an_error() {
        set_num_threads(0);
    }
}
