//! Hooks on the tape: `register_hook` (see and replace a gradient),
//! `register_post_accumulate_grad_hook` (a leaf's `.grad` is final for this pass) and
//! `queue_callback` (run once the pass has walked the tape), with PyTorch's semantics.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::{assert_close, panic_message};
use tapegrad::autograd::{queue_callback, BackwardOptions};
use tapegrad::prelude::*;

fn f64s(v: &[f64]) -> Tensor {
    Tensor::from_vec_f64(v.to_vec(), &[v.len()])
}

/// A shared log that hooks (which must be `Send + Sync + 'static`) can write to.
fn log<T: Send + 'static>() -> Arc<Mutex<Vec<T>>> {
    Arc::new(Mutex::new(Vec::new()))
}

fn take<T: Clone>(l: &Arc<Mutex<Vec<T>>>) -> Vec<T> {
    l.lock().unwrap().clone()
}

// ----- register_hook -------------------------------------------------------------------------

#[test]
fn hooks_run_in_registration_order_each_seeing_the_previous_result() {
    // y = Σ 2x, dy/dx = 2; hooks: +1, then ×10  ⇒  .grad = (2 + 1) × 10 = 30
    let x = f64s(&[1.0, 2.0]).requires_grad();
    let seen = log();
    let (s1, s2) = (seen.clone(), seen.clone());
    let _a = x.register_hook(move |g| {
        s1.lock().unwrap().push(("first", g.to_vec::<f64>()));
        Some(g + 1.0)
    });
    let _b = x.register_hook(move |g| {
        s2.lock().unwrap().push(("second", g.to_vec::<f64>()));
        Some(g * 10.0)
    });
    (&x * 2.0).sum().backward();
    assert_eq!(
        take(&seen),
        vec![("first", vec![2.0, 2.0]), ("second", vec![3.0, 3.0])]
    );
    assert_eq!(x.grad().unwrap().to_vec::<f64>(), vec![30.0, 30.0]);
}

#[test]
fn a_hook_on_a_leaf_rescales_the_gradient_before_it_is_accumulated() {
    // y = Σ x², dy/dx = 2x; the hook halves it  ⇒  .grad = x
    let x = f64s(&[3.0, -4.0]).requires_grad();
    let _h = x.register_hook(|g| Some(g * 0.5));
    (&x * &x).sum().backward();
    assert_eq!(x.grad().unwrap().to_vec::<f64>(), vec![3.0, -4.0]);
}

#[test]
fn a_hook_on_a_non_leaf_rescales_the_gradient_flowing_to_its_inputs() {
    // h = 3x, y = Σ h²: dy/dh = 2h = 6x; hook ×(-1)  ⇒  dy/dx = 3 × (-6x) = -18x
    let x = f64s(&[1.0, 2.0]).requires_grad();
    let h = &x * 3.0;
    let seen = log();
    let s = seen.clone();
    let _hk = h.register_hook(move |g| {
        s.lock().unwrap().push(g.to_vec::<f64>());
        Some(-g)
    });
    h.retain_grad();
    (&h * &h).sum().backward();
    assert_eq!(take(&seen), vec![vec![6.0, 12.0]]);
    assert_eq!(x.grad().unwrap().to_vec::<f64>(), vec![-18.0, -36.0]);
    // as in PyTorch, the retained .grad of a non-leaf is the gradient after its hooks
    assert_eq!(h.grad().unwrap().to_vec::<f64>(), vec![-6.0, -12.0]);
}

#[test]
fn a_hook_returning_none_leaves_the_gradient_unchanged() {
    // y = Σ x³, dy/dx = 3x²
    let x = f64s(&[1.0, 2.0]).requires_grad();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let _h = x.register_hook(move |_| {
        c.fetch_add(1, Ordering::SeqCst);
        None
    });
    x.powf(3.0).sum().backward();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(x.grad().unwrap().to_vec::<f64>(), vec![3.0, 12.0]);
}

