//! The [`Dataset`] trait and the datasets built from others: [`TensorDataset`], [`Subset`] and
//! [`random_split`], like their namesakes in `torch.utils.data`.

use std::panic::Location;
use std::sync::Arc;

use ndarray::Axis;

use crate::tensor::random::Generator;
use crate::tensor::{Data, Tensor};
use crate::{Error, Result};

/// A collection of items addressed by index `0..len()`, like `torch.utils.data.Dataset` (a
/// map-style dataset).
///
/// Items are usually tuples of tensors such as `(input, target)`; any type implementing
/// [`TensorTuple`] can be batched by the default collate function of a
/// [`DataLoader`](crate::data::DataLoader). A custom dataset needs two methods:
///
/// ```
/// use tapegrad::data::{DataLoader, Dataset};
/// use tapegrad::prelude::*;
///
/// /// The points (i, 2i) with the label i % 2.
/// struct Line(usize);
///
/// impl Dataset for Line {
///     type Item = (Tensor, Tensor);
///     fn len(&self) -> usize {
///         self.0
///     }
///     fn get(&self, i: usize) -> (Tensor, Tensor) {
///         let x = Tensor::from_vec(vec![i as f32, 2.0 * i as f32], &[2]);
///         (x, Tensor::from_vec_i64(vec![i as i64 % 2], &[]))
///     }
/// }
///
/// let (x, y) = DataLoader::new(Line(3), 3).iter().next().unwrap();
/// assert_eq!(x.to_vec::<f32>(), vec![0.0, 0.0, 1.0, 2.0, 2.0, 4.0]);
/// assert_eq!(y.to_vec::<i64>(), vec![0, 1, 0]);
/// ```
pub trait Dataset {
    /// What [`get`](Dataset::get) returns, e.g. `(Tensor, Tensor)`.
    type Item;

    /// The number of items.
    fn len(&self) -> usize;

    /// The item at `index` (`index < len()`; implementations panic otherwise).
    fn get(&self, index: usize) -> Self::Item;

    /// Whether the dataset has no items.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

macro_rules! forward_dataset {
    ($($ptr:ty),*) => {$(
        impl<D: Dataset + ?Sized> Dataset for $ptr {
            type Item = D::Item;
            fn len(&self) -> usize {
                (**self).len()
            }
            fn get(&self, index: usize) -> D::Item {
                (**self).get(index)
            }
        }
    )*};
}

// A shared or boxed dataset is a dataset: `Arc<D>` lets several loaders or subsets share one.
forward_dataset!(Arc<D>, Box<D>, &D);

/// A fixed group of tensors that moves as one: a dataset item, or a batch of them.
///
/// Implemented for a single [`Tensor`], for tuples of 1 to 6 tensors, and for `Vec<Tensor>` (any
/// number, chosen at run time). [`TensorDataset`] returns items of the type it was built from, and
/// [`default_collate`](crate::data::default_collate) merges items of such a type into a batch of
/// the same type.
pub trait TensorTuple: Sized {
    /// The tensors, in order (cheap: tensors are shared handles).
    fn to_tensors(&self) -> Vec<Tensor>;

    /// Rebuilds the group from tensors in the order [`to_tensors`](TensorTuple::to_tensors) gives.
    ///
    /// # Panics
    /// If the number of tensors is not the group's size (tuples and a single tensor have a fixed
    /// size; a `Vec` takes any number).
    fn from_tensors(tensors: Vec<Tensor>) -> Self;
}

impl TensorTuple for Tensor {
    fn to_tensors(&self) -> Vec<Tensor> {
        vec![self.clone()]
    }

    #[track_caller]
    fn from_tensors(tensors: Vec<Tensor>) -> Self {
        let [t]: [Tensor; 1] = exact(tensors);
        t
    }
}

impl TensorTuple for Vec<Tensor> {
    fn to_tensors(&self) -> Vec<Tensor> {
        self.clone()
    }

