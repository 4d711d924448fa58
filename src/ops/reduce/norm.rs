//! Vector p-norms: `norm` (2-norm of all elements), `norm_p`, `norm_dim`.

use std::panic::Location;

use crate::autograd::tape::Attr;
use crate::tensor::args::{norm_dims, Dims};
use crate::tensor::{Data, Float, Tensor};

use super::{fold_chunks, kept_shape, record, reduce_lanes};

/// `Σ f(v)` over a lane, in fixed chunks.
fn sum_of<F: Float>(s: &[F], f: impl Fn(F) -> F + Sync + Send) -> F {
    fold_chunks(s, |c, _| c.iter().map(|&v| f(v)).sum(), |a: F, b| a + b).unwrap_or_else(F::zero)
}

/// The larger of `m` and `a`, NaN if either is.
fn nan_max<F: Float>(m: F, a: F) -> F {
    if m.is_nan() || a <= m {
        m
    } else {
        a
    }
}

/// The p-norm of a lane.
fn lane_norm<F: Float>(s: &[F], p: f64) -> F {
    if p == f64::INFINITY {
        fold_chunks(
            s,
            |c, _| c.iter().fold(F::zero(), |m, &v| nan_max(m, v.abs())),
            nan_max,
        )
        .unwrap_or_else(F::zero)
    } else if p == 1.0 {
        sum_of(s, F::abs)
    } else if p == 2.0 {
        sum_of(s, |v| v * v).sqrt()
    } else {
        let pf = F::c(p);
        sum_of(s, |v| v.abs().powf(pf)).powf(F::c(1.0 / p))
    }
}

/// The p-norm over `dims`, one tape entry.
#[track_caller]
fn norm_impl(x: &Tensor, p: f64, dims: Vec<usize>, keepdim: bool) -> Tensor {
    if p.is_nan() || p <= 0.0 {
        panic!(
            "norm: p must be positive or infinity, got {p}, at {}",
            Location::caller()
        );
    }
    let inputs = [x];
    let rec = record("norm", &inputs, &dims, keepdim).attr("p", Attr::Float(p));
    let out = x.with_data(|d| {
        crate::with_float!(d, "norm", |a: F| Data::from(reduce_lanes(
            a,
            &dims,
            keepdim,
            |s| lane_norm(s, p)
        )))
    });
    let kept = kept_shape(x.shape(), &dims);
    rec.save(x).save_output().finish(out, move |ctx, g| {
        let x = ctx.saved(0);
        let g = g.reshape(&kept);
        let n = ctx.output().reshape(&kept);
        // a lane of norm 0 holds only zeros: dividing by 1 instead gives its gradient 0, PyTorch's
        // subgradient, instead of 0/0
        let safe_n = n.masked_fill(&n.eq_scalar(0.0), 1.0);
        let gx = if p == 1.0 {
            // d Σ|x| / dx_i = sign(x_i)
            g * x.sign()
        } else if p == 2.0 {
            // d ‖x‖ / dx_i = x_i / ‖x‖
            g * &x / safe_n
        } else if p == f64::INFINITY {
            // the gradient of max |x| is split evenly among the elements reaching it
            let hit = x.abs().eq(&n).to_dtype(x.dtype());
            let count = hit.sum_dim(&dims, true);
            g * x.sign() * hit / count
        } else {
            // d ‖x‖_p / dx_i = sign(x_i) |x_i|^(p-1) / ‖x‖^(p-1)
            let abs = x.abs().masked_fill(&x.eq_scalar(0.0), 1.0);
            g * x.sign() * abs.powf(p - 1.0) / safe_n.powf(p - 1.0)
        };
        vec![Some(gx)]
    })
}

impl Tensor {
    /// The 2-norm (Frobenius norm) of all elements, `√Σ x²`, like `x.norm()`. Its gradient at an
    /// all-zero tensor is 0, as in PyTorch.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// assert_eq!(Tensor::from_vec(vec![3.0, 4.0], &[2]).norm().item(), 5.0);
    /// ```
    ///
    /// # Panics
    /// If the tensor is not floating point.
    #[track_caller]
    pub fn norm(&self) -> Tensor {
        norm_impl(self, 2.0, (0..self.ndim()).collect(), false)
    }

    /// The p-norm of all elements, `(Σ |x|^p)^(1/p)`, like `x.norm(p)`; `f64::INFINITY` gives
    /// `max |x|`.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let x = Tensor::from_vec(vec![3.0, -4.0], &[2]);
    /// assert_eq!(x.norm_p(1.0).item(), 7.0);
    /// assert_eq!(x.norm_p(f64::INFINITY).item(), 4.0);
    /// ```
    ///
    /// # Panics
    /// If `p` is not positive (or is NaN), or the tensor is not floating point.
    #[track_caller]
    pub fn norm_p(&self, p: f64) -> Tensor {
        norm_impl(self, p, (0..self.ndim()).collect(), false)
    }

