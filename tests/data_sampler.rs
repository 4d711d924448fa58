//! Samplers for the `DataLoader`: the `Sampler` trait and `DistributedSampler`, which splits every
//! epoch into equal shares for data-parallel replicas the way `torch.utils.data.DistributedSampler`
//! does (shuffle by seed + epoch, pad from the start, rank r takes positions r, r + R, ...).

mod common;

use std::collections::BTreeSet;

use common::panic_message;
use tapegrad::data::{DataLoader, DistributedSampler, Sampler, TensorDataset};
use tapegrad::prelude::*;

/// Every rank's indices for one epoch.
fn shares(
    len: usize,
    replicas: usize,
    configure: impl Fn(DistributedSampler) -> DistributedSampler,
) -> Vec<Vec<usize>> {
    (0..replicas)
        .map(|rank| configure(DistributedSampler::new(len, replicas, rank)).indices())
        .collect()
}

#[test]
fn the_ranks_together_cover_the_dataset_with_equal_lengths() {
    for (len, replicas) in [(10, 4), (12, 4), (7, 3), (3, 5), (1, 1), (100, 7)] {
        for shuffle in [false, true] {
            let s = shares(len, replicas, |s| s.shuffle(shuffle).seed(3));
            let expected_len = len.div_ceil(replicas);
            for (rank, idx) in s.iter().enumerate() {
                assert_eq!(
                    idx.len(),
                    expected_len,
                    "len {len}, {replicas} replicas, rank {rank}"
                );
                assert_eq!(
                    DistributedSampler::new(len, replicas, rank).len(),
                    expected_len
                );
            }
            let union: BTreeSet<usize> = s.iter().flatten().copied().collect();
            assert_eq!(union, (0..len).collect(), "len {len}, {replicas} replicas");
        }
    }
}

#[test]
fn padding_repeats_the_first_indices_as_pytorch_does() {
    // 10 items over 4 replicas: total 12, padded with indices 0 and 1; rank r takes r::4
    let s = shares(10, 4, |s| s.shuffle(false));
    assert_eq!(
        s,
        vec![vec![0, 4, 8], vec![1, 5, 9], vec![2, 6, 0], vec![3, 7, 1]]
    );
    // a dataset smaller than the padding is repeated several times over: 2 items, 5 replicas
    let s = shares(2, 5, |s| s.shuffle(false));
    assert_eq!(s, vec![vec![0], vec![1], vec![0], vec![1], vec![0]]);
}

#[test]
fn with_shuffle_the_padding_repeats_the_start_of_the_permutation() {
    // total 12 = the 10-permutation followed by its first two entries
    let s = shares(10, 4, |s| s.seed(7));
    let mut whole = [0; 12];
    for (rank, idx) in s.iter().enumerate() {
        for (k, &i) in idx.iter().enumerate() {
            whole[rank + 4 * k] = i;
        }
    }
    assert_eq!(&whole[10..], &whole[..2]);
    let first_ten: BTreeSet<usize> = whole[..10].iter().copied().collect();
    assert_eq!(first_ten, (0..10).collect());
}

#[test]
fn drop_last_drops_the_tail_instead_of_padding() {
    // 10 items over 4 replicas: 2 each, 8 distinct indices, no repeats
    let s = shares(10, 4, |s| s.shuffle(false).drop_last(true));
    assert_eq!(s, vec![vec![0, 4], vec![1, 5], vec![2, 6], vec![3, 7]]);
    assert_eq!(DistributedSampler::new(10, 4, 0).drop_last(true).len(), 2);
    let s = shares(10, 4, |s| s.seed(1).drop_last(true));
    let all: Vec<usize> = s.iter().flatten().copied().collect();
    let distinct: BTreeSet<usize> = all.iter().copied().collect();
    assert_eq!((all.len(), distinct.len()), (8, 8));
    // fewer items than replicas: nothing for anyone
    assert!(DistributedSampler::new(3, 4, 2).drop_last(true).is_empty());
}

#[test]
fn the_same_seed_and_epoch_give_the_same_order_on_every_rank_and_run() {
    let a = shares(50, 3, |s| s.seed(11));
    let b = shares(50, 3, |s| s.seed(11));
    assert_eq!(a, b);
    // the ranks share one permutation: their shares are disjoint (50 = 3·17 − 1, one repeat)
    let union: BTreeSet<usize> = a.iter().flatten().copied().collect();
    assert_eq!(union.len(), 50);
}

