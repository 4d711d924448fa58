//! Reading PyTorch checkpoints — the zip files `torch.save` writes (`.pt`, `.pth`, `.bin`) —
//! without Python, like `torch.load(path, weights_only=True)`.
//!
//! A checkpoint is a zip archive holding `data.pkl`, a pickle of the saved object, and one entry
//! `data/<key>` per tensor storage. The pickle is read by a small pickle machine that executes
//! nothing: tensors (`torch._utils._rebuild_tensor_v2`) are rebuilt from their storage, offset,
//! size and stride (views and non-contiguous tensors included); other objects are described by a
//! [`Value`]. float32, float64, int64 and bool tensors keep their dtype; float16 / bfloat16 become
//! f32 and the smaller integer types i64.
//!
//! [`load`] reads a state dict (`torch.save(model.state_dict(), path)`); [`load_value`] reads any
//! checkpoint as a [`Value`] tree, from which [`Value::state_dict`] pulls a nested state dict:
//!
//! ```no_run
//! use tapegrad::io::torch;
//! use tapegrad::nn::{Linear, Module};
//!
//! # fn main() -> tapegrad::Result<()> {
//! // torch.save({"model": model.state_dict(), "epoch": 3}, "ckpt.pt")
//! let ckpt = torch::load_value("ckpt.pt")?;
//! let model = Linear::new(4, 2);
//! model.load_state_dict(&ckpt.state_dict("model")?, true)?;
//! let epoch = ckpt.get("epoch").and_then(|v| v.as_int());
//! # Ok(())
//! # }
//! ```
//!
//! Files from PyTorch before 1.6 (`_use_new_zipfile_serialization=False`) are not zip archives
//! and are refused with an error. Tensors that share a storage in the file are separate copies
//! here, except that the very same tensor object referenced twice gives one shared tensor.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;
use std::rc::Rc;

use super::pickle::{self, Call, Object};
use super::raw::{to_tensor, Layout, RawDType};
use super::zip::ZipArchive;
use crate::{Error, Result, Tensor};

/// An object read from a PyTorch checkpoint: what `torch.load` would return, with tensors as
/// [`Tensor`]s and objects of other classes described rather than rebuilt.
#[derive(Clone, Debug)]
pub enum Value {
    /// `None`.
    None,
    /// `True` / `False`.
    Bool(bool),
    /// An integer that fits i64.
    Int(i64),
    /// A larger integer, as little-endian two's-complement bytes.
    BigInt(Vec<u8>),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
    /// A `bytes` object.
    Bytes(Vec<u8>),
    /// A list (also sets).
    List(Vec<Value>),
    /// A tuple (also `torch.Size`).
    Tuple(Vec<Value>),
    /// A dict or `OrderedDict`, in insertion order (keys need not be strings: an optimizer's
    /// `state` is keyed by parameter index).
    Dict(Vec<(Value, Value)>),
    /// A tensor (or `nn.Parameter`).
    Tensor(Tensor),
    /// A class or function referred to by name (`torch.float32`, …).
    Global(String),
    /// An instance of another class, as `class(*args)` with `__setstate__(state)`.
    Object {
        /// The dotted class name.
        class: String,
        /// The constructor arguments.
        args: Vec<Value>,
        /// The state set after construction, if any.
        state: Option<Box<Value>>,
    },
}

impl Value {
    /// The value of string key `key` if this is a dict, like `ckpt["epoch"]`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Dict(items) => items
                .iter()
                .find(|(k, _)| matches!(k, Value::Str(s) if s == key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(v) => Some(*v),
            _ => None,
        }
    }

