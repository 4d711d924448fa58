//! logsumexp, softmax and log_softmax, computed stably by subtracting each lane's maximum first
//! (so inputs like 1000 do not overflow `exp`).

use crate::autograd::function::Op;
use crate::autograd::tape::Attr;
use crate::tensor::args::{norm_dims, Dim, Dims};
use crate::tensor::{Data, Element, Float, Tensor};
use num_traits::Zero;

use super::{fold_chunks, kept_shape, map_lanes, map_lanes2, one_dim, record, reduce_lanes};
use crate::ops::unary::vector_math::softmax_f32;

/// The lane's maximum, ignoring NaN (a NaN then propagates through `exp`), or 0 when it is
/// infinite, as in PyTorch: `exp(x - m)` stays finite for finite `x` and gives the right limit for
/// all `-inf` (0, so logsumexp is `-inf`) or some `+inf` (`+inf`).
fn shift<F: Float>(s: &[F]) -> F {
    let m = s.iter().fold(F::neg_infinity(), |m, &v| m.max(v));
    if m.is_infinite() {
        F::zero()
    } else {
        m
    }
}

/// `log Σ exp(x)` of a lane.
fn lane_logsumexp<F: Float>(s: &[F]) -> F {
    let m = shift(s);
    let sum = fold_chunks(
        s,
        |c, _| c.iter().map(|&v| (v - m).exp()).sum(),
        |a: F, b| a + b,
    );
    sum.unwrap_or_else(F::zero).ln() + m
}

/// `exp(x_i) / Σ exp(x)` of a lane (or its log when `LOG`).
fn lane_softmax<F: Float, const LOG: bool>(s: &[F], out: &mut [F]) {
    let m = s.iter().fold(F::neg_infinity(), |m, &v| m.max(v));
    let mut sum = F::zero();
    for (o, &v) in out.iter_mut().zip(s) {
        *o = (v - m).exp();
        sum += *o;
    }
    if LOG {
        let log_sum = sum.ln();
        for (o, &v) in out.iter_mut().zip(s) {
            *o = v - m - log_sum;
        }
    } else {
        out.iter_mut().for_each(|o| *o = *o / sum);
    }
}

/// softmax or log_softmax along `dims` (one dim, or none for a 0-d tensor), one tape entry.
#[track_caller]
fn softmax_impl(x: &Tensor, dims: Vec<usize>, log: bool) -> Tensor {
    let name = if log { "log_softmax" } else { "softmax" };
    let inputs = [x];
    let rec = Op::new(name, &inputs).attr("dim", Attr::Int(dims.first().map_or(0, |&d| d as i64)));
    let out = x.with_data(|d| match d {
        // the vectorised f32 kernel (exp_f32 in place of a libm call per element)
        Data::F32(a) if !log => Data::F32(map_lanes(a, &dims, softmax_f32)),
        d => crate::with_float!(d, name, |a: F| Data::from(if log {
            map_lanes(a, &dims, lane_softmax::<F, true>)
        } else {
            map_lanes(a, &dims, lane_softmax::<F, false>)
        })),
    });
    rec.save_output().finish(out, move |ctx, g| {
        let y = ctx.output();
        if !log && !ctx.create_graph() {
            return vec![Some(fused_softmax_grad(&y, g, &dims))];
        }
        vec![Some(if log {
            // y = x - lse(x): dy_j/dx_i = δ_ij - softmax_i, so dx = g - exp(y) Σ g
            g - y.exp() * g.sum_dim(&dims, true)
        } else {
            // dy_j/dx_i = y_j (δ_ij - y_i), so dx = y (g - Σ g·y)
            &y * (g - (g * &y).sum_dim(&dims, true))
        })]
    })
}

/// The softmax's `dx = y (g - Σ g·y)` lane by lane in one pass, for backward passes that are not
/// differentiated again.
fn fused_softmax_grad(y: &Tensor, g: &Tensor, dims: &[usize]) -> Tensor {
    let out = y.with_data(|dy| {
        g.with_data(|dg| {
            crate::with_float!(dy, "softmax_backward", |y: F| {
                let g = F::unwrap(dg).expect("gradients have the dtype of their tensor");
                let g = if g.shape() == y.shape() {
                    g.clone()
                } else {
                    g.broadcast(y.raw_dim())
                        .expect("gradient of y's shape")
                        .to_owned()
                        .into_shared()
                };
                Data::from(map_lanes2(y, &g, dims, |y, g, o| {
                    let dot = y.iter().zip(g).fold(F::zero(), |s, (&y, &g)| s + y * g);
                    for ((o, &y), &g) in o.iter_mut().zip(y).zip(g) {
                        *o = y * (g - dot);
                    }
                }))
            })
        })
    });
    Tensor::from_data(out)
}

