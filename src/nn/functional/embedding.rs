//! Embedding lookup: rows of a weight matrix picked by integer indices.

use std::panic::Location;

use ndarray::{Axis, IxDyn};

use crate::autograd::function::Op;
use crate::autograd::tape::Attr;
use crate::tensor::{Data, Tensor};

/// The rows `weight[indices]`, like `torch.nn.functional.embedding(indices, weight, padding_idx)`:
/// `indices` is an int64 tensor of any shape, `weight` is `[num_embeddings, embedding_dim]`, and
/// the output has shape `[*indices.shape, embedding_dim]`.
///
/// The gradient of `weight` sums the output gradients of every lookup of a row (rows looked up
/// twice get both); with `padding_idx`, the row `padding_idx` gets no gradient, so a padding
/// vector stays as initialised while training. The backward is an `index_add` into zeros, so the
/// gradient is differentiable again.
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::nn::functional as F;
/// let w = Tensor::arange(0.0, 6.0, 1.0).reshape([3, 2]).requires_grad();
/// let idx = Tensor::from_vec_i64(vec![2, 0, 2, 1], &[2, 2]);
/// let y = F::embedding(&idx, &w, Some(1));
/// assert_eq!(y.shape(), &[2, 2, 2]);
/// assert_eq!(y.to_vec::<f32>()[..4], [4.0, 5.0, 0.0, 1.0]);
/// y.sum().backward();
/// // row 2 was looked up twice, row 0 once, row 1 is the padding row
/// assert_eq!(w.grad().unwrap().to_vec::<f32>(), vec![1.0, 1.0, 0.0, 0.0, 2.0, 2.0]);
/// ```
///
/// # Panics
/// If `indices` is not int64, `weight` is not 2-d, an index is outside `[0, num_embeddings)`, or
/// `padding_idx` is not below `num_embeddings`.
#[track_caller]
pub fn embedding(indices: &Tensor, weight: &Tensor, padding_idx: Option<usize>) -> Tensor {
    let loc = Location::caller();
    if weight.ndim() != 2 {
        panic!(
            "embedding: weight must be 2-d [num_embeddings, embedding_dim], got shape {:?}, at \
             {loc}",
            weight.shape()
        );
    }
    let (num, dim) = (weight.shape()[0], weight.shape()[1]);
    let idx = indices.with_data(|d| match d {
        Data::I64(a) => a.clone(),
        other => panic!(
            "embedding: indices must be an int64 tensor, got {} (convert with .long()), at {loc}",
            other.dtype()
        ),
    });
    if let Some(p) = padding_idx {
        if p >= num {
            panic!("embedding: padding_idx {p} must be within num_embeddings {num}, at {loc}");
        }
    }
    if let Some(bad) = idx.iter().find(|&&i| !(0..num as i64).contains(&i)) {
        panic!(
            "embedding: index {bad} is out of range for num_embeddings {num} (weight shape \
             {:?}), at {loc}",
            weight.shape()
        );
    }
    let rows: Vec<usize> = idx.iter().map(|&i| i as usize).collect();
    let mut out_shape = indices.shape().to_vec();
    out_shape.push(dim);
    let out = weight.with_data(|w| {
        crate::with_any!(w, |w: T| {
            let picked = w.select(Axis(0), &rows);
            Data::from(
                picked
                    .into_shape_with_order(IxDyn(&out_shape))
                    .expect("one row per index")
                    .into_shared(),
            )
        })
    });

    let flat = Tensor::from_data(Data::I64(
        idx.as_standard_layout()
            .into_owned()
            .into_shape_with_order(IxDyn(&[rows.len()]))
            .expect("flattened")
            .into_shared(),
    ));
    // rows looked up at the padding index: their output gradient is dropped
    let pad_mask = padding_idx.map(|p| {
        Tensor::from_data(Data::Bool(
            flat.to_ndarray::<i64>()
                .mapv(|i| i == p as i64)
                .into_shape_with_order(IxDyn(&[rows.len(), 1]))
                .expect("one flag per index")
                .into_shared(),
        ))
    });
    let inputs = [weight, indices];
    let mut op = Op::new("embedding", &inputs)
        .attr(
            "padding_idx",
            Attr::Int(padding_idx.map_or(-1, |p| p as i64)),
        )
        .save(&flat);
    if let Some(m) = &pad_mask {
        op = op.save(m);
    }
    let has_pad = pad_mask.is_some();
    op.finish(out, move |ctx, g| {
        // y[k] = weight[idx[k]] ⇒ dweight[r] = Σ_{k: idx[k] = r, r ≠ padding_idx} g[k]
        let mut g2 = g.reshape([-1, dim as isize]);
        if has_pad {
            g2 = g2.masked_fill(&ctx.saved(1), 0.0);
        }
        let zeros = Tensor::zeros_dtype(&[num, dim], g.dtype());
        vec![Some(zeros.index_add(0, &ctx.saved(0), &g2)), None]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::functional::dropout::grad_of;
    use crate::prelude::*;
    use crate::testing::{randn64, randn64_t};

    fn long(v: Vec<i64>, shape: &[usize]) -> Tensor {
        Tensor::from_vec_i64(v, shape)
    }

    #[test]
    fn output_has_index_shape_plus_embedding_dim() {
        let w = Tensor::arange(0.0, 12.0, 1.0).reshape([4, 3]);
        let y = embedding(&long(vec![3, 0], &[2]), &w, None);
        assert_eq!(y.shape(), &[2, 3]);
        assert_eq!(y.to_vec::<f32>(), vec![9.0, 10.0, 11.0, 0.0, 1.0, 2.0]);
        // a 0-d index gives one row
        assert_eq!(embedding(&long(vec![1], &[]), &w, None).shape(), &[3]);
        assert_eq!(
            embedding(&long(vec![1; 6], &[1, 2, 3]), &w, None).shape(),
            &[1, 2, 3, 3]
        );
    }

    #[test]
    fn repeated_lookups_accumulate_and_padding_rows_get_no_gradient() {
        let w = Tensor::randn(&[5, 2]).requires_grad();
        let idx = long(vec![4, 1, 4, 0, 1, 1], &[3, 2]);
        // y = Σ_k r_k · w[idx_k] ⇒ dw[row] = Σ_{idx_k = row} r_k, except the padding row (1)
        let r = Tensor::randn(&[3, 2, 2]);
        (embedding(&idx, &w, Some(1)) * &r).sum().backward();
        let gw = w.grad().unwrap().to_vec::<f32>();
        let rv = r.to_vec::<f32>();
        let idxv = idx.to_vec::<i64>();
        for row in 0..5 {
            for c in 0..2 {
                let want: f32 = if row == 1 {
                    0.0
                } else {
                    (0..6)
                        .filter(|&k| idxv[k] == row as i64)
                        .map(|k| rv[2 * k + c])
                        .sum()
                };
                assert!((gw[2 * row + c] - want).abs() < 1e-6, "row {row} col {c}");
            }
        }
        assert_eq!(&gw[2..4], &[0.0, 0.0]);
    }

    #[test]
    fn embedding_gradcheck() {
        let idx = long(vec![2, 0, 2, 3, 1, 0], &[2, 3]);
        for w in [randn64(&[4, 3], 1), randn64_t(&[4, 3], 2)] {
            let w = std::slice::from_ref(&w);
            gradcheck(|w| embedding(&idx, &w[0], None), w).unwrap();
            // padding_idx zeroes a gradient the forward does depend on (by definition, as in
            // PyTorch), so finite differences only agree where the padding row is not looked up
            let no_pad_lookup = long(vec![0, 1, 3, 3], &[4]);
            gradcheck(|w| embedding(&no_pad_lookup, &w[0], Some(2)), w).unwrap();
        }
        // second order: d/dw Σ embedding(w)³ goes through index_add, differentiable again
        gradcheck(
            |w| grad_of(&w[0], |w| embedding(&idx, w, Some(0)).powf(3.0).sum()),
            &[randn64(&[4, 3], 3)],
        )
        .unwrap();
    }

    #[test]
    #[should_panic(
        expected = "embedding: index 5 is out of range for num_embeddings 4 (weight shape [4, 2]), \
                    at src/nn/functional/embedding.rs"
    )]
    fn out_of_range_index_names_index_and_size() {
        let _ = embedding(&long(vec![0, 5], &[2]), &Tensor::zeros(&[4, 2]), None);
    }

    #[test]
    #[should_panic(expected = "embedding: index -1 is out of range for num_embeddings 4")]
    fn negative_index_is_an_error() {
        let _ = embedding(&long(vec![-1], &[1]), &Tensor::zeros(&[4, 2]), None);
    }

    #[test]
    #[should_panic(expected = "embedding: indices must be an int64 tensor, got float32")]
    fn float_indices_are_an_error() {
        let _ = embedding(&Tensor::zeros(&[2]), &Tensor::zeros(&[4, 2]), None);
    }

    #[test]
    #[should_panic(
        expected = "embedding: weight must be 2-d [num_embeddings, embedding_dim], got shape [4]"
    )]
    fn weight_must_be_a_matrix() {
        let _ = embedding(&long(vec![0], &[1]), &Tensor::zeros(&[4]), None);
    }

    #[test]
    #[should_panic(expected = "embedding: padding_idx 4 must be within num_embeddings 4")]
    fn padding_idx_out_of_range_is_an_error() {
        let _ = embedding(&long(vec![0], &[1]), &Tensor::zeros(&[4, 2]), Some(4));
    }
}
