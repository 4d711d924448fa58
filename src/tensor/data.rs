//! Element types and the type-erased storage behind a [`Tensor`](crate::Tensor).
//!
//! A tensor's elements live in an [`ndarray::ArcArray`]: cloning shares the buffer, and the first
//! write to a shared buffer copies it (copy-on-write), which is how views "share storage until
//! written". The dtype is chosen at run time, as in PyTorch, so one `Tensor` type serves f32, f64,
//! integer indices and boolean masks.

use std::fmt;

use ndarray::{ArcArray, IxDyn};

/// An n-dimensional, shared, copy-on-write array of `T`.
pub type Storage<T> = ArcArray<T, IxDyn>;

/// The element type of a tensor, chosen at run time like `torch.dtype`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    /// 32-bit float, the default (`torch.float32`).
    F32,
    /// 64-bit float (`torch.float64`), used for gradient checks.
    F64,
    /// 64-bit signed integer (`torch.int64`), used for indices.
    I64,
    /// Boolean (`torch.bool`), produced by comparisons and used as masks.
    Bool,
}

impl DType {
    /// Whether values of this dtype can carry gradients.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64)
    }

    /// Size of one element in bytes.
    pub fn size_in_bytes(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F64 | DType::I64 => 8,
            DType::Bool => 1,
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            DType::F32 => "float32",
            DType::F64 => "float64",
            DType::I64 => "int64",
            DType::Bool => "bool",
        };
        f.write_str(s)
    }
}

/// The type-erased storage of a tensor.
#[derive(Clone, Debug)]
pub enum Data {
    /// f32 elements.
    F32(Storage<f32>),
    /// f64 elements.
    F64(Storage<f64>),
    /// i64 elements.
    I64(Storage<i64>),
    /// bool elements.
    Bool(Storage<bool>),
}

impl Data {
    /// The dtype of the elements.
    pub fn dtype(&self) -> DType {
        match self {
            Data::F32(_) => DType::F32,
            Data::F64(_) => DType::F64,
            Data::I64(_) => DType::I64,
            Data::Bool(_) => DType::Bool,
        }
    }

