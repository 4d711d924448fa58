//! exp, log, sqrt, rsqrt. f32 `exp` runs the branch-free [`exp_f32`] kernel (within 2 ulp).

use crate::tensor::{Float, Tensor};

use super::vector_math::{exp_f32, Madd};
use super::{unary, Needs, Unary};

#[derive(Clone, Copy)]
struct Exp;
impl Unary for Exp {
    const NAME: &'static str = "exp";
    const NEEDS: Needs = Needs::Output;
    fn f<F: Float>(&self, x: F) -> F {
        x.exp()
    }
    // d(e^x)/dx = e^x = y
    fn df(&self, y: &Tensor, g: &Tensor) -> Tensor {
        g * y
    }
    const FUSED: bool = true;
    fn dfdx<F: Float>(&self, y: F) -> F {
        y
    }
    const KERNEL: bool = true;
    #[inline(always)]
    fn f32<M: Madd>(&self, x: f32) -> f32 {
        exp_f32::<M>(x)
    }
}

#[derive(Clone, Copy)]
struct Log;
impl Unary for Log {
    const NAME: &'static str = "log";
    const NEEDS: Needs = Needs::Input;
    fn f<F: Float>(&self, x: F) -> F {
        x.ln()
    }
    // d(ln x)/dx = 1/x
    fn df(&self, x: &Tensor, g: &Tensor) -> Tensor {
        g / x
    }
    const FUSED: bool = true;
    fn dfdx<F: Float>(&self, x: F) -> F {
        x.recip()
    }
}

#[derive(Clone, Copy)]
struct Sqrt;
impl Unary for Sqrt {
    const NAME: &'static str = "sqrt";
    const NEEDS: Needs = Needs::Output;
    fn f<F: Float>(&self, x: F) -> F {
        x.sqrt()
    }
    // d(√x)/dx = 1 / (2√x) = 0.5 / y
    fn df(&self, y: &Tensor, g: &Tensor) -> Tensor {
        g * 0.5 / y
    }
    const FUSED: bool = true;
    fn dfdx<F: Float>(&self, y: F) -> F {
        F::c(0.5) / y
    }
}

#[derive(Clone, Copy)]
struct Rsqrt;
impl Unary for Rsqrt {
    const NAME: &'static str = "rsqrt";
    const NEEDS: Needs = Needs::Output;
    fn f<F: Float>(&self, x: F) -> F {
        x.sqrt().recip()
    }
    // d(x^-1/2)/dx = -1/2 x^-3/2 = -0.5 y³
    fn df(&self, y: &Tensor, g: &Tensor) -> Tensor {
        g * y.powf(3.0) * -0.5
    }
    const FUSED: bool = true;
    fn dfdx<F: Float>(&self, y: F) -> F {
        F::c(-0.5) * y * y * y
    }
}

impl Tensor {
    /// `e^x` elementwise. Its derivative is itself.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let y = Tensor::from_vec(vec![0.0, 1.0], &[2]).exp();
    /// assert_eq!(y.to_vec::<f32>(), vec![1.0, std::f32::consts::E]);
    /// ```
    #[track_caller]
    pub fn exp(&self) -> Tensor {
        unary(self, Exp)
    }

    /// The natural logarithm elementwise (NaN below 0, -inf at 0, as in PyTorch).
    #[track_caller]
    pub fn log(&self) -> Tensor {
        unary(self, Log)
    }

    /// The square root elementwise.
    #[track_caller]
    pub fn sqrt(&self) -> Tensor {
        unary(self, Sqrt)
    }

    /// `1 / √x` elementwise.
    #[track_caller]
    pub fn rsqrt(&self) -> Tensor {
        unary(self, Rsqrt)
    }
}

#[cfg(test)]
mod tests {
    use crate::prelude::*;
    use crate::testing::{randn64, randn64_t};

    #[test]
    fn exp_gradcheck() {
        gradcheck(|x| x[0].exp(), &[randn64(&[3, 4], 1)]).unwrap();
        gradcheck(|x| x[0].exp(), &[randn64_t(&[3, 4], 2)]).unwrap();
    }

    #[test]
    fn log_sqrt_rsqrt_gradcheck_on_positive_inputs() {
        let x = randn64(&[3, 4], 3).abs() + 0.5;
        gradcheck(|x| x[0].log(), std::slice::from_ref(&x)).unwrap();
        gradcheck(|x| x[0].sqrt(), std::slice::from_ref(&x)).unwrap();
        gradcheck(|x| x[0].rsqrt(), &[x]).unwrap();
        let xt = randn64_t(&[3, 4], 4).abs() + 0.5;
        gradcheck(|x| x[0].log() + x[0].sqrt() + x[0].rsqrt(), &[xt]).unwrap();
    }

    #[test]
    fn second_derivative_of_exp_is_exp() {
        let x = Tensor::from_vec_f64(vec![0.3], &[1]).requires_grad();
        let y = x.exp().sum();
        let dx = grad(&[&y], &[&x], true).remove(0);
        let ddx = grad(&[&dx.sum()], &[&x], false).remove(0);
        assert!((ddx.item() - 0.3f64.exp()).abs() < 1e-12);
    }

    #[test]
    #[should_panic(
        expected = "exp: expected a floating-point tensor (float32 or float64), got int64, at src/ops/unary/exp_log.rs"
    )]
    fn exp_of_an_integer_tensor_names_the_dtype_and_the_callers_line() {
        let _ = Tensor::from_vec_i64(vec![1, 2], &[2]).exp();
    }
}
