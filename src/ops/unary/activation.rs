//! Activations: sigmoid, relu, leaky_relu, gelu (exact and tanh), silu, softplus.
//!
//! The exact GELU needs the normal CDF, computed with `erfc`: the `libm` crate's in f64 (Rust's
//! `std` lacks it), a branch-free one of ours in f32 so that the elementwise loops vectorise.
//! Both GELUs record their derivative as an op of its own (`gelu_backward`), one fused pass, whose
//! own derivative is written with tensor ops, so gradients of any order work.

use std::f64::consts::FRAC_1_SQRT_2;

use crate::autograd::tape::Attr;
use crate::tensor::{Element, Float, Tensor};

use super::vector_math::{erfc_and_gauss_f32, erfc_f32, exp_f32, Madd};
use super::{unary, Needs, Unary};

/// `1 / √(2π)`, the peak of the standard normal density.
const FRAC_1_SQRT_2PI: f64 = 0.398_942_280_401_432_7;
/// `√(2/π)`, the scale inside the tanh approximation of GELU.
const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
/// The cubic coefficient of the tanh approximation of GELU.
const GELU_TANH_C: f64 = 0.044_715;

// ----- the normal distribution ----------------------------------------------------------------

/// The standard normal CDF `Φ(x) = erfc(-x/√2) / 2`: written with `erfc` rather than
/// `(1 + erf(x/√2)) / 2`, it keeps its relative precision far in the left tail instead of
/// cancelling to 0. Through the `erfc` of `libm` in f64 (fdlibm's rational approximations, under
/// 1 ulp); f32 tensors use [`normal_cdf_f32`].
#[inline(always)]
fn normal_cdf<F: Float>(x: F) -> F {
    F::c(0.5 * libm::erfc(-Element::to_f64(x) * FRAC_1_SQRT_2))
}

/// The standard normal density `φ(x) = e^(-x²/2) / √(2π)`.
#[inline(always)]
fn normal_pdf<F: Float>(x: F) -> F {
    F::c(FRAC_1_SQRT_2PI) * (F::c(-0.5) * x * x).exp()
}

/// `Φ(x)` in f32 through the branch-free [`erfc_f32`] (within 4 ulp), so that loops over
/// tensors vectorise.
#[inline(always)]
fn normal_cdf_f32<M: Madd>(x: f32) -> f32 {
    0.5 * erfc_f32::<M>(-x * std::f32::consts::FRAC_1_SQRT_2)
}

/// `(Φ(x), φ(x))` in f32, sharing one `e^(-x²/2)` ([`erfc_and_gauss_f32`]).
#[inline(always)]
fn normal_cdf_pdf_f32<M: Madd>(x: f32) -> (f32, f32) {
    let (erfc, gauss) = erfc_and_gauss_f32::<M>(-x * std::f32::consts::FRAC_1_SQRT_2);
    (0.5 * erfc, FRAC_1_SQRT_2PI as f32 * gauss)
}

/// `φ(x)` with tensor ops (differentiable).
fn normal_pdf_t(x: &Tensor) -> Tensor {
    (x * x * -0.5).exp() * FRAC_1_SQRT_2PI
}

/// The logistic sigmoid of one value, without overflow for large |x|.
fn sigmoid<F: Float>(x: F) -> F {
    if x >= F::zero() {
        (F::one() + (-x).exp()).recip()
    } else {
        let e = x.exp();
        e / (F::one() + e)
    }
}

/// The logistic sigmoid in f32 through the branch-free [`exp_f32`]: one `e^(-|x|)`, then
/// `1 / (1 + e)` or `e / (1 + e)` by the sign (so tiny results keep their precision).
#[inline(always)]
fn sigmoid_f32<M: Madd>(x: f32) -> f32 {
    let e = exp_f32::<M>(-x.abs());
    let r = 1.0 / (1.0 + e);
    if x >= 0.0 {
        r
    } else {
        e * r
    }
}

// ----- ops -------------------------------------------------------------------------------------

