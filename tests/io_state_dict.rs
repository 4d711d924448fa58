//! `Module::state_dict` / `load_state_dict` and safetensors files: keys, strictness, in-place
//! copies, dtype conversion and atomic saves.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use tapegrad::io::safetensors;
use tapegrad::nn::{self, Forward, Module};
use tapegrad::optim::{Optimizer, Sgd};
use tapegrad::prelude::*;
use tapegrad::Error;

#[derive(Module)]
struct Net {
    conv: nn::Conv2d,
    bn: nn::BatchNorm2d,
    fc: nn::Linear,
}

fn net() -> Net {
    Net {
        conv: nn::Conv2d::new(1, 2, 3),
        bn: nn::BatchNorm2d::new(2),
        fc: nn::Linear::new(8, 3),
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tapegrad-io-sd-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn state_dict_has_pytorch_key_names() {
    let keys: Vec<String> = net().state_dict().into_keys().collect();
    assert_eq!(
        keys,
        [
            "bn.bias",
            "bn.num_batches_tracked",
            "bn.running_mean",
            "bn.running_var",
            "bn.weight",
            "conv.bias",
            "conv.weight",
            "fc.bias",
            "fc.weight"
        ]
    );
}

#[test]
fn load_state_dict_copies_every_value_in_place() {
    let (a, b) = (net(), net());
    a.bn.running_mean
        .copy_(&Tensor::from_vec(vec![0.5, -0.5], &[2]));
    let w_before = b.fc.weight.clone();
    let report = b.load_state_dict(&a.state_dict(), true).unwrap();
    assert!(report.is_empty());
    for (k, v) in a.state_dict() {
        assert_eq!(b.state_dict()[&k].to_vec_f64(), v.to_vec_f64(), "{k}");
    }
    // the handle taken before the load sees the new values: same tensor, written in place
    assert_eq!(w_before.to_vec::<f32>(), a.fc.weight.to_vec::<f32>());
    assert!(b.fc.weight.is_requires_grad() && b.fc.weight.is_leaf());
}

#[test]
fn an_optimizer_holding_the_parameters_trains_the_loaded_values() {
    let (a, b) = (net(), net());
    let mut opt = Sgd::new(b.fc.parameters(), 0.1);
    b.load_state_dict(&a.state_dict(), true).unwrap();
    let x = Tensor::randn(&[2, 8]);
    b.fc.forward(&x).sum().backward();
    let g = b.fc.weight.grad().unwrap().to_vec::<f32>();
    opt.step();
    // w ← w − 0.1·g (one fused multiply-add, as the optimizer does), from the loaded weights
    let expected: Vec<f32> =
        a.fc.weight
            .to_vec::<f32>()
            .iter()
            .zip(&g)
            .map(|(w, g)| (-0.1f32).mul_add(*g, *w))
            .collect();
    assert_eq!(b.fc.weight.to_vec::<f32>(), expected);
}

#[test]
fn values_are_converted_to_each_tensors_dtype() {
    let m = nn::Linear::new(2, 1);
    let mut sd = BTreeMap::new();
    sd.insert(
        "weight".to_string(),
        Tensor::from_vec_f64(vec![0.25, -1.5], &[1, 2]),
    );
    sd.insert("bias".to_string(), Tensor::from_vec_i64(vec![3], &[1]));
    m.load_state_dict(&sd, true).unwrap();
    assert_eq!(m.weight.dtype(), DType::F32);
    assert_eq!(m.weight.to_vec::<f32>(), vec![0.25, -1.5]);
    assert_eq!(m.bias.as_ref().unwrap().to_vec::<f32>(), vec![3.0]);
}

#[test]
fn strict_load_lists_missing_and_unexpected_keys_and_changes_nothing() {
    let (a, b) = (net(), net());
    let before = b.fc.weight.to_vec::<f32>();
    let mut sd = a.state_dict();
    sd.remove("conv.bias");
    sd.insert("head.weight".into(), Tensor::zeros(&[1]));
    let err = b.load_state_dict(&sd, true).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Format(_)), "{err:?}");
    assert!(msg.contains(r#"Missing key(s): "conv.bias""#), "{msg}");
    assert!(msg.contains(r#"Unexpected key(s): "head.weight""#), "{msg}");
    assert_eq!(b.fc.weight.to_vec::<f32>(), before);
}

#[test]
fn non_strict_load_reports_the_keys_and_loads_the_rest() {
    let (a, b) = (net(), net());
    let conv_bias = b.conv.bias.as_ref().unwrap().to_vec::<f32>();
    let mut sd = a.state_dict();
    sd.remove("conv.bias");
    sd.insert("head.weight".into(), Tensor::zeros(&[1]));
    let report = b.load_state_dict(&sd, false).unwrap();
    assert_eq!(report.missing_keys, ["conv.bias"]);
    assert_eq!(report.unexpected_keys, ["head.weight"]);
    assert_eq!(b.fc.weight.to_vec::<f32>(), a.fc.weight.to_vec::<f32>());
    assert_eq!(b.conv.bias.as_ref().unwrap().to_vec::<f32>(), conv_bias);
}

#[test]
fn a_shape_mismatch_is_an_error_naming_the_key_and_both_shapes_even_when_not_strict() {
    let b = net();
    let mut sd = b.state_dict();
    sd.insert("fc.weight".into(), Tensor::zeros(&[3, 9]));
    for strict in [true, false] {
        let err = b.load_state_dict(&sd, strict).unwrap_err();
        assert!(matches!(err, Error::Shape(_)), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains("fc.weight") && msg.contains("[3, 9]") && msg.contains("[3, 8]"),
            "{msg}"
        );
    }
}

#[test]
fn a_model_round_trips_through_a_safetensors_file() {
    let dir = scratch("roundtrip");
    let path = dir.join("net.safetensors");
    let (a, b) = (net(), net());
    a.bn.num_batches_tracked
        .copy_(&Tensor::from_vec_i64(vec![5], &[]));
    a.save_safetensors(&path).unwrap();
    assert!(b.load_safetensors(&path, true).unwrap().is_empty());
    let x = Tensor::randn(&[1, 1, 4, 4]);
    a.eval();
    b.eval();
    let f = |m: &Net| {
        m.fc.forward(&m.bn.forward(&m.conv.forward(&x)).reshape([1, 8]))
    };
    assert_eq!(f(&a).to_vec::<f32>(), f(&b).to_vec::<f32>());
    assert_eq!(b.bn.num_batches_tracked.item(), 5.0);
    assert_eq!(b.bn.num_batches_tracked.dtype(), DType::I64);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn safetensors_keeps_dtypes_values_and_non_contiguous_layouts() {
    let mut m = BTreeMap::new();
    let t = Tensor::from_vec_f64((0..6).map(f64::from).collect(), &[2, 3]).t();
    m.insert("t".to_string(), t.clone());
    m.insert(
        "i".to_string(),
        Tensor::from_vec_i64(vec![-3, i64::MAX], &[2]),
    );
    m.insert(
        "b".to_string(),
        Tensor::from_values(vec![true, false, true], &[3]),
    );
    m.insert("s".to_string(), Tensor::scalar(2.5));
    let back = safetensors::load_bytes(&safetensors::to_bytes(&m).unwrap()).unwrap();
    assert_eq!(back["t"].shape(), &[3, 2]);
    assert_eq!(
        back["t"].to_vec::<f64>(),
        vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]
    );
    assert_eq!(back["i"].to_vec::<i64>(), vec![-3, i64::MAX]);
    assert_eq!(back["b"].to_vec::<bool>(), vec![true, false, true]);
    assert_eq!(back["s"].shape(), &[] as &[usize]);
    assert_eq!(back["s"].item(), 2.5);
}

#[test]
fn metadata_round_trips() {
    let mut meta = BTreeMap::new();
    meta.insert("format".to_string(), "pt".to_string());
    let t = Tensor::zeros(&[1]);
    let bytes = safetensors::to_bytes_with_metadata([("x", &t)], &meta).unwrap();
    let (tensors, back) = safetensors::load_bytes_with_metadata(&bytes).unwrap();
    assert_eq!(back, meta);
    assert_eq!(tensors.len(), 1);
}

#[test]
fn a_name_given_twice_is_an_error() {
    let t = Tensor::zeros(&[1]);
    let err = safetensors::to_bytes([("x", &t), ("x", &t)]).unwrap_err();
    assert!(err.to_string().contains("'x' is given twice"), "{err}");
}

#[test]
fn a_failed_save_leaves_the_previous_checkpoint_intact() {
    let dir = scratch("failed-save");
    let path = dir.join("net.safetensors");
    let a = net();
    a.save_safetensors(&path).unwrap();
    let before = fs::read(&path).unwrap();
    let t = Tensor::zeros(&[1]);
    assert!(safetensors::save([("x", &t), ("x", &t)], &path).is_err());
    assert_eq!(fs::read(&path).unwrap(), before);
    assert_eq!(
        fs::read_dir(&dir).unwrap().count(),
        1,
        "a temporary file was left behind"
    );
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn loading_a_missing_file_is_an_io_error() {
    let err = safetensors::load("/nonexistent/dir/model.safetensors").unwrap_err();
    assert!(matches!(err, Error::Io(_)), "{err:?}");
}
