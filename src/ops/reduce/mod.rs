//! Reductions: over all elements or over given dims, with `keepdim`, as in PyTorch.
//!
//! Each reduction's backward reshapes the incoming gradient to the kept-dims shape and expands it
//! back over the reduced dims ([`grad_to_input`]).

mod sum;

use ndarray::Dimension as _;
use ndarray::{Axis, IxDyn};

use crate::tensor::{Float, Storage, Tensor};

/// Sums `a` over `dims` (sorted ascending), keeping them as size-1 dims if `keepdim`.
pub(crate) fn sum_axes<F: Float>(a: &Storage<F>, dims: &[usize], keepdim: bool) -> Storage<F> {
    if dims.len() == a.ndim() && !keepdim {
        return ndarray::arr0(a.sum()).into_dyn().into_shared();
    }
    let mut r = a.to_owned();
    for &d in dims.iter().rev() {
        r = r.sum_axis(Axis(d));
    }
    if keepdim {
        for &d in dims {
            r = r.insert_axis(Axis(d));
        }
    }
    r.into_shared()
}

/// The shape of `shape` reduced over `dims` with `keepdim` true.
pub(crate) fn kept_shape(shape: &[usize], dims: &[usize]) -> Vec<usize> {
    shape
        .iter()
        .enumerate()
        .map(|(i, &s)| if dims.contains(&i) { 1 } else { s })
        .collect()
}

/// Brings the gradient of a reduction (shape with or without the reduced dims) back to the input
/// shape by reshaping to the kept-dims shape and expanding.
pub(crate) fn grad_to_input(g: &Tensor, input_shape: &IxDyn, dims: &[usize]) -> Tensor {
    if g.ndim() == 0 {
        // a full reduction: broadcasting a 0-d gradient needs no reshape
        return g.expand(input_shape.slice());
    }
    let kept = kept_shape(input_shape.slice(), dims);
    g.reshape(&kept).expand(input_shape.slice())
}
