//! Shape and layout ops. Most are views: they share the storage (no copy) and only change shape
//! and strides; the first write to either side copies (copy-on-write).
//!
//! - `view`: reshape / view / flatten, expand, permute / transpose / t, squeeze / unsqueeze,
//!   contiguous, dtype conversion;
//! - `slice`: narrow, slicing with steps, select, multi-dim indexing ([`crate::s!`]) and the
//!   embedding op that is their backward;
//! - `index`: index_select, index_add, gather, scatter_add (integer index tensors);
//! - `join`: cat, stack, split, chunk;
//! - `pad`: constant padding; `repeat`: tiling.

mod index;
mod join;
mod pad;
mod repeat;
mod slice;
mod view;

use std::panic::Location;

use crate::tensor::args::norm_dim;

// The argument type of `Tensor::index`, for `ops` (or the prelude) to re-export publicly.
pub use slice::SliceArg;

/// Resolves `dim` for an op that needs at least one dimension.
///
/// # Panics
/// If the tensor is 0-d or the dim is out of range, naming `op` and the caller.
#[track_caller]
pub(crate) fn dim_of(op: &str, dim: isize, shape: &[usize]) -> usize {
    if shape.is_empty() {
        panic!(
            "{op}: cannot be applied to a 0-dim tensor (dim {dim} was given), at {}",
            Location::caller()
        );
    }
    norm_dim(op, dim, shape.len())
}

/// `dy/dx` for the scalar `y = f(x)`, on the tape (so it can be differentiated again). Usable
/// inside `gradcheck`, whose numeric pass runs under `no_grad` with inputs that do not require
/// grad: then a fresh leaf is made so the first gradient can still be taken.
#[cfg(test)]
pub(crate) fn grad_of(
    x: &crate::Tensor,
    f: impl Fn(&crate::Tensor) -> crate::Tensor,
) -> crate::Tensor {
    let _on = crate::autograd::enable_grad();
    let x = if x.requires_grad_enabled() {
        x.clone()
    } else {
        x.detach().requires_grad()
    };
    crate::autograd::grad(&[&f(&x)], &[&x], true).remove(0)
}
