//! Anomaly detection: under `detect_anomaly()` the first NaN or infinity panics, naming the op
//! and the user's source line; without it, NaNs propagate silently as in PyTorch.

mod common;

use common::panic_message;
use tapegrad::prelude::*;

fn f64s(v: &[f64]) -> Tensor {
    Tensor::from_vec_f64(v.to_vec(), &[v.len()])
}

/// `file:line` of this test file, as the messages print it.
fn here(line: u32) -> String {
    format!("{}:{line}", file!())
}

#[test]
fn a_nan_in_forward_panics_naming_the_op_and_the_callers_line() {
    let x = f64s(&[1.0, -1.0]).requires_grad();
    let _a = detect_anomaly();
    let line = line!() + 1;
    let msg = panic_message(|| drop(x.log()));
    assert!(msg.contains("'log'"), "names the op: {msg}");
    assert!(msg.contains(&here(line)), "names the caller's line: {msg}");
    assert!(msg.contains("NaN"), "{msg}");
}

#[test]
fn zero_divided_by_zero_in_forward_panics_naming_div() {
    let x = f64s(&[0.0, 1.0]).requires_grad();
    let _a = detect_anomaly();
    let line = line!() + 1;
    let msg = panic_message(|| drop(&x / &f64s(&[0.0, 2.0])));
    assert!(msg.contains("'div'"), "{msg}");
    assert!(msg.contains(&here(line)), "{msg}");
}

#[test]
fn an_infinity_in_forward_panics_too() {
    // e^1000 overflows f32
    let x = Tensor::from_vec(vec![1000.0], &[1]);
    let _a = detect_anomaly();
    let msg = panic_message(|| drop(x.exp()));
    assert!(msg.contains("'exp'") && msg.contains("infinity"), "{msg}");
}

#[test]
fn forward_checks_apply_to_tensors_that_do_not_require_grad() {
    let x = f64s(&[-1.0]);
    let _a = detect_anomaly();
    let msg = panic_message(|| drop(x.sqrt()));
    assert!(msg.contains("'sqrt'"), "{msg}");
}

#[test]
fn an_infinity_produced_only_in_backward_panics_naming_the_op() {
    // √x at 0: forward 0 (fine), backward 1 / (2√0) = inf
    let x = f64s(&[0.0, 4.0]).requires_grad();
    let _a = detect_anomaly();
    let line = line!() + 1;
    let y = x.sqrt().sum();
    let msg = panic_message(|| y.backward());
    assert!(
        msg.contains("backward"),
        "says it happened in backward: {msg}"
    );
    assert!(msg.contains("'sqrt'"), "names the op: {msg}");
    assert!(
        msg.contains(&here(line)),
        "names where the op was called: {msg}"
    );
}

#[test]
fn an_infinity_in_backward_is_reported_at_the_latest_by_the_gradient_check() {
    // The backward of √x at 0 panics under detect_anomaly, whichever check sees it first.
    let x = f64s(&[0.0, 4.0]).requires_grad();
    let _a = detect_anomaly();
    let y = x.sqrt().sum();
    let msg = panic_message(|| y.backward());
    assert!(msg.starts_with("detect_anomaly:"), "{msg}");
    assert!(msg.contains("infinity"), "{msg}");
}

#[test]
fn without_detect_anomaly_nans_and_infinities_propagate_silently() {
    let x = f64s(&[-1.0, 0.0]).requires_grad();
    let y = x.log(); // [NaN, -inf]
    let v = y.to_vec::<f64>();
    assert!(v[0].is_nan() && v[1] == f64::NEG_INFINITY);

    let z = f64s(&[0.0]).requires_grad();
    z.sqrt().sum().backward(); // d√z/dz at 0 = inf
    assert_eq!(z.grad().unwrap().item(), f64::INFINITY);
}

#[test]
fn the_guard_is_scoped_nestable_and_thread_local() {
    let x = f64s(&[-1.0]);
    {
        let _outer = detect_anomaly();
        {
            let _inner = detect_anomaly();
        }
        assert!(
            tapegrad::autograd::mode::is_anomaly_enabled(),
            "the outer guard still holds"
        );
        let other = std::thread::spawn(move || x.log().to_vec::<f64>()[0].is_nan())
            .join()
            .expect("another thread does not check");
        assert!(other);
    }
    assert!(!tapegrad::autograd::mode::is_anomaly_enabled());
    assert!(f64s(&[-1.0]).log().to_vec::<f64>()[0].is_nan());
}

#[test]
fn finite_values_pass_under_detect_anomaly() {
    let _a = detect_anomaly();
    let x = f64s(&[0.5, 2.0]).requires_grad();
    let y = x.log().sum() + x.sqrt().sum();
    y.backward();
    // d/dx (ln x + √x) = 1/x + 1/(2√x)
    let expected: Vec<f64> = [0.5f64, 2.0]
        .iter()
        .map(|v| 1.0 / v + 0.5 / v.sqrt())
        .collect();
    common::assert_close(&x.grad().unwrap().to_vec::<f64>(), &expected, 1e-12);
}
