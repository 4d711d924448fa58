//! `backward()` and the autograd state of tensors: which tensors get gradients, how they
//! accumulate, how graphs are cut (`detach`, `no_grad`) and how ops are named on the tape.

mod common;

use common::{assert_close, panic_message};
use tapegrad::prelude::*;

fn f64s(v: &[f64]) -> Tensor {
    Tensor::from_vec_f64(v.to_vec(), &[v.len()])
}

// ----- accumulation --------------------------------------------------------------------------

#[test]
fn gradients_accumulate_across_backward_calls_until_zero_grad() {
    // y = Σ x², dy/dx = 2x
    let x = f64s(&[1.0, -2.0, 3.0]).requires_grad();
    (&x * &x).sum().backward();
    assert_eq!(x.grad().unwrap().to_vec::<f64>(), vec![2.0, -4.0, 6.0]);
    (&x * &x).sum().backward();
    assert_eq!(x.grad().unwrap().to_vec::<f64>(), vec![4.0, -8.0, 12.0]);

    x.zero_grad();
    assert!(
        x.grad().is_none(),
        "zero_grad clears .grad like `x.grad = None`"
    );
    (&x * &x).sum().backward();
    assert_eq!(x.grad().unwrap().to_vec::<f64>(), vec![2.0, -4.0, 6.0]);
}

#[test]
fn backward_of_a_leaf_scalar_gives_a_gradient_of_one() {
    let x = Tensor::from_vec_f64(vec![5.0], &[]).requires_grad();
    x.backward();
    assert_eq!(x.grad().unwrap().item(), 1.0);
    assert_eq!(x.grad().unwrap().shape(), &[] as &[usize]);
}

#[test]
fn gradient_has_the_shape_and_dtype_of_the_leaf() {
    let w = Tensor::ones(&[2, 3]).requires_grad();
    let b = Tensor::ones(&[3]).requires_grad();
    (&w + &b).sum().backward(); // b is broadcast over the rows
    assert_eq!(w.grad().unwrap().shape(), &[2, 3]);
    assert_eq!(w.grad().unwrap().dtype(), DType::F32);
    // d/db Σ_ij (w_ij + b_j) = number of rows
    assert_eq!(b.grad().unwrap().to_vec::<f32>(), vec![2.0, 2.0, 2.0]);
}

// ----- non-scalar outputs --------------------------------------------------------------------

#[test]
fn backward_with_gives_the_vector_jacobian_product() {
    // y = x², backward_with(v) gives vᵀ J = v ⊙ 2x
    let x = f64s(&[1.0, 2.0, 3.0]).requires_grad();
    let y = &x * &x;
    y.backward_with(&f64s(&[1.0, 0.5, -1.0]));
    assert_eq!(x.grad().unwrap().to_vec::<f64>(), vec![2.0, 2.0, -6.0]);
}

#[test]
fn backward_on_a_non_scalar_without_a_gradient_panics_with_a_clear_message() {
    let x = Tensor::ones(&[2, 3]).requires_grad();
    let y = &x * 2.0;
    let msg = panic_message(|| y.backward());
    assert!(
        msg.contains("only for scalar outputs"),
        "the message says why: {msg}"
    );
    assert!(msg.contains("[2, 3]"), "the message names the shape: {msg}");
    assert!(
        msg.contains("backward_with"),
        "the message names the fix: {msg}"
    );
    assert!(msg.contains(file!()), "the message names the caller: {msg}");
}

#[test]
#[should_panic(expected = "backward: gradient of shape [2] does not match output of shape [3]")]
fn backward_with_a_gradient_of_the_wrong_shape_panics() {
    let x = f64s(&[1.0, 2.0, 3.0]).requires_grad();
    (&x * 2.0).backward_with(&f64s(&[1.0, 1.0]));
}

