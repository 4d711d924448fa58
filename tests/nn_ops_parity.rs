//! Parity with PyTorch for the layer ops of `nn::functional`: layer_norm, batch_norm (train, with
//! the running statistics after the call, and eval), group_norm, embedding and
//! scaled_dot_product_attention (including a query left with no key, which gives zeros), values
//! and gradients.
//!
//! The fixture, `tests/fixtures/nn_ops.safetensors`, is committed and is all this test reads; it
//! is regenerated with
//!
//! ```text
//! /root/torch-venv/bin/python scripts/make_nnops_fixtures.py
//! ```
//!
//! For each case it holds the f32 inputs, PyTorch's outputs (computed in f64 from those inputs and
//! rounded to f32), a random `r` per differentiable output and the gradient of `(out * r).sum()`
//! with respect to every float input. Each case here maps the case name to the tapegrad call; the
//! test runs it in f32 on the same inputs, backpropagates `r` and compares within a relative
//! error of [`RTOL`] plus an absolute floor of [`ATOL`]. Dropout cannot match PyTorch's random
//! stream and is checked statistically in its own file instead.

use std::collections::{BTreeSet, HashMap};

use safetensors::{Dtype, SafeTensors};
use tapegrad::nn::functional as F;
use tapegrad::prelude::*;

/// Relative tolerance, for f32 results against references rounded from f64.
const RTOL: f64 = 1e-5;
/// Absolute floor, for values that are (nearly) zero, where a relative error means nothing.
const ATOL: f64 = 1e-6;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/nn_ops.safetensors"
);

/// The tensors of one case, by kind (`in`, `out`, `seed`, `grad`) and name.
#[derive(Default)]
struct Case(HashMap<(String, String), Tensor>);

impl Case {
    fn get(&self, kind: &str, name: &str) -> Option<&Tensor> {
        self.0.get(&(kind.to_string(), name.to_string()))
    }

    fn input(&self, name: &str) -> &Tensor {
        self.get("in", name)
            .unwrap_or_else(|| panic!("the case has no input named '{name}'"))
    }

    fn names(&self, kind: &str) -> BTreeSet<String> {
        self.0
            .keys()
            .filter(|(k, _)| k == kind)
            .map(|(_, n)| n.clone())
            .collect()
    }
}

fn load() -> HashMap<String, Case> {
    let bytes = std::fs::read(FIXTURE).expect("read the nn_ops fixture");
    let st = SafeTensors::deserialize(&bytes).expect("a safetensors file");
    let mut cases: HashMap<String, Case> = HashMap::new();
    for (key, view) in st.tensors() {
        let parts: Vec<&str> = key.split('/').collect();
        let [case, kind, name] = parts[..] else {
            panic!("unexpected key {key}")
        };
        let (shape, data) = (view.shape().to_vec(), view.data());
        let t = match view.dtype() {
            Dtype::F32 => Tensor::from_vec(
                data.chunks(4)
                    .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                    .collect(),
                &shape,
            ),
            Dtype::I64 => Tensor::from_vec_i64(
                data.chunks(8)
                    .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
                    .collect(),
                &shape,
            ),
            Dtype::BOOL => Tensor::from_values(data.iter().map(|&b| b != 0).collect(), &shape),
            other => panic!("{key}: unexpected dtype {other:?}"),
        };
        cases
            .entry(case.to_string())
            .or_default()
            .0
            .insert((kind.to_string(), name.to_string()), t);
    }
    cases
}

