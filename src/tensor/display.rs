//! Printing tensors exactly as PyTorch does with its default print options (precision 4, line
//! width 80, summarised above 1000 elements keeping 3 items at each edge of every dim):
//! `tensor([[0.1000, 0.2000], …], dtype=torch.float64, requires_grad=True)`, and an HTML view for
//! evcxr notebooks.
//!
//! The rules follow PyTorch's `torch/_tensor_str.py`. For floats, one format is chosen for the
//! whole tensor from its nonzero finite values (only those printed, when summarised): integers
//! print as `1.`; otherwise fixed point with 4 decimals; scientific (`1.0000e-05`) when the
//! largest magnitude exceeds 1e8, or is more than 1000 times the smallest, or (for non-integers)
//! the smallest is below 1e-4. Values are right-aligned to a common width, and rows wrap at 80
//! columns.

use std::fmt;

use ndarray::Dimension as _;

use super::{DType, Data, Storage, Tensor};
use crate::autograd::tape;

/// Above this many elements the output is summarised.
const THRESHOLD: usize = 1000;
/// Items kept at each edge of a summarised dim.
const EDGE: usize = 3;
/// Characters per line.
const LINEWIDTH: usize = 80;
/// Digits after the point, in fixed and scientific notation.
const PRECISION: usize = 4;

/// The values to print: numbers for float tensors, their text for integer and bool ones.
enum Values {
    Float(Vec<f64>),
    Plain(Vec<String>),
}

/// How every element of one tensor is written, like PyTorch's `_Formatter`.
enum Style {
    /// Float tensors whose values are all integers: `1.`, `-2.`.
    Int,
    /// Fixed point with [`PRECISION`] decimals.
    Fixed,
    /// Scientific with [`PRECISION`] decimals and a two-digit exponent.
    Sci,
    /// Integer and bool tensors, written as they are.
    Plain,
}

struct Formatter {
    style: Style,
    /// The width values are right-aligned to (only nonzero finite values count, as in PyTorch).
    width: usize,
}

fn fixed(v: f64) -> String {
    format!("{v:.PRECISION$}")
}

/// `1.2340e-05`: Rust writes `1.2340e-5`, Python a signed two-digit exponent.
fn sci(v: f64) -> String {
    let s = format!("{v:.PRECISION$e}");
    match s.split_once('e') {
        Some((mantissa, exp)) => {
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exp),
            };
            format!("{mantissa}e{sign}{digits:0>2}")
        }
        None => s,
    }
}

/// `nan`, `inf` and `-inf` as Python writes them, or `None` for finite values.
fn non_finite(v: f64) -> Option<&'static str> {
    if v.is_nan() {
        Some("nan")
    } else if v.is_infinite() {
        Some(if v > 0.0 { "inf" } else { "-inf" })
    } else {
        None
    }
}

impl Formatter {
    fn new(values: &Values) -> Formatter {
        let v = match values {
            Values::Plain(s) => {
                return Formatter {
                    style: Style::Plain,
                    width: s.iter().map(String::len).max().unwrap_or(1).max(1),
                };
            }
            Values::Float(v) => v,
        };
        let nonzero: Vec<f64> = v
            .iter()
            .copied()
            .filter(|x| x.is_finite() && *x != 0.0)
            .collect();
        if nonzero.is_empty() {
            return Formatter {
                style: Style::Int,
                width: 1,
            };
        }
        let max = nonzero.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        let min = nonzero.iter().fold(f64::INFINITY, |m, x| m.min(x.abs()));
        let int_mode = nonzero.iter().all(|x| x.fract() == 0.0);
        let widest = |f: fn(f64) -> String, extra: usize| {
            nonzero
                .iter()
                .map(|&x| f(x).len() + extra)
                .max()
                .unwrap_or(1)
        };
        let sci_mode = max / min > 1000.0 || max > 1e8 || (!int_mode && min < 1e-4);
        if sci_mode {
            Formatter {
                style: Style::Sci,
                width: widest(sci, 0),
            }
        } else if int_mode {
            // one more for the trailing point
            Formatter {
                style: Style::Int,
                width: widest(|x| format!("{x:.0}"), 1),
            }
        } else {
            Formatter {
                style: Style::Fixed,
                width: widest(fixed, 0),
            }
        }
    }

