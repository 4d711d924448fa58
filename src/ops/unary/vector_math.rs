//! Elementwise loops that vectorise, and branch-free f32 `exp` and `erfc` for them.
//!
//! [`map_slice`] and [`zip_slices`] run a per-element closure over contiguous slices, compiled
//! twice: for the crate's baseline target and, chosen at run time, for AVX2 + FMA (twice the
//! lanes of the SSE2 baseline). Results are the same on both paths (Rust never fuses a multiply
//! and an add on its own).
//!
//! [`map_kernel`] and [`zip_kernel`] run a [`Kernel`]: an f32 function whose multiply-adds go
//! through a [`Madd`], so that each path gets its best arithmetic. They are compiled three
//! times: for AVX-512 and for AVX2, both with fused multiply-adds (one instruction, one
//! rounding), and for the baseline, with separate ones where the baseline has no FMA (x86-64
//! before Haswell: `mul_add` would be a library call there). A kernel gives the same bits on
//! the AVX-512 and AVX2 paths and at any thread count; the baseline of an x86-64 CPU without
//! FMA may differ in the last bit, as PyTorch's CPU kernels differ between instruction sets.
//!
//! `f32::exp` and `libm::erfcf` are calls per element, which keeps the compiler from vectorising
//! a loop; on a transformer block the exact GELU spent a third of the step in them. [`exp_f32`]
//! and [`erfc_f32`] are straight-line arithmetic (their branches are selects), accurate to a few
//! f32 ulps, and keep their relative precision in the tails. f64 keeps using `libm`.

use std::mem::MaybeUninit;

/// Elements per parallel chunk of [`map_slice`] and [`zip_slices`].
const CHUNK: usize = 1 << 14;

