//! Attention layers: `MultiheadAttention`, `TransformerEncoderLayer` and `TransformerEncoder`,
//! with PyTorch's parameter and submodule names, so state dicts carry over by name.

use std::panic::Location;

use super::functional as F;
use super::init;
use super::module::{Forward, Module, TrainFlag, Visitor};
use super::{Dropout, LayerNorm, Linear};
use crate::tensor::{DType, Tensor};

/// Multi-head attention, like `nn.MultiheadAttention(embed_dim, num_heads)`:
/// `concat(head_1, …, head_h) W_oᵀ + b_o` with `head_i = softmax(Q_i K_iᵀ / √d + mask) V_i` and
/// `Q, K, V` the projections of query, key and value by the three row blocks of
/// `in_proj_weight` `[3E, E]` (plus `in_proj_bias`).
///
/// Inputs are `[L, N, E]` (`[N, L, E]` with [`batch_first`](MultiheadAttention::batch_first)),
/// or unbatched `[L, E]`. Parameters, named as in PyTorch: `in_proj_weight` (Xavier uniform),
/// `in_proj_bias` (zeros), `out_proj.weight`, `out_proj.bias` (zeros).
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::nn::MultiheadAttention;
/// let mha = MultiheadAttention::new(8, 2).batch_first(true);
/// let x = Tensor::randn(&[3, 5, 8]);
/// // sample 2 has only 3 real tokens: its last two keys are padding (true = ignore)
/// let pad: Vec<bool> = (0..15).map(|i| i >= 13).collect();
/// let pad = Tensor::from_values(pad, &[3, 5]);
/// let (y, w) = mha.forward(&x, &x, &x, Some(&pad), None, true);
/// assert_eq!(y.shape(), &[3, 5, 8]);
/// assert_eq!(w.unwrap().shape(), &[3, 5, 5]); // averaged over the heads
/// ```
pub struct MultiheadAttention {
    /// `[3·embed_dim, embed_dim]`: the query, key and value projections stacked.
    pub in_proj_weight: Tensor,
    /// `[3·embed_dim]`, if the layer has biases.
    pub in_proj_bias: Option<Tensor>,
    /// The output projection.
    pub out_proj: Linear,
    /// Number of heads (divides `embed_dim`).
    pub num_heads: usize,
    /// Dropout probability on the attention weights, in training mode.
    pub dropout: f64,
    /// Inputs and outputs as `[N, L, E]`.
    pub batch_first: bool,
    /// Train / eval mode.
    pub training: TrainFlag,
}

impl MultiheadAttention {
    /// `embed_dim` features split over `num_heads` heads, with biases, no dropout.
    ///
    /// # Panics
    /// If `num_heads` is 0 or does not divide `embed_dim`.
    #[track_caller]
    pub fn new(embed_dim: usize, num_heads: usize) -> MultiheadAttention {
        MultiheadAttention::with_bias(embed_dim, num_heads, true)
    }

    /// As [`new`](MultiheadAttention::new), with or without the biases (`bias=False`).
    ///
    /// # Panics
    /// If `num_heads` is 0 or does not divide `embed_dim`.
    #[track_caller]
    pub fn with_bias(embed_dim: usize, num_heads: usize, bias: bool) -> MultiheadAttention {
        if num_heads == 0 || embed_dim % num_heads != 0 {
            panic!(
                "MultiheadAttention: embed_dim ({embed_dim}) must be divisible by num_heads \
                 ({num_heads}), at {}",
                Location::caller()
            );
        }
        let w = Tensor::zeros(&[3 * embed_dim, embed_dim]);
        init::xavier_uniform_(&w, 1.0);
        let out_proj = Linear::with_bias(embed_dim, embed_dim, bias);
        if let Some(b) = &out_proj.bias {
            init::zeros_(b);
        }
        MultiheadAttention {
            in_proj_weight: w.requires_grad(),
            in_proj_bias: bias.then(|| Tensor::zeros(&[3 * embed_dim]).requires_grad()),
            out_proj,
            num_heads,
            dropout: 0.0,
            batch_first: false,
            training: TrainFlag::default(),
        }
    }

