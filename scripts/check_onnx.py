"""Checks an ONNX file tapegrad wrote and runs it in ONNX Runtime (tests/export_onnx.rs,
examples/export_onnx.rs, scripts/bench_onnx.py).

usage: check_onnx.py MODEL.onnx INPUTS.safetensors OUTPUTS.safetensors [--threads N] [--print]

1. onnx.checker.check_model(full_check=True) and strict shape inference;
2. runs the model in ONNX Runtime (CPU) on the arrays of INPUTS.safetensors, keyed by the
   graph's input names;
3. writes the outputs to OUTPUTS.safetensors keyed by the graph's output names (and prints them
   with --print).
"""
import argparse
import sys

import numpy as np
import onnx
import onnxruntime as ort
from safetensors.numpy import load_file, save_file


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("inputs")
    p.add_argument("outputs")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--print", action="store_true")
    a = p.parse_args()

    model = onnx.load(a.model)
    onnx.checker.check_model(model, full_check=True)
    onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = a.threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(a.model, opts, providers=["CPUExecutionProvider"])
    arrays = load_file(a.inputs)
    feed = {}
    for i in sess.get_inputs():
        if i.name not in arrays:
            sys.exit(f"check_onnx.py: no array named '{i.name}' in {a.inputs}")
        feed[i.name] = arrays[i.name]
    names = [o.name for o in sess.get_outputs()]
    outs = sess.run(names, feed)
    save_file({n: np.ascontiguousarray(o) for n, o in zip(names, outs)}, a.outputs)
    if a.print:
        for n, o in zip(names, outs):
            print(f"{n} {list(o.shape)}: {o.tolist()}")


if __name__ == "__main__":
    main()