    fn from_tensors(tensors: Vec<Tensor>) -> Self {
        tensors
    }
}

/// Converts to a fixed-size array, panicking with the sizes when they differ.
#[track_caller]
fn exact<const N: usize>(tensors: Vec<Tensor>) -> [Tensor; N] {
    let n = tensors.len();
    tensors.try_into().unwrap_or_else(|_| {
        panic!(
            "TensorTuple::from_tensors: got {n} tensors for a group of {N}, at {}",
            Location::caller()
        )
    })
}

macro_rules! tensor_tuple {
    ($($name:ident),+) => {
        impl TensorTuple for ($(tensor_tuple!(@ty $name),)+) {
            fn to_tensors(&self) -> Vec<Tensor> {
                let ($($name,)+) = self;
                vec![$($name.clone()),+]
            }

            #[track_caller]
            fn from_tensors(tensors: Vec<Tensor>) -> Self {
                let [$($name),+] = exact(tensors);
                ($($name,)+)
            }
        }
    };
    (@ty $name:ident) => { Tensor };
}

tensor_tuple!(a);
tensor_tuple!(a, b);
tensor_tuple!(a, b, c);
tensor_tuple!(a, b, c, d);
tensor_tuple!(a, b, c, d, e);
tensor_tuple!(a, b, c, d, e, f);

/// Row `i` of `t` along dim 0, sharing `t`'s storage (no copy). `i` must be in range.
pub(crate) fn row(t: &Tensor, i: usize) -> Tensor {
    let data = t.with_data(|d| {
        crate::with_any!(d, |a: T| Data::from(a.clone().index_axis_move(Axis(0), i)))
    });
    Tensor::from_data(data)
}

/// Tensors of equal first dimension seen as a dataset of their rows, like
/// `torch.utils.data.TensorDataset`: item `i` holds row `i` (along dim 0) of each tensor, in a
/// group of the same type as the one the dataset was built from.
///
/// Items share the tensors' storage (no copy); they are leaves cut off from the graph.
///
/// ```
/// use tapegrad::data::{Dataset, TensorDataset};
/// use tapegrad::prelude::*;
///
/// let x = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[3, 2]);
/// let y = Tensor::from_vec_i64(vec![7, 8, 9], &[3]);
/// let ds = TensorDataset::new((x, y)).unwrap();
/// let (xi, yi) = ds.get(1);
/// assert_eq!(xi.to_vec::<f32>(), vec![3.0, 4.0]);
/// assert_eq!(yi.shape(), &[] as &[usize]);
/// assert_eq!(yi.to_vec::<i64>(), vec![8]);
/// ```
#[derive(Clone, Debug)]
pub struct TensorDataset<T: TensorTuple = (Tensor, Tensor)> {
    tensors: T,
    columns: Vec<Tensor>,
    len: usize,
}

impl<T: TensorTuple> TensorDataset<T> {
    /// A dataset of the rows of `tensors` (a tensor, a tuple of tensors or a `Vec<Tensor>`).
    ///
    /// # Errors
    /// [`Error::Shape`] if there are no tensors, if one is 0-dimensional, or if their sizes along
    /// dim 0 differ.
    pub fn new(tensors: T) -> Result<Self> {
        let columns = tensors.to_tensors();
        let Some(first) = columns.first() else {
            return Err(Error::Shape(
                "TensorDataset: needs at least one tensor".to_owned(),
            ));
        };
        if let Some((k, t)) = columns.iter().enumerate().find(|(_, t)| t.ndim() == 0) {
            return Err(Error::Shape(format!(
                "TensorDataset: tensor {k} is 0-dimensional (shape {:?}); each tensor needs a \
                 dim 0 to index",
                t.shape()
            )));
        }
        let len = first.shape()[0];
        if let Some((k, t)) = columns
            .iter()
            .enumerate()
            .find(|(_, t)| t.shape()[0] != len)
        {
            return Err(Error::Shape(format!(
                "TensorDataset: size mismatch between tensors: tensor {k} has {} rows (shape \
                 {:?}) but tensor 0 has {len} (shape {:?})",
                t.shape()[0],
                t.shape(),
                first.shape()
            )));
        }
        Ok(TensorDataset {
            tensors,
            columns,
            len,
        })
    }

    /// The whole tensors the dataset was built from.
    pub fn tensors(&self) -> &T {
        &self.tensors
    }

    /// Gives back the tensors the dataset was built from.
    pub fn into_tensors(self) -> T {
        self.tensors
    }
}

impl<T: TensorTuple> Dataset for TensorDataset<T> {
    type Item = T;

    fn len(&self) -> usize {
        self.len
    }

