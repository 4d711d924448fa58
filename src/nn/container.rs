//! Containers: `Sequential`, and `Flatten`.

use super::module::{Forward, Layer, Module, Visitor};
use crate::tensor::Tensor;

/// Layers applied one after the other, like `nn.Sequential`. Children are named by index, so
/// parameters read `0.weight`, `2.bias`, … (or `features.0.weight` inside a parent).
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::nn::{Linear, Sequential, Forward, Module};
/// let net = Sequential::new().add(Linear::new(4, 8)).add(Linear::new(8, 1));
/// assert_eq!(net.forward(&Tensor::zeros(&[2, 4])).shape(), &[2, 1]);
/// assert_eq!(net.named_parameters()[2].0, "1.weight");
/// ```
#[derive(Default)]
pub struct Sequential {
    layers: Vec<Box<dyn Layer>>,
}

impl Sequential {
    /// An empty sequence.
    pub fn new() -> Sequential {
        Sequential::default()
    }

    /// Appends a layer (builder style).
    #[allow(clippy::should_implement_trait)]
    pub fn add(mut self, layer: impl Layer + 'static) -> Sequential {
        self.layers.push(Box::new(layer));
        self
    }

    /// Appends a layer.
    pub fn push(&mut self, layer: impl Layer + 'static) {
        self.layers.push(Box::new(layer));
    }

    /// The number of layers.
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// Whether there are no layers.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// The `i`-th layer.
    pub fn get(&self, i: usize) -> Option<&dyn Layer> {
        self.layers.get(i).map(|b| &**b)
    }
}

impl Module for Sequential {
    fn visit(&self, v: &mut Visitor) {
        for (i, l) in self.layers.iter().enumerate() {
            v.module(&i.to_string(), &**l);
        }
    }
}

impl Forward for Sequential {
    fn forward(&self, x: &Tensor) -> Tensor {
        let mut h = x.clone();
        for l in &self.layers {
            h = l.forward(&h);
        }
        h
    }
}

/// Flattens dims `start_dim..=end_dim` into one, like `nn.Flatten` (default `1..=-1`: keeps the
/// batch dim).
#[derive(Clone, Copy, Debug)]
pub struct Flatten {
    /// First dim to flatten.
    pub start_dim: isize,
    /// Last dim to flatten (inclusive; negative counts from the end).
    pub end_dim: isize,
}

impl Default for Flatten {
    fn default() -> Self {
        Flatten {
            start_dim: 1,
            end_dim: -1,
        }
    }
}

impl Flatten {
    /// `nn.Flatten()`: all dims but the first.
    pub fn new() -> Flatten {
        Flatten::default()
    }
}

impl Module for Flatten {
    fn visit(&self, _: &mut Visitor) {}
}

impl Forward for Flatten {
    /// `x.flatten(start_dim, end_dim)`.
    ///
    /// # Panics
    /// As [`Tensor::flatten`]: a dim out of range, or `start_dim` after `end_dim`.
    #[track_caller]
    fn forward(&self, x: &Tensor) -> Tensor {
        x.flatten(self.start_dim, self.end_dim)
    }
}

#[cfg(test)]
mod tests {
    use crate::nn::{Flatten, Forward, Linear, Module, Sequential};
    use crate::prelude::*;

    #[test]
    fn sequential_names_children_by_index_and_runs_in_order() {
        let net = Sequential::new().add(Flatten::new()).add(Linear::new(6, 2));
        let names: Vec<String> = net.named_parameters().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["1.weight", "1.bias"]);
        assert_eq!(net.forward(&Tensor::zeros(&[4, 2, 3])).shape(), &[4, 2]);
    }

    #[test]
    fn nested_modules_get_dotted_names() {
        #[derive(crate::nn::Module)]
        struct Net {
            features: Sequential,
            head: Linear,
            blocks: Vec<Linear>,
            #[buffer]
            steps: Tensor,
            width: usize,
        }
        let net = Net {
            features: Sequential::new().add(Linear::new(2, 2)),
            head: Linear::with_bias(2, 1, false),
            blocks: vec![Linear::new(1, 1)],
            steps: Tensor::zeros(&[1]),
            width: 2,
        };
        let names: Vec<String> = net.named_parameters().into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "features.0.weight",
                "features.0.bias",
                "head.weight",
                "blocks.0.weight",
                "blocks.0.bias"
            ]
        );
        assert_eq!(net.named_buffers()[0].0, "steps");
        assert_eq!(net.state_dict().len(), 6);
        assert_eq!(net.width, 2);
    }

    #[test]
    fn zero_grad_clears_all_parameters() {
        let net = Sequential::new().add(Linear::new(3, 2));
        net.forward(&Tensor::ones(&[1, 3])).sum().backward();
        assert!(net.parameters().iter().all(|p| p.grad().is_some()));
        net.zero_grad();
        assert!(net.parameters().iter().all(|p| p.grad().is_none()));
    }
}
