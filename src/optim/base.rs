//! [`Optim`]: what every optimizer shares — parameter groups, per-parameter state, the step loop
//! and state dicts — around a [`Rule`] that supplies the update of one parameter.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::panic::Location;
use std::sync::Arc;

use super::kernel::{filled, slice_mut, standard_slice_mut, with_fma, write};
use super::{Optimizer, StateDict};
use crate::ops::unary::PAR_THRESHOLD;
use crate::tensor::{Data, Element, Float};
use crate::{Error, Result, Tensor};

/// The most state buffers one parameter can have (RMSprop keeps three).
pub const MAX_BUFFERS: usize = 3;

/// The scalars of one parameter's update, handed to [`Rule::update`].
#[derive(Clone, Copy, Debug)]
pub struct StepInfo {
    /// The group's learning rate.
    pub lr: f64,
    /// The group's weight decay.
    pub weight_decay: f64,
    /// The parameter's step count, including this step (1 on the first step).
    pub step: u64,
    /// Whether the state buffers were created for this step (SGD starts its momentum buffer from
    /// the gradient then).
    pub fresh: bool,
}

/// The update rule and hyper-parameters of one optimizer (besides `lr` and `weight_decay`, which
/// every group has). Implement it to add an optimizer; [`Optim`] does the rest.
pub trait Rule: Clone + fmt::Debug + Send + Sync + 'static {
    /// The optimizer's name, used in messages (`"Adam"`).
    const NAME: &'static str;
    /// The names of the state buffers the optimizer may keep per parameter, in the order
    /// [`update`](Rule::update) receives them (at most [`MAX_BUFFERS`]).
    const BUFFERS: &'static [&'static str];
    /// Whether the state counts steps (saved as `state.{i}.step`); SGD's does not.
    const COUNTS_STEPS: bool;
    /// The names of the hyper-parameters [`get`](Rule::get) and [`set`](Rule::set) know.
    const HYPER: &'static [&'static str];

    /// Whether this configuration uses buffer `k` (SGD keeps a momentum buffer only with
    /// momentum).
    fn uses_buffer(&self, k: usize) -> bool;

    /// The value buffer `k` starts from.
    fn buffer_init(&self, _k: usize) -> f64 {
        0.0
    }

    /// A hyper-parameter by PyTorch name (booleans as 0 or 1), `None` if unknown.
    fn get(&self, name: &str) -> Option<f64>;

    /// Sets a hyper-parameter by name; returns false if the name is unknown.
    fn set(&mut self, name: &str, value: f64) -> bool;

    /// Checks combinations of hyper-parameters that builder methods cannot check one at a time
    /// (SGD's Nesterov momentum needs momentum); runs before each step.
    fn validate(&self) -> std::result::Result<(), String> {
        Ok(())
    }

    /// Updates one parameter in place, element by element: `param` and `grad` are the parameter
    /// and its gradient, `buffers[k]` is buffer `k` when [`uses_buffer(k)`](Rule::uses_buffer).
    fn update<F: Float>(
        &self,
        step: &StepInfo,
        param: &mut [F],
        grad: &[F],
        buffers: [Option<&mut [F]>; MAX_BUFFERS],
    );
}

/// A hyper-parameter value as seen by name: numbers as they are, booleans as 0 or 1.
pub(crate) trait HyperValue {
    fn to_f64(self) -> f64;
    fn from_f64(v: f64) -> Self;
}

impl HyperValue for f64 {
    fn to_f64(self) -> f64 {
        self
    }
    fn from_f64(v: f64) -> f64 {
        v
    }
}

impl HyperValue for bool {
    fn to_f64(self) -> f64 {
        if self {
            1.0
        } else {
            0.0
        }
    }
    fn from_f64(v: f64) -> bool {
        v != 0.0
    }
}

