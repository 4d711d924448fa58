//! Leaving tapegrad: writing a trained model in formats other runtimes read, like `torch.onnx`.
//!
//! - [`onnx`] (feature `onnx`): an ONNX `ModelProto` traced from one forward pass, for ONNX
//!   Runtime, TensorRT, OpenVINO, and the converters to TF Lite / Core ML.

#[cfg(feature = "onnx")]
pub mod onnx;