    /// Writes one float, right-aligned to the common width.
    fn float(&self, v: f64) -> String {
        let s = match (non_finite(v), &self.style) {
            (Some(s), _) => s.to_string(),
            (None, Style::Int) => format!("{v:.0}."),
            (None, Style::Sci) => sci(v),
            (None, _) => fixed(v),
        };
        self.pad(s)
    }

    fn pad(&self, s: String) -> String {
        format!("{s:>w$}", w = self.width)
    }
}

/// The indices printed along a dim of size `n`: all, or the edges when summarising.
fn kept_indices(n: usize, summarize: bool) -> Vec<usize> {
    if summarize && n > 2 * EDGE {
        (0..EDGE).chain(n - EDGE..n).collect()
    } else {
        (0..n).collect()
    }
}

/// The elements at every combination of `kept` indices, in row-major order (PyTorch's
/// `get_summarized_data`).
fn gather<T: Copy>(a: &Storage<T>, kept: &[Vec<usize>]) -> Vec<T> {
    if kept.iter().zip(a.shape()).all(|(k, &n)| k.len() == n) {
        return a.iter().copied().collect();
    }
    let total: usize = kept.iter().map(Vec::len).product();
    let mut out = Vec::with_capacity(total);
    let mut pos = vec![0usize; kept.len()];
    let mut idx: Vec<usize> = kept.iter().map(|k| k[0]).collect();
    for _ in 0..total {
        out.push(a[idx.as_slice()]);
        // odometer over the kept positions, last dim fastest
        for d in (0..kept.len()).rev() {
            pos[d] += 1;
            if pos[d] < kept[d].len() {
                idx[d] = kept[d][pos[d]];
                break;
            }
            pos[d] = 0;
            idx[d] = kept[d][0];
        }
    }
    out
}

/// Joins the rows of a 1-d tensor, `per_line` items to a line, PyTorch's `_vector_str`.
fn vector_str(items: &[String], elided: bool, width: usize, indent: usize) -> String {
    let per_line = (LINEWIDTH.saturating_sub(indent) / (width + 2)).max(1);
    let mut items: Vec<&str> = items.iter().map(String::as_str).collect();
    if elided {
        items.insert(EDGE, " ...");
    }
    let lines: Vec<String> = items.chunks(per_line).map(|c| c.join(", ")).collect();
    format!(
        "[{}]",
        lines.join(&format!(",\n{}", " ".repeat(indent + 1)))
    )
}

/// The nested brackets of `items` (row-major, `shape` after summarising), with `...` after the
/// first [`EDGE`] entries of each dim in `elided`; PyTorch's `_tensor_str_with_formatter`.
fn nested_str(
    items: &[String],
    shape: &[usize],
    elided: &[bool],
    width: usize,
    indent: usize,
) -> String {
    match shape.len() {
        0 => items[0].clone(),
        1 => vector_str(items, elided[0], width, indent),
        dim => {
            let inner: usize = shape[1..].iter().product();
            let mut slices: Vec<String> = items
                .chunks(inner.max(1))
                .take(shape[0])
                .map(|c| nested_str(c, &shape[1..], &elided[1..], width, indent + 1))
                .collect();
            if elided[0] {
                slices.insert(EDGE, "...".to_string());
            }
            let sep = format!(",{}{}", "\n".repeat(dim - 1), " ".repeat(indent + 1));
            format!("[{}]", slices.join(&sep))
        }
    }
}

