//! Elementwise binary ops with NumPy/PyTorch broadcasting, all served by one generic mechanism:
//! an op implements `Binary` — its scalar function and its backward rule in the broadcast output
//! shape — and `binary` does the rest: shape and dtype checks, the broadcast (parallel) zip,
//! recording, and reducing each gradient back to its input's shape.
//!
//! The `+ - * /` operators for owned and borrowed tensors and for `f64` scalars on either side are
//! defined here too (one scalar type, so that literals like `x * 2.0` need no suffix).

mod arith;
mod compare;

use ndarray::Dimension as _;
use std::panic::Location;

use ndarray::{IxDyn, Zip};

use crate::parallel::block_of;

use crate::autograd::function::Op;
use crate::tensor::args::broadcast_shapes;
use crate::tensor::{DType, Data, Float, Storage, Tensor};

pub(crate) use arith::{Add, Div, Mul, Sub};

/// Binary arithmetic is memory-bound: below this many elements a second thread costs more than
/// it saves (measured with `scripts/compare_pytorch.py`; transcendental unary ops split earlier).
pub(crate) const PAR_THRESHOLD_CHEAP: usize = 1 << 16;

/// The tensors a binary backward rule may read. Only those the op asked for are present.
pub(crate) struct Saved2 {
    a: Option<Tensor>,
    b: Option<Tensor>,
    out: Option<Tensor>,
}

impl Saved2 {
    pub(crate) fn a(&self) -> &Tensor {
        self.a
            .as_ref()
            .expect("binary op did not save its first input")
    }
    pub(crate) fn b(&self) -> &Tensor {
        self.b
            .as_ref()
            .expect("binary op did not save its second input")
    }
    pub(crate) fn out(&self) -> &Tensor {
        self.out
            .as_ref()
            .expect("binary op did not save its output")
    }
}

/// An elementwise function of two tensors.
pub(crate) trait Binary: Clone + Send + Sync + 'static {
    /// The op's name on the tape.
    const NAME: &'static str;
    /// Whether the backward rule reads the inputs.
    const SAVE_INPUTS: bool;
    /// Whether the backward rule reads the output.
    const SAVE_OUTPUT: bool;
    /// The function, per element.
    fn f<F: Float>(&self, a: F, b: F) -> F;
    /// The gradients with respect to `a` and `b` in the broadcast output shape (the mechanism
    /// reduces them to the input shapes), computed only where `needs` says so.
    fn df(&self, s: &Saved2, g: &Tensor, needs: [bool; 2]) -> [Option<Tensor>; 2];
}

/// Zips two arrays broadcast to `shape` through `f`, on all cores for large outputs.
pub(crate) fn zip_broadcast<A, B, C>(
    a: &Storage<A>,
    b: &Storage<B>,
    shape: &[usize],
    f: impl Fn(A, B) -> C + Sync + Send,
) -> Storage<C>
where
    A: Copy + Send + Sync,
    B: Copy + Send + Sync,
    C: Copy + Send + Sync,
{
    let par = crate::parallel::worth_splitting(shape.iter().product(), PAR_THRESHOLD_CHEAP);
    if let Some(out) = zip_slices(a, b, shape, par, &f) {
        return out;
    }
    let sh = IxDyn(shape);
    let av = a.broadcast(sh.clone()).expect("shapes were checked");
    let bv = b.broadcast(sh).expect("shapes were checked");
    if !par {
        return Zip::from(&av)
            .and(&bv)
            .map_collect(|&x, &y| f(x, y))
            .into_shared();
    }
    crate::parallel::build_in_blocks(shape, |o, ax, start| {
        let n = o.len_of(ax);
        let (x, y) = (block_of(&av, ax, start, n), block_of(&bv, ax, start, n));
        Zip::from(o).and(&x).and(&y).for_each(|o, &x, &y| {
            o.write(f(x, y));
        })
    })
    .into_shared()
}