    /// The number, if this is a float or an integer.
    pub fn as_float(&self) -> Option<f64> {
        match self {
            Value::Float(v) => Some(*v),
            Value::Int(v) => Some(*v as f64),
            _ => None,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The tensor, if this is one.
    pub fn as_tensor(&self) -> Option<&Tensor> {
        match self {
            Value::Tensor(t) => Some(t),
            _ => None,
        }
    }

    /// This dict as a state dict (string keys, tensor values), ready for
    /// [`Module::load_state_dict`](crate::nn::Module::load_state_dict).
    ///
    /// # Errors
    /// [`Error::Format`] if this is not a dict, or a key is not a string or a value not a tensor
    /// (naming it).
    pub fn to_state_dict(&self) -> Result<BTreeMap<String, Tensor>> {
        let Value::Dict(items) = self else {
            return Err(Error::Format(format!(
                "torch: expected a state dict, found {}",
                self.kind()
            )));
        };
        let mut out = BTreeMap::new();
        for (k, v) in items {
            match (k, v) {
                (Value::Str(k), Value::Tensor(t)) => {
                    out.insert(k.clone(), t.clone());
                }
                (Value::Str(k), v) => {
                    return Err(Error::Format(format!(
                        "torch: entry '{k}' of the state dict is {}, not a tensor",
                        v.kind()
                    )))
                }
                (k, _) => {
                    return Err(Error::Format(format!(
                        "torch: a state dict key is {}, not a string",
                        k.kind()
                    )))
                }
            }
        }
        Ok(out)
    }

    /// The state dict stored under `key` in this dict, like `ckpt["model"]` of a checkpoint
    /// saved as `torch.save({"model": model.state_dict(), ...})`.
    ///
    /// # Errors
    /// [`Error::Format`] if there is no such key (listing the keys there are) or its value is
    /// not a state dict.
    pub fn state_dict(&self, key: &str) -> Result<BTreeMap<String, Tensor>> {
        match self.get(key) {
            Some(v) => v.to_state_dict(),
            None => Err(Error::Format(format!(
                "torch: the checkpoint has no key '{key}' (it has {})",
                self.keys_description()
            ))),
        }
    }

    fn keys_description(&self) -> String {
        match self {
            Value::Dict(items) => {
                let keys: Vec<String> = items
                    .iter()
                    .map(|(k, _)| match k {
                        Value::Str(s) => format!("'{s}'"),
                        k => k.to_string(),
                    })
                    .collect();
                format!("keys {}", keys.join(", "))
            }
            v => format!("no keys: it is {}", v.kind()),
        }
    }

    /// What kind of value this is, for error messages.
    fn kind(&self) -> String {
        match self {
            Value::None => "None".into(),
            Value::Bool(_) => "a bool".into(),
            Value::Int(_) | Value::BigInt(_) => "an int".into(),
            Value::Float(_) => "a float".into(),
            Value::Str(_) => "a string".into(),
            Value::Bytes(_) => "bytes".into(),
            Value::List(_) => "a list".into(),
            Value::Tuple(_) => "a tuple".into(),
            Value::Dict(_) => "a dict".into(),
            Value::Tensor(t) => format!("a tensor of shape {:?}", t.shape()),
            Value::Global(g) => format!("the global {g}"),
            Value::Object { class, .. } => format!("a {class} object"),
        }
    }
}

impl fmt::Display for Value {
    /// A short Python-like rendering (tensors as `tensor(shape, dtype)`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seq = |f: &mut fmt::Formatter<'_>, items: &[Value], open: &str, close: &str| {
            f.write_str(open)?;
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{v}")?;
            }
            f.write_str(close)
        };
        match self {
            Value::None => f.write_str("None"),
            Value::Bool(b) => f.write_str(if *b { "True" } else { "False" }),
            Value::Int(v) => write!(f, "{v}"),
            Value::BigInt(b) => write!(f, "<int of {} bytes>", b.len()),
            Value::Float(v) => write!(f, "{v:?}"),
            Value::Str(s) => write!(f, "{s:?}"),
            Value::Bytes(b) => write!(f, "<{} bytes>", b.len()),
            Value::List(v) => seq(f, v, "[", "]"),
            Value::Tuple(v) => seq(f, v, "(", ")"),
            Value::Dict(items) => {
                f.write_str("{")?;
                for (i, (k, v)) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}: {v}")?;
                }
                f.write_str("}")
            }
            Value::Tensor(t) => write!(f, "tensor({:?}, {})", t.shape(), t.dtype()),
            Value::Global(g) => f.write_str(g),
            Value::Object { class, args, .. } => {
                f.write_str(class)?;
                seq(f, args, "(", ")")
            }
        }
    }
}

/// Reads a state dict saved with `torch.save(model.state_dict(), path)`.
///
/// # Errors
/// [`Error::Io`] if the file cannot be read; [`Error::Format`] if it is not a valid PyTorch zip
/// checkpoint or does not hold a flat dict of tensors (use [`load_value`] and
/// [`Value::state_dict`] for nested checkpoints).
pub fn load(path: impl AsRef<Path>) -> Result<BTreeMap<String, Tensor>> {
    load_bytes(&std::fs::read(path)?)
}

