//! The op schema and tracing: every tape entry matches its declaration in
//! `autograd::schema::OPS`, every declared op is produced by some op, and under tracing every op
//! is recorded with its constant inputs' values while backward is unaffected.
//!
//! (Debug builds, `cargo test` included, also check each entry as it is recorded, so every test
//! file exercises the schema; this file makes sure all declared ops are exercised.)

use std::collections::BTreeSet;

use tapegrad::autograd::graph::{NodeKind, TapeGraph};
use tapegrad::autograd::schema::{self, OPS};
use tapegrad::autograd::tape::{self, Attr, Input};
use tapegrad::autograd::{self, grad};
use tapegrad::nn::functional as F;
use tapegrad::prelude::*;

fn randn64(shape: &[usize]) -> Tensor {
    Tensor::randn(shape).to_dtype(DType::F64)
}

/// Runs `f` under tracing, keeps the tensors it returns alive, and gives the op names of all the
/// entries they depend on, each checked against the schema.
fn traced_ops(f: impl FnOnce() -> Vec<Tensor>) -> BTreeSet<&'static str> {
    let outs = autograd::trace(f);
    let refs: Vec<&Tensor> = outs.iter().collect();
    let g = TapeGraph::of(&refs, &[]);
    let mut names = BTreeSet::new();
    for (_, n) in g.ops() {
        let NodeKind::Op { id, .. } = n.kind else {
            unreachable!()
        };
        let e = tape::entries().into_iter().find(|e| e.id == id).unwrap();
        schema::check_entry(&e).unwrap();
        names.insert(e.op);
    }
    names
}

/// Every op of the library, forward; the backward ops come from second-order gradients.
fn forward_ops() -> Vec<Tensor> {
    let x = randn64(&[2, 3]);
    let y = randn64(&[2, 3]);
    let pos = x.abs() + 0.5;
    let mask = x.gt_scalar(0.0);
    let idx = Tensor::from_vec_i64(vec![2, 0], &[2]);
    let idx2 = Tensor::from_vec_i64(vec![0, 1, 2, 0, 1, 2], &[2, 3]);
    let img = randn64(&[2, 2, 4, 4]);
    let w = randn64(&[3, 2, 3, 3]);
    let wt = randn64(&[2, 3, 3, 3]);
    let b = randn64(&[3]);
    let (values, indices) = x.max_dim(1, false);
    let (mn, _) = x.min_dim(0, true);
    let mut v = vec![
        &x + &y,
        &x - 1.0,
        &x * 2.0,
        &x / &pos,
        pos.pow(&y),
        x.maximum(&y),
        x.minimum(&y),
        x.eq(&y).logical_or(&x.ne(&y)),
        x.lt(&y).logical_and(&x.le_scalar(0.5)),
        x.ge(&y).logical_not(),
        x.where_(&mask, &y),
        x.masked_fill(&mask, -1.0),
        -&x,
        x.sign() + x.sin() + x.cos() + x.tanh() + x.exp(),
        pos.log() + pos.sqrt() + pos.rsqrt() + pos.powf(1.5),
        x.clamp(-0.5, 0.5) + x.sigmoid() + x.relu() + x.leaky_relu(0.1),
        x.gelu() + x.gelu_tanh() + x.silu() + x.softplus_with(2.0, 10.0),
        x.matmul(&y.t()),
        randn64(&[2, 2, 3]).matmul(&randn64(&[3, 4])),
        x.sum() + x.prod() + x.logsumexp(1, false).sum(),
        x.max() + x.min() + x.amax(0, false).sum() + x.amin(1, true).sum(),
        x.argmax().to_dtype(DType::F64) + x.argmin_dim(1, false).sum().to_dtype(DType::F64),
        values,
        indices,
        mn,
        x.var(true) + x.std_dim(1, false, true).sum() + x.norm_dim(2.0, 1, false).sum(),
        x.softmax(1) + x.log_softmax(0),
        x.reshape([3, 2]),
        x.unsqueeze(0).expand([4, 2, 3]),
        x.permute([1, 0]).contiguous(),
        x.unsqueeze(1).squeeze_dim(1),
        x.narrow(1, 0, 2) + x.slice(1, Some(1), None, 1),
        x.select(0, 1),
        x.pad(&[1, 1], 0.0),
        Tensor::cat(&[&x, &y], 0),
        x.repeat(&[2, 1]),
        x.index_select(1, &idx),
        x.gather(1, &idx2),
        x.index_add(1, &idx, &randn64(&[2, 2])),
        x.scatter_add(1, &idx2, &y),
        F::conv2d(&img, &w, Some(&b), F::Conv2dOpts::default()),
        F::conv_transpose2d(&img, &wt, None, 1, 0, 0, 1, 1),
        F::max_pool2d(&img, 2, 2, 0, 1, false),
        F::avg_pool2d(&img, 2, 2, 1, true, false),
        F::adaptive_avg_pool2d(&img, (3, 3)),
        F::dropout(&x, 0.5, true),
        F::embedding(&idx2, &randn64(&[4, 5]), Some(1)),
        F::layer_norm(&x, &[3], Some(&b), None, 1e-5),
        F::group_norm(&img, 2, None, None, 1e-5),
        F::batch_norm(&img, None, None, None, None, true, 0.1, 1e-5),
        F::cross_entropy(
            &x,
            &Tensor::from_vec_i64(vec![0, 2], &[2]),
            &Default::default(),
        ),
        F::binary_cross_entropy(
            &x.sigmoid(),
            &mask.to_dtype(DType::F64),
            None,
            F::Reduction::Mean,
        ),
    ];
    v.push(x.to_dtype(DType::F32));
    v
}

