//! Reading checkpoints written by real PyTorch (`torch.save` zip files and
//! `safetensors.torch.save_file`), against the expected values the same script wrote.
//! Fixtures: tests/fixtures/ckpt_*, made by scripts/make_checkpoint_fixtures.py.

use std::collections::BTreeMap;

use tapegrad::io::{safetensors, torch};
use tapegrad::nn::{self, Module};
use tapegrad::prelude::*;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn fixture(name: &str) -> String {
    format!("{DIR}/{name}")
}

fn expected(name: &str) -> BTreeMap<String, Tensor> {
    safetensors::load(fixture(name)).unwrap_or_else(|e| {
        panic!("{name}: {e} (regenerate with scripts/make_checkpoint_fixtures.py)")
    })
}

/// Same keys, and for each the same shape, dtype and values (exactly).
#[track_caller]
fn assert_same(actual: &BTreeMap<String, Tensor>, expected: &BTreeMap<String, Tensor>) {
    let keys = |m: &BTreeMap<String, Tensor>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(actual), keys(expected));
    for (k, e) in expected {
        let a = &actual[k];
        assert_eq!(a.shape(), e.shape(), "{k}");
        assert_eq!(a.dtype(), e.dtype(), "{k}");
        assert_eq!(a.to_vec_f64(), e.to_vec_f64(), "{k}");
    }
}

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

#[test]
fn a_torch_state_dict_loads_with_its_values() {
    let sd = torch::load(fixture("ckpt_net.pt")).unwrap();
    assert_same(&sd, &expected("ckpt_net.safetensors"));
    assert_eq!(sd["bn.num_batches_tracked"].dtype(), DType::I64);
    assert_eq!(sd["bn.num_batches_tracked"].item(), 2.0);
}

#[test]
fn a_torch_state_dict_loads_strictly_into_the_equivalent_model_and_back() {
    let m = net();
    let sd = torch::load(fixture("ckpt_net.pt")).unwrap();
    assert!(m.load_state_dict(&sd, true).unwrap().is_empty());
    assert_same(&m.state_dict(), &sd);
}

#[test]
fn a_safetensors_file_from_pytorch_loads_into_the_model() {
    let m = net();
    assert!(m
        .load_safetensors(fixture("ckpt_net.safetensors"), true)
        .unwrap()
        .is_empty());
    assert_same(&m.state_dict(), &expected("ckpt_net.safetensors"));
}

#[test]
fn tapegrad_writes_the_same_safetensors_bytes_as_pytorch() {
    // safetensors.torch.save_file wrote this file from the PyTorch model; the same state dict
    // saved by tapegrad gives the identical file, so PyTorch reads tapegrad's files
    let m = net();
    m.load_safetensors(fixture("ckpt_net.safetensors"), true)
        .unwrap();
    let ours = safetensors::to_bytes(&m.state_dict()).unwrap();
    assert_eq!(
        ours,
        std::fs::read(fixture("ckpt_net.safetensors")).unwrap()
    );
}

#[test]
fn every_dtype_loads_with_half_precision_as_f32_and_small_ints_as_i64() {
    let sd = torch::load(fixture("ckpt_dtypes.pt")).unwrap();
    assert_same(&sd, &expected("ckpt_dtypes.safetensors"));
    assert_eq!(sd["f16"].dtype(), DType::F32);
    assert_eq!(sd["bool"].dtype(), DType::Bool);
    assert_eq!(sd["u8"].to_vec::<i64>(), vec![0, 200, 255]);
}

#[test]
fn views_offsets_strides_and_shared_storages_are_rebuilt() {
    let sd = torch::load(fixture("ckpt_views.pt")).unwrap();
    assert_same(&sd, &expected("ckpt_views.safetensors"));
    // x = arange(24).reshape(4, 6); x[1:, ::2] starts at element 6 with strides (6, 2)
    assert_eq!(sd["strided_slice"].to_vec::<f32>()[..3], [6.0, 8.0, 10.0]);
    assert_eq!(sd["expanded"].shape(), &[4, 3]);
    assert_eq!(sd["empty"].shape(), &[0, 3]);
}

#[test]
fn the_explicit_zip_format_flag_gives_the_same_file_format() {
    let sd = torch::load(fixture("ckpt_explicit_zip.pt")).unwrap();
    assert_same(&sd, &expected("ckpt_views.safetensors"));
}

#[test]
fn a_nested_checkpoint_gives_its_state_dicts_and_plain_values() {
    let ckpt = torch::load_value(fixture("ckpt_nested.pt")).unwrap();
    let exp = expected("ckpt_nested_optim.safetensors");
    let model = ckpt.state_dict("model").unwrap();
    for (k, t) in &model {
        assert_eq!(
            t.to_vec_f64(),
            exp[&format!("model.{k}")].to_vec_f64(),
            "{k}"
        );
    }
    assert_eq!(ckpt.get("epoch").unwrap().as_int(), Some(3));
    assert_eq!(ckpt.get("loss").unwrap().as_float(), Some(0.25));
    assert_eq!(ckpt.get("name").unwrap().as_str(), Some("run-1"));
    assert_eq!(ckpt.get("big").unwrap().as_int(), Some(1 << 40));
    assert_eq!(ckpt.get("neg").unwrap().as_int(), Some(-7));
    assert_eq!(
        ckpt.get("flags").unwrap().to_string(),
        "[True, False, None]"
    );
    assert_eq!(ckpt.get("shape").unwrap().to_string(), "(2, 3)");
    // optimizer["state"][i]["exp_avg"], keyed by parameter index as in PyTorch
    let state = ckpt.get("optimizer").unwrap().get("state").unwrap();
    let torch::Value::Dict(per_param) = state else {
        panic!("{state}")
    };
    assert_eq!(per_param.len(), 6);
    for (i, st) in per_param {
        let i = i.as_int().unwrap();
        for name in ["exp_avg", "exp_avg_sq", "step"] {
            let t = st.get(name).and_then(|v| v.as_tensor()).unwrap();
            assert_eq!(
                t.to_vec_f64(),
                exp[&format!("state.{i}.{name}")].to_vec_f64()
            );
        }
    }
    let groups = ckpt.get("optimizer").unwrap().get("param_groups").unwrap();
    let torch::Value::List(groups) = groups else {
        panic!("{groups}")
    };
    assert_eq!(groups[0].get("lr").unwrap().as_float(), Some(1e-3));
    assert_eq!(groups[0].get("betas").unwrap().to_string(), "(0.9, 0.999)");
}

#[test]
fn load_of_a_nested_checkpoint_points_at_load_value() {
    let err = torch::load(fixture("ckpt_nested.pt"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("'model'") && err.contains("load_value"),
        "{err}"
    );
    let ckpt = torch::load_value(fixture("ckpt_nested.pt")).unwrap();
    let err = ckpt.state_dict("state_dict").unwrap_err().to_string();
    assert!(
        err.contains("no key 'state_dict'") && err.contains("'optimizer'"),
        "{err}"
    );
}

#[test]
fn a_safetensors_file_is_not_a_torch_checkpoint() {
    let err = torch::load(fixture("ckpt_net.safetensors")).unwrap_err();
    assert!(err.to_string().contains("not a zip checkpoint"), "{err}");
}