/// [`load`] for a checkpoint held in memory.
///
/// # Errors
/// As [`load`], without the I/O errors.
pub fn load_bytes(bytes: &[u8]) -> Result<BTreeMap<String, Tensor>> {
    let v = load_value_bytes(bytes)?;
    v.to_state_dict().map_err(|e| {
        Error::Format(format!(
            "{e}; for a nested checkpoint ({}) use torch::load_value and Value::state_dict",
            v.keys_description()
        ))
    })
}

/// Reads any object saved with `torch.save` (a state dict, or a dict such as
/// `{"model": ..., "optimizer": ..., "epoch": 3}`).
///
/// # Errors
/// [`Error::Io`] if the file cannot be read; [`Error::Format`] if it is not a valid PyTorch zip
/// checkpoint (truncated, corrupt, or a tensor reaching outside its storage).
pub fn load_value(path: impl AsRef<Path>) -> Result<Value> {
    load_value_bytes(&std::fs::read(path)?)
}

/// [`load_value`] for a checkpoint held in memory.
///
/// # Errors
/// As [`load_value`], without the I/O errors.
pub fn load_value_bytes(bytes: &[u8]) -> Result<Value> {
    if !bytes.starts_with(b"PK\x03\x04") {
        return Err(Error::Format(
            "torch: not a zip checkpoint (files written by PyTorch before 1.6 or with \
             _use_new_zipfile_serialization=False are not supported)"
                .into(),
        ));
    }
    let zip = ZipArchive::new(bytes)?;
    let pkl = zip
        .names()
        .find(|n| *n == "data.pkl" || n.ends_with("/data.pkl"))
        .ok_or_else(|| Error::Format("torch: the archive has no data.pkl".into()))?
        .to_owned();
    let prefix = pkl[..pkl.len() - "data.pkl".len()].to_owned();
    if zip.names().any(|n| n == format!("{prefix}byteorder")) {
        let order = zip.read(&format!("{prefix}byteorder"))?;
        if &*order != b"little" {
            return Err(Error::Format(format!(
                "torch: storages are in '{}' byte order; only little-endian is supported",
                String::from_utf8_lossy(&order)
            )));
        }
    }
    let data = zip.read(&pkl)?;
    let object = pickle::load(&data)?;
    let mut cx = Converter {
        zip: &zip,
        prefix,
        tensors: HashMap::new(),
        budget: data.len().saturating_mul(16).saturating_add(4096),
    };
    cx.convert(&object, 0)
}

/// Nesting deeper than this is refused (it would overflow the stack, and no checkpoint needs it).
const MAX_DEPTH: usize = 100;

/// Turns pickled objects into [`Value`]s, rebuilding tensors from the archive's storages.
struct Converter<'z, 'a> {
    zip: &'z ZipArchive<'a>,
    prefix: String,
    /// Tensors already rebuilt, by the address of their pickled call: one object, one tensor.
    tensors: HashMap<usize, Tensor>,
    /// Values left to build: shared references could otherwise expand a small pickle into an
    /// exponentially large tree.
    budget: usize,
}

fn bad(msg: impl Into<String>) -> Error {
    Error::Format(format!("torch: {}", msg.into()))
}

fn storage_dtype(class: &str) -> Option<RawDType> {
    Some(match class.strip_prefix("torch.")? {
        "FloatStorage" => RawDType::F32,
        "DoubleStorage" => RawDType::F64,
        "HalfStorage" => RawDType::F16,
        "BFloat16Storage" => RawDType::BF16,
        "LongStorage" => RawDType::I64,
        "IntStorage" => RawDType::I32,
        "ShortStorage" => RawDType::I16,
        "CharStorage" => RawDType::I8,
        "ByteStorage" => RawDType::U8,
        "BoolStorage" => RawDType::Bool,
        _ => return None,
    })
}

/// The non-negative integers of a tuple (a size or a stride).
fn usizes(o: &Object, what: &str) -> Result<Vec<usize>> {
    let items = match o {
        Object::Tuple(t) => t.as_slice().to_vec(),
        Object::List(l) => l.borrow().clone(),
        _ => return Err(bad(format!("a tensor's {what} is not a tuple"))),
    };
    items
        .iter()
        .map(|x| match x {
            Object::Int(v) if *v >= 0 => Ok(*v as usize),
            _ => Err(bad(format!(
                "a tensor's {what} holds a non-integer or negative value"
            ))),
        })
        .collect()
}