    /// Dropout with probability `p` on the attention weights in training mode (builder style).
    pub fn dropout(mut self, p: f64) -> MultiheadAttention {
        self.dropout = p;
        self
    }

    /// Inputs and outputs as `[N, L, E]` (builder style).
    pub fn batch_first(mut self, batch_first: bool) -> MultiheadAttention {
        self.batch_first = batch_first;
        self
    }

    /// The number of features, `E`.
    pub fn embed_dim(&self) -> usize {
        self.in_proj_weight.shape()[1]
    }

    /// Moves an input to `[N, L, E]`; checks its rank and `E`.
    fn to_nle(&self, what: &str, t: &Tensor, batched: bool, loc: &Location) -> Tensor {
        let e = self.embed_dim();
        let s = t.shape();
        let rank = if batched { 3 } else { 2 };
        if s.len() != rank || s[rank - 1] != e {
            panic!(
                "MultiheadAttention: {what} of shape {s:?} must be [L, N, E = {e}] ([N, L, E] \
                 with batch_first) or unbatched [L, E], like the query, at {loc}"
            );
        }
        match (batched, self.batch_first) {
            (false, _) => t.unsqueeze(0),
            (true, true) => t.clone(),
            (true, false) => t.transpose(0, 1),
        }
    }

    /// The projections of query, key and value: one matmul for self-attention, else one per
    /// row block of `in_proj_weight`.
    fn project(&self, q: &Tensor, k: &Tensor, v: &Tensor, same: bool) -> [Tensor; 3] {
        let w = &self.in_proj_weight;
        if same {
            let mut y = q.matmul(&w.t());
            if let Some(b) = &self.in_proj_bias {
                y = y + b;
            }
            let c = y.chunk(3, -1);
            return [c[0].clone(), c[1].clone(), c[2].clone()];
        }
        let e = self.embed_dim();
        let one = |x: &Tensor, i: usize| {
            let y = x.matmul(&w.narrow(0, (i * e) as isize, e).t());
            match &self.in_proj_bias {
                Some(b) => y + b.narrow(0, (i * e) as isize, e),
                None => y,
            }
        };
        [one(q, 0), one(k, 1), one(v, 2)]
    }

    /// A mask as an additive float mask of `dtype` (`true` → `-inf`), checked against `shapes`.
    fn additive(
        what: &str,
        m: &Tensor,
        allowed: &[Vec<usize>],
        dtype: DType,
        loc: &Location,
    ) -> Tensor {
        if !allowed.iter().any(|s| s.as_slice() == m.shape()) {
            panic!(
                "MultiheadAttention: {what} of shape {:?} must have one of the shapes \
                 {allowed:?}, at {loc}",
                m.shape()
            );
        }
        match m.dtype() {
            DType::Bool => Tensor::zeros_dtype(m.shape(), dtype).masked_fill(m, f64::NEG_INFINITY),
            d if d == dtype => m.clone(),
            d => panic!(
                "MultiheadAttention: {what} must be bool or of the query's dtype ({dtype}), got \
                 {d}, at {loc}"
            ),
        }
    }

