//! 02 — autograd by hand: a two-layer network fit to a noisy sine with plain gradient descent,
//! using only tensors, `backward` and `no_grad`.
//!
//! Run with `cargo run --release --example 02_autograd`.

use tapegrad::prelude::*;

fn main() {
    manual_seed(0);
    // data: y = sin(3x) + noise on [-1, 1]
    let x = Tensor::linspace(-1.0, 1.0, 256).reshape([-1, 1]);
    let y = (&x * 3.0).sin() + Tensor::randn(&[256, 1]) * 0.05;

    // parameters, initialised like nn.Linear (uniform in ±1/sqrt(fan_in))
    let hidden = 32;
    let w1 = Tensor::uniform(&[1, hidden], -1.0, 1.0).requires_grad();
    let b1 = Tensor::uniform(&[hidden], -1.0, 1.0).requires_grad();
    let bound = 1.0 / (hidden as f64).sqrt();
    let w2 = Tensor::uniform(&[hidden, 1], -bound, bound).requires_grad();
    let b2 = Tensor::uniform(&[1], -bound, bound).requires_grad();
    let params = [&w1, &b1, &w2, &b2];

    let lr = 0.1;
    for step in 0..=2000 {
        let h = (x.matmul(&w1) + &b1).tanh();
        let pred = h.matmul(&w2) + &b2;
        let loss = (&pred - &y).square().mean();
        loss.backward();
        {
            let _g = no_grad();
            for p in params {
                let g = p.grad().unwrap();
                p.assign(&(p.sub(&(&g * lr))));
                p.zero_grad();
            }
        }
        if step % 250 == 0 {
            println!("step {step:4}  loss {:.5}", loss.item());
        }
    }
}
