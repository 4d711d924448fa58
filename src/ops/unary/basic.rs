//! neg, abs, powf (constant exponent), clamp.

use crate::autograd::tape::Attr;
use crate::tensor::{Float, Tensor};

use super::{unary, Needs, Unary};

#[derive(Clone, Copy)]
struct Neg;
impl Unary for Neg {
    const NAME: &'static str = "neg";
    const NEEDS: Needs = Needs::Nothing;
    fn f<F: Float>(&self, x: F) -> F {
        -x
    }
    fn df(&self, _: &Tensor, g: &Tensor) -> Tensor {
        g.neg()
    }
}

#[derive(Clone, Copy)]
struct Abs;
impl Unary for Abs {
    const NAME: &'static str = "abs";
    const NEEDS: Needs = Needs::Input;
    fn f<F: Float>(&self, x: F) -> F {
        x.abs()
    }
    // d|x|/dx = sign(x), 0 at 0 as in PyTorch
    fn df(&self, x: &Tensor, g: &Tensor) -> Tensor {
        g * x.sign()
    }
}

#[derive(Clone, Copy)]
struct Sign;
impl Unary for Sign {
    const NAME: &'static str = "sign";
    const NEEDS: Needs = Needs::Nothing;
    fn f<F: Float>(&self, x: F) -> F {
        if x > F::zero() {
            F::one()
        } else if x < F::zero() {
            -F::one()
        } else {
            x // keeps 0 and NaN
        }
    }
    fn df(&self, _: &Tensor, g: &Tensor) -> Tensor {
        Tensor::zeros_like(g)
    }
}

#[derive(Clone, Copy)]
struct Powf(f64);
impl Unary for Powf {
    const NAME: &'static str = "pow_scalar";
    const NEEDS: Needs = Needs::Input;
    fn f<F: Float>(&self, x: F) -> F {
        if self.0 == 2.0 {
            x * x
        } else {
            x.powf(F::c(self.0))
        }
    }
    // d(x^p)/dx = p x^(p-1)
    fn df(&self, x: &Tensor, g: &Tensor) -> Tensor {
        if self.0 == 0.0 {
            return Tensor::zeros_like(g);
        }
        g * x.powf(self.0 - 1.0) * self.0
    }
    const FUSED: bool = true;
    fn dfdx<F: Float>(&self, x: F) -> F {
        match self.0 {
            0.0 => F::zero(),
            2.0 => F::c(2.0) * x,
            p => F::c(p) * x.powf(F::c(p - 1.0)),
        }
    }
    fn attrs(&self) -> Vec<(&'static str, Attr)> {
        vec![("exponent", Attr::Float(self.0))]
    }
}

#[derive(Clone, Copy)]
struct Clamp(f64, f64);
impl Unary for Clamp {
    const NAME: &'static str = "clamp";
    const NEEDS: Needs = Needs::Input;
    fn f<F: Float>(&self, x: F) -> F {
        if x.is_nan() {
            x
        } else {
            x.max(F::c(self.0)).min(F::c(self.1))
        }
    }
    // 1 inside [min, max] (boundaries included, as in PyTorch), 0 outside
    fn df(&self, x: &Tensor, g: &Tensor) -> Tensor {
        let inside = x.ge_scalar(self.0).logical_and(&x.le_scalar(self.1));
        g.where_(&inside, &Tensor::zeros_like(g))
    }
    fn attrs(&self) -> Vec<(&'static str, Attr)> {
        vec![("min", Attr::Float(self.0)), ("max", Attr::Float(self.1))]
    }
}

impl Tensor {
    /// `-self`, like `torch.neg`.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// assert_eq!(Tensor::from_vec(vec![1.0, -2.0], &[2]).neg().to_vec::<f32>(), vec![-1.0, 2.0]);
    /// ```
    #[track_caller]
    #[allow(clippy::should_implement_trait)]
    pub fn neg(&self) -> Tensor {
        unary(self, Neg)
    }

    /// `|self|`; its gradient is `sign(x)` (0 at 0).
    #[track_caller]
    pub fn abs(&self) -> Tensor {
        unary(self, Abs)
    }

    /// -1, 0 or 1 by the sign of each element (gradient 0), like `torch.sign`.
    #[track_caller]
    pub fn sign(&self) -> Tensor {
        unary(self, Sign)
    }

    /// `self ^ p` elementwise with a constant exponent, like `x ** p`.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// assert_eq!(Tensor::from_vec(vec![2.0, 3.0], &[2]).powf(2.0).to_vec::<f32>(), vec![4.0, 9.0]);
    /// ```
    #[track_caller]
    pub fn powf(&self, p: f64) -> Tensor {
        unary(self, Powf(p))
    }

    /// `x²`.
    #[track_caller]
    pub fn square(&self) -> Tensor {
        unary(self, Powf(2.0))
    }

    /// Limits every element to `[min, max]`, like `torch.clamp`; the gradient is 1 inside the
    /// range (boundaries included) and 0 outside.
    ///
    /// # Panics
    /// If `min > max`.
    #[track_caller]
    pub fn clamp(&self, min: f64, max: f64) -> Tensor {
        if min > max {
            panic!(
                "clamp: min ({min}) must not exceed max ({max}), at {}",
                std::panic::Location::caller()
            );
        }
        unary(self, Clamp(min, max))
    }

    /// [`clamp`](Tensor::clamp) with only a lower bound.
    #[track_caller]
    pub fn clamp_min(&self, min: f64) -> Tensor {
        unary(self, Clamp(min, f64::INFINITY))
    }

    /// [`clamp`](Tensor::clamp) with only an upper bound.
    #[track_caller]
    pub fn clamp_max(&self, max: f64) -> Tensor {
        unary(self, Clamp(f64::NEG_INFINITY, max))
    }
}

#[cfg(test)]
mod tests {
    use crate::prelude::*;
    use crate::testing::{randn64, randn64_t};

    #[test]
    fn neg_abs_gradcheck() {
        // d(-x)/dx = -1, d|x|/dx = sign(x)
        gradcheck(|x| x[0].neg(), &[randn64(&[3, 4], 1)]).unwrap();
        gradcheck(|x| x[0].abs(), &[randn64_t(&[3, 4], 2)]).unwrap();
    }

    #[test]
    fn powf_gradcheck() {
        // d(x^3)/dx = 3x², d(x^0.5)/dx = 0.5 x^-0.5
        gradcheck(|x| x[0].powf(3.0), &[randn64(&[2, 3], 3)]).unwrap();
        gradcheck(|x| x[0].powf(0.5), &[randn64_t(&[2, 3], 4).abs() + 0.1]).unwrap();
        gradcheck(|x| x[0].square(), &[randn64(&[5], 5)]).unwrap();
    }

    #[test]
    fn clamp_gradcheck_and_values() {
        let x = Tensor::from_vec(vec![-2.0, 0.5, 3.0], &[3]);
        assert_eq!(x.clamp(-1.0, 1.0).to_vec::<f32>(), vec![-1.0, 0.5, 1.0]);
        assert_eq!(x.clamp_min(0.0).to_vec::<f32>(), vec![0.0, 0.5, 3.0]);
        // inputs away from the boundaries, where the derivative exists
        let x = Tensor::from_vec_f64(vec![-2.0, -0.5, 0.3, 2.5], &[4]);
        gradcheck(|x| x[0].clamp(-1.0, 1.0), &[x]).unwrap();
    }

    #[test]
    #[should_panic(expected = "clamp: min (2) must not exceed max (1)")]
    fn clamp_rejects_an_empty_range() {
        let _ = Tensor::zeros(&[1]).clamp(2.0, 1.0);
    }
}
