//! Comparisons giving boolean masks, and the ops that consume masks: `where_`, `masked_fill`.

use ndarray::Dimension as _;
use std::panic::Location;

use crate::autograd::function::Op;
use crate::tensor::{DType, Data, Tensor};

use super::{broadcast_or_panic, same_dtype_or_panic, scalar_like, zip_broadcast};

macro_rules! comparison {
    ($(#[$doc:meta])* $name:ident, $scalar:ident, $op:tt, $label:literal) => {
        $(#[$doc])*
        ///
        /// # Panics
        /// If the shapes cannot be broadcast together or the dtypes differ.
        #[track_caller]
        pub fn $name(&self, other: &Tensor) -> Tensor {
            compare(self, other, $label, |a, b| a $op b)
        }

        #[doc = concat!("[`", stringify!($name), "`](Tensor::", stringify!($name), ") against a scalar.")]
        #[track_caller]
        pub fn $scalar(&self, v: f64) -> Tensor {
            compare(self, &scalar_like(v, self), $label, |a, b| a $op b)
        }
    };
}

/// Compares two tensors elementwise (as f64 for floats, exactly for integers), giving a bool mask.
#[track_caller]
fn compare(a: &Tensor, b: &Tensor, op: &'static str, f: fn(f64, f64) -> bool) -> Tensor {
    let shape = broadcast_or_panic(op, a.shape(), b.shape());
    same_dtype_or_panic(op, a, b);
    let inputs = [a, b];
    let rec = Op::new(op, &inputs);
    let out = a.with_data(|da| {
        b.with_data(|db| match (da, db) {
            (Data::F32(x), Data::F32(y)) => {
                zip_broadcast(x, y, &shape, |p, q| f(p as f64, q as f64))
            }
            (Data::F64(x), Data::F64(y)) => zip_broadcast(x, y, &shape, f),
            (Data::I64(x), Data::I64(y)) => zip_broadcast(x, y, &shape, |p, q| {
                let o = p.cmp(&q);
                f(o as i8 as f64, 0.0)
            }),
            (Data::Bool(x), Data::Bool(y)) => {
                zip_broadcast(x, y, &shape, |p, q| f(p as u8 as f64, q as u8 as f64))
            }
            _ => unreachable!("dtypes were checked"),
        })
    });
    rec.finish_no_grad(Data::Bool(out))
}

impl Tensor {
    comparison!(
        /// `self == other` elementwise, a bool mask (like `torch.eq`).
        eq, eq_scalar, ==, "eq");
    comparison!(
        /// `self != other` elementwise, a bool mask.
        ne, ne_scalar, !=, "ne");
    comparison!(
        /// `self < other` elementwise, a bool mask.
        lt, lt_scalar, <, "lt");
    comparison!(
        /// `self <= other` elementwise, a bool mask.
        le, le_scalar, <=, "le");
    comparison!(
        /// `self > other` elementwise, a bool mask.
        gt, gt_scalar, >, "gt");
    comparison!(
        /// `self >= other` elementwise, a bool mask.
        ge, ge_scalar, >=, "ge");

    /// Elementwise AND of two bool masks.
    ///
    /// # Panics
    /// If either tensor is not bool or the shapes cannot be broadcast together.
    #[track_caller]
    pub fn logical_and(&self, other: &Tensor) -> Tensor {
        logical(self, other, "logical_and", |a, b| a && b)
    }

    /// Elementwise OR of two bool masks.
    ///
    /// # Panics
    /// If either tensor is not bool or the shapes cannot be broadcast together.
    #[track_caller]
    pub fn logical_or(&self, other: &Tensor) -> Tensor {
        logical(self, other, "logical_or", |a, b| a || b)
    }

    /// Elementwise NOT of a bool mask.
    ///
    /// # Panics
    /// If the tensor is not bool.
    #[track_caller]
    pub fn logical_not(&self) -> Tensor {
        logical(self, self, "logical_not", |a, _| !a)
    }

    /// Picks `self` where `cond` is true and `other` elsewhere, with broadcasting, like
    /// `torch.where(cond, self, other)`. Gradients flow to the picked elements.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let x = Tensor::from_vec(vec![-1.0, 2.0, -3.0], &[3]);
    /// let y = x.where_(&x.gt_scalar(0.0), &Tensor::zeros(&[3]));
    /// assert_eq!(y.to_vec::<f32>(), vec![0.0, 2.0, 0.0]);
    /// ```
    ///
    /// # Panics
    /// If `cond` is not bool, the shapes cannot be broadcast together or the dtypes differ.
    #[track_caller]
    pub fn where_(&self, cond: &Tensor, other: &Tensor) -> Tensor {
        where_impl(cond, self, other)
    }

    /// `value` where `mask` is true, `self` elsewhere, like `x.masked_fill(mask, value)`.
    ///
    /// # Panics
    /// If `mask` is not bool or cannot be broadcast to `self`'s shape.
    #[track_caller]
    pub fn masked_fill(&self, mask: &Tensor, value: f64) -> Tensor {
        let shape = broadcast_or_panic("masked_fill", self.shape(), mask.shape());
        if shape != self.shape() {
            panic!(
                "masked_fill: mask of shape {:?} cannot be broadcast to the tensor's shape {:?}, at {}",
                mask.shape(),
                self.shape(),
                Location::caller()
            );
        }
        where_impl(mask, &scalar_like(value, self), self)
    }
}

#[track_caller]
fn logical(a: &Tensor, b: &Tensor, op: &'static str, f: fn(bool, bool) -> bool) -> Tensor {
    if a.dtype() != DType::Bool || b.dtype() != DType::Bool {
        panic!(
            "{op}: expected bool tensors, got {} and {}, at {}",
            a.dtype(),
            b.dtype(),
            Location::caller()
        );
    }
    let shape = broadcast_or_panic(op, a.shape(), b.shape());
    // logical_not passes its operand twice; it has one input
    let both = [a, b];
    let inputs = if op == "logical_not" {
        &both[..1]
    } else {
        &both[..]
    };
    let rec = Op::new(op, inputs);
    let out = a.with_data(|da| {
        b.with_data(|db| match (da, db) {
            (Data::Bool(x), Data::Bool(y)) => zip_broadcast(x, y, &shape, f),
            _ => unreachable!(),
        })
    });
    rec.finish_no_grad(Data::Bool(out))
}

/// `torch.where(cond, a, b)`.
#[track_caller]
pub(crate) fn where_impl(cond: &Tensor, a: &Tensor, b: &Tensor) -> Tensor {
    if cond.dtype() != DType::Bool {
        panic!(
            "where: condition must be a bool tensor, got {}, at {}",
            cond.dtype(),
            Location::caller()
        );
    }
    let ab = broadcast_or_panic("where", a.shape(), b.shape());
    let shape = broadcast_or_panic("where", cond.shape(), &ab);
    same_dtype_or_panic("where", a, b);
    let inputs = [cond, a, b];
    let op = Op::new("where", &inputs);
    let out = cond.with_data(|dc| {
        let Data::Bool(c) = dc else { unreachable!() };
        let cb = c
            .broadcast(ndarray::IxDyn(&shape))
            .unwrap()
            .to_owned()
            .into_shared();
        a.with_data(|da| {
            b.with_data(|db| match (da, db) {
                (Data::F32(x), Data::F32(y)) => Data::F32(pick(&cb, x, y, &shape)),
                (Data::F64(x), Data::F64(y)) => Data::F64(pick(&cb, x, y, &shape)),
                (Data::I64(x), Data::I64(y)) => Data::I64(pick(&cb, x, y, &shape)),
                (Data::Bool(x), Data::Bool(y)) => Data::Bool(pick(&cb, x, y, &shape)),
                _ => unreachable!("dtypes were checked"),
            })
        })
    });
    let (sa, sb) = (ndarray::IxDyn(a.shape()), ndarray::IxDyn(b.shape()));
    op.save(cond).finish(out, move |ctx, g| {
        let c = ctx.saved(0);
        let zero = Tensor::zeros_like(g);
        vec![
            None,
            ctx.needs_grad(1)
                .then(|| g.where_(&c, &zero).sum_to(sa.slice())),
            ctx.needs_grad(2)
                .then(|| zero.where_(&c, g).sum_to(sb.slice())),
        ]
    })
}

fn pick<T: Copy + Send + Sync>(
    c: &crate::tensor::data::Storage<bool>,
    a: &crate::tensor::data::Storage<T>,
    b: &crate::tensor::data::Storage<T>,
    shape: &[usize],
) -> crate::tensor::data::Storage<T> {
    let sh = ndarray::IxDyn(shape);
    let (a, b) = (a.broadcast(sh.clone()).unwrap(), b.broadcast(sh).unwrap());
    ndarray::Zip::from(c)
        .and(&a)
        .and(&b)
        .map_collect(|&c, &x, &y| if c { x } else { y })
        .into_shared()
}

#[cfg(test)]
mod tests {
    use crate::prelude::*;
    use crate::testing::randn64;

    #[test]
    fn comparisons_give_bool_masks() {
        let a = Tensor::from_vec(vec![1.0, 2.0, 3.0], &[3]);
        let b = Tensor::from_vec(vec![2.0, 2.0, 2.0], &[3]);
        assert_eq!(a.lt(&b).to_vec::<bool>(), vec![true, false, false]);
        assert_eq!(a.le(&b).to_vec::<bool>(), vec![true, true, false]);
        assert_eq!(a.eq(&b).to_vec::<bool>(), vec![false, true, false]);
        assert_eq!(a.ne(&b).to_vec::<bool>(), vec![true, false, true]);
        assert_eq!(a.gt_scalar(1.5).to_vec::<bool>(), vec![false, true, true]);
        assert_eq!(a.ge_scalar(3.0).dtype(), DType::Bool);
    }

    #[test]
    fn integer_comparisons_are_exact() {
        let a = Tensor::from_vec_i64(vec![i64::MAX, 1], &[2]);
        let b = Tensor::from_vec_i64(vec![i64::MAX - 1, 1], &[2]);
        assert_eq!(a.gt(&b).to_vec::<bool>(), vec![true, false]);
        assert_eq!(a.eq(&b).to_vec::<bool>(), vec![false, true]);
    }

    #[test]
    fn where_gradcheck_with_broadcast() {
        // y = where(c, a, b): dy/da = c, dy/db = !c
        let a = randn64(&[3, 4], 1);
        let b = randn64(&[4], 2);
        let c = randn64(&[3, 1], 3).gt_scalar(0.0);
        gradcheck(move |x| x[0].where_(&c, &x[1]), &[a, b]).unwrap();
    }

    #[test]
    fn masked_fill_replaces_and_blocks_gradient() {
        let x = Tensor::from_vec(vec![1.0, 2.0, 3.0], &[3]).requires_grad();
        let m = Tensor::from_values(vec![false, true, false], &[3]);
        let y = x.masked_fill(&m, -1.0);
        assert_eq!(y.to_vec::<f32>(), vec![1.0, -1.0, 3.0]);
        y.sum().backward();
        assert_eq!(x.grad().unwrap().to_vec::<f32>(), vec![1.0, 0.0, 1.0]);
        let xs = randn64(&[2, 3], 4);
        gradcheck(move |x| x[0].masked_fill(&m, 0.5), &[xs]).unwrap();
    }

    #[test]
    #[should_panic(expected = "where: condition must be a bool tensor")]
    fn where_needs_a_bool_condition() {
        let x = Tensor::zeros(&[2]);
        let _ = x.where_(&x, &x);
    }
}
