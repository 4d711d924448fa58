//! The tape's memory: what each entry holds, when it is freed, and that training and evaluation
//! loops keep it bounded.
//!
//! Entries live while a tensor they produced (or a later entry consuming it) is alive; backward
//! frees what the walked entries saved. Each test thread has its own tape, so the counts below are
//! compared with a baseline taken in the same test.

mod common;

use common::panic_message;
use ndarray::Dimension as _;
use tapegrad::autograd::tape;
use tapegrad::prelude::*;

// ----- what an entry records -----------------------------------------------------------------

#[test]
fn each_recorded_op_appends_one_entry_with_its_name_shapes_and_caller() {
    let base = tape::len();
    let x = Tensor::ones(&[2, 3]).requires_grad();
    let w = Tensor::ones(&[3, 4]);
    let line = line!() + 1;
    let y = x.matmul(&w);
    assert_eq!(tape::len(), base + 1);

    let e = tape::entry_of(&y).unwrap();
    assert_eq!(e.op, "matmul");
    assert_eq!(e.input_shapes[0].slice(), &[2, 3]);
    assert_eq!(e.input_shapes[1].slice(), &[3, 4]);
    assert_eq!(e.output_shape.slice(), &[2, 4]);
    assert_eq!(e.dtype, DType::F32);
    assert_eq!(e.location.file(), file!());
    assert_eq!(e.location.line(), line);
    assert!(matches!(e.inputs[0], tape::Input::Leaf(_)));
    assert!(matches!(e.inputs[1], tape::Input::Const(_)));

    let z = y.tanh();
    let e2 = tape::entry_of(&z).unwrap();
    assert!(e2.id > e.id, "ids grow along the tape");
    assert!(matches!(e2.inputs[0], tape::Input::Node(id) if id == e.id));
    assert!(tape::entry_of(&x).is_none(), "leaves have no entry");
}

#[test]
fn entries_count_the_bytes_they_save() {
    let base = tape::saved_bytes();
    let x = Tensor::ones(&[10, 10]).requires_grad();
    // tanh saves its output: 100 f32 = 400 bytes
    let y = x.tanh();
    assert_eq!(tape::entry_of(&y).unwrap().saved_bytes(), 400);
    assert_eq!(tape::saved_bytes(), base + 400);
    // add saves nothing
    let z = &y + 1.0;
    assert_eq!(tape::entry_of(&z).unwrap().saved_bytes(), 0);
    assert_eq!(tape::saved_bytes(), base + 400);
}

#[test]
fn dropping_the_last_handle_frees_the_entries_it_kept_alive() {
    let base = tape::len();
    let x = Tensor::ones(&[4]).requires_grad();
    let y = x.exp();
    let z = (&y * 2.0).sum();
    assert_eq!(tape::len(), base + 3);
    drop(y);
    assert_eq!(tape::len(), base + 3, "z still needs exp and mul");
    drop(z);
    assert_eq!(tape::len(), base);
    assert_eq!(tape::saved_bytes(), 0);
}

// ----- freeing by backward -------------------------------------------------------------------

#[test]
fn backward_frees_what_the_walked_entries_saved() {
    let base = tape::saved_bytes();
    let x = Tensor::ones(&[8, 8]).requires_grad();
    let y = x.tanh(); // saves its output
    let z = (&y * &y).sum(); // mul saves both inputs
    assert!(tape::saved_bytes() > base);
    let entry = tape::entry_of(&y).unwrap();
    assert!(!entry.is_freed());

    z.backward();
    assert_eq!(tape::saved_bytes(), base);
    assert!(entry.is_freed());
    assert_eq!(entry.saved_bytes(), 0);
    assert!(
        tape::entry_of(&y).is_some(),
        "the entry itself lives while y does"
    );
}

#[test]
fn a_second_backward_through_a_freed_graph_panics_naming_the_op() {
    let x = Tensor::ones(&[3]).requires_grad();
    let line = line!() + 1;
    let y = x.tanh();
    y.sum().backward();

    // A new sum over the same y walks into tanh, whose saved output was freed.
    let msg = panic_message(|| (&y * 3.0).sum().backward());
    assert!(msg.contains("second time"), "{msg}");
    assert!(msg.contains("'tanh'"), "names the freed op: {msg}");
    assert!(
        msg.contains(&format!("{}:{line}", file!())),
        "names where the freed op was called: {msg}"
    );
    assert!(msg.contains("retain_graph"), "names the fix: {msg}");
}

#[test]
fn backward_twice_on_the_same_output_panics() {
    let x = Tensor::ones(&[3]).requires_grad();
    let z = x.exp().sum();
    z.backward();
    let msg = panic_message(|| z.backward());
    assert!(msg.contains("second time"), "{msg}");
    assert!(msg.contains("'sum'"), "{msg}");
}

