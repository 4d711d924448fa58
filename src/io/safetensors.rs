//! Reading and writing [safetensors](https://huggingface.co/docs/safetensors) files, the format of
//! Hugging Face checkpoints and tapegrad's own.
//!
//! A safetensors file is an 8-byte little-endian header length, a JSON header mapping each tensor
//! name to its dtype, shape and byte range, and the raw little-endian tensor bytes. It holds no
//! code, so loading one is safe (unlike unpickling), and Python reads it with
//! `safetensors.torch.load_file(path)`.
//!
//! Loading gives tapegrad dtypes: `F32`, `F64`, `I64` and `BOOL` as they are; `F16` and `BF16`
//! converted to f32; the smaller integer types (`I8` … `U32`) widened to i64. Saving writes f32,
//! f64, i64 and bool as they are.
//!
//! ```
//! use std::collections::BTreeMap;
//! use tapegrad::prelude::*;
//! use tapegrad::io::safetensors;
//!
//! # fn main() -> tapegrad::Result<()> {
//! let mut tensors = BTreeMap::new();
//! tensors.insert("weight".to_string(), Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]));
//! tensors.insert("step".to_string(), Tensor::from_vec_i64(vec![7], &[]));
//! let bytes = safetensors::to_bytes(&tensors)?;
//! let back = safetensors::load_bytes(&bytes)?;
//! assert_eq!(back["weight"].to_vec::<f32>(), vec![1.0, 2.0, 3.0, 4.0]);
//! assert_eq!(back["step"].dtype(), DType::I64);
//! # Ok(())
//! # }
//! ```

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use ::safetensors::tensor::{Dtype, SafeTensors, TensorView, View};

use crate::tensor::{Data, Element};
use crate::{Error, Result, Tensor};

/// Reads every tensor of a safetensors file, like `safetensors.torch.load_file(path)`.
///
/// ```no_run
/// let weights = tapegrad::io::safetensors::load("model.safetensors")?;
/// println!("{:?}", weights["wte.weight"].shape());
/// # Ok::<(), tapegrad::Error>(())
/// ```
///
/// # Errors
/// [`Error::Io`] if the file cannot be read; [`Error::Format`] if it is not a valid safetensors
/// file (bad header, offsets out of range, truncated data); [`Error::DType`] for a dtype tapegrad
/// cannot hold (`F8_*`, `C64`, …).
pub fn load(path: impl AsRef<Path>) -> Result<BTreeMap<String, Tensor>> {
    load_bytes(&std::fs::read(path)?)
}

/// Reads every tensor of a safetensors file held in memory.
///
/// # Errors
/// As [`load`], without the I/O errors.
pub fn load_bytes(bytes: &[u8]) -> Result<BTreeMap<String, Tensor>> {
    Ok(load_bytes_with_metadata(bytes)?.0)
}

/// Reads every tensor of a safetensors file and the string map of its `__metadata__` entry
/// (empty if it has none).
///
/// # Errors
/// As [`load`].
pub fn load_with_metadata(
    path: impl AsRef<Path>,
) -> Result<(BTreeMap<String, Tensor>, BTreeMap<String, String>)> {
    load_bytes_with_metadata(&std::fs::read(path)?)
}

/// [`load_with_metadata`] for a file held in memory.
///
/// # Errors
/// As [`load`], without the I/O errors.
pub fn load_bytes_with_metadata(
    bytes: &[u8],
) -> Result<(BTreeMap<String, Tensor>, BTreeMap<String, String>)> {
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| Error::Format(format!("safetensors: not a valid file: {e}")))?;
    let mut tensors = BTreeMap::new();
    for (name, view) in st.iter() {
        tensors.insert(name.to_owned(), to_tensor(name, &view)?);
    }
    let (_, meta) = SafeTensors::read_metadata(bytes)
        .map_err(|e| Error::Format(format!("safetensors: not a valid file: {e}")))?;
    let meta = meta
        .metadata()
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok((tensors, meta))
}

/// Decodes fixed-size little-endian elements.
fn decode<const N: usize, T>(bytes: &[u8], f: impl Fn([u8; N]) -> T) -> Vec<T> {
    bytes
        .chunks_exact(N)
        .map(|c| f(c.try_into().expect("chunks_exact gives N bytes")))
        .collect()
}

/// A tensor from a validated view (the crate checked that the byte count fits dtype and shape).
fn to_tensor(name: &str, v: &TensorView) -> Result<Tensor> {
    let (b, shape) = (v.data(), v.shape());
    let t = match v.dtype() {
        Dtype::F32 => Tensor::try_from_values(decode(b, f32::from_le_bytes), shape),
        Dtype::F64 => Tensor::try_from_values(decode(b, f64::from_le_bytes), shape),
        Dtype::F16 => {
            Tensor::try_from_values(decode(b, |c| half::f16::from_le_bytes(c).to_f32()), shape)
        }
        Dtype::BF16 => {
            Tensor::try_from_values(decode(b, |c| half::bf16::from_le_bytes(c).to_f32()), shape)
        }
        Dtype::I64 => Tensor::try_from_values(decode(b, i64::from_le_bytes), shape),
        Dtype::I32 => Tensor::try_from_values(decode(b, |c| i32::from_le_bytes(c) as i64), shape),
        Dtype::U32 => Tensor::try_from_values(decode(b, |c| u32::from_le_bytes(c) as i64), shape),
        Dtype::I16 => Tensor::try_from_values(decode(b, |c| i16::from_le_bytes(c) as i64), shape),
        Dtype::U16 => Tensor::try_from_values(decode(b, |c| u16::from_le_bytes(c) as i64), shape),
        Dtype::I8 => Tensor::try_from_values(decode(b, |c: [u8; 1]| c[0] as i8 as i64), shape),
        Dtype::U8 => Tensor::try_from_values(decode(b, |c: [u8; 1]| c[0] as i64), shape),
        Dtype::BOOL => Tensor::try_from_values(decode(b, |c: [u8; 1]| c[0] != 0), shape),
        other => {
            return Err(Error::DType(format!(
                "safetensors: tensor '{name}' has dtype {other:?}, which tapegrad cannot hold"
            )))
        }
    };
    t.map_err(|e| Error::Format(format!("safetensors: tensor '{name}': {e}")))
}

