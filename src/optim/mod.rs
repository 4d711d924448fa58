//! Optimizers, gradient clipping and learning-rate schedules, like `torch.optim`.
//!
//! Every optimizer here ([`Sgd`], [`Adam`], [`AdamW`], [`RmsProp`], [`Adagrad`]) follows PyTorch's
//! update rule and defaults to the operation order (PyTorch's CPU kernels fuse `a + α·b` into one
//! fused multiply-add; so do these), so a training run can be compared step by step with PyTorch.
//! Each update is one loop per parameter over the raw elements of parameter, gradient and state,
//! done in place: nothing is recorded on the tape and nothing is allocated after the first step.
//!
//! ```
//! use tapegrad::prelude::*;
//! use tapegrad::optim::{AdamW, Optimizer};
//!
//! let w = Tensor::from_vec(vec![1.0, -2.0, 3.0], &[3]).requires_grad();
//! let mut opt = AdamW::new(vec![w.clone()], 0.1).betas(0.9, 0.999).weight_decay(0.01);
//! for _ in 0..100 {
//!     opt.zero_grad();
//!     let loss = w.square().sum(); // minimum at w = 0
//!     loss.backward();
//!     opt.step();
//! }
//! assert!(w.to_vec::<f32>().iter().all(|v| v.abs() < 0.2));
//! ```
//!
//! Parameter groups get their own learning rate and weight decay:
//!
//! ```
//! # use tapegrad::prelude::*;
//! # use tapegrad::optim::{Sgd, Optimizer};
//! let w = Tensor::zeros(&[4, 3]).requires_grad();
//! let b = Tensor::zeros(&[3]).requires_grad();
//! let mut opt = Sgd::new(vec![w], 0.1).momentum(0.9).weight_decay(1e-4);
//! opt.add_param_group(vec![b]).set_lr(0.01).set_weight_decay(0.0);
//! assert_eq!(opt.lr(1), 0.01);
//! ```
//!
//! Schedules ([`lr_scheduler`]) set the learning rate of an optimizer's groups; they take the
//! optimizer at each step (`sched.step(&mut opt)`) instead of holding it, so that the training loop
//! keeps calling `opt.step()` in between.

mod adagrad;
mod adam;
mod base;
pub mod clip;
mod kernel;
pub mod lr_scheduler;
mod rmsprop;
mod sgd;
mod state_dict;

pub use adagrad::{Adagrad, AdagradRule};
pub use adam::{Adam, AdamRule, AdamW};
pub use base::{Optim, ParamGroup, Rule, StepInfo, MAX_BUFFERS};
pub use clip::{clip_grad_norm, clip_grad_value};
pub use rmsprop::{RmsProp, RmsPropRule};
pub use sgd::{Sgd, SgdRule};
pub use state_dict::StateDict;

use crate::{Result, Tensor};

/// What every optimizer can do, like the methods of `torch.optim.Optimizer`.
///
/// The trait is object safe, so training loops and learning-rate schedules can take
/// `&mut dyn Optimizer`. Hyper-parameters are reached by their PyTorch names (`"lr"`,
/// `"weight_decay"`, `"momentum"`, `"betas.0"`, …; booleans read as 0 or 1), the way
/// `optimizer.param_groups[g]["lr"]` reaches them in PyTorch. The concrete optimizers also give
/// typed access through [`Optim::param_groups`] and [`Optim::param_groups_mut`].
pub trait Optimizer {
    /// Updates every parameter that has a gradient, like `optimizer.step()`.
    ///
    /// # Panics
    /// If a group's hyper-parameters do not fit together (SGD's Nesterov momentum without
    /// momentum).
    #[track_caller]
    fn step(&mut self);

    /// Clears the gradients of every parameter, like `optimizer.zero_grad()` (which sets them to
    /// `None` by default, so the next backward pass writes instead of adding).
    fn zero_grad(&mut self) {
        for p in self.params() {
            p.zero_grad();
        }
    }

    /// The number of parameter groups.
    fn num_param_groups(&self) -> usize;

    /// The parameters of group `group`, like `optimizer.param_groups[group]["params"]`.
    ///
    /// # Panics
    /// If there is no such group.
    fn group_params(&self, group: usize) -> &[Tensor];

    /// Every parameter, group after group.
    fn params(&self) -> Vec<Tensor> {
        (0..self.num_param_groups())
            .flat_map(|g| self.group_params(g).to_vec())
            .collect()
    }

    /// A hyper-parameter of group `group` by its PyTorch name (`"lr"`, `"weight_decay"`,
    /// `"initial_lr"` once a schedule has set it, `"betas.0"`, `"momentum"`, …), or `None` if this
    /// optimizer has no such hyper-parameter.
    ///
    /// # Panics
    /// If there is no such group.
    fn hyper(&self, group: usize, name: &str) -> Option<f64>;

    /// Sets a hyper-parameter of group `group` by name, like
    /// `optimizer.param_groups[group][name] = value` (as there, the value is not checked).
    ///
    /// # Panics
    /// If there is no such group or this optimizer has no hyper-parameter of that name.
    fn set_hyper(&mut self, group: usize, name: &str, value: f64);

    /// The learning rate of group `group`.
    ///
    /// # Panics
    /// If there is no such group.
    #[track_caller]
    fn lr(&self, group: usize) -> f64 {
        self.hyper(group, "lr").expect("every group has an lr")
    }

    /// Sets the learning rate of group `group` (what schedules do).
    ///
    /// # Panics
    /// If there is no such group.
    #[track_caller]
    fn set_lr(&mut self, group: usize, lr: f64) {
        self.set_hyper(group, "lr", lr);
    }

    /// The learning rate of every group.
    fn lrs(&self) -> Vec<f64> {
        (0..self.num_param_groups()).map(|g| self.lr(g)).collect()
    }

    /// A snapshot of the optimizer's state (per-parameter buffers and step counts) and of every
    /// group's hyper-parameters, like `optimizer.state_dict()`. See [`StateDict`] for the keys.
    fn state_dict(&self) -> StateDict;

    /// Restores a [`state_dict`](Optimizer::state_dict), like `optimizer.load_state_dict(sd)`:
    /// hyper-parameters are taken from the dict, and state buffers are cast to each parameter's
    /// dtype. Parameters are matched by position, so the groups must have the same sizes.
    ///
    /// # Errors
    /// If the groups differ in number or size, a buffer's shape differs from its parameter's, or a
    /// key is unknown to this optimizer. The optimizer is unchanged then.
    fn try_load_state_dict(&mut self, state: &StateDict) -> Result<()>;

    /// Like [`try_load_state_dict`](Optimizer::try_load_state_dict), panicking on error.
    ///
    /// # Panics
    /// If the state dict does not fit this optimizer (see `try_load_state_dict`).
    #[track_caller]
    fn load_state_dict(&mut self, state: &StateDict) {
        let loc = std::panic::Location::caller();
        if let Err(e) = self.try_load_state_dict(state) {
            panic!("load_state_dict: {e}, at {loc}");
        }
    }
}

/// PyTorch's spelling of [`Sgd`], so `optim::SGD::new(params, lr)` reads as in PyTorch.
#[allow(clippy::upper_case_acronyms)]
pub type SGD = Sgd;

/// PyTorch's spelling of [`RmsProp`].
pub type RMSprop = RmsProp;
