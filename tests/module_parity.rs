//! Parity with PyTorch at the module level: every layer of `tapegrad::nn`, built like its PyTorch
//! twin, loaded with the PyTorch module's state_dict by name, must give the same outputs, the same
//! gradients with respect to its inputs and every parameter, and the same buffers after the call
//! (BatchNorm's running statistics).
//!
//! The fixtures, `tests/fixtures/modules.safetensors` and `tests/fixtures/modules.json`, are
//! committed and are all this test reads. Regenerate them, after adding or changing a case, with
//!
//! ```text
//! /root/torch-venv/bin/python scripts/make_module_fixtures.py
//! ```
//!
//! The names of the parameters and buffers (and their order) must equal PyTorch's: loading goes
//! by name, so a renamed parameter fails here. References are computed in f64 by PyTorch from the
//! f32 inputs and parameters and rounded to f32 once; tapegrad runs in f32.

use std::collections::HashMap;
use std::rc::Rc;

use safetensors::{Dtype, SafeTensors};
use serde_json::Value;
use tapegrad::nn::functional::Conv2dOpts;
use tapegrad::nn::{self, Activation, Forward, Module};
use tapegrad::prelude::*;

/// Relative tolerance of f32 results against references rounded from f64.
const RTOL: f64 = 1e-5;
/// Absolute floor, relative to the largest element of the reference tensor: an f32 result that
/// sums terms of both signs (a matmul row, a gradient summed over time steps) carries an error of
/// a few ulps of the terms, not of the (possibly near-zero) sum.
const ATOL: f64 = 1e-5;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/modules");

type Inputs = HashMap<String, Tensor>;

/// The call a case makes on its module: inputs by name → outputs in PyTorch's order.
type Call = Box<dyn Fn(&Inputs) -> Vec<Tensor>>;

/// A module and the call the case makes on it (the PyTorch call in `modules.json`).
struct Built {
    module: Rc<dyn Module>,
    run: Call,
}

fn built<M: Module + 'static>(m: M, run: impl Fn(&M, &Inputs) -> Vec<Tensor> + 'static) -> Built {
    let m = Rc::new(m);
    let module: Rc<dyn Module> = m.clone();
    Built {
        module,
        run: Box::new(move |t| run(&m, t)),
    }
}

/// `m(x)`.
fn plain<M: Module + Forward + 'static>(m: M) -> Built {
    built(m, |m, t| vec![m.forward(&t["x"])])
}

/// `m(x)` or `m(x, h0)` → `[output, h_n]`.
fn rnn_call(m: &nn::RNN, t: &Inputs) -> Vec<Tensor> {
    let (o, h) = m.forward(&t["x"], t.get("h0"));
    vec![o, h]
}

fn gru_call(m: &nn::GRU, t: &Inputs) -> Vec<Tensor> {
    let (o, h) = m.forward(&t["x"], t.get("h0"));
    vec![o, h]
}

/// `m(x)` or `m(x, (h0, c0))` → `[output, h_n, c_n]`.
fn lstm_call(m: &nn::LSTM, t: &Inputs) -> Vec<Tensor> {
    let (o, (h, c)) = m.forward(&t["x"], t.get("h0").map(|h| (h, &t["c0"])));
    vec![o, h, c]
}

/// `m(q, k, v, key_padding_mask, attn_mask, need_weights)`, with `q = k = v = x` (the same
/// tensor) for self-attention.
fn mha(m: nn::MultiheadAttention, need_weights: bool) -> Built {
    built(m, move |m, t| {
        let (q, k, v) = match t.get("x") {
            Some(x) => (x, x, x),
            None => (&t["q"], &t["k"], &t["v"]),
        };
        let (o, w) = m.forward(
            q,
            k,
            v,
            t.get("key_padding_mask"),
            t.get("attn_mask"),
            need_weights,
        );
        std::iter::once(o).chain(w).collect()
    })
}

fn encoder_layer(m: nn::TransformerEncoderLayer) -> Built {
    built(m, |m, t| {
        vec![m.forward(&t["x"], t.get("attn_mask"), t.get("key_padding_mask"))]
    })
}

