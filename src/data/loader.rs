//! [`DataLoader`]: batches of a dataset, shuffled or not, optionally prepared ahead on worker
//! threads, like `torch.utils.data.DataLoader`.

use std::panic::{self, AssertUnwindSafe, Location};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

use super::{default_collate, Dataset, Sampler, TensorTuple};
use crate::tensor::random::Generator;

type CollateFn<I, B> = dyn Fn(Vec<I>) -> B + Send + Sync;

/// Iterates over a dataset in batches, like `torch.utils.data.DataLoader`.
///
/// Each epoch (each call to [`iter`](DataLoader::iter), or `for batch in &loader`) walks the
/// dataset's indices in order, in a fresh random permutation when [`shuffle`](DataLoader::shuffle)
/// was given a [`Generator`], or in the order of a [`sampler`](DataLoader::sampler); cuts them into batches of `batch_size` (the last one smaller unless
/// [`drop_last`](DataLoader::drop_last)); and turns each batch of items into one value with the
/// collate function ([`default_collate`] stacks tensors along a new dim 0).
///
/// The permutations come from the generator one epoch after another, so the same seed gives the
/// same sequence of epochs in every run. With [`num_workers`](DataLoader::num_workers) > 0, batches
/// are prepared ahead on that many threads (batch `b` on worker `b % num_workers`, each keeping at
/// most [`prefetch_factor`](DataLoader::prefetch_factor) finished batches in a bounded channel) and
/// delivered in the same order, with the same contents, as without workers. (A dataset whose
/// `get` draws from the global random generator, e.g. for augmentation, sees those draws in
/// another order with workers; draw from a [`Generator`] seeded by the item index instead to
/// keep batches independent of `num_workers`.)
///
/// ```
/// use tapegrad::data::{DataLoader, TensorDataset};
/// use tapegrad::prelude::*;
///
/// let x = Tensor::arange(0.0, 7.0, 1.0).reshape([7, 1]);
/// let y = Tensor::arange_dtype(0.0, 7.0, 1.0, DType::I64);
/// let loader = DataLoader::new(TensorDataset::new((x, y)).unwrap(), 3).drop_last(true);
/// assert_eq!(loader.len(), 2); // 7 items: batches 0..3 and 3..6; item 6 is dropped
/// let labels: Vec<Vec<i64>> = loader.iter().map(|(_, y)| y.to_vec::<i64>()).collect();
/// assert_eq!(labels, vec![vec![0, 1, 2], vec![3, 4, 5]]);
/// ```
pub struct DataLoader<D: Dataset, B = <D as Dataset>::Item> {
    dataset: Arc<D>,
    batch_size: usize,
    drop_last: bool,
    shuffle: Option<Mutex<Generator>>,
    sampler: Option<Mutex<Box<dyn Sampler>>>,
    num_workers: usize,
    prefetch_factor: usize,
    collate: Arc<CollateFn<D::Item, B>>,
}

impl<D> DataLoader<D>
where
    D: Dataset + Send + Sync + 'static,
    D::Item: TensorTuple + Send + 'static,
{
    /// A loader of `dataset` in batches of `batch_size` items, merged by [`default_collate`];
    /// in order, keeping the last short batch, without workers (see the builder methods).
    ///
    /// # Panics
    /// If `batch_size` is 0.
    #[track_caller]
    pub fn new(dataset: D, batch_size: usize) -> DataLoader<D> {
        DataLoader::with_collate(dataset, batch_size, default_collate::<D::Item>)
    }
}