    /// The p-norm over `dims`, like `x.norm(p, dims, keepdim)`.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let x = Tensor::from_vec(vec![3.0, 4.0, 0.0, 2.0], &[2, 2]);
    /// assert_eq!(x.norm_dim(2.0, 1, false).to_vec::<f32>(), vec![5.0, 2.0]);
    /// ```
    ///
    /// # Panics
    /// If `p` is not positive (or is NaN), a dim is out of range or repeated, or the tensor is
    /// not floating point.
    #[track_caller]
    pub fn norm_dim(&self, p: f64, dims: impl Dims, keepdim: bool) -> Tensor {
        let dims = norm_dims("norm", &dims.to_isizes(), self.ndim());
        norm_impl(self, p, dims, keepdim)
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::reduce::tests::check_second_order;
    use crate::prelude::*;
    use crate::testing::{randn64, randn64_t};

    const PS: [f64; 5] = [1.0, 2.0, 3.0, 0.5, f64::INFINITY];

    #[test]
    fn norm_values() {
        let x = Tensor::from_vec_f64(vec![3.0, -4.0, 0.0, 1.0, -2.0, 2.0], &[2, 3]);
        // Σ x² = 9 + 16 + 1 + 4 + 4 = 34
        assert!((x.norm().item() - 34f64.sqrt()).abs() < 1e-12);
        assert_eq!(x.norm_p(1.0).item(), 12.0);
        assert_eq!(x.norm_p(f64::INFINITY).item(), 4.0);
        // (Σ |x|³)^(1/3) = (27 + 64 + 1 + 8 + 8)^(1/3)
        assert!((x.norm_p(3.0).item() - 108f64.cbrt()).abs() < 1e-12);
        // (Σ |x|^½)² by rows: (√3 + 2)², (1 + 2√2)²
        let half = x.norm_dim(0.5, 1, false).to_vec::<f64>();
        assert!((half[0] - (3f64.sqrt() + 2.0).powi(2)).abs() < 1e-12);
        assert!((half[1] - (1.0 + 2.0 * 2f64.sqrt()).powi(2)).abs() < 1e-12);
        assert_eq!(x.norm_dim(2.0, -1, true).shape(), &[2, 1]);
        assert_eq!(
            x.norm_dim(1.0, 0, false).to_vec::<f64>(),
            vec![4.0, 6.0, 2.0]
        );
        assert_eq!(
            x.t().norm_dim(f64::INFINITY, 0, false).to_vec::<f64>(),
            vec![4.0, 2.0]
        );
        assert!(Tensor::from_vec_f64(vec![1.0, f64::NAN], &[2])
            .norm_p(f64::INFINITY)
            .item()
            .is_nan());
    }

    #[test]
    fn norm_gradcheck() {
        for x in [randn64(&[3, 4, 2], 1), randn64_t(&[4, 3, 2], 2)] {
            let x = std::slice::from_ref(&x);
            gradcheck(|x| x[0].norm(), x).unwrap();
            for p in PS {
                gradcheck(|x| x[0].norm_p(p), x).unwrap();
                for keepdim in [false, true] {
                    gradcheck(|x| x[0].norm_dim(p, 1, keepdim), x).unwrap();
                    gradcheck(|x| x[0].norm_dim(p, [0, -1], keepdim), x).unwrap();
                }
            }
        }
    }

    #[test]
    fn norm_gradient_at_zero_is_zero_not_nan() {
        for p in PS {
            let x = Tensor::zeros_dtype(&[2, 3], DType::F64).requires_grad();
            x.norm_p(p).backward();
            assert_eq!(x.grad().unwrap().to_vec::<f64>(), vec![0.0; 6], "p = {p}");
            // one zero lane among non-zero ones
            let x = Tensor::from_vec_f64(vec![0.0, 0.0, 3.0, 4.0], &[2, 2]).requires_grad();
            x.norm_dim(p, 1, false).sum().backward();
            let g = x.grad().unwrap().to_vec::<f64>();
            assert_eq!(&g[..2], &[0.0, 0.0], "p = {p}");
            assert!(g.iter().all(|v| v.is_finite()), "p = {p}");
        }
    }

    #[test]
    fn norm_gradient_values() {
        // d‖x‖₂/dx = x/‖x‖; d‖x‖₁/dx = sign x; d‖x‖∞/dx = sign x at the largest |x|
        let x = Tensor::from_vec_f64(vec![3.0, -4.0], &[2]).requires_grad();
        let g = |p: f64| {
            grad(&[&x.norm_p(p)], &[&x], false)
                .remove(0)
                .to_vec::<f64>()
        };
        assert_eq!(g(2.0), vec![0.6, -0.8]);
        assert_eq!(g(1.0), vec![1.0, -1.0]);
        assert_eq!(g(f64::INFINITY), vec![0.0, -1.0]);
    }

    #[test]
    fn norm_second_order() {
        let x = randn64(&[3, 4], 3);
        check_second_order(|x| x.norm_dim(2.0, 1, false), &x);
        check_second_order(|x| x.norm_dim(3.0, -1, true), &x);
        check_second_order(|x| x.norm(), &randn64_t(&[3, 4], 4));
    }

    #[test]
    #[should_panic(expected = "norm: p must be positive or infinity, got -1")]
    fn norm_with_a_negative_p_is_an_error() {
        let _ = Tensor::zeros(&[2]).norm_p(-1.0);
    }

    #[test]
    #[should_panic(expected = "norm: dimension out of range")]
    fn norm_dim_out_of_range_names_the_op() {
        let _ = Tensor::zeros(&[2, 3]).norm_dim(2.0, 2, false);
    }
}