/// The class name PyTorch gives the backward node of `op` (`MulBackward0`); PyTorch numbers the
/// overloads of some ops, and names some of ours differently.
fn backward_name(op: &str, entry: Option<&tape::Entry>) -> String {
    let ranks: Vec<usize> = entry
        .map(|e| e.input_shapes.iter().map(|s| s.ndim()).collect())
        .unwrap_or_default();
    let out_rank = entry.map(|e| e.output_shape.ndim());
    let (base, overload) = match op {
        "pow" => ("Pow".to_string(), 1),
        "pow_scalar" => ("Pow".to_string(), 0),
        "clamp" => ("Clamp".to_string(), 1),
        "reshape" => ("View".to_string(), 0),
        "unsafe_view" => ("UnsafeView".to_string(), 0),
        "contiguous" => ("Clone".to_string(), 0),
        "to_dtype" => ("ToCopy".to_string(), 0),
        "sum" => ("Sum".to_string(), if out_rank == Some(0) { 0 } else { 1 }),
        // 1-d operands are reshaped around a 2-d product, batches go through a view
        "matmul" if ranks == [2, 2] => ("Mm".to_string(), 0),
        "matmul" => ("UnsafeView".to_string(), 0),
        other => {
            let camel: String = other
                .split('_')
                .map(|part| {
                    let mut c = part.chars();
                    match c.next() {
                        Some(first) => first.to_uppercase().chain(c).collect(),
                        None => String::new(),
                    }
                })
                .collect();
            (camel, 0)
        }
    };
    format!("{base}Backward{overload}")
}

impl Tensor {
    /// The bracketed values, PyTorch's `_tensor_str`, for a tensor whose text starts at column
    /// `indent`.
    fn body_string(&self, indent: usize) -> String {
        if self.numel() == 0 {
            return "[]".to_string();
        }
        let summarize = self.numel() > THRESHOLD;
        let kept: Vec<Vec<usize>> = self
            .shape()
            .iter()
            .map(|&n| kept_indices(n, summarize))
            .collect();
        let elided: Vec<bool> = kept
            .iter()
            .zip(self.shape())
            .map(|(k, &n)| k.len() < n)
            .collect();
        let shape: Vec<usize> = kept.iter().map(Vec::len).collect();
        let values = self.with_data(|d| match d {
            Data::F32(a) => Values::Float(gather(a, &kept).into_iter().map(f64::from).collect()),
            Data::F64(a) => Values::Float(gather(a, &kept)),
            Data::I64(a) => Values::Plain(gather(a, &kept).iter().map(i64::to_string).collect()),
            Data::Bool(a) => Values::Plain(
                gather(a, &kept)
                    .iter()
                    .map(|&b| if b { "True" } else { "False" }.to_string())
                    .collect(),
            ),
        });
        let fmt = Formatter::new(&values);
        let items: Vec<String> = match values {
            Values::Float(v) => v.into_iter().map(|x| fmt.float(x)).collect(),
            Values::Plain(s) => s.into_iter().map(|x| fmt.pad(x)).collect(),
        };
        nested_str(&items, &shape, &elided, fmt.width, indent)
    }

    /// The `dtype=…`, `size=…`, `grad_fn=…` / `requires_grad=True` parts after the values.
    fn suffixes(&self) -> Vec<String> {
        let mut out = Vec::new();
        let empty = self.numel() == 0;
        if empty && self.ndim() != 1 {
            let dims: Vec<String> = self.shape().iter().map(usize::to_string).collect();
            out.push(format!("size=({})", dims.join(", ")));
        }
        // int64 and bool are implied by how the values look, unless there are none
        let shown = match self.dtype() {
            DType::F32 => false,
            DType::F64 => true,
            DType::I64 | DType::Bool => empty,
        };
        if shown {
            out.push(format!("dtype=torch.{}", self.dtype()));
        }
        if let Some(op) = self.grad_fn() {
            let entry = tape::entry_of(self);
            out.push(format!("grad_fn=<{}>", backward_name(op, entry.as_deref())));
        } else if self.requires_grad_enabled() {
            out.push("requires_grad=True".to_string());
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

/// Writes the tensor as PyTorch's `repr` does, e.g. `tensor([1.0000, 2.5000], requires_grad=True)`.
impl fmt::Display for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const PREFIX: &str = "tensor(";
        let indent = PREFIX.len();
        let mut s = format!("{PREFIX}{}", self.body_string(indent));
        // PyTorch's `_add_suffixes`, including its count of the last line's length
        let mut last_line = match s.rfind('\n') {
            Some(p) => s.len() - p + 1,
            None => s.len() + 2,
        };
        for suffix in self.suffixes() {
            if last_line + suffix.len() + 2 > LINEWIDTH {
                s.push_str(&format!(",\n{}{suffix}", " ".repeat(indent)));
                last_line = indent + suffix.len();
            } else {
                s.push_str(&format!(", {suffix}"));
                last_line += suffix.len() + 2;
            }
        }
        s.push(')');
        f.write_str(&s)
    }
}

#[cfg(test)]
mod tests {
    use crate::prelude::*;