/// The row-major fast paths of [`zip_broadcast`], as plain loops over slices (no per-element index
/// arithmetic): both operands of the output's shape, or one of them repeated along leading dims
/// (a bias `[n]` added to `[m, n]`, a row `[1, n]` …). Equal shapes go through the vectorised
/// [`zip_slices`](crate::ops::unary::vector_math::zip_slices), over all threads when `par`.
/// `None` for other layouts, and for the repeated ones when `par`.
fn zip_slices<A, B, C>(
    a: &Storage<A>,
    b: &Storage<B>,
    shape: &[usize],
    par: bool,
    f: &(impl Fn(A, B) -> C + Sync),
) -> Option<Storage<C>>
where
    A: Copy + Sync,
    B: Copy + Sync,
    C: Copy + Send,
{
    let (x, y) = (a.as_slice()?, b.as_slice()?);
    let len: usize = shape.iter().product();
    // Whether `s` (row-major) is the trailing block of `shape`, repeated along the leading dims.
    let suffix = |s: &[usize]| {
        let s = &s[s.iter().take_while(|&&d| d == 1).count()..];
        s.len() <= shape.len() && shape[shape.len() - s.len()..] == *s
    };
    let v: Vec<C> = if x.len() == len && y.len() == len && a.shape() == shape {
        #[allow(clippy::redundant_closure)] // `(*f)` keeps the `&F` call shim out of the loop
        crate::ops::unary::vector_math::zip_slices(
            x,
            y,
            par,
            #[inline(always)]
            |p, q| (*f)(p, q),
        )
    } else if x.len() == len && a.shape() == shape && !y.is_empty() && suffix(b.shape()) {
        repeated_rows(len, y.len(), par, |start, o| {
            let rows = x[start..start + o.len()].chunks_exact(y.len());
            for (o, row) in o.chunks_exact_mut(y.len()).zip(rows) {
                for ((o, &p), &q) in o.iter_mut().zip(row).zip(y) {
                    o.write(f(p, q));
                }
            }
        })
    } else if y.len() == len && b.shape() == shape && !x.is_empty() && suffix(a.shape()) {
        repeated_rows(len, x.len(), par, |start, o| {
            let rows = y[start..start + o.len()].chunks_exact(x.len());
            for (o, row) in o.chunks_exact_mut(x.len()).zip(rows) {
                for ((o, &p), &q) in o.iter_mut().zip(x).zip(row) {
                    o.write(f(p, q));
                }
            }
        })
    } else {
        return None;
    };
    Some(Storage::from_shape_vec(IxDyn(shape), v).expect("same length"))
}

/// A vector of `len` values made of rows of `row` values, written by `fill(start, block)` over
/// blocks of whole rows, spread over the threads when `par`.
fn repeated_rows<C: Send>(
    len: usize,
    row: usize,
    par: bool,
    fill: impl Fn(usize, &mut [std::mem::MaybeUninit<C>]) + Sync,
) -> Vec<C> {
    let rows = len / row;
    let per_block = if par {
        rows.div_ceil(4 * crate::parallel::get_num_threads())
    } else {
        rows
    };
    crate::parallel::fill_vec(len, per_block.max(1) * row, par, fill)
}

/// The broadcast shape of `a` and `b`, or a panic naming `op`, both shapes and the caller.
#[track_caller]
pub(crate) fn broadcast_or_panic(op: &str, a: &[usize], b: &[usize]) -> Vec<usize> {
    let loc = Location::caller();
    broadcast_shapes(a, b).unwrap_or_else(|| {
        panic!("{op}: shapes {a:?} and {b:?} cannot be broadcast together, at {loc}")
    })
}

/// Panics unless `a` and `b` have the same dtype.
#[track_caller]
pub(crate) fn same_dtype_or_panic(op: &str, a: &Tensor, b: &Tensor) -> DType {
    if a.dtype() != b.dtype() {
        panic!(
            "{op}: expected both tensors to have the same dtype, got {} and {} (convert one with \
             .to_dtype()), at {}",
            a.dtype(),
            b.dtype(),
            Location::caller()
        );
    }
    a.dtype()
}

/// Applies the binary op `op` to `a` and `b` with broadcasting, recording it on the tape.
#[track_caller]
pub(crate) fn binary<B: Binary>(a: &Tensor, b: &Tensor, op: B) -> Tensor {
    let broadcast;
    let shape: &[usize] = if a.shape() == b.shape() {
        a.shape()
    } else {
        broadcast = broadcast_or_panic(B::NAME, a.shape(), b.shape());
        &broadcast
    };
    same_dtype_or_panic(B::NAME, a, b);
    let inputs = [a, b];
    let mut rec = Op::new(B::NAME, &inputs);
    let out = a.with_data(|da| {
        b.with_data(|db| match (da, db) {
            (Data::F32(x), Data::F32(y)) => {
                Data::F32(zip_broadcast(x, y, shape, |p, q| op.f(p, q)))
            }
            (Data::F64(x), Data::F64(y)) => {
                Data::F64(zip_broadcast(x, y, shape, |p, q| op.f(p, q)))
            }
            _ => panic!(
                "{}: expected floating-point tensors, got {}, at {}",
                B::NAME,
                a.dtype(),
                Location::caller()
            ),
        })
    });
    if B::SAVE_INPUTS {
        rec = rec.save(a).save(b);
    }
    if B::SAVE_OUTPUT {
        rec = rec.save_output();
    }
    let (sa, sb) = (IxDyn(a.shape()), IxDyn(b.shape()));
    rec.finish(out, move |ctx, g| {
        let s = Saved2 {
            a: B::SAVE_INPUTS.then(|| ctx.saved(0)),
            b: B::SAVE_INPUTS.then(|| ctx.saved(1)),
            out: B::SAVE_OUTPUT.then(|| ctx.output()),
        };
        let [ga, gb] = op.df(&s, g, [ctx.needs_grad(0), ctx.needs_grad(1)]);
        vec![
            ga.map(|t| t.sum_to(sa.slice())),
            gb.map(|t| t.sum_to(sb.slice())),
        ]
    })
}

