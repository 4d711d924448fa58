//! Turning traced ops into ONNX nodes: one `match` arm per tapegrad op, each writing the ONNX
//! node(s) that compute the same values, with the opset's attribute conventions.

use std::collections::HashMap;

use super::proto::{
    attribute_proto::AttributeType, tensor_proto::DataType, AttributeProto, NodeProto, TensorProto,
};
use super::trace::{Node, Src};
use crate::autograd::tape::Attr;
use crate::error::{Error, Result};
use crate::tensor::{DType, Tensor};

/// An ONNX value the graph has computed (or reads): its name, shape at the example inputs and
/// which dims depend on a dynamic axis.
#[derive(Clone, Debug)]
pub(crate) struct Value {
    pub name: String,
    pub shape: Vec<usize>,
    pub dynamic: Vec<bool>,
    pub dtype: DType,
}

/// The ONNX `data_type` of a dtype.
pub(crate) fn onnx_type(d: DType) -> i32 {
    (match d {
        DType::F32 => DataType::Float,
        DType::F64 => DataType::Double,
        DType::I64 => DataType::Int64,
        DType::Bool => DataType::Bool,
    }) as i32
}

/// A `TensorProto` holding `t`'s values (raw little-endian bytes, bit-exact).
pub(crate) fn tensor_proto(name: &str, t: &Tensor) -> TensorProto {
    let raw: Vec<u8> = match t.dtype() {
        DType::F32 => t
            .to_vec::<f32>()
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        DType::F64 => t
            .to_vec::<f64>()
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        DType::I64 => t
            .to_vec::<i64>()
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        DType::Bool => t.to_vec::<bool>().iter().map(|&v| v as u8).collect(),
    };
    TensorProto {
        dims: t.shape().iter().map(|&d| d as i64).collect(),
        data_type: Some(onnx_type(t.dtype())),
        name: Some(name.to_string()),
        raw_data: Some(raw),
        ..Default::default()
    }
}

fn attr_ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Ints as i32),
        ints: v.to_vec(),
        ..Default::default()
    }
}

fn attr_int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Int as i32),
        i: Some(v),
        ..Default::default()
    }
}

fn attr_float(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Float as i32),
        f: Some(v),
        ..Default::default()
    }
}

fn attr_str(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::String as i32),
        s: Some(v.as_bytes().to_vec()),
        ..Default::default()
    }
}

/// The ONNX graph being written.
pub(crate) struct Builder {
    pub opset: i64,
    pub nodes: Vec<NodeProto>,
    pub initializers: Vec<TensorProto>,
    /// Initializers already written, by name.
    written: HashMap<String, ()>,
    counter: usize,
}

impl Builder {
    pub fn new(opset: i64) -> Builder {
        Builder {
            opset,
            nodes: Vec::new(),
            initializers: Vec::new(),
            written: HashMap::new(),
            counter: 0,
        }
    }

    fn fresh(&mut self, base: &str) -> String {
        self.counter += 1;
        format!("/{base}_{}", self.counter)
    }

    /// Adds `op_type(inputs) -> one fresh output` and returns the output's name.
    pub fn node(&mut self, op_type: &str, inputs: &[&str], attrs: Vec<AttributeProto>) -> String {
        let out = self.fresh(op_type);
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![out.clone()],
            name: Some(format!("{out}_node")),
            op_type: Some(op_type.into()),
            attribute: attrs,
            ..Default::default()
        });
        out
    }

    /// An initializer named `name` holding `t` (written once).
    pub fn initializer(&mut self, name: &str, t: &Tensor) -> String {
        if self.written.insert(name.to_string(), ()).is_none() {
            self.initializers.push(tensor_proto(name, t));
        }
        name.to_string()
    }

    /// A fresh int64 constant initializer.
    pub fn ints(&mut self, v: &[i64]) -> String {
        let name = self.fresh("const");
        let t = Tensor::from_vec_i64(v.to_vec(), &[v.len()]);
        self.initializer(&name, &t)
    }

    /// A fresh 0-d constant of dtype `d` holding `v`.
    pub fn scalar(&mut self, v: f64, d: DType) -> String {
        let name = self.fresh("const");
        let t = Tensor::scalar_of(v, d);
        self.initializer(&name, &t)
    }

    /// `x` cast to `to` (no node when it already has that dtype).
    fn cast(&mut self, x: &Value, to: DType) -> String {
        if x.dtype == to {
            return x.name.clone();
        }
        self.node(
            "Cast",
            &[&x.name],
            vec![attr_int("to", onnx_type(to) as i64)],
        )
    }

    /// `reduce(x)` over `axes`: the axes are an attribute before opset 18 (13 for ReduceSum)
    /// and an input from then on.
    fn reduce(&mut self, op: &str, x: &str, axes: &[i64], keepdims: bool) -> String {
        let keep = attr_int("keepdims", keepdims as i64);
        let axes_as_input = op == "ReduceSum" || self.opset >= 18;
        if axes_as_input {
            let a = self.ints(axes);
            self.node(op, &[x, &a], vec![keep])
        } else {
            self.node(op, &[x], vec![keep, attr_ints("axes", axes)])
        }
    }
}