    /// The shape of the array.
    pub fn shape(&self) -> &[usize] {
        match self {
            Data::F32(a) => a.shape(),
            Data::F64(a) => a.shape(),
            Data::I64(a) => a.shape(),
            Data::Bool(a) => a.shape(),
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape().iter().product()
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held by the elements (not counting sharing).
    pub fn nbytes(&self) -> usize {
        self.len() * self.dtype().size_in_bytes()
    }

    /// Whether the elements are laid out in row-major order without gaps.
    pub fn is_standard_layout(&self) -> bool {
        match self {
            Data::F32(a) => a.is_standard_layout(),
            Data::F64(a) => a.is_standard_layout(),
            Data::I64(a) => a.is_standard_layout(),
            Data::Bool(a) => a.is_standard_layout(),
        }
    }

    /// The strides, in elements.
    pub fn strides(&self) -> &[isize] {
        match self {
            Data::F32(a) => a.strides(),
            Data::F64(a) => a.strides(),
            Data::I64(a) => a.strides(),
            Data::Bool(a) => a.strides(),
        }
    }

    /// Whether both hold the very same buffer with the same layout (no copy-on-write happened).
    pub fn same_buffer(&self, other: &Data) -> bool {
        fn ptr(d: &Data) -> *const u8 {
            match d {
                Data::F32(a) => a.as_ptr() as *const u8,
                Data::F64(a) => a.as_ptr() as *const u8,
                Data::I64(a) => a.as_ptr() as *const u8,
                Data::Bool(a) => a.as_ptr() as *const u8,
            }
        }
        ptr(self) == ptr(other)
            && self.shape() == other.shape()
            && self.strides() == other.strides()
    }

    /// Converts every element to `dtype` (a copy, unless the dtype already matches).
    pub fn cast(&self, dtype: DType) -> Data {
        if self.dtype() == dtype {
            return self.clone();
        }
        macro_rules! cast_from {
            ($a:expr, $conv:expr) => {{
                let a = $a;
                match dtype {
                    DType::F32 => Data::F32(a.mapv(|v| $conv(v).0).into_shared()),
                    DType::F64 => Data::F64(a.mapv(|v| $conv(v).1).into_shared()),
                    DType::I64 => Data::I64(a.mapv(|v| $conv(v).2).into_shared()),
                    DType::Bool => Data::Bool(a.mapv(|v| $conv(v).3).into_shared()),
                }
            }};
        }
        match self {
            Data::F32(a) => cast_from!(a, |v: f32| (v, v as f64, v as i64, v != 0.0)),
            Data::F64(a) => cast_from!(a, |v: f64| (v as f32, v, v as i64, v != 0.0)),
            Data::I64(a) => cast_from!(a, |v: i64| (v as f32, v as f64, v, v != 0)),
            Data::Bool(a) => cast_from!(a, |v: bool| (v as u8 as f32, v as u8 as f64, v as i64, v)),
        }
    }

    /// A copy in standard (row-major, contiguous) layout; shares the buffer if already so.
    pub fn to_standard_layout(&self) -> Data {
        match self {
            Data::F32(a) => Data::F32(row_major(a)),
            Data::F64(a) => Data::F64(row_major(a)),
            Data::I64(a) => Data::I64(row_major(a)),
            Data::Bool(a) => Data::Bool(row_major(a)),
        }
    }
}

/// Arrays with at least this many elements are copied to row-major order on all threads.
const PAR_COPY: usize = 1 << 15;

/// `a` in row-major layout: `a` itself (a cheap clone of the shared buffer) when it already is,
/// else a [`row_major_copy`].
pub(crate) fn row_major<T: Copy + Send + Sync>(a: &Storage<T>) -> Storage<T> {
    if a.is_standard_layout() {
        a.clone()
    } else {
        row_major_copy(a)
    }
}

/// A row-major copy of `a` (of any layout), in blocks over tapegrad's threads when large.
pub(crate) fn row_major_copy<T: Copy + Send + Sync>(a: &Storage<T>) -> Storage<T> {
    if !crate::parallel::worth_splitting(a.len(), PAR_COPY) {
        return a.as_standard_layout().into_owned().into_shared();
    }
    let av = a.view();
    crate::parallel::build_in_blocks(a.shape(), |o, ax, start| {
        let x = crate::parallel::block_of(&av, ax, start, o.len_of(ax));
        ndarray::Zip::from(o).and(&x).for_each(|o, &x| {
            o.write(x);
        })
    })
    .into_shared()
}

/// A type that can be stored in a tensor: `f32`, `f64`, `i64` or `bool`.
pub trait Element: Copy + Send + Sync + fmt::Debug + PartialEq + 'static {
    /// The run-time dtype of this element type.
    const DTYPE: DType;
    /// Wraps an array of this type as type-erased [`Data`].
    fn wrap(a: Storage<Self>) -> Data;
    /// Borrows the array if `data` holds this element type.
    fn unwrap(data: &Data) -> Option<&Storage<Self>>;
    /// Converts to f64 (for printing, comparisons in tests and `item`).
    fn to_f64(self) -> f64;
    /// Converts from f64 (truncating for integers).
    fn from_f64(v: f64) -> Self;
}

macro_rules! impl_element {
    ($t:ty, $v:ident, $to:expr, $from:expr) => {
        impl Element for $t {
            const DTYPE: DType = DType::$v;
            fn wrap(a: Storage<Self>) -> Data {
                Data::$v(a)
            }
            fn unwrap(data: &Data) -> Option<&Storage<Self>> {
                match data {
                    Data::$v(a) => Some(a),
                    _ => None,
                }
            }
            fn to_f64(self) -> f64 {
                ($to)(self)
            }
            fn from_f64(v: f64) -> Self {
                ($from)(v)
            }
        }
    };
}

impl_element!(f32, F32, |v: f32| v as f64, |v: f64| v as f32);
impl_element!(f64, F64, |v: f64| v, |v: f64| v);
impl_element!(i64, I64, |v: i64| v as f64, |v: f64| v as i64);
impl_element!(bool, Bool, |v: bool| v as u8 as f64, |v: f64| v != 0.0);

/// A floating-point element type (`f32` or `f64`): the ones gradients flow through.
pub trait Float:
    Element
    + num_traits::Float
    + num_traits::FromPrimitive
    + ndarray::ScalarOperand
    + ndarray::LinalgScalar
    + std::iter::Sum
    + std::ops::AddAssign
    + std::ops::SubAssign
    + std::ops::MulAssign
    + fmt::Display
    + Default
{
    /// Converts an f64 constant to this type.
    fn c(v: f64) -> Self {
        <Self as Element>::from_f64(v)
    }

    /// `C = alpha * A B + beta * C` with arbitrary strides, through matrixmultiply.
    ///
    /// # Safety
    /// The pointers and strides must describe valid `m x k`, `k x n` and `m x n` matrices, and `c`
    /// must not alias `a` or `b`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        beta: Self,
        c: *mut Self,
        rsc: isize,
        csc: isize,
    );
}