/// Writes a rule's `HYPER`, `get` and `set` from a table of PyTorch names and fields.
macro_rules! hyper_params {
    ($($name:literal => $field:ident),* $(,)?) => {
        const HYPER: &'static [&'static str] = &[$($name),*];

        fn get(&self, name: &str) -> Option<f64> {
            use $crate::optim::base::HyperValue;
            match name {
                $($name => Some(self.$field.to_f64()),)*
                _ => None,
            }
        }

        fn set(&mut self, name: &str, v: f64) -> bool {
            use $crate::optim::base::HyperValue;
            match name {
                $($name => self.$field = HyperValue::from_f64(v),)*
                _ => return false,
            }
            true
        }
    };
}
pub(crate) use hyper_params;

/// One parameter group: parameters with their own learning rate, weight decay and other
/// hyper-parameters, like an entry of PyTorch's `optimizer.param_groups`.
#[derive(Clone, Debug)]
pub struct ParamGroup<R> {
    /// The parameters.
    pub params: Vec<Tensor>,
    /// The learning rate (schedules change it).
    pub lr: f64,
    /// The weight decay (L2 penalty; decoupled for AdamW).
    pub weight_decay: f64,
    /// The learning rate a schedule started from (`group["initial_lr"]` in PyTorch).
    pub initial_lr: Option<f64>,
    /// The optimizer's other hyper-parameters.
    pub rule: R,
}

impl<R: Rule> ParamGroup<R> {
    /// Sets this group's learning rate (builder style, for
    /// [`add_param_group`](Optim::add_param_group)).
    ///
    /// # Panics
    /// If `lr` is negative or NaN.
    #[track_caller]
    pub fn set_lr(&mut self, lr: f64) -> &mut Self {
        check_non_negative::<R>("learning rate", lr, Location::caller());
        self.lr = lr;
        self
    }

    /// Sets this group's weight decay.
    ///
    /// # Panics
    /// If `weight_decay` is negative or NaN.
    #[track_caller]
    pub fn set_weight_decay(&mut self, weight_decay: f64) -> &mut Self {
        check_non_negative::<R>("weight_decay", weight_decay, Location::caller());
        self.weight_decay = weight_decay;
        self
    }
}

/// The state of one parameter.
#[derive(Clone, Debug, Default)]
struct ParamState {
    step: u64,
    buffers: [Option<Data>; MAX_BUFFERS],
}

/// An optimizer: parameter groups and per-parameter state around the update [`Rule`] `R`.
/// [`Sgd`](super::Sgd), [`Adam`](super::Adam), [`AdamW`](super::AdamW),
/// [`RmsProp`](super::RmsProp) and [`Adagrad`](super::Adagrad) are this type with their rules.
#[derive(Clone, Debug)]
pub struct Optim<R: Rule> {
    groups: Vec<ParamGroup<R>>,
    /// What new groups start from (the constructor's and builder methods' values).
    defaults: ParamGroup<R>,
    /// Per-parameter state, by position across groups; `None` until the first step.
    state: Vec<Option<ParamState>>,
}

/// Panics with the optimizer's name unless `v` is a number ≥ 0.
#[track_caller]
pub(crate) fn check_non_negative<R: Rule>(what: &str, v: f64, loc: &Location) {
    if v.is_nan() || v < 0.0 {
        panic!("{}: invalid {what} {v} (must be >= 0), at {loc}", R::NAME);
    }
}

impl<R: Rule> Optim<R> {
    /// An optimizer with one group of `params`; the `new` of each optimizer calls this.
    pub(crate) fn build(
        params: Vec<Tensor>,
        lr: f64,
        weight_decay: f64,
        rule: R,
        loc: &Location,
    ) -> Self {
        check_non_negative::<R>("learning rate", lr, loc);
        let defaults = ParamGroup {
            params: Vec::new(),
            lr,
            weight_decay,
            initial_lr: None,
            rule,
        };
        let mut opt = Optim {
            groups: Vec::new(),
            defaults,
            state: Vec::new(),
        };
        opt.push_group(params, loc);
        opt
    }

    /// Applies a builder change to the defaults and to every group.
    pub(crate) fn map_groups(mut self, f: impl Fn(&mut ParamGroup<R>)) -> Self {
        f(&mut self.defaults);
        self.groups.iter_mut().for_each(f);
        self
    }

