//! Parity with PyTorch: every op's values and gradients against fixtures written by real PyTorch.
//!
//! The fixtures, `tests/fixtures/ops.safetensors` and `tests/fixtures/ops.json`, are committed and
//! are all this test reads: neither CI nor `cargo test` needs PyTorch. They are regenerated, after
//! adding or changing a case in the generator, with
//!
//! ```text
//! /root/torch-venv/bin/python scripts/make_fixtures.py
//! ```
//!
//! and the regenerated files are committed together with the script.
//!
//! For each case the fixtures hold the inputs, PyTorch's outputs, a random seed `r` per
//! differentiable output and the gradient of `Σ (out * r).sum()` with respect to every input that
//! requires grad (references computed in f64 from the f32 inputs, rounded to f32). Here each case
//! name maps to the tapegrad expression computing the same thing; the test runs it on the same
//! f32 inputs, backpropagates `r` (`out.backward_with(&r)`) and compares outputs and gradients to
//! within a relative error of [`RTOL`] plus an absolute floor [`ATOL`] for values near zero;
//! integer and boolean outputs must match exactly.
//!
//! Adding a case: one line in `scripts/make_fixtures.py` (regenerate), one line in [`cases`].
//! Every case in the fixtures must be either mapped in [`cases`] or listed in [`PENDING`] (ops
//! not in tapegrad yet, each with the call it is meant to map to), and every mapped case must be
//! in the fixtures, or the coverage tests fail. A mapped case where tapegrad is known to disagree
//! with PyTorch goes in [`KNOWN_MISMATCH`] with a description of the bug, never behind a looser
//! tolerance; it is checked to still disagree, so the entry must go once the bug is fixed.

use std::collections::{HashMap, HashSet};
use std::ops::Index;
use std::panic::{catch_unwind, AssertUnwindSafe};

use safetensors::{Dtype, SafeTensors};
use serde_json::Value;
use tapegrad::prelude::*;

/// Relative tolerance, for f32 results against references rounded from f64.
const RTOL: f64 = 1e-5;
/// Absolute floor, for values that are (nearly) zero, where a relative error means nothing.
const ATOL: f64 = 1e-6;

const FIXTURE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// The inputs of one case, by the names the generator gave them (`x`, `a`, `b`, `idx`, …).
struct Inputs(HashMap<String, Tensor>);

impl Index<&str> for Inputs {
    type Output = Tensor;
    fn index(&self, name: &str) -> &Tensor {
        self.0
            .get(name)
            .unwrap_or_else(|| panic!("the case has no input named '{name}'"))
    }
}

/// What a case's tapegrad expression returns: one tensor, or several (values and indices, the
/// parts of a split), in the order of the fixture's outputs.
trait IntoOutputs {
    fn into_outputs(self) -> Vec<Tensor>;
}

impl IntoOutputs for Tensor {
    fn into_outputs(self) -> Vec<Tensor> {
        vec![self]
    }
}

impl IntoOutputs for (Tensor, Tensor) {
    fn into_outputs(self) -> Vec<Tensor> {
        vec![self.0, self.1]
    }
}

impl IntoOutputs for Vec<Tensor> {
    fn into_outputs(self) -> Vec<Tensor> {
        self
    }
}

type Forward = fn(&Inputs) -> Vec<Tensor>;

/// `cases! { "name" => |t| expr, … }`: the table of case name → tapegrad expression.
macro_rules! cases {
    ($($name:literal => |$t:ident| $body:expr,)*) => {
        vec![$(($name, (|$t: &Inputs| IntoOutputs::into_outputs($body)) as Forward),)*]
    };
}

