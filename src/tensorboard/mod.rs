//! TensorBoard event files, like PyTorch's `torch.utils.tensorboard` (needs the `tensorboard`
//! feature, on by default).
//!
//! [`SummaryWriter`] writes scalars, histograms, text, images, the model graph and hparams to
//! `events.out.tfevents.*` files that TensorBoard reads (`tensorboard --logdir runs`).
//! [`read_events`] reads them back, checking every record's CRCs: a corrupt or truncated file is
//! an error naming the byte offset, never mis-read.
//!
//! File layout: each record is a little-endian u64 length, its masked CRC-32C, the serialized
//! `Event` protobuf, and the data's masked CRC-32C (TensorFlow's TFRecord framing). The protobuf
//! messages are in [`proto`].

mod graph;
mod hparams;
pub mod proto;
mod reader;
mod record;
mod summary;
mod writer;

pub use hparams::HParam;
pub use reader::{parse_events, read_events};
pub use writer::{default_logdir, SummaryWriter};