/// A case's tapegrad call: its outputs by name, given the inputs (float ones require grad).
type Run = fn(&Case) -> Vec<(&'static str, Tensor)>;

fn sdpa(t: &Case, mask: Option<&Tensor>, causal: bool, scale: Option<f64>) -> Tensor {
    let (q, k, v) = (t.input("q"), t.input("k"), t.input("v"));
    F::scaled_dot_product_attention(q, k, v, mask, 0.0, causal, scale)
}

fn cases() -> Vec<(&'static str, Run)> {
    vec![
        ("layer_norm_affine", |t| {
            let (w, b) = (t.input("weight"), t.input("bias"));
            vec![(
                "y",
                F::layer_norm(t.input("x"), &[3, 5], Some(w), Some(b), 1e-5),
            )]
        }),
        ("layer_norm_plain", |t| {
            vec![("y", F::layer_norm(t.input("x"), &[6], None, None, 1e-5))]
        }),
        ("batch_norm_train", |t| {
            // the running statistics are updated in place: work on copies of the inputs
            let rm = t.input("running_mean") * 1.0;
            let rv = t.input("running_var") * 1.0;
            let (w, b) = (t.input("weight"), t.input("bias"));
            let y = F::batch_norm(
                t.input("x"),
                Some(&rm),
                Some(&rv),
                Some(w),
                Some(b),
                true,
                0.1,
                1e-5,
            );
            vec![("y", y), ("running_mean", rm), ("running_var", rv)]
        }),
        ("batch_norm_eval", |t| {
            let (rm, rv) = (t.input("running_mean"), t.input("running_var"));
            let (w, b) = (t.input("weight"), t.input("bias"));
            let y = F::batch_norm(
                t.input("x"),
                Some(rm),
                Some(rv),
                Some(w),
                Some(b),
                false,
                0.1,
                1e-5,
            );
            vec![("y", y)]
        }),
        ("group_norm", |t| {
            let (w, b) = (t.input("weight"), t.input("bias"));
            vec![("y", F::group_norm(t.input("x"), 3, Some(w), Some(b), 1e-5))]
        }),
        ("embedding", |t| {
            vec![("y", F::embedding(t.input("idx"), t.input("weight"), None))]
        }),
        ("embedding_padding", |t| {
            vec![(
                "y",
                F::embedding(t.input("idx"), t.input("weight"), Some(2)),
            )]
        }),
        ("sdpa", |t| vec![("y", sdpa(t, None, false, None))]),
        ("sdpa_causal", |t| vec![("y", sdpa(t, None, true, None))]),
        ("sdpa_padding_mask", |t| {
            vec![("y", sdpa(t, Some(t.input("mask")), false, None))]
        }),
        ("sdpa_fully_masked_row", |t| {
            vec![("y", sdpa(t, Some(t.input("mask")), false, None))]
        }),
        ("sdpa_float_mask", |t| {
            vec![("y", sdpa(t, Some(t.input("mask")), false, Some(0.7)))]
        }),
    ]
}

/// Inputs that are state, not differentiable arguments.
const STATE: [&str; 2] = ["running_mean", "running_var"];

#[track_caller]
fn check(what: &str, actual: &Tensor, expected: &Tensor) {
    assert_eq!(actual.shape(), expected.shape(), "{what}: shapes differ");
    let (a, e) = (actual.to_vec_f64(), expected.to_vec_f64());
    for (i, (a, e)) in a.iter().zip(&e).enumerate() {
        assert!(
            (a - e).abs() <= ATOL + RTOL * e.abs(),
            "{what}: element {i} is {a}, PyTorch gives {e} (|diff| {})",
            (a - e).abs()
        );
    }
}

#[test]
fn layer_ops_match_pytorch_values_and_gradients() {
    let mut fixtures = load();
    for (name, run) in cases() {
        let case = fixtures
            .remove(name)
            .unwrap_or_else(|| panic!("case {name} is not in the fixture"));
        // fresh leaves, so each case's gradients start empty
        let mut leaves = Case::default();
        for ((kind, n), t) in &case.0 {
            let t = if kind == "in" && t.dtype() == DType::F32 && !STATE.contains(&n.as_str()) {
                t.detach().requires_grad()
            } else {
                t.clone()
            };
            leaves.0.insert((kind.clone(), n.clone()), t);
        }
        let outputs = run(&leaves);
        let produced: BTreeSet<String> = outputs.iter().map(|(n, _)| n.to_string()).collect();
        assert_eq!(produced, case.names("out"), "{name}: outputs differ");
        let mut loss: Option<Tensor> = None;
        for (out_name, y) in &outputs {
            check(
                &format!("{name}/out/{out_name}"),
                y,
                case.get("out", out_name).unwrap(),
            );
            if let Some(r) = case.get("seed", out_name) {
                let term = (y * r).sum();
                loss = Some(match loss {
                    None => term,
                    Some(l) => l + term,
                });
            }
        }
        loss.expect("every case has a differentiable output")
            .backward();
        let grads = case.names("grad");
        assert!(!grads.is_empty(), "{name}: no gradients in the fixture");
        for g in grads {
            let got = leaves
                .input(&g)
                .grad()
                .unwrap_or_else(|| panic!("{name}: no gradient for input {g}"));
            check(
                &format!("{name}/grad/{g}"),
                &got,
                case.get("grad", &g).unwrap(),
            );
        }
    }
    let left: Vec<&String> = fixtures.keys().collect();
    assert!(
        left.is_empty(),
        "fixture cases without a tapegrad call: {left:?}"
    );
}
