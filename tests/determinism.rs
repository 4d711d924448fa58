//! Reproducibility: a training run is a function of its seeds. The same seeds give bit-identical
//! losses and weights on a second run (in the same process and on another thread); a different
//! seed gives a different run, so the test can tell the difference.
//!
//! `manual_seed` seeds the process-wide generator, as `torch.manual_seed` does, so runs that draw
//! from it at the same time interleave their draws. The test harness runs tests on parallel
//! threads; each run here therefore holds `ONE_RUN_AT_A_TIME`.

use std::sync::Mutex;

use tapegrad::data::{datasets, random_split, DataLoader};
use tapegrad::nn::{self, Forward, Module};
use tapegrad::optim::lr_scheduler::{CosineAnnealingLR, LrScheduler};
use tapegrad::optim::{AdamW, Optimizer};
use tapegrad::prelude::*;

/// conv - relu - maxpool - dropout - linear on the 8×8 digits: every source of randomness a
/// training run has (init, split, shuffle, dropout) is in it.
#[derive(Module)]
struct SmallCnn {
    conv: nn::Conv2d,
    pool: nn::MaxPool2d,
    dropout: nn::Dropout,
    fc: nn::Linear,
}

impl Forward for SmallCnn {
    fn forward(&self, x: &Tensor) -> Tensor {
        let h = self.pool.forward(&self.conv.forward(x).relu());
        self.fc.forward(&self.dropout.forward(&h.flatten(1, -1)))
    }
}

/// What a run leaves behind: every step's loss and the final weights, as raw bits.
#[derive(Debug, PartialEq)]
struct Run {
    losses: Vec<u32>,
    weights: Vec<u32>,
}

static ONE_RUN_AT_A_TIME: Mutex<()> = Mutex::new(());

fn train(seed: u64, num_workers: usize) -> Run {
    let _only_run = ONE_RUN_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    manual_seed(seed);
    let digits = datasets::digits().unwrap();
    let mut parts = random_split(digits, &[0.25, 0.75], &mut Generator::new(seed)).unwrap();
    parts.pop();
    let small = parts.pop().unwrap();
    let loader = DataLoader::new(small, 32)
        .shuffle(Generator::new(seed + 1))
        .num_workers(num_workers);
    let model = SmallCnn {
        conv: nn::Conv2d::new(1, 4, 3).padding(1),
        pool: nn::MaxPool2d::new(2),
        dropout: nn::Dropout::new(0.3),
        fc: nn::Linear::new(4 * 4 * 4, 10),
    };
    let mut opt = AdamW::new(model.parameters(), 1e-2);
    let mut sched = CosineAnnealingLR::new(&mut opt, 2, 0.0);
    let mut losses = Vec::new();
    for _epoch in 0..2 {
        for (x, y) in &loader {
            let loss = nn::functional::cross_entropy(
                &model.forward(&x),
                &y,
                &nn::functional::CrossEntropyOpts::default(),
            );
            opt.zero_grad();
            loss.backward();
            opt.step();
            losses.push((loss.item() as f32).to_bits());
        }
        sched.step(&mut opt);
    }
    let weights = model
        .parameters()
        .iter()
        .flat_map(|p| p.to_vec::<f32>())
        .map(f32::to_bits)
        .collect();
    Run { losses, weights }
}

#[test]
fn the_same_seed_gives_a_bit_identical_run() {
    let first = train(7, 0);
    let second = train(7, 0);
    assert!(first.losses.len() >= 20, "the run should take many steps");
    assert_eq!(first, second);
}

#[test]
fn the_same_seed_gives_the_same_run_on_another_thread_and_with_loader_workers() {
    let here = train(11, 0);
    let there = std::thread::spawn(|| train(11, 2)).join().unwrap();
    assert_eq!(here, there);
}

#[test]
fn a_different_seed_gives_a_different_run() {
    let a = train(1, 0);
    let b = train(2, 0);
    assert_ne!(a.losses.last(), b.losses.last());
    assert_ne!(a.weights, b.weights);
}
