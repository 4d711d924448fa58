//! Thread-local autograd modes: `no_grad`, `enable_grad`, anomaly detection and tracing, as RAII
//! guards.

use std::cell::Cell;
use std::marker::PhantomData;
use std::panic::Location;
use std::thread::LocalKey;

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
    static ANOMALY: Cell<bool> = const { Cell::new(false) };
    static TRACING: Cell<bool> = const { Cell::new(false) };
    /// The tape entry whose backward rule is running (op name and the user's call site), so that
    /// anomalies found inside a rule name the op being differentiated.
    static IN_BACKWARD: Cell<Option<(&'static str, &'static Location<'static>)>> =
        const { Cell::new(None) };
}

/// Marks the backward rule of `op` (called at `loc`) as running until the guard drops.
pub(crate) fn enter_backward(op: &'static str, loc: &'static Location<'static>) -> impl Drop {
    struct Restore(Option<(&'static str, &'static Location<'static>)>);
    impl Drop for Restore {
        fn drop(&mut self) {
            IN_BACKWARD.with(|c| c.set(self.0));
        }
    }
    Restore(IN_BACKWARD.with(|c| c.replace(Some((op, loc)))))
}

/// The entry whose backward rule is running, if any.
pub(crate) fn in_backward() -> Option<(&'static str, &'static Location<'static>)> {
    IN_BACKWARD.with(|c| c.get())
}

/// Sets a thread-local mode flag and restores the value it found when dropped: what every guard
/// of this module holds. Not `Send`, because the modes belong to the thread.
struct FlagRestore {
    flag: &'static LocalKey<Cell<bool>>,
    prev: bool,
    _not_send: PhantomData<*const ()>,
}

impl FlagRestore {
    fn set(flag: &'static LocalKey<Cell<bool>>, value: bool) -> FlagRestore {
        FlagRestore {
            flag,
            prev: flag.with(|f| f.replace(value)),
            _not_send: PhantomData,
        }
    }
}

impl Drop for FlagRestore {
    fn drop(&mut self) {
        self.flag.with(|f| f.set(self.prev));
    }
}

/// Restores the previous grad mode when dropped. Made by [`no_grad`], [`enable_grad`] and
/// [`set_grad_enabled`]; not `Send`, because the mode belongs to the thread.
#[must_use = "the mode lasts only while the guard is alive: `let _g = no_grad();`"]
pub struct GradModeGuard {
    _restore: FlagRestore,
}

/// Disables gradient recording on this thread until the guard is dropped, like `torch.no_grad()`.
/// Guards nest; each restores the mode it found.
///
/// ```
/// use tapegrad::prelude::*;
/// let w = Tensor::ones(&[2]).requires_grad();
/// {
///     let _g = no_grad();
///     let y = &w * 2.0;
///     assert!(!y.requires_grad_enabled()); // nothing was recorded
/// }
/// assert!((&w * 2.0).requires_grad_enabled());
/// ```
pub fn no_grad() -> GradModeGuard {
    set_grad_enabled(false)
}

/// Re-enables gradient recording inside a [`no_grad`] region, like `torch.enable_grad()`.
pub fn enable_grad() -> GradModeGuard {
    set_grad_enabled(true)
}

/// Sets whether ops are recorded on this thread until the guard is dropped.
pub fn set_grad_enabled(enabled: bool) -> GradModeGuard {
    GradModeGuard {
        _restore: FlagRestore::set(&GRAD_ENABLED, enabled),
    }
}

/// Whether ops are currently recorded on this thread.
pub fn is_grad_enabled() -> bool {
    GRAD_ENABLED.with(|g| g.get())
}

/// Restores the previous anomaly mode when dropped.
#[must_use = "anomaly detection lasts only while the guard is alive"]
pub struct AnomalyGuard {
    _restore: FlagRestore,
}

/// Turns on anomaly detection on this thread until the guard is dropped, like
/// `torch.autograd.detect_anomaly()`: the first NaN or infinity produced by an op in forward, or by
/// a backward rule, panics with the op's name and the source line of the call that created it.
///
/// It costs a scan of every result, so use it while debugging.
///
/// ```should_panic
/// use tapegrad::prelude::*;
/// let _a = detect_anomaly();
/// let x = Tensor::from_vec(vec![-1.0], &[1]).requires_grad();
/// let _y = x.log(); // panics: "log ... produced NaN"
/// ```
pub fn detect_anomaly() -> AnomalyGuard {
    AnomalyGuard {
        _restore: FlagRestore::set(&ANOMALY, true),
    }
}

/// Whether anomaly detection is on for this thread.
pub fn is_anomaly_enabled() -> bool {
    ANOMALY.with(|a| a.get())
}

/// Restores the previous tracing mode when dropped. Made by [`tracing`].
#[must_use = "tracing lasts only while the guard is alive: `let _t = tracing();`"]
pub struct TracingGuard {
    _restore: FlagRestore,
}

/// Records every op on this thread's tape until the guard is dropped, like the tracer behind
/// `torch.jit.trace` / `torch.onnx.export`: also under [`no_grad`], in eval mode, and ops with no
/// differentiable input (comparisons, `argmax`, indexing of constant data). Tensors that are not
/// produced by an op (the model's input, parameters, constants made inside `forward`) appear as
/// inputs of the entries that use them, with their values (see
/// [`Input`](super::tape::Input)).
///
/// Entries recorded only because of tracing have no backward rule and do not make their outputs
/// require grad; `backward` never walks them. Backward passes run inside a tracing region are not
/// traced themselves. Read the result with [`TapeGraph::of`](super::graph::TapeGraph::of) or
/// [`tape::entry_of`](super::tape::entry_of) while the outputs are alive.
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::autograd::{self, tape};
/// let x = Tensor::from_vec(vec![1.0, -2.0], &[2]);
/// let y = {
///     let _t = autograd::tracing();
///     let _g = no_grad();
///     x.gt_scalar(0.0) // a comparison of constant data: recorded while tracing
/// };
/// let e = tape::entry_of(&y).unwrap();
/// assert_eq!(e.op, "gt");
/// assert!(!y.requires_grad_enabled());
/// ```
pub fn tracing() -> TracingGuard {
    set_tracing(true)
}

/// Sets whether every op is recorded on this thread until the guard is dropped (see [`tracing`]).
pub fn set_tracing(enabled: bool) -> TracingGuard {
    TracingGuard {
        _restore: FlagRestore::set(&TRACING, enabled),
    }
}

/// Runs `f` with [`tracing`] on and returns what it returns (keep the output tensors: their
/// entries, and the entries they depend on, live as long as they do).
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::autograd::{self, graph::TapeGraph};
/// let w = Tensor::ones(&[2, 2]);
/// let y = autograd::trace(|| w.matmul(&Tensor::ones(&[2, 1])).relu());
/// let g = TapeGraph::of(&[&y], &[]);
/// let ops: Vec<_> = g.ops().map(|(_, n)| n.op_name().unwrap()).collect();
/// assert_eq!(ops, ["matmul", "relu"]);
/// ```
pub fn trace<R>(f: impl FnOnce() -> R) -> R {
    let _t = tracing();
    f()
}

/// Whether every op is being recorded on this thread (see [`tracing`]).
pub fn is_tracing() -> bool {
    TRACING.with(|t| t.get())
}
