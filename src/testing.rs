//! Helpers for tests: seeded f64 tensors, contiguous and not.

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
