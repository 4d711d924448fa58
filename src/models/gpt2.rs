//! GPT-2, like `transformers.GPT2LMHeadModel`: a stack of pre-LayerNorm causal decoder blocks
//! with learned positions, a language-model head tied to the token embeddings, and greedy
//! generation with a key / value cache.
//!
//! Parameter names are Hugging Face's (`transformer.wte.weight`, `transformer.h.0.attn.c_attn.weight`,
//! …). GPT-2's projections are `Conv1D`s: their weights are stored `[in, out]`, the transpose of
//! a [`Linear`](crate::nn::Linear)'s, and [`Conv1D`] keeps that layout so checkpoints load as
//! they are.

use std::collections::BTreeMap;
use std::panic::Location;
use std::path::Path;

use super::{check_ids, merge_heads, split_heads, Activation, JsonConfig};
use crate::nn::functional as F;
use crate::nn::{Embedding, Forward, LayerNorm, Module};
use crate::tensor::{DType, Tensor};
use crate::Result;

/// The shape of a GPT-2 model, as in a Hugging Face `GPT2Config` (`config.json`).
#[derive(Clone, Debug, PartialEq)]
pub struct GPT2Config {
    /// Number of tokens in the vocabulary.
    pub vocab_size: usize,
    /// Longest sequence (prompt plus generated tokens) the position embeddings cover.
    pub n_positions: usize,
    /// Width of the hidden states.
    pub n_embd: usize,
    /// Number of blocks.
    pub n_layer: usize,
    /// Attention heads per block (`n_embd` must be a multiple).
    pub n_head: usize,
    /// The LayerNorms' epsilon.
    pub layer_norm_epsilon: f64,
    /// The MLP activation (`activation_function`, GPT-2's is `gelu_new`).
    pub activation_function: Activation,
}

impl GPT2Config {
    /// Reads a Hugging Face `config.json` text (missing keys take `GPT2Config`'s defaults, those
    /// of the 124M-parameter GPT-2).
    ///
    /// ```
    /// use tapegrad::models::gpt2::GPT2Config;
    /// let c = GPT2Config::from_json(r#"{"n_embd": 32, "n_head": 2, "n_layer": 2}"#).unwrap();
    /// assert_eq!((c.vocab_size, c.n_positions), (50257, 1024));
    /// assert!(GPT2Config::from_json(r#"{"n_embd": 32, "n_head": 3}"#).is_err());
    /// ```
    pub fn from_json(text: &str) -> Result<GPT2Config> {
        let j = JsonConfig::parse(text)?;
        let c = GPT2Config {
            vocab_size: j.usize_or("vocab_size", 50257)?,
            n_positions: j.usize_or("n_positions", 1024)?,
            n_embd: j.usize_or("n_embd", 768)?,
            n_layer: j.usize_or("n_layer", 12)?,
            n_head: j.usize_or("n_head", 12)?,
            layer_norm_epsilon: j.f64_or("layer_norm_epsilon", 1e-5)?,
            activation_function: j.activation_or("activation_function", Activation::GeluTanh)?,
        };
        if c.n_head == 0 || c.n_embd % c.n_head != 0 {
            return Err(crate::Error::Format(format!(
                "config.json: n_embd {} is not a multiple of n_head {}",
                c.n_embd, c.n_head
            )));
        }
        Ok(c)
    }

    /// Reads `config.json` from a file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<GPT2Config> {
        GPT2Config::from_json(&std::fs::read_to_string(path)?)
    }
}

/// GPT-2's projection, `y = x W + b` with `W` stored `[in, out]` (Hugging Face's `Conv1D`,
/// a linear layer despite the name).
#[derive(crate::nn::Module)]
pub struct Conv1D {
    /// `[in_features, out_features]`.
    pub weight: Tensor,
    /// `[out_features]`.
    pub bias: Tensor,
}

impl Conv1D {
    /// A layer with N(0, 0.02) weights and zero bias, as GPT-2 initialises it.
    pub fn new(in_features: usize, out_features: usize) -> Conv1D {
        Conv1D {
            weight: Tensor::normal(&[in_features, out_features], 0.0, 0.02).requires_grad(),
            bias: Tensor::zeros(&[out_features]).requires_grad(),
        }
    }
}

impl Forward for Conv1D {
    /// `x W + b` over the last dim of `x` (any leading dims, as one matrix product).
    ///
    /// # Panics
    /// If the last dim of `x` is not the weight's first.
    #[track_caller]
    fn forward(&self, x: &Tensor) -> Tensor {
        let loc = Location::caller();
        let (n_in, n_out) = (self.weight.shape()[0], self.weight.shape()[1]);
        let shape = x.shape().to_vec();
        if shape.last() != Some(&n_in) {
            panic!(
                "Conv1D: input of shape {shape:?} does not end in in_features = {n_in} (weight \
                 {:?}), at {loc}",
                self.weight.shape()
            );
        }
        let rows = x.numel() / n_in;
        let y = x.reshape([rows, n_in]).matmul(&self.weight) + &self.bias;
        let mut out = shape;
        *out.last_mut().expect("checked") = n_out;
        y.reshape(out)
    }
}