impl Tensor {
    /// `log Σ exp(x)` over `dims`, like `torch.logsumexp(x, dims, keepdim)`, computed stably as
    /// `m + log Σ exp(x - m)` with `m` the maximum. Its gradient is `softmax(x)` along the dims.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let x = Tensor::from_vec_f64(vec![1000.0, 1000.0], &[2]);
    /// let y = x.logsumexp(0, false); // exp(1000) would overflow
    /// assert!((y.item() - (1000.0 + 2f64.ln())).abs() < 1e-12);
    /// ```
    ///
    /// # Panics
    /// If a dim is out of range or repeated, or the tensor is not floating point.
    #[track_caller]
    pub fn logsumexp(&self, dims: impl Dims, keepdim: bool) -> Tensor {
        let dims = norm_dims("logsumexp", &dims.to_isizes(), self.ndim());
        let inputs = [self];
        let rec = record("logsumexp", &inputs, &dims, keepdim);
        let out = self.with_data(|d| {
            crate::with_float!(d, "logsumexp", |a: F| Data::from(reduce_lanes(
                a,
                &dims,
                keepdim,
                lane_logsumexp
            )))
        });
        let kept = kept_shape(self.shape(), &dims);
        rec.save(self).save_output().finish(out, move |ctx, g| {
            // d lse / dx_i = exp(x_i - lse)
            let lse = ctx.output().reshape(&kept);
            vec![Some(g.reshape(&kept) * (ctx.saved(0) - lse).exp())]
        })
    }

    /// `exp(x) / Σ exp(x)` along `dim`, like `torch.softmax(x, dim)`: each lane becomes positive
    /// and sums to 1. Computed stably (the lane's maximum is subtracted first).
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let x = Tensor::from_vec_f64(vec![0.0, 2f64.ln(), 1000.0, 1000.0], &[2, 2]);
    /// let y = x.softmax(-1).to_vec::<f64>();
    /// let want = [1.0 / 3.0, 2.0 / 3.0, 0.5, 0.5];
    /// assert!(y.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-12));
    /// ```
    ///
    /// # Panics
    /// If `dim` is out of range, or the tensor is not floating point.
    #[track_caller]
    pub fn softmax(&self, dim: impl Dim) -> Tensor {
        softmax_impl(self, one_dim("softmax", dim.as_isize(), self.ndim()), false)
    }

