//! var and std, over all elements or over dims, biased (÷ N) or unbiased (÷ N − 1).

use crate::autograd::tape::Attr;
use crate::tensor::args::{norm_dims, Dims};
use crate::tensor::{Data, Float, Tensor};

use super::{fold_chunks, kept_shape, record, reduce_lanes, sum_slice};

/// The variance of a lane, two-pass (mean first, then squared deviations), divided by
/// `max(N - ddof, 0)` as PyTorch does (NaN for a single element with `ddof = 1`).
fn lane_var<F: Float>(s: &[F], ddof: usize) -> F {
    let n = F::c(s.len() as f64);
    let mean = sum_slice(s) / n;
    let ss = fold_chunks(
        s,
        |c, _| c.iter().map(|&v| (v - mean) * (v - mean)).sum(),
        |a: F, b| a + b,
    )
    .unwrap_or_else(F::zero);
    ss / F::c(s.len().saturating_sub(ddof) as f64)
}

/// The number the sum of squared deviations is divided by.
fn divisor(shape: &[usize], dims: &[usize], unbiased: bool) -> f64 {
    let n: usize = dims.iter().map(|&d| shape[d]).product();
    n.saturating_sub(unbiased as usize) as f64
}

/// var (`sqrt = false`) or std over `dims`, recorded as one tape entry.
#[track_caller]
fn var_impl(x: &Tensor, dims: Vec<usize>, unbiased: bool, keepdim: bool, sqrt: bool) -> Tensor {
    let name = if sqrt { "std" } else { "var" };
    let inputs = [x];
    let rec = record(name, &inputs, &dims, keepdim).attr("unbiased", Attr::Bool(unbiased));
    let ddof = unbiased as usize;
    let out = x.with_data(|d| {
        crate::with_float!(d, name, |a: F| {
            let v = reduce_lanes(a, &dims, keepdim, |s| lane_var(s, ddof));
            Data::from(if sqrt {
                v.mapv(F::sqrt).into_shared()
            } else {
                v
            })
        })
    });
    let kept = kept_shape(x.shape(), &dims);
    let div = divisor(x.shape(), &dims, unbiased);
    rec.save(x).save_output().finish(out, move |ctx, g| {
        let mut gv = g.reshape(&kept);
        if sqrt {
            // d√v/dv = 1 / (2√v), taken as 0 where the std is 0 (PyTorch's subgradient)
            let s = ctx.output().reshape(&kept);
            let zero = s.eq_scalar(0.0);
            gv = (gv / (s.masked_fill(&zero, 1.0) * 2.0)).masked_fill(&zero, 0.0);
        }
        // d var / dx_i = 2 (x_i - mean) / divisor
        let x = ctx.saved(0);
        let centered = &x - x.mean_dim(&dims, true);
        vec![Some(gv * centered * (2.0 / div))]
    })
}

impl Tensor {
    /// The variance of all elements, like `x.var(unbiased=...)`: the mean squared deviation from
    /// the mean, divided by `N - 1` when `unbiased` (Bessel's correction) and by `N` otherwise.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let x = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[4]);
    /// assert_eq!(x.var(false).item(), 1.25); // Σ (x - 2.5)² / 4
    /// assert_eq!(x.var(true).item(), (5.0f32 / 3.0) as f64); // Σ (x - 2.5)² / 3
    /// ```
    ///
    /// # Panics
    /// If the tensor is not floating point.
    #[track_caller]
    pub fn var(&self, unbiased: bool) -> Tensor {
        var_impl(self, (0..self.ndim()).collect(), unbiased, false, false)
    }

    /// The variance over `dims`, like `x.var(dims, unbiased=..., keepdim=...)`.
    ///
    /// # Panics
    /// If a dim is out of range or repeated, or the tensor is not floating point.
    #[track_caller]
    pub fn var_dim(&self, dims: impl Dims, unbiased: bool, keepdim: bool) -> Tensor {
        let dims = norm_dims("var", &dims.to_isizes(), self.ndim());
        var_impl(self, dims, unbiased, keepdim, false)
    }

    /// The standard deviation of all elements (the square root of [`var`](Tensor::var)), like
    /// `x.std(unbiased=...)`. Where it is 0 its gradient is taken as 0, as in PyTorch.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let x = Tensor::from_vec(vec![1.0, 3.0], &[2]);
    /// assert_eq!(x.std(false).item(), 1.0);
    /// ```
    ///
    /// # Panics
    /// If the tensor is not floating point.
    #[track_caller]
    pub fn std(&self, unbiased: bool) -> Tensor {
        var_impl(self, (0..self.ndim()).collect(), unbiased, false, true)
    }

    /// The standard deviation over `dims`, like `x.std(dims, unbiased=..., keepdim=...)`.
    ///
    /// # Panics
    /// If a dim is out of range or repeated, or the tensor is not floating point.
    #[track_caller]
    pub fn std_dim(&self, dims: impl Dims, unbiased: bool, keepdim: bool) -> Tensor {
        let dims = norm_dims("std", &dims.to_isizes(), self.ndim());
        var_impl(self, dims, unbiased, keepdim, true)
    }
}

