//! Elementwise loops that vectorise, and branch-free f32 `exp` and `erfc` for them.
//!
//! [`map_slice`] and [`zip_slices`] run a per-element function over contiguous slices, compiled
//! twice: for the crate's baseline target and, chosen at run time, for AVX2 + FMA (twice the
//! lanes of the SSE2 baseline). Results are the same on both paths (Rust never fuses a multiply
//! and an add on its own).
//!
//! `f32::exp` and `libm::erfcf` are calls per element, which keeps the compiler from vectorising
//! a loop; on a transformer block the exact GELU spent a third of the step in them. [`exp_f32`]
//! and [`erfc_f32`] are straight-line arithmetic (their branches are selects), accurate to a few
//! f32 ulps, and keep their relative precision in the tails. f64 keeps using `libm`.

use std::mem::MaybeUninit;

use rayon::prelude::*;

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

/// `f` over every element of `x`, vectorised (AVX2 when the CPU has it) and split over tapegrad's
/// threads when `parallel`.
pub(crate) fn map_slice<A, B>(x: &[A], parallel: bool, f: impl Fn(A) -> B + Sync) -> Vec<B>
where
    A: Copy + Sync,
    B: Send,
{
    let avx2 = has_avx2();
    let run = |x: &[A], out: &mut [MaybeUninit<B>]| {
        #[cfg(target_arch = "x86_64")]
        if avx2 {
            // SAFETY: the CPU was checked for AVX2 and FMA.
            return unsafe { fill_avx2(x, out, &f) };
        }
        let _ = avx2;
        fill(x, out, &f)
    };
    let mut v = Vec::with_capacity(x.len());
    let out = &mut v.spare_capacity_mut()[..x.len()];
    if parallel {
        crate::parallel::install(|| {
            out.par_chunks_mut(CHUNK)
                .zip(x.par_chunks(CHUNK))
                .for_each(|(o, x)| run(x, o))
        });
    } else {
        run(x, out);
    }
    // SAFETY: every one of the first x.len() slots was written above.
    unsafe { v.set_len(x.len()) };
    v
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
    let run = |x: &[A], y: &[B], out: &mut [MaybeUninit<C>]| {
        #[cfg(target_arch = "x86_64")]
        if avx2 {
            // SAFETY: the CPU was checked for AVX2 and FMA.
            return unsafe { fill2_avx2(x, y, out, &f) };
        }
        let _ = avx2;
        fill2(x, y, out, &f)
    };
    let mut v = Vec::with_capacity(x.len());
    let out = &mut v.spare_capacity_mut()[..x.len()];
    if parallel {
        crate::parallel::install(|| {
            out.par_chunks_mut(CHUNK)
                .zip(x.par_chunks(CHUNK).zip(y.par_chunks(CHUNK)))
                .for_each(|(o, (x, y))| run(x, y, o))
        });
    } else {
        run(x, y, out);
    }
    // SAFETY: every one of the first x.len() slots was written above.
    unsafe { v.set_len(x.len()) };
    v
}

/// `e^x` in f32: Cody–Waite reduction `x = n ln 2 + r`, a degree-6 polynomial for `e^r` on
/// `|r| ≤ ln 2 / 2` (Cephes' `expf` coefficients), and the scaling by `2^n` done in two halves
/// so that results near the overflow and in the subnormal range are right. Relative error under
/// 2 ulp; `inf` above 88.72, `0` below -103.97, NaN for NaN.
#[inline(always)]
pub(crate) fn exp_f32(x: f32) -> f32 {
    exp_split(x, 0.0)
}

