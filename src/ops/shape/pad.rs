//! Constant padding, like `torch.nn.functional.pad(x, pads, value=v)`: the input embedded in a
//! larger tensor filled with `value`. Its backward is the slice of the gradient that covers the
//! input (the same embedding op as the backward of slicing).

use std::panic::Location;

use super::slice::{embed_region, full_region, range};
use crate::tensor::Tensor;

impl Tensor {
    /// Pads with the constant `value`, like `F.pad(x, pads, value=value)`. `pads` holds
    /// `(before, after)` pairs starting from the LAST dim: `[left, right]` pads the last dim,
    /// `[left, right, top, bottom]` the last two, and so on.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let x = Tensor::ones(&[1, 2]);
    /// // one column left, two right; one row on top, none below
    /// let y = x.pad(&[1, 2, 1, 0], 0.0);
    /// assert_eq!(y.shape(), &[2, 5]);
    /// assert_eq!(y.to_vec::<f32>(), vec![0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0]);
    /// ```
    ///
    /// # Panics
    /// If `pads` has an odd length or more than two values per dim.
    #[track_caller]
    pub fn pad(&self, pads: &[usize], value: f64) -> Tensor {
        let n = self.ndim();
        if pads.len() % 2 != 0 || pads.len() > 2 * n {
            panic!(
                "pad: the padding {pads:?} must hold (before, after) pairs for at most the {n} \
                 dims of the tensor of shape {:?}, at {}",
                self.shape(),
                Location::caller()
            );
        }
        let mut shape = self.shape().to_vec();
        let mut region = full_region(&shape);
        for (i, pair) in pads.chunks(2).enumerate() {
            let d = n - 1 - i;
            region[d] = range(pair[0], pair[0] + shape[d], 1);
            shape[d] += pair[0] + pair[1];
        }
        embed_region(self, "pad", &shape, region, value)
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::shape::grad_of;
    use crate::prelude::*;
    use crate::testing::{randn64, randn64_t};

    #[test]
    fn pad_orders_pairs_from_the_last_dim() {
        let x = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]);
        // last dim: 0 left, 1 right; first dim: 1 before, 0 after; fill -1
        let y = x.pad(&[0, 1, 1, 0], -1.0);
        assert_eq!(y.shape(), &[3, 3]);
        #[rustfmt::skip]
        assert_eq!(y.to_vec::<f32>(), vec![
            -1.0, -1.0, -1.0,
             1.0,  2.0, -1.0,
             3.0,  4.0, -1.0,
        ]);
        // fewer pairs than dims leave the leading dims alone
        assert_eq!(
            Tensor::zeros(&[2, 3, 4]).pad(&[2, 2], 0.0).shape(),
            &[2, 3, 8]
        );
        let ints = Tensor::from_vec_i64(vec![5], &[1]).pad(&[1, 1], 7.0);
        assert_eq!(ints.to_vec::<i64>(), vec![7, 5, 7]);
    }

    #[test]
    fn pad_gradient_is_the_inner_slice() {
        // y = Σ w ⊙ pad(x) ⇒ dy/dx = w over the region x occupies
        let x = Tensor::zeros(&[2]).requires_grad();
        let w = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0], &[5]);
        (x.pad(&[2, 1], 9.0) * &w).sum().backward();
        assert_eq!(x.grad().unwrap().to_vec::<f32>(), vec![3.0, 4.0]);
    }

    #[test]
    fn pad_gradcheck() {
        for x in [
            randn64(&[2, 3], 1),
            randn64_t(&[2, 3], 2),
            randn64(&[4, 6], 3).slice(1, Some(1), None, 2),
        ] {
            let x = std::slice::from_ref(&x);
            gradcheck(|x| x[0].pad(&[1, 2], 0.5), x).unwrap();
            gradcheck(|x| x[0].pad(&[0, 1, 2, 0], 0.0), x).unwrap();
        }
        // second order: the gradient of pad is a slice, whose gradient is a pad again
        gradcheck(
            |x| grad_of(&x[0], |x| x.pad(&[1, 1], 0.0).powf(3.0).sum()),
            &[randn64(&[3], 4)],
        )
        .unwrap();
    }

    #[test]
    #[should_panic(
        expected = "pad: the padding [1, 1, 1] must hold (before, after) pairs for at most the 2 dims of the tensor of shape [2, 2]"
    )]
    fn pad_with_an_odd_length_is_an_error() {
        let _ = Tensor::zeros(&[2, 2]).pad(&[1, 1, 1], 0.0);
    }

    #[test]
    #[should_panic(
        expected = "pad: the padding [1, 1, 1, 1] must hold (before, after) pairs for at most the 1 dims"
    )]
    fn pad_with_too_many_pairs_is_an_error() {
        let _ = Tensor::zeros(&[2]).pad(&[1, 1, 1, 1], 0.0);
    }
}
