//! ONNX export by tracing the tape, like `torch.onnx.export`.
//!
//! [`export`] runs one forward pass of a model in eval mode, reads the ops it recorded on the tape
//! (the same op names and attributes the graph picture in [`viz`](crate::viz) draws) and writes
//! an ONNX `ModelProto`: parameters and buffers as initializers named by their `state_dict`
//! names, the inputs and outputs named as [`Options`] says, and the sizes listed in
//! `dynamic_axes` left symbolic, so the file runs at other batch sizes and sequence lengths.
//!
//! The forward runs a second time with every dynamic axis one longer; sizes that change between
//! the two runs are written as shape arithmetic (`Reshape` with 0 / -1), the others as literals.
//! A model whose ops depend on its input's size, or an op with no ONNX mapping, is an error that
//! names the op and the source line that called it, never a silently different graph.
//!
//! ```no_run
//! # fn main() -> tapegrad::Result<()> {
//! use tapegrad::prelude::*;
//! use tapegrad::nn::{self, Module};
//! use tapegrad::export::onnx::{self, Options};
//!
//! let model = nn::Sequential::new().add(nn::Linear::new(4, 8)).add(nn::ReLU).add(nn::Linear::new(8, 2));
//! model.eval();
//! let x = Tensor::randn(&[3, 4]);
//! onnx::export(&model, &[&x], "mlp.onnx", Options::default().dynamic_axis("input", 0, "batch"))?;
//! # Ok(())
//! # }
//! ```

mod emit;
pub mod proto;
pub(crate) mod trace;

use std::collections::BTreeMap;
use std::path::Path;

use prost::Message as _;

use crate::error::{Error, Result};
use crate::nn::{Forward, Item, Module, Visitor};
use crate::tensor::Tensor;
use emit::{Builder, Value};
use proto::{
    tensor_shape_proto::{dimension::Value as DimValue, Dimension},
    type_proto, GraphProto, ModelProto, OperatorSetIdProto, TensorShapeProto, TypeProto,
    ValueInfoProto,
};
use trace::Src;

/// The opsets [`export`] writes (`opset_version`).
pub const OPSETS: std::ops::RangeInclusive<i64> = 17..=21;

/// How [`export`] names and shapes the graph, like `torch.onnx.export`'s keyword arguments.
#[derive(Clone, Debug)]
pub struct Options {
    /// Names of the graph's inputs, in order (default `input`, `input_1`, …).
    pub input_names: Vec<String>,
    /// Names of the graph's outputs, in order (default `output`, `output_1`, …).
    pub output_names: Vec<String>,
    /// Per input or output name: its axes that may take any size, with a name for each
    /// (`{"input": {0: "batch"}}`).
    pub dynamic_axes: BTreeMap<String, BTreeMap<usize, String>>,
    /// The ONNX opset (17 by default; 17 to 21 are accepted).
    pub opset_version: i64,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            input_names: Vec::new(),
            output_names: Vec::new(),
            dynamic_axes: BTreeMap::new(),
            opset_version: 17,
        }
    }
}

impl Options {
    /// Names the inputs.
    pub fn input_names(mut self, names: &[&str]) -> Options {
        self.input_names = names.iter().map(|s| s.to_string()).collect();
        self
    }

    /// Names the outputs.
    pub fn output_names(mut self, names: &[&str]) -> Options {
        self.output_names = names.iter().map(|s| s.to_string()).collect();
        self
    }

    /// Marks axis `axis` of the input or output named `name` as dynamic, called `dim_name`.
    pub fn dynamic_axis(mut self, name: &str, axis: usize, dim_name: &str) -> Options {
        self.dynamic_axes
            .entry(name.to_string())
            .or_default()
            .insert(axis, dim_name.to_string());
        self
    }

    /// Sets the opset version.
    pub fn opset_version(mut self, v: i64) -> Options {
        self.opset_version = v;
        self
    }

    fn input_name(&self, k: usize) -> String {
        self.input_names
            .get(k)
            .cloned()
            .unwrap_or_else(|| default_name("input", k))
    }

    fn output_name(&self, k: usize) -> String {
        self.output_names
            .get(k)
            .cloned()
            .unwrap_or_else(|| default_name("output", k))
    }
}

