//! 04 — a small CNN trained on the bundled UCI handwritten digits, the way a PyTorch user would
//! write it: a `#[derive(Module)]` model, `DataLoader`, `cross_entropy`, `AdamW`, a cosine
//! learning-rate schedule, `train()` / `eval()` and `no_grad` for evaluation. It shows its
//! progress like `tqdm` (a bar on a terminal, a line per epoch elsewhere), logs its losses and
//! accuracy to TensorBoard and draws them to `curves.png`, both in
//! `runs/<date>_<host>_04_cnn_digits/` (`tensorboard --logdir runs`).
//!
//! This is the README's main example: `cargo run --release --example 04_cnn_digits`.

use tapegrad::data::{datasets, random_split, DataLoader};
use tapegrad::nn::functional::{cross_entropy, CrossEntropyOpts};
use tapegrad::nn::{Forward, Module};
use tapegrad::optim::lr_scheduler::{CosineAnnealingLR, LrScheduler};
use tapegrad::optim::{AdamW, Optimizer};
use tapegrad::plot::{self, History};
use tapegrad::prelude::*;
use tapegrad::progress::{Metric, Progress};
use tapegrad::tensorboard::SummaryWriter;

#[path = "shared/digits_cnn.rs"]
mod digits_cnn;
use digits_cnn::{evaluate, Cnn};

fn main() -> tapegrad::Result<()> {
    manual_seed(0);
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

    // runs/<date>_<host>_04_cnn_digits: TensorBoard's events (`tensorboard --logdir runs`) and the plot
    let mut writer = SummaryWriter::with_comment("_04_cnn_digits")?;
    let mut progress = Progress::new(epochs, train_loader.len());
    let mut step = 0;
    let mut history = History::new();
    let mut accuracy = 0.0;
    for epoch in 1..=epochs {
        model.train();
        for (images, labels) in &train_loader {
            let loss = cross_entropy(
                &model.forward(&images),
                &labels,
                &CrossEntropyOpts::default(),
            );
            opt.zero_grad();
            loss.backward();
            opt.step();
            progress.step(loss.item());
            history.push_loss("train", progress.position(), loss.item());
            writer.add_scalar("loss/train", loss.item(), step)?;
            step += 1;
        }
        sched.step(&mut opt);

        let (test_loss, test_accuracy) = evaluate(&model, &test_loader);
        accuracy = test_accuracy;
        history.push_loss("test", epoch as f64, test_loss);
        history.push_accuracy("test", epoch as f64, accuracy);
        writer.add_scalar("loss/test", test_loss, step)?;
        writer.add_scalar("accuracy/test", accuracy, step)?;
        writer.add_scalar("lr", opt.lr(0), step)?;
        progress.end_epoch(&[
            Metric::value("test loss", test_loss),
            Metric::percent("test acc", accuracy),
        ]);
    }
    let elapsed = progress.finish();
    println!(
        "test accuracy {accuracy:.1}% after {epochs} epochs ({:.1}s)",
        elapsed.as_secs_f64()
    );

    // the trained weights, for `cargo run --example export_onnx --features onnx`
    model.save_safetensors("cnn_digits.safetensors")?;
    println!("weights: cnn_digits.safetensors");

    writer.flush()?;
    let curves = writer.logdir().join("curves.png");
    plot::save_png(&curves, &history)?;
    println!(
        "TensorBoard logs and the loss / accuracy curves: {}",
        writer.logdir().display()
    );
    println!("  curves: {}", curves.display());
    println!("  tensorboard --logdir runs");
    Ok(())
}
