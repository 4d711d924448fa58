//! Activation modules (`nn.ReLU`, `nn.GELU`, …): parameter-free layers for `Sequential`.

use super::module::{Forward, Module, Visitor};
use crate::tensor::Tensor;

macro_rules! activation {
    ($(#[$doc:meta])* $name:ident, |$x:ident| $body:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default)]
        pub struct $name;

        impl Module for $name {
            fn visit(&self, _: &mut Visitor) {}
        }

        impl Forward for $name {
            #[track_caller]
            fn forward(&self, $x: &Tensor) -> Tensor {
                $body
            }
        }
    };
}

activation!(
    /// `max(0, x)`, like `nn.ReLU`.
    ReLU, |x| x.relu());
activation!(
    /// `1 / (1 + e^-x)`, like `nn.Sigmoid`.
    Sigmoid, |x| x.sigmoid());
activation!(
    /// `tanh x`, like `nn.Tanh`.
    Tanh, |x| x.tanh());
activation!(
    /// `x · sigmoid(x)`, like `nn.SiLU`.
    SiLU, |x| x.silu());
activation!(
    /// `ln(1 + e^x)`, like `nn.Softplus()`.
    Softplus, |x| x.softplus());
activation!(
    /// The input unchanged, like `nn.Identity`.
    Identity, |x| x.clone());

/// `x` for `x ≥ 0`, `slope · x` otherwise, like `nn.LeakyReLU(negative_slope)`.
#[derive(Clone, Copy, Debug)]
pub struct LeakyReLU {
    /// The slope for negative inputs (PyTorch's default is 0.01).
    pub negative_slope: f64,
}

impl Default for LeakyReLU {
    fn default() -> Self {
        LeakyReLU {
            negative_slope: 0.01,
        }
    }
}

impl Module for LeakyReLU {
    fn visit(&self, _: &mut Visitor) {}
}

impl Forward for LeakyReLU {
    #[track_caller]
    fn forward(&self, x: &Tensor) -> Tensor {
        x.leaky_relu(self.negative_slope)
    }
}

/// The Gaussian error linear unit, like `nn.GELU(approximate=...)`.
#[derive(Clone, Copy, Debug, Default)]
pub struct GELU {
    /// Use the tanh approximation (`approximate='tanh'`) instead of the exact erf form.
    pub tanh_approximation: bool,
}

impl Module for GELU {
    fn visit(&self, _: &mut Visitor) {}
}

impl Forward for GELU {
    #[track_caller]
    fn forward(&self, x: &Tensor) -> Tensor {
        if self.tanh_approximation {
            x.gelu_tanh()
        } else {
            x.gelu()
        }
    }
}

/// Softmax over `dim`, like `nn.Softmax(dim)`.
#[derive(Clone, Copy, Debug)]
pub struct Softmax {
    /// The dim the probabilities sum to 1 over.
    pub dim: isize,
}

impl Module for Softmax {
    fn visit(&self, _: &mut Visitor) {}
}

impl Forward for Softmax {
    #[track_caller]
    fn forward(&self, x: &Tensor) -> Tensor {
        x.softmax(self.dim)
    }
}

/// Log-softmax over `dim`, like `nn.LogSoftmax(dim)`.
#[derive(Clone, Copy, Debug)]
pub struct LogSoftmax {
    /// The dim normalised over.
    pub dim: isize,
}

impl Module for LogSoftmax {
    fn visit(&self, _: &mut Visitor) {}
}

impl Forward for LogSoftmax {
    #[track_caller]
    fn forward(&self, x: &Tensor) -> Tensor {
        x.log_softmax(self.dim)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::{Linear, Sequential};

    #[test]
    fn activation_modules_apply_their_functions() {
        let x = Tensor::from_vec(vec![-1.0, 0.5], &[1, 2]);
        assert_eq!(ReLU.forward(&x).to_vec::<f32>(), vec![0.0, 0.5]);
        assert_eq!(
            LeakyReLU {
                negative_slope: 0.1
            }
            .forward(&x)
            .to_vec::<f32>(),
            vec![-0.1, 0.5]
        );
        assert_eq!(Identity.forward(&x).to_vec::<f32>(), x.to_vec::<f32>());
        let p = Softmax { dim: -1 }.forward(&x).to_vec::<f32>();
        assert!((p[0] + p[1] - 1.0).abs() < 1e-6);
        assert_eq!(Tanh.forward(&x).to_vec::<f32>(), x.tanh().to_vec::<f32>());
        assert_eq!(
            GELU::default().forward(&x).to_vec::<f32>(),
            x.gelu().to_vec::<f32>()
        );
    }

    #[test]
    fn activations_have_no_parameters_inside_sequential() {
        let net = Sequential::new()
            .add(Linear::new(2, 3))
            .add(ReLU)
            .add(Linear::new(3, 1));
        let names: Vec<String> = net.named_parameters().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["0.weight", "0.bias", "2.weight", "2.bias"]);
    }
}