    /// The attention output (like the query) and, if `need_weights`, the attention weights
    /// averaged over the heads, `[N, L, S]` (`[L, S]` unbatched), like
    /// `mha(query, key, value, key_padding_mask, need_weights, attn_mask)`.
    ///
    /// - `key_padding_mask` `[N, S]` (`[S]` unbatched): `true` (or `-inf` in a float mask)
    ///   marks keys to ignore — the opposite of
    ///   [`scaled_dot_product_attention`](F::scaled_dot_product_attention)'s boolean mask, as in
    ///   PyTorch.
    /// - `attn_mask` `[L, S]` or `[N·num_heads, L, S]`: `true` forbids a pair; a float mask is
    ///   added to the scores.
    ///
    /// Without `need_weights` the heads go through `scaled_dot_product_attention`, where a query
    /// with every key masked gives zeros; with it the weights are computed explicitly and such a
    /// query gives NaN, as in PyTorch.
    ///
    /// # Panics
    /// If an input is not `[L, N, E]` / `[N, L, E]` / `[L, E]` consistently with the query, key
    /// and value differ in length, or a mask has the wrong shape or dtype.
    #[track_caller]
    pub fn forward(
        &self,
        query: &Tensor,
        key: &Tensor,
        value: &Tensor,
        key_padding_mask: Option<&Tensor>,
        attn_mask: Option<&Tensor>,
        need_weights: bool,
    ) -> (Tensor, Option<Tensor>) {
        let loc = Location::caller();
        let batched = query.ndim() == 3;
        let q = self.to_nle("query", query, batched, loc);
        let k = self.to_nle("key", key, batched, loc);
        let v = self.to_nle("value", value, batched, loc);
        let (n, l, e) = (q.shape()[0], q.shape()[1], q.shape()[2]);
        let s = k.shape()[1];
        if k.shape()[..2] != v.shape()[..2] || k.shape()[0] != n {
            panic!(
                "MultiheadAttention: query {:?}, key {:?} and value {:?} must agree in the batch \
                 size, and key and value in the length, at {loc}",
                query.shape(),
                key.shape(),
                value.shape()
            );
        }
        let (h, dh) = (self.num_heads, e / self.num_heads);
        let same = query.same(key) && key.same(value);
        let [q, k, v] = self.project(&q, &k, &v, same);
        // [N, len, E] -> [N, H, len, dh]
        let heads = |t: Tensor, len: usize| t.reshape([n, len, h, dh]).transpose(1, 2);
        let (q, k, v) = (heads(q, l), heads(k, s), heads(v, s));
        let dtype = q.dtype();
        let kpm = key_padding_mask.map(|m| {
            let allowed = if batched { vec![n, s] } else { vec![s] };
            Self::additive("key_padding_mask", m, &[allowed], dtype, loc).reshape([n, 1, 1, s])
        });
        let am = attn_mask.map(|m| {
            let m = Self::additive("attn_mask", m, &[vec![l, s], vec![n * h, l, s]], dtype, loc);
            if m.ndim() == 3 {
                m.reshape([n, h, l, s])
            } else {
                m
            }
        });
        let mask = match (kpm, am) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
        let p = if self.training.get() {
            self.dropout
        } else {
            0.0
        };
        let (out, weights) = if need_weights {
            let mut scores = q.matmul(&k.transpose(-2, -1)) * (1.0 / (dh as f64).sqrt());
            if let Some(m) = &mask {
                scores = scores + m;
            }
            let w = F::dropout(&scores.softmax(-1), p, true);
            (w.matmul(&v), Some(w.mean_dim(1, false)))
        } else {
            let out = F::scaled_dot_product_attention(&q, &k, &v, mask.as_ref(), p, false, None);
            (out, None)
        };
        let out = self
            .out_proj
            .forward(&out.transpose(1, 2).reshape([n, l, e]));
        let out = match (batched, self.batch_first) {
            (false, _) => out.squeeze_dim(0),
            (true, true) => out,
            (true, false) => out.transpose(0, 1),
        };
        let weights = weights.map(|w| if batched { w } else { w.squeeze_dim(0) });
        (out, weights)
    }
}

impl Module for MultiheadAttention {
    fn visit(&self, v: &mut Visitor) {
        v.param("in_proj_weight", &self.in_proj_weight);
        if let Some(b) = &self.in_proj_bias {
            v.param("in_proj_bias", b);
        }
        v.module("out_proj", &self.out_proj);
        v.flag(&self.training);
    }
}

impl Forward for MultiheadAttention {
    /// Self-attention of `x` without masks.
    #[track_caller]
    fn forward(&self, x: &Tensor) -> Tensor {
        MultiheadAttention::forward(self, x, x, x, None, None, false).0
    }
}

/// The activation of a transformer layer's feed-forward block.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Activation {
    /// `max(0, x)` (PyTorch's default).
    #[default]
    Relu,
    /// The exact (erf) GELU.
    Gelu,
}