#[test]
fn a_leaf_used_several_times_has_its_hooks_run_once_on_the_summed_gradient() {
    // y = Σ (x·x + 5x), dy/dx = 2x + 5: three uses of x, one hook call with the sum
    let x = f64s(&[1.0, -1.0]).requires_grad();
    let seen = log();
    let s = seen.clone();
    let _h = x.register_hook(move |g| {
        s.lock().unwrap().push(g.to_vec::<f64>());
        None
    });
    (&x * &x + &x * 5.0).sum().backward();
    assert_eq!(take(&seen), vec![vec![7.0, 3.0]]);
}

#[test]
fn removing_a_hook_through_its_handle_stops_it_and_keeps_the_others() {
    // y = Σ x, dy/dx = 1
    let x = f64s(&[1.0, 2.0]).requires_grad();
    let a = x.register_hook(|g| Some(g * 100.0));
    let _b = x.register_hook(|g| Some(g + 1.0));
    x.sum().backward();
    assert_eq!(x.grad().unwrap().to_vec::<f64>(), vec![101.0, 101.0]);
    a.remove();
    x.zero_grad();
    x.sum().backward();
    assert_eq!(x.grad().unwrap().to_vec::<f64>(), vec![2.0, 2.0]);
}

#[test]
fn dropping_the_handle_keeps_the_hook_and_clones_of_a_leaf_share_its_hooks() {
    let x = f64s(&[1.0]).requires_grad();
    let alias = x.clone();
    drop(alias.register_hook(|g| Some(g * 4.0)));
    (&x * 2.0).sum().backward(); // dy/dx = 2, ×4
    assert_eq!(x.grad().unwrap().to_vec::<f64>(), vec![8.0]);
}

#[test]
fn a_hook_changing_the_shape_of_the_gradient_panics_naming_register_hook() {
    let x = f64s(&[1.0, 2.0]).requires_grad();
    let _h = x.register_hook(|g| Some(g.sum()));
    let msg = panic_message(|| x.sum().backward());
    assert!(
        msg.contains("register_hook") && msg.contains("shape"),
        "{msg}"
    );
}

#[test]
fn registering_a_hook_on_a_tensor_that_does_not_require_grad_panics() {
    let x = f64s(&[1.0]);
    let msg = panic_message(|| drop(x.register_hook(|_| None)));
    assert!(
        msg.contains("register_hook") && msg.contains("does not require grad"),
        "{msg}"
    );
}

// ----- hooks under create_graph and grad() ---------------------------------------------------

#[test]
fn under_create_graph_the_hook_sees_a_gradient_on_the_graph_and_its_replacement_is_differentiable()
{
    // y = Σ x³: dy/dx = 3x², on the graph under create_graph.
    // The hook multiplies by x: the first-order result is 3x³, whose derivative is 9x².
    let x = f64s(&[1.0, 2.0, -0.5]).requires_grad();
    let on_graph = Arc::new(AtomicBool::new(false));
    let o = on_graph.clone();
    let xc = x.clone();
    let h = x.register_hook(move |g| {
        o.store(g.requires_grad_enabled(), Ordering::SeqCst);
        Some(g * &xc)
    });
    let y = x.powf(3.0).sum();
    let dx = grad(&[&y], &[&x], true).remove(0);
    assert!(on_graph.load(Ordering::SeqCst));
    assert_close(&dx.to_vec::<f64>(), &[3.0, 24.0, -0.375], 1e-12);
    h.remove(); // the second pass reaches x too; without the hook it returns d(Σ 3x³)/dx
    let ddx = grad(&[&dx.sum()], &[&x], false).remove(0);
    assert_close(&ddx.to_vec::<f64>(), &[9.0, 36.0, 2.25], 1e-12);
}

