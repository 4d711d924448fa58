//! Resuming training from a checkpoint continues exactly as if training had never stopped.

use std::fs;

use tapegrad::io;
use tapegrad::nn::{self, Forward, Module};
use tapegrad::optim::lr_scheduler::{CosineAnnealingLR, LinearLR, LrScheduler, SequentialLR};
use tapegrad::optim::{AdamW, Optimizer};
use tapegrad::prelude::*;

#[derive(Module)]
struct Mlp {
    fc1: nn::Linear,
    bn: nn::BatchNorm1d,
    fc2: nn::Linear,
}

impl Forward for Mlp {
    fn forward(&self, x: &Tensor) -> Tensor {
        self.fc2
            .forward(&self.bn.forward(&self.fc1.forward(x)).tanh())
    }
}

fn mlp() -> Mlp {
    Mlp {
        fc1: nn::Linear::new(4, 8),
        bn: nn::BatchNorm1d::new(8),
        fc2: nn::Linear::new(8, 2),
    }
}

/// AdamW with a warm-up then cosine schedule, as created at the start of a run.
fn optimizer(m: &Mlp) -> (AdamW, SequentialLR) {
    let mut opt = AdamW::new(m.parameters(), 1e-2).weight_decay(0.05);
    let warmup = LinearLR::new(&mut opt, 0.1, 1.0, 4);
    let cosine = CosineAnnealingLR::new(&mut opt, 20, 1e-4);
    let sched = SequentialLR::new(&mut opt, vec![Box::new(warmup), Box::new(cosine)], &[4]);
    (opt, sched)
}

/// Training steps `from..to`; the batch of step `i` depends only on `i`.
fn train(m: &Mlp, opt: &mut AdamW, sched: &mut SequentialLR, from: u64, to: u64) {
    for i in from..to {
        let mut g = Generator::new(1000 + i);
        let x = Tensor::randn_with(&[6, 4], &mut g);
        let y = Tensor::randn_with(&[6, 2], &mut g);
        opt.zero_grad();
        m.forward(&x).sub(&y).square().mean().backward();
        opt.step();
        sched.step(opt);
    }
}

#[test]
fn training_resumed_from_a_checkpoint_matches_the_uninterrupted_run_bit_for_bit() {
    let dir = std::env::temp_dir().join(format!("tapegrad-io-resume-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let initial = mlp().state_dict();

    // the uninterrupted run: 12 steps
    let a = mlp();
    a.load_state_dict(&initial, true).unwrap();
    let (mut opt_a, mut sched_a) = optimizer(&a);
    train(&a, &mut opt_a, &mut sched_a, 0, 12);

    // the interrupted run: 5 steps, a checkpoint, and a fresh process's objects
    let b = mlp();
    b.load_state_dict(&initial, true).unwrap();
    let (mut opt_b, mut sched_b) = optimizer(&b);
    train(&b, &mut opt_b, &mut sched_b, 0, 5);
    b.save_safetensors(dir.join("model.safetensors")).unwrap();
    io::save_optimizer(&opt_b, dir.join("optim.safetensors")).unwrap();
    io::save_scheduler(&sched_b.state_dict(), dir.join("sched.safetensors")).unwrap();
    drop((b, opt_b, sched_b));

    let c = mlp(); // freshly initialised: different weights until loaded
    let (mut opt_c, mut sched_c) = optimizer(&c);
    c.load_safetensors(dir.join("model.safetensors"), true)
        .unwrap();
    io::load_optimizer(&mut opt_c, dir.join("optim.safetensors")).unwrap();
    sched_c
        .load_state_dict(&io::load_scheduler(dir.join("sched.safetensors")).unwrap())
        .unwrap();
    train(&c, &mut opt_c, &mut sched_c, 5, 12);

    for ((name, x), (_, y)) in a.state_dict().iter().zip(&c.state_dict()) {
        assert_eq!(
            x.to_vec_f64(),
            y.to_vec_f64(),
            "{name} differs after resuming"
        );
    }
    assert_eq!(opt_a.lrs(), opt_c.lrs());
    assert_eq!(sched_a.state_dict(), sched_c.state_dict());
    let (sa, sc) = (opt_a.state_dict(), opt_c.state_dict());
    assert_eq!(sa.scalars, sc.scalars);
    for (k, t) in &sa.tensors {
        assert_eq!(t.to_vec_f64(), sc.tensors[k].to_vec_f64(), "{k}");
    }
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn without_the_optimizer_state_the_resumed_run_differs() {
    // the check above can fail: dropping Adam's moments changes the trajectory
    let initial = mlp().state_dict();
    let run = |restore_optimizer: bool| {
        let m = mlp();
        m.load_state_dict(&initial, true).unwrap();
        let (mut opt, mut sched) = optimizer(&m);
        train(&m, &mut opt, &mut sched, 0, 5);
        let (sd, osd, ssd) = (m.state_dict(), opt.state_dict(), sched.state_dict());
        let m2 = mlp();
        let (mut opt2, mut sched2) = optimizer(&m2);
        m2.load_state_dict(&sd, true).unwrap();
        if restore_optimizer {
            opt2.load_state_dict(&osd);
        }
        sched2.load_state_dict(&ssd).unwrap();
        train(&m2, &mut opt2, &mut sched2, 5, 8);
        m2.fc2.weight.to_vec::<f32>()
    };
    assert_ne!(run(true), run(false));
}

#[test]
fn a_scheduler_state_for_another_schedule_is_an_error() {
    let m = mlp();
    let (mut opt, mut sched) = optimizer(&m);
    let mut other = LinearLR::new(&mut opt, 0.5, 1.0, 3);
    let err = other.load_state_dict(&sched.state_dict()).unwrap_err();
    assert!(
        err.to_string().contains("unexpected key '_schedulers."),
        "{err}"
    );
    let mut st = sched.state_dict();
    st.remove("_schedulers.1.last_epoch");
    assert!(sched.load_state_dict(&st).is_err());
}
