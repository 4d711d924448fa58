//! Arithmetic: add, sub, mul, div, pow, maximum, minimum.

use crate::tensor::{Float, Tensor};

use super::{binary, Binary, Saved2};

/// `a + b`.
#[derive(Clone, Copy)]
pub(crate) struct Add;
impl Binary for Add {
    const NAME: &'static str = "add";
    const SAVE_INPUTS: bool = false;
    const SAVE_OUTPUT: bool = false;
    fn f<F: Float>(&self, a: F, b: F) -> F {
        a + b
    }
    // d(a+b)/da = 1, d(a+b)/db = 1
    fn df(&self, _: &Saved2, g: &Tensor, n: [bool; 2]) -> [Option<Tensor>; 2] {
        [n[0].then(|| g.clone()), n[1].then(|| g.clone())]
    }
}

/// `a - b`.
#[derive(Clone, Copy)]
pub(crate) struct Sub;
impl Binary for Sub {
    const NAME: &'static str = "sub";
    const SAVE_INPUTS: bool = false;
    const SAVE_OUTPUT: bool = false;
    fn f<F: Float>(&self, a: F, b: F) -> F {
        a - b
    }
    // d(a-b)/da = 1, d(a-b)/db = -1
    fn df(&self, _: &Saved2, g: &Tensor, n: [bool; 2]) -> [Option<Tensor>; 2] {
        [n[0].then(|| g.clone()), n[1].then(|| -g)]
    }
}

/// `a * b`.
#[derive(Clone, Copy)]
pub(crate) struct Mul;
impl Binary for Mul {
    const NAME: &'static str = "mul";
    const SAVE_INPUTS: bool = true;
    const SAVE_OUTPUT: bool = false;
    fn f<F: Float>(&self, a: F, b: F) -> F {
        a * b
    }
    // d(ab)/da = b, d(ab)/db = a
    fn df(&self, s: &Saved2, g: &Tensor, n: [bool; 2]) -> [Option<Tensor>; 2] {
        [n[0].then(|| g * s.b()), n[1].then(|| g * s.a())]
    }
}

/// `a / b`.
#[derive(Clone, Copy)]
pub(crate) struct Div;
impl Binary for Div {
    const NAME: &'static str = "div";
    const SAVE_INPUTS: bool = true;
    const SAVE_OUTPUT: bool = false;
    fn f<F: Float>(&self, a: F, b: F) -> F {
        a / b
    }
    // d(a/b)/da = 1/b, d(a/b)/db = -a/b²
    fn df(&self, s: &Saved2, g: &Tensor, n: [bool; 2]) -> [Option<Tensor>; 2] {
        [
            n[0].then(|| g / s.b()),
            n[1].then(|| -(g * s.a() / (s.b() * s.b()))),
        ]
    }
}

/// `a ^ b` with a tensor exponent.
#[derive(Clone, Copy)]
pub(crate) struct Pow;
impl Binary for Pow {
    const NAME: &'static str = "pow";
    const SAVE_INPUTS: bool = true;
    const SAVE_OUTPUT: bool = true;
    fn f<F: Float>(&self, a: F, b: F) -> F {
        a.powf(b)
    }
    // d(a^b)/da = b a^(b-1), d(a^b)/db = a^b ln a (taken as 0 where a = 0, as PyTorch does)
    fn df(&self, s: &Saved2, g: &Tensor, n: [bool; 2]) -> [Option<Tensor>; 2] {
        [
            n[0].then(|| g * s.b() * s.a().pow(&(s.b() - 1.0))),
            n[1].then(|| {
                let a = s.a();
                let zero = a.eq_scalar(0.0);
                let safe_log = a.masked_fill(&zero, 1.0).log();
                g * s.out() * safe_log
            }),
        ]
    }
}

/// Elementwise maximum.
#[derive(Clone, Copy)]
pub(crate) struct Maximum;
impl Binary for Maximum {
    const NAME: &'static str = "maximum";
    const SAVE_INPUTS: bool = true;
    const SAVE_OUTPUT: bool = false;
    fn f<F: Float>(&self, a: F, b: F) -> F {
        if a.is_nan() || b.is_nan() {
            F::nan()
        } else if a >= b {
            a
        } else {
            b
        }
    }
    // The gradient goes to the larger input; on ties it is split evenly, as in PyTorch.
    fn df(&self, s: &Saved2, g: &Tensor, n: [bool; 2]) -> [Option<Tensor>; 2] {
        split_by_mask(s.a().gt(s.b()), s.a().eq(s.b()), g, n)
    }
}

