//! A [`TapeGraph`] as a TensorFlow `GraphDef`, for TensorBoard's Graphs tab.

use super::proto::{
    self, attr_value::ListValue, attr_value::Value as A, AttrValue, GraphDef, NodeDef, VersionDef,
};
use super::summary::shape_proto;
use crate::autograd::graph::{NodeKind, TapeGraph};
use crate::autograd::tape::Attr;
use crate::tensor::DType;

fn dt(d: DType) -> i32 {
    match d {
        DType::F32 => proto::DT_FLOAT,
        DType::F64 => proto::DT_DOUBLE,
        DType::I64 => proto::DT_INT64,
        DType::Bool => proto::DT_BOOL,
    }
}

fn attr(a: &Attr) -> AttrValue {
    let v = match a {
        Attr::Int(i) => A::I(*i),
        Attr::Ints(v) => A::List(ListValue {
            i: v.clone(),
            ..Default::default()
        }),
        Attr::Float(f) => A::F(*f as f32),
        Attr::Floats(v) => A::List(ListValue {
            f: v.iter().map(|&f| f as f32).collect(),
            ..Default::default()
        }),
        Attr::Bool(b) => A::B(*b),
        Attr::Str(s) => A::S(s.as_bytes().to_vec()),
        Attr::DType(d) => A::Type(dt(*d)),
    };
    AttrValue { value: Some(v) }
}

/// The node name TensorBoard sees: a parameter's dotted module path becomes a `/` scope
/// (`fc1.weight` → `fc1/weight`), so a module's parameters are grouped.
fn tb_name(kind: &NodeKind, name: &str) -> String {
    match kind {
        NodeKind::Param => name.replace('.', "/"),
        _ => name.to_owned(),
    }
}

/// Each node becomes a `NodeDef`: ops keep their op name and attributes; parameters have op
/// `Parameter`, other inputs `Input`. Every node carries `_output_shapes` (TensorBoard labels
/// edges with it) and, where known, `dtype`.
pub(crate) fn graph_def(g: &TapeGraph) -> GraphDef {
    let names: Vec<String> = g.nodes.iter().map(|n| tb_name(&n.kind, &n.name)).collect();
    let node = g
        .nodes
        .iter()
        .zip(&names)
        .map(|(n, name)| {
            let mut attrs = std::collections::BTreeMap::new();
            attrs.insert(
                "_output_shapes".to_owned(),
                AttrValue {
                    value: Some(A::List(ListValue {
                        shape: vec![shape_proto(&n.shape)],
                        ..Default::default()
                    })),
                },
            );
            if let Some(d) = n.dtype {
                attrs.insert(
                    "dtype".to_owned(),
                    AttrValue {
                        value: Some(A::Type(dt(d))),
                    },
                );
            }
            let op = match &n.kind {
                NodeKind::Op { op, attrs: a, .. } => {
                    for (k, v) in a {
                        attrs.insert((*k).to_owned(), attr(v));
                    }
                    (*op).to_owned()
                }
                NodeKind::Param => "Parameter".to_owned(),
                NodeKind::Input => "Input".to_owned(),
            };
            NodeDef {
                name: name.clone(),
                op,
                input: n.inputs.iter().map(|&i| names[i].clone()).collect(),
                device: String::new(),
                attr: attrs,
            }
        })
        .collect();
    GraphDef {
        node,
        versions: Some(VersionDef {
            producer: 22,
            min_consumer: 0,
        }),
    }
}