fn unsupported(n: &Node, why: &str) -> Error {
    Error::Unsupported(format!(
        "export::onnx: op '{}' (called at {}) {why}",
        n.op, n.location
    ))
}

fn ints_attr(n: &Node, key: &str) -> Result<Vec<i64>> {
    match n.attr(key) {
        Some(Attr::Ints(v)) => Ok(v.clone()),
        Some(Attr::Int(v)) => Ok(vec![*v]),
        _ => Err(unsupported(
            n,
            &format!("has no '{key}' attribute on the tape"),
        )),
    }
}

fn int_attr(n: &Node, key: &str) -> Result<i64> {
    match n.attr(key) {
        Some(Attr::Int(v)) => Ok(*v),
        _ => Err(unsupported(
            n,
            &format!("has no '{key}' attribute on the tape"),
        )),
    }
}

fn float_attr(n: &Node, key: &str) -> Result<f64> {
    match n.attr(key) {
        Some(Attr::Float(v)) => Ok(*v),
        Some(Attr::Int(v)) => Ok(*v as f64),
        _ => Err(unsupported(
            n,
            &format!("has no '{key}' attribute on the tape"),
        )),
    }
}

fn bool_attr(n: &Node, key: &str) -> Result<bool> {
    match n.attr(key) {
        Some(Attr::Bool(v)) => Ok(*v),
        _ => Err(unsupported(
            n,
            &format!("has no '{key}' attribute on the tape"),
        )),
    }
}

/// Resolves the ONNX name of each input of `n`.
pub(crate) fn input_values(
    b: &mut Builder,
    n: &Node,
    values: &[Value],
    graph_inputs: &[Value],
) -> Result<Vec<Value>> {
    n.inputs
        .iter()
        .enumerate()
        .map(|(k, s)| match s {
            Src::Node(i) => Ok(values[*i].clone()),
            Src::Input(i) => Ok(graph_inputs[*i].clone()),
            Src::Param(name, t) => Ok(Value {
                name: b.initializer(name, t),
                shape: t.shape().to_vec(),
                dynamic: vec![false; t.ndim()],
                dtype: t.dtype(),
            }),
            Src::Const => Err(unsupported(
                n,
                &format!(
                    "has a constant input #{k} of shape {:?} whose value the tape did not record",
                    n.input_shapes[k]
                ),
            )),
        })
        .collect()
}

