//! The digits CNN of example 04 trained data-parallel with `DistributedDataParallel`: each rank
//! trains on its share of every epoch (`DistributedSampler`), the gradients are averaged during
//! backward, and rank 0 alone logs, writes TensorBoard events and saves a checkpoint after every
//! epoch (atomically: a crash never leaves a half-written file).
//!
//! ```text
//! cargo build --release --features mpi --example ddp_digits
//! mpirun --allow-run-as-root --oversubscribe -np 2 target/release/examples/ddp_digits
//! cargo run --release --example ddp_digits -- --threads 4    # no MPI: 4 ranks as threads
//! ```
//!
//! Options: `--threads N` (the threads backend instead of MPI), `--epochs E` (default 8),
//! `--batch-size B` per rank (default 32), `--checkpoint PATH` (default
//! `ddp_digits.safetensors`), `--timeout-secs S` (the process group's timeout, default 60),
//! `--logdir DIR` (TensorBoard; default `runs/<date>_<host>_ddp_digits`). For the fault tests:
//! `--exit-at-step K --exit-rank R` makes rank R leave abruptly (`exit(3)`) at global step K.

#[path = "shared/digits_cnn.rs"]
mod digits_cnn;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use digits_cnn::{evaluate, Cnn};
use tapegrad::data::{datasets, random_split, DataLoader, Dataset, DistributedSampler};
use tapegrad::distributed::{launch_with, Backend, InitOptions, ProcessGroup};
use tapegrad::nn::functional::{cross_entropy, CrossEntropyOpts};
use tapegrad::nn::parallel::DistributedDataParallel;
use tapegrad::nn::{Forward, Module};
use tapegrad::optim::{AdamW, Optimizer};
use tapegrad::prelude::*;
use tapegrad::tensorboard::SummaryWriter;

struct Args {
    threads: Option<usize>,
    epochs: usize,
    batch_size: usize,
    checkpoint: PathBuf,
    timeout: Duration,
    logdir: Option<PathBuf>,
    exit_at: Option<(usize, usize)>,
}

fn parse_args() -> Args {
    let mut a = Args {
        threads: None,
        epochs: 8,
        batch_size: 32,
        checkpoint: PathBuf::from("ddp_digits.safetensors"),
        timeout: Duration::from_secs(60),
        logdir: None,
        exit_at: None,
    };
    let mut exit_step = None;
    let mut exit_rank = 1;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .unwrap_or_else(|| panic!("ddp_digits: {flag} needs a value"))
        };
        let num = |v: String| -> usize {
            v.parse()
                .unwrap_or_else(|_| panic!("ddp_digits: expected a number, got '{v}'"))
        };
        match flag.as_str() {
            "--threads" => a.threads = Some(num(value())),
            "--epochs" => a.epochs = num(value()),
            "--batch-size" => a.batch_size = num(value()),
            "--checkpoint" => a.checkpoint = PathBuf::from(value()),
            "--timeout-secs" => a.timeout = Duration::from_secs(num(value()) as u64),
            "--logdir" => a.logdir = Some(PathBuf::from(value())),
            "--exit-at-step" => exit_step = Some(num(value())),
            "--exit-rank" => exit_rank = num(value()),
            other => panic!("ddp_digits: unknown option '{other}' (see the example's doc)"),
        }
    }
    a.exit_at = exit_step.map(|s| (exit_rank, s));
    a
}

fn main() -> tapegrad::Result<()> {
    let args = parse_args();
    let backend = match args.threads {
        Some(n) => Backend::Threads(n),
        // without --threads: one rank per process under mpirun (init reports an error while
        // the MPI backend is not implemented)
        None => Backend::Mpi,
    };
    let options = InitOptions {
        timeout: args.timeout,
        ..Default::default()
    };
    let results = launch_with(backend, options, |pg| train(&pg, &args))?;
    for result in results {
        match result {
            Ok(Some(acc)) => println!("final test accuracy {acc:.1}%"),
            Ok(None) => {}
            Err(e) => {
                eprintln!("ddp_digits: {e}");
                std::process::exit(1);
            }
        }
    }
    Ok(())
}

/// One rank's training; returns the final test accuracy on rank 0.
fn train(pg: &ProcessGroup, args: &Args) -> tapegrad::Result<Option<f64>> {
    let (rank, world) = (pg.rank(), pg.world_size());
    let lead = rank == 0;
    // The same split on every rank (a fixed generator), so the ranks agree on the training set.
    let digits = datasets::digits()?;
    let mut parts = random_split(digits, &[0.8, 0.2], &mut Generator::new(0))?;
    let test = parts.pop().unwrap();
    let train = parts.pop().unwrap();
    let n_train = train.len();
    let test_loader = DataLoader::new(test, 512);

    // Each rank initialises its own model; DDP replaces it by rank 0's.
    let model = DistributedDataParallel::new(Cnn::new(), pg)?;
    let mut opt = AdamW::new(model.parameters(), 3e-3).weight_decay(1e-4);
    // each rank draws its own share of every epoch's permutation (the same seed on every rank)
    let sampler = DistributedSampler::new(n_train, world, rank)
        .shuffle(true)
        .seed(1);
    let per_rank = sampler.len();
    let loader = DataLoader::new(train, args.batch_size).sampler(sampler);
    let mut writer = if lead {
        if let Some(n) = args.threads {
            println!("{n} ranks as threads of one process");
        }
        println!(
            "{} parameters, {world} ranks, {} training images ({} per rank per epoch), batch \
             {} per rank",
            model.num_parameters(),
            n_train,
            per_rank,
            args.batch_size
        );
        Some(match &args.logdir {
            Some(d) => SummaryWriter::new(d)?,
            None => SummaryWriter::with_comment("_ddp_digits")?,
        })
    } else {
        None
    };

    let started = Instant::now();
    let mut step: i64 = 0;
    let mut accuracy = None;
    for epoch in 1..=args.epochs {
        loader.set_epoch(epoch as u64);
        model.train();
        let mut epoch_loss = 0.0;
        for (images, labels) in &loader {
            if args.exit_at == Some((rank, step as usize)) {
                eprintln!("rank {rank}: leaving abruptly at step {step} (--exit-at-step)");
                std::process::exit(3);
            }
            let loss = cross_entropy(
                &model.forward(&images),
                &labels,
                &CrossEntropyOpts::default(),
            );
            opt.zero_grad();
            loss.backward();
            opt.step();
            epoch_loss += loss.item();
            if let Some(w) = writer.as_mut() {
                w.add_scalar("loss/train", loss.item(), step)?;
            }
            step += 1;
        }
        if let Some(w) = writer.as_mut() {
            let (test_loss, acc) = evaluate(&model.module, &test_loader);
            accuracy = Some(acc);
            w.add_scalar("loss/test", test_loss, step)?;
            w.add_scalar("accuracy/test", acc, step)?;
            w.flush()?;
            // an atomic write: the file on disk is always the last complete checkpoint
            model.module.save_safetensors(&args.checkpoint)?;
            println!(
                "epoch {epoch:2}: train loss {:.4} (rank 0), test loss {test_loss:.4}, test \
                 accuracy {acc:.1}%, {:.1}s, checkpoint {}",
                epoch_loss / loader.len().max(1) as f64,
                started.elapsed().as_secs_f64(),
                args.checkpoint.display()
            );
        }
    }
    if let Some(w) = writer {
        println!("TensorBoard: tensorboard --logdir {}", w.logdir().display());
    }
    Ok(accuracy)
}
