//! Dropout: zeroes each element with probability `p` while training and scales the survivors by
//! `1 / (1 - p)` ("inverted" dropout), so that no rescaling is needed at evaluation time.

use std::panic::Location;

use crate::autograd::function::Op;
use crate::autograd::tape::Attr;
use crate::ops::binary::zip_broadcast;
use crate::tensor::random::{with_global, Generator};
use crate::tensor::{Data, Float, Storage, Tensor};

/// Panics unless `p` is a probability and `input` floating point.
fn check_args(input: &Tensor, p: f64, loc: &Location) {
    if !(0.0..=1.0).contains(&p) {
        panic!("dropout: dropout probability has to be between 0 and 1, but got {p}, at {loc}");
    }
    if !input.dtype().is_float() {
        panic!(
            "dropout: expected a floating-point tensor (float32 or float64), got {}, at {loc}",
            input.dtype()
        );
    }
}

/// The scaled keep-mask: `1 / (1 - p)` with probability `1 - p`, else 0 (all 0 for `p = 1`).
/// One draw per element, in row-major order, so a seeded generator gives the same mask whatever
/// the input's layout.
fn draw_mask<F: Float>(shape: &[usize], p: f64, g: &mut Generator) -> Storage<F> {
    let keep = if p < 1.0 {
        F::c(1.0 / (1.0 - p))
    } else {
        F::zero()
    };
    let n: usize = shape.iter().product();
    let v: Vec<F> = (0..n)
        .map(|_| if g.next_f64() < p { F::zero() } else { keep })
        .collect();
    Storage::from_shape_vec(ndarray::IxDyn(shape), v)
        .expect("one draw per element")
        .into_shared()
}

/// The mask for `input` (of its float dtype), drawn from `g`.
fn mask_for(input: &Tensor, p: f64, g: &mut Generator) -> Data {
    input.with_data(|d| {
        crate::with_float!(d, "dropout", |_a: F| Data::from(draw_mask::<F>(
            input.shape(),
            p,
            g
        )))
    })
}

/// `input · mask`, recorded as one tape entry whose backward multiplies by the saved mask.
#[track_caller]
fn apply_mask(input: &Tensor, mask: Data, p: f64) -> Tensor {
    let mask = Tensor::from_data(mask);
    let inputs = [input, &mask];
    let op = Op::new("dropout", &inputs).attr("p", Attr::Float(p));
    let out = input.with_data(|d| {
        mask.with_data(|m| match (d, m) {
            (Data::F32(a), Data::F32(b)) => Data::F32(zip_broadcast(a, b, a.shape(), |x, k| x * k)),
            (Data::F64(a), Data::F64(b)) => Data::F64(zip_broadcast(a, b, a.shape(), |x, k| x * k)),
            _ => unreachable!("the mask has the input's dtype"),
        })
    });
    // d(x·mask)/dx = mask (a constant)
    op.save(&mask)
        .finish(out, |ctx, g| vec![Some(g * ctx.saved(0)), None])
}

/// Whether dropout is a no-op: in eval mode or with `p = 0` the input is returned as is.
fn is_identity(p: f64, training: bool) -> bool {
    !training || p == 0.0
}

/// Randomly zeroes elements of `input` with probability `p` while `training`, scaling the rest by
/// `1 / (1 - p)`, like `torch.nn.functional.dropout(input, p, training)`. The mask is drawn from
/// the global generator (seed it with [`manual_seed`](crate::tensor::random::manual_seed)); see
/// [`dropout_with`] for an explicit one.
///
/// When `training` is false or `p` is 0 the input itself is returned (no copy, no tape entry);
/// `p = 1` gives zeros. The gradient is the upstream gradient times the same scaled mask.
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::nn::functional as F;
/// let x = Tensor::ones(&[1000]);
/// let y = F::dropout(&x, 0.5, true);
/// // every element is either dropped or scaled by 1 / (1 - 0.5)
/// assert!(y.to_vec::<f32>().iter().all(|&v| v == 0.0 || v == 2.0));
/// assert!(F::dropout(&x, 0.5, false).same(&x)); // eval mode: the identity
/// ```
///
/// # Panics
/// If `p` is outside `[0, 1]`, or `input` is not floating point.
#[track_caller]
pub fn dropout(input: &Tensor, p: f64, training: bool) -> Tensor {
    let loc = Location::caller();
    check_args(input, p, loc);
    if is_identity(p, training) {
        return input.clone();
    }
    let mask = with_global(|g| mask_for(input, p, g));
    apply_mask(input, mask, p)
}

/// [`dropout`] drawing its mask from `generator` instead of the global generator: the same seed
/// gives the same mask.
///
/// # Panics
/// As [`dropout`].
#[track_caller]
pub fn dropout_with(input: &Tensor, p: f64, training: bool, generator: &mut Generator) -> Tensor {
    let loc = Location::caller();
    check_args(input, p, loc);
    if is_identity(p, training) {
        return input.clone();
    }
    let mask = mask_for(input, p, generator);
    apply_mask(input, mask, p)
}

/// The fraction of zeros in `t` (for statistical tests of dropout masks).
#[cfg(test)]
pub(crate) fn zero_fraction(t: &Tensor) -> f64 {
    let v = t.to_vec_f64();
    v.iter().filter(|&&x| x == 0.0).count() as f64 / v.len() as f64
}