fn default_name(base: &str, k: usize) -> String {
    if k == 0 {
        base.to_string()
    } else {
        format!("{base}_{k}")
    }
}

/// Exports `model` (one input, [`Forward`]) traced at `inputs` to an ONNX file at `path`, like
/// `torch.onnx.export(model, args, path, ...)`.
///
/// # Errors
/// If the model is in training mode (call `model.eval()` first), the options are invalid (an
/// opset outside [`OPSETS`], a dynamic axis past an input's dims), an op has no ONNX mapping
/// (the error names it and the line that called it), or the file cannot be written.
pub fn export<M: Module + Forward>(
    model: &M,
    inputs: &[&Tensor],
    path: impl AsRef<Path>,
    options: Options,
) -> Result<()> {
    let bytes = export_to_bytes(model, inputs, options)?;
    crate::io::write_atomic(path.as_ref(), |tmp| Ok(std::fs::write(tmp, &bytes)?))
}

/// The ONNX file [`export`] writes, as bytes.
///
/// # Errors
/// As [`export`], except for the file.
pub fn export_to_bytes<M: Module + Forward>(
    model: &M,
    inputs: &[&Tensor],
    options: Options,
) -> Result<Vec<u8>> {
    Ok(to_model_proto(model, inputs, options)?.encode_to_vec())
}

/// The `ModelProto` [`export`] writes, for a model with a one-tensor [`Forward`].
///
/// # Errors
/// As [`export_to_bytes`].
pub fn to_model_proto<M: Module + Forward>(
    model: &M,
    inputs: &[&Tensor],
    options: Options,
) -> Result<ModelProto> {
    if inputs.len() != 1 {
        return Err(Error::Unsupported(format!(
            "export::onnx: a Forward model takes one input, got {}; use to_model_proto_with for \
             a forward of several inputs",
            inputs.len()
        )));
    }
    to_model_proto_with(model, inputs, |x| vec![model.forward(&x[0])], options)
}

