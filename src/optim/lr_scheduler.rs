//! Learning-rate schedules, like `torch.optim.lr_scheduler`.
//!
//! A schedule sets the `lr` of every parameter group of an optimizer. As in PyTorch it is created
//! after the optimizer (creating it already sets the learning rate of step 0) and stepped once per
//! epoch or iteration, after `opt.step()`. Rust's borrow rules keep the schedule from holding the
//! optimizer while the training loop steps it, so the optimizer is passed to each call:
//!
//! ```
//! use tapegrad::prelude::*;
//! use tapegrad::optim::lr_scheduler::{LrScheduler, StepLR};
//! use tapegrad::optim::{Optimizer, Sgd};
//!
//! let w = Tensor::zeros(&[3]).requires_grad();
//! let mut opt = Sgd::new(vec![w], 0.1);
//! let mut sched = StepLR::new(&mut opt, 2, 0.5);
//! let mut lrs = vec![];
//! for _epoch in 0..5 {
//!     // ... opt.zero_grad(); loss.backward(); opt.step(); ...
//!     lrs.push(opt.lr(0));
//!     sched.step(&mut opt);
//! }
//! assert_eq!(lrs, vec![0.1, 0.1, 0.05, 0.05, 0.025]);
//! ```
//!
//! Each schedule computes its learning rates the way PyTorch's `step()` does, from the current
//! ones ("chainable" form), so two schedules on one optimizer compose as in PyTorch and the values
//! agree with PyTorch's to the last bit.
//!
//! The schedules: [`StepLR`], [`MultiStepLR`], [`ExponentialLR`], [`CosineAnnealingLR`],
//! [`LinearLR`], [`ConstantLR`], [`PolynomialLR`], [`LambdaLR`], [`MultiplicativeLR`],
//! [`SequentialLR`], [`OneCycleLR`], [`CyclicLR`], [`CosineAnnealingWarmRestarts`] and
//! [`ReduceLROnPlateau`]; tests/optim.rs checks 100 steps of each against PyTorch's values.

use std::collections::BTreeMap;
use std::f64::consts::PI;
use std::panic::Location;

use super::Optimizer;

/// What every schedule keeps, like the attributes of PyTorch's `LRScheduler`.
#[derive(Clone, Debug)]
pub struct SchedulerCore {
    /// Each group's learning rate when the schedule started (`group["initial_lr"]`).
    pub base_lrs: Vec<f64>,
    /// The number of the current epoch (0 after creation).
    pub last_epoch: i64,
    /// How many times `step` ran (the creation step included).
    pub step_count: u64,
    /// The learning rates set by the last step.
    pub last_lr: Vec<f64>,
    /// True only during the step taken at creation.
    pub is_initial: bool,
}

impl SchedulerCore {
    /// Starts a schedule on `opt`: records each group's `initial_lr` (its current learning rate,
    /// unless an earlier schedule already recorded one) as the base learning rate.
    pub fn new(opt: &mut dyn Optimizer) -> SchedulerCore {
        let base_lrs = (0..opt.num_param_groups())
            .map(|g| match opt.hyper(g, "initial_lr") {
                Some(v) => v,
                None => {
                    let lr = opt.lr(g);
                    opt.set_hyper(g, "initial_lr", lr);
                    lr
                }
            })
            .collect();
        SchedulerCore {
            base_lrs,
            last_epoch: -1,
            step_count: 0,
            last_lr: Vec::new(),
            is_initial: false,
        }
    }
}

impl SchedulerCore {
    /// The state as PyTorch names it: `last_epoch`, `_step_count`, `base_lrs.{g}`, `_last_lr.{g}`.
    pub fn state_dict(&self) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        out.insert("last_epoch".to_string(), self.last_epoch as f64);
        out.insert("_step_count".to_string(), self.step_count as f64);
        for (g, v) in self.base_lrs.iter().enumerate() {
            out.insert(format!("base_lrs.{g}"), *v);
        }
        for (g, v) in self.last_lr.iter().enumerate() {
            out.insert(format!("_last_lr.{g}"), *v);
        }
        out
    }

    /// Restores a [`state_dict`](SchedulerCore::state_dict) for the same number of groups.
    ///
    /// # Errors
    /// [`Error::Format`](crate::Error::Format) if a key is missing or unknown, or the number of
    /// groups differs; the state is unchanged then.
    pub fn load_state_dict(&mut self, state: &BTreeMap<String, f64>) -> crate::Result<()> {
        let bad = |msg: String| Err(crate::Error::Format(format!("lr_scheduler: {msg}")));
        let get = |k: &str| state.get(k).copied();
        let (Some(last_epoch), Some(step_count)) = (get("last_epoch"), get("_step_count")) else {
            return bad("the state dict has no 'last_epoch' or '_step_count'".into());
        };
        let n = self.base_lrs.len();
        let list = |name: &str| {
            (0..n)
                .map(|g| get(&format!("{name}.{g}")))
                .collect::<Option<Vec<f64>>>()
        };
        let (Some(base_lrs), Some(last_lr)) = (list("base_lrs"), list("_last_lr")) else {
            return bad(format!(
                "the state dict does not hold 'base_lrs' and '_last_lr' for {n} groups"
            ));
        };
        if state.len() != 2 + 2 * n {
            let known = self.state_dict();
            let extra = state.keys().find(|k| !known.contains_key(*k));
            return bad(format!(
                "unexpected key '{}' in the state dict (the schedule has {n} groups)",
                extra.map_or("?", |k| k.as_str())
            ));
        }
        self.last_epoch = last_epoch as i64;
        self.step_count = step_count as u64;
        self.base_lrs = base_lrs;
        self.last_lr = last_lr;
        Ok(())
    }
}

/// A learning-rate schedule, like PyTorch's `LRScheduler`.
///
/// To write one, keep a [`SchedulerCore`] and compute the next learning rates in
/// [`get_lr`](LrScheduler::get_lr); after creating it, call
/// [`initial_step`](LrScheduler::initial_step) once, as PyTorch's constructor does.
pub trait LrScheduler {
    /// The shared state.
    fn core(&self) -> &SchedulerCore;

    /// The shared state, mutably.
    fn core_mut(&mut self) -> &mut SchedulerCore;

    /// The learning rates for epoch `core().last_epoch`, from the optimizer's current ones
    /// (PyTorch's `get_lr`).
    #[track_caller]
    fn get_lr(&mut self, opt: &mut dyn Optimizer) -> Vec<f64>;

    /// The learning rates for epoch `core().last_epoch` from the base learning rates alone,
    /// if the schedule has such a closed form (PyTorch's `_get_closed_form_lr`).
    fn closed_form_lr(&self) -> Option<Vec<f64>> {
        None
    }

