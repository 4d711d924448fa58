//! Schedules that multiply the learning rate by a factor: [`LambdaLR`], [`MultiplicativeLR`],
//! [`ConstantLR`] and [`PolynomialLR`].

use std::fmt;
use std::panic::Location;

use super::{scaled, started, LrScheduler, SchedulerCore};
use crate::optim::Optimizer;

/// A function of the epoch giving a learning-rate factor, as `LambdaLR` takes.
pub type LrLambda = Box<dyn Fn(i64) -> f64 + Send + Sync>;

/// One lambda for every group, or one per group: checked against the optimizer's groups.
#[track_caller]
fn per_group(name: &str, lambdas: Vec<LrLambda>, opt: &dyn Optimizer) -> Vec<LrLambda> {
    let n = opt.num_param_groups();
    match lambdas.len() {
        m if m == n => lambdas,
        1 => {
            let shared: std::sync::Arc<dyn Fn(i64) -> f64 + Send + Sync> =
                lambdas.into_iter().next().unwrap().into();
            (0..n)
                .map(|_| {
                    let f = shared.clone();
                    Box::new(move |e| f(e)) as LrLambda
                })
                .collect()
        }
        m => panic!(
            "{name}: expected 1 or {n} lr_lambdas (one per parameter group), got {m}, at {}",
            Location::caller()
        ),
    }
}

/// Sets each group's learning rate to its initial one times a function of the epoch, like
/// `LambdaLR`: `lr = base_lr · lambda(epoch)`.
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::optim::lr_scheduler::{LambdaLR, LrScheduler};
/// use tapegrad::optim::{Optimizer, Sgd};
///
/// let mut opt = Sgd::new(vec![Tensor::zeros(&[2]).requires_grad()], 1.0);
/// // a linear warm-up over 4 epochs
/// let mut sched = LambdaLR::new(&mut opt, |epoch| ((epoch + 1) as f64 / 4.0).min(1.0));
/// let mut lrs = vec![opt.lr(0)];
/// for _ in 0..4 {
///     sched.step(&mut opt);
///     lrs.push(opt.lr(0));
/// }
/// assert_eq!(lrs, [0.25, 0.5, 0.75, 1.0, 1.0]);
/// ```
pub struct LambdaLR {
    core: SchedulerCore,
    lambdas: Vec<LrLambda>,
}

impl fmt::Debug for LambdaLR {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LambdaLR")
            .field("core", &self.core)
            .field("lambdas", &self.lambdas.len())
            .finish()
    }
}

impl LambdaLR {
    /// Starts the schedule on `opt` with one lambda for every group.
    pub fn new(
        opt: &mut dyn Optimizer,
        lambda: impl Fn(i64) -> f64 + Send + Sync + 'static,
    ) -> Self {
        Self::per_group(opt, vec![Box::new(lambda)])
    }

    /// Starts the schedule with one lambda per parameter group (or one for all).
    ///
    /// # Panics
    /// If the number of lambdas is neither 1 nor the number of groups.
    #[track_caller]
    pub fn per_group(opt: &mut dyn Optimizer, lambdas: Vec<LrLambda>) -> Self {
        let lambdas = per_group("LambdaLR", lambdas, opt);
        let core = SchedulerCore::new(opt);
        started(LambdaLR { core, lambdas }, opt)
    }
}

impl LrScheduler for LambdaLR {
    core_access!();

    fn get_lr(&mut self, _opt: &mut dyn Optimizer) -> Vec<f64> {
        self.closed_form_lr().unwrap()
    }

    fn closed_form_lr(&self) -> Option<Vec<f64>> {
        let e = self.core.last_epoch;
        Some(
            self.core
                .base_lrs
                .iter()
                .zip(&self.lambdas)
                .map(|(b, f)| b * f(e))
                .collect(),
        )
    }
}

/// Multiplies each group's learning rate by a function of the epoch at every step, like
/// `MultiplicativeLR`: `lr_epoch = lr_(epoch-1) · lambda(epoch)`.
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::optim::lr_scheduler::{LrScheduler, MultiplicativeLR};
/// use tapegrad::optim::{Optimizer, Sgd};
///
/// let mut opt = Sgd::new(vec![Tensor::zeros(&[2]).requires_grad()], 1.0);
/// let mut sched = MultiplicativeLR::new(&mut opt, |_| 0.5);
/// sched.step(&mut opt);
/// sched.step(&mut opt);
/// assert_eq!(opt.lr(0), 0.25);
/// ```
pub struct MultiplicativeLR {
    core: SchedulerCore,
    lambdas: Vec<LrLambda>,
}

impl fmt::Debug for MultiplicativeLR {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MultiplicativeLR")
            .field("core", &self.core)
            .field("lambdas", &self.lambdas.len())
            .finish()
    }
}

impl MultiplicativeLR {
    /// Starts the schedule on `opt` with one lambda for every group.
    pub fn new(
        opt: &mut dyn Optimizer,
        lambda: impl Fn(i64) -> f64 + Send + Sync + 'static,
    ) -> Self {
        Self::per_group(opt, vec![Box::new(lambda)])
    }

    /// Starts the schedule with one lambda per parameter group (or one for all).
    ///
    /// # Panics
    /// If the number of lambdas is neither 1 nor the number of groups.
    #[track_caller]
    pub fn per_group(opt: &mut dyn Optimizer, lambdas: Vec<LrLambda>) -> Self {
        let lambdas = per_group("MultiplicativeLR", lambdas, opt);
        let core = SchedulerCore::new(opt);
        started(MultiplicativeLR { core, lambdas }, opt)
    }
}

