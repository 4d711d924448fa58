//! `Linear`: `y = x Wᵀ + b`.

use std::panic::Location;

use super::init;
use super::module::{Forward, Module, Visitor};
use crate::tensor::Tensor;

/// A fully connected layer, `y = x Wᵀ + b`, like `nn.Linear`. `weight` is `[out, in]`, `bias`
/// `[out]`, initialised as PyTorch does (U(±1/√in)).
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::nn::{Linear, Forward, Module};
/// let fc = Linear::new(3, 2);
/// assert_eq!(fc.forward(&Tensor::ones(&[5, 3])).shape(), &[5, 2]);
/// assert_eq!(fc.num_parameters(), 3 * 2 + 2);
/// ```
pub struct Linear {
    /// `[out_features, in_features]`.
    pub weight: Tensor,
    /// `[out_features]`, if the layer has a bias.
    pub bias: Option<Tensor>,
}

impl Linear {
    /// A layer with a bias.
    pub fn new(in_features: usize, out_features: usize) -> Linear {
        Linear::with_bias(in_features, out_features, true)
    }

    /// A layer with or without a bias.
    pub fn with_bias(in_features: usize, out_features: usize, bias: bool) -> Linear {
        let weight = Tensor::zeros(&[out_features, in_features]);
        let bias = bias.then(|| Tensor::zeros(&[out_features]));
        init::default_weight_and_bias(&weight, bias.as_ref());
        Linear {
            weight: weight.requires_grad(),
            bias: bias.map(Tensor::requires_grad),
        }
    }

    /// A layer from given tensors (they are made to require grad).
    ///
    /// # Panics
    /// If `weight` is not 2-d or `bias` does not have `weight.shape()[0]` elements.
    #[track_caller]
    pub fn from_tensors(weight: Tensor, bias: Option<Tensor>) -> Linear {
        let loc = Location::caller();
        if weight.ndim() != 2 {
            panic!(
                "Linear: weight must be [out, in], got shape {:?}, at {loc}",
                weight.shape()
            );
        }
        if let Some(b) = &bias {
            if b.shape() != [weight.shape()[0]] {
                panic!(
                    "Linear: bias of shape {:?} does not match weight of shape {:?}, at {loc}",
                    b.shape(),
                    weight.shape()
                );
            }
        }
        Linear {
            weight: weight.detach().requires_grad(),
            bias: bias.map(|b| b.detach().requires_grad()),
        }
    }

    /// The number of input features.
    pub fn in_features(&self) -> usize {
        self.weight.shape()[1]
    }

    /// The number of output features.
    pub fn out_features(&self) -> usize {
        self.weight.shape()[0]
    }
}

impl Module for Linear {
    fn visit(&self, v: &mut Visitor) {
        v.param("weight", &self.weight);
        if let Some(b) = &self.bias {
            v.param("bias", b);
        }
    }
}

impl Forward for Linear {
    /// `x Wᵀ + b` over the last dim of `x` (any leading dims).
    ///
    /// # Panics
    /// If the last dim of `x` is not `in_features`.
    #[track_caller]
    fn forward(&self, x: &Tensor) -> Tensor {
        let last = x.shape().last().copied();
        if last != Some(self.in_features()) {
            panic!(
                "Linear: input of shape {:?} does not end in in_features = {} (weight {:?}), at {}",
                x.shape(),
                self.in_features(),
                self.weight.shape(),
                Location::caller()
            );
        }
        let y = x.matmul(&self.weight.t());
        match &self.bias {
            Some(b) => y + b,
            None => y,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::nn::{Forward, Linear, Module};
    use crate::prelude::*;

    #[test]
    fn linear_computes_x_w_transpose_plus_b() {
        // W = [[1, 2], [3, 4], [5, 6]], b = [1, 0, -1], x = [1, 1]: y = [4, 7, 10]
        let fc = Linear::from_tensors(
            Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[3, 2]),
            Some(Tensor::from_vec(vec![1.0, 0.0, -1.0], &[3])),
        );
        let y = fc.forward(&Tensor::ones(&[1, 2]));
        assert_eq!(y.to_vec::<f32>(), vec![4.0, 7.0, 10.0]);
    }

    #[test]
    fn linear_gradients_reach_weight_and_bias() {
        let fc = Linear::new(4, 3);
        fc.forward(&Tensor::randn(&[2, 4])).sum().backward();
        for (name, p) in fc.named_parameters() {
            assert_eq!(p.grad().unwrap().shape(), p.shape(), "{name}");
        }
        // d(Σ y)/db = batch size
        assert_eq!(
            fc.bias.as_ref().unwrap().grad().unwrap().to_vec::<f32>(),
            vec![2.0; 3]
        );
    }

    #[test]
    #[should_panic(expected = "Linear: input of shape [2, 5] does not end in in_features = 4")]
    fn linear_rejects_wrong_feature_count() {
        Linear::new(4, 3).forward(&Tensor::zeros(&[2, 5]));
    }
}