    /// Row `index` of each tensor.
    ///
    /// # Panics
    /// If `index >= len()`.
    #[track_caller]
    fn get(&self, index: usize) -> T {
        if index >= self.len {
            panic!(
                "TensorDataset::get: index {index} is out of range for a dataset of {} items, at {}",
                self.len,
                Location::caller()
            );
        }
        T::from_tensors(self.columns.iter().map(|t| row(t, index)).collect())
    }
}

/// The items of a dataset at chosen indices, like `torch.utils.data.Subset`: item `i` is item
/// `indices[i]` of the underlying dataset, which is shared (not copied) between subsets.
///
/// ```
/// use tapegrad::data::{Dataset, Subset, TensorDataset};
/// use tapegrad::prelude::*;
///
/// let ds = TensorDataset::new(Tensor::arange(0.0, 5.0, 1.0)).unwrap();
/// let odd = Subset::new(ds, vec![1, 3]);
/// assert_eq!(odd.len(), 2);
/// assert_eq!(odd.get(1).item(), 3.0);
/// ```
#[derive(Debug)]
pub struct Subset<D> {
    dataset: Arc<D>,
    indices: Vec<usize>,
}

impl<D> Clone for Subset<D> {
    fn clone(&self) -> Self {
        Subset {
            dataset: Arc::clone(&self.dataset),
            indices: self.indices.clone(),
        }
    }
}

impl<D: Dataset> Subset<D> {
    /// The items of `dataset` at `indices` (in that order; repeats allowed). Pass an `Arc<D>` to
    /// keep using the dataset elsewhere.
    ///
    /// # Panics
    /// If an index is out of range for `dataset`.
    #[track_caller]
    pub fn new(dataset: D, indices: Vec<usize>) -> Subset<D> {
        Subset::shared(Arc::new(dataset), indices)
    }

    #[track_caller]
    fn shared(dataset: Arc<D>, indices: Vec<usize>) -> Subset<D> {
        let n = dataset.len();
        if let Some((k, &i)) = indices.iter().enumerate().find(|(_, &i)| i >= n) {
            panic!(
                "Subset::new: index {i} (at position {k}) is out of range for a dataset of {n} \
                 items, at {}",
                Location::caller()
            );
        }
        Subset { dataset, indices }
    }

    /// The indices into the underlying dataset.
    pub fn indices(&self) -> &[usize] {
        &self.indices
    }

    /// The underlying dataset.
    pub fn dataset(&self) -> &Arc<D> {
        &self.dataset
    }
}

impl<D: Dataset> Dataset for Subset<D> {
    type Item = D::Item;

    fn len(&self) -> usize {
        self.indices.len()
    }