#[test]
fn a_second_backward_panics_even_through_ops_that_saved_nothing() {
    // Unlike PyTorch, where `y = x.sum(); y.backward(); y.backward()` works because SumBackward
    // saves no tensor: here every walked entry is marked freed.
    let x = Tensor::ones(&[3]).requires_grad();
    let y = x.sum();
    assert_eq!(tape::entry_of(&y).unwrap().saved_bytes(), 0);
    y.backward();
    let msg = panic_message(|| y.backward());
    assert!(
        msg.contains("second time") && msg.contains("'sum'"),
        "{msg}"
    );
}

#[test]
fn retain_graph_keeps_the_graph_for_a_second_backward() {
    // y = Σ eˣ, dy/dx = eˣ; two backwards accumulate 2eˣ
    let x = Tensor::from_vec_f64(vec![0.0, 1.0], &[2]).requires_grad();
    let y = x.exp().sum();
    let keep = BackwardOptions {
        retain_graph: true,
        ..Default::default()
    };
    y.backward_opts(&Tensor::ones_like(&y), keep);
    assert!(
        tape::saved_bytes() > 0,
        "retain_graph keeps the saved tensors"
    );
    y.backward();
    let e = std::f64::consts::E;
    assert_eq!(x.grad().unwrap().to_vec::<f64>(), vec![2.0, 2.0 * e]);
    assert_eq!(
        tape::saved_bytes(),
        0,
        "the last backward without retain_graph frees"
    );
}

// ----- bounded tape over long loops ----------------------------------------------------------

/// A linear regression problem: `y = X w* + b*` with 16 samples of 3 features.
struct Regression {
    x: Tensor,
    y: Tensor,
    w: Tensor,
    b: Tensor,
}

impl Regression {
    fn new() -> Regression {
        let mut g = Generator::new(42);
        let x = Tensor::randn_with(&[16, 3], &mut g);
        let w_true = Tensor::from_vec(vec![0.5, -1.0, 2.0], &[3, 1]);
        let y = x.matmul(&w_true) + 0.25;
        Regression {
            x,
            y,
            w: Tensor::zeros(&[3, 1]).requires_grad(),
            b: Tensor::zeros(&[1]).requires_grad(),
        }
    }

    fn loss(&self) -> Tensor {
        (self.x.matmul(&self.w) + &self.b - &self.y).square().mean()
    }

    /// One SGD step on `.grad`, outside the graph.
    fn step(&self, lr: f64) {
        let _g = no_grad();
        for p in [&self.w, &self.b] {
            p.assign(&(p - &(p.grad().unwrap() * lr)));
            p.zero_grad();
        }
    }
}

#[test]
fn ten_thousand_training_iterations_keep_the_tape_bounded() {
    let m = Regression::new();
    let mut after_first = None;
    let mut peak_first = None;
    let mut last = f64::NAN;
    for i in 0..10_000 {
        let loss = m.loss();
        let peak = (tape::len(), tape::saved_bytes());
        loss.backward();
        last = loss.item();
        drop(loss);
        m.step(0.05);
        let now = (tape::len(), tape::saved_bytes());
        match (after_first, peak_first) {
            (None, _) => {
                after_first = Some(now);
                peak_first = Some(peak);
            }
            (Some(first), Some(first_peak)) => {
                assert_eq!(now, first, "iteration {i}: (len, saved_bytes) grew");
                assert_eq!(peak, first_peak, "iteration {i}: the forward pass grew");
            }
            _ => unreachable!(),
        }
    }
    assert!(last < 1e-8, "the model did learn (final loss {last})");
    assert_eq!(
        after_first.unwrap().1,
        0,
        "nothing saved between iterations"
    );
}

#[test]
fn a_forward_loop_without_backward_or_no_grad_frees_its_entries() {
    let m = Regression::new();
    let base = (tape::len(), tape::saved_bytes());
    let mut total = 0.0;
    for i in 0..10_000 {
        let loss = m.loss();
        assert!(
            tape::len() > base.0,
            "the forward pass is recorded (w requires grad)"
        );
        total += loss.item();
        drop(loss);
        assert_eq!(
            (tape::len(), tape::saved_bytes()),
            base,
            "iteration {i}: dropping the loss frees its graph"
        );
    }
    assert!(total > 0.0);
}

#[test]
fn keeping_detached_losses_does_not_keep_their_graphs() {
    let m = Regression::new();
    let base = tape::len();
    let history: Vec<Tensor> = (0..100).map(|_| m.loss().detach()).collect();
    assert_eq!(tape::len(), base);
    assert_eq!(history.len(), 100);
}

#[test]
fn keeping_undetached_losses_keeps_their_entries_but_backward_frees_the_saved_tensors() {
    // The classic `total_loss += loss` leak: each kept loss keeps its whole graph alive.
    let m = Regression::new();
    let base = tape::len();
    let per_iteration = {
        let _l = m.loss();
        tape::len() - base
    };
    let mut kept = Vec::new();
    for _ in 0..50 {
        let loss = m.loss();
        loss.backward();
        kept.push(loss);
        m.step(0.01);
    }
    assert_eq!(tape::len(), base + 50 * per_iteration);
    assert_eq!(
        tape::saved_bytes(),
        0,
        "backward freed what the kept graphs saved"
    );
    drop(kept);
    assert_eq!(tape::len(), base);
}
