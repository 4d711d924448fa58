//! RMSprop, like `torch.optim.RMSprop`.

use std::panic::Location;

use super::base::{hyper_params, signed, Optim, Rule, StepInfo, MAX_BUFFERS};
use super::kernel::lerp;
use crate::tensor::Float;
use crate::Tensor;

/// RMSprop's hyper-parameters besides `lr` and `weight_decay`.
#[derive(Clone, Debug, PartialEq)]
pub struct RmsPropRule {
    /// Smoothing constant α of the running mean of squared gradients (default 0.99).
    pub alpha: f64,
    /// Added to the denominator for numerical stability (default 1e-8).
    pub eps: f64,
    /// Momentum factor μ (default 0).
    pub momentum: f64,
    /// Normalize by the estimated variance instead of the raw second moment (default false).
    pub centered: bool,
    /// Ascend the objective instead of descending (default false).
    pub maximize: bool,
}

impl Default for RmsPropRule {
    fn default() -> Self {
        RmsPropRule {
            alpha: 0.99,
            eps: 1e-8,
            momentum: 0.0,
            centered: false,
            maximize: false,
        }
    }
}

/// RMSprop, like `torch.optim.RMSprop` (defaults lr 1e-2, alpha 0.99, eps 1e-8).
///
/// With gradient g, parameter θ and weight decay λ:
///
/// ```text
/// g ← g + λθ                        (if λ ≠ 0)
/// v ← αv + (1 − α)g²
/// ḡ ← ḡ + (1 − α)(g − ḡ)            (centered: lerp)
/// d ← √(v − ḡ²) + ε if centered, else √v + ε
/// b ← μb + g/d, θ ← θ − lr·b        (if μ > 0)
/// θ ← θ − lr·g/d                    (otherwise)
/// ```
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::optim::{Optimizer, RmsProp};
/// let w = Tensor::from_vec(vec![1.0], &[1]).requires_grad();
/// let mut opt = RmsProp::new(vec![w.clone()], 0.01).alpha(0.9).momentum(0.5).centered(true);
/// w.square().sum().backward();
/// opt.step();
/// assert!(w.item() < 1.0);
/// ```
pub type RmsProp = Optim<RmsPropRule>;

impl Rule for RmsPropRule {
    const NAME: &'static str = "RMSprop";
    const BUFFERS: &'static [&'static str] = &["square_avg", "momentum_buffer", "grad_avg"];
    const COUNTS_STEPS: bool = true;

    fn uses_buffer(&self, k: usize) -> bool {
        match k {
            0 => true,
            1 => self.momentum > 0.0,
            _ => self.centered,
        }
    }

    hyper_params! {
        "alpha" => alpha,
        "eps" => eps,
        "momentum" => momentum,
        "centered" => centered,
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
        let wd = F::c(s.weight_decay);
        let (alpha, w) = (F::c(self.alpha), F::c(1.0 - self.alpha));
        let (eps, momentum, neg_lr) = (F::c(self.eps), F::c(self.momentum), F::c(-s.lr));
        let [sq, mut buf, mut g_avg] = buffers;
        let sq = sq.expect("square_avg");
        let n = param.len();
        assert!(grad.len() == n && sq.len() == n);
        assert!(buf.as_ref().is_none_or(|b| b.len() == n));
        assert!(g_avg.as_ref().is_none_or(|b| b.len() == n));
        for i in 0..n {
            let mut g = signed(grad[i], self.maximize);
            if s.weight_decay != 0.0 {
                g = wd.mul_add(param[i], g);
            }
            // addcmul: v·α + ((1 − α)·g)·g, fused
            sq[i] = (g * w).mul_add(g, sq[i] * alpha);
            let avg = match g_avg.as_deref_mut() {
                Some(ga) => {
                    ga[i] = lerp(ga[i], g, w);
                    // addcmul(ḡ, ḡ, value=−1): v + (−ḡ)·ḡ, fused
                    (-ga[i]).mul_add(ga[i], sq[i]).sqrt()
                }
                None => sq[i].sqrt(),
            } + eps;
            match buf.as_deref_mut() {
                Some(b) => {
                    // addcdiv(g, avg): b·μ + g/avg
                    b[i] = b[i] * momentum + g / avg;
                    param[i] = neg_lr.mul_add(b[i], param[i]);
                }
                None => param[i] += neg_lr * g / avg,
            }
        }
    }
}

