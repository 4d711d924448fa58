//! `viz`: DOT of the tape behind a tensor, and SVG through Graphviz.

use std::process::Command;

use tapegrad::nn::{self, Forward, Module};
use tapegrad::viz::{self, Dot, NodeKind, TapeGraph};
use tapegrad::Tensor;

fn mlp_loss() -> (nn::Linear, nn::Linear, Tensor) {
    let fc1 = nn::Linear::new(4, 8);
    let fc2 = nn::Linear::new(8, 2);
    let x = Tensor::randn(&[3, 4]);
    let loss = fc2.forward(&fc1.forward(&x).relu()).powf(2.0).mean();
    (fc1, fc2, loss)
}

fn named(fc1: &nn::Linear, fc2: &nn::Linear) -> Vec<(String, Tensor)> {
    let mut p: Vec<(String, Tensor)> = fc1
        .named_parameters()
        .into_iter()
        .map(|(n, t)| (format!("fc1.{n}"), t))
        .collect();
    p.extend(
        fc2.named_parameters()
            .into_iter()
            .map(|(n, t)| (format!("fc2.{n}"), t)),
    );
    p
}

#[test]
fn dot_names_parameters_by_module_path_and_wires_them_to_their_ops() {
    let (fc1, fc2, loss) = mlp_loss();
    let params = named(&fc1, &fc2);
    let g = TapeGraph::new(&loss, &params);
    // every parameter is a Param node with its own shape
    for (name, t) in &params {
        let n = g
            .nodes
            .iter()
            .find(|n| &n.name == name)
            .unwrap_or_else(|| panic!("{name} missing"));
        assert!(matches!(n.kind, NodeKind::Param));
        assert_eq!(n.shape, t.shape());
    }
    // inputs come before the nodes that use them, and the output is last with the loss's shape
    for (i, n) in g.nodes.iter().enumerate() {
        assert!(
            n.inputs.iter().all(|&j| j < i),
            "node {i} uses a later node"
        );
    }
    let out = &g.nodes[g.output()];
    assert!(matches!(out.kind, NodeKind::Op { .. }));
    assert_eq!(out.shape, loss.shape());
    // the data input (no grad) is an Input node of shape [3, 4]
    assert!(g
        .nodes
        .iter()
        .any(|n| matches!(n.kind, NodeKind::Input) && n.shape == [3, 4]));

    let dot = viz::dot_with_params(&loss, &params);
    assert!(dot.starts_with("digraph {"), "{dot}");
    assert!(dot.trim_end().ends_with('}'));
    for (i, n) in g.nodes.iter().enumerate() {
        for &j in &n.inputs {
            assert!(dot.contains(&format!("n{j} -> n{i}\n")), "edge {j}->{i}");
        }
    }
    assert!(
        dot.contains("label=\"fc1.weight\\n(8, 4)\" fillcolor=lightblue"),
        "{dot}"
    );
    assert!(dot.contains("label=\"relu\\n-> (3, 8)\""), "{dot}");
    assert!(dot.contains("fillcolor=darkolivegreen1"), "{dot}");
}

#[test]
fn unnamed_leaves_use_their_tensor_name_or_a_numbered_default() {
    let w = Tensor::ones(&[2, 2]).requires_grad();
    w.set_name("my_w");
    let b = Tensor::ones(&[2]).requires_grad();
    let y = (&w.matmul(&Tensor::ones(&[2, 1])).squeeze_dim(1) + &b).sum();
    let dot = viz::dot(&y);
    assert!(dot.contains("my_w\\n(2, 2)"), "{dot}");
    assert!(dot.contains("param_1\\n(2,)"), "{dot}");
}

#[test]
fn a_leaf_alone_is_drawn_as_its_box() {
    let w = Tensor::ones(&[3]).requires_grad();
    let dot = viz::dot(&w);
    assert!(dot.contains("param_0\\n(3,)"), "{dot}");
    assert!(!dot.contains("->"));
}

#[test]
fn the_graph_survives_backward() {
    let (fc1, fc2, loss) = mlp_loss();
    let before = viz::dot_with_params(&loss, &named(&fc1, &fc2));
    loss.backward();
    assert_eq!(viz::dot_with_params(&loss, &named(&fc1, &fc2)), before);
}

#[test]
fn op_attributes_are_listed_unless_turned_off() {
    let x = Tensor::ones(&[2, 3]).requires_grad();
    let y = x.sum_dim(1, false).sum();
    let with = Dot::new(&y).to_dot();
    let without = Dot::new(&y).show_attrs(false).to_dot();
    assert!(with.contains("dim"), "{with}");
    assert!(!without.contains("dim"), "{without}");
}

fn has_dot() -> bool {
    Command::new("dot")
        .arg("-V")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[test]
fn renders_a_real_svg_with_graphviz() {
    if !has_dot() {
        tapegrad::testing::skip_missing(
            "renders_a_real_svg_with_graphviz",
            "Graphviz's dot program (scripts/test.sh installs graphviz)",
        );
        return;
    }
    let (fc1, fc2, loss) = mlp_loss();
    let d = Dot::new(&loss).params(&named(&fc1, &fc2));
    let svg = d.to_svg().unwrap();
    assert!(svg.contains("<svg"), "{svg}");
    assert!(svg.contains("fc2.bias"), "{svg}");
    assert!(svg.contains("matmul") || svg.contains("linear"), "{svg}");
    let shown = d.evcxr_content();
    assert!(shown.starts_with("EVCXR_BEGIN_CONTENT image/svg+xml\n"));
    assert!(shown.ends_with("\nEVCXR_END_CONTENT"));
    // bad DOT is an error carrying Graphviz's message, not a panic
    let e = viz::render_svg("digraph { -> }").unwrap_err().to_string();
    assert!(e.contains("dot failed"), "{e}");
}
