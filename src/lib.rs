//! # tapegrad
//!
//! An eager, define-by-run tensor library with tape-based reverse-mode autograd: PyTorch's model of
//! computation, in Rust. Tensors record every op on a thread-local tape as they execute;
//! `backward()` walks the tape in reverse and accumulates gradients into the leaves.
//!
//! ```
//! use tapegrad::prelude::*;
//!
//! let x = Tensor::from_vec(vec![1.0, 2.0, 3.0], &[1, 3]);
//! let w = Tensor::from_vec(vec![0.1, -0.2, 0.3, 0.4, -0.5, 0.6], &[3, 2]).requires_grad();
//! let y = x.matmul(&w).tanh().sum();
//! y.backward();
//! assert!((y.item() - 0.3196).abs() < 1e-4);
//! println!("{}", w.grad().unwrap());
//! ```
//!
//! Coming from PyTorch? See [`doc::pytorch_users`].

#![warn(missing_docs)]

// lets `#[derive(Module)]`'s `::tapegrad::…` paths resolve inside this crate too
extern crate self as tapegrad;

pub mod autograd;
pub mod data;
pub mod distributed;
pub mod doc;
mod error;
pub mod io;
pub mod memory;
pub mod models;
pub mod nn;
pub mod ops;
pub mod optim;
pub mod parallel;
#[cfg(feature = "plot")]
pub mod plot;
pub mod prelude;
#[cfg(feature = "progress")]
pub mod progress;
pub mod tensor;
#[cfg(feature = "tensorboard")]
pub mod tensorboard;
pub mod testing;
pub mod viz;

pub use error::{Error, Result};
pub use tensor::{DType, Tensor};