/// Cached keys and values of the tokens seen so far, per block, each `[B, heads, T, head_dim]`:
/// with it, each generation step runs the model on the new token only.
#[derive(Clone, Default)]
pub struct KvCache {
    layers: Vec<(Tensor, Tensor)>,
}

impl KvCache {
    /// An empty cache.
    pub fn new() -> KvCache {
        KvCache::default()
    }

    /// The number of cached positions.
    pub fn len(&self) -> usize {
        self.layers.first().map_or(0, |(k, _)| k.shape()[2])
    }

    /// Whether no position is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Causal multi-head self-attention (`GPT2Attention`).
#[derive(crate::nn::Module)]
pub struct GPT2Attention {
    /// The fused query, key and value projection, `[n_embd, 3 n_embd]`.
    pub c_attn: Conv1D,
    /// The output projection.
    pub c_proj: Conv1D,
    /// Number of heads.
    pub n_head: usize,
}

impl GPT2Attention {
    /// `x` `[B, T, E]`; with `past` (this block's cached keys and values), the new tokens come
    /// after the cached ones and `past` is extended.
    fn forward(&self, x: &Tensor, past: Option<&mut Option<(Tensor, Tensor)>>) -> Tensor {
        let e = x.shape()[2];
        let qkv = self.c_attn.forward(x);
        let part = |i: usize| split_heads(&qkv.narrow(-1, (i * e) as isize, e), self.n_head);
        let (q, mut k, mut v) = (part(0), part(1), part(2));
        let mut n_past = 0;
        if let Some(past) = past {
            if let Some((pk, pv)) = past.take() {
                n_past = pk.shape()[2];
                k = Tensor::cat(&[&pk, &k], 2);
                v = Tensor::cat(&[&pv, &v], 2);
            }
            *past = Some((k.clone(), v.clone()));
        }
        let t = x.shape()[1];
        let y = if n_past == 0 {
            F::scaled_dot_product_attention(&q, &k, &v, None, 0.0, t > 1, None)
        } else if t == 1 {
            // one new token sees every cached one
            F::scaled_dot_product_attention(&q, &k, &v, None, 0.0, false, None)
        } else {
            // new token i is at position n_past + i and sees keys 0..=n_past + i
            let s = n_past + t;
            let keep: Vec<bool> = (0..t)
                .flat_map(|i| (0..s).map(move |j| j <= n_past + i))
                .collect();
            let keep = Tensor::from_values(keep, &[t, s]);
            F::scaled_dot_product_attention(&q, &k, &v, Some(&keep), 0.0, false, None)
        };
        self.c_proj.forward(&merge_heads(&y))
    }
}

/// The feed-forward block (`GPT2MLP`).
#[derive(crate::nn::Module)]
pub struct GPT2MLP {
    /// `[n_embd, 4 n_embd]`.
    pub c_fc: Conv1D,
    /// `[4 n_embd, n_embd]`.
    pub c_proj: Conv1D,
    /// The activation between them.
    #[module(skip)]
    pub act: Activation,
}

/// One decoder block, `x + attn(ln_1 x)` then `x + mlp(ln_2 x)` (`GPT2Block`).
#[derive(crate::nn::Module)]
pub struct GPT2Block {
    /// Before attention.
    pub ln_1: LayerNorm,
    /// Attention.
    pub attn: GPT2Attention,
    /// Before the MLP.
    pub ln_2: LayerNorm,
    /// Feed-forward.
    pub mlp: GPT2MLP,
}

impl GPT2Block {
    fn forward(&self, x: &Tensor, past: Option<&mut Option<(Tensor, Tensor)>>) -> Tensor {
        let x = x + self.attn.forward(&self.ln_1.forward(x), past);
        let m = &self.mlp;
        let hidden = m.act.apply(&m.c_fc.forward(&self.ln_2.forward(&x)));
        x + m.c_proj.forward(&hidden)
    }
}

/// The GPT-2 decoder without a head (`GPT2Model`): `wte`, `wpe`, blocks `h`, final `ln_f`.
#[derive(crate::nn::Module)]
pub struct GPT2Model {
    /// Token embeddings `[vocab_size, n_embd]` (also the LM head's weight).
    pub wte: Embedding,
    /// Position embeddings `[n_positions, n_embd]`.
    pub wpe: Embedding,
    /// The blocks.
    pub h: Vec<GPT2Block>,
    /// The final LayerNorm.
    pub ln_f: LayerNorm,
    /// The configuration it was built from.
    #[module(skip)]
    pub config: GPT2Config,
}

impl GPT2Model {
    /// A randomly initialised model of shape `config`.
    pub fn new(config: &GPT2Config) -> GPT2Model {
        let e = config.n_embd;
        let ln = || {
            let mut ln = LayerNorm::new(&[e]);
            ln.eps = config.layer_norm_epsilon;
            ln
        };
        let table = |n: usize| {
            let mut t = Embedding::new(n, e);
            t.weight = Tensor::normal(&[n, e], 0.0, 0.02).requires_grad();
            t
        };
        GPT2Model {
            wte: table(config.vocab_size),
            wpe: table(config.n_positions),
            h: (0..config.n_layer)
                .map(|_| GPT2Block {
                    ln_1: ln(),
                    attn: GPT2Attention {
                        c_attn: Conv1D::new(e, 3 * e),
                        c_proj: Conv1D::new(e, e),
                        n_head: config.n_head,
                    },
                    ln_2: ln(),
                    mlp: GPT2MLP {
                        c_fc: Conv1D::new(e, 4 * e),
                        c_proj: Conv1D::new(4 * e, e),
                        act: config.activation_function,
                    },
                })
                .collect(),
            ln_f: ln(),
            config: config.clone(),
        }
    }

