//! Adam and AdamW, like `torch.optim.Adam` and `torch.optim.AdamW`.

use std::panic::Location;

use super::base::{hyper_params, signed, Optim, Rule, StepInfo, MAX_BUFFERS};
use super::kernel::lerp;
use crate::tensor::Float;
use crate::Tensor;

/// Adam's hyper-parameters besides `lr` and `weight_decay`. `DECOUPLED` is false for Adam (weight
/// decay added to the gradient) and true for AdamW (weight decay applied to the parameter).
#[derive(Clone, Debug, PartialEq)]
pub struct AdamRule<const DECOUPLED: bool> {
    /// Decay rate β₁ of the running mean of gradients (default 0.9).
    pub beta1: f64,
    /// Decay rate β₂ of the running mean of squared gradients (default 0.999).
    pub beta2: f64,
    /// Added to the denominator for numerical stability (default 1e-8).
    pub eps: f64,
    /// Use the maximum of past squared-gradient means (AMSGrad; default false).
    pub amsgrad: bool,
    /// Ascend the objective instead of descending (default false).
    pub maximize: bool,
}

impl<const D: bool> Default for AdamRule<D> {
    fn default() -> Self {
        AdamRule {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            amsgrad: false,
            maximize: false,
        }
    }
}

/// Adam, like `torch.optim.Adam` (defaults lr 1e-3, betas (0.9, 0.999), eps 1e-8, no weight
/// decay).
///
/// With gradient g, parameter θ, weight decay λ and step t:
///
/// ```text
/// g ← g + λθ                                (if λ ≠ 0; AdamW instead: θ ← θ·(1 − lr·λ))
/// m ← m + (1 − β₁)(g − m)                   (lerp)
/// v ← β₂v + (1 − β₂)g²
/// v̂ ← max(v̂, v) with AMSGrad, else v
/// θ ← θ − lr/(1 − β₁ᵗ) · m / (√v̂ / √(1 − β₂ᵗ) + ε)
/// ```
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::optim::{Adam, Optimizer};
/// let w = Tensor::from_vec(vec![3.0], &[1]).requires_grad();
/// let mut opt = Adam::new(vec![w.clone()], 0.1).betas(0.8, 0.99).amsgrad(true);
/// w.square().sum().backward();
/// opt.step(); // the first step moves by lr·g/(|g| + ε) ≈ lr
/// assert!((w.item() - 2.9).abs() < 1e-6);
/// ```
pub type Adam = Optim<AdamRule<false>>;

/// AdamW: Adam with decoupled weight decay, like `torch.optim.AdamW` (defaults lr 1e-3, betas
/// (0.9, 0.999), eps 1e-8, weight decay 1e-2).
///
/// The weight decay shrinks the parameter, `θ ← θ·(1 − lr·λ)`, before the Adam update, instead of
/// entering the running means through the gradient (see [`Adam`] for the rest of the update).
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::optim::{AdamW, Optimizer};
/// let w = Tensor::from_vec(vec![1.0, 2.0], &[2]).requires_grad();
/// let mut opt = AdamW::new(vec![w.clone()], 1e-3).betas(0.9, 0.999).weight_decay(0.01);
/// w.sum().backward();
/// opt.step();
/// ```
pub type AdamW = Optim<AdamRule<true>>;

impl<const DECOUPLED: bool> Rule for AdamRule<DECOUPLED> {
    const NAME: &'static str = if DECOUPLED { "AdamW" } else { "Adam" };
    const BUFFERS: &'static [&'static str] = &["exp_avg", "exp_avg_sq", "max_exp_avg_sq"];
    const COUNTS_STEPS: bool = true;

    fn uses_buffer(&self, k: usize) -> bool {
        k < 2 || self.amsgrad
    }

    hyper_params! {
        "betas.0" => beta1,
        "betas.1" => beta2,
        "eps" => eps,
        "amsgrad" => amsgrad,
        "maximize" => maximize,
    }

    #[inline(always)]
    fn update<F: Float>(
        &self,
        s: &StepInfo,
        param: &mut [F],
        grad: &[F],
        buffers: [Option<&mut [F]>; MAX_BUFFERS],
    ) {
        // the scalars in f64, as PyTorch computes them in Python, then rounded to F
        let t = s.step as f64;
        let bias_correction1 = 1.0 - self.beta1.powf(t);
        let bias_correction2_sqrt = F::c((1.0 - self.beta2.powf(t)).powf(0.5));
        let neg_step_size = F::c(-(s.lr / bias_correction1));
        let decay = F::c(1.0 - s.lr * s.weight_decay);
        let wd = F::c(s.weight_decay);
        let (w1, b2, w2, eps) = (
            F::c(1.0 - self.beta1),
            F::c(self.beta2),
            F::c(1.0 - self.beta2),
            F::c(self.eps),
        );
        let [m, v, mut v_max] = buffers;
        let (m, v) = (m.expect("exp_avg"), v.expect("exp_avg_sq"));
        let n = param.len();
        assert!(grad.len() == n && m.len() == n && v.len() == n);
        if let Some(vm) = &v_max {
            assert_eq!(vm.len(), n);
        }
        for i in 0..n {
            let mut p = param[i];
            let mut g = signed(grad[i], self.maximize);
            if s.weight_decay != 0.0 {
                if DECOUPLED {
                    p *= decay;
                } else {
                    g = wd.mul_add(p, g);
                }
            }
            m[i] = lerp(m[i], g, w1);
            // addcmul: v·β₂ + ((1 − β₂)·g)·g, fused
            v[i] = (g * w2).mul_add(g, v[i] * b2);
            let v_hat = match v_max.as_deref_mut() {
                Some(vm) => {
                    // torch.maximum propagates NaN
                    if vm[i] < v[i] || v[i].is_nan() {
                        vm[i] = v[i];
                    }
                    vm[i]
                }
                None => v[i],
            };
            let denom = v_hat.sqrt() / bias_correction2_sqrt + eps;
            // addcdiv: θ + (−step_size·m)/denom
            param[i] = p + neg_step_size * m[i] / denom;
        }
    }
}