    /// Moves to the next epoch and sets its learning rates on `opt`, like `scheduler.step()`.
    ///
    /// # Panics
    /// If the schedule cannot go on (a [`OneCycleLR`] past its total steps) or the optimizer's
    /// number of groups changed.
    #[track_caller]
    fn step(&mut self, opt: &mut dyn Optimizer) {
        self.core_mut().step_count += 1;
        self.update_lr(opt, None);
    }

    /// The learning rates set by the last step, like `scheduler.get_last_lr()`.
    fn get_last_lr(&self) -> &[f64] {
        &self.core().last_lr
    }

    /// The current epoch.
    fn last_epoch(&self) -> i64 {
        self.core().last_epoch
    }

    /// Sets the learning rates of the next epoch, or of epoch `epoch` from the closed form when
    /// given (PyTorch's `_update_lr`).
    ///
    /// # Panics
    /// If the optimizer's number of groups changed since the schedule was created.
    #[track_caller]
    fn update_lr(&mut self, opt: &mut dyn Optimizer, epoch: Option<i64>) {
        let values = match epoch {
            None => {
                self.core_mut().last_epoch += 1;
                self.get_lr(opt)
            }
            Some(e) => {
                self.core_mut().last_epoch = e;
                self.closed_form_lr().unwrap_or_else(|| self.get_lr(opt))
            }
        };
        if values.len() != opt.num_param_groups() {
            panic!(
                "lr_scheduler: the optimizer has {} parameter groups but the schedule was made \
                 for {}, at {}",
                opt.num_param_groups(),
                values.len(),
                Location::caller()
            );
        }
        for (g, lr) in values.into_iter().enumerate() {
            opt.set_lr(g, lr);
        }
        self.core_mut().last_lr = opt.lrs();
    }

    /// The schedule's state, like `scheduler.state_dict()`, as PyTorch-named numbers (see
    /// [`SchedulerCore::state_dict`]; [`SequentialLR`] adds its schedules' under
    /// `_schedulers.{i}.`). Constructor arguments are not part of it: to resume, create the
    /// schedule with the same arguments, load the optimizer's state, then this.
    fn state_dict(&self) -> BTreeMap<String, f64> {
        self.core().state_dict()
    }

    /// Restores a [`state_dict`](LrScheduler::state_dict), like `scheduler.load_state_dict(sd)`.
    ///
    /// # Errors
    /// [`Error::Format`](crate::Error::Format) if the state dict does not fit this schedule.
    fn load_state_dict(&mut self, state: &BTreeMap<String, f64>) -> crate::Result<()> {
        self.core_mut().load_state_dict(state)
    }

    /// The step taken at creation, which sets the learning rates of epoch 0.
    fn initial_step(&mut self, opt: &mut dyn Optimizer) {
        self.core_mut().step_count = 0;
        self.core_mut().is_initial = true;
        self.step(opt);
        self.core_mut().is_initial = false;
    }

    /// Takes back the epoch count of the creation step ([`SequentialLR`] does this to the
    /// schedules it sequences).
    fn undo_initial_step(&mut self) {
        self.core_mut().last_epoch -= 1;
    }
}

/// Implements the plumbing part of [`LrScheduler`] for a struct with a `core` field.
macro_rules! core_access {
    () => {
        fn core(&self) -> &SchedulerCore {
            &self.core
        }

        fn core_mut(&mut self) -> &mut SchedulerCore {
            &mut self.core
        }
    };
}

// after `core_access!`, which they use
mod cyclic;
mod factor;
pub use cyclic::{CosineAnnealingWarmRestarts, CyclicBuilder, CyclicLR, CyclicMode, ScaleMode};
pub use factor::{ConstantLR, LambdaLR, LrLambda, MultiplicativeLR, PolynomialLR};

/// For schedules that cycle momentum ([`OneCycleLR`], [`CyclicLR`]): the optimizer's name for it
/// (Adam's `betas.0` or SGD's `momentum`), after setting it to `start` in every group.
///
/// # Panics
/// If the optimizer has neither.
fn start_momentum_cycle(
    schedule: &str,
    opt: &mut dyn Optimizer,
    start: f64,
    loc: &Location,
) -> &'static str {
    let name = if opt.hyper(0, "betas.0").is_some() {
        "betas.0"
    } else if opt.hyper(0, "momentum").is_some() {
        "momentum"
    } else {
        panic!(
            "{schedule}: the optimizer has neither momentum nor betas to cycle; use \
             .cycle_momentum(false), at {loc}"
        );
    };
    for g in 0..opt.num_param_groups() {
        opt.set_hyper(g, name, start);
    }
    name
}

/// Multiplies every learning rate by `factor`.
fn scaled(opt: &dyn Optimizer, factor: f64) -> Vec<f64> {
    opt.lrs().into_iter().map(|lr| lr * factor).collect()
}

/// Creates a schedule and takes its creation step.
fn started<S: LrScheduler>(mut s: S, opt: &mut dyn Optimizer) -> S {
    s.initial_step(opt);
    s
}

/// Multiplies the learning rate by `gamma` every `step_size` epochs, like `StepLR`.
///
/// `lr = base_lr · gamma^⌊epoch / step_size⌋`
#[derive(Clone, Debug)]
pub struct StepLR {
    core: SchedulerCore,
    step_size: usize,
    gamma: f64,
}

impl StepLR {
    /// Starts the schedule on `opt` (PyTorch's default gamma is 0.1).
    ///
    /// # Panics
    /// If `step_size` is 0.
    #[track_caller]
    pub fn new(opt: &mut dyn Optimizer, step_size: usize, gamma: f64) -> StepLR {
        if step_size == 0 {
            panic!(
                "StepLR: step_size must be positive, at {}",
                Location::caller()
            );
        }
        let core = SchedulerCore::new(opt);
        started(
            StepLR {
                core,
                step_size,
                gamma,
            },
            opt,
        )
    }
}

impl LrScheduler for StepLR {
    core_access!();

    fn get_lr(&mut self, opt: &mut dyn Optimizer) -> Vec<f64> {
        let e = self.core.last_epoch;
        if e == 0 || e % self.step_size as i64 != 0 {
            opt.lrs()
        } else {
            scaled(opt, self.gamma)
        }
    }

    fn closed_form_lr(&self) -> Option<Vec<f64>> {
        let k = self.core.last_epoch.div_euclid(self.step_size as i64) as f64;
        Some(
            self.core
                .base_lrs
                .iter()
                .map(|b| b * self.gamma.powf(k))
                .collect(),
        )
    }
}

/// Multiplies the learning rate by `gamma` at each milestone epoch, like `MultiStepLR` (a
/// milestone given twice multiplies by `gamma²`).
///
/// `lr = base_lr · gamma^(number of milestones ≤ epoch)`
#[derive(Clone, Debug)]
pub struct MultiStepLR {
    core: SchedulerCore,
    milestones: Vec<i64>,
    gamma: f64,
}

