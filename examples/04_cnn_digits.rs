//! 04 — a small CNN trained on the bundled UCI handwritten digits, the way a PyTorch user would
//! write it: a `#[derive(Module)]` model, `DataLoader`, `cross_entropy`, `AdamW`, a cosine
//! learning-rate schedule, `train()` / `eval()` and `no_grad` for evaluation.
//!
//! This is the README's main example: `cargo run --release --example 04_cnn_digits`.

use std::time::Instant;

use tapegrad::data::{datasets, random_split, DataLoader, Dataset};
use tapegrad::nn::functional::{cross_entropy, CrossEntropyOpts};
use tapegrad::nn::{self, Forward, Module};
use tapegrad::optim::lr_scheduler::{CosineAnnealingLR, LrScheduler};
use tapegrad::optim::{AdamW, Optimizer};
use tapegrad::prelude::*;

/// conv(1→16, 3×3) - relu - conv(16→32, 3×3) - relu - maxpool 2 - linear(512→64) - relu -
/// dropout - linear(64→10), on 1×8×8 images.
#[derive(Module)]
struct Cnn {
    conv1: nn::Conv2d,
    conv2: nn::Conv2d,
    pool: nn::MaxPool2d,
    fc1: nn::Linear,
    dropout: nn::Dropout,
    fc2: nn::Linear,
}

impl Cnn {
    fn new() -> Cnn {
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

fn main() -> tapegrad::Result<()> {
    manual_seed(0);
    let start = Instant::now();
    let digits = datasets::digits()?;
    let mut parts = random_split(digits, &[0.8, 0.2], &mut Generator::new(0))?;
    let test = parts.pop().unwrap();
    let train = parts.pop().unwrap();
    let train_loader = DataLoader::new(train, 32).shuffle(Generator::new(1));
    let test_loader = DataLoader::new(test, 512);

    let model = Cnn::new();
    println!("model: {} parameters", model.num_parameters());
    let epochs = 15;
    let mut opt = AdamW::new(model.parameters(), 3e-3).weight_decay(1e-4);
    let mut sched = CosineAnnealingLR::new(&mut opt, epochs, 0.0);

    for epoch in 1..=epochs {
        model.train();
        let (mut total, mut seen) = (0.0, 0);
        for (images, labels) in &train_loader {
            let loss = cross_entropy(
                &model.forward(&images),
                &labels,
                &CrossEntropyOpts::default(),
            );
            opt.zero_grad();
            loss.backward();
            opt.step();
            total += loss.item() * labels.numel() as f64;
            seen += labels.numel();
        }
        sched.step(&mut opt);

        model.eval();
        let _g = no_grad();
        let mut correct = 0.0;
        for (images, labels) in &test_loader {
            let predicted = model.forward(&images).argmax_dim(1, false);
            correct += predicted.eq(&labels).float().sum().item();
        }
        let accuracy = 100.0 * correct / test_loader.dataset().len() as f64;
        println!(
            "epoch {epoch:2}  train loss {:.4}  test accuracy {accuracy:.1}%  ({:.1}s)",
            total / seen as f64,
            start.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