impl<const D: bool> Optim<AdamRule<D>> {
    /// Sets the decay rates (β₁, β₂) of the running means (default (0.9, 0.999)).
    ///
    /// # Panics
    /// If a beta is outside [0, 1).
    #[track_caller]
    pub fn betas(self, beta1: f64, beta2: f64) -> Self {
        let loc = Location::caller();
        for (i, b) in [beta1, beta2].into_iter().enumerate() {
            if !(0.0..1.0).contains(&b) {
                panic!(
                    "{}: invalid beta parameter at index {i}: {b} (must be in [0, 1)), at {loc}",
                    AdamRule::<D>::NAME
                );
            }
        }
        self.map_rule(|r| (r.beta1, r.beta2) = (beta1, beta2))
    }

    /// Sets ε (default 1e-8).
    ///
    /// # Panics
    /// If `eps` is negative.
    #[track_caller]
    pub fn eps(self, eps: f64) -> Self {
        self.checked("epsilon", eps, Location::caller(), |r| r.eps = eps)
    }

    /// Uses AMSGrad, the maximum of past squared-gradient means (default false).
    pub fn amsgrad(self, amsgrad: bool) -> Self {
        self.map_rule(|r| r.amsgrad = amsgrad)
    }
}

impl Optim<AdamRule<false>> {
    /// Adam over `params` with learning rate `lr` (PyTorch's default is 1e-3) and PyTorch's other
    /// defaults.
    ///
    /// # Panics
    /// If `lr` is negative, `params` is empty, or a parameter does not require grad, is not a
    /// leaf, or is given twice.
    #[track_caller]
    pub fn new(params: Vec<Tensor>, lr: f64) -> Self {
        Optim::build(params, lr, 0.0, AdamRule::default(), Location::caller())
    }
}