/// Every case tapegrad runs, as the PyTorch expression in `ops.json` maps to tapegrad.
fn cases() -> Vec<(&'static str, Forward)> {
    cases! {
        // ----- elementwise
        "neg" => |t| -&t["x"],
        "exp" => |t| t["x"].exp(),
        "log" => |t| t["x"].log(),
        "sqrt" => |t| t["x"].sqrt(),
        "rsqrt" => |t| t["x"].rsqrt(),
        "abs" => |t| t["x"].abs(),
        "sign" => |t| t["x"].sign(),
        "square" => |t| t["x"].square(),
        "pow_tensor" => |t| t["a"].pow(&t["b"]),
        "pow_tensor_broadcast" => |t| t["a"].pow(&t["b"]),
        "pow_scalar_int" => |t| t["x"].powf(3.0),
        "pow_scalar_frac" => |t| t["x"].powf(2.5),
        "pow_scalar_neg" => |t| t["x"].powf(-1.5),
        "sin" => |t| t["x"].sin(),
        "cos" => |t| t["x"].cos(),
        "tanh" => |t| t["x"].tanh(),
        "clamp" => |t| t["x"].clamp(-0.5, 0.5),
        "clamp_min" => |t| t["x"].clamp_min(-0.2),
        "clamp_max" => |t| t["x"].clamp_max(0.3),
        "maximum" => |t| t["a"].maximum(&t["b"]),
        "minimum" => |t| t["a"].minimum(&t["b"]),
        "maximum_broadcast" => |t| t["a"].maximum(&t["b"]),
        "where" => |t| t["a"].where_(&t["cond"], &t["b"]),
        "where_broadcast" => |t| t["a"].where_(&t["cond"], &t["b"]),
        "masked_fill" => |t| t["x"].masked_fill(&t["mask"], -1.5),
        "masked_fill_broadcast" => |t| t["x"].masked_fill(&t["mask"], 2.0),
        "gt" => |t| t["a"].gt(&t["b"]),
        "le_scalar" => |t| t["x"].le_scalar(0.25),
        // ----- binary arithmetic
        "add" => |t| &t["a"] + &t["b"],
        "sub" => |t| &t["a"] - &t["b"],
        "mul" => |t| &t["a"] * &t["b"],
        "div" => |t| &t["a"] / &t["b"],
        "add_same_shape" => |t| t["a"].add(&t["b"]),
        "mul_scalar" => |t| &t["x"] * 2.5,
        "rsub_scalar" => |t| 1.0 - &t["x"],
        "rdiv_scalar" => |t| 2.0 / &t["x"],
        // ----- reductions
        "sum_all" => |t| t["x"].sum(),
        "sum_dim" => |t| t["x"].sum_dim(1, false),
        "sum_dim_keepdim" => |t| t["x"].sum_dim(1, true),
        "sum_dims_neg" => |t| t["x"].sum_dim([0, -1], false),
        "mean_all" => |t| t["x"].mean(),
        "mean_dim" => |t| t["x"].mean_dim(2, false),
        "mean_dims_keepdim" => |t| t["x"].mean_dim([0, 2], true),
        // ----- matmul
        "matmul_dot" => |t| t["a"].matmul(&t["b"]),
        "matmul_2d" => |t| t["a"].mm(&t["b"]),
        "matmul_vec_mat" => |t| t["a"].matmul(&t["b"]),
        "matmul_mat_vec" => |t| t["a"].matmul(&t["b"]),
        "matmul_batched" => |t| t["a"].matmul(&t["b"]),
        "matmul_batch_broadcast" => |t| t["a"].matmul(&t["b"]),
        // ----- shape
        "reshape" => |t| t["x"].reshape([4, -1]),
        "view" => |t| t["x"].view([6, 4]),
        "permute" => |t| t["x"].permute([2, 0, 1]),
        "transpose" => |t| t["x"].transpose(0, 2),
        "t" => |t| t["x"].t(),
        "expand" => |t| t["x"].expand([2, 3, 4]),
        "squeeze" => |t| t["x"].squeeze(),
        "squeeze_dim" => |t| t["x"].squeeze_dim(1),
        "unsqueeze" => |t| t["x"].unsqueeze(-1),
        // ----- non-contiguous inputs (x stored transposed, permuted, or expanded)
        "noncontig_exp" => |t| t["x"].t().exp(),
        "noncontig_add" => |t| &t["x"].t() + &t["b"],
        "noncontig_sum_dim" => |t| t["x"].t().sum_dim(1, false),
        "noncontig_matmul" => |t| t["x"].t().matmul(&t["b"]),
        "noncontig_reshape" => |t| t["x"].t().reshape([-1]),
        "noncontig_mul_both" => |t| &t["x"].t() * &t["y"].t(),
        "noncontig_where" => |t| t["x"].t().where_(&t["cond"], &t["b"]),
        "noncontig_mean_permuted" => |t| t["x"].permute([2, 0, 1]).mean_dim(1, false),
        "noncontig_matmul_batched" => |t| t["x"].transpose(1, 2).matmul(&t["b"]),
        "noncontig_expanded_mul" => |t| &t["x"].expand([3, 4]) * &t["b"],
        "sigmoid" => |t| t["x"].sigmoid(),
        "relu" => |t| t["x"].relu(),
        "leaky_relu" => |t| t["x"].leaky_relu(0.1),
        "gelu" => |t| t["x"].gelu(),
        "gelu_tanh" => |t| t["x"].gelu_tanh(),
        "silu" => |t| t["x"].silu(),
        "softplus" => |t| t["x"].softplus(),
        "var_all" => |t| t["x"].var(true),
        "var_dim_unbiased" => |t| t["x"].var_dim(1, true, false),
        "var_dim_biased_keepdim" => |t| t["x"].var_dim(0, false, true),
        "std_all" => |t| t["x"].std(true),
        "std_dim_unbiased" => |t| t["x"].std_dim(1, true, false),
        "std_dim_biased" => |t| t["x"].std_dim(-1, false, false),
        "max_dim" => |t| t["x"].max_dim(1, false),
        "max_dim_keepdim" => |t| t["x"].max_dim(0, true),
        "min_dim" => |t| t["x"].min_dim(-1, false),
        "max_all" => |t| t["x"].max(),
        "min_all" => |t| t["x"].min(),
        "argmax_dim" => |t| t["x"].argmax_dim(1, false),
        "argmin_dim_keepdim" => |t| t["x"].argmin_dim(0, true),
        "argmax_all" => |t| t["x"].argmax(),
        "prod_all" => |t| t["x"].prod(),
        "prod_dim" => |t| t["x"].prod_dim(1, false),
        "logsumexp" => |t| t["x"].logsumexp(1, false),
        "logsumexp_keepdim" => |t| t["x"].logsumexp(0, true),
        "softmax" => |t| t["x"].softmax(-1),
        "softmax_dim0" => |t| t["x"].softmax(0),
        "log_softmax" => |t| t["x"].log_softmax(1),
        "norm_p2_all" => |t| t["x"].norm(),
        "norm_p1_dim" => |t| t["x"].norm_dim(1.0, 1, false),
        "norm_p2_dim_keepdim" => |t| t["x"].norm_dim(2.0, 0, true),
        "noncontig_softmax" => |t| t["x"].t().softmax(-1),
        "narrow" => |t| t["x"].narrow(1, 1, 2),
        "slice_step" => |t| t["x"].slice(1, Some(1), Some(5), 2),
        "index_select" => |t| t["x"].index_select(1, &t["idx"]),
        "gather" => |t| t["x"].gather(1, &t["idx"]),
        "scatter_add" => |t| t["x"].scatter_add(1, &t["idx"], &t["src"]),
        "cat_dim0" => |t| Tensor::cat(&[&t["a"], &t["b"]], 0),
        "cat_dim1" => |t| Tensor::cat(&[&t["a"], &t["b"]], 1),
        "stack" => |t| Tensor::stack(&[&t["a"], &t["b"]], 1),
        "split" => |t| t["x"].split(2, 0),
        "chunk" => |t| t["x"].chunk(2, 1),
        "pad_last" => |t| t["x"].pad(&[1, 2], 0.5),
        "pad_two_dims" => |t| t["x"].pad(&[1, 0, 0, 2], 0.0),
        "repeat" => |t| t["x"].repeat(&[2, 1, 2]),
        "flatten" => |t| t["x"].flatten(0, -1),
        "flatten_from" => |t| t["x"].flatten(1, -1),
        "noncontig_cat" => |t| Tensor::cat(&[&t["x"].t(), &t["b"]], 0),
    }
}