/// One transformer encoder block, like `nn.TransformerEncoderLayer(d_model, nhead)`:
/// self-attention and a feed-forward block `linear2(dropout(act(linear1(x))))`, each with a
/// residual connection and layer norm — after the residual by default (post-norm),
/// before the block with [`norm_first`](TransformerEncoderLayer::norm_first):
///
/// - post-norm: `x = norm1(x + sa(x))`, `x = norm2(x + ff(x))`;
/// - pre-norm: `x = x + sa(norm1(x))`, `x = x + ff(norm2(x))`.
///
/// Submodules are named as in PyTorch (`self_attn`, `linear1`, `linear2`, `norm1`, `norm2`), so
/// a PyTorch state dict loads by name. Defaults as PyTorch: `dim_feedforward` 2048, dropout
/// 0.1, ReLU, `layer_norm_eps` 1e-5, sequence-first, post-norm.
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::nn::{TransformerEncoderLayer, Activation};
/// let layer = TransformerEncoderLayer::new(8, 2)
///     .dim_feedforward(16)
///     .activation(Activation::Gelu)
///     .batch_first(true)
///     .norm_first(true);
/// assert_eq!(layer.forward(&Tensor::randn(&[2, 5, 8]), None, None).shape(), &[2, 5, 8]);
/// ```
#[derive(crate::nn::Module)]
pub struct TransformerEncoderLayer {
    /// The self-attention block.
    pub self_attn: MultiheadAttention,
    /// `d_model → dim_feedforward`.
    pub linear1: Linear,
    /// Dropout after the activation.
    pub dropout: Dropout,
    /// `dim_feedforward → d_model`.
    pub linear2: Linear,
    /// The first layer norm.
    pub norm1: LayerNorm,
    /// The second layer norm.
    pub norm2: LayerNorm,
    /// Dropout on the attention block's output.
    pub dropout1: Dropout,
    /// Dropout on the feed-forward block's output.
    pub dropout2: Dropout,
    /// The feed-forward activation.
    #[module(skip)]
    pub activation: Activation,
    /// Normalise before each block instead of after the residual.
    pub norm_first: bool,
}

impl TransformerEncoderLayer {
    /// A layer of width `d_model` with `nhead` heads and PyTorch's defaults.
    ///
    /// # Panics
    /// If `nhead` does not divide `d_model`.
    #[track_caller]
    pub fn new(d_model: usize, nhead: usize) -> TransformerEncoderLayer {
        TransformerEncoderLayer {
            self_attn: MultiheadAttention::new(d_model, nhead).dropout(0.1),
            linear1: Linear::new(d_model, 2048),
            dropout: Dropout::new(0.1),
            linear2: Linear::new(2048, d_model),
            norm1: LayerNorm::new(&[d_model]),
            norm2: LayerNorm::new(&[d_model]),
            dropout1: Dropout::new(0.1),
            dropout2: Dropout::new(0.1),
            activation: Activation::Relu,
            norm_first: false,
        }
    }

    /// The width of the feed-forward block (builder style; re-initialises `linear1` and
    /// `linear2`).
    pub fn dim_feedforward(mut self, n: usize) -> TransformerEncoderLayer {
        let d = self.d_model();
        self.linear1 = Linear::new(d, n);
        self.linear2 = Linear::new(n, d);
        self
    }

    /// The dropout probability of all four dropouts (builder style).
    pub fn dropout(mut self, p: f64) -> TransformerEncoderLayer {
        self.self_attn.dropout = p;
        for d in [&mut self.dropout, &mut self.dropout1, &mut self.dropout2] {
            d.p = p;
        }
        self
    }

    /// The feed-forward activation (builder style).
    pub fn activation(mut self, a: Activation) -> TransformerEncoderLayer {
        self.activation = a;
        self
    }

    /// The layer norms' eps (builder style).
    pub fn layer_norm_eps(mut self, eps: f64) -> TransformerEncoderLayer {
        self.norm1.eps = eps;
        self.norm2.eps = eps;
        self
    }

    /// Inputs and outputs as `[N, L, E]` (builder style).
    pub fn batch_first(mut self, batch_first: bool) -> TransformerEncoderLayer {
        self.self_attn.batch_first = batch_first;
        self
    }

    /// Pre-norm instead of post-norm (builder style).
    pub fn norm_first(mut self, norm_first: bool) -> TransformerEncoderLayer {
        self.norm_first = norm_first;
        self
    }

    /// The model width.
    pub fn d_model(&self) -> usize {
        self.self_attn.embed_dim()
    }

