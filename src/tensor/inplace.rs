//! In-place ops (`add_`, `mul_scalar_`, `zero_`, `copy_`, …) for optimizers and initialisation,
//! like PyTorch's trailing-underscore methods.
//!
//! They overwrite the tensor's values for every handle on it (clones see the change). They write
//! into the existing buffer when this tensor is its only owner; when the buffer is shared (a view
//! or a saved copy made earlier), the first write copies it (copy-on-write), so those keep the old
//! values: views share storage until written. In-place ops are not recorded on the tape, so they
//! refuse to change a tensor that requires grad while grad mode is on: run them under
//! [`no_grad`](crate::autograd::no_grad), as optimizers do.
//!
//! Values an earlier op saved for its backward rule survive a later write: the tape keeps a
//! copy-on-write handle on the storage it saved, so the write copies and backward still sees the
//! values of the forward pass (PyTorch raises an error there instead). Only differentiating such
//! a gradient again (`create_graph`) through an overwritten parameter is refused.

use std::panic::Location;

use ndarray::Zip;

use super::args::broadcast_shapes;
use super::{Data, Element, Float, Storage, Tensor};
use crate::autograd::mode::is_grad_enabled;
use crate::autograd::tape;
use crate::ops::unary::PAR_THRESHOLD;

/// An elementwise update `x ← x op y` of a float tensor by a broadcast operand.
#[derive(Clone, Copy)]
enum Update {
    Add,
    Sub,
    Mul,
    AddScaled(f64),
}

/// Runs `f` on every element of `a` (made unique first), on all cores for large arrays.
fn map_in_place<T: Copy + Send + Sync>(a: &mut Storage<T>, f: impl Fn(&mut T) + Sync + Send) {
    let mut v = a.view_mut();
    if !crate::parallel::worth_splitting(v.len(), PAR_THRESHOLD) {
        return v.map_inplace(f);
    }
    let (axis, block) = crate::parallel::split_axis(v.shape());
    let blocks: Vec<_> = v.axis_chunks_iter_mut(ndarray::Axis(axis), block).collect();
    crate::parallel::for_each_item(blocks, |mut x| x.map_inplace(&f));
}

/// Runs `f(x, y)` for every element `x` of `a` (made unique first) and the matching element `y`
/// of `b` broadcast to `a`'s shape, on all cores for large arrays.
fn zip_in_place<T: Copy + Send + Sync>(
    a: &mut Storage<T>,
    b: &Storage<T>,
    f: impl Fn(&mut T, T) + Sync + Send,
) {
    let b = b.broadcast(a.raw_dim()).expect("shapes were checked");
    let mut v = a.view_mut();
    if !crate::parallel::worth_splitting(v.len(), PAR_THRESHOLD) {
        return Zip::from(v).and(&b).for_each(|x, &y| f(x, y));
    }
    let (axis, block) = crate::parallel::split_axis(v.shape());
    let ax = ndarray::Axis(axis);
    let blocks: Vec<_> = v
        .axis_chunks_iter_mut(ax, block)
        .zip(b.axis_chunks_iter(ax, block))
        .collect();
    crate::parallel::for_each_item(blocks, |(x, y)| {
        Zip::from(x).and(&y).for_each(|x, &y| f(x, y))
    });
}

fn update<F: Float>(a: &mut Storage<F>, b: &Storage<F>, op: Update) {
    match op {
        Update::Add => zip_in_place(a, b, |x, y| *x += y),
        Update::Sub => zip_in_place(a, b, |x, y| *x -= y),
        Update::Mul => zip_in_place(a, b, |x, y| *x *= y),
        Update::AddScaled(alpha) => {
            let alpha = F::c(alpha);
            zip_in_place(a, b, move |x, y| *x += alpha * y)
        }
    }
}

impl Tensor {
    /// Panics unless `self` may be written in place by `op` now.
    fn check_writable(&self, op: &str, loc: &Location<'_>) {
        if !is_grad_enabled() || !self.requires_grad_enabled() {
            return;
        }
        match self.node() {
            None => panic!(
                "{op}: a leaf Variable that requires grad is being used in an in-place operation; \
                 run it under no_grad() (as optimizers do), at {loc}"
            ),
            Some(n) => panic!(
                "{op}: in-place ops are not recorded on the tape, so changing this tensor (made by \
                 '{}', it requires grad) would give wrong gradients; use the out-of-place op or \
                 run it under no_grad(), at {loc}",
                tape::op_name(n).unwrap_or("?")
            ),
        }
    }