impl MultiStepLR {
    /// Starts the schedule on `opt` (PyTorch's default gamma is 0.1).
    pub fn new(opt: &mut dyn Optimizer, milestones: &[usize], gamma: f64) -> MultiStepLR {
        let mut milestones: Vec<i64> = milestones.iter().map(|&m| m as i64).collect();
        milestones.sort_unstable();
        let core = SchedulerCore::new(opt);
        started(
            MultiStepLR {
                core,
                milestones,
                gamma,
            },
            opt,
        )
    }
}

impl LrScheduler for MultiStepLR {
    core_access!();

    fn get_lr(&mut self, opt: &mut dyn Optimizer) -> Vec<f64> {
        let e = self.core.last_epoch;
        let hits = self.milestones.iter().filter(|&&m| m == e).count();
        if hits == 0 {
            opt.lrs()
        } else {
            scaled(opt, self.gamma.powf(hits as f64))
        }
    }

    fn closed_form_lr(&self) -> Option<Vec<f64>> {
        let passed = bisect_right(&self.milestones, self.core.last_epoch) as f64;
        Some(
            self.core
                .base_lrs
                .iter()
                .map(|b| b * self.gamma.powf(passed))
                .collect(),
        )
    }
}

/// The number of elements of sorted `v` that are ≤ `x` (Python's `bisect_right`).
fn bisect_right(v: &[i64], x: i64) -> usize {
    v.partition_point(|&m| m <= x)
}

/// Multiplies the learning rate by `gamma` every epoch, like `ExponentialLR`.
///
/// `lr = base_lr · gamma^epoch`
#[derive(Clone, Debug)]
pub struct ExponentialLR {
    core: SchedulerCore,
    gamma: f64,
}

impl ExponentialLR {
    /// Starts the schedule on `opt`.
    pub fn new(opt: &mut dyn Optimizer, gamma: f64) -> ExponentialLR {
        let core = SchedulerCore::new(opt);
        started(ExponentialLR { core, gamma }, opt)
    }
}

impl LrScheduler for ExponentialLR {
    core_access!();

    fn get_lr(&mut self, opt: &mut dyn Optimizer) -> Vec<f64> {
        if self.core.is_initial {
            opt.lrs()
        } else {
            scaled(opt, self.gamma)
        }
    }

    fn closed_form_lr(&self) -> Option<Vec<f64>> {
        let e = self.core.last_epoch as f64;
        Some(
            self.core
                .base_lrs
                .iter()
                .map(|b| b * self.gamma.powf(e))
                .collect(),
        )
    }
}

/// Cosine annealing from the base learning rate to `eta_min` over `t_max` epochs, like
/// `CosineAnnealingLR` (SGDR without restarts).
///
/// `lr = eta_min + (base_lr − eta_min)·(1 + cos(π·epoch/t_max))/2`, computed recursively from the
/// current learning rate as PyTorch does; past `t_max` it rises again (the cosine's period is
/// `2·t_max`).
#[derive(Clone, Debug)]
pub struct CosineAnnealingLR {
    core: SchedulerCore,
    t_max: usize,
    eta_min: f64,
}

impl CosineAnnealingLR {
    /// Starts the schedule on `opt` (PyTorch's default `eta_min` is 0).
    ///
    /// # Panics
    /// If `t_max` is 0.
    #[track_caller]
    pub fn new(opt: &mut dyn Optimizer, t_max: usize, eta_min: f64) -> CosineAnnealingLR {
        if t_max == 0 {
            panic!(
                "CosineAnnealingLR: t_max must be positive, at {}",
                Location::caller()
            );
        }
        let core = SchedulerCore::new(opt);
        started(
            CosineAnnealingLR {
                core,
                t_max,
                eta_min,
            },
            opt,
        )
    }
}

impl LrScheduler for CosineAnnealingLR {
    core_access!();

    fn get_lr(&mut self, opt: &mut dyn Optimizer) -> Vec<f64> {
        let (e, t, eta) = (self.core.last_epoch, self.t_max as f64, self.eta_min);
        let base = &self.core.base_lrs;
        if self.core.is_initial {
            opt.lrs()
        } else if self.core.step_count == 1 && e > 0 {
            base.iter()
                .map(|b| eta + (b - eta) * (1.0 + (e as f64 * PI / t).cos()) / 2.0)
                .collect()
        } else if (e - 1 - self.t_max as i64).rem_euclid(2 * self.t_max as i64) == 0 {
            base.iter()
                .zip(opt.lrs())
                .map(|(b, lr)| lr + (b - eta) * (1.0 - (PI / t).cos()) / 2.0)
                .collect()
        } else {
            let ratio = (1.0 + (PI * e as f64 / t).cos()) / (1.0 + (PI * (e - 1) as f64 / t).cos());
            opt.lrs()
                .into_iter()
                .map(|lr| ratio * (lr - eta) + eta)
                .collect()
        }
    }

    fn closed_form_lr(&self) -> Option<Vec<f64>> {
        let (e, t, eta) = (self.core.last_epoch as f64, self.t_max as f64, self.eta_min);
        let c = 1.0 + (PI * e / t).cos();
        Some(
            self.core
                .base_lrs
                .iter()
                .map(|b| eta + (b - eta) * c / 2.0)
                .collect(),
        )
    }
}

/// Scales the learning rate linearly from `start_factor` to `end_factor` over `total_iters`
/// epochs, then keeps it, like `LinearLR` (the usual warm-up).
///
/// `lr = base_lr · (start + (end − start)·min(epoch, total_iters)/total_iters)`
#[derive(Clone, Debug)]
pub struct LinearLR {
    core: SchedulerCore,
    start_factor: f64,
    end_factor: f64,
    total_iters: usize,
}

impl LinearLR {
    /// Starts the schedule on `opt` (PyTorch's defaults: 1/3, 1.0, 5).
    ///
    /// # Panics
    /// If `start_factor` is not in (0, 1] or `end_factor` not in [0, 1].
    #[track_caller]
    pub fn new(
        opt: &mut dyn Optimizer,
        start_factor: f64,
        end_factor: f64,
        total_iters: usize,
    ) -> LinearLR {
        let loc = Location::caller();
        if !(start_factor > 0.0 && start_factor <= 1.0) {
            panic!("LinearLR: start_factor must be in (0, 1], got {start_factor}, at {loc}");
        }
        if !(0.0..=1.0).contains(&end_factor) {
            panic!("LinearLR: end_factor must be in [0, 1], got {end_factor}, at {loc}");
        }
        let core = SchedulerCore::new(opt);
        let s = LinearLR {
            core,
            start_factor,
            end_factor,
            total_iters,
        };
        started(s, opt)
    }
}

impl LrScheduler for LinearLR {
    core_access!();