#[test]
fn every_declared_op_is_recorded_and_every_entry_matches_its_declaration() {
    let mut seen = traced_ops(forward_ops);

    // the ops of recorded backward passes (create_graph)
    let p = randn64(&[2, 2, 4, 4]).requires_grad();
    let w = randn64(&[3, 2, 3, 3]).requires_grad();
    let x = randn64(&[2, 3]).requires_grad();
    // squared, so that the upstream gradients depend on the inputs and the backward ops are
    // recorded
    let sq = |t: Tensor| t.powf(2.0).sum();
    let loss = sq(F::max_pool2d(&p, 2, 2, 0, 1, false))
        + sq(F::avg_pool2d(&p, 2, 2, 0, false, true))
        + sq(F::adaptive_avg_pool2d(&p, (3, 3)))
        + sq(F::conv2d(&p, &w, None, F::Conv2dOpts::default()))
        + x.gelu().sum()
        + sq(x.narrow(1, 0, 2))
        + F::cross_entropy(
            &x,
            &Tensor::from_vec_i64(vec![0, 2], &[2]),
            &Default::default(),
        );
    let grads = grad(&[&loss], &[&p, &w, &x], true);
    let second: Vec<Tensor> = grads.iter().map(|g| g.powf(2.0).sum()).collect();
    let second_refs: Vec<&Tensor> = second.iter().collect();
    // the gradients of the gradients go through the backward ops' own backwards
    let gg = grad(&[&(&second[0] + &second[1] + &second[2])], &[&p, &x], true);
    let all: Vec<&Tensor> = second_refs.into_iter().chain(&gg).collect();
    for (_, n) in TapeGraph::of(&all, &[]).ops() {
        let NodeKind::Op { id, .. } = n.kind else {
            unreachable!()
        };
        let e = tape::entries().into_iter().find(|e| e.id == id).unwrap();
        schema::check_entry(&e).unwrap();
        seen.insert(e.op);
    }

    // the differentiable all-reduce of SyncBatchNorm, in a world of one rank
    let all_reduce =
        tapegrad::distributed::launch(tapegrad::distributed::Backend::Threads(1), |pg| {
            let t = Tensor::ones(&[2]).requires_grad();
            let _y = tapegrad::distributed::all_reduce_with_grad(&t, &pg);
            let e = tape::entries().into_iter().last().unwrap();
            schema::check_entry(&e).unwrap();
            e.op
        })
        .unwrap();
    seen.extend(all_reduce);

    let declared: BTreeSet<&str> = OPS.iter().map(|s| s.name).collect();
    let unseen: Vec<_> = declared.difference(&seen).collect();
    assert!(unseen.is_empty(), "declared but never recorded: {unseen:?}");
    let undeclared: Vec<_> = seen.difference(&declared).collect();
    assert!(
        undeclared.is_empty(),
        "recorded but not declared: {undeclared:?}"
    );
}

#[test]
fn op_names_are_declared_once() {
    let mut names = BTreeSet::new();
    for s in OPS {
        assert!(names.insert(s.name), "'{}' is declared twice", s.name);
    }
}

#[test]
fn a_scalar_operand_is_a_0d_constant_input_holding_its_value() {
    let x = Tensor::ones(&[3]);
    let y = autograd::trace(|| &x * 2.5);
    let e = tape::entry_of(&y).unwrap();
    assert_eq!(e.op, "mul");
    // the model's input is found by identity, the scalar by its value
    assert!(e.inputs[0].tensor().unwrap().same(&x));
    let s = e.inputs[1].tensor().unwrap();
    assert_eq!(s.shape(), &[] as &[usize]);
    assert_eq!(s.item(), 2.5);
}

