//! Exports the digits CNN of `04_cnn_digits` to ONNX and runs it in ONNX Runtime.
//!
//! Loads `cnn_digits.safetensors` (which `04_cnn_digits` saves into the current folder; trained
//! here for a few epochs if it is missing), writes `cnn_digits.onnx` (`--out PATH` for another
//! path) with a dynamic batch axis, and prints ONNX Runtime's predictions for five test digits
//! next to tapegrad's. ONNX Runtime runs through `scripts/check_onnx.py` in the repository's
//! `.venv` (which `scripts/test.sh` installs).
//!
//! `cargo run --release --features onnx --example export_onnx`

use std::path::Path;
use std::process::Command;

use tapegrad::data::{datasets, DataLoader, Dataset};
use tapegrad::export::onnx::{self, Options};
use tapegrad::nn::functional::{cross_entropy, CrossEntropyOpts};
use tapegrad::nn::{self, Forward, Module};
use tapegrad::optim::{AdamW, Optimizer};
use tapegrad::prelude::*;

/// The CNN of `04_cnn_digits` (same names, so its saved weights load).
#[derive(Module)]
struct Cnn {
    conv1: nn::Conv2d,
    conv2: nn::Conv2d,
    pool: nn::MaxPool2d,
    fc1: nn::Linear,
    dropout: nn::Dropout,
    fc2: nn::Linear,
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
    let args: Vec<String> = std::env::args().collect();
    let out = match args.iter().position(|a| a == "--out") {
        Some(i) => args.get(i + 1).cloned().expect("--out needs a path"),
        None => "cnn_digits.onnx".to_string(),
    };
    manual_seed(0);
    let model = Cnn {
        conv1: nn::Conv2d::new(1, 16, 3).padding(1),
        conv2: nn::Conv2d::new(16, 32, 3).padding(1),
        pool: nn::MaxPool2d::new(2),
        fc1: nn::Linear::new(32 * 4 * 4, 64),
        dropout: nn::Dropout::new(0.25),
        fc2: nn::Linear::new(64, 10),
    };
    let digits = datasets::digits()?;
    if Path::new("cnn_digits.safetensors").exists() {
        let report = model.load_safetensors("cnn_digits.safetensors", true)?;
        println!("loaded cnn_digits.safetensors ({report})");
    } else {
        println!("cnn_digits.safetensors not found (04_cnn_digits saves it): training 3 epochs");
        let loader = DataLoader::new(datasets::digits()?, 32).shuffle(Generator::new(1));
        let mut opt = AdamW::new(model.parameters(), 3e-3);
        model.train();
        for _ in 0..3 {
            for (x, y) in &loader {
                let loss = cross_entropy(&model.forward(&x), &y, &CrossEntropyOpts::default());
                opt.zero_grad();
                loss.backward();
                opt.step();
            }
        }
    }
    model.eval();

    // five digits from the end of the data set
    let n = digits.len();
    let items: Vec<_> = (n - 5..n).map(|i| digits.get(i)).collect();
    let images = Tensor::stack(&items.iter().map(|(x, _)| x).collect::<Vec<_>>(), 0);
    let labels: Vec<i64> = items.iter().map(|(_, y)| y.item() as i64).collect();

    let options = Options::default()
        .input_names(&["input"])
        .output_names(&["logits"])
        .dynamic_axis("input", 0, "batch");
    onnx::export(&model, &[&images.narrow(0, 0, 1)], &out, options)?;
    println!("wrote {out} (open it in https://netron.app)");

    let ours = {
        let _g = no_grad();
        model.forward(&images).argmax_dim(1, false).to_vec::<i64>()
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let py = root.join(".venv/bin/python");
    if !py.exists() {
        println!("no .venv/bin/python (scripts/test.sh installs onnxruntime there): skipping ONNX Runtime");
        println!("tapegrad's predictions: {ours:?} (labels {labels:?})");
        return Ok(());
    }
    let dir = std::env::temp_dir();
    let (inp, outp) = (
        dir.join("export_onnx_in.safetensors"),
        dir.join("export_onnx_out.safetensors"),
    );
    tapegrad::io::safetensors::save([("input", &images)], &inp)?;
    let status = Command::new(&py)
        .arg(root.join("scripts/check_onnx.py"))
        .args([Path::new(&out), &inp, &outp])
        .status()?;
    if !status.success() {
        return Err(tapegrad::Error::Format(
            "scripts/check_onnx.py failed".into(),
        ));
    }
    let ort = tapegrad::io::safetensors::load(&outp)?["logits"]
        .argmax_dim(1, false)
        .to_vec::<i64>();
    println!("label  tapegrad  onnxruntime");
    for i in 0..5 {
        println!("{:>5}  {:>8}  {:>11}", labels[i], ours[i], ort[i]);
    }
    Ok(())
}