#[test]
fn a_non_leaf_hook_under_create_graph_backward_is_differentiated_and_runs_again_in_the_second_pass()
{
    // h = x², y = Σ h; hook on h: g ↦ g·h, so dy/dx = 2x·x² = 2x³ (in .grad, on the graph as
    // g = 2x·h).
    // The second pass differentiates Σ 2x·h: directly through x, 2h = 2x²; through h, the
    // gradient 2x reaches h, whose hook (still registered, as in PyTorch) makes it 2x·h = 2x³,
    // and h = x² turns it into 2x·2x³ = 4x⁴. Total: 2x² + 4x⁴.
    let x = f64s(&[1.0, 3.0]).requires_grad();
    let h = &x * &x;
    let hc = h.clone();
    let _hk = h.register_hook(move |g| Some(g * &hc));
    let y = h.sum();
    y.backward_opts(
        &Tensor::ones_like(&y),
        BackwardOptions {
            create_graph: true,
            ..Default::default()
        },
    );
    let g = x.grad().unwrap();
    assert_close(&g.to_vec::<f64>(), &[2.0, 54.0], 1e-12);
    assert!(g.requires_grad_enabled());
    let gg = grad(&[&g.sum()], &[&x], false).remove(0);
    assert_close(&gg.to_vec::<f64>(), &[2.0 + 4.0, 18.0 + 324.0], 1e-12);
}

#[test]
fn grad_runs_tensor_hooks_of_the_inputs_but_no_post_accumulate_hooks() {
    // y = Σ 2x; the tensor hook negates the gradient grad() returns
    let x = f64s(&[1.0, 2.0]).requires_grad();
    let posts = Arc::new(AtomicUsize::new(0));
    let p = posts.clone();
    let _a = x.register_hook(|g| Some(-g));
    let _b = x.register_post_accumulate_grad_hook(move |_| {
        p.fetch_add(1, Ordering::SeqCst);
    });
    let g = grad(&[&(&x * 2.0).sum()], &[&x], false).remove(0);
    assert_eq!(g.to_vec::<f64>(), vec![-2.0, -2.0]);
    assert_eq!(posts.load(Ordering::SeqCst), 0);
    assert!(x.grad().is_none());
}

