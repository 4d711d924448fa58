//! Tapes and threads: every thread records on its own tape, tensors are `Send + Sync`, and a
//! graph belongs to the thread that recorded it.

mod common;

use std::sync::mpsc;
use std::thread;

use common::payload_message;
use tapegrad::autograd::tape;
use tapegrad::prelude::*;

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn tensors_are_send_and_sync() {
    assert_send_sync::<Tensor>();
}

/// A 4 → 8 → 1 tanh MLP trained by SGD on a fixed regression task, everything drawn from
/// `Generator::new(seed)`. Returns the bits of every loss and of the final parameters.
fn train_mlp(seed: u64, iterations: usize) -> (Vec<u32>, Vec<u32>) {
    let mut g = Generator::new(seed);
    let x = Tensor::randn_with(&[32, 4], &mut g);
    let y = x.sum_dim(1, true).sin();
    let w1 = (Tensor::randn_with(&[4, 8], &mut g) * 0.5).requires_grad();
    let b1 = Tensor::zeros(&[8]).requires_grad();
    let w2 = (Tensor::randn_with(&[8, 1], &mut g) * 0.5).requires_grad();
    let b2 = Tensor::zeros(&[1]).requires_grad();
    let params = [&w1, &b1, &w2, &b2];
    let mut losses = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let h = (x.matmul(&w1) + &b1).tanh();
        let loss = (h.matmul(&w2) + &b2 - &y).square().mean();
        loss.backward();
        losses.push((loss.item() as f32).to_bits());
        let _g = no_grad();
        for p in params {
            p.assign(&(p - &(p.grad().unwrap() * 0.1)));
            p.zero_grad();
        }
    }
    let first = f32::from_bits(losses[0]);
    let last = f32::from_bits(*losses.last().unwrap());
    assert!(last < first, "training made progress: {first} -> {last}");
    let weights = params
        .iter()
        .flat_map(|p| p.to_vec::<f32>())
        .map(f32::to_bits)
        .collect();
    (losses, weights)
}

#[test]
fn two_threads_training_concurrently_match_the_same_work_done_sequentially() {
    let sequential = [train_mlp(1, 200), train_mlp(2, 200)];
    let workers: Vec<_> = [1, 2]
        .into_iter()
        .map(|seed| {
            thread::spawn(move || {
                let r = train_mlp(seed, 200);
                (r, tape::len(), tape::saved_bytes())
            })
        })
        .collect();
    for (i, w) in workers.into_iter().enumerate() {
        let (r, len, bytes) = w.join().unwrap();
        assert!(
            r == sequential[i],
            "seed {}: results differ bit for bit",
            i + 1
        );
        assert_eq!(
            (len, bytes),
            (0, 0),
            "the worker's tape is empty after training"
        );
    }
    assert_ne!(
        sequential[0], sequential[1],
        "the seeds give different runs"
    );
}

#[test]
fn parameters_shared_with_workers_accumulate_gradients_from_every_thread() {
    // Shards of a batch on two threads, the parameters shared: .grad is the sum of both
    // shards' gradients, exactly as computed on one thread.
    let mut g = Generator::new(3);
    let w = Tensor::randn_with(&[4, 2], &mut g).double().requires_grad();
    let shards: Vec<Tensor> = (0..2)
        .map(|_| Tensor::randn_with(&[5, 4], &mut g).double())
        .collect();
    let loss = |x: &Tensor, w: &Tensor| x.matmul(w).tanh().square().sum();

    let expected: Vec<f64> = {
        let gs: Vec<Tensor> = shards
            .iter()
            .map(|x| grad(&[&loss(x, &w)], &[&w], false).remove(0))
            .collect();
        (&gs[0] + &gs[1]).to_vec()
    };

    let workers: Vec<_> = shards
        .iter()
        .map(|x| {
            let (x, w) = (x.clone(), w.clone());
            thread::spawn(move || loss(&x, &w).backward())
        })
        .collect();
    for h in workers {
        h.join().unwrap();
    }
    assert_eq!(w.grad().unwrap().to_vec::<f64>(), expected);
}