#[test]
fn different_epochs_and_seeds_give_different_orders() {
    let mut s = DistributedSampler::new(100, 2, 0);
    let e0 = s.indices();
    assert_eq!(
        s.indices(),
        e0,
        "without set_epoch every epoch has the same order"
    );
    s.set_epoch(1);
    let e1 = s.indices();
    assert_ne!(e0, e1);
    assert_eq!(s.epoch(), 1);
    let other_seed = DistributedSampler::new(100, 2, 0).seed(5).indices();
    assert_ne!(e0, other_seed);
    // seed + epoch is what counts, as in PyTorch
    let mut shifted = DistributedSampler::new(100, 2, 0).seed(4);
    shifted.set_epoch(1);
    assert_eq!(shifted.indices(), other_seed);
}

#[test]
fn a_rank_outside_the_replicas_panics_naming_the_sampler() {
    let msg = panic_message(|| {
        DistributedSampler::new(10, 4, 4);
    });
    assert!(
        msg.contains("DistributedSampler") && msg.contains("rank 4"),
        "{msg}"
    );
    let msg = panic_message(|| {
        DistributedSampler::new(10, 0, 0);
    });
    assert!(msg.contains("DistributedSampler"), "{msg}");
}

// ----- in the DataLoader ---------------------------------------------------------------------

fn arange_ds(n: usize) -> TensorDataset<Tensor> {
    TensorDataset::new(Tensor::arange(0.0, n as f64, 1.0)).unwrap()
}

fn epoch_items(loader: &DataLoader<TensorDataset<Tensor>>) -> Vec<usize> {
    loader
        .iter()
        .flat_map(|b| b.to_vec::<f32>())
        .map(|v| v as usize)
        .collect()
}

#[test]
fn a_loader_with_a_distributed_sampler_loads_its_ranks_share_and_reshuffles_by_epoch() {
    let replicas = 3;
    let loaders: Vec<_> = (0..replicas)
        .map(|rank| {
            DataLoader::new(arange_ds(20), 4)
                .sampler(DistributedSampler::new(20, replicas, rank).seed(2))
        })
        .collect();
    assert_eq!(loaders[0].len(), 2); // 7 items: batches of 4 and 3
    let mut previous = None;
    for epoch in 0..3 {
        let mut all = Vec::new();
        for (rank, loader) in loaders.iter().enumerate() {
            loader.set_epoch(epoch);
            let items = epoch_items(loader);
            let mut expected = DistributedSampler::new(20, replicas, rank).seed(2);
            expected.set_epoch(epoch);
            assert_eq!(items, expected.indices(), "rank {rank}, epoch {epoch}");
            all.extend(items);
        }
        assert_eq!(all.len(), 21);
        let covered: BTreeSet<usize> = all.iter().copied().collect();
        assert_eq!(covered, (0..20).collect());
        assert_ne!(
            previous.as_ref(),
            Some(&all),
            "epoch {epoch} repeats the last order"
        );
        previous = Some(all);
    }
}

#[test]
fn a_loader_with_a_sampler_and_workers_gives_the_same_batches() {
    let sampler = || DistributedSampler::new(30, 2, 1).seed(9);
    let plain = DataLoader::new(arange_ds(30), 4).sampler(sampler());
    let workers = DataLoader::new(arange_ds(30), 4)
        .sampler(sampler())
        .num_workers(2);
    assert_eq!(epoch_items(&plain), epoch_items(&workers));
}

#[test]
fn shuffle_and_sampler_are_mutually_exclusive() {
    let msg = panic_message(|| {
        drop(
            DataLoader::new(arange_ds(4), 2)
                .shuffle(Generator::new(0))
                .sampler(DistributedSampler::new(4, 2, 0)),
        )
    });
    assert!(msg.contains("mutually exclusive"), "{msg}");
    let msg = panic_message(|| {
        drop(
            DataLoader::new(arange_ds(4), 2)
                .sampler(DistributedSampler::new(4, 2, 0))
                .shuffle(Generator::new(0)),
        )
    });
    assert!(msg.contains("mutually exclusive"), "{msg}");
}

#[test]
fn a_sampler_index_past_the_dataset_panics_when_the_epoch_starts() {
    // a sampler made for a longer dataset than the loader's
    let loader = DataLoader::new(arange_ds(4), 2).sampler(DistributedSampler::new(40, 1, 0));
    let msg = panic_message(|| drop(loader.iter()));
    assert!(msg.contains("sampler") && msg.contains("4 items"), "{msg}");
}
