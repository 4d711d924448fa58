//! The op schema: one table of every op the tape records — its name as recorded, its inputs by
//! name and its typed attributes — like PyTorch's `derivatives.yaml` or candle's `Op` enum.
//!
//! Everything that reads the tape reads this table: the graph picture ([`viz`](crate::viz)),
//! TensorBoard's graph and the ONNX exporter. None keeps its own list of op names.
//!
//! # The rules an entry follows
//!
//! - Its attributes are exactly the declared ones, in the declared order and of the declared
//!   [`AttrKind`]. Enumerations are `Str` (`reduction = "mean"`, `approximate = "tanh"`); a
//!   missing optional index is `-1` (`padding_idx`).
//! - Every tensor operand is an input, differentiable or not (targets, masks, indices, running
//!   statistics), so that the op can be re-run from the entry alone. Inputs that are not produced
//!   by a recorded op carry their tensor ([`Input::Const`]).
//! - A scalar operand of arithmetic or of a comparison (`&x * 2.0`, `1.0 - &x`,
//!   `x.gt_scalar(0.5)`, `x.masked_fill(m, v)`) is a **0-d constant input** holding the scalar,
//!   in the dtype of the other operand; scalar *parameters* of an op (`exponent`, `eps`,
//!   `negative_slope`) are attributes.
//! - An optional input, written `name?` below, is recorded only when given, and the op then has
//!   a `has_<name>` `Bool` attribute saying whether it was: [`OpSchema::bind`] names the inputs
//!   of an entry from these flags. A variadic input, written `name*`, takes one or more tensors
//!   (`cat`).
//! - Region attributes (`region` of the slicing ops) list `start, end, step` for each dim in
//!   turn, normalized (`0 <= start <= end <= size`, `step >= 1`).
//! - Ops whose name ends in `_backward` (and `max_pool2d_gather`, `conv2d_backward_weight`) appear
//!   only when a backward pass is itself recorded (`create_graph`).
//!
//! In debug builds (and so in every `cargo test`) each entry is checked against its declaration
//! as it is recorded, and a mismatch panics naming the op and the call site.
//!
//! # Adding an op
//!
//! 1. Add one line to [`OPS`]: the name, the inputs, the attributes with their kinds.
//! 2. Record it with the same name, inputs and attributes in the op's body:
//!
//! ```ignore
//! let inputs = [x, index];
//! let op = Op::new("gather", &inputs).attr("dim", Attr::Int(dim as i64));
//! ```

use super::tape::{Attr, Entry, Input};

/// The kind of an attribute, as declared in the schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttrKind {
    /// [`Attr::Int`].
    Int,
    /// [`Attr::Ints`].
    Ints,
    /// [`Attr::Float`].
    Float,
    /// [`Attr::Floats`].
    Floats,
    /// [`Attr::Bool`].
    Bool,
    /// [`Attr::Str`].
    Str,
    /// [`Attr::DType`].
    DType,
}

impl AttrKind {
    /// The kind of `a`.
    pub fn of(a: &Attr) -> AttrKind {
        match a {
            Attr::Int(_) => AttrKind::Int,
            Attr::Ints(_) => AttrKind::Ints,
            Attr::Float(_) => AttrKind::Float,
            Attr::Floats(_) => AttrKind::Floats,
            Attr::Bool(_) => AttrKind::Bool,
            Attr::Str(_) => AttrKind::Str,
            Attr::DType(_) => AttrKind::DType,
        }
    }
}

/// The declaration of one recorded op.
#[derive(Clone, Copy, Debug)]
pub struct OpSchema {
    /// The name the tape records (`"matmul"`, `"conv2d"`, …).
    pub name: &'static str,
    /// The inputs in recorded order; `name?` is optional (with a `has_<name>` attribute), `name*`
    /// variadic.
    pub inputs: &'static [&'static str],
    /// The attributes in recorded order, with their kinds.
    pub attrs: &'static [(&'static str, AttrKind)],
}

use AttrKind::{Bool, DType, Float, Floats, Int, Ints, Str};

const fn op(
    name: &'static str,
    inputs: &'static [&'static str],
    attrs: &'static [(&'static str, AttrKind)],
) -> OpSchema {
    OpSchema {
        name,
        inputs,
        attrs,
    }
}

