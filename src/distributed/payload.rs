//! What a collective moves: a tensor's elements as one flat row-major buffer of its dtype (or raw
//! bytes), the element-wise reductions of [`ReduceOp`], and the conversions between tensors and
//! buffers. Both backends share it, so a reduction gives the same bits on threads and on MPI when
//! the summation order is the same.

use ndarray::{ArrayD, IxDyn};

use super::ReduceOp;
use crate::tensor::{DType, Data, Element, Tensor};
use crate::{Error, Result};

/// A flat, row-major buffer of one dtype (`Bytes` for [`all_gather_bytes`]).
///
/// [`all_gather_bytes`]: super::ProcessGroup::all_gather_bytes
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Payload {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I64(Vec<i64>),
    Bool(Vec<bool>),
    Bytes(Vec<u8>),
}

/// The element type of a [`Payload`]: a tensor dtype, or raw bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Tensor(DType),
    Bytes,
}

impl Kind {
    #[cfg_attr(not(feature = "mpi"), allow(dead_code))]
    /// A small code to send in headers.
    pub(crate) fn code(self) -> i64 {
        match self {
            Kind::Tensor(DType::F32) => 1,
            Kind::Tensor(DType::F64) => 2,
            Kind::Tensor(DType::I64) => 3,
            Kind::Tensor(DType::Bool) => 4,
            Kind::Bytes => 5,
        }
    }

    #[cfg_attr(not(feature = "mpi"), allow(dead_code))]
    /// The kind of a header code.
    pub(crate) fn from_code(c: i64) -> Option<Kind> {
        Some(match c {
            1 => Kind::Tensor(DType::F32),
            2 => Kind::Tensor(DType::F64),
            3 => Kind::Tensor(DType::I64),
            4 => Kind::Tensor(DType::Bool),
            5 => Kind::Bytes,
            _ => return None,
        })
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Kind::Tensor(d) => write!(f, "{d}"),
            Kind::Bytes => f.write_str("bytes"),
        }
    }
}

/// Runs `$body` with `$v` bound to the vector inside a payload, whatever its element type.
macro_rules! with_payload {
    ($p:expr, |$v:ident| $body:expr) => {
        match $p {
            Payload::F32($v) => $body,
            Payload::F64($v) => $body,
            Payload::I64($v) => $body,
            Payload::Bool($v) => $body,
            Payload::Bytes($v) => $body,
        }
    };
}

/// Elements that collectives can reduce; `bool` reduces as logic (Sum and Max are "any",
/// Product and Min are "all"), integers wrap around on overflow as MPI's do.
trait Reduce: Copy {
    fn combine(a: Self, b: Self, op: ReduceOp) -> Self;
}

impl Reduce for f32 {
    fn combine(a: f32, b: f32, op: ReduceOp) -> f32 {
        match op {
            ReduceOp::Sum | ReduceOp::Avg => a + b,
            ReduceOp::Product => a * b,
            ReduceOp::Max => a.max(b),
            ReduceOp::Min => a.min(b),
        }
    }
}

impl Reduce for f64 {
    fn combine(a: f64, b: f64, op: ReduceOp) -> f64 {
        match op {
            ReduceOp::Sum | ReduceOp::Avg => a + b,
            ReduceOp::Product => a * b,
            ReduceOp::Max => a.max(b),
            ReduceOp::Min => a.min(b),
        }
    }
}

impl Reduce for i64 {
    fn combine(a: i64, b: i64, op: ReduceOp) -> i64 {
        match op {
            ReduceOp::Sum | ReduceOp::Avg => a.wrapping_add(b),
            ReduceOp::Product => a.wrapping_mul(b),
            ReduceOp::Max => a.max(b),
            ReduceOp::Min => a.min(b),
        }
    }
}

impl Reduce for bool {
    fn combine(a: bool, b: bool, op: ReduceOp) -> bool {
        match op {
            ReduceOp::Sum | ReduceOp::Max | ReduceOp::Avg => a | b,
            ReduceOp::Product | ReduceOp::Min => a & b,
        }
    }
}

impl Reduce for u8 {
    fn combine(_: u8, _: u8, _: ReduceOp) -> u8 {
        unreachable!("byte payloads are gathered, never reduced")
    }
}

fn combine_into<T: Reduce>(acc: &mut [T], x: &[T], op: ReduceOp) {
    for (a, &b) in acc.iter_mut().zip(x) {
        *a = T::combine(*a, b, op);
    }
}

impl Payload {
    /// The element type.
    pub(crate) fn kind(&self) -> Kind {
        match self {
            Payload::F32(_) => Kind::Tensor(DType::F32),
            Payload::F64(_) => Kind::Tensor(DType::F64),
            Payload::I64(_) => Kind::Tensor(DType::I64),
            Payload::Bool(_) => Kind::Tensor(DType::Bool),
            Payload::Bytes(_) => Kind::Bytes,
        }
    }

    /// The number of elements.
    pub(crate) fn len(&self) -> usize {
        with_payload!(self, |v| v.len())
    }

    /// A zero-filled payload of `kind` with `len` elements (a receive buffer).
    pub(crate) fn zeros(kind: Kind, len: usize) -> Payload {
        match kind {
            Kind::Tensor(DType::F32) => Payload::F32(vec![0.0; len]),
            Kind::Tensor(DType::F64) => Payload::F64(vec![0.0; len]),
            Kind::Tensor(DType::I64) => Payload::I64(vec![0; len]),
            Kind::Tensor(DType::Bool) => Payload::Bool(vec![false; len]),
            Kind::Bytes => Payload::Bytes(vec![0; len]),
        }
    }