impl Float for f32 {
    unsafe fn gemm(
        m: usize,
        k: usize,
        n: usize,
        alpha: f32,
        a: *const f32,
        rsa: isize,
        csa: isize,
        b: *const f32,
        rsb: isize,
        csb: isize,
        beta: f32,
        c: *mut f32,
        rsc: isize,
        csc: isize,
    ) {
        // SAFETY: forwarded from the caller's contract.
        unsafe {
            matrixmultiply::sgemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc)
        }
    }
}

impl Float for f64 {
    unsafe fn gemm(
        m: usize,
        k: usize,
        n: usize,
        alpha: f64,
        a: *const f64,
        rsa: isize,
        csa: isize,
        b: *const f64,
        rsb: isize,
        csb: isize,
        beta: f64,
        c: *mut f64,
        rsc: isize,
        csc: isize,
    ) {
        // SAFETY: forwarded from the caller's contract.
        unsafe {
            matrixmultiply::dgemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc)
        }
    }
}

/// Runs `$body` with `$a` bound to the float array inside `$data` and `$F` aliased to its element
/// type; panics naming `$op` for integer or boolean data.
///
/// This is the one place where run-time dtypes meet generic kernels: a kernel is written once for
/// `F: Float` and this macro instantiates it for f32 and f64.
#[macro_export]
#[doc(hidden)]
macro_rules! with_float {
    ($data:expr, $op:expr, |$a:ident: $F:ident| $body:expr) => {
        match $data {
            $crate::tensor::data::Data::F32($a) => {
                #[allow(dead_code)]
                type $F = f32;
                $body
            }
            $crate::tensor::data::Data::F64($a) => {
                #[allow(dead_code)]
                type $F = f64;
                $body
            }
            other => panic!(
                "{}: expected a floating-point tensor (float32 or float64), got {}{}",
                $op,
                other.dtype(),
                $crate::autograd::function::current_location()
            ),
        }
    };
}

/// Like [`with_float!`] for any dtype.
#[macro_export]
#[doc(hidden)]
macro_rules! with_any {
    ($data:expr, |$a:ident: $T:ident| $body:expr) => {
        match $data {
            $crate::tensor::data::Data::F32($a) => {
                #[allow(dead_code)]
                type $T = f32;
                $body
            }
            $crate::tensor::data::Data::F64($a) => {
                #[allow(dead_code)]
                type $T = f64;
                $body
            }
            $crate::tensor::data::Data::I64($a) => {
                #[allow(dead_code)]
                type $T = i64;
                $body
            }
            $crate::tensor::data::Data::Bool($a) => {
                #[allow(dead_code)]
                type $T = bool;
                $body
            }
        }
    };
}

impl<T: Element> From<Storage<T>> for Data {
    fn from(a: Storage<T>) -> Data {
        T::wrap(a)
    }
}
