//! Making tensors and reading them back: constructors, random generation and its seeds, errors
//! of `from_vec`, ndarray interop (zero-copy both ways), shape queries, and what a clone shares.

use ndarray::{array, Array2, ArrayD, IxDyn};
use tapegrad::prelude::*;

// ----- constructors --------------------------------------------------------------------------

#[test]
fn filled_constructors_give_the_shape_dtype_and_value_asked_for() {
    let z = Tensor::zeros(&[2, 3]);
    assert_eq!((z.shape(), z.dtype()), (&[2usize, 3][..], DType::F32));
    assert_eq!(z.to_vec::<f32>(), vec![0.0; 6]);
    assert_eq!(Tensor::ones(&[4]).to_vec::<f32>(), vec![1.0; 4]);
    assert_eq!(Tensor::full(&[2], 2.5).to_vec::<f32>(), vec![2.5, 2.5]);
    assert_eq!(
        Tensor::full_dtype(&[2], 7.0, DType::I64).to_vec::<i64>(),
        vec![7, 7]
    );
    assert_eq!(
        Tensor::zeros_dtype(&[1], DType::F64).to_vec::<f64>(),
        vec![0.0]
    );
    assert_eq!(
        Tensor::ones_dtype(&[2], DType::Bool).to_vec::<bool>(),
        vec![true, true]
    );

    let like = Tensor::from_vec_f64(vec![1.0, 2.0, 3.0], &[3, 1]);
    for (t, v) in [
        (Tensor::zeros_like(&like), 0.0),
        (Tensor::ones_like(&like), 1.0),
        (Tensor::full_like(&like, -4.0), -4.0),
    ] {
        assert_eq!((t.shape(), t.dtype()), (&[3usize, 1][..], DType::F64));
        assert_eq!(t.to_vec::<f64>(), vec![v; 3]);
    }
}

#[test]
fn scalars_are_zero_dimensional() {
    let s = Tensor::scalar(3.5);
    assert_eq!((s.ndim(), s.numel(), s.item()), (0, 1, 3.5));
    let s = Tensor::scalar_of(2.0, DType::I64);
    assert_eq!((s.dtype(), s.item()), (DType::I64, 2.0));
}

#[test]
fn eye_is_the_identity_matrix() {
    let i = Tensor::eye(3);
    assert_eq!(i.shape(), &[3, 3]);
    assert_eq!(
        i.to_vec::<f32>(),
        vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    );
    let m = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0], &[3, 3]);
    assert_eq!(m.matmul(&i).to_vec::<f32>(), m.to_vec::<f32>());
}

#[test]
fn arange_excludes_the_end_and_follows_the_step_sign() {
    assert_eq!(
        Tensor::arange(0.0, 5.0, 1.0).to_vec::<f32>(),
        vec![0.0, 1.0, 2.0, 3.0, 4.0]
    );
    assert_eq!(
        Tensor::arange(1.0, 2.0, 0.25).to_vec::<f32>(),
        vec![1.0, 1.25, 1.5, 1.75]
    );
    assert_eq!(
        Tensor::arange(3.0, 0.0, -1.0).to_vec::<f32>(),
        vec![3.0, 2.0, 1.0]
    );
    assert_eq!(Tensor::arange(2.0, 2.0, 1.0).numel(), 0);
    let idx = Tensor::arange_dtype(0.0, 3.0, 1.0, DType::I64);
    assert_eq!(idx.to_vec::<i64>(), vec![0, 1, 2]);
}

#[test]
#[should_panic(expected = "arange: step 1 cannot go from 3 to 0")]
fn arange_with_a_step_of_the_wrong_sign_panics() {
    Tensor::arange(3.0, 0.0, 1.0);
}

#[test]
fn linspace_includes_both_ends() {
    assert_eq!(
        Tensor::linspace(0.0, 1.0, 5).to_vec::<f32>(),
        vec![0.0, 0.25, 0.5, 0.75, 1.0]
    );
    assert_eq!(Tensor::linspace(2.0, 3.0, 1).to_vec::<f32>(), vec![2.0]);
    assert_eq!(Tensor::linspace(2.0, 3.0, 0).numel(), 0);
}

