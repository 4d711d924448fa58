//! Printing tensors the way PyTorch does: `tensor([[0.1000, 0.2000], …], requires_grad=True)`,
//! summarised with `...` above 1000 elements, and an HTML view for evcxr notebooks.

use std::fmt;

use super::{DType, Tensor};

/// Above this many elements, only the first and last [`EDGE`] items of each dim are printed.
const THRESHOLD: usize = 1000;
const EDGE: usize = 3;

enum Style {
    /// Every value is an integer: `1.`, `-2.`.
    Int,
    /// Fixed point with this many decimals.
    Fixed(usize),
    /// Scientific with 4 decimals.
    Sci,
    /// Integer dtypes and bools.
    Plain,
}

fn choose_style(values: &[f64], dtype: DType) -> Style {
    if !dtype.is_float() {
        return Style::Plain;
    }
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if finite.is_empty() {
        return Style::Fixed(4);
    }
    if finite.iter().all(|v| v.fract() == 0.0) {
        let max = finite.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        return if max > 1e8 { Style::Sci } else { Style::Int };
    }
    let nonzero: Vec<f64> = finite
        .iter()
        .map(|v| v.abs())
        .filter(|v| *v > 0.0)
        .collect();
    let max = nonzero.iter().fold(0.0f64, |m, v| m.max(*v));
    let min = nonzero.iter().fold(f64::INFINITY, |m, v| m.min(*v));
    if max / min > 1000.0 || max > 1e8 || min < 1e-4 {
        Style::Sci
    } else {
        Style::Fixed(4)
    }
}

fn fmt_value(v: f64, style: &Style, dtype: DType) -> String {
    if v.is_nan() {
        return "nan".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf".into() } else { "-inf".into() };
    }
    match style {
        Style::Plain if dtype == DType::Bool => (if v != 0.0 { "True" } else { "False" }).into(),
        Style::Plain => format!("{}", v as i64),
        Style::Int => format!("{v:.0}."),
        Style::Fixed(d) => format!("{v:.d$}", d = *d),
        Style::Sci => {
            let s = format!("{v:.4e}");
            // Rust prints `1.2340e-5`; PyTorch prints `1.2340e-05`.
            match s.split_once('e') {
                Some((m, e)) => {
                    let (sign, digits) = match e.strip_prefix('-') {
                        Some(d) => ('-', d),
                        None => ('+', e),
                    };
                    format!("{m}e{sign}{digits:0>2}")
                }
                None => s,
            }
        }
    }
}

/// Writes the nested brackets of `values` (row-major, `shape`), summarised when `summarize`.
fn write_nested(
    out: &mut String,
    values: &[String],
    shape: &[usize],
    width: usize,
    indent: usize,
    summarize: bool,
) {
    if shape.is_empty() {
        out.push_str(&values[0]);
        return;
    }
    let n = shape[0];
    let inner: usize = shape[1..].iter().product();
    let items: Vec<Option<usize>> = if summarize && n > 2 * EDGE {
        (0..EDGE)
            .map(Some)
            .chain(std::iter::once(None))
            .chain((n - EDGE..n).map(Some))
            .collect()
    } else {
        (0..n).map(Some).collect()
    };
    out.push('[');
    for (k, item) in items.iter().enumerate() {
        if k > 0 {
            if shape.len() == 1 {
                out.push_str(", ");
            } else {
                out.push(',');
                out.push_str(&"\n".repeat(shape.len() - 1));
                out.push_str(&" ".repeat(indent + 1));
            }
        }
        match item {
            None => out.push_str("..."),
            Some(i) if shape.len() == 1 => {
                out.push_str(&format!("{:>width$}", values[*i], width = width));
            }
            Some(i) => write_nested(
                out,
                &values[i * inner..(i + 1) * inner],
                &shape[1..],
                width,
                indent + 1,
                summarize,
            ),
        }
    }
    out.push(']');
}

impl Tensor {
    fn body_string(&self, indent: usize) -> String {
        let values = self.to_vec_f64();
        let shape = self.shape();
        let summarize = values.len() > THRESHOLD;
        let style = choose_style(&values, self.dtype());
        let strings: Vec<String> = values
            .iter()
            .map(|v| fmt_value(*v, &style, self.dtype()))
            .collect();
        let width = strings.iter().map(String::len).max().unwrap_or(0);
        let mut out = String::new();
        if shape.contains(&0) {
            out.push_str("[]");
        } else {
            write_nested(&mut out, &strings, shape, width, indent, summarize);
        }
        out
    }

    /// HTML for evcxr notebooks: the printed tensor with its shape and dtype.
    ///
    /// evcxr calls this method automatically when a cell's value is a `Tensor`.
    pub fn evcxr_display(&self) {
        println!(
            "EVCXR_BEGIN_CONTENT text/html\n{}\nEVCXR_END_CONTENT",
            self.to_html()
        );
    }

    /// The HTML shown by [`evcxr_display`](Tensor::evcxr_display).
    pub fn to_html(&self) -> String {
        let text = self
            .to_string()
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        format!(
            "<div><small>Tensor shape={:?} dtype={}{}</small><pre>{}</pre></div>",
            self.shape(),
            self.dtype(),
            if self.requires_grad_enabled() {
                " requires_grad"
            } else {
                ""
            },
            text
        )
    }
}

impl fmt::Display for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix = "tensor(";
        write!(f, "{prefix}{}", self.body_string(prefix.len()))?;
        if self.numel() == 0 && self.ndim() != 1 {
            write!(f, ", size={:?}", self.shape())?;
        }
        match self.dtype() {
            DType::F32 => {}
            DType::F64 => f.write_str(", dtype=torch.float64")?,
            DType::I64 => {}
            DType::Bool => {}
        }
        if let Some(op) = self.grad_fn() {
            let mut name = String::new();
            for part in op.split('_') {
                let mut c = part.chars();
                if let Some(first) = c.next() {
                    name.extend(first.to_uppercase());
                    name.push_str(c.as_str());
                }
            }
            write!(f, ", grad_fn=<{name}Backward>")?;
        } else if self.requires_grad_enabled() {
            f.write_str(", requires_grad=True")?;
        }
        f.write_str(")")
    }
}