#[cfg(test)]
mod tests {
    use crate::prelude::*;
    use crate::testing::{randn64, randn64_t};

    #[test]
    fn var_std_values() {
        // rows [1, 2, 3] and [4, 6, 8]: means 2 and 6, Σ squared deviations 2 and 8
        let x = Tensor::from_vec_f64(vec![1.0, 2.0, 3.0, 4.0, 6.0, 8.0], &[2, 3]);
        assert_eq!(x.var_dim(1, true, false).to_vec::<f64>(), vec![1.0, 4.0]);
        assert_eq!(
            x.var_dim(-1, false, true).to_vec::<f64>(),
            vec![2.0 / 3.0, 8.0 / 3.0]
        );
        assert_eq!(x.var_dim(-1, false, true).shape(), &[2, 1]);
        assert_eq!(x.std_dim(1, true, false).to_vec::<f64>(), vec![1.0, 2.0]);
        // column j holds x[0, j] and x[1, j], 3 + j apart: biased var (d/2)²
        assert_eq!(
            x.var_dim(0, false, false).to_vec::<f64>(),
            vec![2.25, 4.0, 6.25]
        );
        // all six: mean 4, Σ squared deviations 9 + 4 + 1 + 0 + 4 + 16 = 34
        assert!((x.var(true).item() - 34.0 / 5.0).abs() < 1e-12);
        assert!((x.std(false).item() - (34.0f64 / 6.0).sqrt()).abs() < 1e-12);
        assert!((x.t().var(true).item() - 34.0 / 5.0).abs() < 1e-12);
    }

    #[test]
    fn unbiased_var_of_one_element_is_nan_as_in_pytorch() {
        let x = Tensor::from_vec_f64(vec![3.0], &[1]);
        assert!(x.var(true).item().is_nan());
        assert_eq!(x.var(false).item(), 0.0);
    }

    #[test]
    fn var_std_gradcheck() {
        for x in [randn64(&[3, 4, 2], 1), randn64_t(&[4, 3, 2], 2)] {
            let x = std::slice::from_ref(&x);
            for unbiased in [false, true] {
                gradcheck(|x| x[0].var(unbiased), x).unwrap();
                gradcheck(|x| x[0].std(unbiased), x).unwrap();
                for keepdim in [false, true] {
                    gradcheck(|x| x[0].var_dim(1, unbiased, keepdim), x).unwrap();
                    gradcheck(|x| x[0].var_dim([0, -1], unbiased, keepdim), x).unwrap();
                    gradcheck(|x| x[0].std_dim(-2, unbiased, keepdim), x).unwrap();
                    gradcheck(|x| x[0].std_dim([2, 0], unbiased, keepdim), x).unwrap();
                }
            }
        }
    }

    #[test]
    fn var_gradient_values_and_second_order() {
        // v = Σ (x - m)² / N; dv/dx_i = 2 (x_i - m) / N; d²v/dx_i dx_j = 2 (δ_ij - 1/N) / N
        let x = Tensor::from_vec_f64(vec![1.0, 2.0, 6.0], &[3]).requires_grad();
        let dx = grad(&[&x.var(false)], &[&x], true).remove(0);
        // mean 3: deviations -2, -1, 3
        let want = [-4.0 / 3.0, -2.0 / 3.0, 2.0];
        for (a, b) in dx.to_vec::<f64>().iter().zip(want) {
            assert!((a - b).abs() < 1e-12);
        }
        let e0 = Tensor::from_vec_f64(vec![1.0, 0.0, 0.0], &[3]);
        let h0 = grad(&[&(&dx * e0).sum()], &[&x], false).remove(0);
        let want = [2.0 * (1.0 - 1.0 / 3.0) / 3.0, -2.0 / 9.0, -2.0 / 9.0];
        for (a, b) in h0.to_vec::<f64>().iter().zip(want) {
            assert!((a - b).abs() < 1e-12);
        }
        crate::ops::reduce::tests::check_second_order(
            |x| x.std_dim(0, true, false),
            &randn64(&[4, 2], 5),
        );
    }

    #[test]
    fn std_of_constant_input_has_zero_gradient() {
        // std is not differentiable at 0; PyTorch takes the gradient as 0 there, not NaN
        let x = Tensor::full_dtype(&[2, 3], 1.5, DType::F64).requires_grad();
        x.std(true).backward();
        assert_eq!(x.grad().unwrap().to_vec::<f64>(), vec![0.0; 6]);
    }

    #[test]
    #[should_panic(expected = "var: dimension out of range")]
    fn var_dim_out_of_range_names_the_op() {
        let _ = Tensor::zeros(&[2, 3]).var_dim(3, true, false);
    }

    #[test]
    #[should_panic(expected = "std: dim appears multiple times")]
    fn std_dim_with_a_repeated_dim_is_an_error() {
        let _ = Tensor::zeros(&[2, 3]).std_dim([0, -2], true, false);
    }
}