/// Writes the ONNX nodes computing traced node `n` from `ins`; returns the output's name.
pub(crate) fn emit(b: &mut Builder, n: &Node, ins: &[Value]) -> Result<String> {
    let x = || ins[0].name.clone();
    let binary = |b: &mut Builder, op: &str| -> String {
        // ONNX wants both operands of one type; tapegrad promotes (a f64 scalar on an f32 tensor)
        let l = b.cast(&ins[0], n.dtype);
        let r = b.cast(&ins[1], n.dtype);
        b.node(op, &[&l, &r], vec![])
    };
    let unary = |b: &mut Builder, op: &str| b.node(op, &[&x()], vec![]);
    Ok(match n.op {
        "add" => binary(b, "Add"),
        "sub" => binary(b, "Sub"),
        "mul" => binary(b, "Mul"),
        "div" => binary(b, "Div"),
        "pow" => binary(b, "Pow"),
        "maximum" => binary(b, "Max"),
        "minimum" => binary(b, "Min"),
        "matmul" => b.node("MatMul", &[&ins[0].name, &ins[1].name], vec![]),
        "neg" => unary(b, "Neg"),
        "abs" => unary(b, "Abs"),
        "sign" => unary(b, "Sign"),
        "sin" => unary(b, "Sin"),
        "cos" => unary(b, "Cos"),
        "tanh" => unary(b, "Tanh"),
        "sigmoid" => unary(b, "Sigmoid"),
        "relu" => unary(b, "Relu"),
        "exp" => unary(b, "Exp"),
        "log" => unary(b, "Log"),
        "sqrt" => unary(b, "Sqrt"),
        "rsqrt" => {
            let s = unary(b, "Sqrt");
            b.node("Reciprocal", &[&s], vec![])
        }
        "silu" => {
            let s = unary(b, "Sigmoid");
            b.node("Mul", &[&x(), &s], vec![])
        }
        "leaky_relu" => b.node(
            "LeakyRelu",
            &[&x()],
            vec![attr_float("alpha", float_attr(n, "negative_slope")? as f32)],
        ),
        "pow_scalar" => {
            let e = b.scalar(float_attr(n, "exponent")?, n.dtype);
            b.node("Pow", &[&x(), &e], vec![])
        }
        "clamp" => {
            let lo = b.scalar(float_attr(n, "min")?, n.dtype);
            let hi = b.scalar(float_attr(n, "max")?, n.dtype);
            b.node("Clip", &[&x(), &lo, &hi], vec![])
        }
        "gelu" => {
            let tanh = matches!(n.attr("approximate"), Some(Attr::Str(s)) if s == "tanh");
            gelu(b, &x(), n.dtype, tanh)
        }
        "softmax" | "log_softmax" => {
            let op = if n.op == "softmax" {
                "Softmax"
            } else {
                "LogSoftmax"
            };
            b.node(op, &[&x()], vec![attr_int("axis", int_attr(n, "dim")?)])
        }
        "sum" | "mean" | "amax" | "amin" | "max" | "min" => {
            let op = match n.op {
                "sum" => "ReduceSum",
                "mean" => "ReduceMean",
                "amax" | "max" => "ReduceMax",
                _ => "ReduceMin",
            };
            let dims = ints_attr(n, "dims")?;
            let keep = bool_attr(n, "keepdim")?;
            b.reduce(op, &x(), &dims, keep)
        }
        "reshape" | "view" | "unsafe_view" => reshape(b, n, &ins[0])?,
        "contiguous" | "dropout" => b.node("Identity", &[&x()], vec![]),
        "permute" => b.node(
            "Transpose",
            &[&x()],
            vec![attr_ints("perm", &ints_attr(n, "dims")?)],
        ),
        "unsqueeze" | "squeeze" => {
            let a = b.ints(&[int_attr(n, "dim")?]);
            let op = if n.op == "unsqueeze" {
                "Unsqueeze"
            } else {
                "Squeeze"
            };
            b.node(op, &[&x(), &a], vec![])
        }
        "expand" => expand(b, n, &ins[0])?,
        "cat" => {
            let names: Vec<&str> = ins.iter().map(|v| v.name.as_str()).collect();
            b.node(
                "Concat",
                &names,
                vec![attr_int("axis", int_attr(n, "dim")?)],
            )
        }
        "slice" | "narrow" | "select" => slice(b, n, &ins[0])?,
        "to_dtype" => {
            let to = onnx_type(n.dtype) as i64;
            b.node("Cast", &[&x()], vec![attr_int("to", to)])
        }
        "embedding" => b.node(
            "Gather",
            &[&ins[0].name, &ins[1].name],
            vec![attr_int("axis", 0)],
        ),
        "where" if ins.len() == 3 => {
            b.node("Where", &[&ins[0].name, &ins[1].name, &ins[2].name], vec![])
        }
        "conv2d" | "conv_transpose2d" => {
            let pad = ints_attr(n, "padding")?;
            let mut attrs = vec![
                attr_ints("strides", &ints_attr(n, "stride")?),
                attr_ints("pads", &[pad[0], pad[1], pad[0], pad[1]]),
                attr_ints("dilations", &ints_attr(n, "dilation")?),
                attr_int("group", int_attr(n, "groups")?),
            ];
            if n.op == "conv_transpose2d" {
                if let Ok(op) = ints_attr(n, "output_padding") {
                    attrs.push(attr_ints("output_padding", &op));
                }
            }
            let names: Vec<&str> = ins.iter().map(|v| v.name.as_str()).collect();
            let op = if n.op == "conv2d" {
                "Conv"
            } else {
                "ConvTranspose"
            };
            b.node(op, &names, attrs)
        }
        "layer_norm" => {
            let axis = match n.attr("normalized_shape") {
                Some(Attr::Ints(s)) => -(s.len() as i64),
                _ if ins.len() > 1 => -(ins[1].shape.len() as i64),
                _ => return Err(unsupported(n, "has no normalized_shape attribute")),
            };
            let eps = float_attr(n, "eps")? as f32;
            let names: Vec<&str> = ins.iter().map(|v| v.name.as_str()).collect();
            b.node(
                "LayerNormalization",
                &names,
                vec![attr_int("axis", axis), attr_float("epsilon", eps)],
            )
        }
        _ => return Err(unsupported(n, "has no ONNX mapping")),
    })
}