    /// Panics unless `other`'s shape broadcasts to `self`'s.
    fn check_broadcasts_to_self(&self, op: &str, other: &Tensor, loc: &Location<'_>) {
        if broadcast_shapes(self.shape(), other.shape()).as_deref() != Some(self.shape()) {
            panic!(
                "{op}: the operand of shape {:?} cannot be broadcast to the tensor's shape {:?}, \
                 at {loc}",
                other.shape(),
                self.shape()
            );
        }
    }

    /// Panics unless `self` is floating point.
    fn check_float(&self, op: &str, loc: &Location<'_>) {
        if !self.dtype().is_float() {
            panic!(
                "{op}: expected a floating-point tensor (float32 or float64), got {}, at {loc}",
                self.dtype()
            );
        }
    }

    /// Runs `f` on the storage under the write lock.
    fn write_data<R>(&self, f: impl FnOnce(&mut Data) -> R) -> R {
        f(&mut self.inner.data.write().unwrap_or_else(|e| e.into_inner()))
    }

    #[track_caller]
    fn update_(&self, op: &str, other: &Tensor, u: Update) -> &Tensor {
        let loc = Location::caller();
        self.check_writable(op, loc);
        self.check_float(op, loc);
        self.check_broadcasts_to_self(op, other, loc);
        if other.dtype() != self.dtype() {
            panic!(
                "{op}: the operand is {} but the tensor is {} (convert it with .to_dtype()), at \
                 {loc}",
                other.dtype(),
                self.dtype()
            );
        }
        // Read the operand before locking self for writing: `other` may be `self`.
        let src = other.data();
        self.write_data(|d| match (d, &src) {
            (Data::F32(a), Data::F32(b)) => update(a, b, u),
            (Data::F64(a), Data::F64(b)) => update(a, b, u),
            _ => unreachable!("dtypes were checked"),
        });
        self
    }

    /// `self += other` in place (broadcasting `other`), like `x.add_(other)`.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let x = Tensor::zeros(&[2, 2]);
    /// x.add_(&Tensor::from_vec(vec![1.0, 2.0], &[2]));
    /// assert_eq!(x.to_vec::<f32>(), vec![1.0, 2.0, 1.0, 2.0]);
    /// ```
    ///
    /// # Panics
    /// If `self` requires grad while grad mode is on, is not floating point, or if `other` does not
    /// broadcast to `self`'s shape or has another dtype.
    #[track_caller]
    pub fn add_(&self, other: &Tensor) -> &Tensor {
        self.update_("add_", other, Update::Add)
    }

    /// `self -= other` in place (broadcasting `other`), like `x.sub_(other)`.
    ///
    /// # Panics
    /// As [`add_`](Tensor::add_).
    #[track_caller]
    pub fn sub_(&self, other: &Tensor) -> &Tensor {
        self.update_("sub_", other, Update::Sub)
    }

    /// `self *= other` in place (broadcasting `other`), like `x.mul_(other)`.
    ///
    /// # Panics
    /// As [`add_`](Tensor::add_).
    #[track_caller]
    pub fn mul_(&self, other: &Tensor) -> &Tensor {
        self.update_("mul_", other, Update::Mul)
    }

    /// `self += alpha · other` in place, like `p.add_(g, alpha=-lr)`: the SGD step.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let p = Tensor::ones(&[2]).requires_grad();
    /// let g = Tensor::from_vec(vec![1.0, -2.0], &[2]);
    /// {
    ///     let _g = no_grad();
    ///     p.add_scaled_(&g, -0.5);
    /// }
    /// assert_eq!(p.to_vec::<f32>(), vec![0.5, 2.0]);
    /// ```
    ///
    /// # Panics
    /// As [`add_`](Tensor::add_).
    #[track_caller]
    pub fn add_scaled_(&self, other: &Tensor, alpha: f64) -> &Tensor {
        self.update_("add_scaled_", other, Update::AddScaled(alpha))
    }