    fn get_lr(&mut self, opt: &mut dyn Optimizer) -> Vec<f64> {
        let e = self.core.last_epoch;
        let (start, end) = (self.start_factor, self.end_factor);
        if e == 0 {
            scaled(opt, start)
        } else if self.core.is_initial || e > self.total_iters as i64 {
            opt.lrs()
        } else {
            let t = self.total_iters as f64;
            scaled(
                opt,
                1.0 + (end - start) / (t * start + (e - 1) as f64 * (end - start)),
            )
        }
    }

    fn closed_form_lr(&self) -> Option<Vec<f64>> {
        let (start, end, t) = (self.start_factor, self.end_factor, self.total_iters);
        let e = self.core.last_epoch.min(t as i64) as f64;
        let f = start + (end - start) * e / t as f64;
        Some(self.core.base_lrs.iter().map(|b| b * f).collect())
    }
}

/// Runs schedules one after another, switching at the milestone epochs, like `SequentialLR`
/// (typically a warm-up then a decay). At a milestone the next schedule starts from its epoch 0.
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::optim::lr_scheduler::{CosineAnnealingLR, LinearLR, LrScheduler, SequentialLR};
/// use tapegrad::optim::{Optimizer, Sgd};
///
/// let mut opt = Sgd::new(vec![Tensor::zeros(&[2]).requires_grad()], 0.1);
/// let warmup = LinearLR::new(&mut opt, 0.1, 1.0, 5);
/// let decay = CosineAnnealingLR::new(&mut opt, 95, 0.0);
/// let mut sched = SequentialLR::new(&mut opt, vec![Box::new(warmup), Box::new(decay)], &[5]);
/// assert!((opt.lr(0) - 0.01).abs() < 1e-12); // warm-up starts at 0.1 · lr
/// for _ in 0..5 {
///     sched.step(&mut opt);
/// }
/// assert_eq!(opt.lr(0), 0.1); // the cosine starts from the base learning rate
/// ```
pub struct SequentialLR {
    core: SchedulerCore,
    schedulers: Vec<Box<dyn LrScheduler>>,
    milestones: Vec<i64>,
}

impl SequentialLR {
    /// Sequences `schedulers` (all created on `opt`), switching at `milestones`.
    ///
    /// # Panics
    /// If `schedulers` is empty or there is not one milestone fewer than schedulers.
    #[track_caller]
    pub fn new(
        opt: &mut dyn Optimizer,
        mut schedulers: Vec<Box<dyn LrScheduler>>,
        milestones: &[usize],
    ) -> SequentialLR {
        let loc = Location::caller();
        if schedulers.is_empty() {
            panic!("SequentialLR: expects at least one scheduler, at {loc}");
        }
        if milestones.len() + 1 != schedulers.len() {
            panic!(
                "SequentialLR: expects one milestone fewer than schedulers, got {} schedulers and \
                 {} milestones, at {loc}",
                schedulers.len(),
                milestones.len()
            );
        }
        // back to the learning rates before the schedules' creation steps
        for g in 0..opt.num_param_groups() {
            let initial = opt.hyper(g, "initial_lr").expect("set by the schedules");
            opt.set_lr(g, initial);
        }
        for s in &mut schedulers {
            s.undo_initial_step();
        }
        let milestones: Vec<i64> = milestones.iter().map(|&m| m as i64).collect();
        let idx = bisect_right(&milestones, 0);
        schedulers[idx].initial_step(opt);
        let mut core = SchedulerCore::new(opt);
        core.last_epoch = 0;
        core.last_lr = schedulers[idx].get_last_lr().to_vec();
        SequentialLR {
            core,
            schedulers,
            milestones,
        }
    }
}

impl LrScheduler for SequentialLR {
    core_access!();

    /// The current learning rates (the sequenced schedules compute the next ones).
    fn get_lr(&mut self, opt: &mut dyn Optimizer) -> Vec<f64> {
        opt.lrs()
    }

    #[track_caller]
    fn step(&mut self, opt: &mut dyn Optimizer) {
        self.core.last_epoch += 1;
        let e = self.core.last_epoch;
        let idx = bisect_right(&self.milestones, e);
        let s = &mut self.schedulers[idx];
        if idx > 0 && self.milestones[idx - 1] == e {
            s.update_lr(opt, Some(0));
        } else {
            s.step(opt);
        }
        self.core.last_lr = s.get_last_lr().to_vec();
    }

    fn undo_initial_step(&mut self) {
        for s in &mut self.schedulers {
            s.undo_initial_step();
        }
    }

    fn state_dict(&self) -> BTreeMap<String, f64> {
        let mut out = self.core.state_dict();
        for (i, s) in self.schedulers.iter().enumerate() {
            for (k, v) in s.state_dict() {
                out.insert(format!("_schedulers.{i}.{k}"), v);
            }
        }
        out
    }

    fn load_state_dict(&mut self, state: &BTreeMap<String, f64>) -> crate::Result<()> {
        let mut own = BTreeMap::new();
        let mut parts = vec![BTreeMap::new(); self.schedulers.len()];
        for (k, &v) in state {
            let child = k.strip_prefix("_schedulers.").and_then(|r| {
                let (i, rest) = r.split_once('.')?;
                Some((i.parse::<usize>().ok()?, rest))
            });
            match child {
                Some((i, rest)) if i < parts.len() => {
                    parts[i].insert(rest.to_string(), v);
                }
                Some(_) => {
                    return Err(crate::Error::Format(format!(
                        "lr_scheduler: '{k}' names a schedule SequentialLR does not have"
                    )))
                }
                None => {
                    own.insert(k.clone(), v);
                }
            }
        }
        // check everything before changing anything
        let mut core = self.core.clone();
        core.load_state_dict(&own)?;
        let saved: Vec<_> = self.schedulers.iter().map(|s| s.state_dict()).collect();
        for (i, part) in parts.iter().enumerate() {
            if let Err(e) = self.schedulers[i].load_state_dict(part) {
                for (s, old) in self.schedulers.iter_mut().zip(&saved) {
                    s.load_state_dict(old).expect("its own state dict loads");
                }
                return Err(e);
            }
        }
        self.core = core;
        Ok(())
    }
}

/// How [`OneCycleLR`] moves between its phase end points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Anneal {
    /// Half a cosine wave (the default).
    Cos,
    /// A straight line.
    Linear,
}

impl Anneal {
    fn at(self, start: f64, end: f64, pct: f64) -> f64 {
        match self {
            Anneal::Cos => end + (start - end) / 2.0 * ((PI * pct).cos() + 1.0),
            Anneal::Linear => (end - start) * pct + start,
        }
    }
}