#[derive(Clone, Copy)]
struct Sigmoid;
impl Unary for Sigmoid {
    const NAME: &'static str = "sigmoid";
    const NEEDS: Needs = Needs::Output;
    fn f<F: Float>(&self, x: F) -> F {
        sigmoid(x)
    }
    // dσ/dx = σ (1 - σ) = y (1 - y)
    fn df(&self, y: &Tensor, g: &Tensor) -> Tensor {
        g * (y * (1.0 - y))
    }
    const KERNEL: bool = true;
    #[inline(always)]
    fn f32<M: Madd>(&self, x: f32) -> f32 {
        sigmoid_f32::<M>(x)
    }
}

#[derive(Clone, Copy)]
struct Relu;
impl Unary for Relu {
    const NAME: &'static str = "relu";
    const NEEDS: Needs = Needs::Output;
    fn f<F: Float>(&self, x: F) -> F {
        if x > F::zero() || x.is_nan() {
            x
        } else {
            F::zero()
        }
    }
    // d relu/dx = 1 where y > 0, else 0 (0 at x = 0, as in PyTorch)
    fn df(&self, y: &Tensor, g: &Tensor) -> Tensor {
        g.masked_fill(&y.le_scalar(0.0), 0.0)
    }
    const FUSED: bool = true;
    fn dfdx<F: Float>(&self, y: F) -> F {
        if y <= F::zero() {
            F::zero()
        } else {
            F::one()
        }
    }
    // one pass, like PyTorch's threshold_backward: exactly 0 where y <= 0, whatever g holds
    fn fused_grad<F: Float>(&self, y: F, g: F) -> F {
        if y <= F::zero() {
            F::zero()
        } else {
            g
        }
    }
}

#[derive(Clone, Copy)]
struct LeakyRelu(f64);
impl Unary for LeakyRelu {
    const NAME: &'static str = "leaky_relu";
    const NEEDS: Needs = Needs::Input;
    fn f<F: Float>(&self, x: F) -> F {
        if x > F::zero() {
            x
        } else {
            x * F::c(self.0)
        }
    }
    // 1 where x > 0, the slope elsewhere (x = 0 included, as in PyTorch)
    fn df(&self, x: &Tensor, g: &Tensor) -> Tensor {
        g.where_(&x.gt_scalar(0.0), &(g * self.0))
    }
    fn attrs(&self) -> Vec<(&'static str, Attr)> {
        vec![("negative_slope", Attr::Float(self.0))]
    }
}

/// Which GELU: exact `x Φ(x)` or the tanh approximation.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Approx {
    None,
    Tanh,
}

impl Approx {
    fn attrs(self) -> Vec<(&'static str, Attr)> {
        let s = match self {
            Approx::None => "none",
            Approx::Tanh => "tanh",
        };
        vec![("approximate", Attr::Str(s.into()))]
    }
}

/// `u(x) = √(2/π) (x + c x³)` and `tanh u`, the pieces of the tanh GELU.
fn tanh_gelu_parts(x: f64) -> (f64, f64) {
    let du = SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_TANH_C * x * x);
    let t = (SQRT_2_OVER_PI * (x + GELU_TANH_C * x * x * x)).tanh();
    (du, t)
}

#[derive(Clone, Copy)]
struct Gelu(Approx);
impl Unary for Gelu {
    const NAME: &'static str = "gelu";
    const NEEDS: Needs = Needs::Input;
    #[inline(always)]
    fn f<F: Float>(&self, x: F) -> F {
        match self.0 {
            // x Φ(x)
            Approx::None => x * normal_cdf(x),
            // x (1 + tanh u) / 2
            Approx::Tanh => {
                let v = Element::to_f64(x);
                F::c(0.5 * v * (1.0 + tanh_gelu_parts(v).1))
            }
        }
    }
    fn df(&self, x: &Tensor, g: &Tensor) -> Tensor {
        g * unary(x, GeluGrad(self.0))
    }
    const FUSED: bool = true;
    #[inline(always)]
    fn dfdx<F: Float>(&self, x: F) -> F {
        GeluGrad(self.0).f(x)
    }
    fn attrs(&self) -> Vec<(&'static str, Attr)> {
        self.0.attrs()
    }
    const KERNEL: bool = true;
    #[inline(always)]
    fn f32<M: Madd>(&self, x: f32) -> f32 {
        match self.0 {
            Approx::None => x * normal_cdf_f32::<M>(x),
            Approx::Tanh => self.f(x),
        }
    }
    #[inline(always)]
    fn fused_grad_f32<M: Madd>(&self, x: f32, g: f32) -> f32 {
        g * GeluGrad(self.0).f32::<M>(x)
    }
}