    /// `self *= v` in place, like `x.mul_(v)` with a number.
    ///
    /// # Panics
    /// If `self` requires grad while grad mode is on, or is not floating point.
    #[track_caller]
    pub fn mul_scalar_(&self, v: f64) -> &Tensor {
        let loc = Location::caller();
        self.check_writable("mul_scalar_", loc);
        self.check_float("mul_scalar_", loc);
        self.write_data(|d| {
            crate::with_float!(d, "mul_scalar_", |a: F| {
                let v = F::c(v);
                map_in_place(a, move |x| *x *= v)
            })
        });
        self
    }

    /// Limits every element to `[min, max]` in place, like `x.clamp_(min, max)` (NaN stays NaN).
    ///
    /// # Panics
    /// If `min > max`, if `self` requires grad while grad mode is on, or is not floating point.
    #[track_caller]
    pub fn clamp_(&self, min: f64, max: f64) -> &Tensor {
        let loc = Location::caller();
        self.check_writable("clamp_", loc);
        self.check_float("clamp_", loc);
        if min > max {
            panic!("clamp_: min ({min}) must not exceed max ({max}), at {loc}");
        }
        self.write_data(|d| {
            crate::with_float!(d, "clamp_", |a: F| {
                let (lo, hi) = (F::c(min), F::c(max));
                map_in_place(a, move |x| {
                    if *x < lo {
                        *x = lo
                    } else if *x > hi {
                        *x = hi
                    }
                })
            })
        });
        self
    }

    /// Sets every element to `v` in place, like `x.fill_(v)` (converted to the dtype: truncated
    /// for int64, `v != 0` for bool).
    ///
    /// # Panics
    /// If `self` requires grad while grad mode is on.
    #[track_caller]
    pub fn fill_(&self, v: f64) -> &Tensor {
        self.check_writable("fill_", Location::caller());
        self.write_data(|d| {
            crate::with_any!(d, |a: T| {
                let v = <T as Element>::from_f64(v);
                map_in_place(a, move |x| *x = v)
            })
        });
        self
    }

    /// Sets every element to 0 in place, like `x.zero_()`.
    ///
    /// # Panics
    /// If `self` requires grad while grad mode is on.
    #[track_caller]
    pub fn zero_(&self) -> &Tensor {
        self.check_writable("zero_", Location::caller());
        self.fill_(0.0)
    }

    /// Copies `src`'s values into this tensor in place, like `x.copy_(src)`: `src` is broadcast
    /// to this tensor's shape and converted to its dtype, and this tensor keeps its own layout.
    /// Gradients do not flow from `src`. To replace the values wholesale by sharing `src`'s
    /// storage instead, see [`assign`](Tensor::assign).
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let x = Tensor::zeros(&[2, 3]);
    /// x.copy_(&Tensor::from_vec_i64(vec![1, 2, 3], &[3]));
    /// assert_eq!(x.to_vec::<f32>(), vec![1.0, 2.0, 3.0, 1.0, 2.0, 3.0]);
    /// ```
    ///
    /// # Panics
    /// If `self` requires grad while grad mode is on, or if `src` does not broadcast to `self`'s
    /// shape.
    #[track_caller]
    pub fn copy_(&self, src: &Tensor) -> &Tensor {
        let loc = Location::caller();
        self.check_writable("copy_", loc);
        self.check_broadcasts_to_self("copy_", src, loc);
        let src = src.data().cast(self.dtype());
        self.write_data(|d| match (d, &src) {
            (Data::F32(a), Data::F32(b)) => zip_in_place(a, b, |x, y| *x = y),
            (Data::F64(a), Data::F64(b)) => zip_in_place(a, b, |x, y| *x = y),
            (Data::I64(a), Data::I64(b)) => zip_in_place(a, b, |x, y| *x = y),
            (Data::Bool(a), Data::Bool(b)) => zip_in_place(a, b, |x, y| *x = y),
            _ => unreachable!("src was cast to {}", self.dtype()),
        });
        self
    }
}