#[test]
fn grad_does_not_run_hooks_of_leaves_it_was_not_asked_about() {
    let x = f64s(&[1.0]).requires_grad();
    let w = f64s(&[2.0]).requires_grad();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let _h = w.register_hook(move |_| {
        c.fetch_add(1, Ordering::SeqCst);
        None
    });
    let g = grad(&[&(&x * &w).sum()], &[&x], false).remove(0);
    assert_eq!(g.to_vec::<f64>(), vec![2.0]);
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[test]
fn grad_with_respect_to_a_non_leaf_returns_its_gradient_after_its_hooks() {
    // h = 2x, y = Σ h², dy/dh = 2h = 4x; the hook adds 1
    let x = f64s(&[1.0, 2.0]).requires_grad();
    let h = &x * 2.0;
    let _hk = h.register_hook(|g| Some(g + 1.0));
    let g = grad(&[&(&h * &h).sum()], &[&h], false).remove(0);
    assert_eq!(g.to_vec::<f64>(), vec![5.0, 9.0]);
}

// ----- register_post_accumulate_grad_hook ----------------------------------------------------

#[test]
fn post_accumulate_hook_fires_once_per_backward_after_the_grad_is_final() {
    // y = Σ (w·w + w·x) uses w three times: dy/dw = 2w + x
    let w = f64s(&[1.0, 2.0]).requires_grad();
    let x = f64s(&[10.0, 20.0]);
    let seen = log();
    let s = seen.clone();
    let _h = w.register_post_accumulate_grad_hook(move |p| {
        s.lock().unwrap().push(p.grad().unwrap().to_vec::<f64>());
    });
    (&w * &w + &w * &x).sum().backward();
    assert_eq!(take(&seen), vec![vec![12.0, 24.0]]);
    // a second pass accumulates into .grad, and the hook sees the accumulated value
    (&w * &w + &w * &x).sum().backward();
    assert_eq!(take(&seen), vec![vec![12.0, 24.0], vec![24.0, 48.0]]);
}

#[test]
fn post_accumulate_hook_sees_the_gradient_after_the_tensor_hooks() {
    let w = f64s(&[1.0]).requires_grad();
    let seen = log();
    let s = seen.clone();
    let _a = w.register_hook(|g| Some(g * 3.0));
    let _b = w.register_post_accumulate_grad_hook(move |p| {
        s.lock().unwrap().push(p.grad().unwrap().item());
    });
    (&w * 2.0).sum().backward();
    assert_eq!(take(&seen), vec![6.0]);
}

#[test]
fn post_accumulate_hook_of_a_late_layer_fires_before_earlier_layers_get_their_gradient() {
    // y = Σ w2·(w1·x): backward reaches w2 first; data-parallel training overlaps its
    // all-reduce with the rest of backward thanks to this order.
    let x = f64s(&[1.0, 2.0]);
    let w1 = f64s(&[3.0, 4.0]).requires_grad();
    let w2 = f64s(&[5.0, 6.0]).requires_grad();
    let w1_had_grad = Arc::new(Mutex::new(None));
    let (seen, w1c) = (w1_had_grad.clone(), w1.clone());
    let _h = w2.register_post_accumulate_grad_hook(move |_| {
        *seen.lock().unwrap() = Some(w1c.grad().is_some());
    });
    (&w2 * &(&w1 * &x)).sum().backward();
    assert_eq!(*w1_had_grad.lock().unwrap(), Some(false));
    assert_eq!(w1.grad().unwrap().to_vec::<f64>(), vec![5.0, 12.0]);
}

#[test]
fn post_accumulate_hook_does_not_fire_in_a_pass_that_does_not_reach_the_leaf() {
    let w = f64s(&[1.0]).requires_grad();
    let v = f64s(&[1.0]).requires_grad();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let _h = w.register_post_accumulate_grad_hook(move |_| {
        c.fetch_add(1, Ordering::SeqCst);
    });
    (&v * 2.0).sum().backward();
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[test]
fn post_accumulate_hook_on_a_non_leaf_panics_naming_the_op() {
    let x = f64s(&[1.0]).requires_grad();
    let h = &x * 2.0;
    let msg = panic_message(|| drop(h.register_post_accumulate_grad_hook(|_| {})));
    assert!(
        msg.contains("register_post_accumulate_grad_hook") && msg.contains("non-leaf"),
        "{msg}"
    );
}

// ----- queue_callback ------------------------------------------------------------------------

#[test]
fn queue_callback_runs_after_all_post_accumulate_hooks() {
    // three parameters; every hook queues a callback
    let ws: Vec<Tensor> = (1..=3).map(|i| f64s(&[i as f64]).requires_grad()).collect();
    let events = log();
    let _hs: Vec<_> = ws
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let e = events.clone();
            w.register_post_accumulate_grad_hook(move |_| {
                e.lock().unwrap().push(format!("hook {i}"));
                let e = e.clone();
                queue_callback(move || e.lock().unwrap().push(format!("callback {i}")));
            })
        })
        .collect();
    (&(&ws[0] * &ws[1]) * &ws[2]).sum().backward();
    let ev = take(&events);
    assert_eq!(ev.len(), 6, "{ev:?}");
    assert!(ev[..3].iter().all(|e| e.starts_with("hook")), "{ev:?}");
    assert!(ev[3..].iter().all(|e| e.starts_with("callback")), "{ev:?}");
    // each callback runs once: a second pass (on a new graph) queues and runs its own
    (&(&ws[0] * &ws[1]) * &ws[2]).sum().backward();
    let callbacks = take(&events)
        .iter()
        .filter(|e| e.starts_with("callback"))
        .count();
    assert_eq!(callbacks, 6);
}

