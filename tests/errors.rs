//! Bad input: panics name the op, the shapes and the caller's line; `try_` forms return the same
//! message as an error for callers that must recover.

use tapegrad::prelude::*;
use tapegrad::Error;

#[test]
fn try_matmul_returns_the_shape_error() {
    let a = Tensor::zeros(&[2, 3]);
    let e = a.try_matmul(&Tensor::zeros(&[4, 5])).unwrap_err();
    assert!(matches!(e, Error::Shape(_)));
    assert_eq!(
        e.to_string(),
        "matmul: shapes [2, 3] and [4, 5] cannot be multiplied (2x3 and 4x5)"
    );
    // 1-d operands are promoted as in PyTorch before checking
    assert!(Tensor::zeros(&[3])
        .try_matmul(&Tensor::zeros(&[3, 2]))
        .is_ok());
    assert!(Tensor::zeros(&[3])
        .try_matmul(&Tensor::zeros(&[2]))
        .is_err());
    let e = a
        .try_matmul(&Tensor::zeros_dtype(&[3, 1], DType::F64))
        .unwrap_err();
    assert!(matches!(e, Error::DType(_)), "{e}");
}

#[test]
fn try_reshape_returns_the_size_error() {
    let x = Tensor::zeros(&[2, 3]);
    assert_eq!(x.try_reshape([3, -1]).unwrap().shape(), &[3, 2]);
    let e = x.try_reshape([4, -1]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "reshape: shape [4, -1] is invalid for input of size 6 (shape [2, 3])"
    );
    assert!(x.try_reshape([-1, -1]).is_err());
}

#[test]
fn try_cat_returns_the_mismatch() {
    let (a, b) = (Tensor::zeros(&[2, 3]), Tensor::zeros(&[2, 4]));
    assert_eq!(Tensor::try_cat(&[&a, &b], 1).unwrap().shape(), &[2, 7]);
    let e = Tensor::try_cat(&[&a, &b], 0).unwrap_err();
    assert!(
        e.to_string()
            .contains("sizes of tensors must match except in dim 0"),
        "{e}"
    );
    assert!(Tensor::try_cat(&[], 0).is_err());
    assert!(Tensor::try_cat(&[&a], 2).is_err());
}

#[test]
fn try_arithmetic_reports_broadcast_and_dtype_errors() {
    let a = Tensor::ones(&[2, 3]);
    assert_eq!(
        a.try_add(&Tensor::ones(&[3])).unwrap().to_vec::<f32>(),
        vec![2.0; 6]
    );
    let e = a.try_mul(&Tensor::ones(&[4])).unwrap_err();
    assert_eq!(
        e.to_string(),
        "mul: shapes [2, 3] and [4] cannot be broadcast together"
    );
    assert!(matches!(
        a.try_sub(&a.double()).unwrap_err(),
        Error::DType(_)
    ));
    assert!(a.try_div(&a).is_ok());
}

#[test]
fn panics_name_the_callers_line() {
    let line = line!() + 2;
    let r = std::panic::catch_unwind(|| {
        let _ = Tensor::zeros(&[2, 3]).matmul(&Tensor::zeros(&[4, 5]));
    });
    let msg = *r.unwrap_err().downcast::<String>().unwrap();
    assert!(
        msg.contains(&format!("at tests/errors.rs:{line}:")),
        "{msg}"
    );
}