/// The 1cycle policy, like `OneCycleLR`: the learning rate rises from `max_lr / div_factor` to
/// `max_lr` over the first `pct_start` of `total_steps`, then falls to
/// `max_lr / (div_factor · final_div_factor)`; momentum (or Adam's β₁) moves the opposite way
/// between `max_momentum` and `base_momentum`. Step it after every batch.
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::optim::lr_scheduler::{LrScheduler, OneCycleLR};
/// use tapegrad::optim::{Optimizer, Sgd};
///
/// let mut opt = Sgd::new(vec![Tensor::zeros(&[2]).requires_grad()], 0.1).momentum(0.9);
/// let mut sched = OneCycleLR::builder(1.0, 100).pct_start(0.25).build(&mut opt);
/// assert!((opt.lr(0) - 1.0 / 25.0).abs() < 1e-15); // max_lr / div_factor
/// for _ in 0..24 {
///     sched.step(&mut opt);
/// }
/// assert_eq!(opt.lr(0), 1.0); // the peak, where momentum is lowest
/// assert_eq!(opt.hyper(0, "momentum"), Some(0.85));
/// ```
#[derive(Clone, Debug)]
pub struct OneCycleLR {
    core: SchedulerCore,
    total_steps: usize,
    anneal: Anneal,
    /// (end step, start point, end point) of each phase; points index `[initial, max, min]`.
    phases: Vec<(f64, usize, usize)>,
    /// Per group: the learning rates `[initial, max, min]`.
    lr_points: Vec<[f64; 3]>,
    /// Per group: `(max_momentum, base_momentum)` when cycling momentum.
    momentum: Option<(Vec<[f64; 2]>, &'static str)>,
}

/// The options of [`OneCycleLR`], with PyTorch's defaults.
#[derive(Clone, Debug)]
pub struct OneCycleBuilder {
    max_lrs: Vec<f64>,
    total_steps: usize,
    pct_start: f64,
    anneal: Anneal,
    cycle_momentum: bool,
    base_momentum: f64,
    max_momentum: f64,
    div_factor: f64,
    final_div_factor: f64,
    three_phase: bool,
}

impl OneCycleLR {
    /// The options of a 1cycle schedule peaking at `max_lr` over `total_steps` steps; finish with
    /// [`build`](OneCycleBuilder::build).
    pub fn builder(max_lr: f64, total_steps: usize) -> OneCycleBuilder {
        OneCycleBuilder {
            max_lrs: vec![max_lr],
            total_steps,
            pct_start: 0.3,
            anneal: Anneal::Cos,
            cycle_momentum: true,
            base_momentum: 0.85,
            max_momentum: 0.95,
            div_factor: 25.0,
            final_div_factor: 1e4,
            three_phase: false,
        }
    }
}

impl OneCycleBuilder {
    /// One peak learning rate per parameter group (instead of one for all).
    pub fn max_lrs(mut self, max_lrs: Vec<f64>) -> Self {
        self.max_lrs = max_lrs;
        self
    }

    /// The fraction of the steps spent raising the learning rate (default 0.3).
    pub fn pct_start(mut self, pct_start: f64) -> Self {
        self.pct_start = pct_start;
        self
    }

    /// The annealing shape (default cosine).
    pub fn anneal_strategy(mut self, anneal: Anneal) -> Self {
        self.anneal = anneal;
        self
    }

    /// Whether to cycle momentum (or Adam's β₁) inversely to the learning rate (default true).
    pub fn cycle_momentum(mut self, cycle: bool) -> Self {
        self.cycle_momentum = cycle;
        self
    }

    /// The momentum at the learning-rate peak (default 0.85).
    pub fn base_momentum(mut self, m: f64) -> Self {
        self.base_momentum = m;
        self
    }

    /// The momentum at the start and end (default 0.95).
    pub fn max_momentum(mut self, m: f64) -> Self {
        self.max_momentum = m;
        self
    }

    /// The start learning rate is `max_lr / div_factor` (default 25).
    pub fn div_factor(mut self, f: f64) -> Self {
        self.div_factor = f;
        self
    }

    /// The final learning rate is the start one divided by `final_div_factor` (default 1e4).
    pub fn final_div_factor(mut self, f: f64) -> Self {
        self.final_div_factor = f;
        self
    }

    /// Uses three phases (up, down to the start value, then down to the final value) instead of
    /// two (default false).
    pub fn three_phase(mut self, three: bool) -> Self {
        self.three_phase = three;
        self
    }

    /// Starts the schedule on `opt`: sets each group's learning rate (and momentum) for step 0.
    ///
    /// # Panics
    /// If `total_steps` is 0, `pct_start` is outside [0, 1], `max_lrs` has neither one value nor
    /// one per group, or momentum is cycled on an optimizer with neither momentum nor betas.
    #[track_caller]
    pub fn build(self, opt: &mut dyn Optimizer) -> OneCycleLR {
        let loc = Location::caller();
        let n = opt.num_param_groups();
        if self.total_steps == 0 {
            panic!("OneCycleLR: total_steps must be positive, at {loc}");
        }
        if !(0.0..=1.0).contains(&self.pct_start) {
            panic!(
                "OneCycleLR: pct_start must be in [0, 1], got {}, at {loc}",
                self.pct_start
            );
        }
        let max_lrs = match self.max_lrs.len() {
            1 => vec![self.max_lrs[0]; n],
            m if m == n => self.max_lrs.clone(),
            m => panic!("OneCycleLR: expected {n} values for max_lr, got {m}, at {loc}"),
        };
        let total = self.total_steps as f64;
        let up = self.pct_start * total - 1.0;
        let (initial, max, min) = (0, 1, 2);
        let phases = if self.three_phase {
            vec![
                (up, initial, max),
                (2.0 * self.pct_start * total - 2.0, max, initial),
                (total - 1.0, initial, min),
            ]
        } else {
            vec![(up, initial, max), (total - 1.0, max, min)]
        };
        let lr_points: Vec<[f64; 3]> = max_lrs
            .iter()
            .map(|&m| {
                let init = m / self.div_factor;
                [init, m, init / self.final_div_factor]
            })
            .collect();
        for (g, p) in lr_points.iter().enumerate() {
            opt.set_hyper(g, "initial_lr", p[0]);
        }
        let momentum = if self.cycle_momentum {
            let name = start_momentum_cycle("OneCycleLR", opt, self.max_momentum, loc);
            Some((vec![[self.max_momentum, self.base_momentum]; n], name))
        } else {
            None
        };
        let core = SchedulerCore::new(opt);
        let s = OneCycleLR {
            core,
            total_steps: self.total_steps,
            anneal: self.anneal,
            phases,
            lr_points,
            momentum,
        };
        started(s, opt)
    }
}

impl LrScheduler for OneCycleLR {
    core_access!();