/// `nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0)`.
fn enc8() -> nn::TransformerEncoderLayer {
    nn::TransformerEncoderLayer::new(8, 2)
        .dim_feedforward(16)
        .dropout(0.0)
}

/// Case name → the tapegrad module matching the PyTorch constructor in `modules.json`.
fn build(name: &str) -> Built {
    match name {
        "linear" => plain(nn::Linear::new(5, 3)),
        "linear_nobias_3d" => plain(nn::Linear::with_bias(5, 3, false)),
        "conv1d" => plain(nn::Conv1d {
            stride: 2,
            padding: 1,
            ..nn::Conv1d::new(4, 6, 3)
        }),
        "conv2d" => plain(nn::Conv2d::new(3, 4, 3).stride(2).padding(1)),
        "conv2d_groups_dilation" => plain(nn::Conv2d::with_options(
            4,
            6,
            (3, 2),
            Conv2dOpts::default().dilation(2).groups(2),
            false,
        )),
        "conv_transpose2d" => plain(nn::ConvTranspose2d {
            output_padding: (1, 1),
            ..nn::ConvTranspose2d::new(4, 3, 3, 2, 1)
        }),
        "max_pool2d" => plain(nn::MaxPool2d::new(2)),
        "max_pool2d_stride_pad" => plain(nn::MaxPool2d {
            stride: (2, 2),
            padding: (1, 1),
            ..nn::MaxPool2d::new(3)
        }),
        "avg_pool2d" => plain(nn::AvgPool2d::new(2)),
        "adaptive_avg_pool2d" => plain(nn::AdaptiveAvgPool2d::new((3, 2))),
        "flatten" => plain(nn::Flatten::new()),
        "batch_norm1d_train" | "batch_norm1d_train_3d" | "batch_norm1d_eval" => {
            plain(nn::BatchNorm1d::new(3))
        }
        "batch_norm2d_train" | "batch_norm2d_eval" => plain(nn::BatchNorm2d::new(3)),
        "layer_norm" => plain(nn::LayerNorm::new(&[3, 4])),
        "group_norm" => plain(nn::GroupNorm::new(2, 4)),
        "embedding" => plain(nn::Embedding::new(10, 4)),
        "embedding_padding_idx" => plain(nn::Embedding {
            padding_idx: Some(0),
            ..nn::Embedding::new(10, 4)
        }),
        "dropout_eval" => plain(nn::Dropout::new(0.5)),
        "relu" => plain(nn::ReLU),
        "leaky_relu" => plain(nn::LeakyReLU {
            negative_slope: 0.2,
        }),
        "sigmoid" => plain(nn::Sigmoid),
        "tanh" => plain(nn::Tanh),
        "silu" => plain(nn::SiLU),
        "softplus" => plain(nn::Softplus),
        "gelu" => plain(nn::GELU::default()),
        "gelu_tanh" => plain(nn::GELU {
            tanh_approximation: true,
        }),
        "identity" => plain(nn::Identity),
        "softmax" => plain(nn::Softmax { dim: 1 }),
        "log_softmax" => plain(nn::LogSoftmax { dim: -1 }),
        "sequential_mlp" => plain(
            nn::Sequential::new()
                .add(nn::Linear::new(4, 8))
                .add(nn::Tanh)
                .add(nn::Linear::new(8, 3)),
        ),
        "sequential_cnn" => plain(
            nn::Sequential::new()
                .add(nn::Conv2d::new(2, 4, 3).padding(1))
                .add(nn::BatchNorm2d::new(4))
                .add(nn::ReLU)
                .add(nn::MaxPool2d::new(2))
                .add(nn::Flatten::new())
                .add(nn::Linear::new(36, 5)),
        ),
        "rnn_tanh" => built(nn::RNN::new(3, 4), rnn_call),
        "rnn_relu_2layers_h0" => built(nn::RNN::new(3, 4).num_layers(2).relu(true), rnn_call),
        "lstm" => built(nn::LSTM::new(3, 4), lstm_call),
        "lstm_2layers_bidirectional" => built(
            nn::LSTM::new(3, 4).num_layers(2).bidirectional(true),
            lstm_call,
        ),
        "lstm_batch_first_nobias" => {
            built(nn::LSTM::new(3, 4).bias(false).batch_first(true), lstm_call)
        }
        "lstm_unbatched" => built(nn::LSTM::new(3, 2).num_layers(2), lstm_call),
        "gru" => built(nn::GRU::new(3, 4), gru_call),
        "gru_2layers_bidirectional_batch_first" => built(
            nn::GRU::new(3, 4)
                .num_layers(2)
                .bidirectional(true)
                .batch_first(true),
            gru_call,
        ),
        "rnn_cell" => built(nn::RNNCell::new(3, 4, true), |m, t| {
            vec![m.forward(&t["x"], t.get("h0"))]
        }),
        "lstm_cell" => built(nn::LSTMCell::new(3, 4, true), |m, t| {
            let (h, c) = m.forward(&t["x"], Some((&t["h0"], &t["c0"])));
            vec![h, c]
        }),
        "gru_cell" => built(nn::GRUCell::new(3, 4, true), |m, t| {
            vec![m.forward(&t["x"], t.get("h0"))]
        }),
        "mha_self_weights" => mha(nn::MultiheadAttention::new(8, 2), true),
        "mha_masks_batch_first" => mha(nn::MultiheadAttention::new(8, 2).batch_first(true), false),
        "mha_masks_weights" => mha(nn::MultiheadAttention::new(8, 4), true),
        "mha_cross_float_mask" => mha(nn::MultiheadAttention::new(6, 3), true),
        "mha_unbatched_nobias" => mha(nn::MultiheadAttention::with_bias(6, 2, false), false),
        "encoder_layer_post_norm_relu" => encoder_layer(enc8()),
        "encoder_layer_pre_norm_gelu_masks" => encoder_layer(
            enc8()
                .activation(Activation::Gelu)
                .batch_first(true)
                .norm_first(true)
                .layer_norm_eps(1e-6),
        ),
        "encoder_layer_post_norm_gelu_masks" => encoder_layer(enc8().activation(Activation::Gelu)),
        "encoder_layer_eval" => {
            encoder_layer(nn::TransformerEncoderLayer::new(8, 2).dim_feedforward(16))
        }
        "encoder_2layers_norm" => built(
            nn::TransformerEncoder::new(&enc8().norm_first(true), 2).norm(nn::LayerNorm::new(&[8])),
            |m, t| vec![m.forward(&t["x"], t.get("attn_mask"), None)],
        ),
        _ => panic!("modules.json has case '{name}' that this test does not map"),
    }
}

