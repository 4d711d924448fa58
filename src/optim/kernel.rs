//! Raw-element access for the fused update loops: typed mutable slices of a tensor's storage,
//! PyTorch's `lerp`, and running a loop with hardware fused multiply-add.

use ndarray::{ArrayD, IxDyn};

use crate::tensor::{DType, Data, Element, Float, Storage, Tensor};

/// `f32` or `f64`, with mutable access to the typed storage inside a [`Data`].
pub(crate) trait FloatData: Float {
    /// The typed array if `d` holds this element type.
    fn storage_mut(d: &mut Data) -> Option<&mut Storage<Self>>;
}

impl FloatData for f32 {
    fn storage_mut(d: &mut Data) -> Option<&mut Storage<f32>> {
        match d {
            Data::F32(a) => Some(a),
            _ => None,
        }
    }
}

impl FloatData for f64 {
    fn storage_mut(d: &mut Data) -> Option<&mut Storage<f64>> {
        match d {
            Data::F64(a) => Some(a),
            _ => None,
        }
    }
}

/// The elements of `a` as one row-major mutable slice, written in place.
///
/// A view of another layout (transposed, broadcast with stride 0, …) is first replaced by a
/// row-major copy of its values, so that every element owns one slot; a buffer shared with another
/// tensor is copied on this first write (copy-on-write), so other handles keep the old values.
pub(crate) fn standard_slice_mut<F: Element>(a: &mut Storage<F>) -> &mut [F] {
    if !a.is_standard_layout() {
        *a = a.as_standard_layout().into_owned().into_shared();
    }
    a.as_slice_mut()
        .expect("a standard-layout array is one contiguous slice")
}

/// The elements of `d` as a row-major mutable slice of `F` (see [`standard_slice_mut`]).
///
/// # Panics
/// If `d` does not hold `F` elements (callers keep buffers in their parameter's dtype).
pub(crate) fn slice_mut<F: FloatData>(d: &mut Data) -> &mut [F] {
    let dtype = d.dtype();
    match F::storage_mut(d) {
        Some(a) => standard_slice_mut(a),
        None => unreachable!("buffer of dtype {dtype} used as {}", F::DTYPE),
    }
}

/// A buffer of `shape` filled with `value`, in row-major layout.
pub(crate) fn filled(shape: &[usize], dtype: DType, value: f64) -> Data {
    match dtype {
        DType::F32 => Data::F32(ArrayD::from_elem(IxDyn(shape), value as f32).into_shared()),
        DType::F64 => Data::F64(ArrayD::from_elem(IxDyn(shape), value).into_shared()),
        other => unreachable!("optimizer state of dtype {other}"),
    }
}

/// Takes the write lock on a tensor's storage (an optimizer writes parameters and gradients in
/// place, outside the tape).
pub(crate) fn write(t: &Tensor) -> std::sync::RwLockWriteGuard<'_, Data> {
    t.inner.data.write().unwrap_or_else(|e| e.into_inner())
}

/// `self + weight·(end − self)`, rounded like PyTorch's `lerp` kernel: one fused multiply-add, and
/// for weights of 0.5 or more the form `end − (end − self)·(1 − weight)`, which is exact at
/// `weight = 1`.
#[inline(always)]
pub(crate) fn lerp<F: Float>(start: F, end: F, weight: F) -> F {
    if weight.abs() < F::c(0.5) {
        weight.mul_add(end - start, start)
    } else {
        (start - end).mul_add(F::one() - weight, end)
    }
}

/// Runs `f` compiled for fused multiply-add when the CPU has it.
///
/// The update loops write `a·b + c` as `mul_add`, like PyTorch's CPU kernels (which use FMA for
/// `add(.., alpha)`, `addcmul` and `lerp`), so the results round the same way. Without the `fma`
/// target feature `mul_add` is a library call; inside this wrapper it is one instruction and the
/// loop vectorizes.
#[inline(always)]
pub(crate) fn with_fma<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("fma") {
            #[target_feature(enable = "fma")]
            unsafe fn fma_enabled<R>(f: impl FnOnce() -> R) -> R {
                f()
            }
            // SAFETY: the CPU supports FMA (checked just above).
            return unsafe { fma_enabled(f) };
        }
    }
    f()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lerp_is_exact_at_the_ends() {
        // lerp(a, b, 0) = a and lerp(a, b, 1) = b exactly (the second form for weight ≥ 0.5)
        assert_eq!(lerp(0.1f32, 0.7, 0.0), 0.1);
        assert_eq!(lerp(0.1f32, 0.7, 1.0), 0.7);
        assert_eq!(lerp(2.0f64, 4.0, 0.25), 2.5);
        assert_eq!(lerp(2.0f64, 4.0, 0.75), 3.5);
    }

    #[test]
    fn standard_slice_mut_copies_a_broadcast_view_before_writing() {
        // a [1] buffer broadcast to [3] has stride 0: writing through it in place would hit the
        // same element three times
        let base = ArrayD::from_elem(IxDyn(&[1]), 2.0f32).into_shared();
        let mut view = base.broadcast(IxDyn(&[3])).unwrap().to_shared();
        for v in standard_slice_mut(&mut view) {
            *v *= 2.0;
        }
        assert_eq!(view.as_slice().unwrap(), &[4.0, 4.0, 4.0]);
        assert_eq!(base.as_slice().unwrap(), &[2.0]);
    }

    #[test]
    fn with_fma_runs_the_closure_with_one_rounding() {
        // a = 1 + 2⁻¹²: a·a = 1 + 2⁻¹¹ + 2⁻²⁴ rounds to 1 + 2⁻¹¹ in f32, so plain a·a − (1 + 2⁻¹¹)
        // is 0; the fused a·a + c rounds once and keeps 2⁻²⁴
        let a = 1.0f32 + 2f32.powi(-12);
        let c = -(1.0f32 + 2f32.powi(-11));
        assert_eq!(a * a + c, 0.0);
        assert_eq!(with_fma(|| a.mul_add(a, c)), 2f32.powi(-24));
    }
}