impl Converter<'_, '_> {
    fn convert(&mut self, o: &Object, depth: usize) -> Result<Value> {
        if depth > MAX_DEPTH {
            return Err(bad(format!(
                "objects nested deeper than {MAX_DEPTH} levels"
            )));
        }
        self.budget = self
            .budget
            .checked_sub(1)
            .ok_or_else(|| bad("the pickle expands to too many objects"))?;
        let all = |cx: &mut Self, items: &[Object]| -> Result<Vec<Value>> {
            items.iter().map(|x| cx.convert(x, depth + 1)).collect()
        };
        Ok(match o {
            Object::None => Value::None,
            Object::Bool(b) => Value::Bool(*b),
            Object::Int(v) => Value::Int(*v),
            Object::BigInt(b) => Value::BigInt(b.to_vec()),
            Object::Float(v) => Value::Float(*v),
            Object::Str(s) => Value::Str(s.to_string()),
            Object::Bytes(b) => Value::Bytes(b.to_vec()),
            Object::Tuple(t) => Value::Tuple(all(self, t)?),
            Object::List(l) => Value::List(all(self, &l.borrow())?),
            Object::Dict(d) => {
                let d = d.borrow();
                let mut out = Vec::with_capacity(d.len());
                for (k, v) in d.iter() {
                    out.push((self.convert(k, depth + 1)?, self.convert(v, depth + 1)?));
                }
                Value::Dict(out)
            }
            Object::Global(g) => Value::Global(g.to_string()),
            Object::PersId(p) => Value::Object {
                class: "persistent_id".into(),
                args: vec![self.convert(p, depth + 1)?],
                state: None,
            },
            Object::Call(c) => {
                let key = Rc::as_ptr(c) as usize;
                if let Some(t) = self.tensors.get(&key) {
                    return Ok(Value::Tensor(t.clone()));
                }
                let c = c.borrow();
                let v = self.call(&c, depth)?;
                if let Value::Tensor(t) = &v {
                    self.tensors.insert(key, t.clone());
                }
                v
            }
        })
    }

    fn call(&mut self, c: &Call, depth: usize) -> Result<Value> {
        let class = match &c.callable {
            Object::Global(g) => g.to_string(),
            o => return Err(bad(format!("a call of a {}", o.name()))),
        };
        let args: &[Object] = match &c.args {
            Object::Tuple(t) => t,
            _ => return Err(bad(format!("the arguments of {class} are not a tuple"))),
        };
        let arg = |i: usize| {
            args.get(i)
                .ok_or_else(|| bad(format!("{class} has too few arguments")))
        };
        match class.as_str() {
            "torch._utils._rebuild_tensor_v2" | "torch._utils._rebuild_tensor" => {
                let layout_of = |k| usizes(arg(k)?, ["", "", "size", "stride"][k]);
                let offset = match arg(1)? {
                    Object::Int(v) if *v >= 0 => *v as usize,
                    _ => return Err(bad("a tensor's storage offset is not an integer")),
                };
                let (shape, strides) = (layout_of(2)?, layout_of(3)?);
                let (dtype, bytes) = self.storage(arg(0)?)?;
                let layout = Layout {
                    offset,
                    shape: &shape,
                    strides: &strides,
                };
                Ok(Value::Tensor(to_tensor(dtype, &bytes, &layout)?))
            }
            "torch._utils._rebuild_parameter" | "torch._utils._rebuild_parameter_with_state" => {
                self.convert(arg(0)?, depth + 1)
            }
            "torch.Size" => self.convert(arg(0)?, depth + 1),
            "builtins.set" | "builtins.frozenset" | "__builtin__.set" | "__builtin__.frozenset" => {
                match args.first() {
                    Some(a) => match self.convert(a, depth + 1)? {
                        Value::List(v) | Value::Tuple(v) => Ok(Value::List(v)),
                        v => Err(bad(format!("{class} of {}", v.kind()))),
                    },
                    None => Ok(Value::List(Vec::new())),
                }
            }
            "_codecs.encode" => match (arg(0)?, args.get(1)) {
                // protocol 2 writes `bytes` as _codecs.encode(text, "latin1")
                (Object::Str(s), Some(Object::Str(enc))) if &**enc == "latin1" => s
                    .chars()
                    .map(|ch| u8::try_from(ch as u32).map_err(|_| bad("a latin1 byte above 255")))
                    .collect::<Result<Vec<u8>>>()
                    .map(Value::Bytes),
                _ => Err(bad("_codecs.encode with unexpected arguments")),
            },
            _ => {
                let args = args
                    .iter()
                    .map(|a| self.convert(a, depth + 1))
                    .collect::<Result<Vec<_>>>()?;
                let state = match &c.state {
                    Some(s) => Some(Box::new(self.convert(s, depth + 1)?)),
                    None => None,
                };
                Ok(Value::Object { class, args, state })
            }
        }
    }

