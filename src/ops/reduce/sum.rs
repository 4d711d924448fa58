//! sum, mean and sum_to (the reduction that undoes broadcasting).

use std::panic::Location;

use ndarray::{ArrayD, Axis, IxDyn};

use crate::tensor::args::{norm_dims, Dims};
use crate::tensor::{Data, Tensor};

use super::{grad_to_input, record, sum_axes};

impl Tensor {
    /// The sum of all elements, a 0-d tensor, like `x.sum()`. Int64 and bool tensors sum to
    /// int64 (with no gradient), as in PyTorch: `pred.eq(&y).sum()` counts the matches.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// assert_eq!(Tensor::from_vec(vec![1.0, 2.0, 3.0], &[3]).sum().item(), 6.0);
    /// ```
    #[track_caller]
    pub fn sum(&self) -> Tensor {
        let all: Vec<usize> = (0..self.ndim()).collect();
        sum_impl(self, &all, false)
    }

    /// The sum over `dims` (one dim or several; negative counts from the end), like
    /// `x.sum(dim, keepdim)`.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let x = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
    /// assert_eq!(x.sum_dim(1, false).to_vec::<f32>(), vec![6.0, 15.0]);
    /// assert_eq!(x.sum_dim([0, 1], true).shape(), &[1, 1]);
    /// ```
    ///
    /// # Panics
    /// If a dim is out of range or repeated.
    #[track_caller]
    pub fn sum_dim(&self, dims: impl Dims, keepdim: bool) -> Tensor {
        let dims = norm_dims("sum", &dims.to_isizes(), self.ndim());
        sum_impl(self, &dims, keepdim)
    }

    /// The mean of all elements, like `x.mean()`.
    #[track_caller]
    pub fn mean(&self) -> Tensor {
        let n = self.numel().max(1) as f64;
        self.sum() * (1.0 / n)
    }

    /// The mean over `dims`, like `x.mean(dim, keepdim)`.
    ///
    /// # Panics
    /// If a dim is out of range or repeated.
    #[track_caller]
    pub fn mean_dim(&self, dims: impl Dims, keepdim: bool) -> Tensor {
        let dims = norm_dims("mean", &dims.to_isizes(), self.ndim());
        let n: usize = dims.iter().map(|&d| self.shape()[d]).product();
        sum_impl(self, &dims, keepdim) * (1.0 / n.max(1) as f64)
    }

    /// Sums this tensor down to `shape`, the shape it was broadcast from: the reverse of
    /// [`expand`](Tensor::expand), used for the gradients of broadcasting ops.
    ///
    /// # Panics
    /// If this tensor's shape is not a broadcast of `shape`.
    #[track_caller]
    pub fn sum_to(&self, shape: &[usize]) -> Tensor {
        if self.shape() == shape {
            return self.clone();
        }
        let me = self.shape();
        let lead = me.len().checked_sub(shape.len());
        let ok = lead.is_some_and(|lead| {
            shape
                .iter()
                .enumerate()
                .all(|(i, &s)| s == me[lead + i] || s == 1)
        });
        if !ok {
            panic!(
                "sum_to: shape {me:?} is not a broadcast of {shape:?}, at {}",
                Location::caller()
            );
        }
        let lead = lead.unwrap();
        let dims: Vec<usize> = (0..me.len())
            .filter(|&i| i < lead || (shape[i - lead] == 1 && me[i] != 1))
            .collect();
        let summed = sum_impl(self, &dims, true);
        summed.reshape(shape)
    }
}

#[track_caller]
fn sum_impl(x: &Tensor, dims: &[usize], keepdim: bool) -> Tensor {
    let inputs = [x];
    let op = record("sum", &inputs, dims, keepdim);
    if let Some(out) = x.with_data(|d| int_sum(d, dims, keepdim)) {
        return op.finish_no_grad(out);
    }
    let out = x
        .with_data(|d| crate::with_float!(d, "sum", |a: F| Data::from(sum_axes(a, dims, keepdim))));
    let (shape, dims) = (IxDyn(x.shape()), dims.to_vec());
    // d(Σ x)/dx = 1 for every summed element: expand the gradient back
    op.finish(out, move |_, g| vec![Some(grad_to_input(g, &shape, &dims))])
}

