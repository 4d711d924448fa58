//! The [`Module`] trait: what every layer and model has — named parameters and buffers, train /
//! eval mode, `zero_grad`, `state_dict` — and [`Forward`], the call that computes outputs.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::tensor::Tensor;
use crate::{Error, Result};

/// A module's train / eval flag, shared by clones of the module (like PyTorch's `self.training`).
#[derive(Clone, Debug)]
pub struct TrainFlag(Arc<AtomicBool>);

impl Default for TrainFlag {
    /// Modules start in training mode, as in PyTorch.
    fn default() -> Self {
        TrainFlag(Arc::new(AtomicBool::new(true)))
    }
}

impl TrainFlag {
    /// Whether the module is in training mode.
    pub fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Sets training mode.
    pub fn set(&self, training: bool) {
        self.0.store(training, Ordering::Relaxed)
    }
}

/// What a [`Visitor`] is shown.
pub enum Item<'a> {
    /// A trainable parameter.
    Param(&'a Tensor),
    /// A buffer: state saved in the `state_dict` but not trained (BatchNorm's running mean).
    Buffer(&'a Tensor),
    /// A train / eval flag.
    Flag(&'a TrainFlag),
}

/// Walks a module tree, building PyTorch-style dotted names (`layers.0.weight`).
pub struct Visitor<'a> {
    prefix: String,
    f: &'a mut dyn FnMut(&str, Item),
}

impl<'a> Visitor<'a> {
    /// A visitor calling `f` with the full dotted name of every item.
    pub fn new(f: &'a mut dyn FnMut(&str, Item)) -> Visitor<'a> {
        Visitor {
            prefix: String::new(),
            f,
        }
    }

    fn full(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    /// Shows a parameter.
    pub fn param(&mut self, name: &str, t: &Tensor) {
        let n = self.full(name);
        (self.f)(&n, Item::Param(t));
    }

    /// Shows a buffer.
    pub fn buffer(&mut self, name: &str, t: &Tensor) {
        let n = self.full(name);
        (self.f)(&n, Item::Buffer(t));
    }

    /// Shows a train / eval flag.
    pub fn flag(&mut self, flag: &TrainFlag) {
        let n = self.prefix.clone();
        (self.f)(&n, Item::Flag(flag));
    }

    /// Visits a child module under `name`.
    pub fn module(&mut self, name: &str, m: &(impl Module + ?Sized)) {
        let saved = std::mem::take(&mut self.prefix);
        self.prefix = if saved.is_empty() {
            name.to_owned()
        } else {
            format!("{saved}.{name}")
        };
        m.visit(self);
        self.prefix = saved;
    }
}

/// A piece of a model: it owns parameters, buffers and child modules, like `torch.nn.Module`.
///
/// Implement [`visit`](Module::visit) — or `#[derive(Module)]` — and every other method follows.
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::nn::{self, Module, Forward};
///
/// #[derive(Module)]
/// struct Mlp {
///     fc1: nn::Linear,
///     fc2: nn::Linear,
/// }
///
/// impl Forward for Mlp {
///     fn forward(&self, x: &Tensor) -> Tensor {
///         self.fc2.forward(&self.fc1.forward(x).tanh())
///     }
/// }
///
/// let net = Mlp { fc1: nn::Linear::new(4, 8), fc2: nn::Linear::new(8, 2) };
/// let names: Vec<String> = net.named_parameters().into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]);
/// assert_eq!(net.forward(&Tensor::randn(&[3, 4])).shape(), &[3, 2]);
/// ```
pub trait Module {
    /// Shows every parameter, buffer, flag and child module to `v`.
    fn visit(&self, v: &mut Visitor);

    /// Parameters with their dotted names, in declaration order.
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        self.visit(&mut Visitor::new(&mut |n, item| {
            if let Item::Param(t) = item {
                out.push((n.to_owned(), t.clone()));
            }
        }));
        out
    }

    /// Parameters, in declaration order (handles on the module's own tensors).
    fn parameters(&self) -> Vec<Tensor> {
        self.named_parameters()
            .into_iter()
            .map(|(_, t)| t)
            .collect()
    }

    /// Buffers with their dotted names.
    fn named_buffers(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        self.visit(&mut Visitor::new(&mut |n, item| {
            if let Item::Buffer(t) = item {
                out.push((n.to_owned(), t.clone()));
            }
        }));
        out
    }

    /// Parameters and buffers by name, like `model.state_dict()`.
    fn state_dict(&self) -> BTreeMap<String, Tensor> {
        self.state_dict_handles()
            .into_iter()
            .map(|(n, t)| (n, t.detach()))
            .collect()
    }

    /// Copies the values of `state` into this module's parameters and buffers, like
    /// `model.load_state_dict(state, strict)`.
    ///
    /// Keys are the dotted names of [`state_dict`](Module::state_dict) (PyTorch's names), so a
    /// state dict saved from the equivalent PyTorch model loads here. Values are copied into the
    /// existing tensors in place (an optimizer holding them sees the new values) and converted
    /// to each tensor's dtype (an f16 checkpoint loads into f32 parameters). Nothing is changed
    /// unless the whole load succeeds.
    ///
    /// With `strict`, keys of the module missing from `state` and keys of `state` the module
    /// does not have are an error; without it they are listed in the returned [`LoadReport`] and
    /// the matching keys are loaded.
    ///
    /// ```
    /// use tapegrad::nn::{Linear, Module};
    ///
    /// # fn main() -> tapegrad::Result<()> {
    /// let a = Linear::new(3, 2);
    /// let b = Linear::new(3, 2);
    /// let mut sd = a.state_dict();
    /// sd.remove("bias");
    /// assert!(b.load_state_dict(&sd, true).is_err()); // strict: "bias" is missing
    /// let report = b.load_state_dict(&sd, false)?;
    /// assert_eq!(report.missing_keys, ["bias"]);
    /// assert_eq!(b.weight.to_vec::<f32>(), a.weight.to_vec::<f32>());
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`Error::Shape`] if a value's shape differs from its tensor's, naming the key and both
    /// shapes (in either mode, as in PyTorch); with `strict`, [`Error::Format`] listing the
    /// missing and unexpected keys.
    fn load_state_dict(
        &self,
        state: &BTreeMap<String, Tensor>,
        strict: bool,
    ) -> Result<LoadReport> {
        let own = self.state_dict_handles();
        let mut report = LoadReport::default();
        let mut mismatched = Vec::new();
        for (name, t) in &own {
            match state.get(name) {
                None => report.missing_keys.push(name.clone()),
                Some(v) if v.shape() != t.shape() => mismatched.push(format!(
                    "size mismatch for {name}: copying a param with shape {:?} from checkpoint, \
                     the shape in current model is {:?}",
                    v.shape(),
                    t.shape()
                )),
                Some(_) => {}
            }
        }
        let names: BTreeSet<&String> = own.iter().map(|(n, _)| n).collect();
        report.unexpected_keys = state
            .keys()
            .filter(|k| !names.contains(k))
            .cloned()
            .collect();
        if !mismatched.is_empty() {
            return Err(Error::Shape(format!(
                "load_state_dict: {}",
                mismatched.join("; ")
            )));
        }
        if strict && !report.is_empty() {
            return Err(Error::Format(format!("load_state_dict: {report}")));
        }
        let _no_grad = crate::autograd::no_grad();
        for (name, t) in &own {
            if let Some(v) = state.get(name) {
                t.copy_(v);
            }
        }
        Ok(report)
    }

    /// Parameters and buffers by name, as handles on the module's own tensors (what
    /// [`load_state_dict`](Module::load_state_dict) writes into). A tensor reached under two
    /// names (tied weights) is listed under both.
    fn state_dict_handles(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        self.visit(&mut Visitor::new(&mut |n, item| match item {
            Item::Param(t) | Item::Buffer(t) => out.push((n.to_owned(), t.clone())),
            Item::Flag(_) => {}
        }));
        out
    }

    /// Writes the [`state_dict`](Module::state_dict) to a safetensors file (see
    /// [`io::safetensors::save`](crate::io::safetensors::save)), like
    /// `safetensors.torch.save_file(model.state_dict(), path)`.
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be written; any previous file at `path` is then intact.
    fn save_safetensors(&self, path: impl AsRef<Path>) -> Result<()>
    where
        Self: Sized,
    {
        crate::io::safetensors::save(&self.state_dict(), path)
    }

    /// Loads a safetensors file into this module (see
    /// [`load_state_dict`](Module::load_state_dict)).
    ///
    /// # Errors
    /// As [`io::safetensors::load`](crate::io::safetensors::load) and
    /// [`load_state_dict`](Module::load_state_dict).
    fn load_safetensors(&self, path: impl AsRef<Path>, strict: bool) -> Result<LoadReport>
    where
        Self: Sized,
    {
        self.load_state_dict(&crate::io::safetensors::load(path)?, strict)
    }

    /// The total number of parameter elements.
    fn num_parameters(&self) -> usize {
        self.parameters().iter().map(Tensor::numel).sum()
    }

    /// Training mode for this module and all children, like `model.train()`.
    fn train(&self) {
        self.set_training(true)
    }

    /// Sets training (`true`) or evaluation mode, like `model.train(mode)`.
    fn set_training(&self, mode: bool) {
        self.visit(&mut Visitor::new(&mut |_, item| {
            if let Item::Flag(f) = item {
                f.set(mode)
            }
        }));
    }

    /// Evaluation mode, like `model.eval()`.
    fn eval(&self) {
        self.set_training(false)
    }

    /// Whether any part of the module is in training mode (true for modules without a flag).
    fn is_training(&self) -> bool {
        let mut any = None;
        self.visit(&mut Visitor::new(&mut |_, item| {
            if let Item::Flag(f) = item {
                *any.get_or_insert(false) |= f.get();
            }
        }));
        any.unwrap_or(true)
    }

    /// Clears the gradients of all parameters, like `model.zero_grad()`.
    fn zero_grad(&self) {
        for p in self.parameters() {
            p.zero_grad();
        }
    }
}

/// What [`Module::load_state_dict`] did not match, like the `_IncompatibleKeys` PyTorch returns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Keys of the module that the state dict lacks (left unchanged).
    pub missing_keys: Vec<String>,
    /// Keys of the state dict that the module does not have (ignored).
    pub unexpected_keys: Vec<String>,
}