/// A stored tensor in its own dtype (f32, i64 or bool).
fn read(st: &SafeTensors, key: &str) -> Tensor {
    let view = st
        .tensor(key)
        .unwrap_or_else(|e| panic!("modules.safetensors has no '{key}': {e}"));
    let (data, shape) = (view.data(), view.shape());
    match view.dtype() {
        Dtype::F32 => Tensor::from_vec(
            data.chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                .collect(),
            shape,
        ),
        Dtype::I64 => Tensor::from_vec_i64(
            data.chunks_exact(8)
                .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
                .collect(),
            shape,
        ),
        Dtype::BOOL => Tensor::from_values(data.iter().map(|&b| b != 0).collect(), shape),
        d => panic!("'{key}' has dtype {d:?}, which this test does not read"),
    }
}

/// Copies the state_dict into the module's parameters and buffers by name (until
/// `Module::load_state_dict` lands); the names must be PyTorch's, in PyTorch's order.
fn load_state(m: &dyn Module, st: &SafeTensors, case: &Value, errors: &mut Vec<String>) {
    let name = case["name"].as_str().unwrap();
    let names = |k: &str| -> Vec<String> {
        case[k]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    let ours = |v: Vec<(String, Tensor)>| v.into_iter().map(|(n, _)| n).collect::<Vec<_>>();
    for (kind, want, got) in [
        ("parameters", names("params"), ours(m.named_parameters())),
        ("buffers", names("buffers"), ours(m.named_buffers())),
    ] {
        if want != got {
            errors.push(format!("{name}: {kind} {got:?}, PyTorch {want:?}"));
        }
    }
    let _g = no_grad();
    for (n, t) in m.named_parameters().into_iter().chain(m.named_buffers()) {
        let key = format!("{name}/state/{n}");
        if st.tensor(&key).is_ok() {
            t.assign(&read(st, &key));
        }
    }
}

/// The worst element of `got` against `want`, if beyond the tolerance.
fn compare(what: &str, got: &Tensor, want: &Tensor) -> Option<String> {
    if got.shape() != want.shape() || got.dtype() != want.dtype() {
        return Some(format!(
            "{what}: shape {:?} ({}), PyTorch {:?} ({})",
            got.shape(),
            got.dtype(),
            want.shape(),
            want.dtype()
        ));
    }
    let (g, w) = (got.to_vec_f64(), want.to_vec_f64());
    let scale = w.iter().fold(1f64, |m, v| m.max(v.abs()));
    let (mut worst, mut at) = (0.0, 0);
    for (i, (a, b)) in g.iter().zip(&w).enumerate() {
        let excess = if a.is_nan() != b.is_nan() {
            f64::INFINITY
        } else if a.is_nan() {
            0.0
        } else {
            (a - b).abs() - (RTOL * b.abs() + ATOL * scale)
        };
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

fn run_case(st: &SafeTensors, case: &Value, errors: &mut Vec<String>) {
    let name = case["name"].as_str().unwrap();
    let b = build(name);
    load_state(&*b.module, st, case, errors);
    b.module
        .set_training(case["train"].as_bool().expect("train flag"));
    let inputs: Inputs = case["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            let n = v[0].as_str().unwrap();
            let t = read(st, &format!("{name}/in/{n}"));
            let t = if t.dtype() == DType::F32 {
                t.requires_grad()
            } else {
                t
            };
            (n.to_owned(), t)
        })
        .collect();
    let outs = (b.run)(&inputs);
    let n_out = case["outputs"].as_u64().unwrap() as usize;
    if outs.len() != n_out {
        errors.push(format!("{name}: {} outputs, PyTorch {n_out}", outs.len()));
        return;
    }
    let mut loss: Option<Tensor> = None;
    for (i, o) in outs.iter().enumerate() {
        errors.extend(compare(
            &format!("{name} output {i}"),
            o,
            &read(st, &format!("{name}/out/{i}")),
        ));
        let term = (o * read(st, &format!("{name}/seed/{i}"))).sum();
        loss = Some(match loss {
            None => term,
            Some(l) => l + term,
        });
    }
    loss.expect("an output").backward();
    for (n, t) in &inputs {
        if t.dtype() == DType::F32 {
            let got = t.grad().expect("a float input gets a gradient");
            errors.extend(compare(
                &format!("{name} grad of input {n}"),
                &got,
                &read(st, &format!("{name}/grad/in/{n}")),
            ));
        }
    }
    for (n, p) in b.module.named_parameters() {
        let key = format!("{name}/grad/param/{n}");
        if st.tensor(&key).is_err() {
            continue; // a naming difference, reported by load_state
        }
        let want = read(st, &key);
        let got = p.grad().unwrap_or_else(|| Tensor::zeros(want.shape()));
        errors.extend(compare(&format!("{name} grad of {n}"), &got, &want));
    }
    for (n, t) in b.module.named_buffers() {
        let key = format!("{name}/after/{n}");
        if st.tensor(&key).is_ok() {
            errors.extend(compare(
                &format!("{name} buffer {n} after the call"),
                &t,
                &read(st, &key),
            ));
        }
    }
}

#[test]
fn every_layer_matches_pytorch() {
    let json = std::fs::read_to_string(format!("{FIXTURES}.json"))
        .expect("tests/fixtures/modules.json is missing (see scripts/make_module_fixtures.py)");
    let doc: Value = serde_json::from_str(&json).expect("modules.json is not valid JSON");
    let bytes = std::fs::read(format!("{FIXTURES}.safetensors"))
        .expect("tests/fixtures/modules.safetensors is missing");
    let st = SafeTensors::deserialize(&bytes).expect("modules.safetensors is not valid");
    let cases = doc["cases"].as_array().expect("a case list");
    assert!(cases.len() >= 50, "expected the full case list");
    let mut errors = Vec::new();
    for case in cases {
        run_case(&st, case, &mut errors);
    }
    assert!(
        errors.is_empty(),
        "differences from PyTorch:\n{}",
        errors.join("\n")
    );
}