    /// `log(softmax(x))` along `dim`, like `torch.log_softmax(x, dim)`, computed directly as
    /// `x - m - log Σ exp(x - m)` (more accurate than taking the log of a softmax).
    ///
    /// # Panics
    /// If `dim` is out of range, or the tensor is not floating point.
    #[track_caller]
    pub fn log_softmax(&self, dim: impl Dim) -> Tensor {
        softmax_impl(
            self,
            one_dim("log_softmax", dim.as_isize(), self.ndim()),
            true,
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::autograd::tape;
    use crate::ops::reduce::tests::check_second_order;
    use crate::prelude::*;
    use crate::testing::{randn64, randn64_t};

    #[test]
    fn f32_softmax_and_its_fused_backward_match_f64_and_the_tensor_rule() {
        // the f32 kernel (exp_f32, 16 partial sums) on lanes longer and shorter than 16, along
        // the last dim and along dim 0, against f64; the one-pass backward against
        // y (g - Σ g·y) written with tensor ops, for a full and a broadcast upstream gradient
        for (shape, dim) in [(vec![3, 37], -1), (vec![40, 5], 0), (vec![2, 3, 7], 1)] {
            let x64 = randn64(&shape, 3) * 3.0;
            let x32 = x64.to_dtype(DType::F32);
            let want = x32.to_dtype(DType::F64).softmax(dim).to_vec::<f64>();
            let got = x32.softmax(dim).to_vec::<f32>();
            for (g, w) in got.iter().zip(&want) {
                // rounding x - max (about ln w) in f32 moves e^(x - max) by |ln w| ulps
                let tol = (4.0 + w.ln().abs()) * f32::EPSILON as f64 * w;
                assert!((*g as f64 - w).abs() <= tol, "{g} vs {w}");
            }
            let gfull = randn64(&shape, 4);
            let gbroad = randn64(&[shape[shape.len() - 1]], 5).expand(&shape);
            for g in [gfull, gbroad] {
                let x = x64.detach().requires_grad();
                x.softmax(dim).backward_with(&g);
                let y = x64.softmax(dim);
                let rule = &y * (&g - (&g * &y).sum_dim(dim, true));
                x.grad().unwrap().assert_close(&rule, 1e-12, 1e-14);
            }
        }
    }

    fn t(v: Vec<f64>, shape: &[usize]) -> Tensor {
        Tensor::from_vec_f64(v, shape)
    }

    fn close(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12)
    }

    #[test]
    fn logsumexp_values_and_overflow_safety() {
        // log(e^1 + e^2 + e^3) = 3 + log(1 + e^-1 + e^-2)
        let x = t(vec![1.0, 2.0, 3.0, 1000.0, 1000.0, -1000.0], &[2, 3]);
        let want = [
            3.0 + (1.0 + (-1f64).exp() + (-2f64).exp()).ln(),
            1000.0 + 2f64.ln(),
        ];
        assert!(close(&x.logsumexp(1, false).to_vec::<f64>(), &want));
        assert_eq!(x.logsumexp(-1, true).shape(), &[2, 1]);
        assert!(close(&x.t().logsumexp(0, false).to_vec::<f64>(), &want));
        let all = x.logsumexp([0, 1], false).item();
        assert!((all - (1000.0 + 2f64.ln())).abs() < 1e-12);
        // all -inf gives -inf, a +inf gives +inf (not NaN)
        let inf = t(
            vec![f64::NEG_INFINITY, f64::NEG_INFINITY, 1.0, f64::INFINITY],
            &[2, 2],
        );
        assert_eq!(
            inf.logsumexp(1, false).to_vec::<f64>(),
            vec![f64::NEG_INFINITY, f64::INFINITY]
        );
    }

    #[test]
    fn softmax_log_softmax_values_and_overflow_safety() {
        // softmax([0, ln 2, ln 3]) = [1, 2, 3] / 6, shifting by a constant changes nothing
        let x = t(vec![0.0, 2f64.ln(), 3f64.ln()], &[3]);
        let want = [1.0 / 6.0, 2.0 / 6.0, 3.0 / 6.0];
        assert!(close(&x.softmax(0).to_vec::<f64>(), &want));
        assert!(close(&(&x + 1000.0).softmax(-1).to_vec::<f64>(), &want));
        let logs: Vec<f64> = want.iter().map(|v| v.ln()).collect();
        assert!(close(&(&x + 1000.0).log_softmax(0).to_vec::<f64>(), &logs));
        // along dim 0 of a 2-d tensor: columns are lanes
        let x = t(vec![1000.0, 0.0, 1000.0, 0.0], &[2, 2]);
        assert_eq!(x.softmax(0).to_vec::<f64>(), vec![0.5, 0.5, 0.5, 0.5]);
        assert!(close(&x.log_softmax(-2).to_vec::<f64>(), &[-2f64.ln(); 4]));
        assert_eq!(Tensor::scalar_of(3.0, DType::F64).softmax(0).item(), 1.0);
    }

    #[test]
    fn softmax_of_a_large_tensor_matches_rows_done_one_by_one() {
        // 400 × 100 elements: above PAR_THRESHOLD, so rows are split across cores
        let x = randn64(&[400, 100], 7) * 10.0;
        let y = x.softmax(1).to_vec::<f64>();
        let v = x.to_vec::<f64>();
        for r in [0, 199, 399] {
            let row = t(v[r * 100..(r + 1) * 100].to_vec(), &[100]).softmax(0);
            assert_eq!(&y[r * 100..(r + 1) * 100], &row.to_vec::<f64>()[..]);
        }
        let sums = x.softmax(0).sum_dim(0, false).to_vec::<f64>();
        assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-12));
        let (m, i) = x.max_dim(-1, false);
        assert_eq!(x.amax(-1, false).to_vec::<f64>(), m.to_vec::<f64>());
        assert_eq!(x.argmax_dim(-1, false).to_vec::<i64>(), i.to_vec::<i64>());
    }

    #[test]
    fn softmax_log_softmax_are_single_tape_entries() {
        let x = randn64(&[2, 3], 1).requires_grad();
        for (name, y) in [("softmax", x.softmax(1)), ("log_softmax", x.log_softmax(1))] {
            assert_eq!(y.grad_fn(), Some(name));
            assert_eq!(tape::entry_of(&y).unwrap().inputs.len(), 1);
        }
        let before = tape::len();
        let y = x.softmax(0);
        assert_eq!(tape::len(), before + 1);
        drop(y);
    }

    #[test]
    fn logsumexp_gradcheck() {
        for x in [randn64(&[3, 4, 2], 1), randn64_t(&[4, 3, 2], 2)] {
            let x = std::slice::from_ref(&x);
            for keepdim in [false, true] {
                gradcheck(|x| x[0].logsumexp(1, keepdim), x).unwrap();
                gradcheck(|x| x[0].logsumexp(-1, keepdim), x).unwrap();
                gradcheck(|x| x[0].logsumexp([0, -1], keepdim), x).unwrap();
            }
        }
    }

    #[test]
    fn softmax_log_softmax_gradcheck() {
        for x in [randn64(&[3, 4, 2], 3), randn64_t(&[4, 3, 2], 4)] {
            let x = std::slice::from_ref(&x);
            for d in [0, 1, 2, -1, -3] {
                gradcheck(|x| x[0].softmax(d), x).unwrap();
                gradcheck(|x| x[0].log_softmax(d), x).unwrap();
            }
        }
        // at large inputs, where a naive exp would overflow
        let big = randn64(&[2, 3], 5) + 1000.0;
        gradcheck(|x| x[0].softmax(-1), std::slice::from_ref(&big)).unwrap();
        gradcheck(|x| x[0].log_softmax(-1), std::slice::from_ref(&big)).unwrap();
        gradcheck(|x| x[0].logsumexp(-1, false), &[big]).unwrap();
    }

    #[test]
    fn logsumexp_gradient_is_softmax() {
        let x = randn64(&[2, 5], 6).requires_grad();
        x.logsumexp(-1, false).sum().backward();
        let s = x.detach().softmax(-1).to_vec::<f64>();
        assert!(close(&x.grad().unwrap().to_vec::<f64>(), &s));
    }

    #[test]
    fn softmax_logsumexp_second_order() {
        for x in [randn64(&[3, 4], 8), randn64_t(&[3, 4], 9)] {
            check_second_order(|x| x.softmax(1), &x);
            check_second_order(|x| x.softmax(-2), &x);
            check_second_order(|x| x.log_softmax(-1), &x);
            check_second_order(|x| x.logsumexp(1, false), &x);
            check_second_order(|x| x.logsumexp([0, 1], true), &x);
        }
    }

    #[test]
    fn logsumexp_hessian_is_diag_p_minus_p_pt() {
        // L = lse(x): ∂²L/∂x_i∂x_j = p_i δ_ij - p_i p_j with p = softmax(x)
        let x = t(vec![0.5, -1.0, 2.0], &[3]).requires_grad();
        let g = grad(&[&x.logsumexp(0, false)], &[&x], true).remove(0);
        let p = x.detach().softmax(0).to_vec::<f64>();
        for i in 0..3 {
            let e = t((0..3).map(|j| (i == j) as u8 as f64).collect(), &[3]);
            // create_graph keeps the graph of g for the next row
            let row = grad(&[&(&g * e).sum()], &[&x], true)
                .remove(0)
                .to_vec::<f64>();
            let want: Vec<f64> = (0..3)
                .map(|j| {
                    if i == j {
                        p[i] - p[i] * p[j]
                    } else {
                        -p[i] * p[j]
                    }
                })
                .collect();
            assert!(close(&row, &want), "row {i}: {row:?} vs {want:?}");
        }
    }

    #[test]
    #[should_panic(expected = "softmax: dimension out of range")]
    fn softmax_dim_out_of_range_names_the_op() {
        let _ = Tensor::zeros(&[2, 3]).softmax(2);
    }

    #[test]
    #[should_panic(expected = "log_softmax: dimension out of range")]
    fn log_softmax_dim_out_of_range_names_the_op() {
        let _ = Tensor::zeros(&[2, 3]).log_softmax(-3);
    }

    #[test]
    #[should_panic(expected = "logsumexp: dim appears multiple times")]
    fn logsumexp_with_a_repeated_dim_is_an_error() {
        let _ = Tensor::zeros(&[2, 3]).logsumexp([1, -1], false);
    }
}