impl<D, B> DataLoader<D, B>
where
    D: Dataset + Send + Sync + 'static,
    B: Send + 'static,
{
    /// A loader whose batches are made by `collate` from the list of a batch's items, like
    /// `DataLoader(dataset, batch_size, collate_fn=collate)`. Use it for items that are not
    /// groups of tensors, or for batches of another form (padding, dictionaries, ...).
    ///
    /// ```
    /// use tapegrad::data::{DataLoader, TensorDataset};
    /// use tapegrad::prelude::*;
    ///
    /// let ds = TensorDataset::new(Tensor::arange(0.0, 5.0, 1.0)).unwrap();
    /// // a batch is the sum of its items
    /// let loader = DataLoader::with_collate(ds, 2, |items: Vec<Tensor>| {
    ///     items.iter().map(|t| t.item()).sum::<f64>()
    /// });
    /// assert_eq!(loader.iter().collect::<Vec<_>>(), vec![1.0, 5.0, 4.0]);
    /// ```
    ///
    /// # Panics
    /// If `batch_size` is 0.
    #[track_caller]
    pub fn with_collate<F>(dataset: D, batch_size: usize, collate: F) -> DataLoader<D, B>
    where
        F: Fn(Vec<D::Item>) -> B + Send + Sync + 'static,
    {
        if batch_size == 0 {
            panic!(
                "DataLoader: batch_size must be at least 1, at {}",
                Location::caller()
            );
        }
        DataLoader {
            dataset: Arc::new(dataset),
            batch_size,
            drop_last: false,
            shuffle: None,
            sampler: None,
            num_workers: 0,
            prefetch_factor: 2,
            collate: Arc::new(collate),
        }
    }

    /// Replaces the collate function (the batch type follows `collate`'s output).
    pub fn collate_fn<B2, F>(self, collate: F) -> DataLoader<D, B2>
    where
        F: Fn(Vec<D::Item>) -> B2 + Send + Sync + 'static,
    {
        DataLoader {
            dataset: self.dataset,
            batch_size: self.batch_size,
            drop_last: self.drop_last,
            shuffle: self.shuffle,
            sampler: self.sampler,
            num_workers: self.num_workers,
            prefetch_factor: self.prefetch_factor,
            collate: Arc::new(collate),
        }
    }

    /// Reshuffles the items at the start of every epoch with permutations drawn from
    /// `generator`, like `shuffle=True, generator=g`: epoch `k` uses the `k`-th permutation, so a
    /// given seed always gives the same sequence of epochs.
    ///
    /// # Panics
    /// If a [`sampler`](DataLoader::sampler) was given (the sampler decides the order).
    #[track_caller]
    pub fn shuffle(mut self, generator: Generator) -> Self {
        if self.sampler.is_some() {
            panic!(
                "DataLoader: sampler option is mutually exclusive with shuffle (the sampler \
                 decides the order), at {}",
                Location::caller()
            );
        }
        self.shuffle = Some(Mutex::new(generator));
        self
    }

    /// Visits the indices `sampler` gives each epoch, in its order, like
    /// `DataLoader(dataset, sampler=sampler)`; for example a
    /// [`DistributedSampler`](super::DistributedSampler), so that each data-parallel replica
    /// loads its own share. The loader owns the sampler: set its epoch with
    /// [`set_epoch`](DataLoader::set_epoch).
    ///
    /// ```
    /// use tapegrad::data::{DataLoader, DistributedSampler, TensorDataset};
    /// use tapegrad::prelude::*;
    ///
    /// let ds = TensorDataset::new(Tensor::arange(0.0, 10.0, 1.0)).unwrap();
    /// let (rank, world_size) = (1, 2);
    /// let loader = DataLoader::new(ds, 4).sampler(DistributedSampler::new(10, world_size, rank));
    /// assert_eq!(loader.len(), 2); // this rank's 5 items, in batches of 4 and 1
    /// for epoch in 0..3 {
    ///     loader.set_epoch(epoch); // a new permutation each epoch, the same on every rank
    ///     let items: usize = loader.iter().map(|b| b.shape()[0]).sum();
    ///     assert_eq!(items, 5);
    /// }
    /// ```
    ///
    /// # Panics
    /// If [`shuffle`](DataLoader::shuffle) was given (they are mutually exclusive, as in
    /// PyTorch). When an epoch starts, if the sampler gives an index past the dataset's end.
    #[track_caller]
    pub fn sampler(mut self, sampler: impl Sampler + 'static) -> Self {
        if self.shuffle.is_some() {
            panic!(
                "DataLoader: sampler option is mutually exclusive with shuffle (the sampler \
                 decides the order), at {}",
                Location::caller()
            );
        }
        self.sampler = Some(Mutex::new(Box::new(sampler)));
        self
    }

    /// Sets the epoch of the loader's [`sampler`](DataLoader::sampler), like
    /// `loader.sampler.set_epoch(epoch)` in PyTorch; call it before each epoch so that a
    /// [`DistributedSampler`](super::DistributedSampler) reshuffles. Does nothing without a sampler
    /// (a loader with [`shuffle`](DataLoader::shuffle) draws a new permutation every epoch anyway).
    pub fn set_epoch(&self, epoch: u64) {
        if let Some(s) = &self.sampler {
            s.lock().unwrap_or_else(|e| e.into_inner()).set_epoch(epoch);
        }
    }

    /// Whether to drop the last batch when it is smaller than `batch_size`.
    pub fn drop_last(mut self, drop_last: bool) -> Self {
        self.drop_last = drop_last;
        self
    }

    /// The number of threads preparing batches ahead (0, the default: batches are made on the
    /// iterating thread when asked for). The batches and their order do not depend on it.
    pub fn num_workers(mut self, num_workers: usize) -> Self {
        self.num_workers = num_workers;
        self
    }

    /// How many finished batches each worker keeps ready (default 2).
    ///
    /// # Panics
    /// If `prefetch_factor` is 0.
    #[track_caller]
    pub fn prefetch_factor(mut self, prefetch_factor: usize) -> Self {
        if prefetch_factor == 0 {
            panic!(
                "DataLoader::prefetch_factor: must be at least 1, at {}",
                Location::caller()
            );
        }
        self.prefetch_factor = prefetch_factor;
        self
    }

    /// The number of batches in an epoch.
    pub fn len(&self) -> usize {
        let n = self.epoch_len();
        if self.drop_last {
            n / self.batch_size
        } else {
            n.div_ceil(self.batch_size)
        }
    }

    /// Whether an epoch has no batches.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of items per batch.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// The dataset being loaded.
    pub fn dataset(&self) -> &D {
        &self.dataset
    }

    /// Starts an epoch: the batches, in order (drawing the epoch's permutation when shuffling).
    ///
    /// # Panics
    /// The iterator's `next` re-raises a panic of the dataset or the collate function, also when
    /// it happened on a worker thread.
    pub fn iter(&self) -> Iter<'_, D, B> {
        let n = self.dataset.len();
        let order: Vec<usize> = match (&self.shuffle, &self.sampler) {
            (Some(g), _) => g.lock().unwrap_or_else(|e| e.into_inner()).permutation(n),
            (None, Some(s)) => {
                let order = s.lock().unwrap_or_else(|e| e.into_inner()).indices();
                if let Some(&bad) = order.iter().find(|&&i| i >= n) {
                    panic!(
                        "DataLoader: the sampler gave index {bad}, but the dataset has {n} items"
                    );
                }
                order
            }
            (None, None) => (0..n).collect(),
        };
        let batches: Vec<Vec<usize>> = order
            .chunks(self.batch_size)
            .filter(|b| !self.drop_last || b.len() == self.batch_size)
            .map(<[usize]>::to_vec)
            .collect();
        let total = batches.len();
        let workers = if self.num_workers == 0 {
            Vec::new()
        } else {
            (0..self.num_workers.min(total))
                .map(|w| {
                    let own: Vec<Vec<usize>> = batches
                        .iter()
                        .skip(w)
                        .step_by(self.num_workers)
                        .cloned()
                        .collect();
                    self.spawn_worker(w, own)
                })
                .collect()
        };
        Iter {
            loader: self,
            batches: if workers.is_empty() {
                batches
            } else {
                Vec::new()
            },
            next: 0,
            total,
            workers,
        }
    }

    /// The number of items of an epoch.
    fn epoch_len(&self) -> usize {
        match &self.sampler {
            Some(s) => s.lock().unwrap_or_else(|e| e.into_inner()).len(),
            None => self.dataset.len(),
        }
    }

    /// Makes the batch of the items at `indices`.
    fn make_batch(dataset: &D, collate: &CollateFn<D::Item, B>, indices: &[usize]) -> B {
        collate(indices.iter().map(|&i| dataset.get(i)).collect())
    }

    /// Starts worker `w`, which makes `batches` in order and sends each (or the panic that stopped
    /// it) through its own bounded channel; it stops early when the channel is dropped.
    fn spawn_worker(&self, w: usize, batches: Vec<Vec<usize>>) -> Worker<B> {
        let (tx, rx) = mpsc::sync_channel(self.prefetch_factor);
        let dataset = Arc::clone(&self.dataset);
        let collate = Arc::clone(&self.collate);
        let handle = thread::Builder::new()
            .name(format!("tapegrad-data-worker-{w}"))
            .spawn(move || {
                for indices in batches {
                    let batch = panic::catch_unwind(AssertUnwindSafe(|| {
                        Self::make_batch(&dataset, &*collate, &indices)
                    }));
                    let failed = batch.is_err();
                    if tx.send(batch).is_err() || failed {
                        break;
                    }
                }
            })
            .unwrap_or_else(|e| panic!("DataLoader: cannot start worker thread {w}: {e}"));
        Worker {
            rx: Some(rx),
            handle: Some(handle),
        }
    }
}

