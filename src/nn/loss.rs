//! Loss modules, like `nn.MSELoss`, `nn.CrossEntropyLoss`, …: structs holding a loss's options
//! whose `forward(input, target)` calls the function of the same name in
//! [`functional`](crate::nn::functional). They take two tensors, so they have their own
//! `forward` method rather than the one-input [`Forward`](crate::nn::Forward) trait.
//!
//! Each is a [`Module`]: as in PyTorch, a class `weight` (and `BCEWithLogitsLoss`'s `pos_weight`)
//! is a buffer, so it is in the loss's `state_dict` and in a model's when the loss is a field.
//!
//! ```
//! use tapegrad::prelude::*;
//! use tapegrad::nn::{CrossEntropyLoss, Reduction};
//! let loss_fn = CrossEntropyLoss { label_smoothing: 0.1, ..Default::default() };
//! let logits = Tensor::randn(&[4, 3]).requires_grad();
//! let y = Tensor::from_vec_i64(vec![0, 2, 1, 2], &[4]);
//! let loss = loss_fn.forward(&logits, &y);
//! loss.backward();
//! assert_eq!(logits.grad().unwrap().shape(), &[4, 3]);
//! assert_eq!(loss_fn.reduction, Reduction::Mean);
//! ```

use super::functional as F;
pub use super::functional::{CrossEntropyOpts, KlDivReduction, Reduction};
use super::module::{Module, Visitor};
use crate::tensor::Tensor;

/// `impl Module` for loss structs: the listed `Option<Tensor>` fields are buffers, as PyTorch's
/// `register_buffer("weight", weight)`; losses without them have an empty `state_dict`.
macro_rules! loss_module {
    ($($name:ident { $($buf:ident),* }),* $(,)?) => {$(
        impl Module for $name {
            fn visit(&self, _v: &mut Visitor) {
                $(if let Some(t) = &self.$buf {
                    _v.buffer(stringify!($buf), t);
                })*
            }
        }
    )*};
}

loss_module!(
    MSELoss {},
    L1Loss {},
    SmoothL1Loss {},
    HuberLoss {},
    CrossEntropyLoss { weight },
    NLLLoss { weight },
    BCELoss { weight },
    BCEWithLogitsLoss { weight, pos_weight },
    KLDivLoss {},
);

/// Mean squared error, like `nn.MSELoss`; see [`mse_loss`](F::mse_loss).
#[derive(Clone, Debug, Default)]
pub struct MSELoss {
    /// The reduction (default mean).
    pub reduction: Reduction,
}

impl MSELoss {
    /// The loss of `input` against `target`.
    ///
    /// # Panics
    /// As [`mse_loss`](F::mse_loss).
    #[track_caller]
    pub fn forward(&self, input: &Tensor, target: &Tensor) -> Tensor {
        F::mse_loss(input, target, self.reduction)
    }
}

/// Mean absolute error, like `nn.L1Loss`; see [`l1_loss`](F::l1_loss).
#[derive(Clone, Debug, Default)]
pub struct L1Loss {
    /// The reduction (default mean).
    pub reduction: Reduction,
}

impl L1Loss {
    /// The loss of `input` against `target`.
    ///
    /// # Panics
    /// As [`l1_loss`](F::l1_loss).
    #[track_caller]
    pub fn forward(&self, input: &Tensor, target: &Tensor) -> Tensor {
        F::l1_loss(input, target, self.reduction)
    }
}

/// Smooth L1 loss, like `nn.SmoothL1Loss`; see [`smooth_l1_loss`](F::smooth_l1_loss).
#[derive(Clone, Debug)]
pub struct SmoothL1Loss {
    /// The reduction (default mean).
    pub reduction: Reduction,
    /// Where the loss turns from quadratic to linear (default 1).
    pub beta: f64,
}

impl Default for SmoothL1Loss {
    fn default() -> Self {
        SmoothL1Loss {
            reduction: Reduction::Mean,
            beta: 1.0,
        }
    }
}

impl SmoothL1Loss {
    /// The loss of `input` against `target`.
    ///
    /// # Panics
    /// As [`smooth_l1_loss`](F::smooth_l1_loss).
    #[track_caller]
    pub fn forward(&self, input: &Tensor, target: &Tensor) -> Tensor {
        F::smooth_l1_loss(input, target, self.reduction, self.beta)
    }
}

/// Huber loss, like `nn.HuberLoss`; see [`huber_loss`](F::huber_loss).
#[derive(Clone, Debug)]
pub struct HuberLoss {
    /// The reduction (default mean).
    pub reduction: Reduction,
    /// Where the loss turns from quadratic to linear (default 1).
    pub delta: f64,
}

impl Default for HuberLoss {
    fn default() -> Self {
        HuberLoss {
            reduction: Reduction::Mean,
            delta: 1.0,
        }
    }
}