/// Cases whose op is not in tapegrad yet (being added on other branches). Each comment is the
/// intended entry for [`cases`]: move it there once the op is merged. The calls follow the
/// signatures on the other helpers' branches as of writing; adjust if the merged API differs.
const PENDING: &[&str] = &[];

/// Mapped cases where tapegrad disagrees with PyTorch: (case, what is wrong). Each entry is a
/// bug to fix, not an accepted difference.
const KNOWN_MISMATCH: &[(&str, &str)] = &[];

// ----- fixtures --------------------------------------------------------------------------------

/// One tensor's entry in `ops.json`.
struct Spec {
    name: String,
    dtype: DType,
    /// For inputs: requires grad. For outputs: differentiable (has a seed).
    grad: bool,
}

/// One case of `ops.json`.
struct Case {
    name: String,
    op: String,
    inputs: Vec<Spec>,
    outputs: Vec<Spec>,
}

struct Fixtures {
    bytes: Vec<u8>,
    cases: Vec<Case>,
}

fn dtype_of(s: &str) -> DType {
    match s {
        "f32" => DType::F32,
        "i64" => DType::I64,
        "bool" => DType::Bool,
        _ => panic!("ops.json: unknown dtype '{s}'"),
    }
}

fn specs(v: &Value, flag: &str) -> Vec<Spec> {
    v.as_array()
        .expect("ops.json: expected a list of tensors")
        .iter()
        .map(|s| Spec {
            name: s["name"].as_str().expect("tensor name").to_owned(),
            dtype: dtype_of(s["dtype"].as_str().expect("tensor dtype")),
            grad: s[flag].as_bool().expect("grad flag"),
        })
        .collect()
}

