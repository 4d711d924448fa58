//! Gradient checking: analytic gradients from the tape against central finite differences, in f64.

use crate::tensor::{DType, Tensor};

/// Tolerances of [`gradcheck_with`], like the arguments of `torch.autograd.gradcheck`.
#[derive(Clone, Copy, Debug)]
pub struct GradcheckOptions {
    /// Finite-difference step.
    pub eps: f64,
    /// Absolute tolerance.
    pub atol: f64,
    /// Relative tolerance.
    pub rtol: f64,
}

impl Default for GradcheckOptions {
    fn default() -> Self {
        GradcheckOptions {
            eps: 1e-6,
            atol: 1e-5,
            rtol: 1e-3,
        }
    }
}

/// Checks the gradients of `f` at `inputs` against central finite differences, like
/// `torch.autograd.gradcheck`.
///
/// Inputs are converted to f64 (f64 inputs are used as they are, keeping their strides, so
/// transposed or sliced inputs exercise the non-contiguous paths). The output is projected on a
/// fixed random direction `r`, so one backward pass gives `∂(Σ r·f)/∂x`, compared element by
/// element with `(Σ r·f(x + ε eᵢ) − Σ r·f(x − ε eᵢ)) / 2ε`.
///
/// ```
/// use tapegrad::prelude::*;
/// let x = Tensor::randn(&[3, 4]).double();
/// gradcheck(|x| x[0].tanh() * &x[0], &[x]).unwrap();
/// ```
///
/// `f` is evaluated under [`no_grad`](crate::autograd::no_grad) for the finite differences; a
/// function that itself calls [`grad`](crate::autograd::grad) must open an
/// [`enable_grad`](crate::autograd::enable_grad) region.
///
/// # Errors
/// A message naming the input, the element, and both values when they differ beyond
/// `atol + rtol · |numeric|`.
pub fn gradcheck(f: impl Fn(&[Tensor]) -> Tensor, inputs: &[Tensor]) -> Result<(), String> {
    gradcheck_with(f, inputs, GradcheckOptions::default())
}

/// [`gradcheck`] with explicit tolerances.
///
/// # Errors
/// As [`gradcheck`].
pub fn gradcheck_with(
    f: impl Fn(&[Tensor]) -> Tensor,
    inputs: &[Tensor],
    opts: GradcheckOptions,
) -> Result<(), String> {
    let xs: Vec<Tensor> = inputs
        .iter()
        .map(|t| {
            let d = if t.dtype() == DType::F64 {
                t.detach()
            } else {
                t.detach().double()
            };
            d.detach().requires_grad()
        })
        .collect();
    let out = f(&xs);
    if out.dtype() != DType::F64 {
        return Err(format!(
            "gradcheck: the function returned {}, expected float64",
            out.dtype()
        ));
    }
    let mut g = crate::tensor::random::Generator::new(0xC0FFEE);
    let r = Tensor::randn_with(out.shape(), &mut g).double();
    let proj = |o: &Tensor| -> f64 {
        o.to_vec::<f64>()
            .iter()
            .zip(r.to_vec::<f64>())
            .map(|(a, b)| a * b)
            .sum()
    };
    if !out.requires_grad_enabled() {
        return Err("gradcheck: the output does not depend on any input".into());
    }
    let analytic = crate::autograd::backward::grad_allow_unused(
        &[&(&out * &r).sum()],
        &xs.iter().collect::<Vec<_>>(),
        false,
    );
    for (i, x) in xs.iter().enumerate() {
        let a = match &analytic[i] {
            Some(a) => a.to_vec::<f64>(),
            None => vec![0.0; x.numel()],
        };
        let base = x.to_vec::<f64>();
        for j in 0..x.numel() {
            let eval = |delta: f64| {
                let mut v = base.clone();
                v[j] += delta;
                let mut args: Vec<Tensor> = xs.iter().map(|t| t.detach()).collect();
                args[i] = Tensor::from_values(v, x.shape());
                let _g = crate::autograd::mode::no_grad();
                proj(&f(&args))
            };
            let numeric = (eval(opts.eps) - eval(-opts.eps)) / (2.0 * opts.eps);
            if (a[j] - numeric).abs() > opts.atol + opts.rtol * numeric.abs() {
                return Err(format!(
                    "gradcheck: Jacobian mismatch for input {i} (shape {:?}) at element {j}: \
                     analytic {} vs numeric {numeric}",
                    x.shape(),
                    a[j]
                ));
            }
        }
    }
    Ok(())
}