// ----- random --------------------------------------------------------------------------------

#[test]
fn random_constructors_draw_from_the_right_ranges_and_distributions() {
    let mut g = Generator::new(11);
    let r = Tensor::rand_with(&[10_000], &mut g).to_vec::<f32>();
    assert!(r.iter().all(|&v| (0.0..1.0).contains(&v)));
    let mean = r.iter().sum::<f32>() / r.len() as f32;
    assert!(
        (mean - 0.5).abs() < 0.02,
        "mean of U[0,1) ≈ 1/2, got {mean}"
    );

    let n = Tensor::randn_with(&[10_000], &mut g).to_vec::<f32>();
    let mean = n.iter().sum::<f32>() / n.len() as f32;
    let var = n.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / n.len() as f32;
    assert!(
        mean.abs() < 0.05 && (var - 1.0).abs() < 0.05,
        "N(0,1): {mean}, {var}"
    );

    let u = Tensor::uniform_with(&[1000], -2.0, 3.0, &mut g).to_vec::<f32>();
    assert!(u.iter().all(|&v| (-2.0..3.0).contains(&v)));
    assert!(u.iter().any(|&v| v < -1.5) && u.iter().any(|&v| v > 2.5));

    let k = Tensor::randint_with(-3, 4, &[1000], &mut g);
    assert_eq!(k.dtype(), DType::I64);
    let k = k.to_vec::<i64>();
    assert!(k.iter().all(|v| (-3..4).contains(v)));
    for v in -3..4 {
        assert!(
            k.contains(&v),
            "every value in [-3, 4) appears, missing {v}"
        );
    }
}

#[test]
fn the_same_generator_seed_gives_the_same_numbers() {
    let draw = |seed| {
        let mut g = Generator::new(seed);
        (
            Tensor::rand_with(&[5], &mut g).to_vec::<f32>(),
            Tensor::randn_with(&[5], &mut g).to_vec::<f32>(),
            Tensor::uniform_with(&[5], 1.0, 2.0, &mut g).to_vec::<f32>(),
            Tensor::randint_with(0, 100, &[5], &mut g).to_vec::<i64>(),
        )
    };
    assert_eq!(draw(5), draw(5));
    assert_ne!(draw(5), draw(6));

    let mut g = Generator::new(5);
    let a = Tensor::randn_with(&[3], &mut g).to_vec::<f32>();
    g.manual_seed(5);
    assert_eq!(Tensor::randn_with(&[3], &mut g).to_vec::<f32>(), a);
}

#[test]
fn manual_seed_makes_the_global_generator_reproducible() {
    // The global generator is shared by every test thread of this binary, so this is the only
    // test here that draws from it.
    let draw = || {
        (
            Tensor::rand(&[4]).to_vec::<f32>(),
            Tensor::randn(&[4]).to_vec::<f32>(),
            Tensor::uniform(&[4], -1.0, 1.0).to_vec::<f32>(),
            Tensor::normal(&[4], 10.0, 0.1).to_vec::<f32>(),
            Tensor::randint(0, 10, &[4]).to_vec::<i64>(),
            Tensor::randperm(6).to_vec::<i64>(),
        )
    };
    manual_seed(123);
    let first = draw();
    manual_seed(123);
    assert_eq!(draw(), first);
    let again = draw();
    assert_ne!(again, first, "the stream moves on without a reseed");

    let mut perm = first.5.clone();
    perm.sort();
    assert_eq!(perm, vec![0, 1, 2, 3, 4, 5]);
    assert!(first.3.iter().all(|v| (v - 10.0).abs() < 1.0));
}

#[test]
#[should_panic(expected = "randint: low (5) must be less than high (5)")]
fn randint_with_an_empty_range_panics() {
    Tensor::randint_with(5, 5, &[2], &mut Generator::new(0));
}

// ----- from data -----------------------------------------------------------------------------

