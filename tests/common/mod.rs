//! Helpers shared by the integration tests (each test file includes this with `mod common;`).

#![allow(dead_code)] // each test file uses a different subset

use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `f`, which must panic, and returns the panic message.
///
/// Use it where a test checks several things about one message (`#[should_panic(expected)]`
/// can check only one substring).
pub fn panic_message(f: impl FnOnce()) -> String {
    let payload = catch_unwind(AssertUnwindSafe(f)).expect_err("expected a panic, got none");
    payload_message(payload.as_ref())
}

/// The message of a panic payload (from `catch_unwind` or `JoinHandle::join`).
pub fn payload_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else {
        "<a panic payload that is not a string>".to_string()
    }
}

/// Asserts that two sequences have the same length and agree within `tol` everywhere.
#[track_caller]
pub fn assert_close(actual: &[f64], expected: &[f64], tol: f64) {
    assert_eq!(
        actual.len(),
        expected.len(),
        "lengths differ: {actual:?} vs {expected:?}"
    );
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert!(
            (a - e).abs() <= tol * (1.0 + e.abs()),
            "element {i}: got {a}, expected {e} (tolerance {tol})\n  actual:   {actual:?}\n  expected: {expected:?}"
        );
    }
}
