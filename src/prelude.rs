//! `use tapegrad::prelude::*;` brings in what most programs need.

pub use crate::autograd::{
    detect_anomaly, enable_grad, grad, grad_allow_unused, gradcheck, is_grad_enabled, no_grad,
    set_grad_enabled, BackwardOptions,
};
pub use crate::data::{DataLoader, Dataset, TensorDataset};
pub use crate::nn::{Forward, Module};
pub use crate::optim::lr_scheduler::LrScheduler;
pub use crate::optim::Optimizer;
pub use crate::tensor::random::{manual_seed, Generator};
pub use crate::tensor::{DType, Tensor};
