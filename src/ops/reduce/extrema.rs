//! max / min (over all elements, or along a dim with indices), amax / amin, argmax / argmin.
//!
//! As in PyTorch: NaN propagates (a lane holding a NaN reduces to NaN, and its index is the first
//! NaN's), ties pick the first occurrence, `max()` and `amax` split the gradient evenly among tied
//! elements, and `max_dim` sends it to the returned index only.

use crate::autograd::function::Op;
use crate::autograd::tape::Attr;
use crate::tensor::args::{norm_dims, Dim, Dims};
use crate::tensor::{Data, Float, Storage, Tensor};

use super::{check_nonempty, fold_chunks, index_mask, kept_shape, one_dim, record, reduce_lanes};

/// The largest (`MAX`) or smallest element of a non-empty slice and its position: the first one on
/// ties, the first NaN if there is one.
fn extreme<F: Float, const MAX: bool>(s: &[F]) -> (F, usize) {
    let better = |v: F, best: F| if MAX { v > best } else { v < best };
    let chunk = |c: &[F], off: usize| {
        let mut best = (c[0], 0);
        for (i, &v) in c.iter().enumerate() {
            if v.is_nan() {
                best = (v, i);
                break;
            }
            if better(v, best.0) {
                best = (v, i);
            }
        }
        (best.0, best.1 + off)
    };
    // chunks combine left to right, so an earlier chunk wins ties and an earlier NaN stays
    let combine = |a: (F, usize), b: (F, usize)| {
        if !a.0.is_nan() && (b.0.is_nan() || better(b.0, a.0)) {
            b
        } else {
            a
        }
    };
    fold_chunks(s, chunk, combine).expect("extreme: emptiness was checked")
}

/// `(extreme value, index)` of each lane of `a` over `dims`.
fn extremes<F: Float>(
    a: &Storage<F>,
    dims: &[usize],
    keepdim: bool,
    max: bool,
) -> Storage<(F, usize)> {
    if max {
        reduce_lanes(a, dims, keepdim, extreme::<F, true>)
    } else {
        reduce_lanes(a, dims, keepdim, extreme::<F, false>)
    }
}

/// `(values, indices)` of the extremes of `x` over `dims`.
fn values_and_indices(
    x: &Tensor,
    op: &str,
    dims: &[usize],
    keepdim: bool,
    max: bool,
) -> (Data, Data) {
    x.with_data(|d| {
        crate::with_float!(d, op, |a: F| {
            let r = extremes(a, dims, keepdim, max);
            (
                Data::from(r.mapv(|p| p.0).into_shared()),
                Data::I64(r.mapv(|p| p.1 as i64).into_shared()),
            )
        })
    })
}

/// amax / amin (and max() / min()): the extreme over `dims`, with the gradient split evenly among
/// the elements equal to it (or among the NaNs when it is NaN), as PyTorch does.
#[track_caller]
fn amax_impl(x: &Tensor, op: &'static str, dims: Vec<usize>, keepdim: bool, max: bool) -> Tensor {
    check_nonempty(op, x.shape(), &dims);
    let inputs = [x];
    let rec = record(op, &inputs, &dims, keepdim);
    let (values, _) = values_and_indices(x, op, &dims, keepdim, max);
    let kept = kept_shape(x.shape(), &dims);
    rec.save(x).save_output().finish(values, move |ctx, g| {
        let x = ctx.saved(0);
        let y = ctx.output().reshape(&kept);
        let hit = x.eq(&y).logical_or(&x.ne(&x).logical_and(&y.ne(&y)));
        let hit = hit.to_dtype(x.dtype());
        let count = hit.sum_dim(&dims, true);
        vec![Some(g.reshape(&kept) * hit / count)]
    })
}

/// max_dim / min_dim: the values and indices along one dim; the gradient goes to the indexed
/// element only.
#[track_caller]
fn max_dim_impl(
    x: &Tensor,
    op: &'static str,
    dim: isize,
    keepdim: bool,
    max: bool,
) -> (Tensor, Tensor) {
    let dims = one_dim(op, dim, x.ndim());
    check_nonempty(op, x.shape(), &dims);
    let (values, indices) = values_and_indices(x, op, &dims, keepdim, max);
    let inputs = [x];
    // the indices are what argmax / argmin over the dim give (the first position on ties)
    let indices = record(
        if max { "argmax" } else { "argmin" },
        &inputs,
        &dims,
        keepdim,
    )
    .finish_no_grad(indices);
    let rec = Op::new(op, &inputs)
        .attr("dim", Attr::Int(dims.first().map_or(0, |&d| d as i64)))
        .attr("keepdim", Attr::Bool(keepdim));
    let (shape, kept) = (x.shape().to_vec(), kept_shape(x.shape(), &dims));
    let values = rec.save(&indices).finish(values, move |ctx, g| {
        let Some(&d) = dims.first() else {
            return vec![Some(g.clone())]; // a 0-d input is its own max
        };
        let mask = index_mask(&ctx.saved(0).reshape(&kept), d, &shape);
        let zero = Tensor::scalar_of(0.0, g.dtype());
        vec![Some(g.reshape(&kept).where_(&mask, &zero))]
    });
    (values, indices)
}