const UNARY: &[&str] = &["input"];
const BINARY: &[&str] = &["input", "other"];
const REDUCE: &[(&str, AttrKind)] = &[("dims", Ints), ("keepdim", Bool)];
const CONV: &[(&str, AttrKind)] = &[
    ("stride", Ints),
    ("padding", Ints),
    ("dilation", Ints),
    ("groups", Int),
    ("has_bias", Bool),
];
const CONV_GRAD: &[(&str, AttrKind)] = &[
    ("stride", Ints),
    ("padding", Ints),
    ("dilation", Ints),
    ("groups", Int),
];
const MAX_POOL: &[(&str, AttrKind)] = &[
    ("kernel_size", Ints),
    ("stride", Ints),
    ("padding", Ints),
    ("dilation", Ints),
    ("ceil_mode", Bool),
];
const AVG_POOL: &[(&str, AttrKind)] = &[
    ("kernel_size", Ints),
    ("stride", Ints),
    ("padding", Ints),
    ("ceil_mode", Bool),
    ("count_include_pad", Bool),
];
const EMBED: &[(&str, AttrKind)] = &[("shape", Ints), ("region", Ints), ("value", Float)];

/// Every op the tape records, grouped as the source is (`ops::binary`, `ops::unary`,
/// `ops::reduce`, `ops::shape`, `ops::linalg`, `nn::functional`).
pub static OPS: &[OpSchema] = &[
    // ops::binary: elementwise with broadcasting
    op("add", BINARY, &[]),
    op("sub", BINARY, &[]),
    op("mul", BINARY, &[]),
    op("div", BINARY, &[]),
    op("pow", BINARY, &[]),
    op("maximum", BINARY, &[]),
    op("minimum", BINARY, &[]),
    op("eq", BINARY, &[]),
    op("ne", BINARY, &[]),
    op("lt", BINARY, &[]),
    op("le", BINARY, &[]),
    op("gt", BINARY, &[]),
    op("ge", BINARY, &[]),
    op("logical_and", BINARY, &[]),
    op("logical_or", BINARY, &[]),
    op("logical_not", UNARY, &[]),
    op("where", &["condition", "input", "other"], &[]),
    // ops::unary
    op("neg", UNARY, &[]),
    op("abs", UNARY, &[]),
    op("sign", UNARY, &[]),
    op("pow_scalar", UNARY, &[("exponent", Float)]),
    op("clamp", UNARY, &[("min", Float), ("max", Float)]),
    op("sin", UNARY, &[]),
    op("cos", UNARY, &[]),
    op("tanh", UNARY, &[]),
    op("exp", UNARY, &[]),
    op("log", UNARY, &[]),
    op("sqrt", UNARY, &[]),
    op("rsqrt", UNARY, &[]),
    op("sigmoid", UNARY, &[]),
    op("relu", UNARY, &[]),
    // distributed::all_reduce_with_grad (a Sum over ranks; SyncBatchNorm's statistics)
    op("all_reduce", UNARY, &[]),
    op("leaky_relu", UNARY, &[("negative_slope", Float)]),
    op("gelu", UNARY, &[("approximate", Str)]),
    op("gelu_backward", UNARY, &[("approximate", Str)]),
    op("silu", UNARY, &[]),
    op("softplus", UNARY, &[("beta", Float), ("threshold", Float)]),
    // ops::linalg
    op("matmul", BINARY, &[]),
    // ops::reduce
    op("sum", UNARY, REDUCE),
    op("prod", UNARY, REDUCE),
    op("logsumexp", UNARY, REDUCE),
    op("max", UNARY, REDUCE),
    op("min", UNARY, REDUCE),
    op("amax", UNARY, REDUCE),
    op("amin", UNARY, REDUCE),
    op("argmax", UNARY, REDUCE),
    op("argmin", UNARY, REDUCE),
    op("max_dim", UNARY, &[("dim", Int), ("keepdim", Bool)]),
    op("min_dim", UNARY, &[("dim", Int), ("keepdim", Bool)]),
    op(
        "var",
        UNARY,
        &[("dims", Ints), ("keepdim", Bool), ("unbiased", Bool)],
    ),
    op(
        "std",
        UNARY,
        &[("dims", Ints), ("keepdim", Bool), ("unbiased", Bool)],
    ),
    op(
        "norm",
        UNARY,
        &[("dims", Ints), ("keepdim", Bool), ("p", Float)],
    ),
    op("softmax", UNARY, &[("dim", Int)]),
    op("log_softmax", UNARY, &[("dim", Int)]),
    // ops::shape
    op("reshape", UNARY, &[("shape", Ints)]),
    op("unsafe_view", UNARY, &[("shape", Ints)]),
    op("expand", UNARY, &[("shape", Ints)]),
    op("permute", UNARY, &[("dims", Ints)]),
    op("unsqueeze", UNARY, &[("dim", Int)]),
    op("squeeze", UNARY, &[("dim", Int)]),
    op("contiguous", UNARY, &[]),
    op("to_dtype", UNARY, &[("dtype", DType)]),
    op("slice", UNARY, &[("region", Ints)]),
    op("narrow", UNARY, &[("region", Ints)]),
    op("select", UNARY, &[("region", Ints)]),
    op("slice_backward", UNARY, EMBED),
    op("pad", UNARY, EMBED),
    op("cat", &["tensors*"], &[("dim", Int)]),
    op("repeat", UNARY, &[("repeats", Ints)]),
    op("index_select", &["input", "index"], &[("dim", Int)]),
    op("gather", &["input", "index"], &[("dim", Int)]),
    op("index_add", &["input", "index", "source"], &[("dim", Int)]),
    op("scatter_add", &["input", "index", "src"], &[("dim", Int)]),
    // nn::functional
    op("conv2d", &["input", "weight", "bias?"], CONV),
    op("conv_transpose2d", &["input", "weight", "bias?"], CONV),
    op(
        "conv2d_backward_weight",
        &["input", "grad_output"],
        CONV_GRAD,
    ),
    op("max_pool2d", UNARY, MAX_POOL),
    op("max_pool2d_backward", &["grad_output", "indices"], MAX_POOL),
    op("max_pool2d_gather", &["input", "indices"], MAX_POOL),
    op("avg_pool2d", UNARY, AVG_POOL),
    op("avg_pool2d_backward", &["grad_output"], AVG_POOL),
    op("adaptive_avg_pool2d", UNARY, &[("output_size", Ints)]),
    op(
        "adaptive_avg_pool2d_backward",
        &["grad_output"],
        &[("output_size", Ints)],
    ),
    op("dropout", &["input", "mask"], &[("p", Float)]),
    op("embedding", &["weight", "indices"], &[("padding_idx", Int)]),
    op(
        "layer_norm",
        &["input", "weight?", "bias?"],
        &[
            ("normalized_shape", Ints),
            ("eps", Float),
            ("has_weight", Bool),
            ("has_bias", Bool),
        ],
    ),
    op(
        "group_norm",
        &["input", "weight?", "bias?"],
        &[
            ("num_groups", Int),
            ("eps", Float),
            ("has_weight", Bool),
            ("has_bias", Bool),
        ],
    ),
    op(
        "batch_norm",
        &["input", "weight?", "bias?", "running_mean?", "running_var?"],
        &[
            ("training", Bool),
            ("momentum", Float),
            ("eps", Float),
            ("has_weight", Bool),
            ("has_bias", Bool),
            ("has_running_mean", Bool),
            ("has_running_var", Bool),
        ],
    ),
    op(
        "cross_entropy",
        &["input", "target", "weight?"],
        &[
            ("reduction", Str),
            ("ignore_index", Int),
            ("label_smoothing", Float),
            ("has_weight", Bool),
        ],
    ),
    op(
        "cross_entropy_backward",
        &["input", "grad_output", "target"],
        &[("coef", Floats)],
    ),
    op("binary_cross_entropy", &["input", "target"], &[]),
];