/// `dy/dx` for the scalar `y = f(x)`, on the tape (so it can be differentiated again); usable
/// inside `gradcheck`, whose numeric pass runs under `no_grad` with inputs that do not require
/// grad. For the second-order checks of this folder's ops.
#[cfg(test)]
pub(crate) fn grad_of(x: &Tensor, f: impl Fn(&Tensor) -> Tensor) -> Tensor {
    let _on = crate::autograd::enable_grad();
    let x = if x.requires_grad_enabled() {
        x.clone()
    } else {
        x.detach().requires_grad()
    };
    crate::autograd::grad(&[&f(&x)], &[&x], true).remove(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prelude::*;
    use crate::testing::{randn64, randn64_t};

    #[test]
    fn fraction_zeroed_is_about_p_and_survivors_are_scaled() {
        let x = Tensor::ones(&[100_000]);
        for p in [0.1, 0.5, 0.8] {
            let y = dropout_with(&x, p, true, &mut Generator::new(1));
            // 100k Bernoulli(p) draws: the standard deviation of the fraction is ≤ 0.0016
            let frac = zero_fraction(&y);
            assert!((frac - p).abs() < 0.01, "p = {p}: zeroed {frac}");
            let scale = (1.0 / (1.0 - p)) as f32;
            assert!(y.to_vec::<f32>().iter().all(|&v| v == 0.0 || v == scale));
            // inverted dropout keeps the mean: E[y] = (1 - p) / (1 - p) = 1
            assert!((y.mean().item() - 1.0).abs() < 0.03, "p = {p}");
        }
    }

    #[test]
    fn global_generator_draws_masks_with_fraction_p() {
        let y = dropout(&Tensor::ones(&[100_000]), 0.3, true);
        assert!((zero_fraction(&y) - 0.3).abs() < 0.01);
    }

    #[test]
    fn same_seed_gives_the_same_mask() {
        let x = Tensor::randn(&[50]);
        let a = dropout_with(&x, 0.4, true, &mut Generator::new(9));
        let b = dropout_with(&x, 0.4, true, &mut Generator::new(9));
        let c = dropout_with(&x, 0.4, true, &mut Generator::new(10));
        assert_eq!(a.to_vec::<f32>(), b.to_vec::<f32>());
        assert_ne!(a.to_vec::<f32>(), c.to_vec::<f32>());
    }

    #[test]
    fn eval_mode_and_p_zero_are_the_identity() {
        let x = Tensor::randn(&[4, 5]).requires_grad();
        assert!(dropout(&x, 0.7, false).same(&x));
        assert!(dropout(&x, 0.0, true).same(&x));
    }

    #[test]
    fn p_one_gives_zeros_and_zero_gradient() {
        let x = Tensor::randn(&[3, 4]).requires_grad();
        let y = dropout(&x, 1.0, true);
        assert!(y.to_vec::<f32>().iter().all(|&v| v == 0.0));
        y.sum().backward();
        assert!(x.grad().unwrap().to_vec::<f32>().iter().all(|&v| v == 0.0));
    }

    #[test]
    fn gradient_is_the_scaled_mask() {
        // y = x · m ⇒ dy/dx = m, where m ∈ {0, 1/(1-p)} is the mask the forward drew
        let x = Tensor::randn(&[200]).requires_grad();
        let y = dropout_with(&x, 0.25, true, &mut Generator::new(3));
        y.sum().backward();
        let mask = dropout_with(&Tensor::ones(&[200]), 0.25, true, &mut Generator::new(3));
        assert_eq!(x.grad().unwrap().to_vec::<f32>(), mask.to_vec::<f32>());
        assert_eq!(crate::autograd::tape::entry_of(&y).unwrap().op, "dropout");
    }

    #[test]
    fn dropout_gradcheck() {
        // a fresh generator with the same seed per call: the finite differences see the same mask
        for x in [randn64(&[4, 5], 1), randn64_t(&[4, 5], 2)] {
            gradcheck(
                |x| dropout_with(&x[0], 0.3, true, &mut Generator::new(5)),
                &[x],
            )
            .unwrap();
        }
        // twice differentiable: the backward is a product with a constant
        gradcheck(
            |x| {
                grad_of(&x[0], |x| {
                    dropout_with(&x.powf(3.0), 0.5, true, &mut Generator::new(6)).sum()
                })
            },
            &[randn64(&[6], 7)],
        )
        .unwrap();
    }

    #[test]
    fn large_inputs_keep_the_mask_of_the_seed() {
        // above the parallel threshold the product runs on all cores; values must not change
        let n = crate::ops::unary::PAR_THRESHOLD + 5;
        let y = dropout_with(&Tensor::ones(&[n]), 0.5, true, &mut Generator::new(2));
        let mut g = Generator::new(2);
        let want: Vec<f32> = (0..n)
            .map(|_| if g.next_f64() < 0.5 { 0.0 } else { 2.0 })
            .collect();
        assert_eq!(y.to_vec::<f32>(), want);
    }

    #[test]
    #[should_panic(
        expected = "dropout: dropout probability has to be between 0 and 1, but got 1.5, at \
                    src/nn/functional/dropout.rs"
    )]
    fn p_above_one_is_an_error() {
        let _ = dropout(&Tensor::ones(&[2]), 1.5, true);
    }

    #[test]
    #[should_panic(
        expected = "dropout: dropout probability has to be between 0 and 1, but got -0.1"
    )]
    fn negative_p_is_an_error_even_in_eval_mode() {
        let _ = dropout(&Tensor::ones(&[2]), -0.1, false);
    }

    #[test]
    #[should_panic(
        expected = "dropout: expected a floating-point tensor (float32 or float64), got int64"
    )]
    fn integer_input_is_an_error() {
        let _ = dropout(&Tensor::from_vec_i64(vec![1, 2], &[2]), 0.5, true);
    }
}