/// The derivative of GELU as an op of its own, so that the first backward pass is one fused map
/// while its own derivative (written with tensor ops) keeps higher orders exact.
#[derive(Clone, Copy)]
struct GeluGrad(Approx);
impl Unary for GeluGrad {
    const NAME: &'static str = "gelu_backward";
    const NEEDS: Needs = Needs::Input;
    #[inline(always)]
    fn f<F: Float>(&self, x: F) -> F {
        match self.0 {
            // d(x Φ(x))/dx = Φ(x) + x φ(x)
            Approx::None => {
                let (cdf, pdf) = (normal_cdf(x), normal_pdf(x));
                cdf + x * pdf
            }
            // d(x (1 + tanh u)/2)/dx = (1 + t)/2 + x (1 - t²) u' / 2
            Approx::Tanh => {
                let v = Element::to_f64(x);
                let (du, t) = tanh_gelu_parts(v);
                F::c(0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * du)
            }
        }
    }
    fn df(&self, x: &Tensor, g: &Tensor) -> Tensor {
        let x2 = x * x;
        match self.0 {
            // d(Φ + x φ)/dx = φ + φ + x φ' = φ (2 - x²), since φ' = -x φ
            Approx::None => g * normal_pdf_t(x) * (2.0 - &x2),
            // d²/dx² = (1 - t²) (u' - x t u'² + x u''/2), u' = k (1 + 3c x²), u'' = 6 k c x
            Approx::Tanh => {
                let k = SQRT_2_OVER_PI;
                let t = ((x + &x2 * x * GELU_TANH_C) * k).tanh();
                let du = (&x2 * (3.0 * GELU_TANH_C) + 1.0) * k;
                let inner = &du - x * &t * &du * &du + &x2 * (3.0 * k * GELU_TANH_C);
                g * (1.0 - &t * &t) * inner
            }
        }
    }
    fn attrs(&self) -> Vec<(&'static str, Attr)> {
        self.0.attrs()
    }
    const KERNEL: bool = true;
    #[inline(always)]
    fn f32<M: Madd>(&self, x: f32) -> f32 {
        match self.0 {
            Approx::None => {
                let (cdf, pdf) = normal_cdf_pdf_f32::<M>(x);
                M::madd(x, pdf, cdf)
            }
            Approx::Tanh => self.f(x),
        }
    }
}

#[derive(Clone, Copy)]
struct Silu;
impl Unary for Silu {
    const NAME: &'static str = "silu";
    const NEEDS: Needs = Needs::Input;
    fn f<F: Float>(&self, x: F) -> F {
        x * sigmoid(x)
    }
    const KERNEL: bool = true;
    #[inline(always)]
    fn f32<M: Madd>(&self, x: f32) -> f32 {
        x * sigmoid_f32::<M>(x)
    }
    // d(x σ(x))/dx = σ + x σ (1 - σ) = σ (1 + x (1 - σ))
    fn df(&self, x: &Tensor, g: &Tensor) -> Tensor {
        let s = x.sigmoid();
        g * &s * (x * (1.0 - &s) + 1.0)
    }
}

#[derive(Clone, Copy)]
struct Softplus {
    beta: f64,
    threshold: f64,
}
impl Unary for Softplus {
    const NAME: &'static str = "softplus";
    const NEEDS: Needs = Needs::Input;
    fn f<F: Float>(&self, x: F) -> F {
        let bx = x * F::c(self.beta);
        if bx > F::c(self.threshold) {
            x
        } else {
            bx.exp().ln_1p() / F::c(self.beta)
        }
    }
    // d(ln(1 + e^(βx))/β)/dx = σ(βx); 1 where βx > threshold (the linear part)
    fn df(&self, x: &Tensor, g: &Tensor) -> Tensor {
        let bx = x * self.beta;
        let linear = bx.gt_scalar(self.threshold);
        let one = Tensor::scalar_of(1.0, x.dtype());
        g * one.where_(&linear, &bx.sigmoid())
    }
    fn attrs(&self) -> Vec<(&'static str, Attr)> {
        vec![
            ("beta", Attr::Float(self.beta)),
            ("threshold", Attr::Float(self.threshold)),
        ]
    }
}

