//! repeat: tiling a tensor, like `torch.Tensor.repeat`.

use ndarray::Dimension as _;
use std::panic::Location;

use ndarray::{ArrayD, IxDyn};

use crate::autograd::function::Op;
use crate::autograd::tape::Attr;
use crate::tensor::{Data, Tensor};

impl Tensor {
    /// Tiles the tensor `repeats[i]` times along dim `i`, like `x.repeat(*repeats)`. With more
    /// repeats than dims, the tensor is first viewed with leading size-1 dims. A copy.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let x = Tensor::from_vec(vec![1.0, 2.0], &[2]);
    /// let y = x.repeat(&[2, 2]);
    /// assert_eq!(y.shape(), &[2, 4]);
    /// assert_eq!(y.to_vec::<f32>(), vec![1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 1.0, 2.0]);
    /// ```
    ///
    /// # Panics
    /// If there are fewer repeats than dims.
    #[track_caller]
    pub fn repeat(&self, repeats: &[usize]) -> Tensor {
        let n = self.ndim();
        if repeats.len() < n {
            panic!(
                "repeat: the number of repeats ({}, {repeats:?}) cannot be smaller than the number \
                 of dims of the tensor of shape {:?}, at {}",
                repeats.len(),
                self.shape(),
                Location::caller()
            );
        }
        // the source viewed as [1, s0, 1, s1, …] broadcasts to [r0, s0, r1, s1, …], which is
        // the output in row-major order
        let mut sizes = vec![1; repeats.len() - n];
        sizes.extend_from_slice(self.shape());
        let spread: Vec<usize> = sizes.iter().flat_map(|&s| [1, s]).collect();
        let tiled: Vec<usize> = repeats
            .iter()
            .zip(&sizes)
            .flat_map(|(&r, &s)| [r, s])
            .collect();
        let out_shape: Vec<usize> = repeats.iter().zip(&sizes).map(|(r, s)| r * s).collect();
        let inputs = [self];
        let op = Op::new("repeat", &inputs).attr(
            "repeats",
            Attr::Ints(repeats.iter().map(|&r| r as i64).collect()),
        );
        let out = self.with_data(|d| {
            crate::with_any!(d, |a: T| {
                let src = a.as_standard_layout();
                let src = src
                    .into_shape_with_order(IxDyn(&spread))
                    .expect("same number of elements");
                let all: Vec<T> = src
                    .broadcast(IxDyn(&tiled))
                    .expect("1s broadcast")
                    .iter()
                    .copied()
                    .collect();
                Data::from(
                    ArrayD::from_shape_vec(IxDyn(&out_shape), all)
                        .expect("sizes match")
                        .into_shared(),
                )
            })
        });
        let shape = IxDyn(self.shape());
        // every copy sends its gradient back to the source: sum over the repeat axes
        op.finish(out, move |_, g| {
            let axes: Vec<usize> = (0..tiled.len()).step_by(2).collect();
            vec![Some(
                g.reshape(&tiled)
                    .sum_dim(axes, false)
                    .reshape(shape.slice()),
            )]
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::prelude::*;
    use crate::testing::{randn64, randn64_t};

    #[test]
    fn repeat_tiles_and_adds_leading_dims() {
        let x = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]);
        let y = x.repeat(&[1, 2]);
        assert_eq!(
            y.to_vec::<f32>(),
            vec![1.0, 2.0, 1.0, 2.0, 3.0, 4.0, 3.0, 4.0]
        );
        let z = x.repeat(&[2, 1, 1]);
        assert_eq!(z.shape(), &[2, 2, 2]);
        assert_eq!(z.to_vec::<f32>()[4..], x.to_vec::<f32>()[..]);
        // a transposed input tiles in logical order: xᵀ = [[1, 3], [2, 4]]
        assert_eq!(
            x.t().repeat(&[2, 1]).to_vec::<f32>(),
            vec![1.0, 3.0, 2.0, 4.0, 1.0, 3.0, 2.0, 4.0]
        );
        assert_eq!(x.repeat(&[0, 3]).shape(), &[0, 6]);
    }

    #[test]
    fn repeat_gradient_counts_copies() {
        // y = Σ w ⊙ repeat(x, [3]) ⇒ dy/dx_j = Σ_k w[k·2 + j]
        let x = Tensor::zeros(&[2]).requires_grad();
        let w = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[6]);
        (x.repeat(&[3]) * &w).sum().backward();
        assert_eq!(x.grad().unwrap().to_vec::<f32>(), vec![9.0, 12.0]);
    }

    #[test]
    fn repeat_gradcheck() {
        for x in [
            randn64(&[2, 3], 1),
            randn64_t(&[2, 3], 2),
            randn64(&[3, 7], 3).narrow(1, 2, 3).slice(0, None, None, 2),
        ] {
            let x = std::slice::from_ref(&x);
            gradcheck(|x| x[0].repeat(&[2, 3]), x).unwrap();
            gradcheck(|x| x[0].repeat(&[2, 1, 2]), x).unwrap();
        }
    }

    #[test]
    #[should_panic(
        expected = "repeat: the number of repeats (1, [2]) cannot be smaller than the number of dims of the tensor of shape [2, 2]"
    )]
    fn repeat_with_too_few_repeats_is_an_error() {
        let _ = Tensor::zeros(&[2, 2]).repeat(&[2]);
    }
}