#[test]
#[should_panic(expected = "backward: gradient dtype float32 does not match output dtype float64")]
fn backward_with_a_gradient_of_the_wrong_dtype_panics() {
    let x = f64s(&[1.0, 2.0]).requires_grad();
    (&x * 2.0).backward_with(&Tensor::ones(&[2]));
}

#[test]
#[should_panic(expected = "does not require grad and has no grad_fn")]
fn backward_on_a_tensor_that_does_not_require_grad_panics() {
    let x = f64s(&[1.0, 2.0]);
    (&x * 2.0).sum().backward();
}

// ----- which tensors get gradients -----------------------------------------------------------

#[test]
fn leaves_that_do_not_require_grad_get_no_gradient() {
    let c = f64s(&[1.0, 2.0]);
    let x = f64s(&[3.0, 4.0]).requires_grad();
    (&c * &x).sum().backward();
    assert!(c.grad().is_none());
    assert_eq!(x.grad().unwrap().to_vec::<f64>(), vec![1.0, 2.0]); // d(c·x)/dx = c
}

#[test]
fn non_leaves_get_no_gradient_unless_they_retain_it() {
    // h = 2x, y = Σ h², dy/dh = 2h
    let x = f64s(&[1.0, -1.5]).requires_grad();
    let h = &x * 2.0;
    (&h * &h).sum().backward();
    assert!(h.grad().is_none());

    let h = &x * 2.0;
    h.retain_grad();
    (&h * &h).sum().backward();
    assert_eq!(h.grad().unwrap().to_vec::<f64>(), vec![4.0, -6.0]);
    assert!(!h.grad().unwrap().requires_grad_enabled());
}

#[test]
fn retain_grad_accumulates_like_a_leaf_gradient() {
    let x = f64s(&[1.0, 2.0]).requires_grad();
    let h = &x * 3.0;
    h.retain_grad();
    // y = Σ h (twice through retain_graph), dy/dh = 1 each time
    let y = h.sum();
    y.backward_opts(
        &Tensor::ones_like(&y),
        BackwardOptions {
            retain_graph: true,
            ..Default::default()
        },
    );
    y.backward();
    assert_eq!(h.grad().unwrap().to_vec::<f64>(), vec![2.0, 2.0]);
    assert_eq!(x.grad().unwrap().to_vec::<f64>(), vec![6.0, 6.0]);
}

#[test]
fn retain_grad_on_a_leaf_changes_nothing() {
    let x = f64s(&[1.0, 2.0]).requires_grad();
    x.retain_grad();
    (&x * 3.0).sum().backward();
    assert_eq!(x.grad().unwrap().to_vec::<f64>(), vec![3.0, 3.0]);
}

#[test]
fn a_tensor_used_twice_gets_both_contributions() {
    // d(x·x)/dx = x + x = 2x
    let x = f64s(&[1.5, -2.0]).requires_grad();
    (&x * &x).sum().backward();
    assert_eq!(x.grad().unwrap().to_vec::<f64>(), vec![3.0, -4.0]);

    // d(x + x)/dx = 2
    let x = f64s(&[1.5, -2.0]).requires_grad();
    (&x + &x).sum().backward();
    assert_eq!(x.grad().unwrap().to_vec::<f64>(), vec![2.0, 2.0]);
}

#[test]
fn an_intermediate_used_by_several_ops_gets_the_sum_of_their_gradients() {
    // a = eˣ, y = a·a + a  ⇒  dy/dx = (2a + 1)·a
    let xs = [0.3, -0.7];
    let x = f64s(&xs).requires_grad();
    let a = x.exp();
    (&a * &a + &a).sum().backward();
    let expected: Vec<f64> = xs
        .iter()
        .map(|v: &f64| (2.0 * v.exp() + 1.0) * v.exp())
        .collect();
    assert_close(&x.grad().unwrap().to_vec::<f64>(), &expected, 1e-12);
}

// ----- detach and requires_grad_ -------------------------------------------------------------