    /// The final hidden states `[B, T, n_embd]` of int64 `input_ids` `[B, T]`. With a `cache`,
    /// the ids continue the cached sequence (their positions start at `cache.len()`) and the
    /// cache is extended with them.
    ///
    /// # Panics
    /// If `input_ids` is not int64 `[B, T]`, or the sequence would run past `n_positions`, or
    /// the cache belongs to another batch size or model.
    #[track_caller]
    pub fn forward(&self, input_ids: &Tensor, cache: Option<&mut KvCache>) -> Tensor {
        let loc = Location::caller();
        check_ids("GPT2Model", input_ids);
        let (b, t) = (input_ids.shape()[0], input_ids.shape()[1]);
        let n_past = cache.as_ref().map_or(0, |c| c.len());
        if n_past + t > self.config.n_positions {
            panic!(
                "GPT2Model: {n_past} cached + {t} new positions exceed n_positions {}, at {loc}",
                self.config.n_positions
            );
        }
        if let Some(c) = &cache {
            if let Some((k, _)) = c.layers.first() {
                if k.shape()[0] != b || c.layers.len() != self.h.len() {
                    panic!(
                        "GPT2Model: a cache of {} blocks for batch size {} does not fit a model \
                         of {} blocks and input_ids of shape {:?}, at {loc}",
                        c.layers.len(),
                        k.shape()[0],
                        self.h.len(),
                        input_ids.shape()
                    );
                }
            }
        }
        let positions = Tensor::arange_dtype(n_past as f64, (n_past + t) as f64, 1.0, DType::I64);
        let mut x = self.wte.forward(input_ids) + self.wpe.forward(&positions);
        match cache {
            None => {
                for block in &self.h {
                    x = block.forward(&x, None);
                }
            }
            Some(cache) => {
                let mut slots: Vec<Option<(Tensor, Tensor)>> = std::mem::take(&mut cache.layers)
                    .into_iter()
                    .map(Some)
                    .collect();
                slots.resize(self.h.len(), None);
                for (block, slot) in self.h.iter().zip(slots.iter_mut()) {
                    x = block.forward(&x, Some(slot));
                }
                cache.layers = slots.into_iter().map(|s| s.expect("filled")).collect();
            }
        }
        self.ln_f.forward(&x)
    }
}

/// GPT-2 with its language-model head (`GPT2LMHeadModel`), whose weight is tied to
/// `transformer.wte` as in the checkpoints.
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::models::gpt2::{GPT2Config, GPT2LMHeadModel};
/// let config = GPT2Config::from_json(
///     r#"{"vocab_size": 40, "n_positions": 16, "n_embd": 8, "n_layer": 1, "n_head": 2}"#,
/// ).unwrap();
/// let gpt = GPT2LMHeadModel::new(&config);
/// assert!(gpt.state_dict().contains_key("transformer.h.0.attn.c_attn.weight"));
/// let prompt = Tensor::from_vec_i64(vec![3, 1, 4], &[1, 3]);
/// let _off = no_grad();
/// assert_eq!(gpt.forward(&prompt, None).shape(), &[1, 3, 40]);
/// let out = gpt.generate_greedy(&prompt, 5, true);
/// assert_eq!(out.shape(), &[1, 8]);
/// assert_eq!(out.to_vec::<i64>(), gpt.generate_greedy(&prompt, 5, false).to_vec::<i64>());
/// ```
#[derive(crate::nn::Module)]
pub struct GPT2LMHeadModel {
    /// The decoder.
    pub transformer: GPT2Model,
}

impl GPT2LMHeadModel {
    /// A randomly initialised model of shape `config`.
    pub fn new(config: &GPT2Config) -> GPT2LMHeadModel {
        GPT2LMHeadModel {
            transformer: GPT2Model::new(config),
        }
    }

