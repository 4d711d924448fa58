//! Scaled dot-product attention, `softmax(Q Kᵀ · scale + mask) V`, composed from differentiable
//! ops (matmul, where, softmax, dropout), so every gradient, including higher-order ones, comes
//! from their rules.

use std::panic::Location;

use crate::ops::binary::same_dtype_or_panic;
use crate::tensor::{DType, Tensor};

use super::dropout::dropout;

/// Whether a bool mask is false along a whole lane of its last dim (the keys).
fn masks_a_whole_lane(m: &Tensor) -> bool {
    let keys = m.shape().last().copied().unwrap_or(1);
    let keep = m.contiguous().to_vec::<bool>();
    keys > 0 && keep.chunks(keys).any(|lane| lane.iter().all(|&k| !k))
}

/// The causal keep-mask `[L, S]`: query `i` may attend to key `j` only when `j <= i` (aligned at
/// the top left, as PyTorch's `is_causal`).
fn causal_keep(l: usize, s: usize) -> Tensor {
    let v: Vec<bool> = (0..l).flat_map(|i| (0..s).map(move |j| j <= i)).collect();
    Tensor::from_values(v, &[l, s])
}

/// Attention of `query` `[..., L, E]` over `key` `[..., S, E]` and `value` `[..., S, Ev]`, like
/// `torch.nn.functional.scaled_dot_product_attention(query, key, value, attn_mask, dropout_p,
/// is_causal, scale)`: `softmax(Q Kᵀ · scale + bias) V`, of shape `[..., L, Ev]`. The leading
/// (batch, head) dims broadcast as in [`matmul`](Tensor::matmul).
///
/// - `scale` defaults to `1 / sqrt(E)`.
/// - `attn_mask`, broadcast against the `[..., L, S]` scores, is either boolean — `true` means
///   the pair takes part, as in PyTorch (a key-padding mask is `[N, 1, 1, S]`, false at padded
///   keys) — or of the query's float dtype and added to the scores (`-inf` excludes a pair; the
///   mask then gets a gradient too).
/// - `is_causal` lets query `i` attend only to keys `j <= i`.
/// - `dropout_p > 0` applies dropout (drawn from the global generator) to the attention
///   weights; pass 0 in eval mode, as with PyTorch.
///
/// A query whose every key is masked out gets an output of zeros and zero gradients, as PyTorch
/// 2.15 does on the CPU (see `tests/nn_ops_parity.rs`), instead of the NaN a plain softmax of
/// `-inf`s would give (and older PyTorch versions gave).
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::nn::functional as F;
/// let (q, k, v) = (Tensor::randn(&[2, 4, 3, 8]), Tensor::randn(&[2, 4, 5, 8]), Tensor::randn(&[2, 4, 5, 6]));
/// // key padding: sample 0 has 5 real keys, sample 1 only 3 (its last two are padding)
/// let keep: Vec<bool> = (0..10).map(|i| i < 5 || i % 5 < 3).collect();
/// let keep = Tensor::from_values(keep, &[2, 1, 1, 5]);
/// let y = F::scaled_dot_product_attention(&q, &k, &v, Some(&keep), 0.0, false, None);
/// assert_eq!(y.shape(), &[2, 4, 3, 6]);
/// ```
///
/// # Panics
/// If an argument has fewer than 2 dims, the dtypes differ, `query` and `key` differ in `E` or
/// `key` and `value` in `S`, the batch dims or the mask do not broadcast, the mask is neither
/// bool nor the query's dtype, both `attn_mask` and `is_causal` are given, or `dropout_p` is
/// outside `[0, 1]`.
#[track_caller]
pub fn scaled_dot_product_attention(
    query: &Tensor,
    key: &Tensor,
    value: &Tensor,
    attn_mask: Option<&Tensor>,
    dropout_p: f64,
    is_causal: bool,
    scale: Option<f64>,
) -> Tensor {
    let loc = Location::caller();
    const OP: &str = "scaled_dot_product_attention";
    let (q, k, v) = (query.shape(), key.shape(), value.shape());
    if q.len() < 2 || k.len() < 2 || v.len() < 2 {
        panic!(
            "{OP}: query, key and value need at least 2 dims ([..., L, E], [..., S, E], \
             [..., S, Ev]), got shapes {q:?}, {k:?} and {v:?}, at {loc}"
        );
    }
    same_dtype_or_panic(OP, query, key);
    same_dtype_or_panic(OP, query, value);
    let (e, l, s) = (q[q.len() - 1], q[q.len() - 2], k[k.len() - 2]);
    if k[k.len() - 1] != e {
        panic!(
            "{OP}: query and key must have the same embedding size E, got query of shape {q:?} \
             and key of shape {k:?}, at {loc}"
        );
    }
    if v[v.len() - 2] != s {
        panic!(
            "{OP}: key and value must have the same sequence length S, got key of shape {k:?} \
             and value of shape {v:?}, at {loc}"
        );
    }
    if let Some(m) = attn_mask {
        if is_causal {
            panic!(
                "{OP}: an explicit attn_mask must not be given together with is_causal = true, \
                 at {loc}"
            );
        }
        if m.dtype() != DType::Bool && m.dtype() != query.dtype() {
            panic!(
                "{OP}: attn_mask must be bool or of the query's dtype ({}), got {}, at {loc}",
                query.dtype(),
                m.dtype()
            );
        }
    }
    let scale = scale.unwrap_or(1.0 / (e as f64).sqrt());
    let neg_inf = Tensor::scalar_of(f64::NEG_INFINITY, query.dtype());
    let mut scores = query.matmul(&key.transpose(-2, -1)) * scale;
    if is_causal {
        scores = scores.where_(&causal_keep(l, s), &neg_inf);
    }
    let mut dead = None;
    if let Some(m) = attn_mask {
        scores = if m.dtype() == DType::Bool {
            scores.where_(m, &neg_inf)
        } else {
            scores + m
        };
        // Rows with every key masked out: softmax them as if unmasked (finite, so the backward
        // stays finite) and zero their weights afterwards, like PyTorch's "safe softmax". A
        // bool mask that keeps some key in every lane (a padding mask) has none: skip the search.
        if m.dtype() != DType::Bool || masks_a_whole_lane(m) {
            let d = {
                let _off = crate::autograd::no_grad();
                scores.amax(-1, true).eq_scalar(f64::NEG_INFINITY)
            };
            scores = scores.masked_fill(&d, 0.0);
            dead = Some(d);
        }
    }
    let mut weights = scores.softmax(-1);
    if let Some(d) = &dead {
        weights = weights.masked_fill(d, 0.0);
    }
    dropout(&weights, dropout_p, true).matmul(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prelude::*;
    use crate::testing::{randn64, randn64_t};

    fn sdpa(q: &Tensor, k: &Tensor, v: &Tensor, m: Option<&Tensor>, causal: bool) -> Tensor {
        scaled_dot_product_attention(q, k, v, m, 0.0, causal, None)
    }

    fn assert_close(a: &Tensor, b: &Tensor) {
        a.assert_close(b, 1e-10, 1e-12);
    }

    #[test]
    fn matches_softmax_of_scaled_scores_times_values() {
        let (q, k, v) = (
            randn64(&[2, 3, 4], 1),
            randn64(&[2, 5, 4], 2),
            randn64(&[2, 5, 6], 3),
        );
        let want = (q.matmul(&k.transpose(-2, -1)) / 2.0)
            .softmax(-1)
            .matmul(&v); // √E = 2
        assert_close(&sdpa(&q, &k, &v, None, false), &want);
        let scaled = scaled_dot_product_attention(&q, &k, &v, None, 0.0, false, Some(0.3));
        assert_close(
            &scaled,
            &(q.matmul(&k.transpose(-2, -1)) * 0.3)
                .softmax(-1)
                .matmul(&v),
        );
    }

    #[test]
    fn zero_queries_average_the_values() {
        // q = 0 ⇒ all scores 0 ⇒ uniform weights 1/S ⇒ each output row is the mean of v's rows
        let v = randn64(&[4, 3], 1);
        let y = sdpa(
            &Tensor::zeros_dtype(&[2, 5], DType::F64),
            &randn64(&[4, 5], 2),
            &v,
            None,
            false,
        );
        let mean = v.mean_dim(0, true).expand([2, 3]);
        assert_close(&y, &mean);
    }

    #[test]
    fn causal_rows_see_only_earlier_keys() {
        let (q, k) = (randn64(&[4, 3], 1), randn64(&[4, 3], 2));
        let v = randn64(&[4, 2], 3).requires_grad();
        let y = sdpa(&q, &k, &v, None, true);
        // the first query sees only key 0: its output is v[0]
        assert_close(&y.narrow(0, 0, 1), &v.detach().narrow(0, 0, 1));
        // output row 1 depends on v rows 0 and 1 only
        y.narrow(0, 1, 1).sum().backward();
        let gv = v.grad().unwrap().to_vec::<f64>();
        assert!(gv[..4].iter().all(|&g| g != 0.0) && gv[4..].iter().all(|&g| g == 0.0));
        // same as the explicit lower-triangular bool mask
        let keep = causal_keep(4, 4);
        assert_close(&y, &sdpa(&q, &k, &v.detach(), Some(&keep), false));
    }

    #[test]
    fn key_padding_mask_equals_attending_to_the_unpadded_keys() {
        // N = 2, H = 2, L = 3, S = 4; sample 0 has 4 real keys, sample 1 only 2
        let (q, k, v) = (
            randn64(&[2, 2, 3, 5], 1),
            randn64(&[2, 2, 4, 5], 2),
            randn64(&[2, 2, 4, 3], 3),
        );
        let keep = Tensor::from_values(
            vec![true, true, true, true, true, true, false, false],
            &[2, 1, 1, 4],
        );
        let y = sdpa(&q, &k, &v, Some(&keep), false);
        let s0 = sdpa(
            &q.narrow(0, 0, 1),
            &k.narrow(0, 0, 1),
            &v.narrow(0, 0, 1),
            None,
            false,
        );
        let s1 = sdpa(
            &q.narrow(0, 1, 1),
            &k.narrow(0, 1, 1).narrow(2, 0, 2),
            &v.narrow(0, 1, 1).narrow(2, 0, 2),
            None,
            false,
        );
        assert_close(&y, &Tensor::cat(&[&s0, &s1], 0));
        // the float form of the same mask: 0 to keep, -inf to drop
        let bias = Tensor::zeros_dtype(&[2, 1, 1, 4], DType::F64)
            .masked_fill(&keep.logical_not(), f64::NEG_INFINITY);
        assert_close(&sdpa(&q, &k, &v, Some(&bias), false), &y);
    }

    #[test]
    fn fully_masked_rows_give_zeros_and_finite_gradients() {
        let q = randn64(&[2, 3], 1).requires_grad();
        let (k, v) = (randn64(&[3, 3], 2), randn64(&[3, 2], 3));
        // query 1 may attend to nothing
        let keep = Tensor::from_values(vec![true, false, true, false, false, false], &[2, 3]);
        let y = sdpa(&q, &k, &v, Some(&keep), false);
        assert_eq!(y.narrow(0, 1, 1).to_vec::<f64>(), vec![0.0, 0.0]);
        assert!(y.to_vec::<f64>().iter().all(|x| x.is_finite()));
        y.sum().backward();
        let gq = q.grad().unwrap().to_vec::<f64>();
        assert!(gq.iter().all(|g| g.is_finite()));
        assert_eq!(&gq[3..], &[0.0, 0.0, 0.0]);
    }

    #[test]
    fn dropout_of_one_drops_every_weight() {
        let (q, k, v) = (
            Tensor::randn(&[3, 4]),
            Tensor::randn(&[5, 4]),
            Tensor::randn(&[5, 2]),
        );
        let y = scaled_dot_product_attention(&q, &k, &v, None, 1.0, false, None);
        assert!(y.to_vec::<f32>().iter().all(|&x| x == 0.0));
    }

    #[test]
    fn attention_gradcheck() {
        let cases = [
            (
                randn64(&[2, 3, 4], 1),
                randn64(&[2, 5, 4], 2),
                randn64(&[2, 5, 3], 3),
            ),
            // key and value shared across the batch: broadcast batch dims
            (
                randn64(&[2, 3, 4], 4),
                randn64(&[5, 4], 5),
                randn64(&[1, 5, 3], 6),
            ),
            // non-contiguous inputs
            (
                randn64_t(&[2, 3, 4], 7),
                randn64_t(&[2, 5, 4], 8),
                randn64_t(&[2, 5, 3], 9),
            ),
        ];
        let keep = Tensor::from_values(
            vec![
                true, true, false, true, false, true, true, true, true, false,
            ],
            &[2, 1, 5],
        );
        for (q, k, v) in cases {
            let xs = [q, k, v];
            gradcheck(|x| sdpa(&x[0], &x[1], &x[2], None, false), &xs).unwrap();
            gradcheck(|x| sdpa(&x[0], &x[1], &x[2], None, true), &xs).unwrap();
            gradcheck(|x| sdpa(&x[0], &x[1], &x[2], Some(&keep), false), &xs).unwrap();
        }
        // a float mask gets a gradient too
        let xs = [
            randn64(&[3, 4], 10),
            randn64(&[5, 4], 11),
            randn64(&[5, 2], 12),
            randn64(&[3, 5], 13),
        ];
        gradcheck(|x| sdpa(&x[0], &x[1], &x[2], Some(&x[3]), false), &xs).unwrap();
    }

    #[test]
    #[should_panic(
        expected = "scaled_dot_product_attention: query and key must have the same embedding size \
                    E, got query of shape [3, 4] and key of shape [5, 2], at \
                    src/nn/functional/attention.rs"
    )]
    fn embedding_sizes_must_match() {
        let _ = sdpa(
            &Tensor::zeros(&[3, 4]),
            &Tensor::zeros(&[5, 2]),
            &Tensor::zeros(&[5, 2]),
            None,
            false,
        );
    }

    #[test]
    #[should_panic(
        expected = "scaled_dot_product_attention: key and value must have the same sequence length S"
    )]
    fn key_and_value_lengths_must_match() {
        let _ = sdpa(
            &Tensor::zeros(&[3, 4]),
            &Tensor::zeros(&[5, 4]),
            &Tensor::zeros(&[6, 2]),
            None,
            false,
        );
    }

    #[test]
    #[should_panic(
        expected = "scaled_dot_product_attention: an explicit attn_mask must not be given together with is_causal = true"
    )]
    fn mask_and_causal_together_is_an_error() {
        let m = Tensor::from_values(vec![true; 15], &[3, 5]);
        let _ = sdpa(
            &Tensor::zeros(&[3, 4]),
            &Tensor::zeros(&[5, 4]),
            &Tensor::zeros(&[5, 2]),
            Some(&m),
            true,
        );
    }

    #[test]
    #[should_panic(
        expected = "scaled_dot_product_attention: attn_mask must be bool or of the query's dtype (float32), got int64"
    )]
    fn integer_masks_are_an_error() {
        let m = Tensor::from_vec_i64(vec![1; 15], &[3, 5]);
        let _ = sdpa(
            &Tensor::zeros(&[3, 4]),
            &Tensor::zeros(&[5, 4]),
            &Tensor::zeros(&[5, 2]),
            Some(&m),
            false,
        );
    }

    #[test]
    #[should_panic(
        expected = "scaled_dot_product_attention: query, key and value need at least 2 dims"
    )]
    fn vectors_are_an_error() {
        let _ = sdpa(
            &Tensor::zeros(&[4]),
            &Tensor::zeros(&[5, 4]),
            &Tensor::zeros(&[5, 2]),
            None,
            false,
        );
    }

    #[test]
    #[should_panic(expected = "dropout: dropout probability has to be between 0 and 1, but got 2")]
    fn dropout_p_is_checked() {
        let x = Tensor::zeros(&[2, 2]);
        let _ = scaled_dot_product_attention(&x, &x, &x, None, 2.0, false, None);
    }
}