/// argmax / argmin over `dims` (not differentiable).
#[track_caller]
fn arg_impl(x: &Tensor, op: &'static str, dims: Vec<usize>, keepdim: bool, max: bool) -> Tensor {
    check_nonempty(op, x.shape(), &dims);
    let inputs = [x];
    let rec = record(op, &inputs, &dims, keepdim);
    rec.finish_no_grad(values_and_indices(x, op, &dims, keepdim, max).1)
}

fn all_dims(x: &Tensor) -> Vec<usize> {
    (0..x.ndim()).collect()
}

impl Tensor {
    /// The largest element, a 0-d tensor, like `x.max()`. NaN if any element is NaN. The gradient
    /// is split evenly among the elements equal to the maximum.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let x = Tensor::from_vec(vec![1.0, 3.0, 3.0], &[3]).requires_grad();
    /// let m = x.max();
    /// assert_eq!(m.item(), 3.0);
    /// m.backward();
    /// assert_eq!(x.grad().unwrap().to_vec::<f32>(), vec![0.0, 0.5, 0.5]);
    /// ```
    ///
    /// # Panics
    /// If the tensor is empty or not floating point.
    #[track_caller]
    pub fn max(&self) -> Tensor {
        amax_impl(self, "max", all_dims(self), false, true)
    }

    /// The smallest element, a 0-d tensor, like `x.min()`; see [`max`](Tensor::max).
    ///
    /// # Panics
    /// If the tensor is empty or not floating point.
    #[track_caller]
    pub fn min(&self) -> Tensor {
        amax_impl(self, "min", all_dims(self), false, false)
    }

    /// The largest values along `dim` and their positions (int64), like `torch.max(x, dim,
    /// keepdim)`. On ties the first position is returned. The gradient flows to that position
    /// only.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let x = Tensor::from_vec(vec![1.0, 5.0, 2.0, 7.0, 0.0, 7.0], &[2, 3]);
    /// let (values, indices) = x.max_dim(1, false);
    /// assert_eq!(values.to_vec::<f32>(), vec![5.0, 7.0]);
    /// assert_eq!(indices.to_vec::<i64>(), vec![1, 0]);
    /// ```
    ///
    /// # Panics
    /// If `dim` is out of range, has size 0, or the tensor is not floating point.
    #[track_caller]
    pub fn max_dim(&self, dim: impl Dim, keepdim: bool) -> (Tensor, Tensor) {
        max_dim_impl(self, "max_dim", dim.as_isize(), keepdim, true)
    }

    /// The smallest values along `dim` and their positions, like `torch.min(x, dim, keepdim)`;
    /// see [`max_dim`](Tensor::max_dim).
    ///
    /// # Panics
    /// If `dim` is out of range, has size 0, or the tensor is not floating point.
    #[track_caller]
    pub fn min_dim(&self, dim: impl Dim, keepdim: bool) -> (Tensor, Tensor) {
        max_dim_impl(self, "min_dim", dim.as_isize(), keepdim, false)
    }

    /// The maximum over `dims`, like `torch.amax(x, dims, keepdim)`. The gradient is split evenly
    /// among the elements equal to the maximum of their lane.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let x = Tensor::from_vec(vec![1.0, 5.0, 2.0, 7.0, 0.0, 7.0], &[2, 3]);
    /// assert_eq!(x.amax(0, false).to_vec::<f32>(), vec![7.0, 5.0, 7.0]);
    /// assert_eq!(x.amax([0, 1], true).shape(), &[1, 1]);
    /// ```
    ///
    /// # Panics
    /// If a dim is out of range, repeated or of size 0, or the tensor is not floating point.
    #[track_caller]
    pub fn amax(&self, dims: impl Dims, keepdim: bool) -> Tensor {
        let dims = norm_dims("amax", &dims.to_isizes(), self.ndim());
        amax_impl(self, "amax", dims, keepdim, true)
    }