#[test]
fn from_values_picks_the_dtype_from_the_element_type() {
    assert_eq!(Tensor::from_values(vec![1.0f32], &[1]).dtype(), DType::F32);
    assert_eq!(Tensor::from_values(vec![1.0f64], &[1]).dtype(), DType::F64);
    assert_eq!(Tensor::from_values(vec![1i64], &[1]).dtype(), DType::I64);
    assert_eq!(Tensor::from_values(vec![true], &[1]).dtype(), DType::Bool);
    assert_eq!(Tensor::from_vec_f64(vec![1.0], &[1]).dtype(), DType::F64);
    assert_eq!(Tensor::from_vec_i64(vec![1], &[1]).dtype(), DType::I64);
}

#[test]
fn values_are_row_major() {
    let t = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
    let a = t.to_ndarray::<f32>();
    assert_eq!((a[[0, 2]], a[[1, 0]]), (3.0, 4.0));
}

#[test]
fn try_from_values_reports_a_shape_mismatch_as_an_error() {
    let e = Tensor::try_from_values(vec![1.0f32; 5], &[2, 3]).unwrap_err();
    assert!(matches!(e, tapegrad::Error::Shape(_)));
    let msg = e.to_string();
    assert!(
        msg.contains("5 values") && msg.contains("[2, 3]") && msg.contains("6 elements"),
        "{msg}"
    );
    assert!(Tensor::try_from_values(vec![1i64; 6], &[2, 3]).is_ok());
}

#[test]
#[should_panic(expected = "5 values cannot be shaped as [2, 3] (6 elements)")]
fn from_vec_with_a_shape_mismatch_panics() {
    Tensor::from_vec(vec![0.0; 5], &[2, 3]);
}

#[test]
fn item_reads_a_one_element_tensor_of_any_dtype() {
    assert_eq!(Tensor::from_vec(vec![2.5], &[1, 1]).item(), 2.5);
    assert_eq!(Tensor::from_vec_i64(vec![-7], &[1]).item(), -7.0);
    assert_eq!(Tensor::from_values(vec![true], &[]).item(), 1.0);
}

#[test]
#[should_panic(
    expected = "item: a tensor with 3 elements (shape [3]) cannot be converted to a scalar"
)]
fn item_on_several_elements_panics() {
    Tensor::ones(&[3]).item();
}

#[test]
#[should_panic(expected = "to_vec: asked for float64 elements but the tensor holds float32")]
fn to_vec_of_the_wrong_element_type_panics() {
    Tensor::ones(&[3]).to_vec::<f64>();
}

#[test]
fn to_vec_f64_converts_any_dtype() {
    assert_eq!(
        Tensor::from_vec_i64(vec![1, 2], &[2]).to_vec_f64(),
        vec![1.0, 2.0]
    );
    assert_eq!(
        Tensor::from_values(vec![true, false], &[2]).to_vec_f64(),
        vec![1.0, 0.0]
    );
}

#[test]
fn to_vec_of_a_non_contiguous_tensor_is_in_logical_order() {
    let t = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).t();
    assert!(!t.is_contiguous());
    assert_eq!(t.to_vec::<f32>(), vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
}

// ----- shape queries -------------------------------------------------------------------------

#[test]
fn shape_queries() {
    let t = Tensor::zeros(&[2, 3, 4]);
    assert_eq!(t.shape(), &[2, 3, 4]);
    assert_eq!(t.size(), t.shape());
    assert_eq!((t.ndim(), t.dim(), t.numel()), (3, 3, 24));
    assert_eq!(t.stride(), vec![12, 4, 1]);
    assert!(t.is_contiguous());
    assert_eq!(t.nbytes(), 24 * 4);
    assert_eq!(Tensor::zeros(&[0, 5]).numel(), 0);
}

// ----- ndarray interop -----------------------------------------------------------------------

#[test]
fn from_an_ndarray_array_takes_its_buffer_without_copying() {
    let a: Array2<f64> = array![[1.0, 2.0], [3.0, 4.0]];
    let ptr = a.as_ptr();
    let t = Tensor::from(a);
    assert_eq!((t.shape(), t.dtype()), (&[2usize, 2][..], DType::F64));
    assert_eq!(t.to_ndarray::<f64>().as_ptr(), ptr);
    assert_eq!(t.to_vec::<f64>(), vec![1.0, 2.0, 3.0, 4.0]);
}