/// `e^(hi + lo)` for a `hi` known exactly and a small correction `lo`: the reduction subtracts
/// `n ln 2` from `hi` alone (exactly, for the `hi` of [`erfc_f32`]) before adding `lo`, so the
/// rounding of `hi + lo` never shows. With `lo = 0` this is [`exp_f32`].
#[inline(always)]
fn exp_split(hi: f32, lo: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5 · 2^23: adding and subtracting it rounds to the nearest integer without a libm call
    const ROUND: f32 = 12_582_912.0;
    let x = hi + lo;
    // max/min (unlike clamp) turn a NaN into a bound, so n below is always a small integer
    #[allow(clippy::manual_clamp)] // clamp would keep the NaN
    let xc = x.max(-104.0).min(89.0);
    let n = (xc * LOG2E + ROUND) - ROUND;
    // out of range, r is meaningless, and the result is replaced below
    let r = ((hi - n * LN2_HI) + lo) - n * LN2_LO;
    let p = 1.987_569_1e-4_f32;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5;
    let y = p * r * r + r + 1.0;
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
/// `t = 1 / (1 + |z|/2)`): `t`, `P(t)`, and `z²` as the exact `hi` plus a small `lo` (Dekker's
/// split of `|z|` into 12 + 12 bits).
#[inline(always)]
fn erfc_parts(z: f32) -> (f32, f32, f32, f32) {
    let a = z.abs();
    let t = 1.0 / (1.0 + 0.5 * a);
    let p = 0.170_872_77_f32;
    let p = p * t - 0.822_152_23;
    let p = p * t + 1.488_515_9;
    let p = p * t - 1.135_204;
    let p = p * t + 0.278_868_07;
    let p = p * t - 0.186_288_06;
    let p = p * t + 0.096_784_18;
    let p = p * t + 0.374_091_96;
    let p = p * t + 1.000_023_7;
    let p = p * t - 1.265_512_2;
    let a_hi = f32::from_bits(a.to_bits() & 0xffff_f000);
    let a_lo = a - a_hi;
    (t, p, a_hi * a_hi, a_lo * (a + a_hi))
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
pub(crate) fn erfc_f32(z: f32) -> f32 {
    let (t, p, sq_hi, sq_lo) = erfc_parts(z);
    // beyond 10.1 erfc is below the smallest f32 (and inf - inf would give NaN)
    let r = if z.abs() > 10.1 {
        0.0
    } else {
        t * exp_split(-sq_hi, p - sq_lo)
    };
    reflect(z, r)
}

/// `(erfc(z), e^(-z²))` in f32, sharing the work: the derivative of the exact GELU needs both.
/// Each within a few ulp (`e^(-z²)` as exact as `z`).
#[inline(always)]
pub(crate) fn erfc_and_gauss_f32(z: f32) -> (f32, f32) {
    let (t, p, sq_hi, sq_lo) = erfc_parts(z);
    let far = z.abs() > 10.1;
    let gauss = if far { 0.0 } else { exp_split(-sq_hi, -sq_lo) };
    let r = if far { 0.0 } else { t * gauss * exp_f32(p) };
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
        let xs = (0..=400_000).map(|i| -87.0 + i as f32 * (175.7 / 400_000.0));
        let worst = max_ulps(xs, exp_f32, f64::exp);
        assert!(worst < 2.0, "{worst} ulps");
    }

    #[test]
    fn exp_limits_match_std() {
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
        // against the f64 erfc of libm (under 1 ulp of f64)
        let xs = (0..=200_000).map(|i| -6.0 + i as f32 * (15.0 / 200_000.0));
        let worst = max_ulps(xs, erfc_f32, libm::erfc);
        assert!(worst < 4.0, "{worst} ulps");
        assert_eq!(erfc_f32(f32::INFINITY), 0.0);
        assert_eq!(erfc_f32(f32::NEG_INFINITY), 2.0);
        assert!(erfc_f32(f32::NAN).is_nan());
    }

    #[test]
    fn vectorised_and_parallel_loops_give_the_plain_loops_bits() {
        // 100_003 elements: several parallel chunks and a ragged tail
        let x: Vec<f32> = (0..100_003)
            .map(|i| ((i as f32) * 0.37).sin() * 9.0)
            .collect();
        let y: Vec<f32> = x.iter().map(|v| v * 0.5 - 1.0).collect();
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
        let xs = || (0..=100_000).map(|i| -6.0 + i as f32 * (15.0 / 100_000.0));
        let worst = max_ulps(xs(), |z| erfc_and_gauss_f32(z).0, libm::erfc);
        assert!(worst < 6.0, "erfc: {worst} ulps");
        let worst = max_ulps(xs(), |z| erfc_and_gauss_f32(z).1, |z| (-z * z).exp());
        assert!(worst < 3.0, "e^-z²: {worst} ulps");
        assert_eq!(erfc_and_gauss_f32(f32::INFINITY), (0.0, 0.0));
        assert_eq!(erfc_and_gauss_f32(f32::NEG_INFINITY), (2.0, 0.0));
    }
}