    /// A builder change of the rule in the defaults and every group, after checking that `v` is a
    /// number ≥ 0 (`what` names it in the panic message).
    pub(crate) fn checked(self, what: &str, v: f64, loc: &Location, f: impl Fn(&mut R)) -> Self {
        check_non_negative::<R>(what, v, loc);
        self.map_rule(f)
    }

    /// A builder change of the rule in the defaults and every group.
    pub(crate) fn map_rule(self, f: impl Fn(&mut R)) -> Self {
        self.map_groups(|g| f(&mut g.rule))
    }

    /// Maximizes the objective instead of minimizing it (PyTorch's `maximize=True`; default
    /// false): every optimizer here then steps along the gradient instead of against it.
    ///
    /// # Panics
    /// If the rule has no `maximize` hyper-parameter (a custom [`Rule`] may not).
    #[track_caller]
    pub fn maximize(self, maximize: bool) -> Self {
        let loc = Location::caller();
        self.map_groups(|g| {
            if !g.rule.set("maximize", HyperValue::to_f64(maximize)) {
                panic!("{}: no maximize option, at {loc}", R::NAME);
            }
        })
    }

    /// Sets the weight decay of every group (builder style).
    ///
    /// # Panics
    /// If `weight_decay` is negative or NaN.
    #[track_caller]
    pub fn weight_decay(self, weight_decay: f64) -> Self {
        check_non_negative::<R>("weight_decay", weight_decay, Location::caller());
        self.map_groups(|g| g.weight_decay = weight_decay)
    }

    /// Adds a group of parameters that starts from the optimizer's defaults, and returns it to set
    /// its own learning rate or weight decay, like `optimizer.add_param_group({...})`.
    ///
    /// ```
    /// # use tapegrad::prelude::*;
    /// # use tapegrad::optim::{Adam, Optimizer};
    /// let w = Tensor::zeros(&[2, 2]).requires_grad();
    /// let b = Tensor::zeros(&[2]).requires_grad();
    /// let mut opt = Adam::new(vec![w], 1e-3);
    /// opt.add_param_group(vec![b]).set_lr(1e-2);
    /// assert_eq!(opt.lrs(), vec![1e-3, 1e-2]);
    /// ```
    ///
    /// # Panics
    /// If `params` is empty, a parameter does not require grad or is not a leaf, or a parameter is
    /// already in a group.
    #[track_caller]
    pub fn add_param_group(&mut self, params: Vec<Tensor>) -> &mut ParamGroup<R> {
        self.push_group(params, Location::caller());
        self.groups.last_mut().expect("just pushed")
    }

    fn push_group(&mut self, params: Vec<Tensor>, loc: &Location) {
        let g = self.groups.len();
        if params.is_empty() {
            panic!("{}: parameter group {g} is empty, at {loc}", R::NAME);
        }
        let mut seen: HashSet<*const ()> = self
            .groups
            .iter()
            .flat_map(|gr| gr.params.iter().map(|p| Arc::as_ptr(&p.inner) as *const ()))
            .collect();
        for (k, p) in params.iter().enumerate() {
            let what = format!("parameter {k} of group {g} (shape {:?})", p.shape());
            if !p.is_leaf() {
                panic!(
                    "{}: {what} is not a leaf (it was computed by '{}'); optimize the leaf \
                     tensors it was computed from, at {loc}",
                    R::NAME,
                    p.grad_fn().unwrap_or("?")
                );
            }
            if !p.requires_grad_enabled() {
                panic!(
                    "{}: {what} does not require grad, so it would never be updated; call \
                     .requires_grad() on it, at {loc}",
                    R::NAME
                );
            }
            if !seen.insert(Arc::as_ptr(&p.inner) as *const ()) {
                panic!(
                    "{}: {what} appears more than once among the optimizer's parameters, at {loc}",
                    R::NAME
                );
            }
        }
        self.state.extend(params.iter().map(|_| None));
        self.groups.push(ParamGroup {
            params,
            ..self.defaults.clone()
        });
    }

    /// The parameter groups, like `optimizer.param_groups`.
    pub fn param_groups(&self) -> &[ParamGroup<R>] {
        &self.groups
    }