    /// A layer with the same configuration and a copy of the parameters (not shared).
    fn duplicate(&self) -> TransformerEncoderLayer {
        let ff = self.linear1.out_features();
        let copy = TransformerEncoderLayer::new(self.d_model(), self.self_attn.num_heads)
            .dim_feedforward(ff)
            .dropout(self.dropout.p)
            .activation(self.activation)
            .layer_norm_eps(self.norm1.eps)
            .batch_first(self.self_attn.batch_first)
            .norm_first(self.norm_first);
        let _g = crate::autograd::no_grad();
        for ((_, to), (_, from)) in copy.named_parameters().iter().zip(self.named_parameters()) {
            to.assign(&from.to_dtype(to.dtype()));
        }
        copy
    }

    fn self_attention(&self, x: &Tensor, mask: Option<&Tensor>, pad: Option<&Tensor>) -> Tensor {
        let (y, _) = self.self_attn.forward(x, x, x, pad, mask, false);
        self.dropout1.forward(&y)
    }

    fn feed_forward(&self, x: &Tensor) -> Tensor {
        let h = self.linear1.forward(x);
        let h = match self.activation {
            Activation::Relu => h.relu(),
            Activation::Gelu => h.gelu(),
        };
        self.dropout2
            .forward(&self.linear2.forward(&self.dropout.forward(&h)))
    }

    /// The block's output for `src` (`[L, N, E]`, `[N, L, E]` when batch-first, or `[L, E]`),
    /// like `layer(src, src_mask, src_key_padding_mask)`; the masks are as in
    /// [`MultiheadAttention::forward`].
    ///
    /// # Panics
    /// As [`MultiheadAttention::forward`].
    #[track_caller]
    pub fn forward(
        &self,
        src: &Tensor,
        src_mask: Option<&Tensor>,
        src_key_padding_mask: Option<&Tensor>,
    ) -> Tensor {
        let (m, p) = (src_mask, src_key_padding_mask);
        if self.norm_first {
            let x = src + self.self_attention(&self.norm1.forward(src), m, p);
            &x + self.feed_forward(&self.norm2.forward(&x))
        } else {
            let x = self.norm1.forward(&(src + self.self_attention(src, m, p)));
            self.norm2.forward(&(&x + self.feed_forward(&x)))
        }
    }
}

impl Forward for TransformerEncoderLayer {
    /// The block's output without masks.
    #[track_caller]
    fn forward(&self, x: &Tensor) -> Tensor {
        TransformerEncoderLayer::forward(self, x, None, None)
    }
}

/// A stack of encoder layers with an optional final layer norm, like
/// `nn.TransformerEncoder(encoder_layer, num_layers, norm)`: the layers start as copies of
/// `encoder_layer` (as PyTorch deep-copies it) and are named `layers.0.…`, `layers.1.…`, and the
/// final norm `norm.…`.
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::nn::{LayerNorm, Module, TransformerEncoder, TransformerEncoderLayer};
/// let layer = TransformerEncoderLayer::new(8, 2).dim_feedforward(16);
/// let enc = TransformerEncoder::new(&layer, 3).norm(LayerNorm::new(&[8]));
/// assert_eq!(enc.forward(&Tensor::randn(&[5, 2, 8]), None, None).shape(), &[5, 2, 8]);
/// assert_eq!(enc.named_parameters()[0].0, "layers.0.self_attn.in_proj_weight");
/// ```
#[derive(crate::nn::Module)]
pub struct TransformerEncoder {
    /// The layers, applied in order.
    pub layers: Vec<TransformerEncoderLayer>,
    /// The final layer norm, if any.
    pub norm: Option<LayerNorm>,
}

impl TransformerEncoder {
    /// `num_layers` copies of `encoder_layer` (independent parameters, equal at the start).
    pub fn new(encoder_layer: &TransformerEncoderLayer, num_layers: usize) -> TransformerEncoder {
        TransformerEncoder {
            layers: (0..num_layers).map(|_| encoder_layer.duplicate()).collect(),
            norm: None,
        }
    }

    /// A final layer norm after the last layer (builder style).
    pub fn norm(mut self, norm: LayerNorm) -> TransformerEncoder {
        self.norm = Some(norm);
        self
    }

