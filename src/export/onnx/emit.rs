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
    /// The dynamic axes of the graph's inputs: (input name, axis, traced size); the second run
    /// has size + 1.
    pub dyn_dims: Vec<(String, usize, usize)>,
}

impl Builder {
    pub fn new(opset: i64) -> Builder {
        Builder {
            opset,
            nodes: Vec::new(),
            initializers: Vec::new(),
            written: HashMap::new(),
            counter: 0,
            dyn_dims: Vec::new(),
        }
    }

    pub fn fresh(&mut self, base: &str) -> String {
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

    /// A 1-element int64 tensor computing a size that is `a` at the traced inputs and `b` at
    /// the grown ones, as `c` times one dynamic input size or a product of two
    /// (`Shape → Gather → Mul`); `None` if no such product fits.
    pub fn size_expr(&mut self, a: usize, b: usize) -> Option<String> {
        let dims = self.dyn_dims.clone();
        let mut products: Vec<(Vec<usize>, usize, usize)> = Vec::new();
        for (i, d) in dims.iter().enumerate() {
            products.push((vec![i], d.2, d.2 + 1));
            for (j, e) in dims.iter().enumerate().skip(i) {
                products.push((vec![i, j], d.2 * e.2, (d.2 + 1) * (e.2 + 1)));
            }
        }
        let (factors, pa, _) = products
            .into_iter()
            .find(|(_, pa, pb)| *pa > 0 && a % pa == 0 && b % pb == 0 && a / pa == b / pb)?;
        let c = (a / pa) as i64;
        let mut acc: Option<String> = None;
        for f in factors {
            let (input, axis, _) = dims[f].clone();
            let shape = self.node("Shape", &[&input], vec![]);
            let idx = self.ints(&[axis as i64]);
            let g = self.node("Gather", &[&shape, &idx], vec![attr_int("axis", 0)]);
            acc = Some(match acc {
                None => g,
                Some(p) => self.node("Mul", &[&p, &g], vec![]),
            });
        }
        let acc = acc?;
        Some(if c == 1 {
            acc
        } else {
            let k = self.ints(&[c]);
            self.node("Mul", &[&acc, &k], vec![])
        })
    }

    /// A 1-d int64 shape: literal sizes where `dynamic` is false, size expressions elsewhere.
    pub fn shape_expr(&mut self, a: &[usize], b: &[usize], dynamic: &[bool]) -> Option<String> {
        let mut parts = Vec::new();
        for i in 0..a.len() {
            parts.push(if dynamic[i] {
                self.size_expr(a[i], b[i])?
            } else {
                self.ints(&[a[i] as i64])
            });
        }
        let refs: Vec<&str> = parts.iter().map(|s| s.as_str()).collect();
        Some(self.node("Concat", &refs, vec![attr_int("axis", 0)]))
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
    pub fn cast(&mut self, x: &Value, to: DType) -> String {
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
    pub fn reduce(&mut self, op: &str, x: &str, axes: &[i64], keepdims: bool) -> String {
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
            Src::Const(t) => {
                let name = b.fresh("const");
                Ok(Value {
                    name: b.initializer(&name, t),
                    shape: t.shape().to_vec(),
                    dynamic: vec![false; t.ndim()],
                    dtype: t.dtype(),
                })
            }
            Src::SizedConst(t, other) => match sized_const(b, t, other) {
                Some(name) => Ok(Value {
                    name,
                    shape: t.shape().to_vec(),
                    dynamic: t.shape().iter().zip(other).map(|(a, b)| a != b).collect(),
                    dtype: t.dtype(),
                }),
                None => Err(unsupported(
                    n,
                    &format!(
                        "has a constant input #{k} made inside forward whose shape follows the \
                         input's size ({:?} at the traced size, {other:?} at another) and which \
                         is neither uniform nor an arange; only values computed from the inputs \
                         can follow a dynamic axis",
                        t.shape()
                    ),
                )),
            },
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
                // output_padding is what the output has beyond (in-1)s - 2p + d(k-1) + 1
                let (s, d) = (ints_attr(n, "stride")?, ints_attr(n, "dilation")?);
                let r = ins[0].shape.len();
                let op: Vec<i64> = (0..2)
                    .map(|i| {
                        let (inp, k) = (ins[0].shape[r - 2 + i] as i64, ins[1].shape[2 + i] as i64);
                        n.shape[r - 2 + i] as i64
                            - ((inp - 1) * s[i] - 2 * pad[i] + d[i] * (k - 1) + 1)
                    })
                    .collect();
                attrs.push(attr_ints("output_padding", &op));
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
            let shape = ints_attr(n, "normalized_shape")?;
            let (w, bias) = affine(b, n, ins, &shape)?;
            b.node(
                "LayerNormalization",
                &[&x(), &w, &bias],
                vec![
                    attr_int("axis", -(shape.len() as i64)),
                    attr_float("epsilon", float_attr(n, "eps")? as f32),
                ],
            )
        }
        "batch_norm" => {
            if bool_attr(n, "training")? {
                return Err(unsupported(n, "runs with batch statistics (training mode)"));
            }
            let c = ins[0].shape[1] as i64;
            let (w, bias) = affine(b, n, ins, &[c])?;
            let k = 1 + n.has("has_weight") as usize + n.has("has_bias") as usize;
            if !(n.has("has_running_mean") && n.has("has_running_var")) {
                return Err(unsupported(n, "has no running statistics"));
            }
            let (mean, var) = (ins[k].name.clone(), ins[k + 1].name.clone());
            b.node(
                "BatchNormalization",
                &[&x(), &w, &bias, &mean, &var],
                vec![attr_float("epsilon", float_attr(n, "eps")? as f32)],
            )
        }
        "group_norm" => group_norm(b, n, ins)?,
        "max_pool2d" | "avg_pool2d" => {
            let pad = ints_attr(n, "padding")?;
            let mut attrs = vec![
                attr_ints("kernel_shape", &ints_attr(n, "kernel_size")?),
                attr_ints("strides", &ints_attr(n, "stride")?),
                attr_ints("pads", &[pad[0], pad[1], pad[0], pad[1]]),
                attr_int("ceil_mode", bool_attr(n, "ceil_mode")? as i64),
            ];
            let op = if n.op == "max_pool2d" {
                attrs.push(attr_ints("dilations", &ints_attr(n, "dilation")?));
                "MaxPool"
            } else {
                let cip = bool_attr(n, "count_include_pad")?;
                attrs.push(attr_int("count_include_pad", cip as i64));
                "AveragePool"
            };
            b.node(op, &[&x()], attrs)
        }
        "adaptive_avg_pool2d" => {
            let out = ints_attr(n, "output_size")?;
            let r = ins[0].shape.len();
            let (h, w) = (ins[0].shape[r - 2] as i64, ins[0].shape[r - 1] as i64);
            if out == [1, 1] {
                b.node("GlobalAveragePool", &[&x()], vec![])
            } else if h % out[0] == 0 && w % out[1] == 0 {
                let k = [h / out[0], w / out[1]];
                b.node(
                    "AveragePool",
                    &[&x()],
                    vec![attr_ints("kernel_shape", &k), attr_ints("strides", &k)],
                )
            } else {
                return Err(unsupported(
                    n,
                    &format!("pools {h}x{w} to {out:?}, which is not a fixed window"),
                ));
            }
        }
        "eq" | "ne" | "lt" | "le" | "gt" | "ge" => {
            let d = ins[0].dtype;
            let l = ins[0].name.clone();
            let r = b.cast(&ins[1], d);
            let op = match n.op {
                "eq" | "ne" => "Equal",
                "lt" => "Less",
                "le" => "LessOrEqual",
                "gt" => "Greater",
                _ => "GreaterOrEqual",
            };
            let y = b.node(op, &[&l, &r], vec![]);
            if n.op == "ne" {
                b.node("Not", &[&y], vec![])
            } else {
                y
            }
        }
        "logical_and" => b.node("And", &[&ins[0].name, &ins[1].name], vec![]),
        "logical_or" => b.node("Or", &[&ins[0].name, &ins[1].name], vec![]),
        "logical_not" => unary(b, "Not"),
        "argmax" | "argmin" => {
            let dims = ints_attr(n, "dims")?;
            let keep = bool_attr(n, "keepdim")?;
            let op = if n.op == "argmax" { "ArgMax" } else { "ArgMin" };
            if dims.len() == 1 {
                let a = vec![attr_int("axis", dims[0]), attr_int("keepdims", keep as i64)];
                b.node(op, &[&x()], a)
            } else {
                // over every dim: the index into the flattened tensor
                let flat = b.ints(&[-1]);
                let f = b.node("Reshape", &[&x(), &flat], vec![]);
                let a = vec![attr_int("axis", 0), attr_int("keepdims", 0)];
                b.node(op, &[&f], a)
            }
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
            // sizes that are products of the input's sizes: computed from Shape
            let Some(s) = b.shape_expr(&n.shape, &n.shape_b, &n.dynamic) else {
                return Err(unsupported(
                    n,
                    &format!(
                        "reshapes {:?} to {:?} with sizes that depend on dynamic axes in a way \
                         the exporter cannot express",
                        x.shape, n.shape
                    ),
                ));
            };
            return Ok(b.node("Reshape", &[&x.name, &s], vec![]));
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
            let Some(s) = b.shape_expr(&n.shape, &n.shape_b, &n.dynamic) else {
                return Err(unsupported(
                    n,
                    &format!(
                        "expands {:?} to {:?} along a dim that depends on a dynamic axis",
                        x.shape, n.shape
                    ),
                ));
            };
            return Ok(b.node("Expand", &[&x.name, &s], vec![]));
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

/// The scale and shift of a norm: its weight and bias inputs, or ones / zeros of `shape` where
/// the module has none (`has_weight` / `has_bias` false).
fn affine(b: &mut Builder, n: &Node, ins: &[Value], shape: &[i64]) -> Result<(String, String)> {
    let dims: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
    let mut k = 1;
    let mut pick = |b: &mut Builder, has: bool, fill: f32| {
        if has {
            k += 1;
            ins[k - 1].name.clone()
        } else {
            let name = b.fresh("const");
            b.initializer(&name, &Tensor::full(&dims, fill).to_dtype(n.dtype))
        }
    };
    let w = pick(b, n.has("has_weight"), 1.0);
    let bias = pick(b, n.has("has_bias"), 0.0);
    Ok((w, bias))
}

/// GroupNorm as its decomposition (ONNX's GroupNormalization scales per group before opset 21):
/// normalise `[N, G, -1]`, restore the input's shape, then scale and shift per channel.
fn group_norm(b: &mut Builder, n: &Node, ins: &[Value]) -> Result<String> {
    let g = int_attr(n, "num_groups")?;
    let eps = b.scalar(float_attr(n, "eps")?, n.dtype);
    let x = &ins[0].name;
    let grouped = b.ints(&[0, g, -1]);
    let xg = b.node("Reshape", &[x, &grouped], vec![]);
    let mean = b.reduce("ReduceMean", &xg, &[2], true);
    let centred = b.node("Sub", &[&xg, &mean], vec![]);
    let sq = b.node("Mul", &[&centred, &centred], vec![]);
    let var = b.reduce("ReduceMean", &sq, &[2], true);
    let ve = b.node("Add", &[&var, &eps], vec![]);
    let sd = b.node("Sqrt", &[&ve], vec![]);
    let norm = b.node("Div", &[&centred, &sd], vec![]);
    let shape = b.node("Shape", &[x], vec![]);
    let y = b.node("Reshape", &[&norm, &shape], vec![]);
    // weight and bias [C] broadcast as [C, 1, ..]
    let c = ins[0].shape[1] as i64;
    let mut per_channel = vec![c];
    per_channel.extend(std::iter::repeat_n(1, ins[0].shape.len() - 2));
    let (w, bias) = affine(b, n, ins, &[c])?;
    let pc = b.ints(&per_channel);
    let w = b.node("Reshape", &[&w, &pc], vec![]);
    let bias = b.node("Reshape", &[&bias, &pc], vec![]);
    let y = b.node("Mul", &[&y, &w], vec![]);
    Ok(b.node("Add", &[&y, &bias], vec![]))
}

/// A constant made inside forward at the input's size, rebuilt from the input's size: a uniform
/// one (`zeros(mask.shape())`) as its value expanded, an int64 arange (positions) as `Range`.
fn sized_const(b: &mut Builder, t: &Tensor, other: &[usize]) -> Option<String> {
    let v = t.to_vec_f64();
    let dynamic: Vec<bool> = t.shape().iter().zip(other).map(|(a, b)| a != b).collect();
    if v.iter().all(|&x| x == v[0]) || v.is_empty() {
        let first = v.first().copied().unwrap_or(0.0);
        let value = b.scalar(first, t.dtype());
        let shape = b.shape_expr(t.shape(), other, &dynamic)?;
        return Some(b.node("Expand", &[&value, &shape], vec![]));
    }
    let arange = t.ndim() == 1 && v.windows(2).all(|w| w[1] - w[0] == 1.0);
    if arange && t.dtype() == DType::I64 {
        let n = b.size_expr(t.shape()[0], other[0])?;
        let start = b.scalar(v[0], DType::I64);
        let one = b.scalar(1.0, DType::I64);
        let zero = b.ints(&[0]);
        let n = b.node("Squeeze", &[&n, &zero], vec![]);
        let end = b.node("Add", &[&start, &n], vec![]);
        return Some(b.node("Range", &[&start, &end, &one], vec![]));
    }
    None
}
