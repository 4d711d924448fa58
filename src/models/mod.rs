//! Pretrained transformer architectures built from [`nn`](crate::nn) layers, whose parameter
//! names match the Hugging Face `transformers` checkpoints, so a `state_dict` saved there loads
//! here unchanged:
//!
//! - [`bert`]: the BERT encoder (`BertModel`) and sentence embeddings with mean pooling, as
//!   sentence-transformers computes them (e.g. all-MiniLM-L6-v2);
//! - [`gpt2`]: the GPT-2 decoder (`GPT2LMHeadModel`) with greedy generation and a KV cache.
//!
//! Inference runs under [`no_grad`](crate::autograd::no_grad); the models are ordinary
//! [`Module`](crate::nn::Module)s, so they can be fine-tuned too.

pub mod bert;
pub mod gpt2;

use std::panic::Location;

use crate::nn::{Forward, Linear};
use crate::tensor::Tensor;
use crate::{Error, Result};

/// The activation functions Hugging Face configs name (`hidden_act`, `activation_function`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// `"gelu"`: the exact GELU `x Φ(x)` (with erf), BERT's.
    Gelu,
    /// `"gelu_new"`, `"gelu_pytorch_tanh"`: the tanh approximation, GPT-2's.
    GeluTanh,
    /// `"relu"`.
    Relu,
}

impl Activation {
    /// The activation a Hugging Face config calls `name`.
    ///
    /// ```
    /// use tapegrad::models::Activation;
    /// assert_eq!(Activation::from_hf_name("gelu_new").unwrap(), Activation::GeluTanh);
    /// assert!(Activation::from_hf_name("swish").is_err());
    /// ```
    pub fn from_hf_name(name: &str) -> Result<Activation> {
        match name {
            "gelu" => Ok(Activation::Gelu),
            "gelu_new" | "gelu_pytorch_tanh" => Ok(Activation::GeluTanh),
            "relu" => Ok(Activation::Relu),
            other => Err(Error::Format(format!(
                "unsupported activation {other:?} (supported: gelu, gelu_new, \
                 gelu_pytorch_tanh, relu)"
            ))),
        }
    }

    /// Applies the activation elementwise.
    pub fn apply(self, x: &Tensor) -> Tensor {
        match self {
            Activation::Gelu => x.gelu(),
            Activation::GeluTanh => x.gelu_tanh(),
            Activation::Relu => x.relu(),
        }
    }
}

/// A parsed Hugging Face `config.json`, with typed lookups that name the missing or mistyped key.
pub(crate) struct JsonConfig(serde_json::Value);

impl JsonConfig {
    pub(crate) fn parse(text: &str) -> Result<JsonConfig> {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| Error::Format(format!("config.json: {e}")))?;
        if !v.is_object() {
            return Err(Error::Format("config.json: not a JSON object".into()));
        }
        Ok(JsonConfig(v))
    }

    fn get(&self, key: &str) -> Option<&serde_json::Value> {
        self.0.get(key).filter(|v| !v.is_null())
    }

    pub(crate) fn usize(&self, key: &str) -> Result<usize> {
        self.get(key)
            .and_then(|v| v.as_u64())
            .map(|v| v as usize)
            .ok_or_else(|| Error::Format(format!("config.json: {key:?} is not a whole number")))
    }

    pub(crate) fn usize_or(&self, key: &str, default: usize) -> Result<usize> {
        if self.get(key).is_none() {
            return Ok(default);
        }
        self.usize(key)
    }

    pub(crate) fn f64_or(&self, key: &str, default: f64) -> Result<f64> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_f64()
                .ok_or_else(|| Error::Format(format!("config.json: {key:?} is not a number"))),
        }
    }

    pub(crate) fn activation_or(&self, key: &str, default: Activation) -> Result<Activation> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => {
                Activation::from_hf_name(v.as_str().ok_or_else(|| {
                    Error::Format(format!("config.json: {key:?} is not a string"))
                })?)
            }
        }
    }
}

/// `lin` over the last dim of `x` of any rank, as one `[rows, in] @ [in, out]` product: a
/// batched `[B, L, in]` input would otherwise pack the weight once per batch item.
pub(crate) fn dense(lin: &Linear, x: &Tensor) -> Tensor {
    let shape = x.shape().to_vec();
    if shape.len() <= 2 {
        return lin.forward(x);
    }
    let rows: usize = shape[..shape.len() - 1].iter().product();
    let y = lin.forward(&x.reshape([rows, shape[shape.len() - 1]]));
    let mut out = shape;
    *out.last_mut().expect("rank > 2") = lin.out_features();
    y.reshape(out)
}

/// Splits `[B, L, heads * d]` into heads, `[B, heads, L, d]` (a view, no copy).
pub(crate) fn split_heads(x: &Tensor, heads: usize) -> Tensor {
    let s = x.shape();
    let (b, l, h) = (s[0], s[1], s[2]);
    x.reshape([b, l, heads, h / heads]).permute([0, 2, 1, 3])
}

/// Merges `[B, heads, L, d]` back into `[B, L, heads * d]`.
pub(crate) fn merge_heads(x: &Tensor) -> Tensor {
    let s = x.shape();
    let (b, heads, l, d) = (s[0], s[1], s[2], s[3]);
    x.permute([0, 2, 1, 3]).reshape([b, l, heads * d])
}

/// Checks that `ids` is an int64 `[B, L]` tensor, naming `what` (the model) in the panic.
#[track_caller]
pub(crate) fn check_ids(what: &str, ids: &Tensor) {
    let loc = Location::caller();
    if ids.ndim() != 2 || ids.dtype() != crate::DType::I64 {
        panic!(
            "{what}: input_ids must be int64 of shape [batch, seq_len], got {} of shape {:?}, \
             at {loc}",
            ids.dtype(),
            ids.shape()
        );
    }
}
