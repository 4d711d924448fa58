//! Parity with PyTorch for every loss in `nn::functional`: values and input gradients against
//! fixtures written by real PyTorch.
//!
//! The fixtures, `tests/fixtures/losses.safetensors` and `tests/fixtures/losses.json`, are
//! committed and are all this test reads (neither CI nor `cargo test` needs PyTorch). They are
//! regenerated, after changing a case in the generator, with
//!
//! ```text
//! /root/torch-venv/bin/python scripts/make_loss_fixtures.py
//! ```
//!
//! Each case in `losses.json` names a `torch.nn.functional` loss and its options (reduction,
//! beta, delta, ignore_index, label_smoothing, log_target, and which of weight / pos_weight are
//! given); [`call`] builds the same tapegrad call from them, so every case of the fixtures runs.
//! The test computes the loss on the same f32 inputs, backpropagates the stored seed `r`
//! (`loss.backward_with(&r)`, i.e. the gradient of `Σ loss·r`) and compares the loss and the
//! input's gradient with PyTorch's (computed in f64, rounded to f32) to within [`RTOL`] relative
//! plus an absolute floor [`ATOL`].

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};

use safetensors::{Dtype, SafeTensors};
use serde_json::Value;
use tapegrad::nn::functional as F;
use tapegrad::nn::functional::{CrossEntropyOpts, KlDivReduction, Reduction};
use tapegrad::prelude::*;

/// Relative tolerance, for f32 results against references rounded from f64.
const RTOL: f64 = 1e-5;
/// Absolute floor, for values that are (nearly) zero, where a relative error means nothing.
const ATOL: f64 = 1e-6;

const FIXTURE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

struct Fixtures {
    bytes: Vec<u8>,
    cases: Vec<Value>,
}

fn load() -> Fixtures {
    let json = std::fs::read_to_string(format!("{FIXTURE_DIR}/losses.json"))
        .expect("tests/fixtures/losses.json is missing (see scripts/make_loss_fixtures.py)");
    let doc: Value = serde_json::from_str(&json).expect("losses.json is not valid JSON");
    let cases = doc["cases"]
        .as_array()
        .expect("losses.json: no case list")
        .clone();
    let bytes = std::fs::read(format!("{FIXTURE_DIR}/losses.safetensors"))
        .expect("tests/fixtures/losses.safetensors is missing (see scripts/make_loss_fixtures.py)");
    Fixtures { bytes, cases }
}

/// The stored tensor `key` (f32 or i64).
fn read(st: &SafeTensors, key: &str) -> Tensor {
    let view = st
        .tensor(key)
        .unwrap_or_else(|e| panic!("losses.safetensors has no tensor '{key}': {e}"));
    let shape = view.shape();
    match view.dtype() {
        Dtype::F32 => Tensor::from_vec(
            view.data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                .collect(),
            shape,
        ),
        Dtype::I64 => Tensor::from_vec_i64(
            view.data()
                .chunks_exact(8)
                .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
                .collect(),
            shape,
        ),
        d => panic!("'{key}' is stored as {d:?}, expected F32 or I64"),
    }
}

fn reduction(opts: &Value) -> Reduction {
    match opts["reduction"].as_str().expect("reduction") {
        "none" => Reduction::None,
        "mean" => Reduction::Mean,
        "sum" => Reduction::Sum,
        r => panic!("unknown reduction '{r}'"),
    }
}