    /// The elements of `t` in row-major order, whatever its layout (a non-contiguous tensor is
    /// read through its strides).
    pub(crate) fn of_tensor(t: &Tensor) -> Payload {
        t.with_data(|d| match d {
            Data::F32(a) => Payload::F32(a.iter().copied().collect()),
            Data::F64(a) => Payload::F64(a.iter().copied().collect()),
            Data::I64(a) => Payload::I64(a.iter().copied().collect()),
            Data::Bool(a) => Payload::Bool(a.iter().copied().collect()),
        })
    }

    /// The payload as a tensor's storage of `shape` (its length must match).
    pub(crate) fn into_data(self, shape: &[usize]) -> Data {
        fn wrap<T: Element>(v: Vec<T>, shape: &[usize]) -> Data {
            T::wrap(
                ArrayD::from_shape_vec(IxDyn(shape), v)
                    .expect("collective results have the tensor's length")
                    .into_shared(),
            )
        }
        match self {
            Payload::F32(v) => wrap(v, shape),
            Payload::F64(v) => wrap(v, shape),
            Payload::I64(v) => wrap(v, shape),
            Payload::Bool(v) => wrap(v, shape),
            Payload::Bytes(_) => unreachable!("byte payloads never become tensors"),
        }
    }

    /// A new tensor of `shape` holding the payload.
    pub(crate) fn into_tensor(self, shape: &[usize]) -> Tensor {
        Tensor::from_data(self.into_data(shape))
    }

    /// The raw bytes of a byte payload.
    pub(crate) fn into_bytes(self) -> Vec<u8> {
        match self {
            Payload::Bytes(v) => v,
            other => unreachable!("expected bytes, got {}", other.kind()),
        }
    }

    /// `self ← self op x`, element by element (both of one kind and length).
    pub(crate) fn combine(&mut self, x: &Payload, op: ReduceOp) {
        match (self, x) {
            (Payload::F32(a), Payload::F32(b)) => combine_into(a, b, op),
            (Payload::F64(a), Payload::F64(b)) => combine_into(a, b, op),
            (Payload::I64(a), Payload::I64(b)) => combine_into(a, b, op),
            (Payload::Bool(a), Payload::Bool(b)) => combine_into(a, b, op),
            (a, b) => unreachable!("reducing {} with {}: checked before", a.kind(), b.kind()),
        }
    }

    /// The last step of [`ReduceOp::Avg`]: divides the sum of `n` ranks by `n` (integers round
    /// toward zero).
    pub(crate) fn finish(&mut self, op: ReduceOp, n: usize) {
        if op != ReduceOp::Avg {
            return;
        }
        match self {
            Payload::F32(v) => v.iter_mut().for_each(|x| *x /= n as f32),
            Payload::F64(v) => v.iter_mut().for_each(|x| *x /= n as f64),
            Payload::I64(v) => v.iter_mut().for_each(|x| *x /= n as i64),
            Payload::Bool(_) | Payload::Bytes(_) => {
                unreachable!("Avg of bool is refused before communicating")
            }
        }
    }

    /// The elements `[start, start + len)`.
    pub(crate) fn slice(&self, start: usize, len: usize) -> Payload {
        match self {
            Payload::F32(v) => Payload::F32(v[start..start + len].to_vec()),
            Payload::F64(v) => Payload::F64(v[start..start + len].to_vec()),
            Payload::I64(v) => Payload::I64(v[start..start + len].to_vec()),
            Payload::Bool(v) => Payload::Bool(v[start..start + len].to_vec()),
            Payload::Bytes(v) => Payload::Bytes(v[start..start + len].to_vec()),
        }
    }
}

/// Reduces the payloads of every rank in rank order (`((x₀ op x₁) op x₂) …`), so the result is
/// bitwise reproducible for a given world size, then finishes an average.
pub(crate) fn reduce_in_rank_order(inputs: &[&Payload], op: ReduceOp) -> Payload {
    let mut acc = inputs[0].clone();
    for x in &inputs[1..] {
        acc.combine(x, op);
    }
    acc.finish(op, inputs.len());
    acc
}

/// Refuses reductions that have no meaning for a dtype, before any rank communicates.
pub(crate) fn check_reducible(what: &str, dtype: DType, op: ReduceOp) -> Result<()> {
    if op == ReduceOp::Avg && dtype == DType::Bool {
        return Err(Error::Distributed(format!(
            "{what}: ReduceOp::Avg is not defined for bool tensors (use Sum for 'any' or Min for \
             'all')"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_run_in_rank_order_and_average_divides_at_the_end() {
        // (1e8 + 1) + (-1e8) = 0 in f32 (1 is lost), while 1e8 + (-1e8) + 1 would be 1
        let xs = [
            Payload::F32(vec![1e8]),
            Payload::F32(vec![1.0]),
            Payload::F32(vec![-1e8]),
        ];
        let refs: Vec<&Payload> = xs.iter().collect();
        assert_eq!(
            reduce_in_rank_order(&refs, ReduceOp::Sum),
            Payload::F32(vec![0.0])
        );
        let ys = [Payload::I64(vec![7, -7]), Payload::I64(vec![0, 0])];
        let refs: Vec<&Payload> = ys.iter().collect();
        assert_eq!(
            reduce_in_rank_order(&refs, ReduceOp::Avg),
            Payload::I64(vec![3, -3])
        );
    }

    #[test]
    fn bools_reduce_as_any_and_all() {
        let xs = [
            Payload::Bool(vec![true, false, true]),
            Payload::Bool(vec![false, false, true]),
        ];
        let refs: Vec<&Payload> = xs.iter().collect();
        assert_eq!(
            reduce_in_rank_order(&refs, ReduceOp::Sum),
            Payload::Bool(vec![true, false, true])
        );
        assert_eq!(
            reduce_in_rank_order(&refs, ReduceOp::Min),
            Payload::Bool(vec![false, false, true])
        );
    }
}