#[test]
fn from_an_arc_array_shares_its_buffer() {
    let a = ArrayD::from_shape_vec(IxDyn(&[3]), vec![1i64, 2, 3])
        .unwrap()
        .into_shared();
    let t = Tensor::from(a.clone());
    assert_eq!(t.to_ndarray::<i64>().as_ptr(), a.as_ptr());
}

#[test]
fn to_ndarray_shares_the_tensors_storage_and_copies_on_write() {
    let t = Tensor::from_vec(vec![1.0, 2.0, 3.0], &[3]);
    let a = t.to_ndarray::<f32>();
    let b = t.to_ndarray::<f32>();
    assert_eq!(a.as_ptr(), b.as_ptr());

    let mut c = t.to_ndarray::<f32>();
    c[[0]] = 100.0; // the buffer is shared, so this write copies first
    assert_eq!(c[[0]], 100.0);
    assert_eq!(
        t.to_vec::<f32>(),
        vec![1.0, 2.0, 3.0],
        "the tensor is untouched"
    );
    assert_ne!(c.as_ptr(), a.as_ptr());
}

#[test]
fn into_ndarray_round_trips() {
    let a = array![[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]].into_dyn();
    let back = Tensor::from(a.clone()).into_ndarray::<f32>();
    assert_eq!(back, a);
    let t = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).t();
    assert_eq!(
        t.into_ndarray::<f32>(),
        array![[1.0f32, 4.0], [2.0, 5.0], [3.0, 6.0]].into_dyn()
    );
}

#[test]
#[should_panic(expected = "to_ndarray: asked for int64 but the tensor holds float32")]
fn to_ndarray_of_the_wrong_element_type_panics() {
    Tensor::ones(&[1]).to_ndarray::<i64>();
}

// ----- handles -------------------------------------------------------------------------------

#[test]
fn tensors_are_send_and_sync() {
    fn is<T: Send + Sync>() {}
    is::<Tensor>();
}

#[test]
fn a_clone_is_another_handle_on_the_same_tensor() {
    let t = Tensor::from_vec(vec![1.0, 2.0], &[2]).requires_grad();
    let c = t.clone();
    assert!(c.same(&t));
    assert_eq!(
        c.to_ndarray::<f32>().as_ptr(),
        t.to_ndarray::<f32>().as_ptr()
    );

    (&t * 3.0).sum().backward();
    assert_eq!(
        c.grad().unwrap().to_vec::<f32>(),
        vec![3.0, 3.0],
        "the clone sees the grad"
    );

    {
        let _g = no_grad();
        t.assign(&Tensor::from_vec(vec![5.0, 6.0], &[2]));
    }
    assert_eq!(
        c.to_vec::<f32>(),
        vec![5.0, 6.0],
        "and values assigned in place"
    );

    c.zero_grad();
    assert!(t.grad().is_none());
    c.set_name("w");
    assert_eq!(t.name().as_deref(), Some("w"));
}

#[test]
fn equal_values_are_not_the_same_tensor() {
    let a = Tensor::ones(&[2]);
    let b = Tensor::ones(&[2]);
    assert!(!a.same(&b));
    assert!(
        !a.detach().same(&a),
        "detach makes a new tensor (on the same storage)"
    );
}

#[test]
#[should_panic(
    expected = "assign: source of shape [3] (float32) does not match tensor of shape [2] (float32)"
)]
fn assign_of_a_different_shape_panics() {
    Tensor::ones(&[2]).assign(&Tensor::ones(&[3]));
}

#[test]
#[should_panic(
    expected = "set_grad: gradient of shape [3] (float32) does not match tensor of shape [2]"
)]
fn set_grad_of_a_different_shape_panics() {
    Tensor::ones(&[2]).set_grad(Some(Tensor::ones(&[3])));
}