impl Optim<AdamRule<true>> {
    /// AdamW over `params` with learning rate `lr` (PyTorch's default is 1e-3) and PyTorch's other
    /// defaults (weight decay 1e-2).
    ///
    /// # Panics
    /// If `lr` is negative, `params` is empty, or a parameter does not require grad, is not a
    /// leaf, or is given twice.
    #[track_caller]
    pub fn new(params: Vec<Tensor>, lr: f64) -> Self {
        Optim::build(params, lr, 1e-2, AdamRule::default(), Location::caller())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::base::tests::{assert_close, param, step_with};
    use crate::optim::Optimizer;

    /// Adam in f64 written out: (θ, m, v, v̂) after one step with gradient g at step t.
    #[allow(clippy::too_many_arguments)]
    fn reference(
        (theta, m, v, vmax): (f64, f64, f64, f64),
        g: f64,
        t: f64,
        lr: f64,
        (b1, b2, eps): (f64, f64, f64),
        wd: f64,
        decoupled: bool,
        amsgrad: bool,
    ) -> (f64, f64, f64, f64) {
        let (theta, g) = if decoupled {
            (theta * (1.0 - lr * wd), g)
        } else {
            (theta, g + wd * theta)
        };
        let m = b1 * m + (1.0 - b1) * g;
        let v = b2 * v + (1.0 - b2) * g * g;
        let vmax = vmax.max(v);
        let v_hat = if amsgrad { vmax } else { v };
        let denom = v_hat.sqrt() / (1.0 - b2.powf(t)).sqrt() + eps;
        (theta - lr / (1.0 - b1.powf(t)) * m / denom, m, v, vmax)
    }

    fn check(opt: &mut dyn Optimizer, p: &Tensor, decoupled: bool, amsgrad: bool, wd: f64) {
        let (lr, betas) = (opt.lr(0), (0.8, 0.9, 1e-3));
        let mut s = (p.to_vec::<f64>()[0], 0.0, 0.0, 0.0);
        // a large gradient then small ones: AMSGrad keeps the large v̂
        for (t, g) in [4.0, 0.5, -0.25].into_iter().enumerate() {
            step_with(opt, p, &[g]);
            s = reference(s, g, t as f64 + 1.0, lr, betas, wd, decoupled, amsgrad);
            assert_close(&p.to_vec::<f64>(), &[s.0]);
        }
    }

    #[test]
    fn adam_follows_the_bias_corrected_moment_update() {
        let p = param(&[1.5]);
        let mut opt = Adam::new(vec![p.clone()], 0.1).betas(0.8, 0.9).eps(1e-3);
        check(&mut opt, &p, false, false, 0.0);
    }

    #[test]
    fn adam_weight_decay_enters_the_gradient() {
        let p = param(&[1.5]);
        let mut opt = Adam::new(vec![p.clone()], 0.1)
            .betas(0.8, 0.9)
            .eps(1e-3)
            .weight_decay(0.3);
        check(&mut opt, &p, false, false, 0.3);
    }

    #[test]
    fn adam_amsgrad_normalizes_by_the_largest_second_moment() {
        let p = param(&[1.5]);
        let mut opt = Adam::new(vec![p.clone()], 0.1)
            .betas(0.8, 0.9)
            .eps(1e-3)
            .amsgrad(true);
        check(&mut opt, &p, false, true, 0.0);
    }

    #[test]
    fn adamw_decays_the_parameter_not_the_gradient() {
        let p = param(&[1.5]);
        let mut opt = AdamW::new(vec![p.clone()], 0.1)
            .betas(0.8, 0.9)
            .eps(1e-3)
            .weight_decay(0.3)
            .amsgrad(true);
        check(&mut opt, &p, true, true, 0.3);
    }

    #[test]
    fn adamw_defaults_are_pytorchs() {
        let opt = AdamW::new(vec![param(&[1.0])], 1e-3);
        let g = &opt.param_groups()[0];
        assert_eq!((g.lr, g.weight_decay), (1e-3, 1e-2));
        assert_eq!((g.rule.beta1, g.rule.beta2, g.rule.eps), (0.9, 0.999, 1e-8));
        assert_eq!(
            Adam::new(vec![param(&[1.0])], 1e-3).param_groups()[0].weight_decay,
            0.0
        );
    }

    #[test]
    fn maximize_negates_the_gradient() {
        // the first step moves by lr·g/(|g| + ε): up when maximizing
        let p = param(&[1.0]);
        let mut opt = Adam::new(vec![p.clone()], 0.1).eps(0.0).maximize(true);
        step_with(&mut opt, &p, &[2.0]);
        assert_close(&p.to_vec::<f64>(), &[1.1]);
    }

    #[test]
    fn state_dict_holds_moments_steps_and_betas() {
        let p = param(&[1.0, 2.0]);
        let mut opt = Adam::new(vec![p.clone()], 0.1).amsgrad(true);
        step_with(&mut opt, &p, &[1.0, -2.0]);
        let sd = opt.state_dict();
        // m = (1 − β₁)g, v = (1 − β₂)g²
        assert_close(&sd.tensors["state.0.exp_avg"].to_vec::<f64>(), &[0.1, -0.2]);
        assert_close(
            &sd.tensors["state.0.exp_avg_sq"].to_vec::<f64>(),
            &[0.001, 0.004],
        );
        assert!(sd.tensors.contains_key("state.0.max_exp_avg_sq"));
        assert_eq!(sd.scalars["state.0.step"], 1.0);
        assert_eq!(sd.scalars["param_groups.0.betas.1"], 0.999);
        assert_eq!(sd.scalars["param_groups.0.amsgrad"], 1.0);
    }

    #[test]
    #[should_panic(
        expected = "Adam: invalid beta parameter at index 1: 1 (must be in [0, 1)), at src/optim/adam.rs"
    )]
    fn beta_of_one_panics() {
        Adam::new(vec![param(&[1.0])], 0.1).betas(0.9, 1.0);
    }

    #[test]
    #[should_panic(expected = "AdamW: invalid beta parameter at index 0: -0.1")]
    fn negative_beta_panics() {
        AdamW::new(vec![param(&[1.0])], 0.1).betas(-0.1, 0.9);
    }

    #[test]
    #[should_panic(
        expected = "AdamW: invalid learning rate -1 (must be >= 0), at src/optim/adam.rs"
    )]
    fn adamw_negative_lr_panics() {
        AdamW::new(vec![param(&[1.0])], -1.0);
    }
}