#[test]
fn tracing_records_ops_under_no_grad_and_without_differentiable_inputs() {
    let w = Tensor::randn(&[2, 3]).requires_grad();
    let x = Tensor::randn(&[4, 3]);
    let (y, hit) = {
        let _t = autograd::tracing();
        let _g = no_grad();
        let y = x.matmul(&w.t()).relu();
        (y.clone(), y.argmax_dim(1, false).eq_scalar(0.0))
    };
    assert!(!y.requires_grad_enabled() && !hit.requires_grad_enabled());
    let g = TapeGraph::of(&[&y, &hit], &[("w".to_owned(), w.clone())]);
    let ops: Vec<_> = g.ops().map(|(_, n)| n.op_name().unwrap()).collect();
    assert_eq!(ops, ["permute", "matmul", "relu", "argmax", "eq"]);
    // the parameter by its name, the input by identity, the scalar 0 by its value
    assert!(g.nodes.iter().any(|n| n.name == "w"));
    assert!(g
        .nodes
        .iter()
        .any(|n| n.value.as_ref().is_some_and(|v| v.same(&x))));
    assert_eq!(g.outputs.len(), 2);
    // each traced entry keeps its output's values
    let e = tape::entry_of(&y).unwrap();
    assert_eq!(
        e.traced_output().unwrap().to_vec::<f32>(),
        y.to_vec::<f32>()
    );
}

#[test]
fn without_tracing_ops_with_no_differentiable_input_record_nothing() {
    let base = tape::len();
    let x = Tensor::randn(&[3]);
    let m = x.gt_scalar(0.0);
    let y = &x * 2.0;
    assert_eq!(tape::len(), base);
    assert!(tape::entry_of(&m).is_none() && tape::entry_of(&y).is_none());
}

#[test]
fn backward_is_unaffected_by_tracing_only_entries() {
    // y = Σ where(x > 0, w·x, 0): dy/dw = Σ x over the positive x
    let x = Tensor::from_vec_f64(vec![1.0, -2.0, 3.0], &[3]);
    let w = Tensor::from_vec_f64(vec![2.0], &[1]).requires_grad();
    let y = autograd::trace(|| {
        let mask = x.gt_scalar(0.0); // a tracing-only entry
        (&w * &x)
            .where_(&mask, &Tensor::zeros_dtype(&[3], DType::F64))
            .sum()
    });
    let e = tape::entry_of(&y).unwrap();
    assert!(e.requires_grad);
    y.backward();
    assert_eq!(w.grad().unwrap().to_vec::<f64>(), vec![4.0]);
    // and the traced graph has the comparison
    let g = TapeGraph::of(&[&y], &[]);
    assert!(g.ops().any(|(_, n)| n.op_name() == Some("gt")));
}

#[test]
fn a_backward_inside_tracing_is_not_traced() {
    let w = Tensor::ones(&[2]).requires_grad();
    let _t = autograd::tracing();
    let before = tape::len();
    let y = (&w * 3.0).sum();
    let after_forward = tape::len();
    y.backward();
    assert_eq!(after_forward, before + 2);
    assert!(tape::len() <= after_forward);
    assert_eq!(w.grad().unwrap().to_vec::<f32>(), vec![3.0, 3.0]);
}

#[test]
fn optional_inputs_are_named_by_their_has_flags() {
    let x = Tensor::randn(&[2, 3, 4, 4]);
    let (rm, rv) = (Tensor::zeros(&[3]), Tensor::ones(&[3]));
    let bias = Tensor::zeros(&[3]);
    let y = autograd::trace(|| {
        F::batch_norm(
            &x,
            Some(&rm),
            Some(&rv),
            None,
            Some(&bias),
            false,
            0.1,
            1e-5,
        )
    });
    let e = tape::entry_of(&y).unwrap();
    let bound = e.schema().bind(&e);
    let names: Vec<_> = bound.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["input", "bias", "running_mean", "running_var"]);
    assert!(bound[2].1.tensor().unwrap().same(&rm));
    assert_eq!(e.attr("training"), Some(&Attr::Bool(false)));
    assert_eq!(e.attr("momentum"), Some(&Attr::Float(0.1)));
}

