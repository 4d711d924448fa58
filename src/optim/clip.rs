//! Gradient clipping, like `torch.nn.utils.clip_grad_norm_` and `clip_grad_value_`.
//!
//! Both work in place on the gradients (every handle on a gradient sees the change), skip
//! parameters without a gradient, and record nothing on the tape.

use std::collections::HashSet;
use std::panic::Location;
use std::sync::Arc;

use super::kernel::{standard_slice_mut, write};
use crate::tensor::{Element, Float};
use crate::Tensor;

/// The distinct gradient tensors of `params` (one gradient can be shared by two parameters; it
/// must be scaled once).
fn distinct_grads(params: &[Tensor]) -> Vec<Tensor> {
    let mut seen = HashSet::new();
    params
        .iter()
        .filter_map(Tensor::grad)
        .filter(|g| seen.insert(Arc::as_ptr(&g.inner) as *const ()))
        .collect()
}

/// An in-place change of gradient elements.
#[derive(Clone, Copy)]
enum Edit {
    /// Multiply by a factor (rounded to the gradient's dtype first, as PyTorch's `mul_` does).
    Scale(f64),
    /// Clamp to `[-c, c]`.
    Clamp(f64),
}

/// Applies `edit` to every element of `g`, in place.
fn edit_in_place(g: &Tensor, edit: Edit) {
    let mut d = write(g);
    crate::with_float!(&mut *d, "clip", |a: F| {
        let s = standard_slice_mut(a);
        match edit {
            Edit::Scale(c) => {
                let c = F::c(c);
                s.iter_mut().for_each(|v| *v *= c);
            }
            Edit::Clamp(c) => {
                let (lo, hi) = (F::c(-c), F::c(c));
                for v in s {
                    // comparisons are false for NaN, which stays
                    if *v < lo {
                        *v = lo;
                    } else if *v > hi {
                        *v = hi;
                    }
                }
            }
        }
    });
}

/// The `norm_type`-norm of the elements of `t`, accumulated in f64.
fn norm_of(t: &Tensor, norm_type: f64) -> f64 {
    t.with_data(|d| {
        crate::with_float!(d, "clip_grad_norm", |a: F| {
            p_norm(a.iter().map(|v| v.to_f64()), norm_type)
        })
    })
}

/// `(Σ|x|ᵖ)^(1/p)`; the largest |x| for p = ∞; the number of non-zeros for p = 0.
fn p_norm(xs: impl Iterator<Item = f64>, p: f64) -> f64 {
    if p == f64::INFINITY {
        xs.map(f64::abs)
            .fold(0.0, |m, x| if x > m || x.is_nan() { x } else { m })
    } else if p == 0.0 {
        xs.filter(|&x| x != 0.0).count() as f64
    } else if p == 1.0 {
        xs.map(f64::abs).sum()
    } else if p == 2.0 {
        xs.map(|x| x * x).sum::<f64>().sqrt()
    } else {
        xs.map(|x| x.abs().powf(p)).sum::<f64>().powf(1.0 / p)
    }
}

/// Rescales the gradients of `params` so that their total norm is at most `max_norm`, like
/// `torch.nn.utils.clip_grad_norm_`; returns the total norm before clipping.
///
/// The total norm is the `norm_type`-norm of all gradient elements taken together (`f64::INFINITY`
/// for the largest magnitude). Every gradient is multiplied by
/// `min(1, max_norm / (total + 1e-6))`, as in PyTorch. Norms are accumulated in f64.
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::optim::clip_grad_norm;
/// let w = Tensor::from_vec(vec![0.0, 0.0], &[2]).requires_grad();
/// w.set_grad(Some(Tensor::from_vec(vec![3.0, 4.0], &[2])));
/// let total = clip_grad_norm(std::slice::from_ref(&w), 1.0, 2.0); // ‖(3, 4)‖ = 5
/// assert_eq!(total, 5.0);
/// let g = w.grad().unwrap().to_vec::<f32>();
/// assert!((g[0] - 0.6).abs() < 1e-6 && (g[1] - 0.8).abs() < 1e-6);
/// ```
///
/// # Panics
/// If `norm_type` is negative or NaN, or `max_norm` is NaN.
#[track_caller]
pub fn clip_grad_norm(params: &[Tensor], max_norm: f64, norm_type: f64) -> f64 {
    let loc = Location::caller();
    if norm_type.is_nan() || norm_type < 0.0 {
        panic!("clip_grad_norm: norm_type must be >= 0 or infinity, got {norm_type}, at {loc}");
    }
    if max_norm.is_nan() {
        panic!("clip_grad_norm: max_norm is NaN, at {loc}");
    }
    let grads = distinct_grads(params);
    if grads.is_empty() {
        return 0.0;
    }
    let norms = grads.iter().map(|g| norm_of(g, norm_type));
    let total = p_norm(norms, norm_type);
    let coef = (max_norm / (total + 1e-6)).min(1.0);
    for g in &grads {
        edit_in_place(g, Edit::Scale(coef));
    }
    total
}