/// The tapegrad call of a case: `fn` with `options`, on input `x`, `target` and the optional
/// `weight` / `pos_weight`.
fn call(case: &Value, st: &SafeTensors, x: &Tensor) -> Tensor {
    let name = case["name"].as_str().unwrap();
    let opts = &case["options"];
    let input = |k: &str| -> Option<Tensor> {
        case["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == k)
            .then(|| read(st, &format!("{name}/in/{k}")))
    };
    let target = input("target").expect("a target");
    let (weight, pos_weight) = (input("weight"), input("pos_weight"));
    let float = |k: &str| opts[k].as_f64().unwrap_or_else(|| panic!("option {k}"));
    let ignore_index = opts["ignore_index"].as_i64().unwrap_or(-100);
    match case["fn"].as_str().unwrap() {
        "mse_loss" => F::mse_loss(x, &target, reduction(opts)),
        "l1_loss" => F::l1_loss(x, &target, reduction(opts)),
        "smooth_l1_loss" => F::smooth_l1_loss(x, &target, reduction(opts), float("beta")),
        "huber_loss" => F::huber_loss(x, &target, reduction(opts), float("delta")),
        "cross_entropy" => F::cross_entropy(
            x,
            &target,
            &CrossEntropyOpts {
                weight,
                ignore_index,
                reduction: reduction(opts),
                label_smoothing: opts["label_smoothing"].as_f64().unwrap_or(0.0),
            },
        ),
        "nll_loss" => F::nll_loss(x, &target, weight.as_ref(), ignore_index, reduction(opts)),
        "binary_cross_entropy" => {
            F::binary_cross_entropy(x, &target, weight.as_ref(), reduction(opts))
        }
        "binary_cross_entropy_with_logits" => F::binary_cross_entropy_with_logits(
            x,
            &target,
            weight.as_ref(),
            pos_weight.as_ref(),
            reduction(opts),
        ),
        "kl_div" => {
            let r = match opts["reduction"].as_str().unwrap() {
                "batchmean" => KlDivReduction::BatchMean,
                _ => reduction(opts).into(),
            };
            F::kl_div(x, &target, r, opts["log_target"].as_bool().unwrap())
        }
        f => panic!("losses.json: unknown loss '{f}'"),
    }
}

/// Differences between `got` and PyTorch's `want` (shape, then values within RTOL·|want| + ATOL).
fn compare(what: &str, got: &Tensor, want: &Tensor) -> Option<String> {
    if got.shape() != want.shape() {
        return Some(format!(
            "{what}: shape {:?}, PyTorch {:?}",
            got.shape(),
            want.shape()
        ));
    }
    let (g, w) = (got.to_vec_f64(), want.to_vec_f64());
    let excess = |i: usize| (g[i] - w[i]).abs() - (RTOL * w[i].abs() + ATOL);
    let worst = (0..w.len()).max_by(|&i, &j| excess(i).total_cmp(&excess(j)))?;
    (excess(worst) > 0.0 || excess(worst).is_nan()).then(|| {
        format!(
            "{what}: worst at flat index {worst}: got {}, PyTorch {} (abs error {:.3e})",
            g[worst],
            w[worst],
            (g[worst] - w[worst]).abs()
        )
    })
}

/// Runs one case; the list of its differences from PyTorch.
fn check(st: &SafeTensors, case: &Value) -> Vec<String> {
    let name = case["name"].as_str().unwrap();
    let x = read(st, &format!("{name}/in/x")).requires_grad();
    let run = catch_unwind(AssertUnwindSafe(|| {
        let loss = call(case, st, &x);
        loss.backward_with(&read(st, &format!("{name}/seed")));
        loss
    }));
    let loss = match run {
        Ok(l) => l,
        Err(e) => return vec![format!("panicked: {}", common::payload_message(e.as_ref()))],
    };
    let mut errors = Vec::new();
    errors.extend(compare("loss", &loss, &read(st, &format!("{name}/out"))));
    match x.grad() {
        None => errors.push("grad of x: missing".into()),
        Some(g) => errors.extend(compare("grad of x", &g, &read(st, &format!("{name}/grad")))),
    }
    errors
}

#[test]
fn every_loss_matches_pytorch_values_and_input_gradients() {
    let fx = load();
    let st = SafeTensors::deserialize(&fx.bytes).expect("losses.safetensors is not valid");
    let failures: Vec<String> = fx
        .cases
        .iter()
        .filter_map(|c| {
            let errors = check(&st, c);
            (!errors.is_empty()).then(|| {
                format!(
                    "{} (`{}`):\n    {}",
                    c["name"],
                    c["call"],
                    errors.join("\n    ")
                )
            })
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} loss cases differ from PyTorch:\n{}",
        failures.len(),
        fx.cases.len(),
        failures.join("\n")
    );
}

/// The fixtures cover every loss, every reduction and every option the brief lists, so that a
/// regenerated fixture file that silently lost cases fails here.
#[test]
fn fixtures_cover_every_loss_reduction_and_option() {
    let fx = load();
    let has = |pred: &dyn Fn(&Value) -> bool| fx.cases.iter().any(pred);
    let opt = |c: &Value, k: &str| c["options"][k].clone();
    let input = |c: &Value, k: &str| c["inputs"].as_array().unwrap().iter().any(|n| n == k);
    for f in [
        "mse_loss",
        "l1_loss",
        "smooth_l1_loss",
        "huber_loss",
        "cross_entropy",
        "nll_loss",
        "binary_cross_entropy",
        "binary_cross_entropy_with_logits",
        "kl_div",
    ] {
        for r in ["none", "mean", "sum"] {
            assert!(
                has(&|c| c["fn"] == f && opt(c, "reduction") == r),
                "no case of {f} with reduction {r}"
            );
        }
    }
    let ce = |c: &Value| c["fn"] == "cross_entropy";
    assert!(has(&|c| ce(c) && input(c, "weight")));
    assert!(has(&|c| ce(c) && opt(c, "ignore_index").is_i64()));
    assert!(has(
        &|c| ce(c) && opt(c, "label_smoothing").as_f64() > Some(0.0)
    ));
    assert!(has(
        &|c| ce(c) && c["name"].as_str().unwrap().contains("prob")
    ));
    assert!(has(&|c| ce(c) && c["name"].as_str().unwrap().contains("3d")));
    assert!(has(&|c| input(c, "pos_weight")));
    assert!(has(&|c| opt(c, "log_target") == true));
    assert!(has(&|c| opt(c, "reduction") == "batchmean"));
}

/// The comparison is strict enough to catch a small error in a loss or a gradient.
#[test]
fn comparison_catches_a_relative_error_of_1e4() {
    let want = Tensor::from_vec(vec![1.0, -2.0, 3.0], &[3]);
    let off = Tensor::from_vec(vec![1.0, -2.0, 3.0003], &[3]);
    assert!(compare("x", &want, &want).is_none());
    assert!(compare("x", &off, &want).is_some());
}