    /// The output for `src`, like `encoder(src, mask, src_key_padding_mask)`.
    ///
    /// # Panics
    /// As [`TransformerEncoderLayer::forward`].
    #[track_caller]
    pub fn forward(
        &self,
        src: &Tensor,
        mask: Option<&Tensor>,
        src_key_padding_mask: Option<&Tensor>,
    ) -> Tensor {
        let mut x = src.clone();
        for layer in &self.layers {
            x = layer.forward(&x, mask, src_key_padding_mask);
        }
        match &self.norm {
            Some(n) => n.forward(&x),
            None => x,
        }
    }
}

impl Forward for TransformerEncoder {
    /// The output without masks.
    #[track_caller]
    fn forward(&self, x: &Tensor) -> Tensor {
        TransformerEncoder::forward(self, x, None, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prelude::*;
    use crate::testing::{randn64, randn64_t};

    /// f64 parameters of an `E`-wide attention layer, scaled down so softmax stays soft.
    fn mha_params(e: usize, seed: u64) -> Vec<Tensor> {
        vec![
            randn64(&[3 * e, e], seed) * 0.5,
            randn64(&[3 * e], seed + 1) * 0.1,
            randn64(&[e, e], seed + 2) * 0.5,
            randn64(&[e], seed + 3) * 0.1,
        ]
    }

    /// An attention layer using `ps` (`in_proj_weight`, `in_proj_bias`, `out_proj.weight`,
    /// `out_proj.bias`) as they are, so gradients reach them.
    fn mha_with(ps: &[Tensor], heads: usize, batch_first: bool) -> MultiheadAttention {
        MultiheadAttention {
            in_proj_weight: ps[0].clone(),
            in_proj_bias: Some(ps[1].clone()),
            out_proj: Linear {
                weight: ps[2].clone(),
                bias: Some(ps[3].clone()),
            },
            num_heads: heads,
            dropout: 0.0,
            batch_first,
            training: TrainFlag::default(),
        }
    }

    #[test]
    fn multihead_attention_gradcheck() {
        let ps = mha_params(4, 10);
        // self-attention [L, N, E] with a key padding mask and a causal mask, weights returned
        let pad = Tensor::from_values(vec![false, false, false, false, false, true], &[2, 3]);
        let causal = Tensor::from_values(
            vec![false, true, true, false, false, true, false, false, false],
            &[3, 3],
        );
        let mut xs = vec![randn64(&[3, 2, 4], 1)];
        xs.extend(ps.iter().cloned());
        gradcheck(
            |xs| {
                let m = mha_with(&xs[1..], 2, false);
                let (y, w) = m.forward(&xs[0], &xs[0], &xs[0], Some(&pad), Some(&causal), true);
                Tensor::cat(&[&y.flatten_all(), &w.unwrap().flatten_all()], 0)
            },
            &xs,
        )
        .unwrap();
        // cross-attention, batch-first, non-contiguous inputs, through scaled_dot_product_attention
        let mut xs = vec![
            randn64_t(&[2, 3, 4], 2),
            randn64(&[2, 5, 4], 3),
            randn64_t(&[2, 5, 4], 4),
        ];
        xs.extend(ps.iter().cloned());
        gradcheck(
            |xs| {
                let m = mha_with(&xs[3..], 2, true);
                m.forward(&xs[0], &xs[1], &xs[2], None, None, false).0
            },
            &xs,
        )
        .unwrap();
    }

    /// An encoder layer of width 4, 2 heads, feed-forward 6, from f64 parameters in
    /// `named_parameters` order.
    fn layer_with(
        ps: &[Tensor],
        norm_first: bool,
        activation: Activation,
    ) -> TransformerEncoderLayer {
        let lin = |w: &Tensor, b: &Tensor| Linear {
            weight: w.clone(),
            bias: Some(b.clone()),
        };
        let norm = |w: &Tensor, b: &Tensor| LayerNorm {
            weight: Some(w.clone()),
            bias: Some(b.clone()),
            normalized_shape: vec![4],
            eps: 1e-5,
        };
        TransformerEncoderLayer {
            self_attn: mha_with(&ps[..4], 2, false),
            linear1: lin(&ps[4], &ps[5]),
            dropout: Dropout::new(0.0),
            linear2: lin(&ps[6], &ps[7]),
            norm1: norm(&ps[8], &ps[9]),
            norm2: norm(&ps[10], &ps[11]),
            dropout1: Dropout::new(0.0),
            dropout2: Dropout::new(0.0),
            activation,
            norm_first,
        }
    }

    fn layer_params() -> Vec<Tensor> {
        let mut ps = mha_params(4, 20);
        for (i, s) in [
            vec![6, 4],
            vec![6],
            vec![4, 6],
            vec![4],
            vec![4],
            vec![4],
            vec![4],
            vec![4],
        ]
        .iter()
        .enumerate()
        {
            ps.push(randn64(s, 30 + i as u64) * 0.5);
        }
        ps
    }

    #[test]
    fn encoder_layer_gradcheck() {
        let pad = Tensor::from_values(vec![false, false, false, false, true, true], &[2, 3]);
        for (norm_first, act) in [(false, Activation::Relu), (true, Activation::Gelu)] {
            let mut xs = vec![randn64(&[3, 2, 4], 1)];
            xs.extend(layer_params());
            gradcheck(
                |xs| layer_with(&xs[1..], norm_first, act).forward(&xs[0], None, Some(&pad)),
                &xs,
            )
            .unwrap();
        }
    }

    #[test]
    fn parameter_names_follow_pytorch() {
        let layer = TransformerEncoderLayer::new(8, 2).dim_feedforward(16);
        let names: Vec<String> = layer
            .named_parameters()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(
            names,
            [
                "self_attn.in_proj_weight",
                "self_attn.in_proj_bias",
                "self_attn.out_proj.weight",
                "self_attn.out_proj.bias",
                "linear1.weight",
                "linear1.bias",
                "linear2.weight",
                "linear2.bias",
                "norm1.weight",
                "norm1.bias",
                "norm2.weight",
                "norm2.bias",
            ]
        );
        let enc = TransformerEncoder::new(&layer, 2).norm(LayerNorm::new(&[8]));
        let names: Vec<String> = enc.named_parameters().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names.len(), 2 * 12 + 2);
        assert_eq!(names[12], "layers.1.self_attn.in_proj_weight");
        assert_eq!(names[25], "norm.bias");
        let mha = MultiheadAttention::with_bias(8, 2, false);
        let names: Vec<String> = mha.named_parameters().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["in_proj_weight", "out_proj.weight"]);
    }