#[test]
fn detach_cuts_the_graph() {
    // z = Σ detach(x²)·x: the detached factor is a constant, so dz/dx = x², not 3x²
    let x = f64s(&[1.0, 2.0, 3.0]).requires_grad();
    let y = &x * &x;
    let d = y.detach();
    assert!(d.is_leaf());
    assert!(!d.requires_grad_enabled());
    assert!(d.grad_fn().is_none());
    assert_eq!(d.to_vec::<f64>(), y.to_vec::<f64>());
    (&d * &x).sum().backward();
    assert_eq!(x.grad().unwrap().to_vec::<f64>(), vec![1.0, 4.0, 9.0]);
}

#[test]
fn detach_shares_the_storage() {
    let x = f64s(&[1.0, 2.0]);
    let d = x.detach();
    assert_eq!(
        x.to_ndarray::<f64>().as_ptr(),
        d.to_ndarray::<f64>().as_ptr()
    );
}

#[test]
fn requires_grad_can_be_switched_on_and_off_on_leaves() {
    let x = f64s(&[1.0, 2.0]);
    assert!(!x.requires_grad_enabled());
    x.requires_grad_(true);
    assert!(x.requires_grad_enabled() && x.is_requires_grad());
    assert_eq!((&x * 2.0).grad_fn(), Some("mul"));

    x.requires_grad_(false);
    assert!(!x.requires_grad_enabled());
    let y = &x * 2.0;
    assert!(
        y.grad_fn().is_none() && !y.requires_grad_enabled(),
        "nothing is recorded once the leaf stops requiring grad"
    );
}

#[test]
fn requires_grad_on_a_non_leaf_panics_naming_its_op_and_the_fix() {
    let x = f64s(&[1.0, 2.0]).requires_grad();
    let y = x.tanh();
    let msg = panic_message(|| {
        y.requires_grad_(false);
    });
    assert!(
        msg.starts_with("requires_grad_: only leaf tensors"),
        "{msg}"
    );
    assert!(msg.contains("'tanh'"), "names the op that made it: {msg}");
    assert!(msg.contains(".detach()"), "names the fix: {msg}");
    assert!(msg.contains(file!()), "names the caller: {msg}");
}

#[test]
#[should_panic(expected = "requires_grad_: only floating-point tensors can require gradients")]
fn requires_grad_on_an_integer_tensor_panics() {
    let _ = Tensor::from_vec_i64(vec![1, 2], &[2]).requires_grad();
}

// ----- grad modes ----------------------------------------------------------------------------

#[test]
fn no_grad_records_nothing() {
    let x = f64s(&[1.0, 2.0]).requires_grad();
    let before = tapegrad::autograd::tape::len();
    let y = {
        let _g = no_grad();
        (&x * 2.0).exp().sum()
    };
    assert!(y.is_leaf() && !y.requires_grad_enabled() && y.grad_fn().is_none());
    assert_eq!(tapegrad::autograd::tape::len(), before);
}

#[test]
fn no_grad_guards_nest_and_each_restores_the_mode_it_found() {
    assert!(is_grad_enabled());
    {
        let _outer = no_grad();
        assert!(!is_grad_enabled());
        {
            let _inner = no_grad();
            assert!(!is_grad_enabled());
        }
        assert!(
            !is_grad_enabled(),
            "dropping the inner guard keeps the outer one"
        );
    }
    assert!(is_grad_enabled());
}

#[test]
fn enable_grad_inside_no_grad_records_again() {
    let x = f64s(&[1.0, 2.0]).requires_grad();
    let _off = no_grad();
    let y = {
        let _on = enable_grad();
        assert!(is_grad_enabled());
        (&x * &x).sum()
    };
    assert!(!is_grad_enabled(), "back to no_grad after the inner guard");
    assert_eq!(y.grad_fn(), Some("sum"));
    y.backward();
    assert_eq!(x.grad().unwrap().to_vec::<f64>(), vec![2.0, 4.0]);
}

