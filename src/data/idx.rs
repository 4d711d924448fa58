//! The IDX file format of MNIST and its relatives (Fashion-MNIST, KMNIST, EMNIST).
//!
//! An IDX file is a header followed by the elements in row-major order, big-endian:
//! two zero bytes, a type code (0x08 u8, 0x09 i8, 0x0B i16, 0x0C i32, 0x0D f32, 0x0E f64), the
//! number of dims `d`, then `d` big-endian u32 sizes.

use std::path::Path;

use ndarray::{ArrayD, IxDyn};

use super::file::{open, read_up_to};
use crate::tensor::{Element, Tensor};
use crate::{Error, Result};

/// The element type of an IDX file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IdxType {
    U8,
    I8,
    I16,
    I32,
    F32,
    F64,
}

impl IdxType {
    fn from_code(code: u8) -> Option<IdxType> {
        Some(match code {
            0x08 => IdxType::U8,
            0x09 => IdxType::I8,
            0x0B => IdxType::I16,
            0x0C => IdxType::I32,
            0x0D => IdxType::F32,
            0x0E => IdxType::F64,
            _ => return None,
        })
    }

    fn size(self) -> usize {
        match self {
            IdxType::U8 | IdxType::I8 => 1,
            IdxType::I16 => 2,
            IdxType::I32 | IdxType::F32 => 4,
            IdxType::F64 => 8,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            IdxType::U8 => "u8",
            IdxType::I8 => "i8",
            IdxType::I16 => "i16",
            IdxType::I32 => "i32",
            IdxType::F32 => "f32",
            IdxType::F64 => "f64",
        }
    }
}

/// The parts of a checked IDX file: element type, dims, and exactly the data bytes they need.
pub(crate) struct Idx<'a> {
    pub(crate) ty: IdxType,
    pub(crate) dims: Vec<usize>,
    pub(crate) data: &'a [u8],
}

/// Checks the header of IDX `bytes` against their length. `source` names the file in errors.
///
/// # Errors
/// [`Error::Format`] naming `source` on a bad magic number, an unknown type code, a truncated
/// header, or data shorter or longer than the dims say.
pub(crate) fn parse_idx<'a>(bytes: &'a [u8], source: &str) -> Result<Idx<'a>> {
    let bad = |what: String| Err(Error::Format(format!("{source}: {what}")));
    if bytes.len() < 4 {
        return bad(format!(
            "{} bytes is too short for an IDX header (4 bytes of magic number, then the dims)",
            bytes.len()
        ));
    }
    let magic = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let ty = match (bytes[0], bytes[1], IdxType::from_code(bytes[2])) {
        (0, 0, Some(ty)) => ty,
        (0, 0, None) => {
            return bad(format!(
                "bad IDX magic number 0x{magic:08x}: unknown type code 0x{:02x} (known: 0x08 u8, \
                 0x09 i8, 0x0b i16, 0x0c i32, 0x0d f32, 0x0e f64)",
                bytes[2]
            ))
        }
        _ => {
            return bad(format!(
                "bad IDX magic number 0x{magic:08x}: an IDX file starts with two zero bytes, a \
                 type code and the number of dims (is it an IDX file?)"
            ))
        }
    };
    let ndim = bytes[3] as usize;
    let header = 4 + 4 * ndim;
    if bytes.len() < header {
        return bad(format!(
            "truncated IDX header: {ndim} dims need {header} header bytes, but the file has {}",
            bytes.len()
        ));
    }
    let dims: Vec<usize> = bytes[4..header]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let Some(need) = dims
        .iter()
        .try_fold(ty.size(), |acc, &d| acc.checked_mul(d))
    else {
        return bad(format!("IDX dims {dims:?} are too large"));
    };
    let have = bytes.len() - header;
    if have < need {
        return bad(format!(
            "truncated IDX data: dims {dims:?} of {} need {need} bytes, but only {have} follow \
             the header",
            ty.name()
        ));
    }
    if have > need {
        return bad(format!(
            "wrong IDX dims or trailing garbage: dims {dims:?} of {} need {need} bytes, but \
             {have} follow the header",
            ty.name()
        ));
    }
    Ok(Idx {
        ty,
        dims,
        data: &bytes[header..],
    })
}

