//! The digits CNN of example 04, shared with the data-parallel example `ddp_digits`
//! (included with `#[path = "shared/digits_cnn.rs"] mod digits_cnn;`).

use tapegrad::data::{DataLoader, Dataset};
use tapegrad::nn::functional::{cross_entropy, CrossEntropyOpts, Reduction};
use tapegrad::nn::{self, Forward, Module};
use tapegrad::prelude::*;

/// conv(1→16, 3×3) - relu - conv(16→32, 3×3) - relu - maxpool 2 - linear(512→64) - relu -
/// dropout - linear(64→10), on 1×8×8 images.
#[derive(Module)]
pub struct Cnn {
    conv1: nn::Conv2d,
    conv2: nn::Conv2d,
    pool: nn::MaxPool2d,
    fc1: nn::Linear,
    dropout: nn::Dropout,
    fc2: nn::Linear,
}

impl Cnn {
    pub fn new() -> Cnn {
        Cnn {
            conv1: nn::Conv2d::new(1, 16, 3).padding(1),
            conv2: nn::Conv2d::new(16, 32, 3).padding(1),
            pool: nn::MaxPool2d::new(2),
            fc1: nn::Linear::new(32 * 4 * 4, 64),
            dropout: nn::Dropout::new(0.25),
            fc2: nn::Linear::new(64, 10),
        }
    }
}

impl Forward for Cnn {
    fn forward(&self, x: &Tensor) -> Tensor {
        let h = self.conv1.forward(x).relu();
        let h = self.pool.forward(&self.conv2.forward(&h).relu());
        let h = self.fc1.forward(&h.flatten(1, -1)).relu();
        self.fc2.forward(&self.dropout.forward(&h))
    }
}

/// The mean loss and the accuracy (in %) of `model` on `loader`'s data, with no tape.
pub fn evaluate<D>(model: &(impl Module + Forward), loader: &DataLoader<D>) -> (f64, f64)
where
    D: Dataset<Item = (Tensor, Tensor)> + Send + Sync + 'static,
{
    model.eval();
    let _g = no_grad();
    let sum = CrossEntropyOpts {
        reduction: Reduction::Sum,
        ..Default::default()
    };
    let (mut loss, mut correct) = (0.0, 0.0);
    for (images, labels) in loader {
        let logits = model.forward(&images);
        loss += cross_entropy(&logits, &labels, &sum).item();
        correct += logits.argmax_dim(1, false).eq(&labels).float().sum().item();
    }
    let n = loader.dataset().len() as f64;
    (loss / n, 100.0 * correct / n)
}