impl Tensor {
    /// The logistic sigmoid `1 / (1 + e^(-x))` elementwise, like `torch.sigmoid`. Its derivative
    /// is `σ (1 - σ)`.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let y = Tensor::from_vec(vec![0.0, 200.0, -200.0], &[3]).sigmoid();
    /// assert_eq!(y.to_vec::<f32>(), vec![0.5, 1.0, 0.0]);
    /// ```
    ///
    /// # Panics
    /// If the tensor is not floating point.
    #[track_caller]
    pub fn sigmoid(&self) -> Tensor {
        unary(self, Sigmoid)
    }

    /// `max(x, 0)` elementwise, like `torch.relu`. The gradient is 1 where `x > 0` and 0
    /// elsewhere (also at 0); NaN stays NaN.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let y = Tensor::from_vec(vec![-1.0, 0.0, 2.0], &[3]).relu();
    /// assert_eq!(y.to_vec::<f32>(), vec![0.0, 0.0, 2.0]);
    /// ```
    ///
    /// # Panics
    /// If the tensor is not floating point.
    #[track_caller]
    pub fn relu(&self) -> Tensor {
        unary(self, Relu)
    }

    /// `x` where `x > 0`, `negative_slope · x` elsewhere, like
    /// `F.leaky_relu(x, negative_slope)` (PyTorch's default slope is 0.01).
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let y = Tensor::from_vec(vec![-2.0, 3.0], &[2]).leaky_relu(0.1);
    /// assert_eq!(y.to_vec::<f32>(), vec![-0.2, 3.0]);
    /// ```
    ///
    /// # Panics
    /// If the tensor is not floating point.
    #[track_caller]
    pub fn leaky_relu(&self, negative_slope: f64) -> Tensor {
        unary(self, LeakyRelu(negative_slope))
    }

    /// The Gaussian error linear unit `x Φ(x) = x (1 + erf(x/√2)) / 2` elementwise, exact (with
    /// the error function), like `F.gelu(x)`. For the tanh approximation used by GPT-2 and BERT
    /// checkpoints see [`gelu_tanh`](Tensor::gelu_tanh).
    ///
    /// The left tail is computed with `erfc`, so `gelu(-10)` is `-7.6e-23` rather than PyTorch's
    /// `-0.0`.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let y = Tensor::from_vec_f64(vec![0.0, 1.0], &[2]).gelu();
    /// assert!((y.to_vec::<f64>()[1] - 0.8413447460685429).abs() < 1e-15); // Φ(1)
    /// ```
    ///
    /// # Panics
    /// If the tensor is not floating point.
    #[track_caller]
    pub fn gelu(&self) -> Tensor {
        unary(self, Gelu(Approx::None))
    }

    /// GELU with the tanh approximation `x (1 + tanh(√(2/π) (x + 0.044715 x³))) / 2`, like
    /// `F.gelu(x, approximate='tanh')`.
    ///
    /// # Panics
    /// If the tensor is not floating point.
    #[track_caller]
    pub fn gelu_tanh(&self) -> Tensor {
        unary(self, Gelu(Approx::Tanh))
    }

    /// The sigmoid linear unit (swish) `x σ(x)` elementwise, like `F.silu`.
    ///
    /// # Panics
    /// If the tensor is not floating point.
    #[track_caller]
    pub fn silu(&self) -> Tensor {
        unary(self, Silu)
    }

    /// `ln(1 + e^x)` elementwise, a smooth ReLU, like `F.softplus(x)` (beta 1, threshold 20:
    /// where `x > 20` it returns `x`).
    ///
    /// # Panics
    /// If the tensor is not floating point.
    #[track_caller]
    pub fn softplus(&self) -> Tensor {
        self.softplus_with(1.0, 20.0)
    }

    /// `ln(1 + e^(βx)) / β` elementwise, and `x` where `βx > threshold` (for numerical
    /// stability), like `F.softplus(x, beta, threshold)`.
    ///
    /// # Panics
    /// If `beta` is 0 or not finite, or the tensor is not floating point.
    #[track_caller]
    pub fn softplus_with(&self, beta: f64, threshold: f64) -> Tensor {
        if beta == 0.0 || !beta.is_finite() {
            panic!(
                "softplus: beta must be finite and non-zero, got {beta}, at {}",
                std::panic::Location::caller()
            );
        }
        unary(self, Softplus { beta, threshold })
    }
}

