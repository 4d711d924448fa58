//! sin, cos, tanh.

use crate::tensor::{Float, Tensor};

use super::{unary, Needs, Unary};

#[derive(Clone, Copy)]
struct Sin;
impl Unary for Sin {
    const NAME: &'static str = "sin";
    const NEEDS: Needs = Needs::Input;
    fn f<F: Float>(&self, x: F) -> F {
        x.sin()
    }
    // d(sin x)/dx = cos x
    fn df(&self, x: &Tensor, g: &Tensor) -> Tensor {
        g * x.cos()
    }
    const FUSED: bool = true;
    fn dfdx<F: Float>(&self, x: F) -> F {
        x.cos()
    }
}

#[derive(Clone, Copy)]
struct Cos;
impl Unary for Cos {
    const NAME: &'static str = "cos";
    const NEEDS: Needs = Needs::Input;
    fn f<F: Float>(&self, x: F) -> F {
        x.cos()
    }
    // d(cos x)/dx = -sin x
    fn df(&self, x: &Tensor, g: &Tensor) -> Tensor {
        -(g * x.sin())
    }
    const FUSED: bool = true;
    fn dfdx<F: Float>(&self, x: F) -> F {
        -x.sin()
    }
}

#[derive(Clone, Copy)]
struct Tanh;
impl Unary for Tanh {
    const NAME: &'static str = "tanh";
    const NEEDS: Needs = Needs::Output;
    fn f<F: Float>(&self, x: F) -> F {
        x.tanh()
    }
    // d(tanh x)/dx = 1 - tanh² x = 1 - y²
    fn df(&self, y: &Tensor, g: &Tensor) -> Tensor {
        g * (1.0 - y * y)
    }
    const FUSED: bool = true;
    fn dfdx<F: Float>(&self, y: F) -> F {
        F::one() - y * y
    }
}

impl Tensor {
    /// The sine elementwise.
    #[track_caller]
    pub fn sin(&self) -> Tensor {
        unary(self, Sin)
    }

    /// The cosine elementwise.
    #[track_caller]
    pub fn cos(&self) -> Tensor {
        unary(self, Cos)
    }

    /// The hyperbolic tangent elementwise.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// assert_eq!(Tensor::from_vec(vec![0.0], &[1]).tanh().item(), 0.0);
    /// ```
    #[track_caller]
    pub fn tanh(&self) -> Tensor {
        unary(self, Tanh)
    }
}

#[cfg(test)]
mod tests {
    use crate::prelude::*;
    use crate::testing::{randn64, randn64_t};

    #[test]
    fn sin_cos_tanh_gradcheck() {
        for x in [randn64(&[3, 4], 1), randn64_t(&[3, 4], 2)] {
            gradcheck(|x| x[0].sin(), std::slice::from_ref(&x)).unwrap();
            gradcheck(|x| x[0].cos(), std::slice::from_ref(&x)).unwrap();
            gradcheck(|x| x[0].tanh(), std::slice::from_ref(&x)).unwrap();
        }
    }

    #[test]
    fn tanh_second_derivative_matches_analytic() {
        // y = tanh x, y' = 1 - y², y'' = -2 y (1 - y²)
        let x = Tensor::from_vec_f64(vec![0.7], &[1]).requires_grad();
        let dx = grad(&[&x.tanh().sum()], &[&x], true).remove(0);
        let ddx = grad(&[&dx.sum()], &[&x], false).remove(0).item();
        let y = 0.7f64.tanh();
        assert!((ddx - (-2.0 * y * (1.0 - y * y))).abs() < 1e-12);
    }
}
