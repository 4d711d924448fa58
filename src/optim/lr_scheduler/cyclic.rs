//! Schedules that go round in cycles: [`CyclicLR`] and [`CosineAnnealingWarmRestarts`].

use std::collections::BTreeMap;
use std::f64::consts::PI;
use std::fmt;
use std::panic::Location;

use super::{start_momentum_cycle, started, LrScheduler, SchedulerCore};
use crate::optim::Optimizer;

/// Cosine annealing with warm restarts (SGDR), like `CosineAnnealingWarmRestarts`.
///
/// `lr = eta_min + (base_lr - eta_min) · (1 + cos(π · T_cur / T_i)) / 2`, where `T_cur` counts
/// the epochs since the last restart and `T_i` is the length of the current cycle: `T_0` at
/// first, multiplied by `T_mult` at each restart.
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::optim::lr_scheduler::{CosineAnnealingWarmRestarts, LrScheduler};
/// use tapegrad::optim::{Optimizer, Sgd};
///
/// let mut opt = Sgd::new(vec![Tensor::zeros(&[2]).requires_grad()], 1.0);
/// let mut sched = CosineAnnealingWarmRestarts::new(&mut opt, 2, 1, 0.0);
/// let mut lrs = vec![opt.lr(0)];
/// for _ in 0..3 {
///     sched.step(&mut opt);
///     lrs.push(opt.lr(0));
/// }
/// // cos(π/2) is 6e-17, not 0
/// assert!((lrs[1] - 0.5).abs() < 1e-15);
/// assert_eq!([lrs[0], lrs[2], lrs[3]], [1.0, 1.0, lrs[1]]); // restarts every 2 epochs
///
/// // resuming: a new schedule with the same arguments, then the saved state
/// let saved = sched.state_dict();
/// let mut resumed = CosineAnnealingWarmRestarts::new(&mut opt, 2, 1, 0.0);
/// resumed.load_state_dict(&saved).unwrap();
/// resumed.step(&mut opt);
/// sched.step(&mut opt);
/// assert_eq!(resumed.get_last_lr(), sched.get_last_lr());
/// ```
#[derive(Clone, Debug)]
pub struct CosineAnnealingWarmRestarts {
    core: SchedulerCore,
    t_0: usize,
    t_i: f64,
    t_mult: usize,
    eta_min: f64,
    t_cur: f64,
}

impl CosineAnnealingWarmRestarts {
    /// Starts the schedule on `opt`: the first cycle lasts `t_0` epochs, each next one `t_mult`
    /// times longer (PyTorch's defaults: `t_mult` 1, `eta_min` 0).
    ///
    /// # Panics
    /// If `t_0` or `t_mult` is 0.
    #[track_caller]
    pub fn new(opt: &mut dyn Optimizer, t_0: usize, t_mult: usize, eta_min: f64) -> Self {
        let loc = Location::caller();
        if t_0 == 0 {
            panic!("CosineAnnealingWarmRestarts: t_0 must be positive, at {loc}");
        }
        if t_mult == 0 {
            panic!("CosineAnnealingWarmRestarts: t_mult must be at least 1, at {loc}");
        }
        let core = SchedulerCore::new(opt);
        let s = CosineAnnealingWarmRestarts {
            core,
            t_0,
            t_i: t_0 as f64,
            t_mult,
            eta_min,
            t_cur: -1.0,
        };
        started(s, opt)
    }

    /// Jumps to a (possibly fractional) `epoch`, like `scheduler.step(epoch)`; PyTorch's idiom
    /// `scheduler.step(epoch + i / iters)` steps within an epoch this way.
    ///
    /// # Panics
    /// If `epoch` is negative.
    #[track_caller]
    pub fn step_to(&mut self, opt: &mut dyn Optimizer, epoch: f64) {
        if epoch < 0.0 {
            panic!(
                "CosineAnnealingWarmRestarts: epoch must be non-negative, got {epoch}, at {}",
                Location::caller()
            );
        }
        self.core.step_count += 1;
        let t_0 = self.t_0 as f64;
        if epoch >= t_0 {
            if self.t_mult == 1 {
                self.t_cur = epoch % t_0;
            } else {
                let m = self.t_mult as f64;
                let n = ((epoch / t_0 * (m - 1.0) + 1.0).ln() / m.ln()).trunc();
                self.t_cur = epoch - t_0 * (m.powf(n) - 1.0) / (m - 1.0);
                self.t_i = t_0 * m.powf(n);
            }
        } else {
            self.t_i = t_0;
            self.t_cur = epoch;
        }
        self.core.last_epoch = epoch.floor() as i64;
        self.apply(opt);
    }

    fn apply(&mut self, opt: &mut dyn Optimizer) {
        for (g, lr) in self.get_lr(opt).into_iter().enumerate() {
            opt.set_lr(g, lr);
        }
        self.core.last_lr = opt.lrs();
    }
}

impl LrScheduler for CosineAnnealingWarmRestarts {
    core_access!();