#[cfg(test)]
mod tests {
    use super::super::vector_math::{Fused, Separate};
    use super::{normal_cdf, normal_cdf_f32};
    use crate::prelude::*;
    use crate::testing::{randn64, randn64_t};

    fn assert_all_close(got: &Tensor, want: &[f64], tol: f64) {
        let got = got.to_vec::<f64>();
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(
                (g - w).abs() <= tol * w.abs().max(1.0),
                "element {i}: got {g}, want {w}"
            );
        }
    }

    /// `(d/dx, d²/dx²)` of `Σ f(x)` at each of `xs`, by `grad(.., create_graph = true)` twice.
    fn first_and_second(f: impl Fn(&Tensor) -> Tensor, xs: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let x = Tensor::from_vec_f64(xs.to_vec(), &[xs.len()]).requires_grad();
        let dx = grad(&[&f(&x).sum()], &[&x], true).remove(0);
        let ddx = grad(&[&dx.sum()], &[&x], false).remove(0);
        (dx.to_vec::<f64>(), ddx.to_vec::<f64>())
    }

    const XS: [f64; 7] = [-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0];

    #[test]
    fn normal_cdf_matches_reference_values_in_f64_and_f32() {
        // Φ(x) from mpmath.ncdf at 40 digits; the left tail keeps its relative precision
        let cases = [
            (0.0f64, 0.5f64),
            (0.5, 0.6914624612740131),
            (-1.0, 0.15865525393145707),
            (2.5, 0.9937903346742238),
            (-4.0, 3.167124183311992e-05),
            (-8.0, 6.220960574271784e-16),
            (-12.0, 1.776482112077679e-33),
        ];
        for (x, want) in cases {
            // rounding z = x/√2 (relative ε) moves erfc z by 2z²ε = x²ε: allow twice that
            let got: f64 = normal_cdf(x);
            let tol = 1e-15 + 2.0 * x * x * f64::EPSILON;
            assert!(
                ((got - want) / want).abs() < tol,
                "Φ({x}) = {got}, want {want}"
            );
            for got32 in [
                normal_cdf_f32::<Fused>(x as f32),
                normal_cdf_f32::<Separate>(x as f32),
            ] {
                let tol = 1e-7 + 2.0 * x * x * f32::EPSILON as f64;
                assert!(
                    ((got32 as f64 - want) / want).abs() < tol,
                    "f32 Φ({x}) = {got32}, want {want}"
                );
            }
        }
        assert!(normal_cdf(f64::NAN).is_nan());
        assert_eq!(normal_cdf(f64::INFINITY), 1.0);
        assert_eq!(normal_cdf_f32::<Fused>(f32::NEG_INFINITY), 0.0);
        assert!(normal_cdf_f32::<Separate>(f32::NAN).is_nan());
    }

    #[test]
    fn activations_gradcheck() {
        for x in [randn64(&[3, 4], 1), randn64_t(&[3, 4], 2)] {
            let xs = std::slice::from_ref(&x);
            gradcheck(|x| x[0].sigmoid(), xs).unwrap();
            gradcheck(|x| x[0].gelu(), xs).unwrap();
            gradcheck(|x| x[0].gelu_tanh(), xs).unwrap();
            gradcheck(|x| x[0].silu(), xs).unwrap();
            gradcheck(|x| x[0].softplus(), xs).unwrap();
            // threshold 0.5 puts some elements on the linear side
            gradcheck(|x| x[0].softplus_with(2.0, 0.5), xs).unwrap();
            // relu and leaky_relu have a kink at 0, which randn never hits exactly
            gradcheck(|x| x[0].relu(), xs).unwrap();
            gradcheck(|x| x[0].leaky_relu(0.1), xs).unwrap();
        }
    }

    #[test]
    fn gradients_of_gradients_gradcheck() {
        // the backward rules are tensor ops, so their own gradients check out too
        let x = randn64_t(&[2, 3], 3);
        let fs: [fn(&Tensor) -> Tensor; 5] = [
            Tensor::sigmoid,
            Tensor::gelu,
            Tensor::gelu_tanh,
            Tensor::silu,
            Tensor::softplus,
        ];
        for f in fs {
            gradcheck(
                move |x| {
                    // gradcheck's finite differences run under no_grad on plain leaves
                    let _g = enable_grad();
                    let xr = if x[0].requires_grad_enabled() {
                        x[0].clone()
                    } else {
                        x[0].detach().requires_grad()
                    };
                    grad(&[&f(&xr).sum()], &[&xr], true).remove(0)
                },
                std::slice::from_ref(&x),
            )
            .unwrap();
        }
    }

    #[test]
    fn sigmoid_values_and_saturation() {
        // σ(x) = 1 / (1 + e^-x)
        let want: Vec<f64> = XS.iter().map(|x| 1.0 / (1.0 + (-x).exp())).collect();
        let x = Tensor::from_vec_f64(XS.to_vec(), &[7]);
        assert_all_close(&x.sigmoid(), &want, 1e-15);
        // no overflow of e^-x for very negative x
        let big = Tensor::from_vec_f64(vec![-800.0, 800.0], &[2]).sigmoid();
        assert_eq!(big.to_vec::<f64>(), vec![0.0, 1.0]);
    }

    #[test]
    fn sigmoid_second_derivative_matches_analytic() {
        // σ' = σ (1 - σ), σ'' = σ (1 - σ) (1 - 2σ)
        let (d1, d2) = first_and_second(Tensor::sigmoid, &XS);
        for (i, x) in XS.iter().enumerate() {
            let s = 1.0 / (1.0 + (-x).exp());
            assert!((d1[i] - s * (1.0 - s)).abs() < 1e-14);
            assert!((d2[i] - s * (1.0 - s) * (1.0 - 2.0 * s)).abs() < 1e-14);
        }
    }

    #[test]
    fn relu_and_leaky_relu_values_and_gradient_at_zero() {
        let x = Tensor::from_vec(vec![-2.0, 0.0, 3.0, f32::NAN], &[4]).requires_grad();
        let y = x.relu();
        let v = y.to_vec::<f32>();
        assert_eq!(&v[..3], &[0.0, 0.0, 3.0]);
        assert!(v[3].is_nan());
        y.sum().backward();
        // 0 at x = 0, as in PyTorch
        assert_eq!(&x.grad().unwrap().to_vec::<f32>()[..3], &[0.0, 0.0, 1.0]);

        let x = Tensor::from_vec_f64(vec![-2.0, 0.0, 3.0], &[3]).requires_grad();
        let y = x.leaky_relu(0.01);
        assert_eq!(y.to_vec::<f64>(), vec![-0.02, 0.0, 3.0]);
        y.sum().backward();
        // the slope at x = 0, as in PyTorch
        assert_eq!(x.grad().unwrap().to_vec::<f64>(), vec![0.01, 0.01, 1.0]);
    }

    #[test]
    fn relu_fused_backward_zeroes_an_infinite_gradient_like_the_tensor_rule() {
        // d(relu(x) · ∞)/dx: the upstream gradient is ∞ everywhere; where relu is flat the
        // gradient is exactly 0 (not 0 · ∞ = NaN), in the fused pass and in the
        // differentiable rule used under create_graph alike
        let x = Tensor::from_vec_f64(vec![-1.0, 0.0, 2.0], &[3]).requires_grad();
        for create_graph in [false, true] {
            let y = (x.relu() * f64::INFINITY).sum();
            let dx = grad(&[&y], &[&x], create_graph).remove(0);
            assert_eq!(dx.to_vec::<f64>(), vec![0.0, 0.0, f64::INFINITY]);
        }
    }

    #[test]
    fn gelu_values_match_x_phi_x() {
        // gelu(x) = x Φ(x); Φ(-3), Φ(-1), Φ(-1/2) from mpmath.ncdf, Φ(-x) = 1 - Φ(x)
        let phi = [
            0.0013498980316300946,
            0.15865525393145705,
            0.3085375387259869,
        ];
        let cdf = [
            phi[0],
            phi[1],
            phi[2],
            0.5,
            1.0 - phi[2],
            1.0 - phi[1],
            1.0 - phi[0],
        ];
        let want: Vec<f64> = XS.iter().zip(cdf).map(|(x, c)| x * c).collect();
        let x = Tensor::from_vec_f64(XS.to_vec(), &[7]);
        assert_all_close(&x.gelu(), &want, 1e-15);
        // the far left tail keeps its value: gelu(-10) = -10 Φ(-10) = -7.619853024160526e-23
        let tail = Tensor::from_vec_f64(vec![-10.0], &[1]).gelu().item();
        assert!(
            (tail / -7.619853024160526e-23 - 1.0).abs() < 1e-13,
            "{tail}"
        );
        // f32 through the f32 kernel
        let y32 = Tensor::from_vec(vec![1.0], &[1]).gelu().item();
        assert!((y32 - 0.841344746068543).abs() < 1e-7);
    }

    #[test]
    fn f32_kernels_agree_with_f64_on_contiguous_and_strided_tensors() {
        // gelu, its fused backward, sigmoid, silu and exp in f32 (the vector_math kernels, on
        // a tensor big enough to be split over threads, and on a transposed view) against the
        // f64 ops on the same values, within a few f32 ulps
        type Op = fn(&Tensor) -> Tensor;
        let gelu_grad = |x: &Tensor| {
            let x = x.detach().requires_grad();
            x.gelu().sum().backward();
            x.grad().unwrap()
        };
        let ulp = |m: f64| f32::EPSILON as f64 * m.abs().max(f32::MIN_POSITIVE as f64);
        let eight_ulps = |w: f64, _x: f64| 8.0 * ulp(w);
        // rounding x/√2 in f32 moves Φ's far tail by about x² ulps
        let gelu_tol = |w: f64, x: f64| (8.0 + x * x) * ulp(w);
        // Φ + x φ cancels around x = -0.75: its error scales with the terms
        let gelu_grad_tol =
            |_w: f64, x: f64| (8.0 + x * x) * ulp(normal_cdf(x) + (x * super::normal_pdf(x)).abs());
        // (name, op, scale of the standard normal inputs, tolerance at (f64 result, x))
        type Tol<'a> = &'a dyn Fn(f64, f64) -> f64;
        let ops: [(&str, Op, f64, Tol); 6] = [
            ("gelu", |x| x.gelu(), 4.0, &gelu_tol),
            ("sigmoid", |x| x.sigmoid(), 4.0, &eight_ulps),
            ("silu", |x| x.silu(), 4.0, &eight_ulps),
            ("exp", |x| x.exp(), 4.0, &eight_ulps),
            ("gelu_backward", gelu_grad, 4.0, &gelu_grad_tol),
            ("sigmoid tail", |x| x.sigmoid(), 100.0, &eight_ulps),
        ];
        for (name, f, scale, tol) in ops {
            let x32 = (randn64(&[300, 200], 7) * scale).to_dtype(DType::F32);
            let x64 = x32.to_dtype(DType::F64);
            let xs = x64.to_vec::<f64>();
            let want = f(&x64).to_vec::<f64>();
            for (layout, x) in [
                ("contiguous", x32.clone()),
                ("strided", x32.t().contiguous().t()),
            ] {
                let got = f(&x).to_vec::<f32>();
                for ((g, w), x) in got.iter().zip(&want).zip(&xs) {
                    let tol = tol(*w, *x);
                    assert!(
                        (*g as f64 - w).abs() <= tol,
                        "{name} ({layout}) at {x}: {g} vs {w}"
                    );
                }
            }
        }
    }

    #[test]
    fn gelu_second_derivative_matches_analytic() {
        // gelu' = Φ + x φ, gelu'' = φ (2 - x²), φ(x) = e^(-x²/2) / √(2π)
        let xs = [-1.0, 0.5, 2.0];
        let (d1, d2) = first_and_second(Tensor::gelu, &xs);
        // gelu' from mpmath: Φ(x) + x φ(x)
        let want1 = [-0.0833154705876863, 0.8674951246561629, 1.085231801078197];
        for (i, x) in xs.iter().enumerate() {
            let pdf = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
            assert!(
                (d1[i] - want1[i]).abs() < 1e-14,
                "{} vs {}",
                d1[i],
                want1[i]
            );
            assert!((d2[i] - pdf * (2.0 - x * x)).abs() < 1e-14);
        }
    }

    #[test]
    fn gelu_tanh_values_and_second_derivative() {
        // y = x (1 + tanh u) / 2, u = k (x + c x³), k = √(2/π), c = 0.044715
        let (k, c) = ((2.0 / std::f64::consts::PI).sqrt(), 0.044715);
        let t = |x: f64| (k * (x + c * x * x * x)).tanh();
        let want: Vec<f64> = XS.iter().map(|&x| 0.5 * x * (1.0 + t(x))).collect();
        let x = Tensor::from_vec_f64(XS.to_vec(), &[7]);
        assert_all_close(&x.gelu_tanh(), &want, 1e-15);
        // PyTorch: F.gelu(torch.tensor(1.0, dtype=float64), approximate='tanh')
        assert!((x.gelu_tanh().to_vec::<f64>()[5] - 0.8411919906082768).abs() < 1e-15);

        // y' = (1 + t)/2 + x (1 - t²) u'/2, y'' = (1 - t²)(u' - x t u'² + x u''/2),
        // u' = k (1 + 3c x²), u'' = 6 k c x
        let (d1, d2) = first_and_second(Tensor::gelu_tanh, &XS);
        for (i, &x) in XS.iter().enumerate() {
            let (t, du, ddu) = (t(x), k * (1.0 + 3.0 * c * x * x), 6.0 * k * c * x);
            let want1 = 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du;
            let want2 = (1.0 - t * t) * (du - x * t * du * du + 0.5 * x * ddu);
            assert!((d1[i] - want1).abs() < 1e-14);
            assert!((d2[i] - want2).abs() < 1e-14);
        }
    }

    #[test]
    fn silu_values_and_gradient() {
        // silu(x) = x σ(x), silu' = σ (1 + x (1 - σ))
        let s = |x: f64| 1.0 / (1.0 + (-x).exp());
        let want: Vec<f64> = XS.iter().map(|&x| x * s(x)).collect();
        let x = Tensor::from_vec_f64(XS.to_vec(), &[7]);
        assert_all_close(&x.silu(), &want, 1e-15);
        let (d1, _) = first_and_second(Tensor::silu, &XS);
        for (i, &x) in XS.iter().enumerate() {
            assert!((d1[i] - s(x) * (1.0 + x * (1.0 - s(x)))).abs() < 1e-15);
        }
    }

    #[test]
    fn softplus_values_threshold_and_beta() {
        // softplus(x) = ln(1 + e^x)
        let want: Vec<f64> = XS.iter().map(|&x| x.exp().ln_1p()).collect();
        let x = Tensor::from_vec_f64(XS.to_vec(), &[7]);
        assert_all_close(&x.softplus(), &want, 1e-15);
        // above the threshold (βx > 20) the result is x itself, below it ln(1 + e^x) ≈ x + e^-x
        let y = Tensor::from_vec_f64(vec![19.0, 21.0], &[2]).softplus();
        assert_eq!(y.to_vec::<f64>()[1], 21.0);
        assert!((y.to_vec::<f64>()[0] - (19.0 + (-19.0f64).exp())).abs() < 1e-13);
        // β = 2, threshold 1: ln(1 + e^(2x)) / 2 where 2x <= 1, else x
        let y = x.softplus_with(2.0, 1.0).to_vec::<f64>();
        assert!((y[2] - (-1.0f64).exp().ln_1p() / 2.0).abs() < 1e-15);
        assert_eq!(&y[5..], &[1.0, 3.0]);
        // the gradient is σ(βx) below the threshold, 1 above: σ(2·0.5) and 1
        let (d1, _) = first_and_second(|t| t.softplus_with(2.0, 1.0), &[0.5, 1.0]);
        assert!((d1[0] - 1.0 / (1.0 + (-1.0f64).exp())).abs() < 1e-15);
        assert_eq!(d1[1], 1.0);
    }

    #[test]
    #[should_panic(expected = "softplus: beta must be finite and non-zero, got 0")]
    fn softplus_rejects_zero_beta() {
        let _ = Tensor::zeros(&[2]).softplus_with(0.0, 20.0);
    }

    #[test]
    #[should_panic(expected = "relu: expected a floating-point tensor")]
    fn activations_reject_integer_tensors() {
        let _ = Tensor::from_vec_i64(vec![1, -1], &[2]).relu();
    }

    #[test]
    fn activations_are_recorded_under_their_names() {
        let x = Tensor::from_vec_f64(vec![0.3], &[1]).requires_grad();
        assert_eq!(x.gelu().grad_fn(), Some("gelu"));
        assert_eq!(x.leaky_relu(0.2).grad_fn(), Some("leaky_relu"));
    }
}
