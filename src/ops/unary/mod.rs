//! Elementwise unary ops, all served by one generic mechanism: an op is a type implementing
//! `Unary` — its scalar function `f` and its backward rule written with tensor ops (so that it is
//! differentiable again) — and `unary` does the rest: the dtype dispatch, the parallel map over
//! large tensors, recording on the tape, and anomaly checks.
//!
//! Each file here holds a few related ops, each with its method, doc and gradient check.

mod activation;
mod basic;
mod exp_log;
mod trig;
pub(crate) mod vector_math;

use ndarray::Zip;

use crate::autograd::function::Op;
use crate::autograd::tape::Attr;
use crate::tensor::data::row_major;
use crate::tensor::{Data, Float, Storage, Tensor};
use vector_math::{Kernel, Kernel2, Madd};

/// Tensors with at least this many elements are processed on all cores.
pub(crate) const PAR_THRESHOLD: usize = 1 << 15;

/// What an op's backward rule needs from the forward pass.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Needs {
    /// The input `x`.
    Input,
    /// The output `y = f(x)`.
    Output,
    /// Neither (the derivative is constant).
    Nothing,
}

/// An elementwise function of one tensor.
pub(crate) trait Unary: Clone + Send + Sync + 'static {
    /// The op's name on the tape.
    const NAME: &'static str;
    /// What [`Unary::df`] reads.
    const NEEDS: Needs;
    /// The function, per element.
    fn f<F: Float>(&self, x: F) -> F;
    /// The gradient with respect to the input, given the upstream gradient `g` and the saved
    /// tensor (`x` or `y`, as [`Unary::NEEDS`] says), written with differentiable tensor ops.
    fn df(&self, saved: &Tensor, g: &Tensor) -> Tensor;
    /// Whether [`Unary::dfdx`] is implemented: then a backward pass that will not be
    /// differentiated again computes `g · f'(saved)` in one fused loop instead of through tensor
    /// ops.
    const FUSED: bool = false;
    /// The derivative `f'` per element, from the saved value (`x` or `y`, as [`Unary::NEEDS`]
    /// says). Only called when [`Unary::FUSED`] is true.
    fn dfdx<F: Float>(&self, _saved: F) -> F {
        unreachable!("{} has no fused derivative", Self::NAME)
    }
    /// `g · f'(saved)` per element, in the fused backward (only called when [`Unary::FUSED`] is
    /// true). Ops whose derivative is 0 somewhere override it to give 0 for an infinite or NaN
    /// `g` there too, as their tensor-op rule (a `masked_fill`) does.
    #[inline(always)]
    fn fused_grad<F: Float>(&self, saved: F, g: F) -> F {
        g * self.dfdx(saved)
    }
    /// Attributes to record (exponents, slopes, …).
    fn attrs(&self) -> Vec<(&'static str, Attr)> {
        Vec::new()
    }
    /// Whether f32 tensors go through [`Unary::f32`] rather than `f`: for ops with f32 math of
    /// their own (`exp`, `erfc`), run as a [`vector_math`] kernel built for each instruction set
    /// (strided inputs are copied to a contiguous block first).
    const KERNEL: bool = false;
    /// The function on one f32, its multiply-adds through `M` (called when [`Unary::KERNEL`]).
    #[inline(always)]
    fn f32<M: Madd>(&self, x: f32) -> f32 {
        self.f(x)
    }
    /// `g · f'(saved)` on f32, its multiply-adds through `M` (called when [`Unary::KERNEL`] and
    /// [`Unary::FUSED`]).
    #[inline(always)]
    fn fused_grad_f32<M: Madd>(&self, saved: f32, g: f32) -> f32 {
        self.fused_grad(saved, g)
    }
}

/// [`Unary::f32`] as a kernel.
struct ForwardKernel<'a, U>(&'a U);

impl<U: Unary> Kernel for ForwardKernel<'_, U> {
    #[inline(always)]
    fn eval<M: Madd>(&self, x: f32) -> f32 {
        self.0.f32::<M>(x)
    }
}

/// [`Unary::fused_grad_f32`] as a kernel.
struct GradKernel<'a, U>(&'a U);