    /// The shared state plus the position in the cycle, `T_i` and `T_cur`, as PyTorch names them.
    fn state_dict(&self) -> BTreeMap<String, f64> {
        let mut out = self.core.state_dict();
        out.insert("T_i".to_string(), self.t_i);
        out.insert("T_cur".to_string(), self.t_cur);
        out
    }

    fn load_state_dict(&mut self, state: &BTreeMap<String, f64>) -> crate::Result<()> {
        let mut rest = state.clone();
        let (Some(t_i), Some(t_cur)) = (rest.remove("T_i"), rest.remove("T_cur")) else {
            return Err(crate::Error::Format(
                "CosineAnnealingWarmRestarts: the state dict has no 'T_i' or 'T_cur'".into(),
            ));
        };
        self.core.load_state_dict(&rest)?;
        self.t_i = t_i;
        self.t_cur = t_cur;
        Ok(())
    }

    fn get_lr(&mut self, _opt: &mut dyn Optimizer) -> Vec<f64> {
        let c = (1.0 + (PI * self.t_cur / self.t_i).cos()) / 2.0;
        self.core
            .base_lrs
            .iter()
            .map(|b| self.eta_min + (b - self.eta_min) * c)
            .collect()
    }

    fn step(&mut self, opt: &mut dyn Optimizer) {
        if self.core.last_epoch < 0 {
            return self.step_to(opt, 0.0);
        }
        self.core.step_count += 1;
        self.core.last_epoch += 1;
        self.t_cur += 1.0;
        if self.t_cur >= self.t_i {
            self.t_cur %= self.t_i;
            self.t_i *= self.t_mult as f64;
        }
        self.apply(opt);
    }
}

/// The shape of each cycle of [`CyclicLR`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum CyclicMode {
    /// The same triangle every cycle (the default).
    Triangular,
    /// A triangle whose height halves every cycle.
    Triangular2,
    /// A triangle scaled by `gamma^iteration`.
    ExpRange {
        /// The per-iteration scale.
        gamma: f64,
    },
}

/// Whether a custom [`CyclicLR`] scale function takes the cycle number or the iteration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScaleMode {
    /// The scale function is given the cycle number (from 1).
    Cycle,
    /// The scale function is given the iteration number.
    Iterations,
}

type ScaleFn = Box<dyn Fn(f64) -> f64 + Send + Sync>;

/// Cycles the learning rate between `base_lr` and `max_lr`, like `CyclicLR` (Smith, "Cyclical
/// Learning Rates for Training Neural Networks"); stepped after every batch. When the optimizer
/// has momentum (or Adam's β₁), it cycles the other way, between `max_momentum` and
/// `base_momentum`.
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::optim::lr_scheduler::{CyclicLR, LrScheduler};
/// use tapegrad::optim::{Optimizer, Sgd};
///
/// let mut opt = Sgd::new(vec![Tensor::zeros(&[2]).requires_grad()], 0.1).momentum(0.9);
/// let mut sched = CyclicLR::builder(0.1, 0.5).step_size_up(2).build(&mut opt);
/// let mut lrs = vec![opt.lr(0)];
/// for _ in 0..4 {
///     sched.step(&mut opt);
///     lrs.push((opt.lr(0) * 1e9).round() / 1e9);
/// }
/// assert_eq!(lrs, [0.1, 0.3, 0.5, 0.3, 0.1]);
/// ```
pub struct CyclicLR {
    core: SchedulerCore,
    max_lrs: Vec<f64>,
    total_size: f64,
    step_ratio: f64,
    mode: CyclicMode,
    custom_scale: Option<(ScaleFn, ScaleMode)>,
    /// `[base, max]` momentum per group and the optimizer's name for it.
    momentum: Option<(Vec<[f64; 2]>, &'static str)>,
}

impl fmt::Debug for CyclicLR {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CyclicLR")
            .field("core", &self.core)
            .field("max_lrs", &self.max_lrs)
            .field("total_size", &self.total_size)
            .field("step_ratio", &self.step_ratio)
            .field("mode", &self.mode)
            .field("custom_scale", &self.custom_scale.as_ref().map(|s| s.1))
            .field("momentum", &self.momentum)
            .finish()
    }
}

/// Options of [`CyclicLR`], with PyTorch's defaults.
pub struct CyclicBuilder {
    base_lrs: Vec<f64>,
    max_lrs: Vec<f64>,
    step_size_up: usize,
    step_size_down: Option<usize>,
    mode: CyclicMode,
    custom_scale: Option<(ScaleFn, ScaleMode)>,
    cycle_momentum: bool,
    base_momentum: f64,
    max_momentum: f64,
}

impl CyclicLR {
    /// Options for a schedule cycling between `base_lr` and `max_lr` in every group.
    pub fn builder(base_lr: f64, max_lr: f64) -> CyclicBuilder {
        CyclicBuilder {
            base_lrs: vec![base_lr],
            max_lrs: vec![max_lr],
            step_size_up: 2000,
            step_size_down: None,
            mode: CyclicMode::Triangular,
            custom_scale: None,
            cycle_momentum: true,
            base_momentum: 0.8,
            max_momentum: 0.9,
        }
    }
}

