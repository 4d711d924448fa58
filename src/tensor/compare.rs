//! Comparing whole tensors in tests: exact `==` (like `torch.equal`), the `approx` crate's traits
//! (`assert_relative_eq!(a, b, max_relative = 1e-5)` on tensors), and
//! [`assert_close`](Tensor::assert_close), which reports the worst element on failure.

use std::panic::Location;

use approx::{AbsDiffEq, RelativeEq, UlpsEq};

use super::{Data, Tensor};

/// Whether `a` and `b` have the same shape and dtype and `eq` holds for every pair of values
/// (taken in row-major order, as f64).
fn all_pairs(a: &Tensor, b: &Tensor, eq: impl Fn(f64, f64) -> bool) -> bool {
    a.shape() == b.shape()
        && a.dtype() == b.dtype()
        && a.to_vec_f64()
            .into_iter()
            .zip(b.to_vec_f64())
            .all(|(x, y)| eq(x, y))
}

/// The multi-index of row-major position `flat` in `shape`.
fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for (i, &n) in shape.iter().enumerate().rev() {
        if n > 0 {
            idx[i] = flat % n;
            flat /= n;
        }
    }
    idx
}

/// `|a - b|`, 0 for equal infinities and NaN if either is NaN.
fn abs_diff(a: f64, b: f64) -> f64 {
    if a == b {
        0.0
    } else {
        (a - b).abs()
    }
}

/// Exact equality of shape, dtype and every element, like `torch.equal` (NaN is unequal to
/// everything, as for floats). For the elementwise mask use [`Tensor::eq`].
impl PartialEq for Tensor {
    fn eq(&self, other: &Tensor) -> bool {
        if self.shape() != other.shape() {
            return false;
        }
        // Handles, not locks: `other` may be `self`.
        match (self.data(), other.data()) {
            (Data::F32(a), Data::F32(b)) => a == b,
            (Data::F64(a), Data::F64(b)) => a == b,
            (Data::I64(a), Data::I64(b)) => a == b,
            (Data::Bool(a), Data::Bool(b)) => a == b,
            _ => false,
        }
    }
}

/// Tensors are approximately equal when they have the same shape and dtype and every pair of
/// elements is within `epsilon` (compared as f64).
impl AbsDiffEq for Tensor {
    type Epsilon = f64;

    fn default_epsilon() -> f64 {
        f64::EPSILON
    }

    fn abs_diff_eq(&self, other: &Tensor, epsilon: f64) -> bool {
        all_pairs(self, other, |a, b| a.abs_diff_eq(&b, epsilon))
    }
}

/// Elementwise `approx::RelativeEq` on f64 values, for `assert_relative_eq!` on tensors.
impl RelativeEq for Tensor {
    fn default_max_relative() -> f64 {
        f64::EPSILON
    }

    fn relative_eq(&self, other: &Tensor, epsilon: f64, max_relative: f64) -> bool {
        all_pairs(self, other, |a, b| a.relative_eq(&b, epsilon, max_relative))
    }
}

/// Elementwise `approx::UlpsEq`, counting units in the last place of the tensor's own dtype (f32
/// ulps for float32 tensors).
impl UlpsEq for Tensor {
    fn default_max_ulps() -> u32 {
        4
    }

    fn ulps_eq(&self, other: &Tensor, epsilon: f64, max_ulps: u32) -> bool {
        if self.shape() != other.shape() {
            return false;
        }
        match (self.data(), other.data()) {
            (Data::F32(a), Data::F32(b)) => a
                .iter()
                .zip(b.iter())
                .all(|(x, y)| x.ulps_eq(y, epsilon as f32, max_ulps)),
            (Data::F64(a), Data::F64(b)) => a
                .iter()
                .zip(b.iter())
                .all(|(x, y)| x.ulps_eq(y, epsilon, max_ulps)),
            _ => self == other,
        }
    }
}