    /// The minimum over `dims`, like `torch.amin(x, dims, keepdim)`; see
    /// [`amax`](Tensor::amax).
    ///
    /// # Panics
    /// If a dim is out of range, repeated or of size 0, or the tensor is not floating point.
    #[track_caller]
    pub fn amin(&self, dims: impl Dims, keepdim: bool) -> Tensor {
        let dims = norm_dims("amin", &dims.to_isizes(), self.ndim());
        amax_impl(self, "amin", dims, keepdim, false)
    }

    /// The position of the largest element in row-major order, a 0-d int64 tensor, like
    /// `x.argmax()`. The first one on ties; the first NaN if there is one.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let x = Tensor::from_vec(vec![1.0, 5.0, 2.0, 7.0, 0.0, 7.0], &[2, 3]);
    /// assert_eq!(x.argmax().to_vec::<i64>(), vec![3]);
    /// assert_eq!(x.argmax_dim(1, false).to_vec::<i64>(), vec![1, 0]);
    /// ```
    ///
    /// # Panics
    /// If the tensor is empty or not floating point.
    #[track_caller]
    pub fn argmax(&self) -> Tensor {
        arg_impl(self, "argmax", all_dims(self), false, true)
    }

    /// The position of the smallest element in row-major order, like `x.argmin()`; see
    /// [`argmax`](Tensor::argmax).
    ///
    /// # Panics
    /// If the tensor is empty or not floating point.
    #[track_caller]
    pub fn argmin(&self) -> Tensor {
        arg_impl(self, "argmin", all_dims(self), false, false)
    }

    /// The positions of the largest values along `dim` (int64), like `x.argmax(dim, keepdim)`.
    ///
    /// # Panics
    /// If `dim` is out of range or has size 0, or the tensor is not floating point.
    #[track_caller]
    pub fn argmax_dim(&self, dim: impl Dim, keepdim: bool) -> Tensor {
        let dims = one_dim("argmax", dim.as_isize(), self.ndim());
        arg_impl(self, "argmax", dims, keepdim, true)
    }

    /// The positions of the smallest values along `dim` (int64), like `x.argmin(dim, keepdim)`.
    ///
    /// # Panics
    /// If `dim` is out of range or has size 0, or the tensor is not floating point.
    #[track_caller]
    pub fn argmin_dim(&self, dim: impl Dim, keepdim: bool) -> Tensor {
        let dims = one_dim("argmin", dim.as_isize(), self.ndim());
        arg_impl(self, "argmin", dims, keepdim, false)
    }
}

#[cfg(test)]
mod tests {
    use crate::prelude::*;
    use crate::testing::{randn64, randn64_t};

    fn t(v: Vec<f64>, shape: &[usize]) -> Tensor {
        Tensor::from_vec_f64(v, shape)
    }

    #[test]
    fn max_min_over_all_values() {
        let x = t(vec![3.0, -1.0, 4.0, 1.0, -5.0, 9.0], &[2, 3]);
        assert_eq!(x.max().shape(), &[] as &[usize]);
        assert_eq!(x.max().item(), 9.0);
        assert_eq!(x.min().item(), -5.0);
        assert_eq!(x.t().max().item(), 9.0);
        assert_eq!(Tensor::scalar(2.5).max().item(), 2.5);
    }

    #[test]
    fn max_dim_values_and_first_index_on_ties() {
        let x = t(vec![1.0, 5.0, 5.0, 7.0, 0.0, 7.0], &[2, 3]);
        let (v, i) = x.max_dim(1, false);
        assert_eq!(v.to_vec::<f64>(), vec![5.0, 7.0]);
        assert_eq!(i.to_vec::<i64>(), vec![1, 0]);
        assert_eq!(i.dtype(), DType::I64);
        let (v, i) = x.min_dim(-2, true);
        assert_eq!(v.shape(), &[1, 3]);
        assert_eq!(v.to_vec::<f64>(), vec![1.0, 0.0, 5.0]);
        assert_eq!(i.to_vec::<i64>(), vec![0, 1, 0]);
        // a transposed input reduces in logical order
        let (v, i) = x.t().max_dim(0, false);
        assert_eq!(v.to_vec::<f64>(), vec![5.0, 7.0]);
        assert_eq!(i.to_vec::<i64>(), vec![1, 0]);
    }

