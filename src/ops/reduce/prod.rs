//! prod, over all elements or along a dim, with a gradient that stays right at zeros.

use crate::tensor::args::Dim;
use crate::tensor::{Data, Float, Tensor};

use super::{fold_chunks, kept_shape, one_dim, record, reduce_lanes};

fn lane_prod<F: Float>(s: &[F]) -> F {
    fold_chunks(
        s,
        |c, _| c.iter().fold(F::one(), |p, &v| p * v),
        |a, b| a * b,
    )
    .unwrap_or_else(F::one)
}

/// The product over `dims`, recorded as one tape entry.
///
/// Its gradient is the product of the *other* elements of the lane. Without zeros that is
/// `prod / x`. With zeros PyTorch's rule applies: a lane with one zero sends the product of its
/// non-zero elements to the zero and nothing to the others; a lane with several zeros sends
/// nothing. The rule is written so that its own derivative is right too, except for lanes holding
/// two or more zeros, whose second derivative is taken as 0.
#[track_caller]
fn prod_impl(x: &Tensor, dims: Vec<usize>, keepdim: bool) -> Tensor {
    let inputs = [x];
    let rec = record("prod", &inputs, &dims, keepdim);
    let out = x.with_data(|d| {
        crate::with_float!(d, "prod", |a: F| Data::from(reduce_lanes(
            a, &dims, keepdim, lane_prod
        )))
    });
    let kept = kept_shape(x.shape(), &dims);
    rec.save(x).save_output().finish(out, move |ctx, g| {
        let x = ctx.saved(0);
        let g = g.reshape(&kept);
        let has_zero =
            x.with_data(|d| crate::with_float!(d, "prod", |a: F| a.iter().any(|&v| v == 0.0)));
        if !has_zero {
            // d(Π x)/dx_i = Π x / x_i
            return vec![Some(g * ctx.output().reshape(&kept) / x)];
        }
        let dtype = x.dtype();
        let zero = x.eq_scalar(0.0);
        let zeros_f = zero.to_dtype(dtype);
        let count = zeros_f.sum_dim(&dims, true);
        let safe = x.masked_fill(&zero, 1.0);
        // Π of the non-zero elements, and Σ of the zero elements: 0 in value, but its derivative
        // is 1 at the zero, which makes the others' gradient (0 · Π_nz / x_k) differentiable
        let prod_nonzero = prod_impl(&safe, dims.clone(), true);
        let zero_sum = (&x * &zeros_f).sum_dim(&dims, true);
        let no_zero = count.eq_scalar(0.0).to_dtype(dtype);
        let factor = Tensor::scalar_of(1.0, dtype).where_(&zero, &(zero_sum + no_zero));
        let gx = g * prod_nonzero / safe * factor;
        vec![Some(gx.masked_fill(&count.ge_scalar(2.0), 0.0))]
    })
}

impl Tensor {
    /// The product of all elements, a 0-d tensor, like `x.prod()`.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let x = Tensor::from_vec(vec![2.0, 0.0, 3.0], &[3]).requires_grad();
    /// let p = x.prod();
    /// assert_eq!(p.item(), 0.0);
    /// p.backward();
    /// // only the zero gets a gradient: the product of the others
    /// assert_eq!(x.grad().unwrap().to_vec::<f32>(), vec![0.0, 6.0, 0.0]);
    /// ```
    ///
    /// # Panics
    /// If the tensor is not floating point.
    #[track_caller]
    pub fn prod(&self) -> Tensor {
        prod_impl(self, (0..self.ndim()).collect(), false)
    }

