//! `models::gpt2` against the real `transformers`: a tiny randomly initialised GPT-2 (2 blocks,
//! 2 heads, width 32, vocabulary 100), its logits and its greedy generation.
//!
//! Fixtures: `tests/fixtures/gpt2_tiny.safetensors` (the `GPT2LMHeadModel` state dict with the
//! Hugging Face key names) and `tests/fixtures/gpt2_tiny.json` (config, input, logits,
//! generation), made by `scripts/make_gpt2_fixtures.py`.

use std::collections::BTreeMap;

use serde_json::Value;
use tapegrad::models::gpt2::{GPT2Config, GPT2LMHeadModel, KvCache};
use tapegrad::prelude::*;

const FIXTURE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn state_dict() -> BTreeMap<String, Tensor> {
    tapegrad::io::safetensors::load(format!("{FIXTURE_DIR}/gpt2_tiny.safetensors"))
        .expect("gpt2_tiny.safetensors loads (see scripts/make_gpt2_fixtures.py)")
}

fn expected() -> Value {
    let text = std::fs::read_to_string(format!("{FIXTURE_DIR}/gpt2_tiny.json"))
        .expect("tests/fixtures/gpt2_tiny.json is missing (see scripts/make_gpt2_fixtures.py)");
    serde_json::from_str(&text).expect("gpt2_tiny.json is not valid JSON")
}

fn ids(v: &Value) -> Vec<i64> {
    v.as_array()
        .expect("an id list")
        .iter()
        .map(|x| x.as_i64().expect("an integer id"))
        .collect()
}

fn model() -> GPT2LMHeadModel {
    let exp = expected();
    let config = GPT2Config::from_json(&exp["config"].to_string()).expect("config parses");
    GPT2LMHeadModel::from_state_dict(&config, &state_dict()).expect("the fixture loads strictly")
}

fn input() -> Tensor {
    let exp = expected();
    let rows = exp["input_ids"].as_array().unwrap();
    let flat: Vec<i64> = rows.iter().flat_map(ids).collect();
    Tensor::from_vec_i64(flat, &[rows.len(), rows[0].as_array().unwrap().len()])
}

#[test]
fn parameter_names_are_the_hugging_face_keys() {
    let config = GPT2Config::from_json(&expected()["config"].to_string()).unwrap();
    let names: Vec<String> = GPT2LMHeadModel::new(&config)
        .state_dict()
        .into_keys()
        .collect();
    let fixture: Vec<String> = state_dict().into_keys().collect();
    assert_eq!(names, fixture);
}

#[test]
fn logits_match_transformers() {
    let exp = expected();
    let gpt = model();
    let _off = no_grad();
    let logits = gpt.forward(&input(), None);
    let shape: Vec<usize> = exp["logits_shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    assert_eq!(logits.shape(), shape.as_slice());
    let want: Vec<f64> = exp["logits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let got = logits.to_vec_f64();
    let err = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    let scale = want.iter().map(|v| v.abs()).fold(0.0, f64::max);
    eprintln!("gpt2 logits: max abs error {err:.3e} (largest logit {scale:.2})");
    assert!(err <= 1e-4, "max abs error {err:e}");
}

#[test]
fn greedy_generation_matches_transformers_with_and_without_cache() {
    let exp = expected();
    let gpt = model();
    let prompt = ids(&exp["prompt"]);
    let want = ids(&exp["generated"]);
    let new = want.len() - prompt.len();
    let prompt = Tensor::from_vec_i64(prompt.clone(), &[1, prompt.len()]);
    let cached = gpt.generate_greedy(&prompt, new, true).to_vec::<i64>();
    let uncached = gpt.generate_greedy(&prompt, new, false).to_vec::<i64>();
    assert_eq!(cached, uncached);
    assert_eq!(cached, want);
}

#[test]
fn a_cached_chunk_gives_the_logits_of_the_full_sequence() {
    // prefill 3 tokens, then 4 at once (an explicit offset causal mask), then 1 (no mask)
    let gpt = model();
    let x = input();
    let _off = no_grad();
    let full = gpt.forward(&x, None);
    let mut cache = KvCache::new();
    let parts = [(0, 3), (3, 4), (7, 1)];
    let chunks: Vec<Tensor> = parts
        .iter()
        .map(|&(s, n)| gpt.forward(&x.narrow(1, s, n), Some(&mut cache)))
        .collect();
    assert_eq!(cache.len(), 8);
    let stitched = Tensor::cat(&chunks.iter().collect::<Vec<_>>(), 1);
    stitched.assert_close(&full.narrow(1, 0, 8), 1e-5, 1e-5);
}

#[test]
fn loading_reports_missing_and_misshapen_weights() {
    let config = GPT2Config::from_json(&expected()["config"].to_string()).unwrap();
    let mut sd = state_dict();
    sd.remove("transformer.h.1.mlp.c_fc.bias");
    let err = GPT2LMHeadModel::from_state_dict(&config, &sd)
        .err()
        .expect("a missing key is an error");
    assert!(err.to_string().contains("h.1.mlp.c_fc.bias"), "{err}");

    let mut sd = state_dict();
    sd.insert("transformer.wpe.weight".into(), Tensor::zeros(&[8, 32]));
    let err = GPT2LMHeadModel::from_state_dict(&config, &sd)
        .err()
        .expect("a wrong shape is an error");
    assert!(err.to_string().contains("wpe.weight"), "{err}");
}

#[test]
fn keys_without_the_transformer_prefix_load_too() {
    // a GPT2Model checkpoint, and the old causal-mask buffers, which are ignored
    let config = GPT2Config::from_json(&expected()["config"].to_string()).unwrap();
    let mut sd: BTreeMap<String, Tensor> = state_dict()
        .into_iter()
        .map(|(k, v)| (k.trim_start_matches("transformer.").to_owned(), v))
        .collect();
    sd.insert("h.0.attn.bias".into(), Tensor::ones(&[1, 1, 64, 64]));
    let gpt = GPT2LMHeadModel::from_state_dict(&config, &sd).expect("loads");
    let _off = no_grad();
    gpt.forward(&input(), None)
        .assert_close(&model().forward(&input(), None), 0.0, 0.0);
}

#[test]
#[should_panic(expected = "GPT2LMHeadModel::generate_greedy: a prompt of 5 tokens plus 60 new")]
fn generation_past_n_positions_panics() {
    let prompt = Tensor::from_vec_i64(vec![1, 2, 3, 4, 5], &[1, 5]);
    model().generate_greedy(&prompt, 60, true);
}

#[test]
#[should_panic(expected = "GPT2Model: input_ids must be int64 of shape [batch, seq_len]")]
fn float_ids_panic() {
    model().forward(&Tensor::zeros(&[1, 3]), None);
}