impl<'a, D, B> IntoIterator for &'a DataLoader<D, B>
where
    D: Dataset + Send + Sync + 'static,
    B: Send + 'static,
{
    type Item = B;
    type IntoIter = Iter<'a, D, B>;

    fn into_iter(self) -> Iter<'a, D, B> {
        self.iter()
    }
}

/// One worker thread and the receiving end of its channel of finished batches (or panics).
struct Worker<B> {
    rx: Option<Receiver<thread::Result<B>>>,
    handle: Option<JoinHandle<()>>,
}

impl<B> Drop for Worker<B> {
    fn drop(&mut self) {
        // Closing the channel first makes a worker blocked on a full channel stop.
        drop(self.rx.take());
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// One epoch of a [`DataLoader`]: its batches, in order. Dropping it early stops the workers.
pub struct Iter<'a, D: Dataset, B> {
    loader: &'a DataLoader<D, B>,
    /// The indices of each batch (when there are no workers).
    batches: Vec<Vec<usize>>,
    next: usize,
    total: usize,
    workers: Vec<Worker<B>>,
}

impl<D, B> Iterator for Iter<'_, D, B>
where
    D: Dataset + Send + Sync + 'static,
    B: Send + 'static,
{
    type Item = B;

    fn next(&mut self) -> Option<B> {
        if self.next >= self.total {
            return None;
        }
        let b = self.next;
        self.next += 1;
        if self.workers.is_empty() {
            let l = self.loader;
            return Some(DataLoader::make_batch(
                &l.dataset,
                &*l.collate,
                &self.batches[b],
            ));
        }
        let w = b % self.workers.len();
        let rx = self.workers[w].rx.as_ref().expect("open while iterating");
        match rx.recv() {
            Ok(Ok(batch)) => Some(batch),
            Ok(Err(payload)) => {
                self.next = self.total;
                panic::resume_unwind(payload)
            }
            Err(_) => panic!("DataLoader: worker thread {w} stopped before sending batch {b}"),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.total - self.next;
        (left, Some(left))
    }
}

impl<D, B> ExactSizeIterator for Iter<'_, D, B>
where
    D: Dataset + Send + Sync + 'static,
    B: Send + 'static,
{
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::TensorDataset;
    use crate::Tensor;

    fn iota(n: usize) -> TensorDataset<Tensor> {
        TensorDataset::new(Tensor::arange(0.0, n as f64, 1.0)).unwrap()
    }

    fn epoch(loader: &DataLoader<TensorDataset<Tensor>>) -> Vec<Vec<f32>> {
        loader.iter().map(|b| b.to_vec::<f32>()).collect()
    }

    #[test]
    fn batches_follow_index_order_and_last_batch_is_short() {
        let loader = DataLoader::new(iota(5), 2);
        assert_eq!(loader.len(), 3);
        assert_eq!(
            epoch(&loader),
            vec![vec![0.0, 1.0], vec![2.0, 3.0], vec![4.0]]
        );
    }

    #[test]
    fn iterator_knows_how_many_batches_are_left() {
        let loader = DataLoader::new(iota(5), 2).num_workers(2);
        let mut it = loader.iter();
        assert_eq!(it.len(), 3);
        it.next();
        assert_eq!(it.len(), 2);
    }

    #[test]
    fn more_workers_than_batches_is_fine() {
        let loader = DataLoader::new(iota(3), 2).num_workers(8);
        assert_eq!(epoch(&loader), vec![vec![0.0, 1.0], vec![2.0]]);
    }

    #[test]
    fn dropping_an_epoch_early_stops_its_workers() {
        // a full channel blocks each worker; dropping the iterator must unblock and join them
        let loader = DataLoader::new(iota(100), 1)
            .num_workers(3)
            .prefetch_factor(1);
        let first: Vec<Tensor> = loader.iter().take(2).collect();
        assert_eq!(first.len(), 2);
        assert_eq!(epoch(&loader).len(), 100);
    }

    #[test]
    #[should_panic(expected = "DataLoader: batch_size must be at least 1")]
    fn zero_batch_size_panics() {
        DataLoader::new(iota(3), 0);
    }

    #[test]
    #[should_panic(expected = "DataLoader::prefetch_factor: must be at least 1")]
    fn zero_prefetch_factor_panics() {
        let _ = DataLoader::new(iota(3), 1).prefetch_factor(0);
    }
}