impl HuberLoss {
    /// The loss of `input` against `target`.
    ///
    /// # Panics
    /// As [`huber_loss`](F::huber_loss).
    #[track_caller]
    pub fn forward(&self, input: &Tensor, target: &Tensor) -> Tensor {
        F::huber_loss(input, target, self.reduction, self.delta)
    }
}

/// Cross entropy of logits, like `nn.CrossEntropyLoss`; see
/// [`cross_entropy`](F::cross_entropy) (class-index or probability targets).
#[derive(Clone, Debug)]
pub struct CrossEntropyLoss {
    /// A weight per class, `[C]` (default none).
    pub weight: Option<Tensor>,
    /// A class index that contributes no loss (default -100).
    pub ignore_index: i64,
    /// The reduction (default mean, weighted by the class weights).
    pub reduction: Reduction,
    /// Label smoothing ε in `[0, 1]` (default 0).
    pub label_smoothing: f64,
}

impl Default for CrossEntropyLoss {
    fn default() -> Self {
        let o = CrossEntropyOpts::default();
        CrossEntropyLoss {
            weight: o.weight,
            ignore_index: o.ignore_index,
            reduction: o.reduction,
            label_smoothing: o.label_smoothing,
        }
    }
}

impl CrossEntropyLoss {
    /// The loss of logits `input` against `target`.
    ///
    /// # Panics
    /// As [`cross_entropy`](F::cross_entropy).
    #[track_caller]
    pub fn forward(&self, input: &Tensor, target: &Tensor) -> Tensor {
        let opts = CrossEntropyOpts {
            weight: self.weight.clone(),
            ignore_index: self.ignore_index,
            reduction: self.reduction,
            label_smoothing: self.label_smoothing,
        };
        F::cross_entropy(input, target, &opts)
    }
}

/// Negative log-likelihood of log-probabilities, like `nn.NLLLoss`; see
/// [`nll_loss`](F::nll_loss).
#[derive(Clone, Debug)]
pub struct NLLLoss {
    /// A weight per class, `[C]` (default none).
    pub weight: Option<Tensor>,
    /// A class index that contributes no loss (default -100).
    pub ignore_index: i64,
    /// The reduction (default mean, weighted by the class weights).
    pub reduction: Reduction,
}

impl Default for NLLLoss {
    fn default() -> Self {
        NLLLoss {
            weight: None,
            ignore_index: -100,
            reduction: Reduction::Mean,
        }
    }
}

impl NLLLoss {
    /// The loss of log-probabilities `input` against class indices `target`.
    ///
    /// # Panics
    /// As [`nll_loss`](F::nll_loss).
    #[track_caller]
    pub fn forward(&self, input: &Tensor, target: &Tensor) -> Tensor {
        F::nll_loss(
            input,
            target,
            self.weight.as_ref(),
            self.ignore_index,
            self.reduction,
        )
    }
}

/// Binary cross entropy of probabilities, like `nn.BCELoss`; see
/// [`binary_cross_entropy`](F::binary_cross_entropy).
#[derive(Clone, Debug, Default)]
pub struct BCELoss {
    /// A weight broadcast to the input's shape (default none).
    pub weight: Option<Tensor>,
    /// The reduction (default mean).
    pub reduction: Reduction,
}

impl BCELoss {
    /// The loss of probabilities `input` against `target`.
    ///
    /// # Panics
    /// As [`binary_cross_entropy`](F::binary_cross_entropy).
    #[track_caller]
    pub fn forward(&self, input: &Tensor, target: &Tensor) -> Tensor {
        F::binary_cross_entropy(input, target, self.weight.as_ref(), self.reduction)
    }
}

/// Binary cross entropy of logits, like `nn.BCEWithLogitsLoss`; see
/// [`binary_cross_entropy_with_logits`](F::binary_cross_entropy_with_logits).
#[derive(Clone, Debug, Default)]
pub struct BCEWithLogitsLoss {
    /// A weight broadcast to the input's shape (default none).
    pub weight: Option<Tensor>,
    /// The reduction (default mean).
    pub reduction: Reduction,
    /// A weight of the positive term, broadcast to the input's shape (default none).
    pub pos_weight: Option<Tensor>,
}

impl BCEWithLogitsLoss {
    /// The loss of logits `input` against `target`.
    ///
    /// # Panics
    /// As [`binary_cross_entropy_with_logits`](F::binary_cross_entropy_with_logits).
    #[track_caller]
    pub fn forward(&self, input: &Tensor, target: &Tensor) -> Tensor {
        F::binary_cross_entropy_with_logits(
            input,
            target,
            self.weight.as_ref(),
            self.pos_weight.as_ref(),
            self.reduction,
        )
    }
}