/// The `ModelProto` of `forward` (any number of inputs and outputs) over `model`'s parameters
/// and buffers, like exporting a module whose `forward` takes several tensors.
///
/// ```no_run
/// # fn main() -> tapegrad::Result<()> {
/// use tapegrad::prelude::*;
/// use tapegrad::nn::{self, Forward, Module};
/// use tapegrad::export::onnx::{self, Options};
/// let fc = nn::Linear::new(4, 2);
/// fc.eval();
/// let (a, b) = (Tensor::randn(&[3, 4]), Tensor::randn(&[3, 4]));
/// let m = onnx::to_model_proto_with(&fc, &[&a, &b], |x| vec![fc.forward(&(&x[0] + &x[1]))],
///     Options::default())?;
/// assert_eq!(m.graph.unwrap().input.len(), 2);
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// As [`export_to_bytes`].
pub fn to_model_proto_with<M: Module + ?Sized>(
    model: &M,
    inputs: &[&Tensor],
    forward: impl Fn(&[Tensor]) -> Vec<Tensor>,
    options: Options,
) -> Result<ModelProto> {
    // modules without a train flag (Linear, activations) behave the same in both modes
    let mut training = false;
    model.visit(&mut Visitor::new(&mut |_, item| {
        if let Item::Flag(f) = item {
            training |= f.get();
        }
    }));
    if training {
        return Err(Error::Unsupported(
            "export::onnx: the model is in training mode; call model.eval() first (dropout and \
             batch norm are exported as in inference)"
                .into(),
        ));
    }
    if !OPSETS.contains(&options.opset_version) {
        return Err(Error::Unsupported(format!(
            "export::onnx: opset_version {} is not supported (17 to 21 are)",
            options.opset_version
        )));
    }
    let in_names: Vec<String> = (0..inputs.len()).map(|k| options.input_name(k)).collect();
    for name in options.dynamic_axes.keys() {
        let known = in_names.contains(name)
            || (0..options.output_names.len().max(1)).any(|k| &options.output_name(k) == name);
        if !known {
            return Err(Error::Unsupported(format!(
                "export::onnx: dynamic_axes names '{name}', which is not an input or output \
                 name (inputs: {in_names:?})"
            )));
        }
    }
    let axes: Vec<Vec<usize>> = in_names
        .iter()
        .zip(inputs)
        .map(|(name, x)| {
            let axes: Vec<usize> = options
                .dynamic_axes
                .get(name)
                .map(|m| m.keys().copied().collect())
                .unwrap_or_default();
            match axes.iter().find(|&&a| a >= x.ndim()) {
                Some(a) => Err(Error::Unsupported(format!(
                    "export::onnx: dynamic axis {a} of input '{name}' of shape {:?} is past its \
                     dims",
                    x.shape()
                ))),
                None => Ok(axes),
            }
        })
        .collect::<Result<_>>()?;
    let state = model.state_dict_handles();
    let traced = trace::trace(&forward, inputs, &axes, &state)?;

    let mut b = Builder::new(options.opset_version);
    for ((x, name), axes) in inputs.iter().zip(&in_names).zip(&axes) {
        for &a in axes {
            b.dyn_dims.push((name.clone(), a, x.shape()[a]));
        }
    }
    let graph_inputs: Vec<Value> = inputs
        .iter()
        .zip(&in_names)
        .zip(&axes)
        .map(|((x, name), axes)| Value {
            name: name.clone(),
            shape: x.shape().to_vec(),
            dynamic: (0..x.ndim()).map(|d| axes.contains(&d)).collect(),
            dtype: x.dtype(),
        })
        .collect();
    let mut values: Vec<Value> = Vec::with_capacity(traced.nodes.len());
    for n in &traced.nodes {
        let name = match &n.folded {
            // an op on constants only: its value is an initializer (constant folding)
            Some(v) => {
                let name = b.fresh("folded");
                b.initializer(&name, v)
            }
            None => {
                let ins = emit::input_values(&mut b, n, &values, &graph_inputs)?;
                emit::emit(&mut b, n, &ins)?
            }
        };
        values.push(Value {
            name,
            shape: n.shape.clone(),
            dynamic: n.dynamic.clone(),
            dtype: n.dtype,
        });
    }
    // the graph's outputs: an Identity names each one
    let mut outputs = Vec::new();
    for (k, o) in traced.outputs.iter().enumerate() {
        let v = match o {
            Src::Node(i) => values[*i].clone(),
            Src::Input(i) => graph_inputs[*i].clone(),
            _ => {
                return Err(Error::Unsupported(format!(
                    "export::onnx: output {k} does not depend on the inputs or parameters"
                )))
            }
        };
        let name = options.output_name(k);
        b.nodes.push(proto::NodeProto {
            input: vec![v.name.clone()],
            output: vec![name.clone()],
            name: Some(format!("/{name}_identity")),
            op_type: Some("Identity".into()),
            ..Default::default()
        });
        outputs.push(Value { name, ..v });
    }
    let value_info = |v: &Value| -> ValueInfoProto {
        let names = options.dynamic_axes.get(&v.name);
        let dims = v
            .shape
            .iter()
            .enumerate()
            .map(|(d, &n)| Dimension {
                value: Some(match names.and_then(|m| m.get(&d)) {
                    Some(s) => DimValue::DimParam(s.clone()),
                    None if v.dynamic[d] => DimValue::DimParam(format!("{}_dim_{d}", v.name)),
                    None => DimValue::DimValue(n as i64),
                }),
                ..Default::default()
            })
            .collect();
        ValueInfoProto {
            name: Some(v.name.clone()),
            r#type: Some(TypeProto {
                value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                    elem_type: Some(emit::onnx_type(v.dtype)),
                    shape: Some(TensorShapeProto { dim: dims }),
                })),
                ..Default::default()
            }),
            ..Default::default()
        }
    };
    let graph = GraphProto {
        name: Some("tapegrad".into()),
        input: graph_inputs.iter().map(value_info).collect(),
        output: outputs.iter().map(value_info).collect(),
        node: b.nodes,
        initializer: b.initializers,
        ..Default::default()
    };
    Ok(ModelProto {
        // IR version 8 goes with opsets up to 18, 9 with 19–20, 10 with 21
        ir_version: Some(match options.opset_version {
            ..=18 => 8,
            19 | 20 => 9,
            _ => 10,
        }),
        producer_name: Some("tapegrad".into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(options.opset_version),
        }],
        graph: Some(graph),
        ..Default::default()
    })
}