/// Decodes big-endian elements of `N` bytes into an array of `dims`.
fn decode<const N: usize, T: Element>(
    data: &[u8],
    dims: &[usize],
    f: impl Fn([u8; N]) -> T,
) -> Tensor {
    let values: Vec<T> = data
        .chunks_exact(N)
        .map(|c| f(c.try_into().expect("chunks of N bytes")))
        .collect();
    Tensor::from(ArrayD::from_shape_vec(IxDyn(dims), values).expect("length checked by parse_idx"))
}

impl Idx<'_> {
    /// The elements as a tensor: integer types as int64 (tensors have no narrower integer
    /// dtype), f32 as float32, f64 as float64.
    pub(crate) fn to_tensor(&self) -> Tensor {
        let (d, dims) = (self.data, &self.dims[..]);
        match self.ty {
            IdxType::U8 => decode(d, dims, |[b]: [u8; 1]| i64::from(b)),
            IdxType::I8 => decode(d, dims, |b: [u8; 1]| i64::from(i8::from_be_bytes(b))),
            IdxType::I16 => decode(d, dims, |b: [u8; 2]| i64::from(i16::from_be_bytes(b))),
            IdxType::I32 => decode(d, dims, |b: [u8; 4]| i64::from(i32::from_be_bytes(b))),
            IdxType::F32 => decode(d, dims, f32::from_be_bytes),
            IdxType::F64 => decode(d, dims, f64::from_be_bytes),
        }
    }
}

/// Reads an IDX file (the format of the MNIST files; gzip-compressed or not) into a tensor of its
/// dims. Integer element types (u8, i8, i16, i32) become int64, f32 float32, f64 float64.
///
/// ```no_run
/// let labels = tapegrad::data::read_idx("mnist/train-labels-idx1-ubyte.gz")?;
/// assert_eq!(labels.shape(), &[60000]);
/// # Ok::<(), tapegrad::Error>(())
/// ```
///
/// # Errors
/// [`Error::Io`] if the file cannot be read; [`Error::Format`] naming the file and the problem if
/// it is not a well-formed IDX file (bad magic number, unknown type, data shorter or longer than
/// its dims, corrupt gzip).
pub fn read_idx(path: impl AsRef<Path>) -> Result<Tensor> {
    let path = path.as_ref();
    let bytes = read_idx_bytes(path)?;
    Ok(parse_idx(&bytes, &path.display().to_string())?.to_tensor())
}

