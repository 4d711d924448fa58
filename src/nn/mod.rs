//! Neural-network building blocks, like `torch.nn`: the [`Module`] trait (named parameters,
//! train / eval, `state_dict`), `#[derive(Module)]`, layers and initialisation.

mod activation;
mod container;
mod conv;
pub mod functional;
pub mod init;
mod linear;
mod loss;
mod module;
mod norm;
mod rnn;
mod transformer;

pub use activation::{
    Identity, LeakyReLU, LogSoftmax, ReLU, SiLU, Sigmoid, Softmax, Softplus, Tanh, GELU,
};
pub use container::{Flatten, Sequential};
pub use conv::{AdaptiveAvgPool2d, AvgPool2d, Conv1d, Conv2d, ConvTranspose2d, MaxPool2d};
pub use linear::Linear;
pub use loss::{
    BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, CrossEntropyOpts, HuberLoss, KLDivLoss,
    KlDivReduction, L1Loss, MSELoss, NLLLoss, Reduction, SmoothL1Loss,
};
pub use module::{Forward, Item, Layer, LoadReport, Module, TrainFlag, Visitor};
pub use norm::{BatchNorm, BatchNorm1d, BatchNorm2d, Dropout, Embedding, GroupNorm, LayerNorm};
pub use rnn::{GRUCell, LSTMCell, RNNCell, GRU, LSTM, RNN};
/// Derives [`Module`] from a struct's fields: `Tensor` fields are parameters (`#[buffer]` for
/// buffers), `TrainFlag` is the mode flag, numbers and `#[module(skip)]` fields are ignored, and
/// every other field is a child module named after the field.
pub use tapegrad_derive::Module;
pub use transformer::{
    Activation, MultiheadAttention, TransformerEncoder, TransformerEncoderLayer,
};

/// Data-parallel wrappers, like `torch.nn.parallel`. They live in
/// [`distributed`](crate::distributed) (which builds on `nn`) and are re-exported here, where a
/// PyTorch user looks for them.
pub mod parallel {
    pub use crate::distributed::ddp::{DdpOptions, DistributedDataParallel, NoSync};
}
/// `nn.SyncBatchNorm`, from [`distributed`](crate::distributed).
pub use crate::distributed::sync_batch_norm::SyncBatchNorm;