    /// The next-token logits `[B, T, vocab_size]` of `input_ids` `[B, T]`; see
    /// [`GPT2Model::forward`] for the cache.
    ///
    /// # Panics
    /// As [`GPT2Model::forward`].
    #[track_caller]
    pub fn forward(&self, input_ids: &Tensor, cache: Option<&mut KvCache>) -> Tensor {
        let h = self.transformer.forward(input_ids, cache);
        let (b, t, e) = (h.shape()[0], h.shape()[1], h.shape()[2]);
        let wte = &self.transformer.wte.weight;
        h.reshape([b * t, e])
            .matmul(&wte.t())
            .reshape([b, t, wte.shape()[0]])
    }

    /// `input_ids` `[B, T]` followed by `max_new_tokens` tokens, each the most likely next one
    /// (`model.generate(do_sample=False)` without a stop token), as `[B, T + max_new_tokens]`
    /// int64. With `use_cache`, each step runs on the newest token only and attends to cached
    /// keys and values; without, each step reruns the whole sequence. Runs under `no_grad`.
    ///
    /// # Panics
    /// If `input_ids` is not int64 `[B, T]` with `T ≥ 1`, or `T + max_new_tokens` exceeds
    /// `n_positions`.
    #[track_caller]
    pub fn generate_greedy(
        &self,
        input_ids: &Tensor,
        max_new_tokens: usize,
        use_cache: bool,
    ) -> Tensor {
        let loc = Location::caller();
        check_ids("GPT2LMHeadModel::generate_greedy", input_ids);
        let (b, t) = (input_ids.shape()[0], input_ids.shape()[1]);
        let n_positions = self.transformer.config.n_positions;
        if t == 0 || t + max_new_tokens > n_positions {
            panic!(
                "GPT2LMHeadModel::generate_greedy: a prompt of {t} tokens plus {max_new_tokens} \
                 new ones must be between 1 and n_positions = {n_positions}, at {loc}"
            );
        }
        let _off = crate::autograd::no_grad();
        let mut cache = KvCache::new();
        let mut seq = input_ids.clone();
        let mut step_input = input_ids.clone();
        for _ in 0..max_new_tokens {
            let logits = if use_cache {
                self.forward(&step_input, Some(&mut cache))
            } else {
                self.forward(&seq, None)
            };
            let last = logits.select(1, -1); // [B, V]
            let next = last.argmax_dim(-1, true); // [B, 1]
            seq = Tensor::cat(&[&seq, &next], 1);
            step_input = next;
        }
        debug_assert_eq!(seq.shape(), [b, t + max_new_tokens]);
        seq
    }

    /// A model of shape `config` with the weights of a Hugging Face GPT-2 state dict. Keys may
    /// have the `GPT2LMHeadModel` prefix `transformer.` or not (`GPT2Model`); `lm_head.weight`
    /// (tied to `wte`) and the causal-mask buffers `attn.bias` / `attn.masked_bias` of older
    /// checkpoints are ignored. Every other key must match.
    pub fn from_state_dict(
        config: &GPT2Config,
        state: &BTreeMap<String, Tensor>,
    ) -> Result<GPT2LMHeadModel> {
        let model = GPT2LMHeadModel::new(config);
        let inner: BTreeMap<String, Tensor> = state
            .iter()
            .filter(|(k, _)| {
                k.as_str() != "lm_head.weight"
                    && !k.ends_with(".attn.bias")
                    && !k.ends_with(".attn.masked_bias")
            })
            .map(|(k, v)| {
                let k = k.strip_prefix("transformer.").unwrap_or(k);
                (k.to_owned(), v.clone())
            })
            .collect();
        model.transformer.load_state_dict(&inner, true)?;
        Ok(model)
    }

    /// Reads a Hugging Face model directory: `config.json` and `model.safetensors`.
    pub fn load(dir: impl AsRef<Path>) -> Result<GPT2LMHeadModel> {
        let dir = dir.as_ref();
        let config = GPT2Config::from_file(dir.join("config.json"))?;
        let state = crate::io::safetensors::load(dir.join("model.safetensors"))?;
        GPT2LMHeadModel::from_state_dict(&config, &state)
    }
}
