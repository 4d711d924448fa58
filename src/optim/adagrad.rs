//! Adagrad, like `torch.optim.Adagrad`.

use std::panic::Location;

use super::base::{hyper_params, signed, Optim, Rule, StepInfo, MAX_BUFFERS};
use crate::tensor::Float;
use crate::Tensor;

/// Adagrad's hyper-parameters besides `lr` and `weight_decay`.
#[derive(Clone, Debug, PartialEq)]
pub struct AdagradRule {
    /// Learning-rate decay: step t uses lr / (1 + (t − 1)·lr_decay) (default 0).
    pub lr_decay: f64,
    /// Value the sum of squared gradients starts from (default 0).
    pub initial_accumulator_value: f64,
    /// Added to the denominator for numerical stability (default 1e-10).
    pub eps: f64,
    /// Ascend the objective instead of descending (default false).
    pub maximize: bool,
}

impl Default for AdagradRule {
    fn default() -> Self {
        AdagradRule {
            lr_decay: 0.0,
            initial_accumulator_value: 0.0,
            eps: 1e-10,
            maximize: false,
        }
    }
}

/// Adagrad, like `torch.optim.Adagrad` (defaults lr 1e-2, eps 1e-10).
///
/// With gradient g, parameter θ, weight decay λ and step t:
///
/// ```text
/// g ← g + λθ                             (if λ ≠ 0)
/// s ← s + g²                             (s starts at initial_accumulator_value)
/// θ ← θ − lr/(1 + (t − 1)·lr_decay) · g/(√s + ε)
/// ```
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::optim::{Adagrad, Optimizer};
/// let w = Tensor::from_vec(vec![2.0], &[1]).requires_grad();
/// let mut opt = Adagrad::new(vec![w.clone()], 0.5).initial_accumulator_value(0.0);
/// w.square().sum().backward();
/// opt.step(); // s = g², so the first step moves by lr
/// assert!((w.item() - 1.5).abs() < 1e-6);
/// ```
pub type Adagrad = Optim<AdagradRule>;

impl Rule for AdagradRule {
    const NAME: &'static str = "Adagrad";
    const BUFFERS: &'static [&'static str] = &["sum"];
    const COUNTS_STEPS: bool = true;

    fn uses_buffer(&self, _k: usize) -> bool {
        true
    }

    fn buffer_init(&self, _k: usize) -> f64 {
        self.initial_accumulator_value
    }

    hyper_params! {
        "lr_decay" => lr_decay,
        "initial_accumulator_value" => initial_accumulator_value,
        "eps" => eps,
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
        let clr = s.lr / (1.0 + (s.step as f64 - 1.0) * self.lr_decay);
        let (wd, eps, neg_clr) = (F::c(s.weight_decay), F::c(self.eps), F::c(-clr));
        let [sum, ..] = buffers;
        let sum = sum.expect("sum");
        for ((p, &g), acc) in param.iter_mut().zip(grad).zip(sum.iter_mut()) {
            let mut g = signed(g, self.maximize);
            if s.weight_decay != 0.0 {
                g = wd.mul_add(*p, g);
            }
            // addcmul(g, g, value=1), fused
            *acc = g.mul_add(g, *acc);
            // addcdiv: θ + (−clr·g)/(√s + ε)
            *p += neg_clr * g / (acc.sqrt() + eps);
        }
    }
}

impl Optim<AdagradRule> {
    /// Adagrad over `params` with learning rate `lr` (PyTorch's default is 1e-2) and PyTorch's
    /// other defaults.
    ///
    /// # Panics
    /// If `lr` is negative, `params` is empty, or a parameter does not require grad, is not a
    /// leaf, or is given twice.
    #[track_caller]
    pub fn new(params: Vec<Tensor>, lr: f64) -> Self {
        Optim::build(params, lr, 0.0, AdagradRule::default(), Location::caller())
    }

    /// Sets the learning-rate decay (default 0).
    ///
    /// # Panics
    /// If `lr_decay` is negative.
    #[track_caller]
    pub fn lr_decay(self, lr_decay: f64) -> Self {
        self.checked("lr_decay", lr_decay, Location::caller(), |r| {
            r.lr_decay = lr_decay
        })
    }

    /// Sets the value the sum of squared gradients starts from (default 0).
    ///
    /// # Panics
    /// If `value` is negative.
    #[track_caller]
    pub fn initial_accumulator_value(self, value: f64) -> Self {
        self.checked(
            "initial_accumulator_value",
            value,
            Location::caller(),
            |r| r.initial_accumulator_value = value,
        )
    }

    /// Sets ε (default 1e-10).
    ///
    /// # Panics
    /// If `eps` is negative.
    #[track_caller]
    pub fn eps(self, eps: f64) -> Self {
        self.checked("epsilon", eps, Location::caller(), |r| r.eps = eps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::base::tests::{assert_close, param, step_with};

    #[test]
    fn adagrad_divides_by_the_root_of_the_summed_squares_with_decaying_lr() {
        // s_t = s₀ + Σ g², θ ← θ − lr/(1 + (t − 1)·decay) · g/(√s + ε)
        let (lr, decay, s0, eps, wd) = (0.1, 0.5, 0.2, 1e-3, 0.1);
        let p = param(&[1.0]);
        let mut opt = Adagrad::new(vec![p.clone()], lr)
            .lr_decay(decay)
            .initial_accumulator_value(s0)
            .eps(eps)
            .weight_decay(wd);
        let (mut theta, mut s) = (1.0, s0);
        for (t, g) in [2.0, -1.0, 0.5].into_iter().enumerate() {
            step_with(&mut opt, &p, &[g]);
            let g = g + wd * theta;
            s += g * g;
            theta -= lr / (1.0 + t as f64 * decay) * g / (f64::sqrt(s) + eps);
            assert_close(&p.to_vec::<f64>(), &[theta]);
        }
    }

    #[test]
    #[should_panic(
        expected = "Adagrad: invalid initial_accumulator_value -1 (must be >= 0), at src/optim/adagrad.rs"
    )]
    fn negative_initial_accumulator_panics() {
        Adagrad::new(vec![param(&[1.0])], 0.1).initial_accumulator_value(-1.0);
    }
}
