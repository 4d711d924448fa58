//! Thread-local autograd modes: `no_grad`, `enable_grad` and anomaly detection, as RAII guards.

use std::cell::Cell;
use std::marker::PhantomData;
use std::panic::Location;

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
    static ANOMALY: Cell<bool> = const { Cell::new(false) };
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

/// Restores the previous grad mode when dropped. Made by [`no_grad`], [`enable_grad`] and
/// [`set_grad_enabled`]; not `Send`, because the mode belongs to the thread.
#[must_use = "the mode lasts only while the guard is alive: `let _g = no_grad();`"]
pub struct GradModeGuard {
    prev: bool,
    _not_send: PhantomData<*const ()>,
}

impl Drop for GradModeGuard {
    fn drop(&mut self) {
        GRAD_ENABLED.with(|g| g.set(self.prev));
    }
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
    let prev = GRAD_ENABLED.with(|g| g.replace(enabled));
    GradModeGuard {
        prev,
        _not_send: PhantomData,
    }
}

/// Whether ops are currently recorded on this thread.
pub fn is_grad_enabled() -> bool {
    GRAD_ENABLED.with(|g| g.get())
}

/// Restores the previous anomaly mode when dropped.
#[must_use = "anomaly detection lasts only while the guard is alive"]
pub struct AnomalyGuard {
    prev: bool,
    _not_send: PhantomData<*const ()>,
}

impl Drop for AnomalyGuard {
    fn drop(&mut self) {
        ANOMALY.with(|a| a.set(self.prev));
    }
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
    let prev = ANOMALY.with(|a| a.replace(true));
    AnomalyGuard {
        prev,
        _not_send: PhantomData,
    }
}

/// Whether anomaly detection is on for this thread.
pub fn is_anomaly_enabled() -> bool {
    ANOMALY.with(|a| a.get())
}