#[test]
fn a_thread_records_on_its_own_tape() {
    let base = tape::len();
    let w = Tensor::ones(&[3]).requires_grad();
    let w2 = w.clone();
    let (other_len, name) = thread::spawn(move || {
        let y = (&w2 * 2.0).sum();
        (tape::len(), y.grad_fn())
    })
    .join()
    .unwrap();
    assert_eq!(other_len, 2, "the worker saw only its own two entries");
    assert_eq!(name, Some("sum"));
    assert_eq!(
        tape::len(),
        base,
        "nothing was recorded on this thread's tape"
    );
}

#[test]
fn using_a_non_leaf_from_another_thread_in_a_recorded_op_panics() {
    let w = Tensor::ones(&[3]).requires_grad();
    let h = &w * 2.0; // recorded on this thread's tape
    let err = thread::spawn(move || {
        let _ = h.tanh();
    })
    .join()
    .expect_err("must panic");
    let msg = payload_message(err.as_ref());
    assert!(
        msg.starts_with("tanh: an input was computed on another thread's tape"),
        "{msg}"
    );
    assert!(msg.contains(".detach()"), "names the fix: {msg}");
    assert!(msg.contains(file!()), "names the caller: {msg}");
}

#[test]
fn backward_on_another_thread_panics() {
    let w = Tensor::ones(&[3]).requires_grad();
    let y = (&w * 2.0).sum();
    let err = thread::spawn(move || y.backward())
        .join()
        .expect_err("must panic");
    let msg = payload_message(err.as_ref());
    assert!(
        msg.contains("backward: this tensor was computed on another thread"),
        "{msg}"
    );
}

#[test]
fn a_non_leaf_from_another_thread_can_be_read_and_used_detached_or_under_no_grad() {
    let w = Tensor::from_vec(vec![1.0, 2.0], &[2]).requires_grad();
    let h = &w * 2.0;
    let (values, detached, no_grad_sum, grad_fn) = thread::spawn(move || {
        let values = h.to_vec::<f32>();
        let d = h.detach().requires_grad();
        (d.tanh() * 0.0).sum().backward(); // a new graph on this thread, from a leaf
        let s = {
            let _g = no_grad();
            h.sum().item()
        };
        (values, d.grad().is_some(), s, h.grad_fn())
    })
    .join()
    .unwrap();
    assert_eq!(values, vec![2.0, 4.0]);
    assert!(detached);
    assert_eq!(no_grad_sum, 6.0);
    // The entry lives on the recording thread's tape, which another thread cannot look into.
    assert_eq!(grad_fn, None);
}

#[test]
fn dropping_on_another_thread_frees_the_entry_on_the_owner_thread() {
    let base = (tape::len(), tape::saved_bytes());
    let w = Tensor::ones(&[16]).requires_grad();
    let y = w.tanh().sum();
    assert_eq!(tape::len(), base.0 + 2);
    thread::spawn(move || drop(y)).join().unwrap();
    // The release waits for the owner; the next tape operation here applies it.
    assert_eq!((tape::len(), tape::saved_bytes()), base);
}

#[test]
fn tensors_dropped_on_other_threads_while_the_owner_keeps_working_are_all_freed() {
    let base = tape::len();
    let w = Tensor::ones(&[4]).requires_grad();
    let (tx, rx) = mpsc::channel::<Tensor>();
    let dropper = thread::spawn(move || {
        for t in rx {
            drop(t);
        }
    });
    for _ in 0..200 {
        tx.send(w.exp().sum()).unwrap();
        let _ = (&w * 3.0).sum(); // the owner keeps recording meanwhile
    }
    drop(tx);
    dropper.join().unwrap();
    let _ = (&w * 1.0).sum();
    assert_eq!(tape::len(), base);
}

#[test]
fn a_tensor_outliving_the_thread_that_recorded_it_can_still_be_read_and_dropped() {
    let w = Tensor::ones(&[2]).requires_grad();
    let w2 = w.clone();
    let y = thread::spawn(move || &w2 * 3.0).join().unwrap();
    assert!(y.requires_grad_enabled());
    assert_eq!(y.to_vec::<f32>(), vec![3.0, 3.0]);
    drop(y); // its tape is gone with its thread: nothing to free, nothing to crash
    assert_eq!((&w * 2.0).sum().item(), 4.0);
}
