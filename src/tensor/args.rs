//! Argument types that let calls read like PyTorch: a dim may be negative (`-1` is the last), a
//! shape may contain one `-1` to infer, and literals need no suffix (`x.sum_dim(1, true)`,
//! `x.reshape([2, -1])`).

use std::panic::Location;

/// A single dimension index, possibly negative (counted from the end).
pub trait Dim: Copy {
    /// The index as a signed integer.
    fn as_isize(self) -> isize;
}

macro_rules! impl_dim {
    ($($t:ty),*) => {$(
        impl Dim for $t {
            fn as_isize(self) -> isize {
                self as isize
            }
        }
    )*};
}
impl_dim!(i32, i64, isize, usize, u32);

/// One or more dimension indices: a single dim, an array, a slice or a vector of them.
pub trait Dims {
    /// The indices as signed integers.
    fn to_isizes(&self) -> Vec<isize>;
}

impl<D: Dim> Dims for D {
    fn to_isizes(&self) -> Vec<isize> {
        vec![self.as_isize()]
    }
}
impl<D: Dim, const N: usize> Dims for [D; N] {
    fn to_isizes(&self) -> Vec<isize> {
        self.iter().map(|d| d.as_isize()).collect()
    }
}
impl<D: Dim, const N: usize> Dims for &[D; N] {
    fn to_isizes(&self) -> Vec<isize> {
        self.iter().map(|d| d.as_isize()).collect()
    }
}
impl<D: Dim> Dims for &[D] {
    fn to_isizes(&self) -> Vec<isize> {
        self.iter().map(|d| d.as_isize()).collect()
    }
}
impl<D: Dim> Dims for Vec<D> {
    fn to_isizes(&self) -> Vec<isize> {
        self.iter().map(|d| d.as_isize()).collect()
    }
}
impl<D: Dim> Dims for &Vec<D> {
    fn to_isizes(&self) -> Vec<isize> {
        self.iter().map(|d| d.as_isize()).collect()
    }
}

/// A shape argument: sizes, where a `-1` (in reshape-like ops) means "infer this one".
pub trait ShapeArg {
    /// The sizes as signed integers.
    fn to_isizes(&self) -> Vec<isize>;
}

impl<D: Dim, const N: usize> ShapeArg for [D; N] {
    fn to_isizes(&self) -> Vec<isize> {
        self.iter().map(|d| d.as_isize()).collect()
    }
}
impl<D: Dim, const N: usize> ShapeArg for &[D; N] {
    fn to_isizes(&self) -> Vec<isize> {
        self.iter().map(|d| d.as_isize()).collect()
    }
}
impl<D: Dim> ShapeArg for &[D] {
    fn to_isizes(&self) -> Vec<isize> {
        self.iter().map(|d| d.as_isize()).collect()
    }
}
impl<D: Dim> ShapeArg for Vec<D> {
    fn to_isizes(&self) -> Vec<isize> {
        self.iter().map(|d| d.as_isize()).collect()
    }
}
impl<D: Dim> ShapeArg for &Vec<D> {
    fn to_isizes(&self) -> Vec<isize> {
        self.iter().map(|d| d.as_isize()).collect()
    }
}

/// Resolves a possibly negative `dim` against `ndim` dimensions.
///
/// # Panics
/// If the dim is out of range, naming `op` and the caller.
#[track_caller]
pub(crate) fn norm_dim(op: &str, dim: isize, ndim: usize) -> usize {
    let loc = Location::caller();
    try_norm_dim(dim, ndim).unwrap_or_else(|| {
        panic!(
            "{op}: dimension out of range (expected to be in range of [{}, {}], but got {dim}) \
             for a tensor with {ndim} dimensions, at {loc}",
            -(ndim.max(1) as isize),
            ndim.max(1) as isize - 1,
        )
    })
}

/// Resolves a possibly negative `dim`, or `None` when out of range.
pub(crate) fn try_norm_dim(dim: isize, ndim: usize) -> Option<usize> {
    // a 0-d tensor accepts dims -1 and 0, as in PyTorch
    let n = (ndim as isize).max(1);
    let d = if dim < 0 { dim + n } else { dim };
    if d < 0 || d >= n {
        None
    } else {
        Some(d as usize)
    }
}

/// Resolves a list of dims: sorted, deduplicated check, all in range.
///
/// # Panics
/// If a dim is out of range or repeated.
#[track_caller]
pub(crate) fn norm_dims(op: &str, dims: &[isize], ndim: usize) -> Vec<usize> {
    let mut out: Vec<usize> = dims.iter().map(|&d| norm_dim(op, d, ndim)).collect();
    out.sort_unstable();
    if out.windows(2).any(|w| w[0] == w[1]) {
        panic!(
            "{op}: dim appears multiple times in the list of dims {dims:?}, at {}",
            Location::caller()
        );
    }
    if ndim == 0 {
        out.clear();
    }
    out
}

/// Resolves a shape with at most one `-1` for `numel` elements.
///
/// # Panics
/// If more than one size is `-1`, a size is otherwise negative, or the sizes do not multiply to
/// `numel`.
#[track_caller]
pub(crate) fn infer_shape(op: &str, shape: &[isize], numel: usize, from: &[usize]) -> Vec<usize> {
    let loc = Location::caller();
    try_infer_shape(op, shape, numel, from).unwrap_or_else(|e| panic!("{e}, at {loc}"))
}

/// [`infer_shape`] returning the message instead of panicking.
pub(crate) fn try_infer_shape(
    op: &str,
    shape: &[isize],
    numel: usize,
    from: &[usize],
) -> Result<Vec<usize>, String> {
    let mut infer = None;
    let mut known = 1usize;
    for (i, &s) in shape.iter().enumerate() {
        if s == -1 {
            if infer.replace(i).is_some() {
                return Err(format!(
                    "{op}: only one dimension can be inferred (-1) in shape {shape:?}"
                ));
            }
        } else if s < 0 {
            return Err(format!("{op}: invalid shape dimension {s} in {shape:?}"));
        } else {
            known *= s as usize;
        }
    }
    let mut out: Vec<usize> = shape.iter().map(|&s| s.max(0) as usize).collect();
    let invalid =
        || format!("{op}: shape {shape:?} is invalid for input of size {numel} (shape {from:?})");
    if let Some(i) = infer {
        if known == 0 || numel % known != 0 {
            return Err(invalid());
        }
        out[i] = numel / known;
    } else if known != numel {
        return Err(invalid());
    }
    Ok(out)
}

/// The broadcast shape of two shapes under NumPy/PyTorch rules, or `None` if incompatible.
pub(crate) fn broadcast_shapes(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for i in 0..n {
        let da = if i + a.len() >= n {
            a[i + a.len() - n]
        } else {
            1
        };
        let db = if i + b.len() >= n {
            b[i + b.len() - n]
        } else {
            1
        };
        out[i] = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            return None;
        };
    }
    Some(out)
}