/// The sum of an int64 or bool tensor as int64, as PyTorch gives (`(pred == y).sum()` counts);
/// `None` for floating-point data. Integers carry no gradient, so nothing is recorded.
fn int_sum(d: &Data, dims: &[usize], keepdim: bool) -> Option<Data> {
    let mut a: ArrayD<i64> = match d {
        Data::I64(a) => a.to_owned(),
        Data::Bool(b) => b.mapv(i64::from),
        _ => return None,
    };
    let mut sorted = dims.to_vec();
    sorted.sort_unstable();
    for &dim in sorted.iter().rev() {
        a = a.fold_axis(Axis(dim), 0i64, |acc, &v| acc.wrapping_add(v));
    }
    if keepdim {
        for &dim in &sorted {
            a.insert_axis_inplace(Axis(dim));
        }
    }
    Some(Data::I64(a.into_shared()))
}

#[cfg(test)]
mod tests {
    use crate::prelude::*;
    use crate::testing::{randn64, randn64_t};

    #[test]
    fn sum_and_mean_values() {
        let x = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
        assert_eq!(x.sum().shape(), &[] as &[usize]);
        assert_eq!(x.sum_dim(0, false).to_vec::<f32>(), vec![5.0, 7.0, 9.0]);
        assert_eq!(x.sum_dim(-1, true).shape(), &[2, 1]);
        assert_eq!(x.mean().item(), 3.5);
        assert_eq!(x.mean_dim(1, false).to_vec::<f32>(), vec![2.0, 5.0]);
    }

    #[test]
    fn integer_and_bool_sums_are_int64_like_pytorch() {
        // torch.tensor([[1, 2, 3], [4, 5, 6]]).sum(1) -> tensor([ 6, 15])
        let x = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).to_dtype(DType::I64);
        let s = x.sum_dim(1, false);
        assert_eq!((s.dtype(), s.to_vec::<i64>()), (DType::I64, vec![6, 15]));
        assert_eq!(x.sum_dim(0, true).shape(), &[1, 3]);
        assert_eq!(x.sum().item(), 21.0);
        // (pred == y).sum() counts the matches
        let pred = Tensor::from_vec(vec![1.0, 0.0, 2.0, 2.0], &[4]);
        let y = Tensor::from_vec(vec![1.0, 1.0, 2.0, 2.0], &[4]);
        let hits = pred.eq(&y).sum();
        assert_eq!((hits.dtype(), hits.item()), (DType::I64, 3.0));
    }

    #[test]
    fn sum_mean_gradcheck() {
        for x in [randn64(&[3, 4, 2], 1), randn64_t(&[4, 3], 2)] {
            gradcheck(|x| x[0].sum(), std::slice::from_ref(&x)).unwrap();
            gradcheck(|x| x[0].sum_dim(1, false), std::slice::from_ref(&x)).unwrap();
            gradcheck(|x| x[0].sum_dim([0, -1], true), std::slice::from_ref(&x)).unwrap();
            gradcheck(|x| x[0].mean(), std::slice::from_ref(&x)).unwrap();
            gradcheck(|x| x[0].mean_dim(0, true), std::slice::from_ref(&x)).unwrap();
        }
    }

    #[test]
    fn sum_to_undoes_broadcast() {
        let x = randn64(&[2, 3, 4], 3);
        assert_eq!(x.sum_to(&[3, 1]).shape(), &[3, 1]);
        gradcheck(|x| x[0].sum_to(&[3, 1]), &[x]).unwrap();
    }

    #[test]
    #[should_panic(expected = "sum: dimension out of range")]
    fn sum_over_a_missing_dim_names_the_op() {
        let _ = Tensor::zeros(&[2, 3]).sum_dim(2, false);
    }
}
