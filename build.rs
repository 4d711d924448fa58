//! Build script: with feature `onnx`, generates the ONNX protobuf types from the vendored
//! `proto/onnx/onnx.proto` (prost-build, parsed by protox: no `protoc` needed). Without the
//! feature it does nothing and needs no build-dependency.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "onnx")]
    onnx();
}

#[cfg(feature = "onnx")]
fn onnx() {
    println!("cargo:rerun-if-changed=proto/onnx/onnx.proto");
    let files = protox::compile(["onnx.proto"], ["proto/onnx"])
        .unwrap_or_else(|e| panic!("parsing proto/onnx/onnx.proto: {e}"));
    prost_build::Config::new()
        .compile_fds(files)
        .unwrap_or_else(|e| panic!("generating the ONNX types: {e}"));
}
