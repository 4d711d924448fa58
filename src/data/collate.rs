//! Merging dataset items into a batch: [`default_collate`] stacks each tensor of the items along a
//! new dim 0, like `torch.utils.data.default_collate`.

use std::panic::Location;

use ndarray::Axis;

use super::TensorTuple;
use crate::tensor::{Data, Element, Tensor};

/// Merges items into one batch of the same type by stacking their `k`-th tensors along a new
/// dim 0, like `torch.utils.data.default_collate`: items `(x, y)` with `x` of shape `[3, 4]` and
/// `y` a scalar give `(xb, yb)` with `xb` of shape `[n, 3, 4]` and `yb` of shape `[n]`.
///
/// This is the collate function of [`DataLoader::new`](crate::data::DataLoader::new). The batch
/// tensors are new leaves (copies), cut off from the graph.
///
/// ```
/// use tapegrad::data::default_collate;
/// use tapegrad::prelude::*;
///
/// let items = vec![
///     (Tensor::from_vec(vec![1.0, 2.0], &[2]), Tensor::from_vec_i64(vec![0], &[])),
///     (Tensor::from_vec(vec![3.0, 4.0], &[2]), Tensor::from_vec_i64(vec![1], &[])),
/// ];
/// let (x, y) = default_collate(items);
/// assert_eq!(x.shape(), &[2, 2]);
/// assert_eq!(x.to_vec::<f32>(), vec![1.0, 2.0, 3.0, 4.0]);
/// assert_eq!(y.to_vec::<i64>(), vec![0, 1]);
/// ```
///
/// # Panics
/// If there are no items, if items hold different numbers of tensors (possible with
/// `Vec<Tensor>`), or if the `k`-th tensors of two items differ in shape or dtype.
#[track_caller]
pub fn default_collate<T: TensorTuple>(items: Vec<T>) -> T {
    let loc = Location::caller();
    let Some(first) = items.first() else {
        panic!("default_collate: no items to collate, at {loc}");
    };
    let width = first.to_tensors().len();
    let mut fields: Vec<Vec<Tensor>> = vec![Vec::with_capacity(items.len()); width];
    for (i, item) in items.iter().enumerate() {
        let ts = item.to_tensors();
        if ts.len() != width {
            panic!(
                "default_collate: item {i} holds {} tensors but item 0 holds {width}, at {loc}",
                ts.len()
            );
        }
        for (field, t) in fields.iter_mut().zip(ts) {
            field.push(t);
        }
    }
    let stacked = fields
        .iter()
        .enumerate()
        .map(|(k, field)| {
            stack_rows(field)
                .unwrap_or_else(|e| panic!("default_collate: tensor {k} of {e}, at {loc}"))
        })
        .collect();
    T::from_tensors(stacked)
}

/// Stacks tensors of one shape and dtype along a new dim 0 (a copy, in row-major layout). On a
/// mismatch, the error reads "item i has shape .. but item 0 has ..".
fn stack_rows(tensors: &[Tensor]) -> Result<Tensor, String> {
    let first = &tensors[0];
    if let Some((i, t)) = tensors
        .iter()
        .enumerate()
        .find(|(_, t)| t.shape() != first.shape() || t.dtype() != first.dtype())
    {
        return Err(format!(
            "item {i} has shape {:?} ({}) but item 0 has shape {:?} ({})",
            t.shape(),
            t.dtype(),
            first.shape(),
            first.dtype()
        ));
    }
    let data: Vec<Data> = tensors.iter().map(Tensor::data).collect();
    let out = crate::with_any!(&data[0], |_a: T| {
        let views: Vec<_> = data
            .iter()
            .map(|d| T::unwrap(d).expect("dtypes checked above").view())
            .collect();
        let stacked = ndarray::stack(Axis(0), &views).expect("shapes checked above");
        Data::from(stacked.into_shared())
    });
    Ok(Tensor::from_data(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stacks_scalars_into_a_vector_and_matrices_into_a_3d_tensor() {
        let items: Vec<(Tensor, Tensor)> = (0..3)
            .map(|i| {
                let x = Tensor::full(&[2, 2], i as f32);
                (x, Tensor::scalar_of(10.0 * i as f64, crate::DType::F64))
            })
            .collect();
        let (x, y) = default_collate(items);
        assert_eq!(x.shape(), &[3, 2, 2]);
        // x[i] is filled with i
        let expected: Vec<f32> = (0..3).flat_map(|i| vec![i as f32; 4]).collect();
        assert_eq!(x.to_vec::<f32>(), expected);
        assert_eq!(y.shape(), &[3]);
        assert_eq!(y.to_vec::<f64>(), vec![0.0, 10.0, 20.0]);
    }

    #[test]
    fn stacking_copies_non_contiguous_items_in_logical_order() {
        // xᵀ of [[0, 1], [2, 3]] is [[0, 2], [1, 3]]
        let xt = Tensor::arange(0.0, 4.0, 1.0).reshape([2, 2]).t();
        let b = default_collate(vec![xt.clone(), xt]);
        assert!(b.is_contiguous());
        assert_eq!(
            b.to_vec::<f32>(),
            vec![0.0, 2.0, 1.0, 3.0, 0.0, 2.0, 1.0, 3.0]
        );
    }

    #[test]
    fn batch_is_a_leaf_cut_off_from_the_graph() {
        let x = Tensor::ones(&[2]).requires_grad();
        let b = default_collate(vec![x.clone(), x]);
        assert!(b.is_leaf());
        assert!(!b.requires_grad_enabled());
    }

    #[test]
    #[should_panic(
        expected = "default_collate: tensor 1 of item 2 has shape [3] (float32) but item 0 has shape [2] (float32)"
    )]
    fn items_of_different_shapes_panic() {
        let item = |n: usize| (Tensor::zeros(&[1]), Tensor::zeros(&[n]));
        default_collate(vec![item(2), item(2), item(3)]);
    }

    #[test]
    #[should_panic(
        expected = "default_collate: tensor 0 of item 1 has shape [] (int64) but item 0 has shape [] (float32)"
    )]
    fn items_of_different_dtypes_panic() {
        default_collate(vec![
            Tensor::scalar(1.0),
            Tensor::from_vec_i64(vec![1], &[]),
        ]);
    }

    #[test]
    #[should_panic(expected = "default_collate: item 1 holds 1 tensors but item 0 holds 2")]
    fn vec_items_of_different_lengths_panic() {
        default_collate(vec![
            vec![Tensor::zeros(&[1]); 2],
            vec![Tensor::zeros(&[1])],
        ]);
    }

    #[test]
    #[should_panic(expected = "default_collate: no items to collate")]
    fn no_items_panics() {
        default_collate(Vec::<Tensor>::new());
    }
}