/// GELU: the `Gelu` op from opset 20, else its Erf (or tanh) form.
fn gelu(b: &mut Builder, x: &str, d: DType, tanh: bool) -> String {
    if b.opset >= 20 {
        let a = if tanh { "tanh" } else { "none" };
        return b.node("Gelu", &[x], vec![attr_str("approximate", a)]);
    }
    let half = b.scalar(0.5, d);
    let one = b.scalar(1.0, d);
    let inner = if tanh {
        // tanh(√(2/π) (x + 0.044715 x³))
        let c = b.scalar(0.044715, d);
        let three = b.scalar(3.0, d);
        let k = b.scalar((2.0 / std::f64::consts::PI).sqrt(), d);
        let x3 = b.node("Pow", &[x, &three], vec![]);
        let cx3 = b.node("Mul", &[&c, &x3], vec![]);
        let s = b.node("Add", &[x, &cx3], vec![]);
        let u = b.node("Mul", &[&k, &s], vec![]);
        b.node("Tanh", &[&u], vec![])
    } else {
        // erf(x / √2)
        let r2 = b.scalar(std::f64::consts::SQRT_2, d);
        let u = b.node("Div", &[x, &r2], vec![]);
        b.node("Erf", &[&u], vec![])
    };
    let p = b.node("Add", &[&inner, &one], vec![]);
    let hx = b.node("Mul", &[x, &half], vec![]);
    b.node("Mul", &[&hx, &p], vec![])
}

/// Reshape with a target that keeps working at other sizes of the dynamic axes: a dynamic dim
/// in the same place as the input's becomes 0 (copy), one other dynamic dim becomes -1 (infer).
fn reshape(b: &mut Builder, n: &Node, x: &Value) -> Result<String> {
    let mut target: Vec<i64> = n.shape.iter().map(|&d| d as i64).collect();
    let mut inferred = false;
    for (i, t) in target.iter_mut().enumerate() {
        if !n.dynamic[i] {
            continue;
        }
        if i < x.shape.len() && x.dynamic[i] && x.shape[i] as i64 == *t {
            *t = 0;
        } else if !inferred {
            *t = -1;
            inferred = true;
        } else {
            return Err(unsupported(
                n,
                &format!(
                    "reshapes {:?} to {:?} with more than one size that depends on a dynamic \
                     axis and cannot be copied from the input",
                    x.shape, n.shape
                ),
            ));
        }
    }
    let s = b.ints(&target);
    Ok(b.node("Reshape", &[&x.name, &s], vec![]))
}

/// Expand: ONNX broadcasts the input against the target, so dims the input already has are
/// given as 1 and only literal sizes are written.
fn expand(b: &mut Builder, n: &Node, x: &Value) -> Result<String> {
    let off = n.shape.len() - x.shape.len();
    let mut target = Vec::new();
    for (i, &d) in n.shape.iter().enumerate() {
        let own = i.checked_sub(off).map(|j| x.shape[j]);
        if own == Some(d) {
            target.push(1);
        } else if n.dynamic[i] {
            return Err(unsupported(
                n,
                &format!(
                    "expands {:?} to {:?} along a dim that depends on a dynamic axis",
                    x.shape, n.shape
                ),
            ));
        } else {
            target.push(d as i64);
        }
    }
    let s = b.ints(&target);
    Ok(b.node("Expand", &[&x.name, &s], vec![]))
}

/// Slice from the `region` attribute (`[start, end, step]` per dim): the output's size fixes
/// the end, and a slice running to the end of a dynamic dim runs to its end at any size.
fn slice(b: &mut Builder, n: &Node, x: &Value) -> Result<String> {
    let region = ints_attr(n, "region")?;
    let (mut starts, mut ends, mut axes, mut steps) = (vec![], vec![], vec![], vec![]);
    for (d, r) in region.chunks(3).enumerate() {
        let len = x.shape[d] as i64;
        let (s, step) = (r[0], r[2]);
        let start = if s < 0 { (s + len).max(0) } else { s.min(len) };
        let out = *n.shape.get(d).unwrap_or(&0) as i64;
        if start == 0 && step == 1 && out == len {
            continue; // the whole dim
        }
        let end = start + out * step;
        let to_end = end >= len;
        if x.dynamic[d] && !to_end {
            return Err(unsupported(
                n,
                &format!(
                    "slices a dim of size {len} that depends on a dynamic axis short of its end"
                ),
            ));
        }
        let from_back = x.dynamic[d] && s < 0;
        starts.push(if from_back { s } else { start });
        ends.push(if to_end { i64::MAX } else { end });
        axes.push(d as i64);
        steps.push(step);
    }
    let names = [
        b.ints(&starts),
        b.ints(&ends),
        b.ints(&axes),
        b.ints(&steps),
    ];
    Ok(b.node(
        "Slice",
        &[&x.name, &names[0], &names[1], &names[2], &names[3]],
        vec![],
    ))
}
