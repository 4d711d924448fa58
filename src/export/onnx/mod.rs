//! ONNX export.

pub mod proto;