    /// Each expected string is PyTorch 2.15's `repr` of the expression in the comment above it.
    fn check(t: Tensor, want: &str) {
        assert_eq!(t.to_string(), want, "\n got:\n{t}\nwant:\n{want}");
    }

    fn f32s(v: &[f32]) -> Tensor {
        Tensor::from_vec(v.to_vec(), &[v.len()])
    }

    #[test]
    fn float_formats_match_pytorch() {
        // torch.tensor([1., 2., 3.])
        check(f32s(&[1.0, 2.0, 3.0]), "tensor([1., 2., 3.])");
        // torch.tensor([0.1, -0.25, 1.5])
        check(
            f32s(&[0.1, -0.25, 1.5]),
            "tensor([ 0.1000, -0.2500,  1.5000])",
        );
        // torch.tensor([0.1, 0.2, 0.3])
        check(f32s(&[0.1, 0.2, 0.3]), "tensor([0.1000, 0.2000, 0.3000])");
        // torch.tensor([0., 0.5])
        check(f32s(&[0.0, 0.5]), "tensor([0.0000, 0.5000])");
        // torch.tensor([-0., 1.])
        check(f32s(&[-0.0, 1.0]), "tensor([-0., 1.])");
    }

    #[test]
    fn scientific_notation_matches_pytorch() {
        // torch.tensor([1e-5, 1.0]): smallest below 1e-4
        check(f32s(&[1e-5, 1.0]), "tensor([1.0000e-05, 1.0000e+00])");
        // torch.tensor([1., 10000.]): integers, but a ratio above 1000
        check(f32s(&[1.0, 10000.0]), "tensor([1.0000e+00, 1.0000e+04])");
        // torch.tensor([2e8, 3e8]): above 1e8
        check(f32s(&[2e8, 3e8]), "tensor([2.0000e+08, 3.0000e+08])");
        // torch.tensor([-1e-5, 2.5e10, 1.0])
        check(
            f32s(&[-1e-5, 2.5e10, 1.0]),
            "tensor([-1.0000e-05,  2.5000e+10,  1.0000e+00])",
        );
    }

    #[test]
    fn nan_and_infinity_match_pytorch() {
        // torch.tensor([0., nan])
        check(f32s(&[0.0, f32::NAN]), "tensor([0., nan])");
        // torch.tensor([1., -inf, nan])
        check(
            f32s(&[1.0, f32::NEG_INFINITY, f32::NAN]),
            "tensor([1., -inf, nan])",
        );
        // torch.tensor([1.5, nan, inf])
        check(
            f32s(&[1.5, f32::NAN, f32::INFINITY]),
            "tensor([1.5000,    nan,    inf])",
        );
    }