#[test]
fn queue_callback_outside_a_backward_pass_panics() {
    let msg = panic_message(|| queue_callback(|| {}));
    assert!(
        msg.contains("queue_callback") && msg.contains("no backward pass"),
        "{msg}"
    );
}

// ----- robustness and threads ----------------------------------------------------------------

#[test]
fn after_a_hook_panics_backward_works_again_and_its_callbacks_are_dropped() {
    let x = f64s(&[1.0, 2.0]).requires_grad();
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    let bad = x.register_hook(move |_| {
        let r = r.clone();
        queue_callback(move || r.store(true, Ordering::SeqCst));
        panic!("hook failed")
    });
    let y = (&x * 2.0).sum();
    let result = catch_unwind(AssertUnwindSafe(|| y.backward()));
    assert!(result.is_err());
    assert!(
        !ran.load(Ordering::SeqCst),
        "the failed pass's callback must not run"
    );
    bad.remove();
    x.zero_grad();
    (&x * 3.0).sum().backward();
    assert_eq!(x.grad().unwrap().to_vec::<f64>(), vec![3.0, 3.0]);
    assert!(!ran.load(Ordering::SeqCst));
    // and a later pass's callbacks run normally
    let ok = Arc::new(AtomicBool::new(false));
    let o = ok.clone();
    let _h = x.register_hook(move |_| {
        let o = o.clone();
        queue_callback(move || o.store(true, Ordering::SeqCst));
        None
    });
    (&x * 3.0).sum().backward();
    assert!(ok.load(Ordering::SeqCst));
}

#[test]
fn hooks_on_a_worker_threads_own_tape_work() {
    let w = f64s(&[1.0, 2.0]).requires_grad(); // a leaf shared with the worker
    let seen = log();
    let s = seen.clone();
    let _h = w.register_post_accumulate_grad_hook(move |p| {
        s.lock().unwrap().push(p.grad().unwrap().to_vec::<f64>());
    });
    let wt = w.clone();
    let worker = std::thread::spawn(move || {
        // a non-leaf recorded on the worker's tape, with its own hook and a callback
        let h = &wt * 2.0;
        let _hk = h.register_hook(|g| Some(g * 10.0));
        let done = Arc::new(AtomicBool::new(false));
        let d = done.clone();
        let _p = wt.register_hook(move |_| {
            let d = d.clone();
            queue_callback(move || d.store(true, Ordering::SeqCst));
            None
        });
        h.sum().backward(); // dy/dw = 2 × 10
        done.load(Ordering::SeqCst)
    });
    assert!(worker.join().unwrap(), "the callback ran on the worker");
    assert_eq!(take(&seen), vec![vec![20.0, 20.0]]);
}

#[test]
fn a_hook_can_be_removed_from_another_thread() {
    let x = f64s(&[1.0]).requires_grad();
    let h = x.register_hook(|g| Some(g * 5.0));
    std::thread::spawn(move || h.remove()).join().unwrap();
    x.sum().backward();
    assert_eq!(x.grad().unwrap().to_vec::<f64>(), vec![1.0]);
}

#[test]
fn registering_a_hook_on_a_non_leaf_of_another_thread_panics() {
    let x = f64s(&[1.0]).requires_grad();
    let h = &x * 2.0;
    let msg = std::thread::spawn(move || panic_message(|| drop(h.register_hook(|_| None))))
        .join()
        .unwrap();
    assert!(
        msg.contains("register_hook") && msg.contains("another thread"),
        "{msg}"
    );
}

#[test]
fn a_backward_without_hooks_accumulates_a_leaf_used_several_times_as_before() {
    // a hook on another leaf makes backward count hooked leaves; unhooked ones are unaffected
    let other = f64s(&[1.0]).requires_grad();
    let _h = other.register_hook(|_| None);
    let x = f64s(&[2.0]).requires_grad();
    (&x * &x * &x).sum().backward(); // 3x² = 12
    assert_eq!(x.grad().unwrap().to_vec::<f64>(), vec![12.0]);
}