fn load() -> Fixtures {
    let json = std::fs::read_to_string(format!("{FIXTURE_DIR}/ops.json"))
        .expect("tests/fixtures/ops.json is missing (see scripts/make_fixtures.py)");
    let doc: Value = serde_json::from_str(&json).expect("ops.json is not valid JSON");
    let cases = doc["cases"]
        .as_array()
        .expect("ops.json: no case list")
        .iter()
        .map(|c| Case {
            name: c["name"].as_str().expect("case name").to_owned(),
            op: c["op"].as_str().expect("case op").to_owned(),
            inputs: specs(&c["inputs"], "requires_grad"),
            outputs: specs(&c["outputs"], "differentiable"),
        })
        .collect();
    let bytes = std::fs::read(format!("{FIXTURE_DIR}/ops.safetensors"))
        .expect("tests/fixtures/ops.safetensors is missing (see scripts/make_fixtures.py)");
    Fixtures { bytes, cases }
}

impl Fixtures {
    fn tensors(&self) -> SafeTensors<'_> {
        SafeTensors::deserialize(&self.bytes).expect("ops.safetensors is not valid safetensors")
    }

    fn case(&self, name: &str) -> &Case {
        self.cases
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no case '{name}' in ops.json"))
    }
}

/// The stored f32 tensor `key`, converted to `dtype`.
fn read(st: &SafeTensors, key: &str, dtype: DType) -> Tensor {
    let view = st
        .tensor(key)
        .unwrap_or_else(|e| panic!("ops.safetensors has no tensor '{key}': {e}"));
    assert_eq!(view.dtype(), Dtype::F32, "'{key}' is not stored as f32");
    let values = view
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    Tensor::from_vec(values, view.shape()).to_dtype(dtype)
}

// ----- running and comparing -------------------------------------------------------------------