    /// Item `indices[index]` of the underlying dataset.
    ///
    /// # Panics
    /// If `index >= len()`.
    #[track_caller]
    fn get(&self, index: usize) -> D::Item {
        match self.indices.get(index) {
            Some(&i) => self.dataset.get(i),
            None => panic!(
                "Subset::get: index {index} is out of range for a subset of {} items, at {}",
                self.indices.len(),
                Location::caller()
            ),
        }
    }
}

/// The size of one part in [`random_split`]: a count of items (`usize`) or a fraction of the
/// dataset (`f64`).
pub trait SplitLength: Copy {
    /// The counts of items for `lengths` in a dataset of `n` items.
    ///
    /// # Errors
    /// [`Error::Shape`] if the lengths do not add up to the dataset.
    fn resolve(lengths: &[Self], n: usize) -> Result<Vec<usize>>;
}

impl SplitLength for usize {
    fn resolve(lengths: &[usize], n: usize) -> Result<Vec<usize>> {
        let total: usize = lengths.iter().sum();
        if total != n {
            return Err(Error::Shape(format!(
                "random_split: the lengths {lengths:?} add up to {total}, but the dataset has \
                 {n} items"
            )));
        }
        Ok(lengths.to_vec())
    }
}

impl SplitLength for f64 {
    /// Each part gets `floor(fraction * n)` items; the items left over go one each to the parts in
    /// order, starting from the first (as PyTorch does).
    fn resolve(fractions: &[f64], n: usize) -> Result<Vec<usize>> {
        if let Some(f) = fractions.iter().find(|f| !(0.0..=1.0).contains(*f)) {
            return Err(Error::Shape(format!(
                "random_split: fraction {f} is not in [0, 1] (fractions {fractions:?})"
            )));
        }
        let total: f64 = fractions.iter().sum();
        if (total - 1.0).abs() > 1e-6 {
            return Err(Error::Shape(format!(
                "random_split: the fractions {fractions:?} add up to {total}, not 1"
            )));
        }
        let mut counts: Vec<usize> = fractions
            .iter()
            .map(|f| (f * n as f64).floor() as usize)
            .collect();
        let Some(rest) = n.checked_sub(counts.iter().sum()) else {
            return Err(Error::Shape(format!(
                "random_split: the fractions {fractions:?} add up to {total}, more than 1"
            )));
        };
        let parts = counts.len();
        for i in 0..rest {
            counts[i % parts] += 1;
        }
        Ok(counts)
    }
}

/// Splits `dataset` into non-overlapping random [`Subset`]s of the given sizes, like
/// `torch.utils.data.random_split`. `lengths` are counts of items that add up to `dataset.len()`,
/// or fractions that add up to 1. The split is a random permutation drawn from `generator`, so the
/// same seed gives the same split.
///
/// ```
/// use tapegrad::data::{random_split, Dataset, TensorDataset};
/// use tapegrad::prelude::*;
///
/// let ds = TensorDataset::new(Tensor::arange(0.0, 10.0, 1.0)).unwrap();
/// let parts = random_split(ds, &[0.8, 0.2], &mut Generator::new(42)).unwrap();
/// assert_eq!((parts[0].len(), parts[1].len()), (8, 2));
/// ```
///
/// # Errors
/// [`Error::Shape`] if counts do not add up to the dataset's length, or fractions are outside
/// `[0, 1]` or do not add up to 1.
pub fn random_split<D: Dataset, L: SplitLength>(
    dataset: D,
    lengths: &[L],
    generator: &mut Generator,
) -> Result<Vec<Subset<D>>> {
    let counts = L::resolve(lengths, dataset.len())?;
    let perm = generator.permutation(dataset.len());
    let dataset = Arc::new(dataset);
    let mut start = 0;
    Ok(counts
        .into_iter()
        .map(|c| {
            let part = perm[start..start + c].to_vec();
            start += c;
            Subset {
                dataset: Arc::clone(&dataset),
                indices: part,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iota(n: usize) -> TensorDataset<Tensor> {
        TensorDataset::new(Tensor::arange(0.0, n as f64, 1.0)).unwrap()
    }

    fn values<D: Dataset<Item = Tensor>>(ds: &D) -> Vec<f64> {
        (0..ds.len()).map(|i| ds.get(i).item()).collect()
    }

    #[test]
    fn tensor_dataset_item_is_row_of_each_tensor() {
        let x = Tensor::arange(0.0, 12.0, 1.0).reshape([3, 2, 2]);
        let y = Tensor::from_vec_i64(vec![5, 6, 7], &[3]);
        let z = Tensor::from_vec_f64(vec![0.5, 1.5, 2.5], &[3, 1]);
        let ds = TensorDataset::new((x, y, z)).unwrap();
        assert_eq!(ds.len(), 3);
        let (a, b, c) = ds.get(2);
        assert_eq!(a.shape(), &[2, 2]);
        assert_eq!(a.to_vec::<f32>(), vec![8.0, 9.0, 10.0, 11.0]);
        assert_eq!(b.to_vec::<i64>(), vec![7]);
        assert_eq!(c.to_vec::<f64>(), vec![2.5]);
    }

    #[test]
    fn tensor_dataset_of_a_vec_takes_any_number_of_tensors() {
        let cols: Vec<Tensor> = (0..4).map(|k| Tensor::full(&[2, 3], k as f32)).collect();
        let ds = TensorDataset::new(cols).unwrap();
        let item = ds.get(1);
        assert_eq!(item.len(), 4);
        assert_eq!(item[3].to_vec::<f32>(), vec![3.0; 3]);
    }

    #[test]
    fn tensor_dataset_rows_of_non_contiguous_tensor() {
        // xᵀ of x = [[0, 1, 2], [3, 4, 5]]: row 1 of xᵀ is column 1 of x
        let xt = Tensor::arange(0.0, 6.0, 1.0).reshape([2, 3]).t();
        let ds = TensorDataset::new(xt).unwrap();
        assert_eq!(ds.get(1).to_vec::<f32>(), vec![1.0, 4.0]);
    }

    #[test]
    fn tensor_dataset_rejects_unequal_first_dims() {
        let err = TensorDataset::new((Tensor::zeros(&[5, 2]), Tensor::zeros(&[4])))
            .unwrap_err()
            .to_string();
        assert!(err.contains("tensor 1 has 4 rows"), "{err}");
        assert!(err.contains("tensor 0 has 5"), "{err}");
    }

    #[test]
    fn tensor_dataset_rejects_scalars_and_empty_groups() {
        let err = TensorDataset::new((Tensor::zeros(&[2]), Tensor::scalar(1.0))).unwrap_err();
        assert!(
            err.to_string().contains("tensor 1 is 0-dimensional"),
            "{err}"
        );
        let err = TensorDataset::new(Vec::<Tensor>::new()).unwrap_err();
        assert!(err.to_string().contains("at least one tensor"), "{err}");
    }

    #[test]
    #[should_panic(expected = "TensorDataset::get: index 3 is out of range for a dataset of 3")]
    fn tensor_dataset_get_out_of_range_panics() {
        iota(3).get(3);
    }

    #[test]
    #[should_panic(expected = "TensorTuple::from_tensors: got 3 tensors for a group of 2")]
    fn tuple_from_wrong_number_of_tensors_panics() {
        <(Tensor, Tensor)>::from_tensors(vec![Tensor::zeros(&[1]); 3]);
    }

    #[test]
    fn subset_maps_indices_in_order_with_repeats() {
        let s = Subset::new(iota(5), vec![4, 0, 4]);
        assert_eq!(values(&s), vec![4.0, 0.0, 4.0]);
    }

    #[test]
    #[should_panic(
        expected = "Subset::new: index 5 (at position 1) is out of range for a dataset of 5"
    )]
    fn subset_with_index_out_of_range_panics() {
        Subset::new(iota(5), vec![0, 5]);
    }

    #[test]
    fn random_split_counts_partition_the_dataset() {
        let parts = random_split(iota(10), &[3, 7], &mut Generator::new(1)).unwrap();
        assert_eq!((parts[0].len(), parts[1].len()), (3, 7));
        let mut all: Vec<f64> = parts.iter().flat_map(values).collect();
        all.sort_by(f64::total_cmp);
        assert_eq!(all, (0..10).map(f64::from).collect::<Vec<_>>());
        // the same seed draws the same split, another seed (almost surely) another
        let again = random_split(iota(10), &[3, 7], &mut Generator::new(1)).unwrap();
        assert_eq!(parts[0].indices(), again[0].indices());
        let other = random_split(iota(10), &[3, 7], &mut Generator::new(2)).unwrap();
        assert_ne!(parts[1].indices(), other[1].indices());
    }

    #[test]
    fn random_split_fractions_give_leftovers_to_first_parts() {
        // 11 items: floor(11·0.3) = 3 three times = 9, floor(11·0.1) = 1, total 10; the one
        // item left over goes to part 0
        let c = f64::resolve(&[0.3, 0.3, 0.3, 0.1], 11).unwrap();
        assert_eq!(c, vec![4, 3, 3, 1]);
        let parts = random_split(iota(11), &[0.5, 0.5], &mut Generator::new(0)).unwrap();
        assert_eq!((parts[0].len(), parts[1].len()), (6, 5));
    }

    #[test]
    fn random_split_rejects_lengths_that_do_not_add_up() {
        let err = random_split(iota(10), &[3, 6], &mut Generator::new(0)).unwrap_err();
        assert!(
            err.to_string()
                .contains("add up to 9, but the dataset has 10"),
            "{err}"
        );
        let err = random_split(iota(10), &[0.5, 0.4], &mut Generator::new(0)).unwrap_err();
        assert!(err.to_string().contains("add up to 0.9"), "{err}");
        let err = random_split(iota(10), &[1.5, -0.5], &mut Generator::new(0)).unwrap_err();
        assert!(
            err.to_string().contains("fraction 1.5 is not in [0, 1]"),
            "{err}"
        );
    }
}