impl LoadReport {
    /// Whether every key matched.
    pub fn is_empty(&self) -> bool {
        self.missing_keys.is_empty() && self.unexpected_keys.is_empty()
    }
}

impl fmt::Display for LoadReport {
    /// PyTorch's wording: `Missing key(s): "a", "b". Unexpected key(s): "c".`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |keys: &[String]| {
            keys.iter()
                .map(|k| format!("\"{k}\""))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut parts = Vec::new();
        if !self.missing_keys.is_empty() {
            parts.push(format!("Missing key(s): {}.", list(&self.missing_keys)));
        }
        if !self.unexpected_keys.is_empty() {
            parts.push(format!(
                "Unexpected key(s): {}.",
                list(&self.unexpected_keys)
            ));
        }
        if parts.is_empty() {
            parts.push("all keys matched".to_string());
        }
        f.write_str(&parts.join(" "))
    }
}

/// Computing a module's output from one input, like `module(x)` in PyTorch.
pub trait Forward {
    /// The output for input `x`.
    fn forward(&self, x: &Tensor) -> Tensor;
}

/// A module with a one-tensor forward: what [`Sequential`](super::Sequential) holds.
pub trait Layer: Module + Forward + Send + Sync {}
impl<T: Module + Forward + Send + Sync> Layer for T {}

impl<M: Module> Module for Vec<M> {
    /// Items of a `Vec` of modules are named by index (`blocks.0.weight`), like `nn.ModuleList`.
    fn visit(&self, v: &mut Visitor) {
        for (i, m) in self.iter().enumerate() {
            v.module(&i.to_string(), m);
        }
    }
}

impl<M: Module> Module for Option<M> {
    fn visit(&self, v: &mut Visitor) {
        if let Some(m) = self {
            m.visit(v);
        }
    }
}

impl<M: Module + ?Sized> Module for Box<M> {
    fn visit(&self, v: &mut Visitor) {
        (**self).visit(v);
    }
}