#[cfg(test)]
mod tests {
    use crate::prelude::*;
    use crate::tensor::Data;

    /// The address of the first element, to see whether a write reused the buffer.
    fn buffer_ptr(t: &Tensor) -> usize {
        t.with_data(|d| match d {
            Data::F32(a) => a.as_ptr() as usize,
            Data::F64(a) => a.as_ptr() as usize,
            _ => unreachable!(),
        })
    }

    #[test]
    fn arithmetic_updates_broadcast_the_operand() {
        let x = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]);
        let row = Tensor::from_vec(vec![10.0, 20.0], &[2]);
        x.add_(&row);
        assert_eq!(x.to_vec::<f32>(), vec![11.0, 22.0, 13.0, 24.0]);
        x.sub_(&Tensor::ones(&[2, 1]));
        assert_eq!(x.to_vec::<f32>(), vec![10.0, 21.0, 12.0, 23.0]);
        x.mul_(&Tensor::from_vec(vec![2.0, 0.5], &[2, 1]));
        assert_eq!(x.to_vec::<f32>(), vec![20.0, 42.0, 6.0, 11.5]);
        // p ← p + α g
        x.add_scaled_(&Tensor::full(&[2, 2], 4.0), -0.25);
        assert_eq!(x.to_vec::<f32>(), vec![19.0, 41.0, 5.0, 10.5]);
        x.mul_scalar_(2.0).clamp_(12.0, 50.0);
        assert_eq!(x.to_vec::<f32>(), vec![38.0, 50.0, 12.0, 21.0]);
    }

    #[test]
    fn every_handle_sees_the_change() {
        let x = Tensor::from_vec_f64(vec![1.0, 2.0], &[2]);
        let handle = x.clone();
        x.mul_scalar_(3.0);
        assert_eq!(handle.to_vec::<f64>(), vec![3.0, 6.0]);
        handle.zero_();
        assert_eq!(x.to_vec::<f64>(), vec![0.0, 0.0]);
    }

    #[test]
    fn views_made_earlier_keep_their_values() {
        // views share storage until written: the write copies the shared buffer
        let x = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[4]);
        let v = x.reshape([2, 2]);
        let d = x.detach();
        x.fill_(7.0);
        assert_eq!(x.to_vec::<f32>(), vec![7.0; 4]);
        assert_eq!(v.to_vec::<f32>(), vec![1.0, 2.0, 3.0, 4.0]);
        assert_eq!(d.to_vec::<f32>(), vec![1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn an_unshared_buffer_is_written_without_a_copy() {
        let x = Tensor::from_vec(vec![1.0; 8], &[8]);
        let before = buffer_ptr(&x);
        x.add_(&Tensor::ones(&[8]))
            .mul_scalar_(0.5)
            .clamp_(0.0, 0.7);
        assert_eq!(buffer_ptr(&x), before);
        assert_eq!(x.to_vec::<f32>(), vec![0.7; 8]);
        // once shared, the first write copies
        let _view = x.reshape([2, 4]);
        x.zero_();
        assert_ne!(buffer_ptr(&x), before);
    }

    #[test]
    fn a_tensor_can_update_itself() {
        let x = Tensor::from_vec(vec![1.0, 2.0], &[2]);
        x.add_(&x);
        assert_eq!(x.to_vec::<f32>(), vec![2.0, 4.0]);
        x.mul_(&x.clone());
        assert_eq!(x.to_vec::<f32>(), vec![4.0, 16.0]);
    }

    #[test]
    fn non_contiguous_tensors_keep_their_layout() {
        let x = crate::testing::randn64_t(&[3, 4], 1);
        let want: Vec<f64> = x.to_vec::<f64>().iter().map(|v| v * 2.0 + 1.0).collect();
        let strides = x.stride();
        x.mul_scalar_(2.0)
            .add_(&Tensor::ones_dtype(&[4], DType::F64));
        assert_eq!(x.to_vec::<f64>(), want);
        assert_eq!(x.stride(), strides);
    }

    #[test]
    fn large_tensors_are_updated_in_parallel_correctly() {
        let n = crate::ops::unary::PAR_THRESHOLD + 3;
        let x = Tensor::arange(0.0, n as f64, 1.0).double();
        x.add_scaled_(&Tensor::ones_dtype(&[n], DType::F64), 2.0)
            .mul_scalar_(0.5);
        let v = x.to_vec::<f64>();
        assert_eq!(v[0], 1.0);
        assert_eq!(v[n - 1], (n as f64 + 1.0) * 0.5);
    }

    #[test]
    fn copy_broadcasts_and_converts_dtype() {
        let x = Tensor::zeros_dtype(&[2, 2], DType::F64);
        x.copy_(&Tensor::from_vec(vec![1.5, -2.0], &[2]));
        assert_eq!(x.to_vec::<f64>(), vec![1.5, -2.0, 1.5, -2.0]);
        let m = Tensor::from_values(vec![true, false], &[2]);
        m.copy_(&Tensor::from_vec_i64(vec![0, 5], &[2]));
        assert_eq!(m.to_vec::<bool>(), vec![false, true]);
        let i = Tensor::from_vec_i64(vec![1, 2, 3], &[3]);
        i.fill_(-4.7);
        assert_eq!(i.to_vec::<i64>(), vec![-4, -4, -4]);
    }

    #[test]
    fn optimizer_step_under_no_grad_updates_a_parameter() {
        let w = Tensor::from_vec_f64(vec![3.0, -1.0], &[2]).requires_grad();
        (&w * &w).sum().backward();
        {
            let _g = no_grad();
            // w ← w - 0.25 · 2w
            w.add_scaled_(&w.grad().unwrap(), -0.25);
        }
        assert_eq!(w.to_vec::<f64>(), vec![1.5, -0.5]);
        assert!(w.requires_grad_enabled() && w.is_leaf());
    }

    #[test]
    fn values_saved_for_backward_survive_a_later_write() {
        // z = h², h = 3w: dz/dw = 6h at the value h had when z was computed (h = 3, so 18)
        let w = Tensor::from_vec_f64(vec![1.0], &[1]).requires_grad();
        let h = &w * 3.0;
        let z = (&h * &h).sum();
        {
            let _g = no_grad();
            h.fill_(100.0);
        }
        assert_eq!(h.to_vec::<f64>(), vec![100.0]);
        z.backward();
        assert_eq!(w.grad().unwrap().to_vec::<f64>(), vec![18.0]);
    }

    #[test]
    #[should_panic(
        expected = "add_: a leaf Variable that requires grad is being used in an in-place operation"
    )]
    fn leaf_requiring_grad_is_refused_in_grad_mode() {
        let w = Tensor::ones(&[2]).requires_grad();
        w.add_(&Tensor::ones(&[2]));
    }

    #[test]
    #[should_panic(expected = "inplace.rs")]
    fn the_leaf_error_names_the_callers_line() {
        Tensor::ones(&[2]).requires_grad().zero_();
    }

    #[test]
    #[should_panic(
        expected = "mul_scalar_: in-place ops are not recorded on the tape, so changing \
                               this tensor (made by 'mul', it requires grad) would give wrong \
                               gradients"
    )]
    fn non_leaf_requiring_grad_is_refused_in_grad_mode() {
        let w = Tensor::ones(&[2]).requires_grad();
        let y = &w * 2.0;
        y.mul_scalar_(3.0);
    }

    #[test]
    #[should_panic(
        expected = "add_: the operand of shape [2, 3] cannot be broadcast to the tensor's shape [3]"
    )]
    fn operand_must_broadcast_to_self() {
        Tensor::zeros(&[3]).add_(&Tensor::zeros(&[2, 3]));
    }

    #[test]
    #[should_panic(expected = "sub_: the operand is float64 but the tensor is float32")]
    fn arithmetic_operand_must_have_the_same_dtype() {
        Tensor::zeros(&[3]).sub_(&Tensor::zeros_dtype(&[3], DType::F64));
    }

    #[test]
    #[should_panic(
        expected = "clamp_: expected a floating-point tensor (float32 or float64), got \
                               int64"
    )]
    fn clamp_needs_floats() {
        Tensor::from_vec_i64(vec![1], &[1]).clamp_(0.0, 1.0);
    }
}
