//! Samplers: the order in which a [`DataLoader`](super::DataLoader) visits a dataset's indices,
//! like `torch.utils.data.Sampler`; and [`DistributedSampler`], which gives each of several
//! data-parallel replicas its own equal share of every epoch.

use std::panic::Location;

use crate::tensor::random::Generator;

/// The index order of one epoch, like `torch.utils.data.Sampler`: give one to
/// [`DataLoader::sampler`](super::DataLoader::sampler).
///
/// [`indices`](Sampler::indices) is `__iter__` (called once at the start of each epoch, so it may
/// advance internal state), [`len`](Sampler::len) is `__len__`, and
/// [`set_epoch`](Sampler::set_epoch) is the hook samplers whose order depends on the epoch (as
/// [`DistributedSampler`]) implement; [`DataLoader::set_epoch`](super::DataLoader::set_epoch)
/// forwards to it.
///
/// ```
/// use tapegrad::data::{DataLoader, Sampler, TensorDataset};
/// use tapegrad::prelude::*;
///
/// /// Visits the items from last to first.
/// struct Reversed(usize);
/// impl Sampler for Reversed {
///     fn indices(&mut self) -> Vec<usize> {
///         (0..self.0).rev().collect()
///     }
///     fn len(&self) -> usize {
///         self.0
///     }
/// }
///
/// let ds = TensorDataset::new(Tensor::arange(0.0, 5.0, 1.0)).unwrap();
/// let loader = DataLoader::new(ds, 2).sampler(Reversed(5));
/// let batches: Vec<Vec<f32>> = loader.iter().map(|b| b.to_vec::<f32>()).collect();
/// assert_eq!(batches, vec![vec![4.0, 3.0], vec![2.0, 1.0], vec![0.0]]);
/// ```
pub trait Sampler: Send {
    /// The dataset indices of the next epoch, in the order they are to be visited.
    fn indices(&mut self) -> Vec<usize>;

    /// The number of indices of an epoch.
    fn len(&self) -> usize;

    /// Whether an epoch has no indices.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Tells the sampler which epoch starts next. Does nothing unless the sampler's order depends
    /// on the epoch.
    fn set_epoch(&mut self, _epoch: u64) {}
}

/// Restricts each epoch to one replica's share of the dataset, like
/// `torch.utils.data.DistributedSampler`: every replica (process or thread of data-parallel
/// training) makes one with the same `dataset_len` and `num_replicas` and its own `rank`, and
/// gets the same number of indices, disjoint from the other ranks' except for padding.
///
/// An epoch is computed as PyTorch does: the indices `0..dataset_len`, permuted (when shuffling,
/// the default) with a [`Generator`] seeded by `seed + epoch` — the same on every rank, so the
/// ranks agree without communicating — then padded by repeating indices from its start until the
/// length divides by `num_replicas` (or cut down to a multiple of it with
/// [`drop_last`](DistributedSampler::drop_last)); rank `r` takes the positions `r, r +
/// num_replicas, r + 2·num_replicas, ...`. The permutations are tapegrad's own (the same
/// structure, not the same numbers as `torch.randperm`).
///
/// Call [`set_epoch`](DistributedSampler::set_epoch) (or
/// [`DataLoader::set_epoch`](super::DataLoader::set_epoch) once the loader owns the sampler)
/// before each epoch; otherwise every epoch has the same order.
///
/// ```
/// use tapegrad::data::{DistributedSampler, Sampler};
///
/// // 10 items over 4 replicas: 3 each; 2 indices are repeated to make 12
/// let shares: Vec<Vec<usize>> = (0..4)
///     .map(|rank| DistributedSampler::new(10, 4, rank).shuffle(false).indices())
///     .collect();
/// assert_eq!(shares[0], vec![0, 4, 8]);
/// assert_eq!(shares[1], vec![1, 5, 9]);
/// assert_eq!(shares[2], vec![2, 6, 0]); // padded with the first indices
/// assert_eq!(shares[3], vec![3, 7, 1]);
/// ```
#[derive(Clone, Debug)]
pub struct DistributedSampler {
    dataset_len: usize,
    num_replicas: usize,
    rank: usize,
    shuffle: bool,
    seed: u64,
    drop_last: bool,
    epoch: u64,
}

impl DistributedSampler {
    /// The sampler of replica `rank` among `num_replicas` over a dataset of `dataset_len` items;
    /// shuffling with seed 0, keeping every item (padding), epoch 0.
    ///
    /// # Panics
    /// If `num_replicas` is 0 or `rank` is not below it.
    #[track_caller]
    pub fn new(dataset_len: usize, num_replicas: usize, rank: usize) -> DistributedSampler {
        if num_replicas == 0 || rank >= num_replicas {
            panic!(
                "DistributedSampler: invalid rank {rank}, rank should be in the interval [0, {}] \
                 (num_replicas = {num_replicas}), at {}",
                num_replicas as i64 - 1,
                Location::caller()
            );
        }
        DistributedSampler {
            dataset_len,
            num_replicas,
            rank,
            shuffle: true,
            seed: 0,
            drop_last: false,
            epoch: 0,
        }
    }

    /// Whether to permute the indices every epoch (default `true`, as in PyTorch).
    pub fn shuffle(mut self, shuffle: bool) -> Self {
        self.shuffle = shuffle;
        self
    }

    /// The seed of the permutations (default 0); it must be the same on every rank.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Whether to drop the tail of the (permuted) indices that does not divide evenly among the
    /// replicas, instead of padding (default `false`).
    pub fn drop_last(mut self, drop_last: bool) -> Self {
        self.drop_last = drop_last;
        self
    }

    /// Sets the epoch whose order [`indices`](Sampler::indices) returns, like
    /// `sampler.set_epoch(epoch)`: the permutation is seeded by `seed + epoch`.
    pub fn set_epoch(&mut self, epoch: u64) {
        self.epoch = epoch;
    }

    /// The epoch set last (0 at first).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The number of indices of this rank per epoch (the same on every rank).
    pub fn len(&self) -> usize {
        if self.drop_last {
            self.dataset_len / self.num_replicas
        } else {
            self.dataset_len.div_ceil(self.num_replicas)
        }
    }

    /// Whether this rank gets no indices.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// This rank's indices for the current epoch (the same on every call until the epoch
    /// changes).
    fn epoch_indices(&self) -> Vec<usize> {
        let n = self.dataset_len;
        let mut all: Vec<usize> = if self.shuffle {
            Generator::new(self.seed.wrapping_add(self.epoch)).permutation(n)
        } else {
            (0..n).collect()
        };
        let total = self.len() * self.num_replicas;
        if total <= n {
            all.truncate(total);
        } else {
            // Repeat from the start (several times over if the dataset is smaller than the
            // padding, as PyTorch does).
            let padding: Vec<usize> = all.iter().copied().cycle().take(total - n).collect();
            all.extend(padding);
        }
        all.into_iter()
            .skip(self.rank)
            .step_by(self.num_replicas)
            .collect()
    }
}

impl Sampler for DistributedSampler {
    fn indices(&mut self) -> Vec<usize> {
        self.epoch_indices()
    }

    fn len(&self) -> usize {
        DistributedSampler::len(self)
    }

    fn set_epoch(&mut self, epoch: u64) {
        DistributedSampler::set_epoch(self, epoch)
    }
}
