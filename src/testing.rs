//! Helpers for tests: seeded f64 tensors, contiguous and not, and the skip policy for tests that
//! need an external component.

use crate::tensor::random::Generator;
use crate::tensor::Tensor;

/// A seeded standard-normal f64 tensor of `shape`.
pub fn randn64(shape: &[usize], seed: u64) -> Tensor {
    Tensor::randn_with(shape, &mut Generator::new(seed)).double()
}

/// A seeded standard-normal f64 tensor of `shape`, stored transposed (non-contiguous): made as the
/// reversed shape and permuted back.
pub fn randn64_t(shape: &[usize], seed: u64) -> Tensor {
    let rev: Vec<usize> = shape.iter().rev().copied().collect();
    let perm: Vec<usize> = (0..shape.len()).rev().collect();
    randn64(&rev, seed).permute(perm)
}

/// Whether this run is CI (`CI=true` or `CI=1`), where a missing external component fails a test.
pub fn is_ci() -> bool {
    matches!(std::env::var("CI").as_deref(), Ok("true") | Ok("1"))
}

/// Reports that `test` cannot run because an external component is missing.
///
/// Outside CI it prints `skipped: <test>: <what>` to stderr, so the skip is visible by name, and
/// returns; the caller then returns too. Under `CI=true` a missing component is a failure.
///
/// ```
/// fn finds_tensorboard() -> Option<std::path::PathBuf> { None }
/// let Some(_tb) = finds_tensorboard() else {
///     # if tapegrad::testing::is_ci() { return; }
///     tapegrad::testing::skip_missing("reads_events_with_tensorboard", "the tensorboard venv");
///     return;
/// };
/// ```
///
/// # Panics
/// When [`is_ci`] is true.
#[track_caller]
pub fn skip_missing(test: &str, what: &str) {
    if is_ci() {
        panic!("{test}: {what} is missing, and with CI=true a missing component is a failure");
    }
    eprintln!("skipped: {test}: {what}");
}