/// Elementwise minimum.
#[derive(Clone, Copy)]
pub(crate) struct Minimum;
impl Binary for Minimum {
    const NAME: &'static str = "minimum";
    const SAVE_INPUTS: bool = true;
    const SAVE_OUTPUT: bool = false;
    fn f<F: Float>(&self, a: F, b: F) -> F {
        if a.is_nan() || b.is_nan() {
            F::nan()
        } else if a <= b {
            a
        } else {
            b
        }
    }
    fn df(&self, s: &Saved2, g: &Tensor, n: [bool; 2]) -> [Option<Tensor>; 2] {
        split_by_mask(s.a().lt(s.b()), s.a().eq(s.b()), g, n)
    }
}

/// Routes `g` to `a` where `a_wins`, to `b` elsewhere, halves on `tie`.
fn split_by_mask(a_wins: Tensor, tie: Tensor, g: &Tensor, n: [bool; 2]) -> [Option<Tensor>; 2] {
    let a_w = a_wins.to_dtype(g.dtype()) + tie.to_dtype(g.dtype()) * 0.5;
    [n[0].then(|| g * &a_w), n[1].then(|| g * (1.0 - &a_w))]
}

impl Tensor {
    /// `self + other` with broadcasting, like `torch.add`.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let a = Tensor::from_vec(vec![1.0, 2.0], &[2, 1]);
    /// let b = Tensor::from_vec(vec![10.0, 20.0, 30.0], &[3]);
    /// assert_eq!(a.add(&b).to_vec::<f32>(), vec![11.0, 21.0, 31.0, 12.0, 22.0, 32.0]);
    /// ```
    ///
    /// # Panics
    /// If the shapes cannot be broadcast together or the dtypes differ.
    #[track_caller]
    #[allow(clippy::should_implement_trait)]
    pub fn add(&self, other: &Tensor) -> Tensor {
        binary(self, other, Add)
    }

    /// `self - other` with broadcasting.
    ///
    /// # Panics
    /// If the shapes cannot be broadcast together or the dtypes differ.
    #[track_caller]
    #[allow(clippy::should_implement_trait)]
    pub fn sub(&self, other: &Tensor) -> Tensor {
        binary(self, other, Sub)
    }

    /// `self * other` elementwise with broadcasting.
    ///
    /// # Panics
    /// If the shapes cannot be broadcast together or the dtypes differ.
    #[track_caller]
    #[allow(clippy::should_implement_trait)]
    pub fn mul(&self, other: &Tensor) -> Tensor {
        binary(self, other, Mul)
    }

    /// `self / other` elementwise with broadcasting.
    ///
    /// # Panics
    /// If the shapes cannot be broadcast together or the dtypes differ.
    #[track_caller]
    #[allow(clippy::should_implement_trait)]
    pub fn div(&self, other: &Tensor) -> Tensor {
        binary(self, other, Div)
    }

    /// `self ^ exponent` elementwise with a tensor exponent and broadcasting, like `torch.pow`.
    /// For a constant exponent use [`powf`](Tensor::powf).
    ///
    /// # Panics
    /// If the shapes cannot be broadcast together or the dtypes differ.
    #[track_caller]
    pub fn pow(&self, exponent: &Tensor) -> Tensor {
        binary(self, exponent, Pow)
    }

    /// The larger of `self` and `other` elementwise, like `torch.maximum` (NaN if either is NaN).
    ///
    /// # Panics
    /// If the shapes cannot be broadcast together or the dtypes differ.
    #[track_caller]
    pub fn maximum(&self, other: &Tensor) -> Tensor {
        binary(self, other, Maximum)
    }

    /// The smaller of `self` and `other` elementwise, like `torch.minimum`.
    ///
    /// # Panics
    /// If the shapes cannot be broadcast together or the dtypes differ.
    #[track_caller]
    pub fn minimum(&self, other: &Tensor) -> Tensor {
        binary(self, other, Minimum)
    }
}

#[cfg(test)]
mod tests {
    use crate::prelude::*;
    use crate::testing::{randn64, randn64_t};