    /// # Panics
    /// If stepped more than `total_steps` times.
    fn get_lr(&mut self, opt: &mut dyn Optimizer) -> Vec<f64> {
        let step = self.core.last_epoch;
        if step > self.total_steps as i64 {
            panic!(
                "OneCycleLR: tried to step {step} times; the schedule has {} total steps, at {}",
                self.total_steps,
                Location::caller()
            );
        }
        let step = step as f64;
        // the momentum points in the order [initial, max, min] of the learning-rate points:
        // momentum is high where the learning rate is low
        let mut lrs = Vec::with_capacity(self.lr_points.len());
        for (g, lr_p) in self.lr_points.iter().enumerate() {
            let mut start_step = 0.0;
            for (i, &(end_step, from, to)) in self.phases.iter().enumerate() {
                if step <= end_step || i == self.phases.len() - 1 {
                    let pct = (step - start_step) / (end_step - start_step);
                    lrs.push(self.anneal.at(lr_p[from], lr_p[to], pct));
                    if let Some((m, name)) = &self.momentum {
                        let [hi, lo] = m[g];
                        let m_p = [hi, lo, hi];
                        opt.set_hyper(g, name, self.anneal.at(m_p[from], m_p[to], pct));
                    }
                    break;
                }
                start_step = end_step;
            }
        }
        lrs
    }
}

/// Whether [`ReduceLROnPlateau`] waits for the metric to fall or to rise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlateauMode {
    /// A lower metric is better (a loss; the default).
    Min,
    /// A higher metric is better (an accuracy).
    Max,
}

/// How [`ReduceLROnPlateau`] decides that a metric improved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThresholdMode {
    /// By more than `threshold` times the best value (the default).
    Rel,
    /// By more than `threshold`.
    Abs,
}

/// Divides the learning rate when a metric stops improving, like `ReduceLROnPlateau`.
///
/// After more than `patience` epochs without improvement the learning rate of each group is
/// multiplied by `factor` (not below `min_lr`), then `cooldown` epochs pass before counting again.
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::optim::lr_scheduler::ReduceLROnPlateau;
/// use tapegrad::optim::{Optimizer, Sgd};
///
/// let mut opt = Sgd::new(vec![Tensor::zeros(&[2]).requires_grad()], 0.1);
/// let mut sched = ReduceLROnPlateau::new(&opt).factor(0.5).patience(1);
/// for loss in [1.0, 0.9, 0.9, 0.9] {
///     sched.step(&mut opt, loss);
/// }
/// assert_eq!(opt.lr(0), 0.05); // two epochs without improvement
/// ```
#[derive(Clone, Debug)]
pub struct ReduceLROnPlateau {
    mode: PlateauMode,
    factor: f64,
    patience: usize,
    threshold: f64,
    threshold_mode: ThresholdMode,
    cooldown: usize,
    min_lrs: Vec<f64>,
    default_min_lr: Option<f64>,
    eps: f64,
    best: f64,
    num_bad_epochs: usize,
    cooldown_counter: usize,
    last_epoch: i64,
    last_lr: Vec<f64>,
}

impl ReduceLROnPlateau {
    /// A plateau schedule for `opt` with PyTorch's defaults: mode min, factor 0.1, patience 10,
    /// threshold 1e-4 relative, no cooldown, min_lr 0, eps 1e-8.
    pub fn new(opt: &dyn Optimizer) -> ReduceLROnPlateau {
        let n = opt.num_param_groups();
        ReduceLROnPlateau {
            mode: PlateauMode::Min,
            factor: 0.1,
            patience: 10,
            threshold: 1e-4,
            threshold_mode: ThresholdMode::Rel,
            cooldown: 0,
            min_lrs: vec![0.0; n],
            default_min_lr: Some(0.0),
            eps: 1e-8,
            best: f64::INFINITY,
            num_bad_epochs: 0,
            cooldown_counter: 0,
            last_epoch: 0,
            last_lr: opt.lrs(),
        }
    }

    /// Whether lower or higher metrics are better (default [`PlateauMode::Min`]).
    pub fn mode(mut self, mode: PlateauMode) -> Self {
        self.mode = mode;
        self.best = self.worst();
        self
    }

    /// The factor applied to the learning rate (default 0.1).
    ///
    /// # Panics
    /// If `factor` is not below 1.
    #[track_caller]
    pub fn factor(mut self, factor: f64) -> Self {
        if factor.is_nan() || factor >= 1.0 {
            panic!(
                "ReduceLROnPlateau: factor should be < 1.0, got {factor}, at {}",
                Location::caller()
            );
        }
        self.factor = factor;
        self
    }

    /// How many epochs without improvement to tolerate (default 10).
    pub fn patience(mut self, patience: usize) -> Self {
        self.patience = patience;
        self
    }

    /// The smallest change that counts as an improvement (default 1e-4).
    pub fn threshold(mut self, threshold: f64) -> Self {
        self.threshold = threshold;
        self
    }

    /// Whether the threshold is relative or absolute (default [`ThresholdMode::Rel`]).
    pub fn threshold_mode(mut self, mode: ThresholdMode) -> Self {
        self.threshold_mode = mode;
        self
    }

    /// Epochs to wait after a reduction before counting bad epochs again (default 0).
    pub fn cooldown(mut self, cooldown: usize) -> Self {
        self.cooldown = cooldown;
        self
    }

    /// The lowest learning rate of every group (default 0).
    pub fn min_lr(mut self, min_lr: f64) -> Self {
        self.min_lrs = vec![min_lr; self.min_lrs.len()];
        self.default_min_lr = Some(min_lr);
        self
    }

    /// The lowest learning rate of each group.
    ///
    /// # Panics
    /// If there is not one value per group.
    #[track_caller]
    pub fn min_lrs(mut self, min_lrs: Vec<f64>) -> Self {
        if min_lrs.len() != self.min_lrs.len() {
            panic!(
                "ReduceLROnPlateau: expected {} min_lrs, got {}, at {}",
                self.min_lrs.len(),
                min_lrs.len(),
                Location::caller()
            );
        }
        self.min_lrs = min_lrs;
        self.default_min_lr = None;
        self
    }