/// Runs `forward` on the case's inputs, backpropagates the seeds and lists every difference from
/// the fixture (empty when tapegrad agrees with PyTorch).
fn check(fx: &Fixtures, case: &Case, forward: Forward) -> Vec<String> {
    let st = fx.tensors();
    let key = |kind: &str, name: &str| format!("{}/{kind}/{name}", case.name);
    let inputs = Inputs(
        case.inputs
            .iter()
            .map(|s| {
                let t = read(&st, &key("in", &s.name), s.dtype);
                (s.name.clone(), if s.grad { t.requires_grad() } else { t })
            })
            .collect(),
    );
    let run = catch_unwind(AssertUnwindSafe(|| {
        let outs = forward(&inputs);
        let mut diff = case.outputs.iter().zip(&outs).filter(|(s, _)| s.grad);
        match (diff.next(), diff.next()) {
            (Some((s, o)), None) => o.backward_with(&read(&st, &key("seed", &s.name), s.dtype)),
            (Some(first), Some(second)) => {
                let loss = [first, second]
                    .into_iter()
                    .chain(diff)
                    .map(|(s, o)| (o * read(&st, &key("seed", &s.name), s.dtype)).sum())
                    .reduce(|a, b| &a + &b)
                    .unwrap();
                loss.backward();
            }
            (None, _) => {}
        }
        outs
    }));
    let outs = match run {
        Ok(outs) => outs,
        Err(e) => {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            return vec![format!("panicked: {msg}")];
        }
    };
    let mut errors = Vec::new();
    if outs.len() != case.outputs.len() {
        errors.push(format!(
            "{} outputs, PyTorch gives {}",
            outs.len(),
            case.outputs.len()
        ));
    }
    for (s, o) in case.outputs.iter().zip(&outs) {
        let want = read(&st, &key("out", &s.name), s.dtype);
        errors.extend(compare(&format!("output '{}'", s.name), o, &want));
    }
    for s in case.inputs.iter().filter(|s| s.grad) {
        let what = format!("grad of '{}'", s.name);
        match inputs[&s.name].grad() {
            None => errors.push(format!("{what}: missing")),
            Some(g) => errors.extend(compare(
                &what,
                &g,
                &read(&st, &key("grad", &s.name), DType::F32),
            )),
        }
    }
    errors
}

/// Differences between tapegrad's `got` and PyTorch's `want`: shape, dtype, then values (floats
/// to within RTOL·|want| + ATOL, others exactly); the worst element is reported.
fn compare(what: &str, got: &Tensor, want: &Tensor) -> Option<String> {
    if got.shape() != want.shape() {
        return Some(format!(
            "{what}: shape {:?}, PyTorch {:?}",
            got.shape(),
            want.shape()
        ));
    }
    if got.dtype() != want.dtype() {
        return Some(format!(
            "{what}: dtype {}, PyTorch {}",
            got.dtype(),
            want.dtype()
        ));
    }
    let exact = !want.dtype().is_float();
    let (g, w) = (got.to_vec_f64(), want.to_vec_f64());
    let excess = |i: usize| {
        let err = (g[i] - w[i]).abs();
        if exact {
            err
        } else {
            err - (RTOL * w[i].abs() + ATOL)
        }
    };
    // A NaN anywhere is an error (and total_cmp ranks a positive NaN above every number).
    let bad = |i: usize| excess(i) > 0.0 || excess(i).is_nan();
    let n_bad = (0..w.len()).filter(|&i| bad(i)).count();
    let worst = (0..w.len()).max_by(|&i, &j| excess(i).total_cmp(&excess(j)))?;
    (n_bad > 0).then(|| {
        format!(
            "{what}: {n_bad} of {} elements differ; worst at flat index {worst}: got {}, PyTorch \
             {} (abs error {:.3e})",
            w.len(),
            g[worst],
            w[worst],
            (g[worst] - w[worst]).abs()
        )
    })
}

fn report(fx: &Fixtures, name: &str, errors: &[String]) -> String {
    format!(
        "{name} (`{}`):\n    {}",
        fx.case(name).op,
        errors.join("\n    ")
    )
}

// ----- tests -----------------------------------------------------------------------------------

