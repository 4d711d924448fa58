//! The autograd graph as a picture, like `torchviz`: Graphviz DOT of the tape behind a tensor.
//!
//! [`dot`] gives the DOT text: one box per recorded op (its name, attributes and `-> output shape`),
//! parameters as light-blue boxes (named by their module path with [`dot_with_params`]), inputs
//! that need no gradient as white boxes, and the output as a green box. [`render_svg`] turns DOT
//! into SVG with Graphviz's `dot` program, and a [`Dot`] value shows as an SVG picture in an
//! evcxr notebook.
//!
//! ```
//! use tapegrad::prelude::*;
//! use tapegrad::nn::{self, Forward, Module};
//!
//! let fc = nn::Linear::new(4, 2);
//! let loss = fc.forward(&Tensor::randn(&[3, 4])).tanh().sum();
//! let dot = tapegrad::viz::dot_with_params(&loss, &fc.named_parameters());
//! assert!(dot.starts_with("digraph"));
//! assert!(dot.contains("weight") && dot.contains("tanh"));
//! ```

pub use crate::autograd::graph::{GraphNode, NodeKind, TapeGraph};

use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::process::{Command, Stdio};

use crate::autograd::tape::Attr;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// DOT of the tape behind `t` (parameters named by [`Tensor::name`] or `param_<k>`), like
/// `torchviz.make_dot(t)`.
pub fn dot(t: &Tensor) -> String {
    Dot::new(t).to_dot()
}

/// DOT of the tape behind `t` with the leaves found in `params` named by their names there, like
/// `torchviz.make_dot(t, params=dict(model.named_parameters()))`.
pub fn dot_with_params(t: &Tensor, params: &[(String, Tensor)]) -> String {
    Dot::new(t).params(params).to_dot()
}

/// A drawing of the graph behind a tensor: DOT text ([`to_dot`](Dot::to_dot), or `Display`),
/// SVG ([`to_svg`](Dot::to_svg)), and an SVG picture when it is the value of an evcxr cell.
///
/// ```
/// use tapegrad::prelude::*;
/// let w = Tensor::ones(&[2, 2]).requires_grad();
/// let y = w.matmul(&Tensor::ones(&[2, 1])).sum();
/// let d = tapegrad::viz::Dot::new(&y).show_attrs(false);
/// assert_eq!(d.to_string(), d.to_dot());
/// assert!(d.to_dot().contains("matmul"));
/// ```
#[derive(Clone)]
pub struct Dot {
    output: Tensor,
    params: Vec<(String, Tensor)>,
    show_attrs: bool,
}

impl Dot {
    /// A drawing of the graph behind `output`.
    pub fn new(output: &Tensor) -> Dot {
        Dot {
            output: output.clone(),
            params: Vec::new(),
            show_attrs: true,
        }
    }

    /// Names the leaves found in `params` (compared by identity) by their names there.
    pub fn params(mut self, params: &[(String, Tensor)]) -> Dot {
        self.params = params.to_vec();
        self
    }

    /// Whether op boxes list the ops' attributes (dims, exponents, …); on by default.
    pub fn show_attrs(mut self, show: bool) -> Dot {
        self.show_attrs = show;
        self
    }

    /// The graph in Graphviz's DOT language.
    pub fn to_dot(&self) -> String {
        let g = TapeGraph::new(&self.output, &self.params);
        let mut s = String::from(
            "digraph {\n\tgraph [size=\"12,12\"]\n\tnode [align=left fontname=monospace \
             fontsize=10 height=0.2 ranksep=0.1 shape=box style=filled]\n",
        );
        for (i, n) in g.nodes.iter().enumerate() {
            let shape = fmt_shape(&n.shape);
            let (label, color) = match &n.kind {
                NodeKind::Op { op, attrs, .. } => {
                    let mut l = (*op).to_owned();
                    if self.show_attrs {
                        for (k, v) in attrs {
                            let _ = write!(l, "\n{k}={}", fmt_attr(v));
                        }
                    }
                    let _ = write!(l, "\n-> {shape}");
                    (l, "lightgrey")
                }
                NodeKind::Param => (format!("{}\n{shape}", n.name), "lightblue"),
                NodeKind::Input => (format!("input\n{shape}"), "white"),
            };
            let _ = writeln!(s, "\tn{i} [label=\"{}\" fillcolor={color}]", esc(&label));
            for &j in &n.inputs {
                let _ = writeln!(s, "\tn{j} -> n{i}");
            }
        }
        // the output tensor, as torchviz draws it
        let out = g.output();
        if matches!(g.nodes[out].kind, NodeKind::Op { .. }) {
            let _ = writeln!(
                s,
                "\toutput [label=\"{}\" fillcolor=darkolivegreen1]\n\tn{out} -> output",
                esc(&fmt_shape(&g.nodes[out].shape))
            );
        }
        s.push_str("}\n");
        s
    }