    #[test]
    fn encoder_layers_start_equal_but_are_independent() {
        let layer = TransformerEncoderLayer::new(4, 2).dim_feedforward(8);
        let enc = TransformerEncoder::new(&layer, 2);
        let (a, b) = (&enc.layers[0].linear1.weight, &enc.layers[1].linear1.weight);
        assert_eq!(a.to_vec::<f32>(), layer.linear1.weight.to_vec::<f32>());
        assert_eq!(a.to_vec::<f32>(), b.to_vec::<f32>());
        a.assign(&Tensor::zeros(a.shape()));
        assert_ne!(b.to_vec::<f32>(), a.to_vec::<f32>());
        assert_ne!(layer.linear1.weight.to_vec::<f32>(), a.to_vec::<f32>());
    }

    #[test]
    fn batch_first_is_the_transposed_layout() {
        let mha = MultiheadAttention::new(6, 3);
        let (q, kv) = (Tensor::randn(&[4, 2, 6]), Tensor::randn(&[5, 2, 6]));
        let (y, w) = mha.forward(&q, &kv, &kv, None, None, true);
        let bf = MultiheadAttention {
            batch_first: true,
            ..mha
        };
        let (qt, kvt) = (q.transpose(0, 1), kv.transpose(0, 1));
        let (y_bf, w_bf) = bf.forward(&qt, &kvt, &kvt, None, None, true);
        y_bf.assert_close(&y.transpose(0, 1), 1e-6, 1e-6);
        w_bf.unwrap().assert_close(&w.unwrap(), 1e-6, 1e-6); // weights are [N, L, S] either way
                                                             // the unbatched form is batch 1
        let (y1, _) = bf.forward(
            &qt.select(0, 1),
            &kvt.select(0, 1),
            &kvt.select(0, 1),
            None,
            None,
            false,
        );
        y1.assert_close(&y_bf.select(0, 1), 1e-6, 1e-6);
    }