#[test]
fn set_grad_enabled_switches_recording_either_way() {
    let x = f64s(&[1.0]).requires_grad();
    {
        let _g = set_grad_enabled(false);
        assert!((&x * 2.0).grad_fn().is_none());
        let _h = set_grad_enabled(true);
        assert_eq!((&x * 2.0).grad_fn(), Some("mul"));
    }
    assert!(is_grad_enabled());
}

#[test]
fn no_grad_is_thread_local() {
    let _g = no_grad();
    assert!(!is_grad_enabled());
    let other = std::thread::spawn(|| {
        let x = Tensor::ones(&[2]).requires_grad();
        (is_grad_enabled(), (&x * 2.0).grad_fn())
    })
    .join()
    .unwrap();
    assert_eq!(other, (true, Some("mul")), "another thread still records");
    assert!(!is_grad_enabled(), "and this thread still does not");
}

#[test]
fn backward_works_inside_no_grad_on_a_graph_recorded_before() {
    // As in PyTorch: no_grad stops recording, not differentiating what was recorded.
    let x = f64s(&[1.0, 2.0]).requires_grad();
    let y = (&x * &x).sum();
    let _g = no_grad();
    y.backward();
    assert_eq!(x.grad().unwrap().to_vec::<f64>(), vec![2.0, 4.0]);
    assert!(!is_grad_enabled(), "backward restores the mode it found");
}

#[test]
fn grad_mode_is_restored_when_a_panic_unwinds_through_the_guard() {
    let r = std::panic::catch_unwind(|| {
        let _g = no_grad();
        panic!("boom");
    });
    assert!(r.is_err());
    assert!(is_grad_enabled());
}

// ----- grad_fn -------------------------------------------------------------------------------

#[test]
fn grad_fn_names_the_op_that_produced_a_tensor() {
    let x = Tensor::ones(&[2, 3]).requires_grad();
    let w = Tensor::ones(&[3, 4]);
    assert_eq!(x.grad_fn(), None, "leaves have no grad_fn");
    assert_eq!((&x + 1.0).grad_fn(), Some("add"));
    assert_eq!((&x - 1.0).grad_fn(), Some("sub"));
    assert_eq!((&x * 2.0).grad_fn(), Some("mul"));
    assert_eq!((&x / 2.0).grad_fn(), Some("div"));
    assert_eq!(x.tanh().grad_fn(), Some("tanh"));
    assert_eq!(x.exp().grad_fn(), Some("exp"));
    assert_eq!(x.powf(3.0).grad_fn(), Some("pow_scalar"));
    assert_eq!(x.matmul(&w).grad_fn(), Some("matmul"));
    assert_eq!(x.sum().grad_fn(), Some("sum"));
    assert_eq!(x.reshape([3, 2]).grad_fn(), Some("reshape"));
    assert_eq!(x.t().grad_fn(), Some("permute"));
    assert_eq!(
        w.matmul(&w.t()).grad_fn(),
        None,
        "ops on tensors that do not require grad are not recorded"
    );
}

#[test]
fn updating_a_parameter_in_place_after_forward_does_not_change_its_gradient() {
    // y = Σ w·x with w saved for backward; dy/dx = w as it was in forward, even if w is then
    // overwritten in place (as an optimizer step would) before backward runs.
    let w = Tensor::from_vec(vec![1.0, 2.0], &[2]).requires_grad();
    let x = Tensor::from_vec(vec![3.0, 4.0], &[2]).requires_grad();
    let y = (&w * &x).sum();
    {
        let _g = no_grad();
        w.assign(&Tensor::from_vec(vec![10.0, 20.0], &[2]));
    }
    y.backward();
    assert_eq!(x.grad().unwrap().to_vec::<f32>(), vec![1.0, 2.0]);
    assert_eq!(w.grad().unwrap().to_vec::<f32>(), vec![3.0, 4.0]);
}