impl Optim<RmsPropRule> {
    /// RMSprop over `params` with learning rate `lr` (PyTorch's default is 1e-2) and PyTorch's
    /// other defaults.
    ///
    /// # Panics
    /// If `lr` is negative, `params` is empty, or a parameter does not require grad, is not a
    /// leaf, or is given twice.
    #[track_caller]
    pub fn new(params: Vec<Tensor>, lr: f64) -> Self {
        Optim::build(params, lr, 0.0, RmsPropRule::default(), Location::caller())
    }

    /// Sets the smoothing constant α (default 0.99).
    ///
    /// # Panics
    /// If `alpha` is negative.
    #[track_caller]
    pub fn alpha(self, alpha: f64) -> Self {
        self.checked("alpha", alpha, Location::caller(), |r| r.alpha = alpha)
    }

    /// Sets ε (default 1e-8).
    ///
    /// # Panics
    /// If `eps` is negative.
    #[track_caller]
    pub fn eps(self, eps: f64) -> Self {
        self.checked("epsilon", eps, Location::caller(), |r| r.eps = eps)
    }

    /// Sets the momentum factor μ (default 0).
    ///
    /// # Panics
    /// If `momentum` is negative.
    #[track_caller]
    pub fn momentum(self, momentum: f64) -> Self {
        self.checked("momentum", momentum, Location::caller(), |r| {
            r.momentum = momentum
        })
    }

    /// Normalizes by the centered second moment, an estimate of the variance (default false).
    pub fn centered(self, centered: bool) -> Self {
        self.map_rule(|r| r.centered = centered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::base::tests::{assert_close, param, step_with};
    use crate::optim::Optimizer;

    #[test]
    fn plain_rmsprop_divides_by_the_root_mean_square() {
        // v = (1 − α)g², θ ← θ − lr·g/(√v + ε)
        let (lr, a, eps) = (0.01, 0.9, 1e-3);
        let p = param(&[1.0]);
        let mut opt = RmsProp::new(vec![p.clone()], lr).alpha(a).eps(eps);
        step_with(&mut opt, &p, &[2.0]);
        let v: f64 = (1.0 - a) * 4.0;
        let t1 = 1.0 - lr * 2.0 / (v.sqrt() + eps);
        assert_close(&p.to_vec::<f64>(), &[t1]);
        // second step: v ← αv + (1 − α)g², with weight decay off
        step_with(&mut opt, &p, &[-1.0]);
        let v = a * v + (1.0 - a) * 1.0;
        assert_close(&p.to_vec::<f64>(), &[t1 + lr / (v.sqrt() + eps)]);
    }

    #[test]
    fn centered_momentum_rmsprop_uses_variance_and_a_buffer() {
        // ḡ = (1 − α)g, d = √(v − ḡ²) + ε, b = g/d, θ ← θ − lr·b; then b ← μb + g/d
        let (lr, a, eps, mu, wd) = (0.01, 0.9, 1e-3, 0.5, 0.1);
        let p = param(&[1.0]);
        let mut opt = RmsProp::new(vec![p.clone()], lr)
            .alpha(a)
            .eps(eps)
            .momentum(mu)
            .centered(true)
            .weight_decay(wd);
        let (mut theta, mut v, mut gbar, mut b) = (1.0, 0.0, 0.0, 0.0);
        for g in [2.0, -1.0, 0.5] {
            step_with(&mut opt, &p, &[g]);
            let g = g + wd * theta;
            v = a * v + (1.0 - a) * g * g;
            gbar = a * gbar + (1.0 - a) * g;
            let d = (v - gbar * gbar).sqrt() + eps;
            b = mu * b + g / d;
            theta -= lr * b;
            assert_close(&p.to_vec::<f64>(), &[theta]);
        }
    }

    #[test]
    fn state_buffers_follow_the_configuration() {
        let p = param(&[1.0]);
        let mut opt = RmsProp::new(vec![p.clone()], 0.01).centered(true);
        step_with(&mut opt, &p, &[1.0]);
        let keys: Vec<_> = opt.state_dict().tensors.into_keys().collect();
        assert_eq!(keys, vec!["state.0.grad_avg", "state.0.square_avg"]);
    }
}
