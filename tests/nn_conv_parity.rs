//! Parity with PyTorch for the convolution and pooling ops of `nn::functional`: values and
//! gradients against fixtures written by real PyTorch.
//!
//! The fixtures, `tests/fixtures/nn_conv.safetensors` and `tests/fixtures/nn_conv.json`, are
//! committed and are all this test reads. Regenerate them, after adding or changing a case in the
//! generator, with
//!
//! ```text
//! /root/torch-venv/bin/python scripts/make_nn_fixtures.py
//! ```
//!
//! Each case stores the f32 inputs, PyTorch's outputs, a random `r` per float output and the
//! gradient of `Σ (out · r).sum()` with respect to every float input (computed in f64, rounded
//! to f32). Here each case runs the same call in f32, backpropagates `r` and compares outputs
//! and gradients within `RTOL · |want| + ATOL`; int64 indices must match exactly.

use std::collections::HashMap;

use safetensors::{Dtype, SafeTensors};
use serde_json::Value;
use tapegrad::nn::functional::{
    adaptive_avg_pool2d, avg_pool2d, conv1d, conv2d, conv_transpose2d, max_pool2d,
    max_pool2d_with_indices, Conv2dOpts,
};
use tapegrad::prelude::*;

/// Relative tolerance of f32 results against references rounded from f64.
const RTOL: f64 = 1e-5;
/// Absolute floor for elements that are sums of many terms of both signs (up to 8·3·3 = 72
/// products in a forward element, 2·11·11 = 242 in a weight-gradient element): f32 accumulation
/// leaves an error of about `n · 2⁻²⁴ · Σ|terms|` ≈ 1e-6 – 5e-6 for our inputs, which is large
/// relative to a result that cancels to near zero. 1e-5 covers that with margin; nothing larger
/// is needed.
const ATOL: f64 = 1e-5;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/nn_conv");

type Inputs = HashMap<String, Tensor>;

/// Case name → the tapegrad call matching the PyTorch expression in `nn_conv.json`.
fn call(name: &str, t: &Inputs) -> Vec<Tensor> {
    let d = Conv2dOpts::default();
    let (x, w, b) = (&t["x"], t.get("w"), t.get("b"));
    let w = || w.expect("the case has a weight");
    let one = |y: Tensor| vec![y];
    match name {
        "conv2d_basic" | "conv2d_lenet" => one(conv2d(x, w(), b, d)),
        "conv2d_stride_pad" => one(conv2d(x, w(), b, d.stride(2).padding(1))),
        "conv2d_dilation_groups" => one(conv2d(
            x,
            w(),
            None,
            d.stride((1, 2)).padding((2, 1)).dilation(2).groups(2),
        )),
        "conv2d_pointwise_groups" => one(conv2d(x, w(), b, d.groups(3))),
        "conv2d_noncontig" => one(conv2d(&x.permute([0, 3, 1, 2]), w(), b, d.padding(1))),
        "conv1d" => one(conv1d(x, w(), b, 2, 1, 2, 2)),
        "conv_transpose2d" => one(conv_transpose2d(x, w(), b, 2, 1, 1, 1, 1)),
        "conv_transpose2d_groups_dilation" => one(conv_transpose2d(
            x,
            w(),
            None,
            (2, 1),
            (0, 1),
            (1, 0),
            2,
            (1, 2),
        )),
        "max_pool2d" => one(max_pool2d(x, 2, 2, 0, 1, false)),
        "max_pool2d_pad_dilation_ceil" => one(max_pool2d(x, (3, 2), 2, 1, (1, 2), true)),
        "max_pool2d_indices" => {
            let (y, i) = max_pool2d_with_indices(x, 3, 2, 1, 1, false);
            vec![y, i]
        }
        "avg_pool2d" => one(avg_pool2d(x, 2, 2, 0, false, true)),
        "avg_pool2d_pad_ceil" => one(avg_pool2d(x, 3, 2, 1, true, true)),
        "avg_pool2d_exclude_pad" => one(avg_pool2d(x, (2, 3), (2, 1), 1, true, false)),
        "adaptive_avg_pool2d" => one(adaptive_avg_pool2d(x, (3, 4))),
        "adaptive_avg_pool2d_global" => one(adaptive_avg_pool2d(x, 1)),
        _ => panic!("nn_conv.json has case '{name}' that this test does not map"),
    }
}