/// Kullback–Leibler divergence, like `nn.KLDivLoss`; see [`kl_div`](F::kl_div).
#[derive(Clone, Debug, Default)]
pub struct KLDivLoss {
    /// The reduction (default mean; `BatchMean` is the true KL divergence per sample).
    pub reduction: KlDivReduction,
    /// Whether the target is given as log-probabilities (default false).
    pub log_target: bool,
}

impl KLDivLoss {
    /// The divergence of log-probabilities `input` from `target`.
    ///
    /// # Panics
    /// As [`kl_div`](F::kl_div).
    #[track_caller]
    pub fn forward(&self, input: &Tensor, target: &Tensor) -> Tensor {
        F::kl_div(input, target, self.reduction, self.log_target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::randn64;

    // Each module must give exactly what its function gives with the same options.
    #[test]
    fn modules_forward_to_their_functions_with_their_options() {
        let x = randn64(&[3, 4], 1);
        let y = randn64(&[3, 4], 2);
        let same = |a: Tensor, b: Tensor| assert_eq!(a.to_vec_f64(), b.to_vec_f64());
        let none = Reduction::None;
        same(
            MSELoss { reduction: none }.forward(&x, &y),
            F::mse_loss(&x, &y, none),
        );
        same(
            L1Loss::default().forward(&x, &y),
            F::l1_loss(&x, &y, Reduction::Mean),
        );
        same(
            SmoothL1Loss {
                reduction: none,
                beta: 0.5,
            }
            .forward(&x, &y),
            F::smooth_l1_loss(&x, &y, none, 0.5),
        );
        same(
            HuberLoss {
                reduction: Reduction::Sum,
                delta: 0.3,
            }
            .forward(&x, &y),
            F::huber_loss(&x, &y, Reduction::Sum, 0.3),
        );
        let w = randn64(&[4], 3).abs();
        let idx = Tensor::from_vec_i64(vec![0, 3, -100], &[3]);
        let ce = CrossEntropyLoss {
            weight: Some(w.clone()),
            label_smoothing: 0.2,
            ..Default::default()
        };
        let opts = CrossEntropyOpts {
            weight: Some(w.clone()),
            label_smoothing: 0.2,
            ..Default::default()
        };
        same(ce.forward(&x, &idx), F::cross_entropy(&x, &idx, &opts));
        let logp = x.log_softmax(1);
        let idx3 = Tensor::from_vec_i64(vec![0, 3, 1], &[3]);
        same(
            NLLLoss {
                weight: Some(w.clone()),
                ignore_index: 3,
                reduction: none,
            }
            .forward(&logp, &idx3),
            F::nll_loss(&logp, &idx3, Some(&w), 3, none),
        );
        let p = x.sigmoid();
        let t = y.sigmoid();
        same(
            BCELoss::default().forward(&p, &t),
            F::binary_cross_entropy(&p, &t, None, Reduction::Mean),
        );
        let bce = BCEWithLogitsLoss {
            pos_weight: Some(w.clone()),
            ..Default::default()
        };
        same(
            bce.forward(&x, &t),
            F::binary_cross_entropy_with_logits(&x, &t, None, Some(&w), Reduction::Mean),
        );
        let kl = KLDivLoss {
            reduction: KlDivReduction::BatchMean,
            log_target: true,
        };
        same(
            kl.forward(&logp, &y),
            F::kl_div(&logp, &y, KlDivReduction::BatchMean, true),
        );
    }

    #[test]
    fn class_weights_are_buffers_in_the_state_dict() {
        let w = Tensor::from_vec(vec![1.0, 2.0, 0.5], &[3]);
        let ce = CrossEntropyLoss {
            weight: Some(w.clone()),
            ..Default::default()
        };
        let sd = ce.state_dict();
        assert_eq!(sd.keys().collect::<Vec<_>>(), ["weight"]);
        assert_eq!(sd["weight"], w);
        assert!(ce.parameters().is_empty());
        let bce = BCEWithLogitsLoss {
            pos_weight: Some(w.clone()),
            ..Default::default()
        };
        assert_eq!(bce.state_dict().keys().collect::<Vec<_>>(), ["pos_weight"]);
        assert!(MSELoss::default().state_dict().is_empty());
        assert!(CrossEntropyLoss::default().state_dict().is_empty());
    }

    #[test]
    fn module_defaults_match_pytorch() {
        assert_eq!(SmoothL1Loss::default().beta, 1.0);
        assert_eq!(HuberLoss::default().delta, 1.0);
        let ce = CrossEntropyLoss::default();
        assert_eq!(
            (ce.ignore_index, ce.reduction, ce.label_smoothing),
            (-100, Reduction::Mean, 0.0)
        );
        assert_eq!(NLLLoss::default().ignore_index, -100);
        assert_eq!(KLDivLoss::default().reduction, KlDivReduction::Mean);
        assert!(!KLDivLoss::default().log_target);
    }
}