    #[test]
    fn add_sub_mul_div_gradcheck_same_shape() {
        let (a, b) = (randn64(&[3, 4], 1), randn64(&[3, 4], 2).abs() + 0.5);
        gradcheck(|x| &x[0] + &x[1], &[a.clone(), b.clone()]).unwrap();
        gradcheck(|x| &x[0] - &x[1], &[a.clone(), b.clone()]).unwrap();
        gradcheck(|x| &x[0] * &x[1], &[a.clone(), b.clone()]).unwrap();
        gradcheck(|x| &x[0] / &x[1], &[a, b]).unwrap();
    }

    #[test]
    fn arith_gradcheck_broadcast() {
        // [2,3,1] op [4] broadcasts to [2,3,4]; the gradient of b sums over the broadcast dims.
        let (a, b) = (randn64(&[2, 3, 1], 3), randn64(&[4], 4).abs() + 0.5);
        gradcheck(|x| &x[0] + &x[1], &[a.clone(), b.clone()]).unwrap();
        gradcheck(|x| &x[0] - &x[1], &[a.clone(), b.clone()]).unwrap();
        gradcheck(|x| &x[0] * &x[1], &[a.clone(), b.clone()]).unwrap();
        gradcheck(|x| &x[0] / &x[1], &[a, b]).unwrap();
    }

    #[test]
    fn arith_gradcheck_non_contiguous() {
        // transposed inputs: strides are not row-major
        let a = randn64_t(&[4, 3], 5);
        let b = randn64_t(&[4, 3], 6).abs() + 0.5;
        assert!(!a.is_contiguous());
        gradcheck(|x| &x[0] * &x[1] + &x[0] / &x[1], &[a, b.detach()]).unwrap();
    }

    #[test]
    fn scalar_operands_on_both_sides() {
        let x = Tensor::from_vec(vec![1.0, 2.0], &[2]);
        assert_eq!((&x + 1.0).to_vec::<f32>(), vec![2.0, 3.0]);
        assert_eq!((2.0 - &x).to_vec::<f32>(), vec![1.0, 0.0]);
        assert_eq!((&x * 3.0).to_vec::<f32>(), vec![3.0, 6.0]);
        assert_eq!((1.0 / &x).to_vec::<f32>(), vec![1.0, 0.5]);
        assert_eq!((-&x).to_vec::<f32>(), vec![-1.0, -2.0]);
    }

    #[test]
    fn pow_gradcheck_both_inputs() {
        // d(a^b)/da = b a^(b-1), d(a^b)/db = a^b ln a
        let a = randn64(&[3, 2], 7).abs() + 0.5;
        let b = randn64(&[2], 8);
        gradcheck(|x| x[0].pow(&x[1]), &[a, b]).unwrap();
    }

    #[test]
    fn maximum_minimum_gradcheck() {
        let a = randn64(&[3, 4], 9);
        let b = randn64(&[4], 10);
        gradcheck(|x| x[0].maximum(&x[1]), &[a.clone(), b.clone()]).unwrap();
        gradcheck(|x| x[0].minimum(&x[1]), &[a, b]).unwrap();
    }

    #[test]
    fn maximum_splits_gradient_on_ties() {
        let a = Tensor::from_vec(vec![1.0, 2.0], &[2]).requires_grad();
        let b = Tensor::from_vec(vec![1.0, 3.0], &[2]).requires_grad();
        a.maximum(&b).sum().backward();
        assert_eq!(a.grad().unwrap().to_vec::<f32>(), vec![0.5, 0.0]);
        assert_eq!(b.grad().unwrap().to_vec::<f32>(), vec![0.5, 1.0]);
    }

    #[test]
    #[should_panic(expected = "add: shapes [2, 3] and [4] cannot be broadcast together")]
    fn add_with_incompatible_shapes_names_op_and_shapes() {
        let _ = Tensor::zeros(&[2, 3]) + Tensor::zeros(&[4]);
    }

    #[test]
    #[should_panic(expected = "arith.rs")]
    fn shape_errors_point_at_the_callers_line() {
        let _ = Tensor::zeros(&[2, 3]).mul(&Tensor::zeros(&[4]));
    }

    #[test]
    #[should_panic(expected = "same dtype")]
    fn mixing_dtypes_is_an_error() {
        let _ = Tensor::zeros(&[2]) + Tensor::zeros_dtype(&[2], DType::F64);
    }
}
