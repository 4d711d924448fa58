//! `tapegrad::export::onnx`: the files pass the real ONNX checker (`full_check=True`, strict
//! shape inference) and ONNX Runtime computes what tapegrad computes, at a batch size other
//! than the traced one (scripts/check_onnx.py in the repository's .venv, which scripts/test.sh
//! installs); the initializers read back with the generated protobuf types are the state dict
//! bit for bit.
#![cfg(feature = "onnx")]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use prost::Message as _;
use tapegrad::export::onnx::{self, proto, Options};
use tapegrad::nn::{self, Forward, Module};
use tapegrad::prelude::*;

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tapegrad_onnx_{}_{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The repository's .venv python, if it has onnx, onnxruntime and safetensors.
fn onnx_python() -> Option<PathBuf> {
    let py = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let ok = py.exists()
        && Command::new(&py)
            .args(["-c", "import onnx, onnxruntime, safetensors"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
    ok.then_some(py)
}

/// Runs scripts/check_onnx.py (checker + ONNX Runtime) on `model` with `inputs` (by input
/// name); the outputs by output name.
fn onnxruntime(
    py: &Path,
    dir: &Path,
    model: &[u8],
    inputs: &[(&str, &Tensor)],
) -> BTreeMap<String, Tensor> {
    let (m, i, o) = (
        dir.join("model.onnx"),
        dir.join("in.safetensors"),
        dir.join("out.safetensors"),
    );
    std::fs::write(&m, model).unwrap();
    tapegrad::io::safetensors::save(inputs.iter().map(|(n, t)| (*n, *t)), &i).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/check_onnx.py");
    let out = Command::new(py)
        .arg(script)
        .args([&m, &i, &o])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "check_onnx.py failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    tapegrad::io::safetensors::load(&o).unwrap()
}

/// Exports with the python present, or says by name that the check was skipped.
fn python_or_skip(test: &str) -> Option<PathBuf> {
    let py = onnx_python();
    if py.is_none() {
        tapegrad::testing::skip_missing(
            test,
            "onnx, onnxruntime and safetensors in .venv (scripts/test.sh installs them)",
        );
    }
    py
}

fn mlp() -> nn::Sequential {
    manual_seed(7);
    nn::Sequential::new()
        .add(nn::Linear::new(6, 16))
        .add(nn::Tanh)
        .add(nn::Linear::new(16, 16))
        .add(nn::GELU::default())
        .add(nn::Dropout::new(0.1))
        .add(nn::Linear::new(16, 3))
}

fn batch_dynamic() -> Options {
    Options::default()
        .input_names(&["input"])
        .output_names(&["logits"])
        .dynamic_axis("input", 0, "batch")
}

#[test]
fn an_mlp_runs_in_onnxruntime_at_another_batch_size_with_the_same_outputs() {
    let Some(py) =
        python_or_skip("an_mlp_runs_in_onnxruntime_at_another_batch_size_with_the_same_outputs")
    else {
        return;
    };
    let model = mlp();
    model.eval();
    let bytes = onnx::export_to_bytes(&model, &[&Tensor::randn(&[2, 6])], batch_dynamic()).unwrap();
    // traced at batch 2, run at batch 5
    let x = Tensor::randn(&[5, 6]);
    let expected = no_grad_forward(&model, &x);
    let got = onnxruntime(&py, &tmpdir("mlp"), &bytes, &[("input", &x)]);
    common::assert_close(&got["logits"].to_vec_f64(), &expected.to_vec_f64(), 1e-5);
    assert_eq!(got["logits"].shape(), &[5, 3]);
}

fn no_grad_forward(model: &impl Forward, x: &Tensor) -> Tensor {
    let _g = no_grad();
    model.forward(x)
}

#[test]
fn every_initializer_reads_back_bit_identical_to_the_state_dict() {
    let model = mlp();
    model.eval();
    let bytes = onnx::export_to_bytes(&model, &[&Tensor::randn(&[2, 6])], batch_dynamic()).unwrap();
    let m = proto::ModelProto::decode(bytes.as_slice()).unwrap();
    assert_eq!(m.producer_name.as_deref(), Some("tapegrad"));
    assert_eq!(m.opset_import[0].version, Some(17));
    let g = m.graph.unwrap();
    let sd = model.state_dict();
    let inits: BTreeMap<&str, &proto::TensorProto> = g
        .initializer
        .iter()
        .map(|t| (t.name.as_deref().unwrap(), t))
        .collect();
    for (name, t) in &sd {
        let init = inits
            .get(name.as_str())
            .unwrap_or_else(|| panic!("no initializer named {name}"));
        let dims: Vec<usize> = init.dims.iter().map(|&d| d as usize).collect();
        assert_eq!(dims, t.shape(), "{name}");
        assert_eq!(
            init.data_type,
            Some(proto::tensor_proto::DataType::Float as i32)
        );
        let raw = init.raw_data.as_ref().unwrap();
        let back: Vec<u32> = raw
            .chunks(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let bits: Vec<u32> = t.to_vec::<f32>().iter().map(|v| v.to_bits()).collect();
        assert_eq!(back, bits, "{name}");
    }
    // the batch axis is symbolic, the feature axis literal
    let dims = |v: &proto::ValueInfoProto| -> Vec<String> {
        let Some(proto::type_proto::Value::TensorType(t)) = &v.r#type.as_ref().unwrap().value
        else {
            panic!("not a tensor type")
        };
        t.shape
            .as_ref()
            .unwrap()
            .dim
            .iter()
            .map(|d| match &d.value {
                Some(proto::tensor_shape_proto::dimension::Value::DimParam(s)) => s.clone(),
                Some(proto::tensor_shape_proto::dimension::Value::DimValue(n)) => n.to_string(),
                None => "?".into(),
            })
            .collect()
    };
    assert_eq!(g.input[0].name.as_deref(), Some("input"));
    assert_eq!(dims(&g.input[0]), ["batch", "6"]);
    assert_eq!(g.output[0].name.as_deref(), Some("logits"));
    assert_eq!(dims(&g.output[0])[1], "3");
}

#[test]
fn exporting_a_model_in_training_mode_is_an_error_that_says_to_call_eval() {
    let model = mlp();
    model.train();
    let err = onnx::export_to_bytes(&model, &[&Tensor::randn(&[2, 6])], Options::default())
        .map(|_| ())
        .expect_err("exporting in training mode must fail")
        .to_string();
    assert!(
        err.contains("training mode") && err.contains("eval()"),
        "{err}"
    );
}

#[test]
fn an_opset_outside_17_to_21_is_an_error() {
    let model = mlp();
    model.eval();
    for v in [16, 22] {
        let err = onnx::export_to_bytes(
            &model,
            &[&Tensor::randn(&[2, 6])],
            Options::default().opset_version(v),
        )
        .map(|_| ())
        .expect_err("the export must fail")
        .to_string();
        assert!(err.contains(&format!("opset_version {v}")), "{err}");
    }
}

/// A module whose forward uses an op with no ONNX mapping (the `norm` reduction).
struct Unmapped(nn::Linear);
impl Module for Unmapped {
    fn visit(&self, v: &mut nn::Visitor) {
        v.module("fc", &self.0);
    }
}
impl Forward for Unmapped {
    fn forward(&self, x: &Tensor) -> Tensor {
        self.0.forward(x).norm()
    }
}

#[test]
fn an_op_without_mapping_is_an_error_naming_the_op_and_the_callers_line() {
    let model = Unmapped(nn::Linear::new(3, 2));
    model.eval();
    let err = onnx::export_to_bytes(&model, &[&Tensor::randn(&[2, 3])], Options::default())
        .map(|_| ())
        .expect_err("the export must fail")
        .to_string();
    assert!(err.contains("'norm'"), "{err}");
    assert!(err.contains("export_onnx.rs:"), "{err}");
}

#[test]
fn a_file_is_written_at_the_path() {
    let model = mlp();
    model.eval();
    let path = tmpdir("file").join("mlp.onnx");
    onnx::export(
        &model,
        &[&Tensor::randn(&[2, 6])],
        &path,
        Options::default(),
    )
    .unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert!(proto::ModelProto::decode(bytes.as_slice()).is_ok());
}

/// Exports `forward` over `model` traced at `traced`, runs the file in ONNX Runtime at `run`
/// (other sizes) and compares with tapegrad's output at `run`.
fn check_against_onnxruntime<M: Module>(
    test: &str,
    model: &M,
    forward: impl Fn(&[Tensor]) -> Vec<Tensor>,
    traced: &[(&str, &Tensor)],
    run: &[(&str, &Tensor)],
    options: Options,
    tol: f64,
) {
    let Some(py) = python_or_skip(test) else {
        return;
    };
    let names: Vec<&str> = traced.iter().map(|(n, _)| *n).collect();
    let inputs: Vec<&Tensor> = traced.iter().map(|(_, t)| *t).collect();
    let m =
        onnx::to_model_proto_with(model, &inputs, &forward, options.input_names(&names)).unwrap();
    let got = onnxruntime(&py, &tmpdir(test), &m.encode_to_vec(), run);
    let expected = {
        let _g = no_grad();
        forward(&run.iter().map(|(_, t)| (*t).clone()).collect::<Vec<_>>())
    };
    let out = &got["output"];
    assert_eq!(out.shape(), expected[0].shape(), "{test}");
    common::assert_close(&out.to_vec_f64(), &expected[0].to_vec_f64(), tol);
}

/// The digits CNN of examples/04_cnn_digits.rs.
#[derive(Module)]
struct Cnn {
    conv1: nn::Conv2d,
    conv2: nn::Conv2d,
    pool: nn::MaxPool2d,
    fc1: nn::Linear,
    dropout: nn::Dropout,
    fc2: nn::Linear,
}

impl Forward for Cnn {
    fn forward(&self, x: &Tensor) -> Tensor {
        let h = self.conv1.forward(x).relu();
        let h = self.pool.forward(&self.conv2.forward(&h).relu());
        let h = self.fc1.forward(&h.flatten(1, -1)).relu();
        self.fc2.forward(&self.dropout.forward(&h))
    }
}

#[test]
fn the_digits_cnn_runs_in_onnxruntime_at_another_batch_size() {
    manual_seed(3);
    let model = Cnn {
        conv1: nn::Conv2d::new(1, 16, 3).padding(1),
        conv2: nn::Conv2d::new(16, 32, 3).padding(1),
        pool: nn::MaxPool2d::new(2),
        fc1: nn::Linear::new(32 * 4 * 4, 64),
        dropout: nn::Dropout::new(0.25),
        fc2: nn::Linear::new(64, 10),
    };
    model.eval();
    check_against_onnxruntime(
        "the_digits_cnn_runs_in_onnxruntime_at_another_batch_size",
        &model,
        |x| vec![model.forward(&x[0])],
        &[("input", &Tensor::rand(&[2, 1, 8, 8]))],
        &[("input", &Tensor::rand(&[7, 1, 8, 8]))],
        Options::default().dynamic_axis("input", 0, "batch"),
        1e-5,
    );
}

/// conv - batch norm (with running statistics) - group norm - avg pool - global pool - linear.
#[derive(Module)]
struct Norms {
    conv: nn::Conv2d,
    bn: nn::BatchNorm,
    gn: nn::GroupNorm,
    pool: nn::AvgPool2d,
    global: nn::AdaptiveAvgPool2d,
    fc: nn::Linear,
}

impl Forward for Norms {
    fn forward(&self, x: &Tensor) -> Tensor {
        let h = self.bn.forward(&self.conv.forward(x)).relu();
        let h = self.pool.forward(&self.gn.forward(&h));
        self.fc.forward(&self.global.forward(&h).flatten(1, -1))
    }
}

#[test]
fn batch_norm_group_norm_and_pooling_run_in_onnxruntime_as_in_eval_mode() {
    manual_seed(5);
    let model = Norms {
        conv: nn::Conv2d::new(3, 8, 3).padding(1),
        bn: nn::BatchNorm::new(8),
        gn: nn::GroupNorm::new(2, 8),
        pool: nn::AvgPool2d::new(2),
        global: nn::AdaptiveAvgPool2d::new(1),
        fc: nn::Linear::new(8, 4),
    };
    // running statistics away from 0 / 1
    model.train();
    for _ in 0..3 {
        let _ = model.forward(&(Tensor::randn(&[4, 3, 8, 8]) * 2.0 + 1.0));
    }
    model.eval();
    check_against_onnxruntime(
        "batch_norm_group_norm_and_pooling_run_in_onnxruntime_as_in_eval_mode",
        &model,
        |x| vec![model.forward(&x[0])],
        &[("input", &Tensor::randn(&[2, 3, 8, 8]))],
        &[("input", &Tensor::randn(&[5, 3, 8, 8]))],
        Options::default().dynamic_axis("input", 0, "batch"),
        1e-5,
    );
}

/// A padding mask `[B, S]`: true = padding, the last `pad[b]` positions of row `b`.
fn padding_mask(s: usize, pad: &[usize]) -> Tensor {
    let v: Vec<i64> = pad
        .iter()
        .flat_map(|&p| (0..s).map(move |j| (j >= s - p) as i64))
        .collect();
    Tensor::from_vec_i64(v, &[pad.len(), s]).gt_scalar(0.0)
}

#[test]
fn a_transformer_encoder_with_a_padding_mask_runs_at_another_batch_and_length() {
    manual_seed(11);
    let layer = nn::TransformerEncoderLayer::new(16, 4)
        .dim_feedforward(32)
        .batch_first(true);
    let enc = nn::TransformerEncoder::new(&layer, 2);
    enc.eval();
    let opts = Options::default()
        .dynamic_axis("input", 0, "batch")
        .dynamic_axis("input", 1, "seq")
        .dynamic_axis("mask", 0, "batch")
        .dynamic_axis("mask", 1, "seq");
    let (x, m) = (Tensor::randn(&[2, 5, 16]), padding_mask(5, &[0, 2]));
    let (x2, m2) = (Tensor::randn(&[3, 7, 16]), padding_mask(7, &[1, 0, 3]));
    check_against_onnxruntime(
        "a_transformer_encoder_with_a_padding_mask_runs_at_another_batch_and_length",
        &enc,
        |x| vec![enc.forward(&x[0], None, Some(&x[1]))],
        &[("input", &x), ("mask", &m)],
        &[("input", &x2), ("mask", &m2)],
        opts,
        1e-5,
    );
}