    /// The graph as SVG, rendered by Graphviz's `dot` program (see [`render_svg`]).
    ///
    /// # Errors
    /// As [`render_svg`].
    pub fn to_svg(&self) -> Result<String> {
        render_svg(&self.to_dot())
    }

    /// Shows the graph in an evcxr notebook: an SVG picture when Graphviz is installed, else the
    /// DOT text with a note. evcxr calls this method automatically when a cell's value is a `Dot`.
    pub fn evcxr_display(&self) {
        println!("{}", self.evcxr_content());
    }

    /// What [`evcxr_display`](Dot::evcxr_display) prints: an `EVCXR_BEGIN_CONTENT image/svg+xml`
    /// block, or a `text/html` block with the DOT text when `dot` cannot render.
    pub fn evcxr_content(&self) -> String {
        let dot = self.to_dot();
        match render_svg(&dot) {
            Ok(svg) => format!("EVCXR_BEGIN_CONTENT image/svg+xml\n{svg}\nEVCXR_END_CONTENT"),
            Err(e) => format!(
                "EVCXR_BEGIN_CONTENT text/html\n<div><small>{}</small><pre>{}</pre></div>\n\
                 EVCXR_END_CONTENT",
                html_esc(&e.to_string()),
                html_esc(&dot)
            ),
        }
    }
}

impl fmt::Display for Dot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_dot())
    }
}

/// Renders DOT text as SVG with Graphviz's `dot -Tsvg`.
///
/// # Errors
/// [`Error::Io`] of kind `NotFound` saying so when the `dot` program is not installed (install
/// the `graphviz` package); [`Error::Format`] with Graphviz's message when it rejects the input.
pub fn render_svg(dot: &str) -> Result<String> {
    let mut child = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::Io(std::io::Error::new(
                    e.kind(),
                    "render_svg: Graphviz's `dot` program was not found on PATH \
                     (install the graphviz package)",
                ))
            } else {
                Error::Io(e)
            }
        })?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let text = dot.to_owned();
    // write from another thread so that a large graph cannot deadlock on full pipes
    let writer = std::thread::spawn(move || stdin.write_all(text.as_bytes()));
    let out = child.wait_with_output()?;
    let written = writer.join().unwrap_or(Ok(()));
    if !out.status.success() {
        return Err(Error::Format(format!(
            "render_svg: dot failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    written?;
    String::from_utf8(out.stdout)
        .map_err(|_| Error::Format("render_svg: dot printed invalid UTF-8".to_owned()))
}

/// A shape as PyTorch prints a tuple: `(3, 2)`, `(3,)`, `()`.
fn fmt_shape(shape: &[usize]) -> String {
    match shape {
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn fmt_attr(a: &Attr) -> String {
    match a {
        Attr::Int(i) => i.to_string(),
        Attr::Ints(v) => format!("{v:?}"),
        Attr::Float(f) => f.to_string(),
        Attr::Floats(v) => format!("{v:?}"),
        Attr::Bool(b) => b.to_string(),
        Attr::Str(s) => s.clone(),
        Attr::DType(d) => d.to_string(),
    }
}

/// Escapes a DOT double-quoted string; newlines become DOT's `\n` line breaks.
fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn html_esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_print_like_python_tuples() {
        assert_eq!(fmt_shape(&[3, 2]), "(3, 2)");
        assert_eq!(fmt_shape(&[3]), "(3,)");
        assert_eq!(fmt_shape(&[]), "()");
    }

    #[test]
    fn labels_escape_quotes_backslashes_and_newlines() {
        assert_eq!(esc("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