/// Clamps every gradient element of `params` to `[-clip_value, clip_value]`, like
/// `torch.nn.utils.clip_grad_value_` (NaN stays NaN).
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::optim::clip_grad_value;
/// let w = Tensor::from_vec(vec![0.0, 0.0, 0.0], &[3]).requires_grad();
/// w.set_grad(Some(Tensor::from_vec(vec![-3.0, 0.5, 2.0], &[3])));
/// clip_grad_value(std::slice::from_ref(&w), 1.0);
/// assert_eq!(w.grad().unwrap().to_vec::<f32>(), vec![-1.0, 0.5, 1.0]);
/// ```
///
/// # Panics
/// If `clip_value` is negative or NaN.
#[track_caller]
pub fn clip_grad_value(params: &[Tensor], clip_value: f64) {
    let loc = Location::caller();
    if clip_value.is_nan() || clip_value < 0.0 {
        panic!("clip_grad_value: clip_value must be >= 0, got {clip_value}, at {loc}");
    }
    for g in distinct_grads(params) {
        edit_in_place(&g, Edit::Clamp(clip_value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_grad(g: Vec<f64>) -> Tensor {
        let n = g.len();
        let p = Tensor::zeros_dtype(&[n], crate::DType::F64).requires_grad();
        p.set_grad(Some(Tensor::from_vec_f64(g, &[n])));
        p
    }

    #[test]
    fn clip_grad_norm_scales_all_gradients_by_max_over_total() {
        // total = ‖(1, 2, 2)‖ = 3 (norm of the per-gradient norms 1 and √8);
        // coefficient 1.5 / (3 + 1e-6)
        let a = with_grad(vec![1.0]);
        let b = with_grad(vec![2.0, 2.0]);
        let total = clip_grad_norm(&[a.clone(), b.clone()], 1.5, 2.0);
        assert!((total - 3.0).abs() < 1e-12);
        let c = 1.5 / (total + 1e-6);
        assert_eq!(a.grad().unwrap().to_vec::<f64>(), vec![c]);
        assert_eq!(b.grad().unwrap().to_vec::<f64>(), vec![2.0 * c, 2.0 * c]);
    }

    #[test]
    fn clip_grad_norm_leaves_small_gradients_unchanged() {
        // the coefficient is clamped to 1
        let a = with_grad(vec![0.3, -0.4]);
        let total = clip_grad_norm(std::slice::from_ref(&a), 1.0, 2.0);
        assert!((total - 0.5).abs() < 1e-12);
        assert_eq!(a.grad().unwrap().to_vec::<f64>(), vec![0.3, -0.4]);
    }

    #[test]
    fn clip_grad_norm_supports_inf_and_one_norms() {
        // ‖·‖∞ = max |g| = 4; ‖·‖₁ = Σ|g| = 7
        let a = with_grad(vec![3.0, -4.0]);
        assert_eq!(
            clip_grad_norm(std::slice::from_ref(&a), 100.0, f64::INFINITY),
            4.0
        );
        assert_eq!(clip_grad_norm(std::slice::from_ref(&a), 100.0, 1.0), 7.0);
        // p = 3: (27 + 64)^(1/3)
        let t = clip_grad_norm(&[a], 100.0, 3.0);
        assert!((t - 91f64.powf(1.0 / 3.0)).abs() < 1e-12);
    }

    #[test]
    fn clip_grad_norm_scales_a_shared_gradient_once() {
        let a = Tensor::zeros(&[1]).requires_grad();
        let b = Tensor::zeros(&[1]).requires_grad();
        let g = Tensor::from_vec(vec![10.0], &[1]);
        a.set_grad(Some(g.clone()));
        b.set_grad(Some(g));
        let total = clip_grad_norm(&[a.clone(), b.clone()], 1.0, 2.0);
        assert_eq!(total, 10.0);
        let v = a.grad().unwrap().item();
        assert!((v - 1.0).abs() < 1e-6, "{v}");
        assert_eq!(b.grad().unwrap().item(), v);
    }

    #[test]
    fn clip_grad_norm_of_no_gradients_is_zero() {
        let a = Tensor::zeros(&[2]).requires_grad();
        assert_eq!(clip_grad_norm(&[a], 1.0, 2.0), 0.0);
    }

    #[test]
    fn clip_grad_norm_works_on_a_broadcast_gradient() {
        // x.sum() gives x a gradient of ones broadcast from one value; scaling must touch each
        // element once
        let x = Tensor::zeros(&[2, 2]).requires_grad();
        x.sum().backward();
        let total = clip_grad_norm(std::slice::from_ref(&x), 1.0, 2.0);
        assert_eq!(total, 2.0);
        let g = x.grad().unwrap().to_vec::<f32>();
        assert!(g.iter().all(|v| (v - 0.5).abs() < 1e-6), "{g:?}");
    }

    #[test]
    fn clip_grad_value_clamps_and_keeps_nan() {
        let a = with_grad(vec![-5.0, 0.25, 5.0, f64::NAN]);
        clip_grad_value(std::slice::from_ref(&a), 0.5);
        let g = a.grad().unwrap().to_vec::<f64>();
        assert_eq!(&g[..3], &[-0.5, 0.25, 0.5]);
        assert!(g[3].is_nan());
    }

    #[test]
    #[should_panic(
        expected = "clip_grad_norm: norm_type must be >= 0 or infinity, got -1, at src/optim/clip.rs"
    )]
    fn negative_norm_type_panics() {
        clip_grad_norm(&[with_grad(vec![1.0])], 1.0, -1.0);
    }

    #[test]
    #[should_panic(expected = "clip_grad_value: clip_value must be >= 0, got -1")]
    fn negative_clip_value_panics() {
        clip_grad_value(&[with_grad(vec![1.0])], -1.0);
    }
}
