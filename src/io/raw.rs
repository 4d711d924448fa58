//! Turning raw little-endian file bytes into tensors: the element types files hold (more than
//! tapegrad's four dtypes) and strided layouts, shared by the safetensors and torch readers.

use crate::tensor::Element;
use crate::{Error, Result, Tensor};

/// An element type as stored in a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RawDType {
    F32,
    F64,
    F16,
    BF16,
    I64,
    I32,
    I16,
    I8,
    U8,
    U16,
    U32,
    Bool,
}

impl RawDType {
    /// Bytes per element.
    pub(crate) fn size(self) -> usize {
        match self {
            RawDType::F64 | RawDType::I64 => 8,
            RawDType::F32 | RawDType::I32 | RawDType::U32 => 4,
            RawDType::F16 | RawDType::BF16 | RawDType::I16 | RawDType::U16 => 2,
            RawDType::I8 | RawDType::U8 | RawDType::Bool => 1,
        }
    }
}

/// Where a tensor's elements are in its storage, in elements (like PyTorch's `storage_offset`,
/// `size`, `stride`).
pub(crate) struct Layout<'a> {
    pub(crate) offset: usize,
    pub(crate) shape: &'a [usize],
    pub(crate) strides: &'a [usize],
}

/// The storage index of every element of `layout`, in row-major order.
fn indices<'a>(layout: &'a Layout<'a>) -> impl Iterator<Item = usize> + 'a {
    let n: usize = layout.shape.iter().product();
    let mut idx = vec![0usize; layout.shape.len()];
    let mut at = layout.offset;
    (0..n).map(move |k| {
        if k > 0 {
            // odometer step: bump the last dim, carrying into earlier ones
            for d in (0..idx.len()).rev() {
                idx[d] += 1;
                // wrapping: the last carry may step past a huge stride before stepping back
                at = at.wrapping_add(layout.strides[d]);
                if idx[d] < layout.shape[d] {
                    break;
                }
                at = at.wrapping_sub(layout.strides[d].wrapping_mul(idx[d]));
                idx[d] = 0;
            }
        }
        at
    })
}

fn gather<const N: usize, T: Element>(
    bytes: &[u8],
    layout: &Layout,
    f: impl Fn([u8; N]) -> T,
) -> Result<Tensor> {
    let values: Vec<T> = indices(layout)
        .map(|i| {
            let b = &bytes[i * N..i * N + N];
            f(b.try_into().expect("N bytes"))
        })
        .collect();
    Tensor::try_from_values(values, layout.shape)
}

/// Checks that every element of `layout` lies inside `bytes`, and bounds the element count (a
/// stride-0 dim repeats elements, so a tiny storage could otherwise ask for terabytes).
fn check(dtype: RawDType, bytes: &[u8], layout: &Layout) -> Result<()> {
    const MAX_REPEATED: usize = 1 << 24;
    let bad = |msg: String| Err(Error::Format(msg));
    if layout.shape.len() != layout.strides.len() {
        return bad(format!(
            "shape {:?} and strides {:?} differ in length",
            layout.shape, layout.strides
        ));
    }
    let numel = layout
        .shape
        .iter()
        .try_fold(1usize, |a, &s| a.checked_mul(s));
    let Some(numel) = numel else {
        return bad(format!("shape {:?} has too many elements", layout.shape));
    };
    if numel == 0 {
        return Ok(());
    }
    let last = layout
        .shape
        .iter()
        .zip(layout.strides)
        .try_fold(layout.offset, |a, (&s, &st)| {
            (s - 1).checked_mul(st).and_then(|x| a.checked_add(x))
        });
    let available = bytes.len() / dtype.size();
    match last {
        Some(last) if last < available && numel <= available.max(MAX_REPEATED) => Ok(()),
        _ => bad(format!(
            "a tensor of shape {:?}, strides {:?} and offset {} does not fit a storage of {} \
             {dtype:?} elements",
            layout.shape, layout.strides, layout.offset, available
        )),
    }
}