    #[test]
    fn amax_amin_values() {
        let x = t(vec![1.0, 5.0, 2.0, 7.0, 0.0, 7.0], &[2, 3]);
        assert_eq!(x.amax(0, false).to_vec::<f64>(), vec![7.0, 5.0, 7.0]);
        assert_eq!(x.amin(-1, true).to_vec::<f64>(), vec![1.0, 0.0]);
        assert_eq!(x.amin(-1, true).shape(), &[2, 1]);
        assert_eq!(x.amax([0, 1], false).item(), 7.0);
    }

    #[test]
    fn argmax_argmin_are_int64_and_take_the_first_occurrence() {
        let x = t(vec![1.0, 7.0, 2.0, 7.0, -3.0, -3.0], &[2, 3]);
        let a = x.argmax();
        assert_eq!(a.dtype(), DType::I64);
        assert_eq!(a.shape(), &[] as &[usize]);
        assert_eq!(a.to_vec::<i64>(), vec![1]);
        assert_eq!(x.argmin().to_vec::<i64>(), vec![4]);
        assert_eq!(x.argmax_dim(0, false).to_vec::<i64>(), vec![1, 0, 0]);
        assert_eq!(x.argmin_dim(-1, true).to_vec::<i64>(), vec![0, 1]);
        assert_eq!(x.argmin_dim(-1, true).shape(), &[2, 1]);
        // flat index in row-major order of the logical (transposed) tensor: [[1,7],[7,-3],[2,-3]]
        assert_eq!(x.t().argmin().to_vec::<i64>(), vec![3]);
        assert!(!x.requires_grad().argmax().requires_grad_enabled());
    }

    #[test]
    fn nan_propagates_like_pytorch() {
        let x = t(vec![1.0, f64::NAN, 3.0, 2.0, 0.0, f64::NAN], &[2, 3]);
        assert!(x.max().item().is_nan());
        assert!(x.min().item().is_nan());
        assert_eq!(x.argmax().to_vec::<i64>(), vec![1]);
        assert_eq!(x.argmin().to_vec::<i64>(), vec![1]);
        let (v, i) = x.max_dim(1, false);
        let v = v.to_vec::<f64>();
        assert!(v[0].is_nan() && v[1].is_nan());
        assert_eq!(i.to_vec::<i64>(), vec![1, 2]);
        let a = x.amin(0, false).to_vec::<f64>();
        assert!(!a[0].is_nan() && a[1].is_nan() && a[2].is_nan());
        // the gradient of a NaN maximum goes to the NaN
        let y = t(vec![1.0, f64::NAN, 3.0], &[3]).requires_grad();
        y.max().backward();
        assert_eq!(y.grad().unwrap().to_vec::<f64>(), vec![0.0, 1.0, 0.0]);
    }

    #[test]
    fn large_lanes_give_first_index_across_chunks() {
        // 3 lanes of 20000 (above PAR_THRESHOLD in total): the maximum appears twice in each lane,
        // in different chunks; the first wins whatever the thread count.
        let n = 20000;
        let mut v = vec![0.0; 3 * n];
        for (lane, pos) in [(0, 5000), (1, 100), (2, 12000)] {
            v[lane * n + pos] = 2.0;
            v[lane * n + pos + 4500] = 2.0;
        }
        v[2 * n + 19999] = f64::NAN;
        let x = t(v, &[3, n]);
        assert_eq!(
            x.argmax_dim(1, false).to_vec::<i64>(),
            vec![5000, 100, 19999]
        );
        assert_eq!(x.amax(1, false).to_vec::<f64>()[..2], [2.0, 2.0]);
        assert_eq!(x.argmax().to_vec::<i64>(), vec![2 * n as i64 + 19999]);
    }

    #[test]
    fn max_and_amax_split_the_gradient_among_ties() {
        // d max / dx_i = 1/k for each of the k elements equal to the max
        let x = t(vec![2.0, 1.0, 2.0, 2.0, 0.0, 3.0], &[2, 3]).requires_grad();
        x.max().backward();
        assert_eq!(
            x.grad().unwrap().to_vec::<f64>(),
            vec![0., 0., 0., 0., 0., 1.]
        );
        let x = t(vec![2.0, 1.0, 2.0, 2.0, 0.0, 3.0], &[2, 3]).requires_grad();
        x.amax(1, false).sum().backward();
        assert_eq!(
            x.grad().unwrap().to_vec::<f64>(),
            vec![0.5, 0., 0.5, 0., 0., 1.]
        );
        let x = t(vec![2.0, 2.0, 2.0, 2.0], &[4]).requires_grad();
        x.min().backward();
        assert_eq!(x.grad().unwrap().to_vec::<f64>(), vec![0.25; 4]);
    }

