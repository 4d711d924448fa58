//! Stochastic gradient descent with momentum, like `torch.optim.SGD`.

use std::panic::Location;

use super::base::{hyper_params, signed, Optim, Rule, StepInfo, MAX_BUFFERS};
use crate::tensor::Float;
use crate::Tensor;

/// SGD's hyper-parameters besides `lr` and `weight_decay` (PyTorch's defaults: all zero / false).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SgdRule {
    /// Momentum factor μ.
    pub momentum: f64,
    /// Dampening τ of the gradient added to the momentum buffer.
    pub dampening: f64,
    /// Nesterov momentum (needs μ > 0 and τ = 0).
    pub nesterov: bool,
    /// Ascend the objective instead of descending.
    pub maximize: bool,
}

/// Stochastic gradient descent, optionally with (Nesterov) momentum, like `torch.optim.SGD`.
///
/// With gradient g, parameter θ, weight decay λ and momentum buffer b:
///
/// ```text
/// g ← g + λθ                        (if λ ≠ 0)
/// b ← g on the first step, else μb + (1 − τ)g
/// g ← g + μb (Nesterov), else b     (if μ ≠ 0)
/// θ ← θ − lr·g
/// ```
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::optim::{Optimizer, Sgd};
/// let w = Tensor::from_vec(vec![1.0, -1.0], &[2]).requires_grad();
/// let mut opt = Sgd::new(vec![w.clone()], 0.1).momentum(0.9).nesterov(true);
/// w.square().sum().backward(); // g = 2w
/// opt.step(); // b = g; θ ← θ − 0.1·(g + 0.9·b) = θ − 0.38θ
/// let v = w.to_vec::<f32>();
/// assert!((v[0] - 0.62).abs() < 1e-6 && (v[1] + 0.62).abs() < 1e-6);
/// ```
pub type Sgd = Optim<SgdRule>;

impl Rule for SgdRule {
    const NAME: &'static str = "SGD";
    const BUFFERS: &'static [&'static str] = &["momentum_buffer"];
    const COUNTS_STEPS: bool = false;

    fn uses_buffer(&self, _k: usize) -> bool {
        self.momentum != 0.0
    }

    hyper_params! {
        "momentum" => momentum,
        "dampening" => dampening,
        "nesterov" => nesterov,
        "maximize" => maximize,
    }

    fn validate(&self) -> Result<(), String> {
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return Err(format!(
                "Nesterov momentum requires a momentum > 0 and zero dampening, got momentum {} \
                 and dampening {}",
                self.momentum, self.dampening
            ));
        }
        Ok(())
    }

    #[inline(always)]
    fn update<F: Float>(
        &self,
        s: &StepInfo,
        param: &mut [F],
        grad: &[F],
        buffers: [Option<&mut [F]>; MAX_BUFFERS],
    ) {
        // PyTorch's CPU kernels: add(x, alpha=a) = fma(a, x, self); mul_ rounds on its own
        let wd = F::c(s.weight_decay);
        let momentum = F::c(self.momentum);
        let keep = F::c(1.0 - self.dampening);
        let neg_lr = F::c(-s.lr);
        let [buf, ..] = buffers;
        match buf {
            None => {
                for (p, &g) in param.iter_mut().zip(grad) {
                    let mut d = signed(g, self.maximize);
                    if s.weight_decay != 0.0 {
                        d = wd.mul_add(*p, d);
                    }
                    *p = neg_lr.mul_add(d, *p);
                }
            }
            Some(buf) => {
                for ((p, &g), b) in param.iter_mut().zip(grad).zip(buf.iter_mut()) {
                    let mut d = signed(g, self.maximize);
                    if s.weight_decay != 0.0 {
                        d = wd.mul_add(*p, d);
                    }
                    *b = if s.fresh {
                        d
                    } else {
                        keep.mul_add(d, *b * momentum)
                    };
                    d = if self.nesterov {
                        momentum.mul_add(*b, d)
                    } else {
                        *b
                    };
                    *p = neg_lr.mul_add(d, *p);
                }
            }
        }
    }
}

