//! 01 — tensors and one backward pass: the snippet from the README.
//!
//! Run with `cargo run --example 01_tensors`.

use tapegrad::prelude::*;

fn main() {
    let x = Tensor::from_vec(vec![1.0, 2.0, 3.0], &[1, 3]);
    let w = Tensor::from_vec(vec![0.1, -0.2, 0.3, 0.4, -0.5, 0.6], &[3, 2]).requires_grad();
    let y = x.matmul(&w).tanh().sum();
    y.backward();
    println!("{}", y.item()); // 0.3196…
    println!("{}", w.grad().unwrap()); // [[0.5591, 0.0324], [1.1181, 0.0648], [1.6772, 0.0972]]
    let _g = no_grad(); // nothing below is recorded on the tape
    let z = x.matmul(&w);
    println!("{z}");
}