/// The declaration of op `name`, if the tape records such an op.
///
/// ```
/// use tapegrad::autograd::schema::{self, AttrKind};
/// let s = schema::get("softmax").unwrap();
/// assert_eq!(s.inputs, ["input"]);
/// assert_eq!(s.attrs, [("dim", AttrKind::Int)]);
/// assert!(schema::get("no_such_op").is_none());
/// ```
pub fn get(name: &str) -> Option<&'static OpSchema> {
    OPS.iter().find(|s| s.name == name)
}

impl OpSchema {
    /// The kind of attribute `name`, if declared.
    pub fn attr_kind(&self, name: &str) -> Option<AttrKind> {
        self.attrs.iter().find(|(k, _)| *k == name).map(|&(_, k)| k)
    }

    /// Checks recorded attributes and an input count against this declaration.
    ///
    /// # Errors
    /// A message saying what differs.
    pub fn check(&self, attrs: &[(&'static str, Attr)], n_inputs: usize) -> Result<(), String> {
        // no allocation unless something differs: debug builds run this for every recorded op
        let same = attrs.len() == self.attrs.len()
            && attrs
                .iter()
                .zip(self.attrs)
                .all(|((k, a), (dk, dkind))| k == dk && AttrKind::of(a) == *dkind);
        if !same {
            let got: Vec<(&str, AttrKind)> =
                attrs.iter().map(|(k, a)| (*k, AttrKind::of(a))).collect();
            return Err(format!("attributes {got:?}, declared {:?}", self.attrs));
        }
        let mut fixed = 0;
        let mut variadic = false;
        for i in self.inputs {
            if let Some(name) = i.strip_suffix('?') {
                let flag = attrs
                    .iter()
                    .find(|(k, _)| k.strip_prefix("has_") == Some(name));
                match flag {
                    Some((_, Attr::Bool(b))) => fixed += *b as usize,
                    _ => {
                        return Err(format!(
                            "optional input '{name}' has no Bool attribute 'has_{name}'"
                        ))
                    }
                }
            } else if i.ends_with('*') {
                variadic = true;
            } else {
                fixed += 1;
            }
        }
        let ok = if variadic {
            n_inputs > fixed
        } else {
            n_inputs == fixed
        };
        if !ok {
            return Err(format!(
                "{n_inputs} inputs, declared {:?} (with the has_* flags {:?})",
                self.inputs,
                attrs
                    .iter()
                    .filter(|(k, _)| k.starts_with("has_"))
                    .collect::<Vec<_>>()
            ));
        }
        Ok(())
    }

    /// The declared inputs with their bare names, `None` for an optional input whose `has_`
    /// flag is false.
    fn present(&self, attrs: &[(&'static str, Attr)]) -> Result<Vec<Option<&'static str>>, String> {
        self.inputs
            .iter()
            .map(|i| {
                if let Some(name) = i.strip_suffix('?') {
                    let flag = format!("has_{name}");
                    match attrs.iter().find(|(k, _)| *k == flag) {
                        Some((_, Attr::Bool(b))) => Ok(b.then_some(name)),
                        _ => Err(format!(
                            "optional input '{name}' has no Bool attribute '{flag}'"
                        )),
                    }
                } else {
                    Ok(Some(i.trim_end_matches('*')))
                }
            })
            .collect()
    }

    /// The inputs of `entry` named by this declaration, in recorded order: optional inputs that
    /// were not given are left out, and each tensor of a variadic input gets its name.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// use tapegrad::autograd::{self, tape};
    /// use tapegrad::nn::functional as F;
    /// let x = Tensor::randn(&[2, 3]);
    /// let b = Tensor::zeros(&[3]);
    /// let y = autograd::trace(|| F::layer_norm(&x, &[3], None, Some(&b), 1e-5));
    /// let e = tape::entry_of(&y).unwrap();
    /// let names: Vec<_> = e.schema().bind(&e).into_iter().map(|(n, _)| n).collect();
    /// assert_eq!(names, ["input", "bias"]);
    /// ```
    ///
    /// # Panics
    /// If `entry` is not an entry of this op.
    pub fn bind<'e>(&self, entry: &'e Entry) -> Vec<(&'static str, &'e Input)> {
        assert_eq!(
            entry.op, self.name,
            "bind: the entry is not a '{}'",
            self.name
        );
        let names = self
            .present(&entry.attrs)
            .unwrap_or_else(|e| panic!("bind: '{}': {e}", self.name));
        let names: Vec<&'static str> = names.into_iter().flatten().collect();
        let variadic = self.inputs.iter().any(|i| i.ends_with('*'));
        entry
            .inputs
            .iter()
            .enumerate()
            .map(|(i, inp)| {
                let name = if variadic {
                    names[i.min(names.len() - 1)]
                } else {
                    names[i]
                };
                (name, inp)
            })
            .collect()
    }
}

/// Checks a recording of op `name` (its attributes and number of inputs) against [`OPS`].
///
/// # Errors
/// A message naming what is not declared or differs.
pub fn check(name: &str, attrs: &[(&'static str, Attr)], n_inputs: usize) -> Result<(), String> {
    match get(name) {
        None => Err(format!("op '{name}' is not declared")),
        Some(s) => s.check(attrs, n_inputs),
    }
}

/// Checks a recorded entry against [`OPS`] (what a debug build does as each entry is recorded).
///
/// # Errors
/// A message naming the op and what differs.
pub fn check_entry(e: &Entry) -> Result<(), String> {
    check(e.op, &e.attrs, e.inputs.len())
        .map_err(|m| format!("'{}' (called at {}): {m}", e.op, e.location))
}