#[test]
fn ops_record_what_is_needed_to_run_them_again() {
    let img = Tensor::randn(&[1, 1, 5, 5]);
    let t = Tensor::from_vec_i64(vec![1, -100], &[2]);
    let opts = F::CrossEntropyOpts {
        ignore_index: -100,
        reduction: F::Reduction::Sum,
        ..Default::default()
    };
    let logits = Tensor::randn(&[2, 3]);
    let (p, ln, ce, dt) = autograd::trace(|| {
        (
            F::max_pool2d(&img, (3, 2), 2, 1, 1, true),
            F::layer_norm(&logits, &[3], None, None, 1e-3),
            F::cross_entropy(&logits, &t, &opts),
            logits.to_dtype(DType::F64),
        )
    });
    let e = tape::entry_of(&p).unwrap();
    assert_eq!(e.attr("kernel_size"), Some(&Attr::Ints(vec![3, 2])));
    assert_eq!(e.attr("stride"), Some(&Attr::Ints(vec![2, 2])));
    assert_eq!(e.attr("padding"), Some(&Attr::Ints(vec![1, 1])));
    assert_eq!(e.attr("ceil_mode"), Some(&Attr::Bool(true)));
    let e = tape::entry_of(&ln).unwrap();
    assert_eq!(e.attr("normalized_shape"), Some(&Attr::Ints(vec![3])));
    assert_eq!(e.attr("eps"), Some(&Attr::Float(1e-3)));
    let e = tape::entry_of(&ce).unwrap();
    assert_eq!(e.attr("reduction").and_then(Attr::as_str), Some("sum"));
    assert_eq!(e.attr("ignore_index"), Some(&Attr::Int(-100)));
    assert!(matches!(&e.inputs[1], Input::Const(c) if c.same(&t)));
    let e = tape::entry_of(&dt).unwrap();
    assert_eq!(e.attr("dtype"), Some(&Attr::DType(DType::F64)));
}

#[test]
fn a_cnn_in_eval_mode_traces_with_its_buffers_and_parameters_by_identity() {
    use tapegrad::nn::{self, Forward, Module};
    let bn = nn::BatchNorm::new(4);
    let model = nn::Sequential::new()
        .add(nn::Conv2d::new(1, 4, 3))
        .add(bn)
        .add(nn::ReLU)
        .add(nn::MaxPool2d::new(2))
        .add(nn::Flatten::new())
        .add(nn::Linear::new(4 * 3 * 3, 10));
    model.eval();
    let x = Tensor::randn(&[2, 1, 8, 8]);
    let y = autograd::trace(|| {
        let _g = no_grad();
        model.forward(&x)
    });
    let params = model.named_parameters();
    let g = TapeGraph::of(&[&y], &params);
    let ops: Vec<_> = g.ops().map(|(_, n)| n.op_name().unwrap()).collect();
    for op in [
        "conv2d",
        "batch_norm",
        "relu",
        "max_pool2d",
        "reshape",
        "matmul",
        "add",
    ] {
        assert!(ops.contains(&op), "{op} missing from {ops:?}");
    }
    // every parameter and buffer is a node found by identity, the input too
    let buffers = model.named_buffers();
    for (name, t) in params.iter().chain(&buffers) {
        if t.dtype().is_float() {
            let hit = g
                .nodes
                .iter()
                .any(|n| n.value.as_ref().is_some_and(|v| v.same(t)));
            assert!(hit, "{name} is not in the graph");
        }
    }
    assert!(g
        .nodes
        .iter()
        .any(|n| n.value.as_ref().is_some_and(|v| v.same(&x))));
    let (i, bn_node) = g
        .ops()
        .find(|(_, n)| n.op_name() == Some("batch_norm"))
        .unwrap();
    assert_eq!(bn_node.attr("training"), Some(&Attr::Bool(false)));
    assert_eq!(g.nodes[i].inputs.len(), 5);
}

#[test]
fn a_transformer_layer_with_a_padding_mask_traces_and_matches_the_schema() {
    use tapegrad::nn;
    let layer = nn::TransformerEncoderLayer::new(8, 2);
    tapegrad::nn::Module::eval(&layer);
    let x = Tensor::randn(&[5, 2, 8]);
    let pad = Tensor::from_values(
        vec![
            false, false, false, true, true, false, false, false, false, true,
        ],
        &[2, 5],
    );
    let ops = traced_ops(|| vec![layer.forward(&x, None, Some(&pad))]);
    for op in ["matmul", "softmax", "layer_norm", "where"] {
        assert!(ops.contains(op), "{op} missing from {ops:?}");
    }
}

#[test]
fn a_traced_tensor_from_another_thread_is_a_constant_of_this_trace() {
    let made_elsewhere = std::thread::spawn(|| autograd::trace(|| Tensor::ones(&[2]) * 3.0))
        .join()
        .unwrap();
    let y = autograd::trace(|| made_elsewhere.relu());
    let e = tape::entry_of(&y).unwrap();
    assert!(matches!(&e.inputs[0], Input::Const(t) if t.same(&made_elsewhere)));
    assert_eq!(y.to_vec::<f32>(), vec![3.0, 3.0]);
}