    #[test]
    fn nested_layout_matches_pytorch() {
        // torch.arange(6, dtype=torch.float64).reshape(2, 3) / 3
        check(
            Tensor::arange_dtype(0.0, 6.0, 1.0, DType::F64).reshape([2, 3]) / 3.0,
            "tensor([[0.0000, 0.3333, 0.6667],\n        [1.0000, 1.3333, 1.6667]], \
             dtype=torch.float64)",
        );
        // torch.arange(24.).reshape(2, 3, 4)
        check(
            Tensor::arange(0.0, 24.0, 1.0).reshape([2, 3, 4]),
            "tensor([[[ 0.,  1.,  2.,  3.],
         [ 4.,  5.,  6.,  7.],
         [ 8.,  9., 10., 11.]],

        [[12., 13., 14., 15.],
         [16., 17., 18., 19.],
         [20., 21., 22., 23.]]])",
        );
        // torch.arange(16.).reshape(2, 2, 2, 2)
        check(
            Tensor::arange(0.0, 16.0, 1.0).reshape([2, 2, 2, 2]),
            "tensor([[[[ 0.,  1.],
          [ 2.,  3.]],

         [[ 4.,  5.],
          [ 6.,  7.]]],


        [[[ 8.,  9.],
          [10., 11.]],

         [[12., 13.],
          [14., 15.]]]])",
        );
        // torch.arange(6.).reshape(2, 3).t()
        check(
            Tensor::arange(0.0, 6.0, 1.0).reshape([2, 3]).t(),
            "tensor([[0., 3.],\n        [1., 4.],\n        [2., 5.]])",
        );
    }

    #[test]
    fn long_rows_wrap_at_80_columns() {
        // torch.arange(30.) * 1.5
        check(
            Tensor::arange(0.0, 30.0, 1.0) * 1.5,
            "tensor([ 0.0000,  1.5000,  3.0000,  4.5000,  6.0000,  7.5000,  9.0000, 10.5000,
        12.0000, 13.5000, 15.0000, 16.5000, 18.0000, 19.5000, 21.0000, 22.5000,
        24.0000, 25.5000, 27.0000, 28.5000, 30.0000, 31.5000, 33.0000, 34.5000,
        36.0000, 37.5000, 39.0000, 40.5000, 42.0000, 43.5000])",
        );
    }

    #[test]
    fn large_tensors_are_summarised_like_pytorch() {
        // torch.arange(2000.)
        check(
            Tensor::arange(0.0, 2000.0, 1.0),
            "tensor([0.0000e+00, 1.0000e+00, 2.0000e+00,  ..., 1.9970e+03, 1.9980e+03,
        1.9990e+03])",
        );
        // torch.arange(1200.).reshape(40, 30) / 7
        check(
            Tensor::arange(0.0, 1200.0, 1.0).reshape([40, 30]) / 7.0,
            "tensor([[0.0000e+00, 1.4286e-01, 2.8571e-01,  ..., 3.8571e+00, 4.0000e+00,
         4.1429e+00],
        [4.2857e+00, 4.4286e+00, 4.5714e+00,  ..., 8.1429e+00, 8.2857e+00,
         8.4286e+00],
        [8.5714e+00, 8.7143e+00, 8.8571e+00,  ..., 1.2429e+01, 1.2571e+01,
         1.2714e+01],
        ...,
        [1.5857e+02, 1.5871e+02, 1.5886e+02,  ..., 1.6243e+02, 1.6257e+02,
         1.6271e+02],
        [1.6286e+02, 1.6300e+02, 1.6314e+02,  ..., 1.6671e+02, 1.6686e+02,
         1.6700e+02],
        [1.6714e+02, 1.6729e+02, 1.6743e+02,  ..., 1.7100e+02, 1.7114e+02,
         1.7129e+02]])",
        );
        // torch.arange(1010.).reshape(1010, 1) / 4: only the long dim is cut
        check(
            Tensor::arange(0.0, 1010.0, 1.0).reshape([1010, 1]) / 4.0,
            "tensor([[0.0000e+00],
        [2.5000e-01],
        [5.0000e-01],
        ...,
        [2.5175e+02],
        [2.5200e+02],
        [2.5225e+02]])",
        );
        // torch.arange(2000)
        check(
            Tensor::arange_dtype(0.0, 2000.0, 1.0, DType::I64),
            "tensor([   0,    1,    2,  ..., 1997, 1998, 1999])",
        );
    }

    #[test]
    fn summarising_3d_keeps_edges_of_every_long_dim() {
        // torch.arange(1024.).reshape(4, 16, 16): the first block, as PyTorch prints it
        let s = Tensor::arange(0.0, 1024.0, 1.0)
            .reshape([4, 16, 16])
            .to_string();
        let want_start = "tensor([[[0.0000e+00, 1.0000e+00, 2.0000e+00,  ..., 1.3000e+01,
          1.4000e+01, 1.5000e+01],
         [1.6000e+01, 1.7000e+01, 1.8000e+01,  ..., 2.9000e+01,
          3.0000e+01, 3.1000e+01],
         [3.2000e+01, 3.3000e+01, 3.4000e+01,  ..., 4.5000e+01,
          4.6000e+01, 4.7000e+01],
         ...,
         [2.0800e+02, 2.0900e+02, 2.1000e+02,  ..., 2.2100e+02,
          2.2200e+02, 2.2300e+02],
         [2.2400e+02, 2.2500e+02, 2.2600e+02,  ..., 2.3700e+02,
          2.3800e+02, 2.3900e+02],
         [2.4000e+02, 2.4100e+02, 2.4200e+02,  ..., 2.5300e+02,
          2.5400e+02, 2.5500e+02]],

        [[2.5600e+02,";
        assert!(s.starts_with(want_start), "{s}");
        let want_end = "         [1.0080e+03, 1.0090e+03, 1.0100e+03,  ..., 1.0210e+03,
          1.0220e+03, 1.0230e+03]]])";
        assert!(s.ends_with(want_end), "{s}");
        // 4 blocks (dim 0 has only 4, so none is cut), 4 * 6 rows
        assert_eq!(s.matches("]],\n\n").count(), 3);
        assert_eq!(s.matches("        ...,\n").count(), 4);
    }

    #[test]
    fn width_comes_from_finite_values_and_summaries_from_edges() {
        // torch.tensor([[1e-5, nan], [-inf, 3.]])
        check(
            Tensor::from_vec(vec![1e-5, f32::NAN, f32::NEG_INFINITY, 3.0], &[2, 2]),
            "tensor([[1.0000e-05,        nan],\n        [      -inf, 3.0000e+00]])",
        );
        // torch.tensor([123456.5, 1.0]): ratio above 1000
        check(f32s(&[123456.5, 1.0]), "tensor([1.2346e+05, 1.0000e+00])");
        // torch.arange(-1000, 1000).reshape(2, 1000)
        check(
            Tensor::arange_dtype(-1000.0, 1000.0, 1.0, DType::I64).reshape([2, 1000]),
            "tensor([[-1000,  -999,  -998,  ...,    -3,    -2,    -1],
        [    0,     1,     2,  ...,   997,   998,   999]])",
        );
    }

    #[test]
    fn integer_and_bool_tensors_match_pytorch() {
        // torch.tensor([1, -20, 300])
        check(
            Tensor::from_vec_i64(vec![1, -20, 300], &[3]),
            "tensor([  1, -20, 300])",
        );
        // torch.tensor([True, False])
        check(
            Tensor::from_values(vec![true, false], &[2]),
            "tensor([ True, False])",
        );
        // torch.tensor([[True], [False]])
        check(
            Tensor::from_values(vec![true, false], &[2, 1]),
            "tensor([[ True],\n        [False]])",
        );
        // int64 is exact beyond 2^53: torch.tensor([2**62 + 1])
        check(
            Tensor::from_vec_i64(vec![(1 << 62) + 1], &[1]),
            "tensor([4611686018427387905])",
        );
    }

    #[test]
    fn autograd_suffixes_match_pytorch() {
        // torch.tensor([1., 2.], requires_grad=True)
        let x = f32s(&[1.0, 2.0]).requires_grad();
        check(x.clone(), "tensor([1., 2.], requires_grad=True)");
        // that * 2
        check(&x * 2.0, "tensor([2., 4.], grad_fn=<MulBackward0>)");
        // that.sum()
        check(x.sum(), "tensor(3., grad_fn=<SumBackward0>)");
        // torch.arange(6.).reshape(2, 3).requires_grad_() * 2
        let m = Tensor::arange(0.0, 6.0, 1.0)
            .reshape([2, 3])
            .requires_grad();
        check(
            &m * 2.0,
            "tensor([[ 0.,  2.,  4.],\n        [ 6.,  8., 10.]], grad_fn=<MulBackward0>)",
        );
        // (torch.arange(8, dtype=torch.float64) / 3).requires_grad_(): suffixes wrap at 80
        check(
            (Tensor::arange_dtype(0.0, 8.0, 1.0, DType::F64) / 3.0).requires_grad(),
            "tensor([0.0000, 0.3333, 0.6667, 1.0000, 1.3333, 1.6667, 2.0000, 2.3333],
       dtype=torch.float64, requires_grad=True)",
        );
    }

    #[test]
    fn backward_names_follow_pytorch_classes() {
        let x = Tensor::from_vec_f64(vec![0.5, 1.5, 2.0, 3.0], &[2, 2]).requires_grad();
        let name = |t: Tensor| {
            let s = t.to_string();
            let at = s.find("grad_fn=<").expect("a grad_fn suffix") + 9;
            s[at..s.len() - 2].to_string()
        };
        assert_eq!(name(x.leaky_relu(0.1)), "LeakyReluBackward0");
        assert_eq!(name(x.powf(3.0)), "PowBackward0");
        assert_eq!(name(x.pow(&x)), "PowBackward1");
        assert_eq!(name(x.clamp(0.0, 1.0)), "ClampBackward1");
        assert_eq!(name(x.reshape([4])), "ViewBackward0");
        assert_eq!(name(x.sum_dim(0, false)), "SumBackward1");
        assert_eq!(name(x.matmul(&x)), "MmBackward0");
        assert_eq!(name(x.reshape([1, 2, 2]).matmul(&x)), "UnsafeViewBackward0");
    }

    #[test]
    fn scalars_match_pytorch() {
        // torch.tensor(3.5)
        check(Tensor::scalar(3.5), "tensor(3.5000)");
        // torch.tensor(2.)
        check(Tensor::scalar(2.0), "tensor(2.)");
        // torch.tensor(5)
        check(Tensor::scalar_of(5.0, DType::I64), "tensor(5)");
        // torch.tensor(True)
        check(Tensor::scalar_of(1.0, DType::Bool), "tensor(True)");
        // torch.tensor(0.25, dtype=torch.float64)
        check(
            Tensor::scalar_of(0.25, DType::F64),
            "tensor(0.2500, dtype=torch.float64)",
        );
    }

    #[test]
    fn empty_tensors_match_pytorch() {
        // torch.zeros(0)
        check(Tensor::zeros(&[0]), "tensor([])");
        // torch.zeros(2, 0)
        check(Tensor::zeros(&[2, 0]), "tensor([], size=(2, 0))");
        // torch.zeros(0, dtype=torch.int64)
        check(
            Tensor::zeros_dtype(&[0], DType::I64),
            "tensor([], dtype=torch.int64)",
        );
        // torch.zeros(0, 3, dtype=torch.float64)
        check(
            Tensor::zeros_dtype(&[0, 3], DType::F64),
            "tensor([], size=(0, 3), dtype=torch.float64)",
        );
        // torch.zeros(0, dtype=torch.bool)
        check(
            Tensor::zeros_dtype(&[0], DType::Bool),
            "tensor([], dtype=torch.bool)",
        );
    }

    #[test]
    fn debug_is_display_and_html_escapes() {
        let x = f32s(&[1.0]).requires_grad();
        let y = &x * 2.0;
        assert_eq!(format!("{y:?}"), y.to_string());
        let html = y.to_html();
        assert!(html.contains("grad_fn=&lt;MulBackward0&gt;"), "{html}");
        assert!(
            html.contains("shape=[1] dtype=float32 requires_grad"),
            "{html}"
        );
    }
}