impl Tensor {
    /// The largest absolute elementwise difference `|self - other|` and the row-major position of
    /// the element where it occurs (the first one on ties). A NaN on either side counts as the
    /// largest difference (`f64::NAN` is returned); equal infinities differ by 0. Empty tensors
    /// give `(0.0, 0)`.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let a = Tensor::from_vec(vec![1.0, 2.0, 3.0], &[3]);
    /// let b = Tensor::from_vec(vec![1.0, 2.5, 2.9], &[3]);
    /// assert_eq!(a.max_abs_diff(&b), (0.5, 1));
    /// ```
    ///
    /// # Panics
    /// If the shapes differ.
    #[track_caller]
    pub fn max_abs_diff(&self, other: &Tensor) -> (f64, usize) {
        if self.shape() != other.shape() {
            panic!(
                "max_abs_diff: shapes {:?} and {:?} differ, at {}",
                self.shape(),
                other.shape(),
                Location::caller()
            );
        }
        let mut worst = (0.0, 0);
        for (i, (a, b)) in self
            .to_vec_f64()
            .into_iter()
            .zip(other.to_vec_f64())
            .enumerate()
        {
            let d = abs_diff(a, b);
            if d.is_nan() {
                return (d, i);
            }
            if d > worst.0 {
                worst = (d, i);
            }
        }
        worst
    }