    /// Reductions smaller than `eps` are skipped (default 1e-8).
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }

    fn worst(&self) -> f64 {
        match self.mode {
            PlateauMode::Min => f64::INFINITY,
            PlateauMode::Max => f64::NEG_INFINITY,
        }
    }

    fn is_better(&self, a: f64, best: f64) -> bool {
        match (self.mode, self.threshold_mode) {
            (PlateauMode::Min, ThresholdMode::Rel) => a < best * (1.0 - self.threshold),
            (PlateauMode::Min, ThresholdMode::Abs) => a < best - self.threshold,
            (PlateauMode::Max, ThresholdMode::Rel) => a > best * (self.threshold + 1.0),
            (PlateauMode::Max, ThresholdMode::Abs) => a > best + self.threshold,
        }
    }

    /// Records the metric of one more epoch and reduces the learning rates after a plateau, like
    /// `scheduler.step(metric)`.
    ///
    /// # Panics
    /// If the optimizer's number of groups changed and per-group `min_lrs` were given.
    #[track_caller]
    pub fn step(&mut self, opt: &mut dyn Optimizer, metric: f64) {
        self.last_epoch += 1;
        if self.is_better(metric, self.best) {
            self.best = metric;
            self.num_bad_epochs = 0;
        } else {
            self.num_bad_epochs += 1;
        }
        if self.cooldown_counter > 0 {
            self.cooldown_counter -= 1;
            self.num_bad_epochs = 0;
        }
        if self.num_bad_epochs > self.patience {
            self.reduce_lr(opt, Location::caller());
            self.cooldown_counter = self.cooldown;
            self.num_bad_epochs = 0;
        }
        self.last_lr = opt.lrs();
    }

    fn reduce_lr(&mut self, opt: &mut dyn Optimizer, loc: &Location) {
        let n = opt.num_param_groups();
        if n != self.min_lrs.len() {
            match self.default_min_lr {
                Some(m) => self.min_lrs = vec![m; n],
                None => panic!(
                    "ReduceLROnPlateau: the optimizer has {n} parameter groups but {} min_lrs \
                     were given, at {loc}",
                    self.min_lrs.len()
                ),
            }
        }
        for g in 0..n {
            let old = opt.lr(g);
            let new = (old * self.factor).max(self.min_lrs[g]);
            if old - new > self.eps {
                opt.set_lr(g, new);
            }
        }
    }

    /// The learning rates after the last step, like `scheduler.get_last_lr()`.
    pub fn get_last_lr(&self) -> &[f64] {
        &self.last_lr
    }

    /// The best metric seen so far.
    pub fn best(&self) -> f64 {
        self.best
    }

    /// The number of consecutive epochs without improvement.
    pub fn num_bad_epochs(&self) -> usize {
        self.num_bad_epochs
    }

    /// The state, like `scheduler.state_dict()`: `best`, `num_bad_epochs`, `cooldown_counter`,
    /// `last_epoch`, `_last_lr.{g}` and `min_lrs.{g}`. Options (`factor`, `patience`, …) are not
    /// part of it: create the schedule with the same options, then load.
    pub fn state_dict(&self) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        out.insert("best".to_string(), self.best);
        out.insert("num_bad_epochs".to_string(), self.num_bad_epochs as f64);
        out.insert("cooldown_counter".to_string(), self.cooldown_counter as f64);
        out.insert("last_epoch".to_string(), self.last_epoch as f64);
        for (g, v) in self.last_lr.iter().enumerate() {
            out.insert(format!("_last_lr.{g}"), *v);
        }
        for (g, v) in self.min_lrs.iter().enumerate() {
            out.insert(format!("min_lrs.{g}"), *v);
        }
        out
    }

    /// Restores a [`state_dict`](ReduceLROnPlateau::state_dict).
    ///
    /// # Errors
    /// [`Error::Format`](crate::Error::Format) if a key is missing or unknown; the state is
    /// unchanged then.
    pub fn load_state_dict(&mut self, state: &BTreeMap<String, f64>) -> crate::Result<()> {
        let bad = |msg: String| Err(crate::Error::Format(format!("ReduceLROnPlateau: {msg}")));
        let get = |k: &str| state.get(k).copied();
        let list =
            |name: &str| -> Vec<f64> { (0..).map_while(|g| get(&format!("{name}.{g}"))).collect() };
        let scalars = ["best", "num_bad_epochs", "cooldown_counter", "last_epoch"].map(get);
        let [Some(best), Some(bad_epochs), Some(cooldown), Some(epoch)] = scalars else {
            return bad(
                "the state dict lacks 'best', 'num_bad_epochs', 'cooldown_counter' or \
                 'last_epoch'"
                    .into(),
            );
        };
        let (last_lr, min_lrs) = (list("_last_lr"), list("min_lrs"));
        if state.len() != 4 + last_lr.len() + min_lrs.len() {
            return bad("unexpected keys in the state dict".into());
        }
        self.best = best;
        self.num_bad_epochs = bad_epochs as usize;
        self.cooldown_counter = cooldown as usize;
        self.last_epoch = epoch as i64;
        self.last_lr = last_lr;
        self.min_lrs = min_lrs;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::{Adam, Sgd};
    use crate::Tensor;

    fn sgd(lrs: &[f64]) -> Sgd {
        let p = || Tensor::zeros(&[1]).requires_grad();
        let mut opt = Sgd::new(vec![p()], lrs[0]).momentum(0.9);
        for &lr in &lrs[1..] {
            opt.add_param_group(vec![p()]).set_lr(lr);
        }
        opt
    }

    /// The learning rates of group 0 at creation and after each of `n` steps.
    fn run(opt: &mut dyn Optimizer, s: &mut dyn LrScheduler, n: usize) -> Vec<f64> {
        let mut out = vec![opt.lr(0)];
        for _ in 0..n {
            s.step(opt);
            out.push(opt.lr(0));
        }
        out
    }

    fn assert_close(a: &[f64], b: &[f64]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= 1e-12 * y.abs().max(1e-3), "{a:?} != {b:?}");
        }
    }

    #[test]
    fn step_lr_matches_its_closed_form() {
        // lr = base·γ^⌊e/step⌋
        let mut opt = sgd(&[0.1]);
        let mut s = StepLR::new(&mut opt, 3, 0.5);
        let want: Vec<f64> = (0..10).map(|e| 0.1 * 0.5f64.powi(e / 3)).collect();
        assert_close(&run(&mut opt, &mut s, 9), &want);
    }

    #[test]
    fn multi_step_lr_multiplies_at_each_milestone_twice_for_repeats() {
        // milestones 2, 4, 4: γ at 2, γ² at 4
        let mut opt = sgd(&[1.0]);
        let mut s = MultiStepLR::new(&mut opt, &[4, 2, 4], 0.1);
        assert_close(
            &run(&mut opt, &mut s, 5),
            &[1.0, 1.0, 0.1, 0.1, 0.001, 0.001],
        );
        assert_close(&s.closed_form_lr().unwrap(), &[0.001]);
    }

    #[test]
    fn exponential_lr_multiplies_every_epoch() {
        let mut opt = sgd(&[2.0]);
        let mut s = ExponentialLR::new(&mut opt, 0.5);
        assert_close(&run(&mut opt, &mut s, 3), &[2.0, 1.0, 0.5, 0.25]);
    }

    #[test]
    fn cosine_annealing_follows_half_a_cosine_and_comes_back_up() {
        // lr = η + (base − η)(1 + cos(πe/T))/2, periodic with 2T
        let (base, eta, t) = (0.1, 0.01, 4);
        let mut opt = sgd(&[base]);
        let mut s = CosineAnnealingLR::new(&mut opt, t, eta);
        let want: Vec<f64> = (0..=12)
            .map(|e| eta + (base - eta) * (1.0 + (PI * e as f64 / t as f64).cos()) / 2.0)
            .collect();
        assert_close(&run(&mut opt, &mut s, 12), &want);
    }

    #[test]
    fn linear_lr_warms_up_then_stays() {
        // factor start + (end − start)·min(e, T)/T
        let mut opt = sgd(&[1.0]);
        let mut s = LinearLR::new(&mut opt, 0.25, 1.0, 3);
        assert_close(&run(&mut opt, &mut s, 5), &[0.25, 0.5, 0.75, 1.0, 1.0, 1.0]);
    }

    #[test]
    fn each_group_is_scheduled_from_its_own_base_lr() {
        let mut opt = sgd(&[1.0, 0.5]);
        let mut s = ExponentialLR::new(&mut opt, 0.5);
        s.step(&mut opt);
        assert_eq!(opt.lrs(), vec![0.5, 0.25]);
        assert_eq!(s.get_last_lr(), &[0.5, 0.25]);
        assert_eq!(s.core().base_lrs, vec![1.0, 0.5]);
    }

    #[test]
    fn sequential_lr_switches_schedules_at_the_milestone() {
        // linear warm-up 0.5 → 1 over 2 epochs, then exponential decay from the base lr
        let mut opt = sgd(&[1.0]);
        let warm = LinearLR::new(&mut opt, 0.5, 1.0, 2);
        let decay = ExponentialLR::new(&mut opt, 0.5);
        let mut s = SequentialLR::new(&mut opt, vec![Box::new(warm), Box::new(decay)], &[3]);
        assert_close(&run(&mut opt, &mut s, 5), &[0.5, 0.75, 1.0, 1.0, 0.5, 0.25]);
        assert_eq!(s.get_last_lr(), &[0.25]);
    }

    #[test]
    fn one_cycle_rises_then_anneals_and_cycles_adams_beta1() {
        let p = Tensor::zeros(&[1]).requires_grad();
        let mut opt = Adam::new(vec![p], 0.1);
        let mut s = OneCycleLR::builder(1.0, 10)
            .pct_start(0.5)
            .anneal_strategy(Anneal::Linear)
            .build(&mut opt);
        // up from 1/25 over steps 0..4 (linear), down to 1/25/1e4 over 4..9
        let lrs = run(&mut opt, &mut s, 9);
        let (lo, hi, fin) = (0.04, 1.0, 0.04 / 1e4);
        assert_close(&lrs[..5], &[lo, lo + 0.24, lo + 0.48, lo + 0.72, hi]);
        assert_close(&lrs[9..], &[fin]);
        // β₁ went from 0.95 down to 0.85 and back
        assert_close(&[opt.hyper(0, "betas.0").unwrap()], &[0.95]);
    }

    #[test]
    #[should_panic(
        expected = "OneCycleLR: tried to step 3 times; the schedule has 2 total steps, at src/optim/lr_scheduler.rs"
    )]
    fn one_cycle_panics_past_its_total_steps() {
        let mut opt = sgd(&[0.1]);
        let mut s = OneCycleLR::builder(1.0, 2).build(&mut opt);
        for _ in 0..3 {
            s.step(&mut opt);
        }
    }

    #[test]
    #[should_panic(
        expected = "lr_scheduler: the optimizer has 2 parameter groups but the schedule was made for 1"
    )]
    fn a_group_added_after_the_schedule_panics_at_step() {
        let mut opt = sgd(&[0.1]);
        // epoch 2 of a 1-epoch cosine uses the base learning rates, which the new group lacks
        let mut s = CosineAnnealingLR::new(&mut opt, 1, 0.0);
        opt.add_param_group(vec![Tensor::zeros(&[1]).requires_grad()]);
        s.step(&mut opt);
        s.step(&mut opt);
    }

    #[test]
    #[should_panic(expected = "OneCycleLR: the optimizer has neither momentum nor betas to cycle")]
    fn one_cycle_needs_momentum_to_cycle() {
        let p = Tensor::zeros(&[1]).requires_grad();
        let mut opt = crate::optim::Adagrad::new(vec![p], 0.1);
        OneCycleLR::builder(1.0, 10).build(&mut opt);
    }

    #[test]
    fn plateau_reduces_after_patience_and_waits_out_the_cooldown() {
        let mut opt = sgd(&[1.0]);
        let mut s = ReduceLROnPlateau::new(&opt)
            .factor(0.5)
            .patience(1)
            .cooldown(1)
            .min_lr(0.2);
        let mut lrs = vec![];
        // better, bad, bad → reduce; cooldown epoch; bad, bad → reduce; bad, bad → floor 0.2
        for m in [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0] {
            s.step(&mut opt, m);
            lrs.push(opt.lr(0));
        }
        assert_eq!(lrs, vec![1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.2]);
    }

    #[test]
    fn plateau_in_max_abs_mode_counts_small_gains_as_bad() {
        // improvements of 0.05 are below the absolute threshold 0.1
        let mut opt = sgd(&[1.0]);
        let mut s = ReduceLROnPlateau::new(&opt)
            .mode(PlateauMode::Max)
            .threshold_mode(ThresholdMode::Abs)
            .threshold(0.1)
            .patience(1);
        for m in [0.5, 0.55, 0.6] {
            s.step(&mut opt, m);
        }
        assert_eq!(opt.lr(0), 0.1);
        assert_eq!(s.best(), 0.5);
    }

    #[test]
    #[should_panic(
        expected = "ReduceLROnPlateau: factor should be < 1.0, got 1, at src/optim/lr_scheduler.rs"
    )]
    fn plateau_factor_of_one_panics() {
        let opt = sgd(&[1.0]);
        let _ = ReduceLROnPlateau::new(&opt).factor(1.0);
    }

    #[test]
    #[should_panic(expected = "LinearLR: start_factor must be in (0, 1], got 0")]
    fn linear_lr_start_factor_zero_panics() {
        let mut opt = sgd(&[1.0]);
        LinearLR::new(&mut opt, 0.0, 1.0, 5);
    }

    #[test]
    fn a_plateau_schedule_resumes_from_its_state_dict() {
        let mut opt = sgd(&[1.0]);
        let mut a = ReduceLROnPlateau::new(&opt)
            .factor(0.5)
            .patience(1)
            .cooldown(1);
        for loss in [1.0, 0.9, 0.95] {
            a.step(&mut opt, loss);
        }
        let mut b = ReduceLROnPlateau::new(&opt)
            .factor(0.5)
            .patience(1)
            .cooldown(1);
        b.load_state_dict(&a.state_dict()).unwrap();
        assert_eq!(b.state_dict(), a.state_dict());
        // one more epoch without improvement: both reduce now (2 bad epochs > patience 1), 1 → 0.5
        let mut opt_b = sgd(&[1.0]);
        opt_b.set_lr(0, opt.lr(0));
        a.step(&mut opt, 0.95);
        b.step(&mut opt_b, 0.95);
        assert_eq!(opt.lr(0), 0.5);
        assert_eq!(opt_b.lr(0), opt.lr(0));
        let mut st = a.state_dict();
        st.insert("patience".into(), 3.0);
        assert!(b.load_state_dict(&st).is_err());
    }
}
