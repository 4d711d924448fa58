//! 03 — data: softmax regression on the handwritten digits shipped with tapegrad, using
//! `random_split`, a shuffling `DataLoader`, `nn::Linear`, and a loss written by hand
//! (`log_softmax` + NLL with `gather`), trained by plain SGD under `no_grad`.
//!
//! Run with `cargo run --release --example 03_data`. Output (about 0.1 s once built):
//!
//! ```text
//! train 1438 images, test 359 images
//! epoch 1  train loss 1.2502  test accuracy 92.8%
//! epoch 2  train loss 0.5479  test accuracy 91.6%
//! epoch 3  train loss 0.3894  test accuracy 94.4%
//! epoch 4  train loss 0.3201  test accuracy 94.7%
//! epoch 5  train loss 0.2791  test accuracy 95.3%
//! epoch 6  train loss 0.2489  test accuracy 96.4%
//! epoch 7  train loss 0.2285  test accuracy 96.1%
//! epoch 8  train loss 0.2132  test accuracy 96.1%
//! ```

use tapegrad::data::{datasets, random_split, DataLoader, Dataset};
use tapegrad::nn::{Forward, Linear, Module};
use tapegrad::prelude::*;

fn main() -> tapegrad::Result<()> {
    manual_seed(0); // Linear's initial weights come from the global generator

    // 1797 images [1, 8, 8] with labels 0..=9; 80% to train on, 20% held out
    let digits = datasets::digits()?;
    let mut parts = random_split(digits, &[0.8, 0.2], &mut Generator::new(0))?;
    let test = parts.pop().unwrap();
    let train = parts.pop().unwrap();
    println!("train {} images, test {} images", train.len(), test.len());

    let train_loader = DataLoader::new(train, 32).shuffle(Generator::new(1));
    let test_loader = DataLoader::new(test, 256);

    // softmax regression: logits = x Wᵀ + b
    let model = Linear::new(64, 10);
    let lr = 0.5;

    for epoch in 1..=8 {
        let (mut total, mut seen) = (0.0, 0);
        for (images, labels) in &train_loader {
            let x = images.flatten(1, -1); // [b, 1, 8, 8] -> [b, 64]
            let log_probs = model.forward(&x).log_softmax(-1);
            // NLL: minus the mean log-probability of the right class, picked with gather
            let loss = -log_probs.gather(1, &labels.unsqueeze(1)).mean();
            loss.backward();
            {
                let _g = no_grad();
                for p in model.parameters() {
                    p.add_scaled_(&p.grad().unwrap(), -lr); // p -= lr * p.grad
                }
            }
            model.zero_grad();
            total += loss.item() * labels.numel() as f64;
            seen += labels.numel();
        }

        let _g = no_grad(); // evaluation records nothing
        let mut correct = 0.0;
        for (images, labels) in &test_loader {
            let predicted = model.forward(&images.flatten(1, -1)).argmax_dim(1, false);
            correct += predicted.eq(&labels).float().sum().item();
        }
        let accuracy = 100.0 * correct / test_loader.dataset().len() as f64;
        println!(
            "epoch {epoch}  train loss {:.4}  test accuracy {accuracy:.1}%",
            total / seen as f64
        );
    }
    Ok(())
}