    /// The product along `dim`, like `x.prod(dim, keepdim)`.
    ///
    /// # Panics
    /// If `dim` is out of range, or the tensor is not floating point.
    #[track_caller]
    pub fn prod_dim(&self, dim: impl Dim, keepdim: bool) -> Tensor {
        let dims = one_dim("prod", dim.as_isize(), self.ndim());
        prod_impl(self, dims, keepdim)
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::reduce::tests::check_second_order;
    use crate::prelude::*;
    use crate::testing::{randn64, randn64_t};

    fn t(v: Vec<f64>, shape: &[usize]) -> Tensor {
        Tensor::from_vec_f64(v, shape)
    }

    #[test]
    fn prod_values() {
        let x = t(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
        assert_eq!(x.prod().item(), 720.0);
        assert_eq!(x.prod_dim(1, false).to_vec::<f64>(), vec![6.0, 120.0]);
        assert_eq!(x.prod_dim(-2, true).to_vec::<f64>(), vec![4.0, 10.0, 18.0]);
        assert_eq!(x.prod_dim(-2, true).shape(), &[1, 3]);
        assert_eq!(x.t().prod_dim(0, false).to_vec::<f64>(), vec![6.0, 120.0]);
        assert_eq!(Tensor::zeros_dtype(&[0], DType::F64).prod().item(), 1.0);
    }

    #[test]
    fn prod_gradcheck() {
        for x in [randn64(&[3, 4, 2], 1), randn64_t(&[4, 3, 2], 2)] {
            let x = std::slice::from_ref(&x);
            gradcheck(|x| x[0].prod(), x).unwrap();
            for keepdim in [false, true] {
                gradcheck(|x| x[0].prod_dim(1, keepdim), x).unwrap();
                gradcheck(|x| x[0].prod_dim(-1, keepdim), x).unwrap();
                gradcheck(|x| x[0].prod_dim(-3, keepdim), x).unwrap();
            }
        }
    }

    #[test]
    fn prod_gradcheck_with_one_zero_per_lane() {
        // lane 0 holds one zero, lane 1 none, lane 2 two zeros; the product is a polynomial, so
        // central differences are exact at zeros too
        let x = t(vec![2.0, 0.0, 3.0, 1.5, -2.0, 0.5, 0.0, 4.0, 0.0], &[3, 3]);
        gradcheck(|x| x[0].prod_dim(1, false), std::slice::from_ref(&x)).unwrap();
        gradcheck(|x| x[0].prod_dim(0, true), std::slice::from_ref(&x)).unwrap();
        gradcheck(|x| x[0].prod(), &[x]).unwrap();
    }

    #[test]
    fn prod_gradient_at_zeros_matches_pytorch() {
        // one zero: d/dx_zero = Π others, the rest 0; two zeros: all 0
        let x = t(vec![2.0, 0.0, 3.0, 0.0, 5.0, 0.0], &[2, 3]).requires_grad();
        x.prod_dim(1, false).sum().backward();
        assert_eq!(
            x.grad().unwrap().to_vec::<f64>(),
            vec![0., 6., 0., 0., 0., 0.]
        );
        let y = t(vec![2.0, 0.0, 0.0], &[3]).requires_grad();
        y.prod().backward();
        assert_eq!(y.grad().unwrap().to_vec::<f64>(), vec![0.0; 3]);
        let z = t(vec![2.0, -1.0, 3.0], &[3]).requires_grad();
        z.prod().backward();
        assert_eq!(z.grad().unwrap().to_vec::<f64>(), vec![-3.0, 6.0, -2.0]);
    }

    #[test]
    fn prod_second_order_without_and_with_one_zero() {
        check_second_order(|x| x.prod_dim(1, false), &randn64(&[2, 4], 3));
        let x = t(vec![2.0, 0.0, 3.0, -1.0, 1.5, 0.5, 2.0, 4.0], &[2, 4]);
        check_second_order(|x| x.prod_dim(-1, true), &x);
        check_second_order(|x| x.prod(), &randn64_t(&[3, 2], 4));
    }

    #[test]
    #[should_panic(expected = "prod: dimension out of range")]
    fn prod_dim_out_of_range_names_the_op() {
        let _ = Tensor::zeros(&[2, 3]).prod_dim(-3, false);
    }
}