impl<U: Unary> Kernel2 for GradKernel<'_, U> {
    #[inline(always)]
    fn eval<M: Madd>(&self, saved: f32, g: f32) -> f32 {
        self.0.fused_grad_f32::<M>(saved, g)
    }
}

/// The elements of a row-major array.
fn elements(a: &Storage<f32>) -> &[f32] {
    a.as_slice().expect("row-major")
}

/// Applies `f` to every element, on all cores for large arrays (contiguous arrays through the
/// vectorised loop of [`vector_math::map_slice`]).
pub(crate) fn map_float<F: Float>(a: &Storage<F>, f: impl Fn(F) -> F + Sync + Send) -> Storage<F> {
    let par = crate::parallel::worth_splitting(a.len(), PAR_THRESHOLD);
    if let Some(s) = a.as_slice() {
        let v = vector_math::map_slice(s, par, f);
        Storage::from_shape_vec(a.raw_dim(), v).expect("same length")
    } else if par {
        // strided: mapped into a row-major output, in blocks over the threads
        let av = a.view();
        crate::parallel::build_in_blocks(a.shape(), |o, ax, start| {
            let x = crate::parallel::block_of(&av, ax, start, o.len_of(ax));
            Zip::from(o).and(&x).for_each(|o, &x| {
                o.write(f(x));
            })
        })
        .into_shared()
    } else {
        a.mapv(f).into_shared()
    }
}

/// `g · f'(saved)` in one pass, for backward passes that are not differentiated again.
fn fused_grad<U: Unary>(op: &U, saved: &Tensor, g: &Tensor) -> Tensor {
    let out = saved.with_data(|ds| {
        g.with_data(|dg| match (ds, dg) {
            (Data::F32(s), Data::F32(g)) if U::KERNEL && s.shape() == g.shape() => {
                let par = crate::parallel::worth_splitting(s.len(), PAR_THRESHOLD);
                let (s, g) = (row_major(s), row_major(g));
                let v = vector_math::zip_kernel(elements(&s), elements(&g), par, &GradKernel(op));
                Data::F32(Storage::from_shape_vec(s.raw_dim(), v).expect("same length"))
            }
            (Data::F32(s), Data::F32(g)) => Data::F32(crate::ops::binary::zip_broadcast(
                s,
                g,
                s.shape(),
                #[inline(always)]
                |s, g| op.fused_grad(s, g),
            )),
            (Data::F64(s), Data::F64(g)) => Data::F64(crate::ops::binary::zip_broadcast(
                s,
                g,
                s.shape(),
                #[inline(always)]
                |s, g| op.fused_grad(s, g),
            )),
            _ => unreachable!("gradients have the dtype of their tensor"),
        })
    });
    Tensor::from_data(out)
}

/// Applies the unary op `op` to `x`, recording it on the tape.
#[track_caller]
pub(crate) fn unary<U: Unary>(x: &Tensor, op: U) -> Tensor {
    let inputs = [x];
    let mut rec = Op::new(U::NAME, &inputs);
    for (k, v) in op.attrs() {
        rec = rec.attr(k, v);
    }
    let out = x.with_data(|d| match d {
        Data::F32(a) if U::KERNEL => {
            let par = crate::parallel::worth_splitting(a.len(), PAR_THRESHOLD);
            let v = vector_math::map_kernel(elements(&row_major(a)), par, &ForwardKernel(&op));
            Data::F32(Storage::from_shape_vec(a.raw_dim(), v).expect("same length"))
        }
        d => crate::with_float!(d, U::NAME, |a: F| Data::from(map_float(
            a,
            #[inline(always)]
            |v: F| op.f(v)
        ))),
    });
    let rec = match U::NEEDS {
        Needs::Input => rec.save(x),
        Needs::Output => rec.save_output(),
        Needs::Nothing => rec,
    };
    rec.finish(out, move |ctx, g| {
        let saved = match U::NEEDS {
            Needs::Input => ctx.saved(0),
            Needs::Output => ctx.output(),
            Needs::Nothing => g.clone(),
        };
        if U::FUSED && !ctx.create_graph() {
            return vec![Some(fused_grad(&op, &saved, g))];
        }
        vec![Some(op.df(&saved, g))]
    })
}
