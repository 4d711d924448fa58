//! Linear algebra: matmul with PyTorch's semantics.

mod matmul;