impl LrScheduler for MultiplicativeLR {
    core_access!();

    fn get_lr(&mut self, opt: &mut dyn Optimizer) -> Vec<f64> {
        if self.core.is_initial {
            return opt.lrs();
        }
        let e = self.core.last_epoch;
        opt.lrs()
            .into_iter()
            .zip(&self.lambdas)
            .map(|(lr, f)| lr * f(e))
            .collect()
    }
}

/// Multiplies the learning rate by a constant `factor` until epoch `total_iters`, like
/// `ConstantLR` (PyTorch's defaults: factor 1/3, 5 epochs).
#[derive(Clone, Debug)]
pub struct ConstantLR {
    core: SchedulerCore,
    factor: f64,
    total_iters: i64,
}

impl ConstantLR {
    /// Starts the schedule on `opt`.
    ///
    /// # Panics
    /// If `factor` is not in `[0, 1]`.
    #[track_caller]
    pub fn new(opt: &mut dyn Optimizer, factor: f64, total_iters: usize) -> ConstantLR {
        if !(0.0..=1.0).contains(&factor) {
            panic!(
                "ConstantLR: factor must be in [0, 1], got {factor}, at {}",
                Location::caller()
            );
        }
        let core = SchedulerCore::new(opt);
        let s = ConstantLR {
            core,
            factor,
            total_iters: total_iters as i64,
        };
        started(s, opt)
    }
}

impl LrScheduler for ConstantLR {
    core_access!();

    fn get_lr(&mut self, opt: &mut dyn Optimizer) -> Vec<f64> {
        let e = self.core.last_epoch;
        if e == 0 {
            scaled(opt, self.factor)
        } else if e != self.total_iters {
            opt.lrs()
        } else {
            scaled(opt, 1.0 / self.factor)
        }
    }

    fn closed_form_lr(&self) -> Option<Vec<f64>> {
        let done = if self.core.last_epoch >= self.total_iters {
            1.0
        } else {
            0.0
        };
        let f = self.factor + done * (1.0 - self.factor);
        Some(self.core.base_lrs.iter().map(|b| b * f).collect())
    }
}

/// Decays the learning rate polynomially to 0 over `total_iters` epochs, like `PolynomialLR`:
/// `lr = base_lr · (1 - min(epoch, total_iters) / total_iters)^power`.
#[derive(Clone, Debug)]
pub struct PolynomialLR {
    core: SchedulerCore,
    total_iters: i64,
    power: f64,
}

impl PolynomialLR {
    /// Starts the schedule on `opt` (PyTorch's defaults: 5 epochs, power 1).
    ///
    /// # Panics
    /// If `total_iters` is 0.
    #[track_caller]
    pub fn new(opt: &mut dyn Optimizer, total_iters: usize, power: f64) -> PolynomialLR {
        if total_iters == 0 {
            panic!(
                "PolynomialLR: total_iters must be positive, at {}",
                Location::caller()
            );
        }
        let core = SchedulerCore::new(opt);
        let s = PolynomialLR {
            core,
            total_iters: total_iters as i64,
            power,
        };
        started(s, opt)
    }
}

impl LrScheduler for PolynomialLR {
    core_access!();

    fn get_lr(&mut self, opt: &mut dyn Optimizer) -> Vec<f64> {
        let e = self.core.last_epoch;
        if self.core.is_initial || e > self.total_iters {
            return opt.lrs();
        }
        let (e, t) = (e as f64, self.total_iters as f64);
        let decay = ((1.0 - e / t) / (1.0 - (e - 1.0) / t)).powf(self.power);
        scaled(opt, decay)
    }

    fn closed_form_lr(&self) -> Option<Vec<f64>> {
        let t = self.total_iters as f64;
        let e = self.core.last_epoch.min(self.total_iters) as f64;
        let f = (1.0 - e / t).powf(self.power);
        Some(self.core.base_lrs.iter().map(|b| b * f).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::Sgd;
    use crate::tensor::Tensor;

    fn two_groups() -> Sgd {
        let mut opt = Sgd::new(vec![Tensor::zeros(&[1]).requires_grad()], 0.1);
        opt.add_param_group(vec![Tensor::zeros(&[1]).requires_grad()]);
        opt
    }

    #[test]
    #[should_panic(
        expected = "LambdaLR: expected 1 or 2 lr_lambdas (one per parameter group), got 3"
    )]
    fn lambda_lr_wants_one_lambda_or_one_per_group() {
        let f = || -> LrLambda { Box::new(|_| 1.0) };
        LambdaLR::per_group(&mut two_groups(), vec![f(), f(), f()]);
    }

    #[test]
    fn one_lambda_serves_every_group() {
        let mut opt = two_groups();
        let mut s = LambdaLR::new(&mut opt, |e| 0.5f64.powi(e as i32));
        s.step(&mut opt);
        assert_eq!(opt.lrs(), [0.05, 0.05]);
    }

    #[test]
    #[should_panic(expected = "ConstantLR: factor must be in [0, 1], got 2")]
    fn constant_lr_factor_is_at_most_one() {
        ConstantLR::new(&mut two_groups(), 2.0, 3);
    }

    #[test]
    fn polynomial_lr_reaches_zero_and_stays() {
        // lr = 0.1 · (1 − min(e, 4)/4)²
        let mut opt = two_groups();
        let mut s = PolynomialLR::new(&mut opt, 4, 2.0);
        for _ in 0..6 {
            s.step(&mut opt);
        }
        assert_eq!(opt.lr(0), 0.0);
    }
}