impl CyclicBuilder {
    /// One `base_lr` per parameter group.
    pub fn base_lrs(mut self, lrs: Vec<f64>) -> Self {
        self.base_lrs = lrs;
        self
    }

    /// One `max_lr` per parameter group.
    pub fn max_lrs(mut self, lrs: Vec<f64>) -> Self {
        self.max_lrs = lrs;
        self
    }

    /// Iterations from `base_lr` up to `max_lr` (default 2000).
    pub fn step_size_up(mut self, n: usize) -> Self {
        self.step_size_up = n;
        self
    }

    /// Iterations back down (default: the same as up).
    pub fn step_size_down(mut self, n: usize) -> Self {
        self.step_size_down = Some(n);
        self
    }

    /// The cycle shape (default triangular).
    pub fn mode(mut self, mode: CyclicMode) -> Self {
        self.mode = mode;
        self
    }

    /// A custom scale of each cycle's height, given the cycle or the iteration; it replaces the
    /// mode's.
    pub fn scale_fn(
        mut self,
        f: impl Fn(f64) -> f64 + Send + Sync + 'static,
        scale_mode: ScaleMode,
    ) -> Self {
        self.custom_scale = Some((Box::new(f), scale_mode));
        self
    }

    /// Whether to cycle momentum inversely to the learning rate (default true).
    pub fn cycle_momentum(mut self, cycle: bool) -> Self {
        self.cycle_momentum = cycle;
        self
    }

    /// The momentum at the learning rate's peak (default 0.8).
    pub fn base_momentum(mut self, m: f64) -> Self {
        self.base_momentum = m;
        self
    }

    /// The momentum at the learning rate's base (default 0.9).
    pub fn max_momentum(mut self, m: f64) -> Self {
        self.max_momentum = m;
        self
    }

    /// Starts the schedule on `opt`: sets each group's learning rate to its `base_lr` (and its
    /// momentum to `max_momentum`).
    ///
    /// # Panics
    /// If a per-group list has the wrong length, the step sizes are both 0, or momentum cycling
    /// is on and the optimizer has neither momentum nor betas.
    #[track_caller]
    pub fn build(self, opt: &mut dyn Optimizer) -> CyclicLR {
        let loc = Location::caller();
        let n = opt.num_param_groups();
        let per_group = |name: &str, v: &[f64]| match v.len() {
            1 => vec![v[0]; n],
            m if m == n => v.to_vec(),
            m => panic!("CyclicLR: expected 1 or {n} values for {name}, got {m}, at {loc}"),
        };
        let base_lrs = per_group("base_lr", &self.base_lrs);
        let max_lrs = per_group("max_lr", &self.max_lrs);
        let up = self.step_size_up as f64;
        let down = self.step_size_down.map_or(up, |d| d as f64);
        if up + down == 0.0 {
            panic!("CyclicLR: step_size_up + step_size_down must be positive, at {loc}");
        }
        for (g, &lr) in base_lrs.iter().enumerate() {
            opt.set_lr(g, lr);
        }
        let momentum = if self.cycle_momentum {
            let name = start_momentum_cycle("CyclicLR", opt, self.max_momentum, loc);
            Some((vec![[self.base_momentum, self.max_momentum]; n], name))
        } else {
            None
        };
        let core = SchedulerCore::new(opt);
        let s = CyclicLR {
            core,
            max_lrs,
            total_size: up + down,
            step_ratio: up / (up + down),
            mode: self.mode,
            custom_scale: self.custom_scale,
            momentum,
        };
        let mut s = started(s, opt);
        // as PyTorch, which sets `base_lrs` after its constructor's first step
        s.core.base_lrs = base_lrs;
        s
    }
}

impl CyclicLR {
    /// The height scale at `cycle` / iteration `it`.
    fn scale(&self, cycle: f64, it: f64) -> f64 {
        match (&self.custom_scale, self.mode) {
            (Some((f, ScaleMode::Cycle)), _) => f(cycle),
            (Some((f, ScaleMode::Iterations)), _) => f(it),
            (None, CyclicMode::Triangular) => 1.0,
            (None, CyclicMode::Triangular2) => 1.0 / 2f64.powf(cycle - 1.0),
            (None, CyclicMode::ExpRange { gamma }) => gamma.powf(it),
        }
    }
}

impl LrScheduler for CyclicLR {
    core_access!();

    fn get_lr(&mut self, opt: &mut dyn Optimizer) -> Vec<f64> {
        let it = self.core.last_epoch as f64;
        let cycle = (1.0 + it / self.total_size).floor();
        let x = 1.0 + it / self.total_size - cycle;
        let factor = if x <= self.step_ratio {
            x / self.step_ratio
        } else {
            (x - 1.0) / (self.step_ratio - 1.0)
        };
        let scale = self.scale(cycle, it);
        let lrs = self
            .core
            .base_lrs
            .iter()
            .zip(&self.max_lrs)
            .map(|(&b, &m)| b + (m - b) * factor * scale)
            .collect();
        if let Some((m, name)) = &self.momentum {
            for (g, &[base, max]) in m.iter().enumerate() {
                opt.set_hyper(g, name, max - (max - base) * factor * scale);
            }
        }
        lrs
    }
}
