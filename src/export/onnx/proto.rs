//! The ONNX protobuf types (`ModelProto`, `GraphProto`, `NodeProto`, `TensorProto`, …), generated
//! at build time from the official `onnx.proto` (vendored in `proto/onnx/`, Apache-2.0) by
//! prost-build. Encode with [`prost::Message::encode_to_vec`], decode with
//! [`prost::Message::decode`].
#![allow(missing_docs, clippy::all, rustdoc::all)]

include!(concat!(env!("OUT_DIR"), "/onnx.rs"));