    /// The parameter groups, to change hyper-parameters (values are not checked).
    pub fn param_groups_mut(&mut self) -> &mut [ParamGroup<R>] {
        &mut self.groups
    }

    /// How many steps parameter `i` (numbered across groups) has taken; 0 before its first.
    pub fn step_count(&self, i: usize) -> u64 {
        self.state
            .get(i)
            .and_then(|s| s.as_ref())
            .map_or(0, |s| s.step)
    }

    #[track_caller]
    fn group_or_panic(&self, group: usize) -> &ParamGroup<R> {
        match self.groups.get(group) {
            Some(g) => g,
            None => panic!(
                "{}: no parameter group {group} (there are {}), at {}",
                R::NAME,
                self.groups.len(),
                Location::caller()
            ),
        }
    }
}

/// Updates one parameter from its gradient and state.
fn update_param<R: Rule>(
    rule: &R,
    group: &ParamGroup<R>,
    p: &Tensor,
    g: &Tensor,
    st: &mut ParamState,
) {
    st.step += 1;
    let mut fresh = false;
    for (k, slot) in st.buffers.iter_mut().enumerate().take(R::BUFFERS.len()) {
        if rule.uses_buffer(k) && slot.is_none() {
            *slot = Some(filled(p.shape(), p.dtype(), rule.buffer_init(k)));
            fresh = true;
        }
    }
    let info = StepInfo {
        lr: group.lr,
        weight_decay: group.weight_decay,
        step: st.step,
        fresh,
    };
    // take a handle on the gradient before locking the parameter (they may be one tensor)
    let gdata = g.data();
    let mut pdata = write(p);
    crate::with_float!(&mut *pdata, R::NAME, |pa: F| {
        let Some(ga) = F::unwrap(&gdata) else {
            unreachable!("set_grad keeps gradients in their parameter's dtype")
        };
        let ga = ga.as_standard_layout();
        let grad = ga.as_slice().expect("standard layout");
        let param = standard_slice_mut(pa);
        let mut buffers: [Option<&mut [F]>; MAX_BUFFERS] = Default::default();
        for (k, (slot, b)) in buffers.iter_mut().zip(st.buffers.iter_mut()).enumerate() {
            if rule.uses_buffer(k) {
                *slot = b.as_mut().map(slice_mut::<F>);
            }
        }
        if crate::parallel::worth_splitting(param.len(), 2 * PAR_THRESHOLD) {
            par_update(rule, &info, param, grad, buffers);
        } else {
            with_fma(|| rule.update(&info, param, grad, buffers));
        }
    });
}

/// Runs `rule.update` over blocks of [`PAR_THRESHOLD`] elements of the slices, spread over
/// tapegrad's threads (every rule is elementwise, so the blocks are independent).
fn par_update<R: Rule, F: Float>(
    rule: &R,
    info: &StepInfo,
    param: &mut [F],
    grad: &[F],
    buffers: [Option<&mut [F]>; MAX_BUFFERS],
) {
    let mut blocks: Vec<_> = param
        .chunks_mut(PAR_THRESHOLD)
        .zip(grad.chunks(PAR_THRESHOLD))
        .map(|(p, g)| (p, g, <[Option<&mut [F]>; MAX_BUFFERS]>::default()))
        .collect();
    for (k, b) in buffers.into_iter().enumerate() {
        for (block, part) in blocks
            .iter_mut()
            .zip(b.into_iter().flat_map(|b| b.chunks_mut(PAR_THRESHOLD)))
        {
            block.2[k] = Some(part);
        }
    }
    crate::parallel::for_each_item(blocks, |(p, g, b)| with_fma(|| rule.update(info, p, g, b)));
}

impl<R: Rule> Optimizer for Optim<R> {
    /// # Panics
    /// If a group's hyper-parameters do not fit together (see [`Rule::validate`]).
    #[track_caller]
    fn step(&mut self) {
        let loc = Location::caller();
        for (g, group) in self.groups.iter().enumerate() {
            if let Err(msg) = group.rule.validate() {
                panic!("{}: {msg} (parameter group {g}), at {loc}", R::NAME);
            }
        }
        let mut i = 0;
        for group in &self.groups {
            for p in &group.params {
                if let Some(g) = p.grad() {
                    let st = self.state[i].get_or_insert_with(ParamState::default);
                    update_param(&group.rule, group, p, &g, st);
                }
                i += 1;
            }
        }
    }