    /// Asserts that `self` (the actual values) is close to `expected` elementwise:
    /// `|actual - expected| <= atol + rtol · |expected|`, like `torch.testing.assert_close`
    /// (NaN is never close; equal infinities are).
    ///
    /// On failure it reports the worst element — the one exceeding its allowance by the most —
    /// with its index, both values and the shape, plus how many elements failed, so a failing test
    /// says where to look without printing whole tensors.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let y = Tensor::from_vec(vec![0.1, 0.2], &[2]) * 3.0;
    /// y.assert_close(&Tensor::from_vec(vec![0.3, 0.6], &[2]), 1e-6, 1e-7);
    /// ```
    ///
    /// # Panics
    /// If the shapes or dtypes differ, or any element is not close.
    #[track_caller]
    pub fn assert_close(&self, expected: &Tensor, rtol: f64, atol: f64) {
        let loc = Location::caller();
        if self.shape() != expected.shape() || self.dtype() != expected.dtype() {
            panic!(
                "assert_close: actual has shape {:?} ({}) but expected has shape {:?} ({}), at \
                 {loc}",
                self.shape(),
                self.dtype(),
                expected.shape(),
                expected.dtype()
            );
        }
        // (excess over the allowance, position, actual, expected, allowance)
        let mut worst: Option<(f64, usize, f64, f64, f64)> = None;
        let mut failed = 0;
        for (i, (a, e)) in self
            .to_vec_f64()
            .into_iter()
            .zip(expected.to_vec_f64())
            .enumerate()
        {
            let allowed = atol + rtol * e.abs();
            let d = abs_diff(a, e);
            if d <= allowed {
                continue;
            }
            failed += 1;
            let excess = if d.is_nan() {
                f64::INFINITY
            } else {
                d - allowed
            };
            if worst.is_none_or(|w| excess > w.0) {
                worst = Some((excess, i, a, e, allowed));
            }
        }
        if let Some((_, i, a, e, allowed)) = worst {
            panic!(
                "assert_close: {failed} of {} elements differ beyond atol {atol:e} + rtol {rtol:e} \
                 · |expected|; the worst is at index {:?}: actual {a} vs expected {e} (|diff| {}, \
                 allowed {allowed:.3e}); shape {:?}, at {loc}",
                self.numel(),
                unravel(i, self.shape()),
                abs_diff(a, e),
                self.shape()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use approx::{
        assert_abs_diff_eq, assert_relative_eq, assert_relative_ne, assert_ulps_eq, AbsDiffEq,
        RelativeEq,
    };

    use crate::prelude::*;

    #[test]
    fn exact_equality_needs_shape_dtype_and_values() {
        let a = Tensor::from_vec(vec![1.0, 2.0], &[2]);
        assert_eq!(a, Tensor::from_vec(vec![1.0, 2.0], &[2]));
        // a transposed copy has the same values in another layout
        let m = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]);
        assert_eq!(m.t().contiguous(), m.t());
        assert_ne!(a, Tensor::from_vec(vec![1.0, 2.0], &[1, 2]));
        assert_ne!(a, a.double());
        assert_ne!(a, Tensor::from_vec(vec![1.0, 2.5], &[2]));
        let nan = Tensor::from_vec(vec![f32::NAN], &[1]);
        assert_ne!(nan, nan.clone());
    }

    #[test]
    fn approx_macros_work_on_tensors() {
        let a = Tensor::from_vec_f64(vec![1.0, 100.0], &[2]);
        let b = Tensor::from_vec_f64(vec![1.0 + 1e-7, 100.0 + 1e-5], &[2]);
        assert_relative_eq!(a, b, max_relative = 1e-6);
        assert_relative_ne!(a, b, max_relative = 1e-8);
        // absolute: the second pair differs by 1e-5
        assert_abs_diff_eq!(a, b, epsilon = 2e-5);
        assert!(a.abs_diff_ne(&b, 1e-6));
        // f32 ulps: 1 + ε₃₂ is one ulp away from 1
        let x = Tensor::from_vec(vec![1.0], &[1]);
        let y = Tensor::from_vec(vec![1.0 + f32::EPSILON], &[1]);
        assert_ulps_eq!(x, y, max_ulps = 1);
        assert!(!approx::ulps_eq!(x, y, max_ulps = 0));
    }

    #[test]
    fn different_shapes_or_dtypes_are_never_approximately_equal() {
        let a = Tensor::zeros(&[2, 3]);
        assert!(!a.relative_eq(&Tensor::zeros(&[3, 2]), 1.0, 1.0));
        assert!(!a.abs_diff_eq(&Tensor::zeros(&[6]), 1.0));
        assert!(!a.abs_diff_eq(&Tensor::zeros_dtype(&[2, 3], DType::F64), 1.0));
    }

    #[test]
    fn max_abs_diff_finds_the_worst_element() {
        let a = Tensor::from_vec_f64(vec![0.0, 1.0, 2.0, 3.0], &[2, 2]);
        let b = Tensor::from_vec_f64(vec![0.1, 1.0, 1.5, 3.2], &[2, 2]);
        assert_eq!(a.max_abs_diff(&b), (0.5, 2));
        assert_eq!(a.max_abs_diff(&a), (0.0, 0));
        let n = Tensor::from_vec_f64(vec![0.0, 1.0, f64::NAN, 3.0], &[2, 2]);
        let (d, i) = a.max_abs_diff(&n);
        assert!(d.is_nan());
        assert_eq!(i, 2);
        let inf = Tensor::from_vec_f64(vec![f64::INFINITY], &[1]);
        assert_eq!(inf.max_abs_diff(&inf), (0.0, 0));
    }

    #[test]
    fn assert_close_passes_within_tolerance() {
        let a = Tensor::from_vec_f64(vec![1.0, 1000.0, f64::INFINITY], &[3]);
        let b = Tensor::from_vec_f64(vec![1.0 + 1e-9, 1000.001, f64::INFINITY], &[3]);
        // 1000.001 needs rtol: |diff| 1e-3 <= 1e-8 + 1e-5 · 1000.001
        a.assert_close(&b, 1e-5, 1e-8);
    }

    #[test]
    #[should_panic(
        expected = "assert_close: 2 of 4 elements differ beyond atol 1e-8 + rtol 1e-5 \
                               · |expected|; the worst is at index [1, 0]: actual 2 vs expected \
                               2.5 (|diff| 0.5, allowed 2.501e-5); shape [2, 2]"
    )]
    fn assert_close_reports_the_worst_element() {
        let a = Tensor::from_vec_f64(vec![0.0, 1.0, 2.0, 3.0], &[2, 2]);
        let b = Tensor::from_vec_f64(vec![0.1, 1.0, 2.5, 3.0], &[2, 2]);
        a.assert_close(&b, 1e-5, 1e-8);
    }

    #[test]
    #[should_panic(expected = "assert_close: 1 of 2 elements differ")]
    fn assert_close_treats_nan_as_a_failure() {
        let a = Tensor::from_vec(vec![1.0, f32::NAN], &[2]);
        a.assert_close(&a, 1.0, 1.0);
    }

    #[test]
    #[should_panic(
        expected = "assert_close: actual has shape [2] (float32) but expected has shape \
                               [2] (float64)"
    )]
    fn assert_close_needs_the_same_dtype() {
        let a = Tensor::zeros(&[2]);
        a.assert_close(&a.double(), 1e-5, 1e-8);
    }

    #[test]
    #[should_panic(expected = "max_abs_diff: shapes [2] and [3] differ")]
    fn max_abs_diff_needs_the_same_shape() {
        let _ = Tensor::zeros(&[2]).max_abs_diff(&Tensor::zeros(&[3]));
    }
}