/// The bytes of the IDX file at `path` (decompressed if gzip), reading no more than its header
/// declares plus one byte (so that [`parse_idx`] still sees trailing garbage): a small gzip file
/// that would inflate far beyond its dims is never inflated whole.
///
/// # Errors
/// As [`read_idx`].
pub(crate) fn read_idx_bytes(path: &Path) -> Result<Vec<u8>> {
    let source = path.display().to_string();
    let mut r = open(path)?;
    let mut bytes = vec![0u8; 4];
    let n = read_up_to(&mut r, &mut bytes, &source)?;
    bytes.truncate(n);
    if n < 4 || bytes[0] != 0 || bytes[1] != 0 || IdxType::from_code(bytes[2]).is_none() {
        // not an IDX header: parse_idx names the problem
        return Ok(bytes);
    }
    let ty = IdxType::from_code(bytes[2]).expect("checked above");
    let header = 4 + 4 * bytes[3] as usize;
    bytes.resize(header, 0);
    let n = read_up_to(&mut r, &mut bytes[4..], &source)?;
    bytes.truncate(4 + n);
    if bytes.len() < header {
        return Ok(bytes);
    }
    let need = bytes[4..header]
        .chunks_exact(4)
        .try_fold(ty.size(), |acc, c| {
            acc.checked_mul(u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        });
    let Some(need) = need.and_then(|n| n.checked_add(header + 1)) else {
        return Ok(bytes); // too large: parse_idx says so
    };
    // grow as data arrives rather than trusting the header with the allocation
    let mut chunk = vec![0u8; 1 << 16];
    while bytes.len() < need {
        let want = (need - bytes.len()).min(chunk.len());
        let k = read_up_to(&mut r, &mut chunk[..want], &source)?;
        bytes.extend_from_slice(&chunk[..k]);
        if k < want {
            break;
        }
    }
    Ok(bytes)
}

/// Builds IDX bytes (for tests): header of `code` and `dims`, then `data` as given.
#[cfg(test)]
pub(crate) fn idx_bytes(code: u8, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0, code, dims.len() as u8];
    for d in dims {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b.extend_from_slice(data);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_err(bytes: &[u8]) -> String {
        match parse_idx(bytes, "f.idx") {
            Ok(_) => panic!("expected an error"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn u8_file_becomes_int64_tensor_of_its_dims() {
        let t = parse_idx(&idx_bytes(0x08, &[2, 3], &[0, 1, 2, 253, 254, 255]), "f")
            .unwrap()
            .to_tensor();
        assert_eq!(t.shape(), &[2, 3]);
        assert_eq!(t.to_vec::<i64>(), vec![0, 1, 2, 253, 254, 255]);
    }

    #[test]
    fn signed_types_are_big_endian_twos_complement() {
        // i8 0xff = -1; i16 0xff 0xfe = -2; i32 0x00 0x00 0x01 0x00 = 256
        let t = |code, data: &[u8], n| {
            parse_idx(&idx_bytes(code, &[n], data), "f")
                .unwrap()
                .to_tensor()
                .to_vec::<i64>()
        };
        assert_eq!(t(0x09, &[0xff, 0x7f], 2), vec![-1, 127]);
        assert_eq!(t(0x0B, &[0xff, 0xfe, 0x01, 0x00], 2), vec![-2, 256]);
        assert_eq!(
            t(0x0C, &[0, 0, 1, 0, 0x80, 0, 0, 0], 2),
            vec![256, i32::MIN as i64]
        );
    }

    #[test]
    fn float_types_keep_their_precision() {
        let f32s: Vec<u8> = [1.5f32, -0.25]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect();
        let t = parse_idx(&idx_bytes(0x0D, &[2], &f32s), "f")
            .unwrap()
            .to_tensor();
        assert_eq!(t.to_vec::<f32>(), vec![1.5, -0.25]);
        let f64s: Vec<u8> = [0.1f64].iter().flat_map(|v| v.to_be_bytes()).collect();
        let t = parse_idx(&idx_bytes(0x0E, &[1, 1], &f64s), "f")
            .unwrap()
            .to_tensor();
        assert_eq!(t.shape(), &[1, 1]);
        assert_eq!(t.to_vec::<f64>(), vec![0.1]);
    }

    #[test]
    fn bad_magic_is_an_error_naming_file_and_magic() {
        let err = parse_err(&[0x1f, 0x00, 0x08, 0x01, 0, 0, 0, 0]);
        assert!(
            err.starts_with("f.idx: bad IDX magic number 0x1f000801"),
            "{err}"
        );
        let err = parse_err(&idx_bytes(0x0A, &[1], &[0]));
        assert!(err.contains("unknown type code 0x0a"), "{err}");
    }

    #[test]
    fn truncated_header_is_an_error() {
        let err = parse_err(&[0, 0]);
        assert!(
            err.contains("2 bytes is too short for an IDX header"),
            "{err}"
        );
        let mut b = idx_bytes(0x08, &[2, 2, 2], &[]);
        b.truncate(10);
        let err = parse_err(&b);
        assert!(
            err.contains("3 dims need 16 header bytes, but the file has 10"),
            "{err}"
        );
    }

    #[test]
    fn short_or_long_data_is_an_error_naming_the_dims() {
        let err = parse_err(&idx_bytes(0x0C, &[2, 2], &[0; 15]));
        assert!(
            err.contains("truncated IDX data: dims [2, 2] of i32 need 16 bytes, but only 15"),
            "{err}"
        );
        let err = parse_err(&idx_bytes(0x08, &[3], &[0; 4]));
        assert!(
            err.contains("dims [3] of u8 need 3 bytes, but 4 follow"),
            "{err}"
        );
    }

    #[test]
    fn dims_whose_size_overflows_are_an_error_not_a_huge_allocation() {
        let err = parse_err(&idx_bytes(0x0E, &[u32::MAX, u32::MAX, u32::MAX], &[]));
        assert!(err.contains("are too large"), "{err}");
    }
}