/// Checks that `a` and `b` broadcast together and share a floating dtype (what every arithmetic
/// op requires).
fn check_arith(op: &str, a: &Tensor, b: &Tensor) -> crate::Result<()> {
    if broadcast_shapes(a.shape(), b.shape()).is_none() {
        return Err(crate::Error::Shape(format!(
            "{op}: shapes {:?} and {:?} cannot be broadcast together",
            a.shape(),
            b.shape()
        )));
    }
    if a.dtype() != b.dtype() || !a.dtype().is_float() {
        return Err(crate::Error::DType(format!(
            "{op}: expected two floating-point tensors of the same dtype, got {} and {}",
            a.dtype(),
            b.dtype()
        )));
    }
    Ok(())
}

macro_rules! try_arith {
    ($($name:ident => $op:ident, $label:literal;)*) => {
        impl Tensor {
            $(
                #[doc = concat!("`", $label, "` returning an error instead of panicking on shapes that do not broadcast or on mismatched dtypes.")]
                ///
                /// # Errors
                /// [`Error::Shape`](crate::Error::Shape) or [`Error::DType`](crate::Error::DType).
                #[track_caller]
                pub fn $name(&self, other: &Tensor) -> crate::Result<Tensor> {
                    check_arith($label, self, other)?;
                    Ok(binary(self, other, $op))
                }
            )*
        }
    };
}

try_arith! {
    try_add => Add, "add";
    try_sub => Sub, "sub";
    try_mul => Mul, "mul";
    try_div => Div, "div";
}

/// A 0-d tensor holding `v`, with `like`'s dtype, for tensor–scalar ops.
pub(crate) fn scalar_like(v: f64, like: &Tensor) -> Tensor {
    Tensor::scalar_of(v, like.dtype())
}

macro_rules! impl_operator {
    ($trait:ident, $method:ident, $op:ident) => {
        impl std::ops::$trait<&Tensor> for &Tensor {
            type Output = Tensor;
            #[track_caller]
            fn $method(self, rhs: &Tensor) -> Tensor {
                binary(self, rhs, $op)
            }
        }
        impl std::ops::$trait<Tensor> for &Tensor {
            type Output = Tensor;
            #[track_caller]
            fn $method(self, rhs: Tensor) -> Tensor {
                binary(self, &rhs, $op)
            }
        }
        impl std::ops::$trait<&Tensor> for Tensor {
            type Output = Tensor;
            #[track_caller]
            fn $method(self, rhs: &Tensor) -> Tensor {
                binary(&self, rhs, $op)
            }
        }
        impl std::ops::$trait<Tensor> for Tensor {
            type Output = Tensor;
            #[track_caller]
            fn $method(self, rhs: Tensor) -> Tensor {
                binary(&self, &rhs, $op)
            }
        }
        impl_operator!(@scalar $trait, $method, $op, f64);
    };
    (@scalar $trait:ident, $method:ident, $op:ident, $s:ty) => {
        impl std::ops::$trait<$s> for &Tensor {
            type Output = Tensor;
            #[track_caller]
            fn $method(self, rhs: $s) -> Tensor {
                binary(self, &scalar_like(rhs as f64, self), $op)
            }
        }
        impl std::ops::$trait<$s> for Tensor {
            type Output = Tensor;
            #[track_caller]
            fn $method(self, rhs: $s) -> Tensor {
                binary(&self, &scalar_like(rhs as f64, &self), $op)
            }
        }
        impl std::ops::$trait<&Tensor> for $s {
            type Output = Tensor;
            #[track_caller]
            fn $method(self, rhs: &Tensor) -> Tensor {
                binary(&scalar_like(self as f64, rhs), rhs, $op)
            }
        }
        impl std::ops::$trait<Tensor> for $s {
            type Output = Tensor;
            #[track_caller]
            fn $method(self, rhs: Tensor) -> Tensor {
                binary(&scalar_like(self as f64, &rhs), &rhs, $op)
            }
        }
    };
}

impl_operator!(Add, add, Add);
impl_operator!(Sub, sub, Sub);
impl_operator!(Mul, mul, Mul);
impl_operator!(Div, div, Div);

impl std::ops::Neg for &Tensor {
    type Output = Tensor;
    #[track_caller]
    fn neg(self) -> Tensor {
        Tensor::neg(self)
    }
}

impl std::ops::Neg for Tensor {
    type Output = Tensor;
    #[track_caller]
    fn neg(self) -> Tensor {
        Tensor::neg(&self)
    }
}