    fn num_param_groups(&self) -> usize {
        self.groups.len()
    }

    #[track_caller]
    fn group_params(&self, group: usize) -> &[Tensor] {
        &self.group_or_panic(group).params
    }

    #[track_caller]
    fn hyper(&self, group: usize, name: &str) -> Option<f64> {
        let g = self.group_or_panic(group);
        match name {
            "lr" => Some(g.lr),
            "weight_decay" => Some(g.weight_decay),
            "initial_lr" => g.initial_lr,
            _ => g.rule.get(name),
        }
    }

    #[track_caller]
    fn set_hyper(&mut self, group: usize, name: &str, value: f64) {
        let loc = Location::caller();
        self.group_or_panic(group);
        let g = &mut self.groups[group];
        match name {
            "lr" => g.lr = value,
            "weight_decay" => g.weight_decay = value,
            "initial_lr" => g.initial_lr = Some(value),
            _ => {
                if !g.rule.set(name, value) {
                    panic!(
                        "set_hyper: {} has no hyper-parameter '{name}' (it has lr, weight_decay, \
                         initial_lr, {}), at {loc}",
                        R::NAME,
                        R::HYPER.join(", ")
                    );
                }
            }
        }
    }

    fn state_dict(&self) -> StateDict {
        let mut sd = StateDict::default();
        let mut i = 0;
        for (g, group) in self.groups.iter().enumerate() {
            let key = |name: &str| format!("param_groups.{g}.{name}");
            sd.scalars.insert(key("lr"), group.lr);
            sd.scalars.insert(key("weight_decay"), group.weight_decay);
            if let Some(v) = group.initial_lr {
                sd.scalars.insert(key("initial_lr"), v);
            }
            for name in R::HYPER {
                let v = group.rule.get(name).expect("HYPER names are known");
                sd.scalars.insert(key(name), v);
            }
            for k in 0..group.params.len() {
                sd.scalars
                    .insert(key(&format!("params.{k}")), (i + k) as f64);
            }
            i += group.params.len();
        }
        for (i, st) in self.state.iter().enumerate() {
            let Some(st) = st else { continue };
            if R::COUNTS_STEPS {
                sd.scalars.insert(format!("state.{i}.step"), st.step as f64);
            }
            for (name, b) in R::BUFFERS.iter().zip(&st.buffers) {
                if let Some(b) = b {
                    let t = Tensor::from_data(b.clone());
                    sd.tensors.insert(format!("state.{i}.{name}"), t);
                }
            }
        }
        sd
    }