    /// The dtype and bytes of the storage a persistent id names:
    /// `("storage", torch.FloatStorage, key, location, numel)`.
    fn storage(&self, pid: &Object) -> Result<(RawDType, std::borrow::Cow<'_, [u8]>)> {
        let Object::PersId(p) = pid else {
            return Err(bad("a tensor's storage is not a persistent id"));
        };
        let Object::Tuple(t) = &**p else {
            return Err(bad("a storage id is not a tuple"));
        };
        let (class, key, numel) = match t.as_slice() {
            [Object::Str(s), Object::Global(class), Object::Str(key), _, Object::Int(n), ..]
                if &**s == "storage" && *n >= 0 =>
            {
                (class, key, *n as usize)
            }
            _ => {
                return Err(bad(
                    "a storage id is not ('storage', type, key, location, numel)",
                ))
            }
        };
        let dtype = storage_dtype(class)
            .ok_or_else(|| bad(format!("storage type {class} is not supported")))?;
        let bytes = self.zip.read(&format!("{}data/{key}", self.prefix))?;
        let need = numel
            .checked_mul(dtype.size())
            .ok_or_else(|| bad("a storage size overflows"))?;
        if bytes.len() < need {
            return Err(bad(format!(
                "storage '{key}' holds {} bytes but {numel} {dtype:?} elements need {need}",
                bytes.len()
            )));
        }
        let bytes = match bytes {
            std::borrow::Cow::Borrowed(b) => std::borrow::Cow::Borrowed(&b[..need]),
            std::borrow::Cow::Owned(mut b) => {
                b.truncate(need);
                std::borrow::Cow::Owned(b)
            }
        };
        Ok((dtype, bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::zip::tests::stored_zip;

    fn checkpoint(pkl: &[u8]) -> Vec<u8> {
        stored_zip(&[("archive/data.pkl", pkl), ("archive/byteorder", b"little")])
    }

    #[test]
    fn a_tensor_is_rebuilt_from_its_storage_entry() {
        // {"w": _rebuild_tensor_v2(("storage", FloatStorage, "0", "cpu", 3), 1, (2,), (1,),
        //  False, OrderedDict())}: elements 1 and 2 of the storage [1.5, 2.5, 3.5]
        let pkl = b"\x80\x02}X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x03tQK\x01K\x02\x85K\x01\x85\x89ccollections\nOrderedDict\n)RtRs.";
        let data: Vec<u8> = [1.5f32, 2.5, 3.5]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let z = stored_zip(&[("archive/data.pkl", pkl), ("archive/data/0", &data)]);
        let sd = load_bytes(&z).unwrap();
        assert_eq!(sd["w"].to_vec::<f32>(), vec![2.5, 3.5]);
        // the same pickle without its storage entry is an error
        let z = checkpoint(pkl);
        assert!(load_bytes(&z)
            .unwrap_err()
            .to_string()
            .contains("no entry 'archive/data/0'"));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let mut pkl = vec![b']'];
        pkl.extend(std::iter::repeat_n(0x85u8, 100_000));
        pkl.push(b'.');
        let err = load_value_bytes(&checkpoint(&pkl)).unwrap_err().to_string();
        assert!(err.contains("nested deeper"), "{err}");
    }

    #[test]
    fn shared_references_cannot_expand_exponentially() {
        // x = []; 64 times: x = [x, x]  (2^64 leaves if expanded)
        let mut pkl = b"]q\x00".to_vec();
        for _ in 0..64 {
            pkl.extend(b"(h\x00h\x00lq\x00");
        }
        pkl.push(b'.');
        let err = load_value_bytes(&checkpoint(&pkl)).unwrap_err().to_string();
        assert!(err.contains("too many objects"), "{err}");
    }

    #[test]
    fn big_endian_storages_are_refused() {
        let z = stored_zip(&[("archive/data.pkl", b"N."), ("archive/byteorder", b"big")]);
        assert!(load_value_bytes(&z)
            .unwrap_err()
            .to_string()
            .contains("'big' byte order"));
    }
}
