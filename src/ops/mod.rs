//! Differentiable tensor ops. Each op's forward, backward rule, shape checks, doc and gradient
//! check live together in one file; the folders group them by kind:
//!
//! - [`unary`]: elementwise functions of one tensor (`exp`, `tanh`, `relu`, …), through one generic
//!   mechanism;
//! - [`binary`]: broadcasting elementwise functions of two tensors (`+`, `maximum`, comparisons,
//!   `where_`), through another;
//! - `reduce`: sums, means, extrema, softmax;
//! - `shape`: views, indexing, joining;
//! - `linalg`: matmul.
//!
//! Adding an op means adding it to the file of its kind (or a new file there, plus one `mod`
//! line), with its doc comment and a `gradcheck` test beside it.

pub mod binary;
mod linalg;
mod reduce;
mod shape;
pub use shape::SliceArg;
pub mod unary;