    #[test]
    fn max_dim_sends_the_gradient_to_the_index_only() {
        let x = t(vec![2.0, 1.0, 2.0, 0.0, 0.0, 3.0], &[2, 3]).requires_grad();
        let (v, _) = x.max_dim(1, false);
        (v * t(vec![10.0, 20.0], &[2])).sum().backward();
        assert_eq!(
            x.grad().unwrap().to_vec::<f64>(),
            vec![10., 0., 0., 0., 0., 20.]
        );
    }

    #[test]
    fn amax_amin_max_min_gradcheck() {
        for x in [randn64(&[3, 4, 2], 1), randn64_t(&[4, 3, 2], 2)] {
            let x = std::slice::from_ref(&x);
            gradcheck(|x| x[0].max(), x).unwrap();
            gradcheck(|x| x[0].min(), x).unwrap();
            gradcheck(|x| x[0].amax(1, false), x).unwrap();
            gradcheck(|x| x[0].amax([0, -1], true), x).unwrap();
            gradcheck(|x| x[0].amin(-2, true), x).unwrap();
            gradcheck(|x| x[0].amin([2, 0], false), x).unwrap();
        }
    }

    #[test]
    fn max_dim_min_dim_gradcheck() {
        for x in [randn64(&[3, 4, 2], 3), randn64_t(&[4, 3, 2], 4)] {
            let x = std::slice::from_ref(&x);
            for keepdim in [false, true] {
                gradcheck(|x| x[0].max_dim(1, keepdim).0, x).unwrap();
                gradcheck(|x| x[0].max_dim(-1, keepdim).0, x).unwrap();
                gradcheck(|x| x[0].min_dim(0, keepdim).0, x).unwrap();
                gradcheck(|x| x[0].min_dim(-3, keepdim).0, x).unwrap();
            }
        }
    }

    #[test]
    fn max_dim_of_a_0d_tensor_is_itself() {
        let x = Tensor::scalar_of(1.5, DType::F64).requires_grad();
        let (v, i) = x.max_dim(-1, false);
        assert_eq!((v.item(), i.to_vec::<i64>()), (1.5, vec![0]));
        v.backward();
        assert_eq!(x.grad().unwrap().item(), 1.0);
    }

    #[test]
    fn max_dim_gradient_is_differentiable_again() {
        // y = Σ max_dim(x)², dy/dx = 2 max at the index; d²y/dx² = 2 there
        let x = t(vec![1.0, 4.0, 3.0, 2.0], &[2, 2]).requires_grad();
        let y = x.max_dim(1, false).0.square().sum();
        let dx = grad(&[&y], &[&x], true).remove(0);
        assert_eq!(dx.to_vec::<f64>(), vec![0.0, 8.0, 3.0 * 2.0, 0.0]);
        let ddx = grad(&[&dx.sum()], &[&x], false).remove(0);
        assert_eq!(ddx.to_vec::<f64>(), vec![0.0, 2.0, 2.0, 0.0]);
    }

    #[test]
    #[should_panic(expected = "max_dim: dimension out of range")]
    fn max_dim_out_of_range_names_the_op() {
        let _ = Tensor::zeros(&[2, 3]).max_dim(2, false);
    }

    #[test]
    #[should_panic(expected = "argmin: dimension out of range")]
    fn argmin_dim_out_of_range_names_the_op() {
        let _ = Tensor::zeros(&[2, 3]).argmin_dim(-3, false);
    }

    #[test]
    #[should_panic(expected = "amax: dim appears multiple times")]
    fn amax_with_a_repeated_dim_is_an_error() {
        let _ = Tensor::zeros(&[2, 3]).amax([1, -1], false);
    }

    #[test]
    #[should_panic(expected = "max: cannot reduce over dim 0 of size 0")]
    fn max_of_an_empty_tensor_is_an_error() {
        let _ = Tensor::zeros(&[0, 3]).max();
    }

    #[test]
    #[should_panic(expected = "extrema.rs")]
    fn empty_reduction_errors_point_at_the_caller() {
        let _ = Tensor::zeros(&[2, 0]).argmax_dim(1, false);
    }

    #[test]
    fn reducing_a_non_empty_dim_of_an_empty_tensor_is_fine() {
        let (v, i) = Tensor::zeros(&[0, 3]).max_dim(1, false);
        assert_eq!(
            (v.shape(), i.shape()),
            (&[0usize] as &[usize], &[0usize] as &[usize])
        );
    }
}