#[test]
fn mapped_cases_match_pytorch_values_and_gradients() {
    let fx = load();
    let known: HashSet<&str> = KNOWN_MISMATCH.iter().map(|k| k.0).collect();
    let failures: Vec<String> = cases()
        .into_iter()
        .filter(|(name, _)| !known.contains(name))
        .filter_map(|(name, f)| {
            let errors = check(&fx, fx.case(name), f);
            (!errors.is_empty()).then(|| report(&fx, name, &errors))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} case(s) differ from PyTorch:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn known_mismatches_still_differ_from_pytorch() {
    let fx = load();
    let table: HashMap<&str, Forward> = cases().into_iter().collect();
    for (name, why) in KNOWN_MISMATCH {
        let f = table
            .get(name)
            .unwrap_or_else(|| panic!("KNOWN_MISMATCH '{name}' is not mapped in cases()"));
        let errors = check(&fx, fx.case(name), *f);
        assert!(
            !errors.is_empty(),
            "'{name}' now matches PyTorch: remove it from KNOWN_MISMATCH (was: {why})"
        );
    }
}

#[test]
fn every_fixture_case_is_mapped_or_pending() {
    let fx = load();
    let mapped: HashSet<&str> = cases().into_iter().map(|c| c.0).collect();
    let pending: HashSet<&str> = PENDING.iter().copied().collect();
    let unmapped: Vec<&str> = fx
        .cases
        .iter()
        .map(|c| c.name.as_str())
        .filter(|n| !mapped.contains(n) && !pending.contains(n))
        .collect();
    assert!(
        unmapped.is_empty(),
        "fixture cases with no tapegrad mapping in cases() and not in PENDING: {unmapped:?}"
    );
    let both: Vec<&&str> = mapped.intersection(&pending).collect();
    assert!(
        both.is_empty(),
        "cases both mapped and PENDING (remove them from PENDING): {both:?}"
    );
}

#[test]
fn every_mapped_or_pending_case_has_a_fixture() {
    let fx = load();
    let in_fixtures: HashSet<&str> = fx.cases.iter().map(|c| c.name.as_str()).collect();
    let names: Vec<&str> = cases().into_iter().map(|c| c.0).collect();
    let listed = names
        .iter()
        .chain(PENDING)
        .chain(KNOWN_MISMATCH.iter().map(|k| &k.0));
    let missing: Vec<&&str> = listed.filter(|n| !in_fixtures.contains(**n)).collect();
    assert!(
        missing.is_empty(),
        "cases with no fixture (add them to scripts/make_fixtures.py and regenerate): {missing:?}"
    );
    let unique: HashSet<&str> = names.iter().copied().collect();
    assert_eq!(
        unique.len(),
        names.len(),
        "a case is mapped twice in cases()"
    );
}

#[test]
fn fixture_tensors_are_exactly_those_the_case_list_names() {
    // Catches an ops.json and ops.safetensors that come from different runs of the generator.
    let fx = load();
    let mut expected = HashSet::new();
    for c in &fx.cases {
        for s in &c.inputs {
            expected.insert(format!("{}/in/{}", c.name, s.name));
            if s.grad {
                expected.insert(format!("{}/grad/{}", c.name, s.name));
            }
        }
        for s in &c.outputs {
            expected.insert(format!("{}/out/{}", c.name, s.name));
            if s.grad {
                expected.insert(format!("{}/seed/{}", c.name, s.name));
            }
        }
    }
    let st = fx.tensors();
    let stored: HashSet<String> = st.names().into_iter().map(str::to_owned).collect();
    let mut missing: Vec<_> = expected.difference(&stored).collect();
    let mut extra: Vec<_> = stored.difference(&expected).collect();
    missing.sort();
    extra.sort();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "ops.safetensors lacks {missing:?} and has unlisted {extra:?}; regenerate both files"
    );
}

#[test]
fn comparison_catches_a_small_error_in_a_value_or_a_gradient() {
    // Guards the harness itself: a relative error of 1e-4 (10×RTOL) in the output, or a gradient
    // off by the same factor, must be reported.
    let fx = load();
    let case = fx.case("exp");
    let off_value: Forward = |t| vec![&t["x"].exp() * (1.0 + 1e-4)];
    assert!(!check(&fx, case, off_value).is_empty());
    // d/dx (e^x · c) = c·e^x: right value through a detached path, gradient scaled by 1 + 1e-4.
    let off_grad: Forward = |t| {
        let y = t["x"].exp();
        let scaled = &y * (1.0 + 1e-4);
        vec![&scaled - &(&scaled.detach() - &y.detach())]
    };
    let errors = check(&fx, case, off_grad);
    assert!(
        errors.len() == 1 && errors[0].starts_with("grad of 'x'"),
        "{errors:?}"
    );
    assert!(check(&fx, case, |t| vec![t["x"].exp()]).is_empty());
}