    fn try_load_state_dict(&mut self, sd: &StateDict) -> Result<()> {
        let format = |msg: String| Error::Format(format!("{}: {msg}", R::NAME));
        let mut groups = self.groups.clone();
        // saved parameter id -> position across groups
        let mut position: BTreeMap<usize, usize> = BTreeMap::new();
        let mut known: HashSet<String> = HashSet::new();
        let mut i = 0;
        for (g, group) in groups.iter_mut().enumerate() {
            let key = |name: &str| format!("param_groups.{g}.{name}");
            let Some(&lr) = sd.scalars.get(&key("lr")) else {
                return Err(format(format!(
                    "the state dict has no parameter group {g} (the optimizer has {})",
                    self.groups.len()
                )));
            };
            let mut k = 0;
            while let Some(&id) = sd.scalars.get(&key(&format!("params.{k}"))) {
                known.insert(key(&format!("params.{k}")));
                if k < group.params.len() {
                    position.insert(id as usize, i + k);
                }
                k += 1;
            }
            if k != group.params.len() {
                return Err(format(format!(
                    "parameter group {g} has {k} parameters in the state dict but {} in the \
                     optimizer",
                    group.params.len()
                )));
            }
            i += k;
            group.lr = lr;
            known.insert(key("lr"));
            if let Some(&v) = sd.scalars.get(&key("weight_decay")) {
                group.weight_decay = v;
                known.insert(key("weight_decay"));
            }
            if let Some(&v) = sd.scalars.get(&key("initial_lr")) {
                group.initial_lr = Some(v);
                known.insert(key("initial_lr"));
            }
            for name in R::HYPER {
                if let Some(&v) = sd.scalars.get(&key(name)) {
                    group.rule.set(name, v);
                    known.insert(key(name));
                }
            }
        }
        if sd
            .scalars
            .contains_key(&format!("param_groups.{}.lr", groups.len()))
        {
            return Err(format(format!(
                "the state dict has more parameter groups than the optimizer ({})",
                groups.len()
            )));
        }
        let params: Vec<&Tensor> = groups.iter().flat_map(|g| &g.params).collect();
        let mut state: Vec<Option<ParamState>> = vec![None; params.len()];
        for (&id, &pos) in &position {
            let p = params[pos];
            let step_key = format!("state.{id}.step");
            let mut st = ParamState::default();
            let mut any = false;
            if let Some(&s) = sd.scalars.get(&step_key) {
                st.step = s as u64;
                any = true;
                known.insert(step_key);
            }
            for (k, name) in R::BUFFERS.iter().enumerate() {
                let key = format!("state.{id}.{name}");
                let Some(t) = sd.tensors.get(&key) else {
                    continue;
                };
                if t.shape() != p.shape() || !t.dtype().is_float() {
                    return Err(Error::Shape(format!(
                        "{}: '{key}' has shape {:?} ({}) but parameter {pos} has shape {:?}",
                        R::NAME,
                        t.shape(),
                        t.dtype(),
                        p.shape()
                    )));
                }
                st.buffers[k] = Some(t.data().cast(p.dtype()));
                any = true;
                known.insert(key);
            }
            if any {
                state[pos] = Some(st);
            }
        }
        let unknown = sd
            .scalars
            .keys()
            .chain(sd.tensors.keys())
            .find(|k| !known.contains(*k));
        if let Some(k) = unknown {
            return Err(format(format!("unexpected key '{k}' in the state dict")));
        }
        self.groups = groups;
        self.state = state;
        Ok(())
    }
}