    #[test]
    fn key_padding_mask_ignores_padded_keys() {
        let mha = MultiheadAttention::new(4, 2);
        let q = Tensor::randn(&[3, 1, 4]);
        let kv = Tensor::randn(&[5, 1, 4]);
        // the last two keys are padding
        let pad = Tensor::from_values(vec![false, false, false, true, true], &[1, 5]);
        let (y, w) = mha.forward(&q, &kv, &kv, Some(&pad), None, true);
        // weights: zero on padded keys, rows sum to 1
        let w = w.unwrap();
        assert!(w.narrow(-1, 3, 2).to_vec::<f32>().iter().all(|&v| v == 0.0));
        w.sum_dim(-1, false)
            .assert_close(&Tensor::ones(&[1, 3]), 1e-6, 1e-6);
        // same as attending to the three real keys only, whatever the padded values are
        let real = kv.narrow(0, 0, 3);
        let (y3, _) = mha.forward(&q, &real, &real, None, None, false);
        y.assert_close(&y3, 1e-6, 1e-6);
        let junk = Tensor::cat(&[&real, &(Tensor::randn(&[2, 1, 4]) * 100.0)], 0);
        let (yj, _) = mha.forward(&q, &junk, &junk, Some(&pad), None, false);
        yj.assert_close(&y3, 1e-6, 1e-6);
    }

    #[test]
    fn eval_mode_disables_dropout() {
        let layer = TransformerEncoderLayer::new(8, 2)
            .dim_feedforward(16)
            .dropout(0.5);
        let x = Tensor::randn(&[4, 2, 8]);
        let (a, b) = (Forward::forward(&layer, &x), Forward::forward(&layer, &x));
        assert!(
            a.max_abs_diff(&b).0 > 0.0,
            "training mode draws fresh masks"
        );
        layer.eval();
        let (a, b) = (Forward::forward(&layer, &x), Forward::forward(&layer, &x));
        assert_eq!(a.to_vec::<f32>(), b.to_vec::<f32>());
        // the attention weights' dropout too
        let mha = MultiheadAttention::new(8, 2).dropout(0.9);
        mha.eval();
        let (_, w) = mha.forward(&x, &x, &x, None, None, true);
        w.unwrap()
            .sum_dim(-1, false)
            .assert_close(&Tensor::ones(&[2, 4]), 1e-6, 1e-6);
    }

    #[test]
    fn post_norm_output_is_normalised() {
        // post-norm ends in norm2 with weight 1 and bias 0: every token has mean 0, variance 1
        let layer = TransformerEncoderLayer::new(8, 2)
            .dim_feedforward(16)
            .dropout(0.0);
        let y = Forward::forward(&layer, &(Tensor::randn(&[3, 2, 8]) * 3.0));
        y.mean_dim(-1, false)
            .assert_close(&Tensor::zeros(&[3, 2]), 1e-5, 1e-5);
        let var = y.square().mean_dim(-1, false);
        var.assert_close(&Tensor::ones(&[3, 2]), 1e-3, 1e-3);
    }

    #[test]
    #[should_panic(
        expected = "MultiheadAttention: embed_dim (6) must be divisible by num_heads (4)"
    )]
    fn heads_must_divide_the_width() {
        let _ = MultiheadAttention::new(6, 4);
    }

    #[test]
    #[should_panic(
        expected = "MultiheadAttention: key_padding_mask of shape [2, 4] must have one of the shapes [[2, 5]]"
    )]
    fn key_padding_mask_shape_is_checked() {
        let x = Tensor::zeros(&[5, 2, 4]);
        let pad = Tensor::from_values(vec![false; 8], &[2, 4]);
        MultiheadAttention::new(4, 2).forward(&x, &x, &x, Some(&pad), None, false);
    }

    #[test]
    #[should_panic(expected = "MultiheadAttention: key of shape [5, 2, 3] must be [L, N, E = 4]")]
    fn key_width_is_checked() {
        let (q, k) = (Tensor::zeros(&[5, 2, 4]), Tensor::zeros(&[5, 2, 3]));
        MultiheadAttention::new(4, 2).forward(&q, &k, &k, None, None, false);
    }
}