/// A tensor's elements as contiguous little-endian bytes, for writing.
struct Bytes {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Data,
}

impl Bytes {
    fn new(t: &Tensor) -> Bytes {
        let dtype = match t.dtype() {
            crate::DType::F32 => Dtype::F32,
            crate::DType::F64 => Dtype::F64,
            crate::DType::I64 => Dtype::I64,
            crate::DType::Bool => Dtype::BOOL,
        };
        Bytes {
            dtype,
            shape: t.shape().to_vec(),
            data: t.data(),
        }
    }
}

/// The elements of `a` in row-major order as little-endian bytes.
fn le_bytes<T: Element, const N: usize>(
    a: &crate::tensor::Storage<T>,
    f: impl Fn(T) -> [u8; N],
) -> Vec<u8> {
    a.iter().flat_map(|&v| f(v)).collect()
}

impl View for &Bytes {
    fn dtype(&self) -> Dtype {
        self.dtype
    }

    fn shape(&self) -> &[usize] {
        &self.shape
    }

    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Owned(match &self.data {
            Data::F32(a) => le_bytes(a, f32::to_le_bytes),
            Data::F64(a) => le_bytes(a, f64::to_le_bytes),
            Data::I64(a) => le_bytes(a, i64::to_le_bytes),
            Data::Bool(a) => le_bytes(a, |v| [v as u8]),
        })
    }

    fn data_len(&self) -> usize {
        self.data.nbytes()
    }
}

/// Converts named tensors for writing; a name given twice is an error.
fn prepare<'a, K: AsRef<str>>(
    tensors: impl IntoIterator<Item = (K, &'a Tensor)>,
) -> Result<Vec<(String, Bytes)>> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for (k, t) in tensors {
        let k = k.as_ref().to_owned();
        if !seen.insert(k.clone()) {
            return Err(Error::Format(format!(
                "safetensors: the tensor name '{k}' is given twice"
            )));
        }
        out.push((k, Bytes::new(t)));
    }
    Ok(out)
}

fn views(prepared: &[(String, Bytes)]) -> impl Iterator<Item = (&str, &Bytes)> {
    prepared.iter().map(|(k, b)| (k.as_str(), b))
}

fn metadata_map(metadata: &BTreeMap<String, String>) -> Option<HashMap<String, String>> {
    (!metadata.is_empty()).then(|| metadata.clone().into_iter().collect())
}

fn write_error(e: ::safetensors::SafeTensorError) -> Error {
    match e {
        ::safetensors::SafeTensorError::IoError(e) => Error::Io(e),
        e => Error::Format(format!("safetensors: cannot write: {e}")),
    }
}

/// Writes named tensors to a safetensors file, like `safetensors.torch.save_file(tensors, path)`.
///
/// Takes a `&BTreeMap<String, Tensor>` (a [`state_dict`](crate::nn::Module::state_dict)) or any
/// iterator of `(name, &Tensor)`. Non-contiguous tensors are written in row-major order. The file
/// is written to a temporary file next to `path` and renamed into place, so a failed save leaves
/// any previous file at `path` intact.
///
/// # Errors
/// [`Error::Io`] if the file cannot be written; [`Error::Format`] if a name is given twice.
pub fn save<'a, K: AsRef<str>>(
    tensors: impl IntoIterator<Item = (K, &'a Tensor)>,
    path: impl AsRef<Path>,
) -> Result<()> {
    save_with_metadata(tensors, &BTreeMap::new(), path)
}

/// [`save`] with string `metadata` in the file's `__metadata__` header entry (what
/// [`load_with_metadata`] returns).
///
/// # Errors
/// As [`save`].
pub fn save_with_metadata<'a, K: AsRef<str>>(
    tensors: impl IntoIterator<Item = (K, &'a Tensor)>,
    metadata: &BTreeMap<String, String>,
    path: impl AsRef<Path>,
) -> Result<()> {
    let prepared = prepare(tensors)?;
    super::write_atomic(path.as_ref(), |tmp| {
        ::safetensors::serialize_to_file(views(&prepared), metadata_map(metadata), tmp)
            .map_err(write_error)
    })
}

/// The bytes of a safetensors file holding `tensors` (see [`save`]).
///
/// # Errors
/// [`Error::Format`] if a name is given twice.
pub fn to_bytes<'a, K: AsRef<str>>(
    tensors: impl IntoIterator<Item = (K, &'a Tensor)>,
) -> Result<Vec<u8>> {
    to_bytes_with_metadata(tensors, &BTreeMap::new())
}

/// [`to_bytes`] with `__metadata__` entries.
///
/// # Errors
/// As [`to_bytes`].
pub fn to_bytes_with_metadata<'a, K: AsRef<str>>(
    tensors: impl IntoIterator<Item = (K, &'a Tensor)>,
    metadata: &BTreeMap<String, String>,
) -> Result<Vec<u8>> {
    let prepared = prepare(tensors)?;
    ::safetensors::serialize(views(&prepared), metadata_map(metadata)).map_err(write_error)
}