/// Makes the element `-g` when maximizing (PyTorch's `maximize=True` negates the gradient).
#[inline(always)]
pub(crate) fn signed<F: Float>(g: F, maximize: bool) -> F {
    if maximize {
        -g
    } else {
        g
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::optim::Sgd;

    /// Sets `p`'s gradient to `g` (same dtype) and takes one step.
    pub(crate) fn step_with(opt: &mut dyn Optimizer, p: &Tensor, g: &[f64]) {
        let grad = Tensor::from_data(Data::F64(
            ndarray::ArrayD::from_shape_vec(p.shape(), g.to_vec())
                .unwrap()
                .into_shared(),
        ))
        .to_dtype(p.dtype());
        p.set_grad(Some(grad));
        opt.step();
    }

    /// An f64 parameter that requires grad.
    pub(crate) fn param(v: &[f64]) -> Tensor {
        Tensor::from_vec_f64(v.to_vec(), &[v.len()]).requires_grad()
    }

    /// Asserts two f64 sequences agree to 1e-12.
    pub(crate) fn assert_close(a: &[f64], b: &[f64]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= 1e-12 * y.abs().max(1.0), "{a:?} != {b:?}");
        }
    }

    #[test]
    fn params_without_grad_are_skipped_and_get_no_state() {
        let a = param(&[1.0]);
        let b = param(&[2.0]);
        let mut opt = Sgd::new(vec![a.clone(), b.clone()], 0.5);
        a.set_grad(Some(Tensor::from_vec_f64(vec![1.0], &[1])));
        opt.step();
        assert_eq!(a.to_vec::<f64>(), vec![0.5]);
        assert_eq!(b.to_vec::<f64>(), vec![2.0]);
        assert_eq!(opt.step_count(0), 1);
        assert_eq!(opt.step_count(1), 0);
    }

    #[test]
    fn zero_grad_sets_every_gradient_to_none() {
        let a = param(&[1.0]);
        let mut opt = Sgd::new(vec![a.clone()], 0.1);
        (&a * &a).sum().backward();
        assert!(a.grad().is_some());
        opt.zero_grad();
        assert!(a.grad().is_none());
    }

    #[test]
    fn step_records_nothing_on_the_tape_and_keeps_params_leaves() {
        let a = param(&[1.0, 2.0]);
        let mut opt = Sgd::new(vec![a.clone()], 0.1).momentum(0.9);
        let before = crate::autograd::tape::len();
        step_with(&mut opt, &a, &[1.0, 1.0]);
        assert_eq!(crate::autograd::tape::len(), before);
        assert!(a.is_leaf() && a.requires_grad_enabled());
    }

    #[test]
    fn step_updates_every_handle_and_leaves_detached_copies_alone() {
        // the update is in place: clones of the handle see it; a detached tensor shares the
        // storage only until the write (copy-on-write), so it keeps the old values
        let a = param(&[1.0, 2.0]);
        let alias = a.clone();
        let snapshot = a.detach();
        let mut opt = Sgd::new(vec![a.clone()], 1.0);
        step_with(&mut opt, &a, &[1.0, 1.0]);
        assert_eq!(alias.to_vec::<f64>(), vec![0.0, 1.0]);
        assert_eq!(snapshot.to_vec::<f64>(), vec![1.0, 2.0]);
    }

    #[test]
    fn non_contiguous_params_and_broadcast_grads_update_elementwise() {
        // p = [[1, 2], [3, 4]]ᵀ stored transposed; g broadcast from one value (stride 0)
        let p = Tensor::from_vec_f64(vec![1.0, 2.0, 3.0, 4.0], &[2, 2])
            .t()
            .detach()
            .requires_grad();
        assert!(!p.is_contiguous());
        let g = Tensor::from_vec_f64(vec![1.0], &[1, 1])
            .expand([2, 2])
            .detach();
        p.set_grad(Some(g));
        let mut opt = Sgd::new(vec![p.clone()], 0.5);
        opt.step();
        assert_eq!(p.to_vec::<f64>(), vec![0.5, 2.5, 1.5, 3.5]);
    }

    #[test]
    fn large_params_are_updated_in_parallel_pieces_with_the_same_result() {
        // the update is elementwise: a piece of a large parameter (split across threads) ends
        // where the same values end in a small one
        let n = 4 * PAR_THRESHOLD + 3;
        let vals: Vec<f32> = (0..n).map(|i| (i % 97) as f32 / 13.0 - 3.0).collect();
        let grads: Vec<f32> = (0..n).map(|i| (i % 89) as f32 / 7.0 - 6.0).collect();
        let tail = n - 5..n;
        let big = Tensor::from_vec(vals.clone(), &[n]).requires_grad();
        let small = Tensor::from_vec(vals[tail.clone()].to_vec(), &[5]).requires_grad();
        let mut a = crate::optim::Adam::new(vec![big.clone()], 0.1).amsgrad(true);
        let mut b = crate::optim::Adam::new(vec![small.clone()], 0.1).amsgrad(true);
        for _ in 0..3 {
            big.set_grad(Some(Tensor::from_vec(grads.clone(), &[n])));
            small.set_grad(Some(Tensor::from_vec(grads[tail.clone()].to_vec(), &[5])));
            a.step();
            b.step();
        }
        assert_eq!(big.to_vec::<f32>()[tail].to_vec(), small.to_vec::<f32>());
    }

    #[test]
    fn training_steps_write_into_the_same_parameter_buffer() {
        // after backward the tape no longer holds the parameter's storage, so the in-place
        // update does not copy it (no allocation per step)
        let w = param(&[1.0, -2.0, 3.0]);
        let mut opt = crate::optim::Adam::new(vec![w.clone()], 0.1);
        let ptr = || w.to_ndarray::<f64>().as_ptr() as usize;
        let before = ptr();
        for _ in 0..3 {
            opt.zero_grad();
            let loss = (&w * &w).sum();
            loss.backward();
            opt.step();
        }
        assert_eq!(ptr(), before);
    }

    #[test]
    fn f32_and_f64_params_mix_in_one_optimizer() {
        let a = Tensor::from_vec(vec![1.0], &[1]).requires_grad();
        let b = param(&[1.0]);
        let mut opt = crate::optim::Adam::new(vec![a.clone(), b.clone()], 0.1);
        a.set_grad(Some(Tensor::from_vec(vec![1.0], &[1])));
        b.set_grad(Some(Tensor::from_vec_f64(vec![1.0], &[1])));
        opt.step();
        // Adam's first step moves each element by lr·g/(|g| + eps) ≈ lr
        assert!((a.item() - 0.9).abs() < 1e-6);
        assert!((b.item() - 0.9).abs() < 1e-6);
    }

    #[test]
    fn hyper_parameters_are_reached_by_pytorch_name() {
        let mut opt = Sgd::new(vec![param(&[1.0])], 0.1)
            .momentum(0.9)
            .nesterov(true);
        assert_eq!(opt.hyper(0, "momentum"), Some(0.9));
        assert_eq!(opt.hyper(0, "nesterov"), Some(1.0));
        assert_eq!(opt.hyper(0, "betas.0"), None);
        assert_eq!(opt.hyper(0, "initial_lr"), None);
        opt.set_lr(0, 0.05);
        opt.set_hyper(0, "initial_lr", 0.1);
        assert_eq!(opt.lr(0), 0.05);
        assert_eq!(opt.param_groups()[0].initial_lr, Some(0.1));
    }

    #[test]
    #[should_panic(
        expected = "set_hyper: SGD has no hyper-parameter 'betas.0' (it has lr, weight_decay, initial_lr, momentum"
    )]
    fn set_hyper_panics_on_an_unknown_name() {
        let mut opt = Sgd::new(vec![param(&[1.0])], 0.1);
        opt.set_hyper(0, "betas.0", 0.9);
    }

    #[test]
    #[should_panic(expected = "SGD: no parameter group 1 (there are 1), at src/optim/base.rs")]
    fn lr_of_a_missing_group_panics() {
        let opt = Sgd::new(vec![param(&[1.0])], 0.1);
        opt.lr(1);
    }

    #[test]
    #[should_panic(
        expected = "SGD: invalid learning rate -0.1 (must be >= 0), at src/optim/base.rs"
    )]
    fn negative_lr_panics_at_the_caller() {
        Sgd::new(vec![param(&[1.0])], -0.1);
    }

    #[test]
    #[should_panic(
        expected = "SGD: parameter 1 of group 0 (shape [2]) does not require grad, so it would never be updated; call .requires_grad() on it, at src/optim/base.rs"
    )]
    fn params_that_do_not_require_grad_panic() {
        Sgd::new(vec![param(&[1.0]), Tensor::zeros(&[2])], 0.1);
    }

    #[test]
    #[should_panic(expected = "is not a leaf (it was computed by 'mul')")]
    fn non_leaf_params_panic() {
        let a = param(&[1.0]);
        Sgd::new(vec![&a * &a], 0.1);
    }

    #[test]
    #[should_panic(expected = "Adam: parameter 0 of group 1 (shape [1]) appears more than once")]
    fn a_param_in_two_groups_panics() {
        let a = param(&[1.0]);
        let mut opt = crate::optim::Adam::new(vec![a.clone()], 0.1);
        opt.add_param_group(vec![a]);
    }

    #[test]
    #[should_panic(expected = "AdamW: parameter group 0 is empty")]
    fn an_empty_group_panics() {
        crate::optim::AdamW::new(vec![], 0.1);
    }

    #[test]
    #[should_panic(expected = "RMSprop: invalid weight_decay -1 (must be >= 0)")]
    fn a_group_with_negative_weight_decay_panics() {
        let mut opt = crate::optim::RmsProp::new(vec![param(&[1.0])], 0.1);
        opt.add_param_group(vec![param(&[1.0])])
            .set_weight_decay(-1.0);
    }
}