fn read(st: &SafeTensors, key: &str) -> Tensor {
    let view = st
        .tensor(key)
        .unwrap_or_else(|e| panic!("nn_conv.safetensors has no '{key}': {e}"));
    assert_eq!(view.dtype(), Dtype::F32, "'{key}' is not stored as f32");
    let values = view
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    Tensor::from_vec(values, view.shape())
}

/// The worst element of `got` against `want`, if beyond the tolerance.
fn compare(what: &str, got: &Tensor, want: &Tensor) -> Option<String> {
    if got.shape() != want.shape() {
        return Some(format!(
            "{what}: shape {:?}, PyTorch {:?}",
            got.shape(),
            want.shape()
        ));
    }
    let (g, w) = (got.to_vec_f64(), want.to_vec_f64());
    let exact = got.dtype() == DType::I64;
    let (mut worst, mut at) = (0.0, 0);
    for (i, (a, b)) in g.iter().zip(&w).enumerate() {
        let excess = (a - b).abs() - if exact { 0.0 } else { RTOL * b.abs() + ATOL };
        if excess > worst {
            (worst, at) = (excess, i);
        }
    }
    (worst > 0.0).then(|| {
        format!(
            "{what}: element {at} is {} but PyTorch gives {}",
            g[at], w[at]
        )
    })
}

#[test]
fn conv_and_pool_match_pytorch() {
    let json = std::fs::read_to_string(format!("{FIXTURES}.json"))
        .expect("tests/fixtures/nn_conv.json is missing (see scripts/make_nn_fixtures.py)");
    let doc: Value = serde_json::from_str(&json).expect("nn_conv.json is not valid JSON");
    let bytes = std::fs::read(format!("{FIXTURES}.safetensors"))
        .expect("tests/fixtures/nn_conv.safetensors is missing");
    let st = SafeTensors::deserialize(&bytes).expect("nn_conv.safetensors is not valid");
    let cases = doc["cases"].as_array().expect("a case list");
    assert!(cases.len() >= 10, "expected the full case list");
    let mut errors = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let key = |kind: &str, n: &str| format!("{name}/{kind}/{n}");
        let inputs: Inputs = case["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| {
                let n = n.as_str().unwrap();
                (n.to_owned(), read(&st, &key("in", n)).requires_grad())
            })
            .collect();
        let outs = call(name, &inputs);
        let specs = case["outputs"].as_array().unwrap();
        assert_eq!(outs.len(), specs.len(), "{name}: number of outputs");
        let mut loss: Option<Tensor> = None;
        for (o, s) in outs.iter().zip(specs) {
            let oname = s["name"].as_str().unwrap();
            let mut want = read(&st, &key("out", oname));
            if s["dtype"] == "i64" {
                want = want.to_dtype(DType::I64);
            } else {
                let term = (o * read(&st, &key("seed", oname))).sum();
                loss = Some(match loss {
                    None => term,
                    Some(l) => &l + &term,
                });
            }
            errors.extend(compare(&format!("{name} {oname}"), o, &want));
        }
        loss.expect("a float output").backward();
        for (n, t) in &inputs {
            let got = t.grad().expect("every input gets a gradient");
            errors.extend(compare(
                &format!("{name} grad {n}"),
                &got,
                &read(&st, &key("grad", n)),
            ));
        }
    }
    assert!(
        errors.is_empty(),
        "differences from PyTorch:\n{}",
        errors.join("\n")
    );
}