/// Whether the AVX2 + FMA versions of the loops can run here (checked once, then cached by std).
#[inline]
fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[inline(always)]
fn fill<A: Copy, B>(x: &[A], out: &mut [MaybeUninit<B>], f: &impl Fn(A) -> B) {
    for (o, &v) in out.iter_mut().zip(x) {
        // `(*f)` calls the closure itself rather than the `&F` shim, so the body inlines here
        o.write((*f)(v));
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn fill_avx2<A: Copy, B>(x: &[A], out: &mut [MaybeUninit<B>], f: &impl Fn(A) -> B) {
    fill(x, out, f)
}

#[inline(always)]
fn fill2<A: Copy, B: Copy, C>(
    x: &[A],
    y: &[B],
    out: &mut [MaybeUninit<C>],
    f: &impl Fn(A, B) -> C,
) {
    for ((o, &p), &q) in out.iter_mut().zip(x).zip(y) {
        o.write((*f)(p, q));
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn fill2_avx2<A: Copy, B: Copy, C>(
    x: &[A],
    y: &[B],
    out: &mut [MaybeUninit<C>],
    f: &impl Fn(A, B) -> C,
) {
    fill2(x, y, out, f)
}

/// A vector of `len` values written by `fill(start, out)` for consecutive blocks
/// `out = v[start..start + out.len()]` of [`CHUNK`], over tapegrad's threads when `parallel`.
fn fill_vec<T: Send>(
    len: usize,
    parallel: bool,
    fill: impl Fn(usize, &mut [MaybeUninit<T>]) + Sync,
) -> Vec<T> {
    crate::parallel::fill_vec(len, CHUNK, parallel, fill)
}

/// `f` over every element of `x`, vectorised (AVX2 when the CPU has it) and split over tapegrad's
/// threads when `parallel`.
pub(crate) fn map_slice<A, B>(x: &[A], parallel: bool, f: impl Fn(A) -> B + Sync) -> Vec<B>
where
    A: Copy + Sync,
    B: Send,
{
    let avx2 = has_avx2();
    fill_vec(x.len(), parallel, |start, out| {
        let x = &x[start..start + out.len()];
        #[cfg(target_arch = "x86_64")]
        if avx2 {
            // SAFETY: the CPU was checked for AVX2 and FMA.
            return unsafe { fill_avx2(x, out, &f) };
        }
        let _ = avx2;
        fill(x, out, &f)
    })
}

/// `f` over the pairs of `x` and `y` (of equal lengths), as [`map_slice`].
///
/// # Panics
/// If the lengths differ.
pub(crate) fn zip_slices<A, B, C>(
    x: &[A],
    y: &[B],
    parallel: bool,
    f: impl Fn(A, B) -> C + Sync,
) -> Vec<C>
where
    A: Copy + Sync,
    B: Copy + Sync,
    C: Send,
{
    assert_eq!(x.len(), y.len(), "zip_slices: lengths differ");
    let avx2 = has_avx2();
    fill_vec(x.len(), parallel, |start, out| {
        let (x, y) = (&x[start..start + out.len()], &y[start..start + out.len()]);
        #[cfg(target_arch = "x86_64")]
        if avx2 {
            // SAFETY: the CPU was checked for AVX2 and FMA.
            return unsafe { fill2_avx2(x, y, out, &f) };
        }
        let _ = avx2;
        fill2(x, y, out, &f)
    })
}

// ----- kernels: f32 functions compiled for each instruction set ----------------------------

/// How the f32 math of a [`Kernel`] evaluates `a·b + c`.
pub(crate) trait Madd {
    /// `a·b + c`.
    fn madd(a: f32, b: f32, c: f32) -> f32;
    /// `a·b` as `hi + lo` exactly (`hi` the rounded product).
    fn two_prod(a: f32, b: f32) -> (f32, f32);
}

/// One rounding (`mul_add`): a single instruction on CPUs with FMA.
pub(crate) struct Fused;

impl Madd for Fused {
    #[inline(always)]
    fn madd(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
    #[inline(always)]
    fn two_prod(a: f32, b: f32) -> (f32, f32) {
        let hi = a * b;
        (hi, a.mul_add(b, -hi))
    }
}

/// A multiply, then an add (two roundings), for CPUs without FMA.
pub(crate) struct Separate;

impl Madd for Separate {
    #[inline(always)]
    fn madd(a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
    /// Dekker's product: each factor split into 12 + 12 bits, whose partial products are exact.
    #[inline(always)]
    fn two_prod(a: f32, b: f32) -> (f32, f32) {
        let split = |v: f32| {
            let hi = f32::from_bits(v.to_bits() & 0xffff_f000);
            (hi, v - hi)
        };
        let ((ah, al), (bh, bl)) = (split(a), split(b));
        let hi = a * b;
        (hi, ((ah * bh - hi) + ah * bl + al * bh) + al * bl)
    }
}

/// The multiply-add of the baseline build: fused where FMA is part of it (aarch64, or an x86-64
/// build with `-C target-feature=+fma`), separate elsewhere.
#[cfg(any(target_arch = "aarch64", target_feature = "fma"))]
type BaseMadd = Fused;
#[cfg(not(any(target_arch = "aarch64", target_feature = "fma")))]
type BaseMadd = Separate;

/// An f32 function of one value, generic over its multiply-add.
pub(crate) trait Kernel: Sync {
    fn eval<M: Madd>(&self, x: f32) -> f32;
}

/// An f32 function of two values, generic over its multiply-add.
pub(crate) trait Kernel2: Sync {
    fn eval<M: Madd>(&self, x: f32, y: f32) -> f32;
}

/// The instruction sets the kernels are compiled for.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Isa {
    Avx512,
    Avx2,
    Base,
}

/// The widest instruction set of this CPU that the kernels have a version for.
fn isa() -> Isa {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return Isa::Avx512;
        }
        if has_avx2() {
            return Isa::Avx2;
        }
    }
    Isa::Base
}

#[inline(always)]
fn fill_kernel<K: Kernel, M: Madd>(x: &[f32], out: &mut [MaybeUninit<f32>], k: &K) {
    for (o, &v) in out.iter_mut().zip(x) {
        o.write(k.eval::<M>(v));
    }
}

#[inline(always)]
fn fill_kernel2<K: Kernel2, M: Madd>(x: &[f32], y: &[f32], out: &mut [MaybeUninit<f32>], k: &K) {
    for ((o, &p), &q) in out.iter_mut().zip(x).zip(y) {
        o.write(k.eval::<M>(p, q));
    }
}

/// Defines the AVX-512 and AVX2 versions of a fill function.
macro_rules! isa_versions {
    ($fill:ident, $avx512:ident, $avx2:ident, $K:ident, ($($arg:ident: $T:ty),*)) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f,avx2,fma")]
        fn $avx512<K: $K>($($arg: $T),*) {
            $fill::<K, Fused>($($arg),*)
        }
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        fn $avx2<K: $K>($($arg: $T),*) {
            $fill::<K, Fused>($($arg),*)
        }
    };
}
isa_versions!(fill_kernel, fill_kernel_avx512, fill_kernel_avx2, Kernel,
    (x: &[f32], out: &mut [MaybeUninit<f32>], k: &K));
isa_versions!(fill_kernel2, fill_kernel2_avx512, fill_kernel2_avx2, Kernel2,
    (x: &[f32], y: &[f32], out: &mut [MaybeUninit<f32>], k: &K));

/// `k` over every element of `x`, in the version for this CPU's widest vectors, split over
/// tapegrad's threads when `parallel`.
pub(crate) fn map_kernel<K: Kernel>(x: &[f32], parallel: bool, k: &K) -> Vec<f32> {
    let isa = isa();
    fill_vec(x.len(), parallel, |start, out| {
        let x = &x[start..start + out.len()];
        match isa {
            // SAFETY: isa() checked the CPU for these features.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => unsafe { fill_kernel_avx512(x, out, k) },
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => unsafe { fill_kernel_avx2(x, out, k) },
            _ => fill_kernel::<K, BaseMadd>(x, out, k),
        }
    })
}

/// `k` over the pairs of `x` and `y`, as [`map_kernel`].
///
/// # Panics
/// If the lengths differ.
pub(crate) fn zip_kernel<K: Kernel2>(x: &[f32], y: &[f32], parallel: bool, k: &K) -> Vec<f32> {
    assert_eq!(x.len(), y.len(), "zip_kernel: lengths differ");
    let isa = isa();
    fill_vec(x.len(), parallel, |start, out| {
        let (x, y) = (&x[start..start + out.len()], &y[start..start + out.len()]);
        match isa {
            // SAFETY: isa() checked the CPU for these features.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => unsafe { fill_kernel2_avx512(x, y, out, k) },
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => unsafe { fill_kernel2_avx2(x, y, out, k) },
            _ => fill_kernel2::<K, BaseMadd>(x, y, out, k),
        }
    })
}

/// The softmax of one f32 lane, `out = e^(s - max s) / Σ`, in the version for this CPU:
/// [`exp_f32`] and a sum over 16 interleaved partial sums, so that both loops vectorise.
///
/// # Panics
/// If the lengths differ.
pub(crate) fn softmax_f32(s: &[f32], out: &mut [f32]) {
    assert_eq!(s.len(), out.len(), "softmax_f32: lengths differ");
    match isa() {
        // SAFETY: isa() checked the CPU for these features.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { softmax_avx512(s, out) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { softmax_avx2(s, out) },
        _ => softmax_lane::<BaseMadd>(s, out),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
fn softmax_avx512(s: &[f32], out: &mut [f32]) {
    softmax_lane::<Fused>(s, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn softmax_avx2(s: &[f32], out: &mut [f32]) {
    softmax_lane::<Fused>(s, out)
}

#[inline(always)]
fn softmax_lane<M: Madd>(s: &[f32], out: &mut [f32]) {
    const W: usize = 16;
    let m = s.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let mut acc = [0.0f32; W];
    for (o, x) in out.chunks_mut(W).zip(s.chunks(W)) {
        for ((o, &v), a) in o.iter_mut().zip(x).zip(acc.iter_mut()) {
            let e = exp_f32::<M>(v - m);
            *o = e;
            *a += e;
        }
    }
    let sum = acc.iter().sum::<f32>();
    out.iter_mut().for_each(|o| *o /= sum);
}

/// `e^x` in f32: Cody–Waite reduction `x = n ln 2 + r`, a degree-6 polynomial for `e^r` on
/// `|r| ≤ ln 2 / 2` (Cephes' `expf` coefficients), and the scaling by `2^n` done in two halves
/// so that results near the overflow and in the subnormal range are right. Relative error under
/// 2 ulp; `inf` above 88.72, `0` below -103.97, NaN for NaN.
#[inline(always)]
pub(crate) fn exp_f32<M: Madd>(x: f32) -> f32 {
    exp_split::<M>(x, 0.0)
}

/// `e^(hi + lo)` for a `hi` known exactly and a small correction `lo`: the reduction subtracts
/// `n ln 2` from `hi` alone (exactly: `n · LN2_HI` has few bits and lies close to `hi`) before
/// adding `lo`, so the rounding of `hi + lo` never shows. With `lo = 0` this is [`exp_f32`].
#[inline(always)]
fn exp_split<M: Madd>(hi: f32, lo: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5 · 2^23: adding and subtracting it rounds to the nearest integer without a libm call
    const ROUND: f32 = 12_582_912.0;
    let x = hi + lo;
    // max/min (unlike clamp) turn a NaN into a bound, so n below is always a small integer
    #[allow(clippy::manual_clamp)] // clamp would keep the NaN
    let xc = x.max(-104.0).min(89.0);
    let n = M::madd(xc, LOG2E, ROUND) - ROUND;
    // out of range, r is meaningless, and the result is replaced below
    let r = M::madd(-n, LN2_LO, M::madd(-n, LN2_HI, hi) + lo);
    let p = 1.987_569_1e-4_f32;
    let p = M::madd(p, r, 1.398_199_9e-3);
    let p = M::madd(p, r, 8.333_452e-3);
    let p = M::madd(p, r, 4.166_579_6e-2);
    let p = M::madd(p, r, 1.666_666_5e-1);
    let p = M::madd(p, r, 0.5);
    let y = M::madd(p * r, r, r) + 1.0;
    // 2^n as 2^h · 2^(n-h), each factor a normal f32
    // SAFETY: n is an integer in [-151, 129] (x was clamped), so it fits an i32
    let n: i32 = unsafe { n.to_int_unchecked() };
    let h = n >> 1;
    let pow2 = |k: i32| f32::from_bits(((k + 127) as u32) << 23);
    let e = y * pow2(h) * pow2(n - h);
    let e = if x > 88.722_84 { f32::INFINITY } else { e };
    let e = if x < -103.972_08 { 0.0 } else { e };
    if x.is_nan() {
        x
    } else {
        e
    }
}

/// The pieces of `erfc(|z|)` (Numerical Recipes' `erfcc`: `t e^(-z² + P(t))` with
/// `t = 1 / (1 + |z|/2)`): `t`, `P(t)`, and `z²` exactly as `hi + lo`.
#[inline(always)]
fn erfc_parts<M: Madd>(z: f32) -> (f32, f32, f32, f32) {
    let a = z.abs();
    let t = 1.0 / M::madd(0.5, a, 1.0);
    let p = 0.170_872_77_f32;
    let p = M::madd(p, t, -0.822_152_23);
    let p = M::madd(p, t, 1.488_515_9);
    let p = M::madd(p, t, -1.135_204);
    let p = M::madd(p, t, 0.278_868_07);
    let p = M::madd(p, t, -0.186_288_06);
    let p = M::madd(p, t, 0.096_784_18);
    let p = M::madd(p, t, 0.374_091_96);
    let p = M::madd(p, t, 1.000_023_7);
    let p = M::madd(p, t, -1.265_512_2);
    let (sq_hi, sq_lo) = M::two_prod(a, a);
    (t, p, sq_hi, sq_lo)
}

/// `erfc(|z|)` reflected to `erfc(z)` by `erfc(-z) = 2 - erfc(z)`.
#[inline(always)]
fn reflect(z: f32, erfc_abs: f32) -> f32 {
    if z < 0.0 {
        2.0 - erfc_abs
    } else {
        erfc_abs
    }
}

/// `erfc(z)` in f32 for any `z`: the Chebyshev fit of Numerical Recipes' `erfcc` for `|z|`
/// (`t e^(-z² + P(t))`, `t = 1 / (1 + |z|/2)`, fractional error 1.2e-7 in exact arithmetic),
/// reflected by `erfc(-z) = 2 - erfc(z)`. `z²` is formed exactly (as `hi + lo`) so that the far
/// tail keeps its relative precision. Within a few ulp everywhere.
#[inline(always)]
pub(crate) fn erfc_f32<M: Madd>(z: f32) -> f32 {
    let (t, p, sq_hi, sq_lo) = erfc_parts::<M>(z);
    // beyond 10.1 erfc is below the smallest f32 (and inf - inf would give NaN)
    let r = if z.abs() > 10.1 {
        0.0
    } else {
        t * exp_split::<M>(-sq_hi, p - sq_lo)
    };
    reflect(z, r)
}

/// `(erfc(z), e^(-z²))` in f32, sharing the work: the derivative of the exact GELU needs both.
/// Each within a few ulp (`e^(-z²)` as exact as `z`).
#[inline(always)]
pub(crate) fn erfc_and_gauss_f32<M: Madd>(z: f32) -> (f32, f32) {
    let (t, p, sq_hi, sq_lo) = erfc_parts::<M>(z);
    let far = z.abs() > 10.1;
    let gauss = if far {
        0.0
    } else {
        exp_split::<M>(-sq_hi, -sq_lo)
    };
    let r = if far {
        0.0
    } else {
        t * gauss * exp_f32::<M>(p)
    };
    (reflect(z, r), gauss)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The largest error of `f` against `reference` over `xs`, in f32 ulps of the reference.
    fn max_ulps(
        xs: impl Iterator<Item = f32>,
        f: impl Fn(f32) -> f32,
        r: impl Fn(f64) -> f64,
    ) -> f64 {
        xs.map(|x| {
            let want = r(x as f64);
            let ulp = (f32::EPSILON as f64) * want.abs().max(f32::MIN_POSITIVE as f64);
            ((f(x) as f64 - want) / ulp).abs()
        })
        .fold(0.0, f64::max)
    }

    #[test]
    fn exp_is_within_two_ulps_over_the_whole_finite_range() {
        let xs = || (0..=400_000).map(|i| -87.0 + i as f32 * (175.7 / 400_000.0));
        let worst = max_ulps(xs(), exp_f32::<Fused>, f64::exp);
        assert!(worst < 2.0, "fused: {worst} ulps");
        let worst = max_ulps(xs(), exp_f32::<Separate>, f64::exp);
        assert!(worst < 2.0, "separate: {worst} ulps");
    }

    #[test]
    fn exp_limits_match_std() {
        exp_limits::<Fused>();
        exp_limits::<Separate>();
    }

    fn exp_limits<M: Madd>() {
        let exp_f32 = exp_f32::<M>;
        assert_eq!(exp_f32(0.0), 1.0);
        assert_eq!(exp_f32(89.0), f32::INFINITY);
        assert_eq!(exp_f32(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp_f32(-200.0), 0.0);
        assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
        assert!(exp_f32(f32::NAN).is_nan());
        // subnormal results are within one step of the subnormal grid of std's
        for x in [-88.0f32, -95.5, -100.0, -103.0] {
            let steps = (exp_f32(x) - x.exp()).abs() / f32::from_bits(1);
            assert!(steps <= 1.0, "e^{x}: {} vs {}", exp_f32(x), x.exp());
        }
    }

    #[test]
    fn erfc_keeps_relative_precision_from_the_left_to_the_far_right_tail() {
        erfc_precision::<Fused>();
        erfc_precision::<Separate>();
    }

    fn erfc_precision<M: Madd>() {
        let erfc_f32 = erfc_f32::<M>;
        // against the f64 erfc of libm (under 1 ulp of f64)
        let xs = (0..=200_000).map(|i| -6.0 + i as f32 * (15.0 / 200_000.0));
        let worst = max_ulps(xs, erfc_f32, libm::erfc);
        assert!(worst < 4.0, "{worst} ulps");
        assert_eq!(erfc_f32(f32::INFINITY), 0.0);
        assert_eq!(erfc_f32(f32::NEG_INFINITY), 2.0);
        assert!(erfc_f32(f32::NAN).is_nan());
    }

    /// Two inputs of 100_003 values in [-9, 9] and [-5.5, 3.5]: several parallel chunks and a
    /// ragged tail.
    fn sample() -> (Vec<f32>, Vec<f32>) {
        let x: Vec<f32> = (0..100_003)
            .map(|i| ((i as f32) * 0.37).sin() * 9.0)
            .collect();
        let y = x.iter().map(|v| v * 0.5 - 1.0).collect();
        (x, y)
    }

    #[test]
    fn vectorised_and_parallel_loops_give_the_plain_loops_bits() {
        let (x, y) = sample();
        let (erfc_f32, exp_f32) = (erfc_f32::<Separate>, exp_f32::<Separate>);
        let f = |v: f32| v * erfc_f32(v) + exp_f32(-v);
        let want: Vec<u32> = x.iter().map(|&v| f(v).to_bits()).collect();
        for parallel in [false, true] {
            let got: Vec<u32> = map_slice(&x, parallel, f)
                .iter()
                .map(|v| v.to_bits())
                .collect();
            assert!(got == want, "map_slice, parallel = {parallel}");
            let got = zip_slices(&x, &y, parallel, |a, b| a * exp_f32(b));
            assert!(got
                .iter()
                .zip(x.iter().zip(&y))
                .all(|(g, (a, b))| *g == a * exp_f32(*b)));
        }
    }

    #[test]
    fn erfc_and_gauss_agree_with_their_references() {
        erfc_and_gauss::<Fused>();
        erfc_and_gauss::<Separate>();
    }

    fn erfc_and_gauss<M: Madd>() {
        let erfc_and_gauss_f32 = erfc_and_gauss_f32::<M>;
        let xs = || (0..=100_000).map(|i| -6.0 + i as f32 * (15.0 / 100_000.0));
        let worst = max_ulps(xs(), |z| erfc_and_gauss_f32(z).0, libm::erfc);
        assert!(worst < 6.0, "erfc: {worst} ulps");
        let worst = max_ulps(xs(), |z| erfc_and_gauss_f32(z).1, |z| (-z * z).exp());
        assert!(worst < 3.0, "e^-z²: {worst} ulps");
        assert_eq!(erfc_and_gauss_f32(f32::INFINITY), (0.0, 0.0));
        assert_eq!(erfc_and_gauss_f32(f32::NEG_INFINITY), (2.0, 0.0));
    }

    #[test]
    fn two_prod_is_exact() {
        for (a, b) in [
            (1.1f32, 3.7f32),
            (-7.25e3, 1.0e-3),
            (0.3, 0.3),
            (9.99, -10.01),
        ] {
            let want = a as f64 * b as f64;
            for (hi, lo) in [Fused::two_prod(a, b), Separate::two_prod(a, b)] {
                assert_eq!(hi, a * b);
                assert_eq!(hi as f64 + lo as f64, want, "{a} · {b}");
            }
        }
    }

    struct Gelu;
    impl Kernel for Gelu {
        fn eval<M: Madd>(&self, x: f32) -> f32 {
            x * 0.5 * erfc_f32::<M>(-x * std::f32::consts::FRAC_1_SQRT_2)
        }
    }
    struct Mix;
    impl Kernel2 for Mix {
        fn eval<M: Madd>(&self, x: f32, y: f32) -> f32 {
            M::madd(x, exp_f32::<M>(y), y)
        }
    }

    #[test]
    fn kernels_give_the_same_bits_at_any_thread_count_and_on_every_fused_path() {
        let (x, y) = sample();
        let bits = |v: Vec<f32>| v.into_iter().map(f32::to_bits).collect::<Vec<_>>();
        let serial = bits(map_kernel(&x, false, &Gelu));
        assert_eq!(bits(map_kernel(&x, true, &Gelu)), serial);
        let serial2 = bits(zip_kernel(&x, &y, false, &Mix));
        assert_eq!(bits(zip_kernel(&x, &y, true, &Mix)), serial2);
        if isa() != Isa::Base || cfg!(target_arch = "aarch64") {
            // every fused version (AVX-512, AVX2, scalar mul_add) computes the same
            let plain: Vec<u32> = x.iter().map(|&v| Gelu.eval::<Fused>(v).to_bits()).collect();
            assert_eq!(serial, plain);
            let plain2: Vec<u32> = x
                .iter()
                .zip(&y)
                .map(|(&a, &b)| Mix.eval::<Fused>(a, b).to_bits())
                .collect();
            assert_eq!(serial2, plain2);
        }
        #[cfg(target_arch = "x86_64")]
        if isa() == Isa::Avx512 {
            let mut out = vec![MaybeUninit::uninit(); x.len()];
            // SAFETY: the CPU has AVX2 and FMA (it has AVX-512).
            unsafe { fill_kernel_avx2(&x, &mut out, &Gelu) };
            let avx2: Vec<u32> = out
                .iter()
                .map(|v| unsafe { v.assume_init() }.to_bits())
                .collect();
            assert_eq!(serial, avx2);
        }
    }
}