impl Optim<SgdRule> {
    /// SGD over `params` with learning rate `lr` (PyTorch's default is 1e-3), no momentum and no
    /// weight decay; set those with the builder methods.
    ///
    /// # Panics
    /// If `lr` is negative, `params` is empty, or a parameter does not require grad, is not a
    /// leaf, or is given twice.
    #[track_caller]
    pub fn new(params: Vec<Tensor>, lr: f64) -> Self {
        Optim::build(params, lr, 0.0, SgdRule::default(), Location::caller())
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

    /// Sets the dampening τ (default 0).
    pub fn dampening(self, dampening: f64) -> Self {
        self.map_rule(|r| r.dampening = dampening)
    }

    /// Uses Nesterov momentum (default false); needs momentum > 0 and zero dampening, checked at
    /// each step.
    pub fn nesterov(self, nesterov: bool) -> Self {
        self.map_rule(|r| r.nesterov = nesterov)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::base::tests::{assert_close, param, step_with};
    use crate::optim::Optimizer;

    #[test]
    fn plain_sgd_steps_against_the_gradient() {
        // θ ← θ − lr·g
        let p = param(&[1.0, 2.0]);
        let mut opt = Sgd::new(vec![p.clone()], 0.1);
        step_with(&mut opt, &p, &[0.5, -1.0]);
        assert_close(&p.to_vec::<f64>(), &[1.0 - 0.05, 2.0 + 0.1]);
    }

    #[test]
    fn momentum_starts_from_the_gradient_then_damps() {
        // b₁ = g₁, θ₁ = θ₀ − lr·b₁; b₂ = μb₁ + (1 − τ)g₂, θ₂ = θ₁ − lr·b₂
        let (lr, mu, tau) = (0.1, 0.9, 0.3);
        let p = param(&[1.0]);
        let mut opt = Sgd::new(vec![p.clone()], lr).momentum(mu).dampening(tau);
        step_with(&mut opt, &p, &[2.0]);
        step_with(&mut opt, &p, &[4.0]);
        let b2 = mu * 2.0 + (1.0 - tau) * 4.0;
        assert_close(&p.to_vec::<f64>(), &[1.0 - lr * 2.0 - lr * b2]);
    }

    #[test]
    fn nesterov_looks_ahead_along_the_buffer() {
        // b = g, update g + μb on the first step
        let p = param(&[1.0]);
        let mut opt = Sgd::new(vec![p.clone()], 0.1).momentum(0.5).nesterov(true);
        step_with(&mut opt, &p, &[2.0]);
        assert_close(&p.to_vec::<f64>(), &[1.0 - 0.1 * (2.0 + 0.5 * 2.0)]);
    }

    #[test]
    fn weight_decay_adds_lambda_theta_to_the_gradient() {
        // g ← g + λθ
        let p = param(&[2.0]);
        let mut opt = Sgd::new(vec![p.clone()], 0.1).weight_decay(0.5);
        step_with(&mut opt, &p, &[1.0]);
        assert_close(&p.to_vec::<f64>(), &[2.0 - 0.1 * (1.0 + 0.5 * 2.0)]);
    }

    #[test]
    fn maximize_ascends() {
        let p = param(&[1.0]);
        let mut opt = Sgd::new(vec![p.clone()], 0.1).maximize(true);
        step_with(&mut opt, &p, &[3.0]);
        assert_close(&p.to_vec::<f64>(), &[1.3]);
    }

    #[test]
    fn momentum_buffer_is_in_the_state_dict_and_step_is_not() {
        let p = param(&[1.0, 2.0]);
        let mut opt = Sgd::new(vec![p.clone()], 0.1).momentum(0.9);
        step_with(&mut opt, &p, &[1.0, 3.0]);
        let sd = opt.state_dict();
        assert_eq!(
            sd.tensors["state.0.momentum_buffer"].to_vec::<f64>(),
            vec![1.0, 3.0]
        );
        assert!(!sd.scalars.contains_key("state.0.step"));
        assert_eq!(sd.scalars["param_groups.0.momentum"], 0.9);
        assert_eq!(sd.scalars["param_groups.0.params.0"], 0.0);
    }

    #[test]
    #[should_panic(
        expected = "SGD: Nesterov momentum requires a momentum > 0 and zero dampening, got momentum 0 and dampening 0 (parameter group 0), at src/optim/sgd.rs"
    )]
    fn nesterov_without_momentum_panics_at_step() {
        let p = param(&[1.0]);
        let mut opt = Sgd::new(vec![p.clone()], 0.1).nesterov(true);
        opt.step();
    }

    #[test]
    #[should_panic(expected = "SGD: invalid momentum -0.5 (must be >= 0)")]
    fn negative_momentum_panics() {
        Sgd::new(vec![param(&[1.0])], 0.1).momentum(-0.5);
    }
}