/// The tensor `layout` selects from little-endian `bytes` of `dtype`: float16 / bfloat16 become
/// f32 and the small integer types i64.
///
/// # Errors
/// [`Error::Format`] if the layout reaches outside `bytes`.
pub(crate) fn to_tensor(dtype: RawDType, bytes: &[u8], layout: &Layout) -> Result<Tensor> {
    check(dtype, bytes, layout)?;
    let b = bytes;
    match dtype {
        RawDType::F32 => gather(b, layout, f32::from_le_bytes),
        RawDType::F64 => gather(b, layout, f64::from_le_bytes),
        RawDType::F16 => gather(b, layout, |c| half::f16::from_le_bytes(c).to_f32()),
        RawDType::BF16 => gather(b, layout, |c| half::bf16::from_le_bytes(c).to_f32()),
        RawDType::I64 => gather(b, layout, i64::from_le_bytes),
        RawDType::I32 => gather(b, layout, |c| i32::from_le_bytes(c) as i64),
        RawDType::U32 => gather(b, layout, |c| u32::from_le_bytes(c) as i64),
        RawDType::I16 => gather(b, layout, |c| i16::from_le_bytes(c) as i64),
        RawDType::U16 => gather(b, layout, |c| u16::from_le_bytes(c) as i64),
        RawDType::I8 => gather(b, layout, |c: [u8; 1]| c[0] as i8 as i64),
        RawDType::U8 => gather(b, layout, |c: [u8; 1]| c[0] as i64),
        RawDType::Bool => gather(b, layout, |c: [u8; 1]| c[0] != 0),
    }
}

/// Row-major (contiguous) strides of `shape`.
pub(crate) fn contiguous_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![1usize; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        strides[d] = strides[d + 1].saturating_mul(shape[d + 1]);
    }
    strides
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f32_bytes(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn a_strided_layout_with_an_offset_gathers_in_row_major_order() {
        // storage 0..12 as a 3×4 matrix; [1:, ::2] starts at 4 with strides (4, 2)
        let b = f32_bytes(&(0..12).map(|x| x as f32).collect::<Vec<_>>());
        let l = Layout {
            offset: 4,
            shape: &[2, 2],
            strides: &[4, 2],
        };
        let t = to_tensor(RawDType::F32, &b, &l).unwrap();
        assert_eq!(t.to_vec::<f32>(), vec![4.0, 6.0, 8.0, 10.0]);
    }

    #[test]
    fn a_zero_stride_repeats_elements() {
        let b = f32_bytes(&[1.0, 2.0]);
        let l = Layout {
            offset: 0,
            shape: &[3, 2],
            strides: &[0, 1],
        };
        let t = to_tensor(RawDType::F32, &b, &l).unwrap();
        assert_eq!(t.to_vec::<f32>(), vec![1.0, 2.0, 1.0, 2.0, 1.0, 2.0]);
    }

    #[test]
    fn half_precision_converts_to_f32() {
        // f16 0x3C00 = 1.0, 0xC000 = -2.0; bf16 0x3F80 = 1.0, 0x4040 = 3.0
        let l = Layout {
            offset: 0,
            shape: &[2],
            strides: &[1],
        };
        let f16 = to_tensor(RawDType::F16, &[0x00, 0x3C, 0x00, 0xC0], &l).unwrap();
        assert_eq!(f16.to_vec::<f32>(), vec![1.0, -2.0]);
        let bf16 = to_tensor(RawDType::BF16, &[0x80, 0x3F, 0x40, 0x40], &l).unwrap();
        assert_eq!(bf16.to_vec::<f32>(), vec![1.0, 3.0]);
    }

    #[test]
    fn layouts_reaching_outside_the_storage_are_errors() {
        let b = f32_bytes(&[0.0; 6]);
        let cases: [(usize, &[usize], &[usize]); 5] = [
            (0, &[7], &[1]),
            (5, &[2], &[1]),
            (0, &[2, 3], &[4, 1]),
            (0, &[usize::MAX, 2], &[1, 1]),
            (0, &[1 << 30], &[0]),
        ];
        for (offset, shape, strides) in cases {
            let l = Layout {
                offset,
                shape,
                strides,
            };
            assert!(
                to_tensor(RawDType::F32, &b, &l).is_err(),
                "{shape:?} {strides:?}"
            );
        }
    }
}
