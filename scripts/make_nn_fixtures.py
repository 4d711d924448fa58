#!/usr/bin/env python3
"""Writes the PyTorch parity fixtures that tests/nn_conv_parity.rs compares tapegrad's convolution
and pooling ops against.

Regenerate (only when adding or changing a case; needs PyTorch, which CI never installs):

    /root/torch-venv/bin/python scripts/make_nn_fixtures.py

and commit both outputs:

    tests/fixtures/nn_conv.safetensors  every tensor, stored as f32
    tests/fixtures/nn_conv.json         the case list: name, PyTorch call, inputs, outputs

For each case the script stores the inputs (f32), the output, a fixed random tensor `r` of the
output's shape, and the gradient of `(out * r).sum()` with respect to every floating-point input
(input, weight, bias). References are computed in f64 from the f32 inputs and rounded to f32
once, so they carry no f32 rounding of PyTorch's own. Max-pool inputs are distinct values spaced
well apart, so no window has a near-tie that rounding could flip.

Tensor keys, for case `c`: c/in/<name>, c/out/<name>, c/seed/<name>, c/grad/<name>.
"""

import json
import os
import zlib

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT_DIR = os.path.join(ROOT, "tests", "fixtures")


def gen(name):
    return torch.Generator().manual_seed(zlib.crc32(name.encode()))


def randn(g, *shape):
    return torch.randn(shape, generator=g)


def spaced(g, *shape):
    """A random permutation of 0.05 · (0 .. n), shifted to mean 0: no ties in max pooling."""
    n = 1
    for s in shape:
        n *= s
    return (torch.randperm(n, generator=g).float() * 0.05 - 0.025 * n).reshape(shape)


# name -> (PyTorch expression over the inputs, input makers)
CASES = {
    "conv2d_basic": ("F.conv2d(x, w, b)", lambda g: dict(x=randn(g, 2, 3, 6, 5), w=randn(g, 4, 3, 3, 2), b=randn(g, 4))),
    "conv2d_stride_pad": ("F.conv2d(x, w, b, stride=2, padding=1)", lambda g: dict(x=randn(g, 2, 3, 7, 8), w=randn(g, 5, 3, 3, 3), b=randn(g, 5))),
    "conv2d_dilation_groups": ("F.conv2d(x, w, None, stride=(1, 2), padding=(2, 1), dilation=2, groups=2)", lambda g: dict(x=randn(g, 2, 4, 8, 7), w=randn(g, 6, 2, 3, 2))),
    "conv2d_pointwise_groups": ("F.conv2d(x, w, b, groups=3)", lambda g: dict(x=randn(g, 3, 6, 4, 5), w=randn(g, 6, 2, 1, 1), b=randn(g, 6))),
    "conv2d_noncontig": ("F.conv2d(x.permute(0, 3, 1, 2), w, b, padding=1)", lambda g: dict(x=randn(g, 2, 6, 5, 3), w=randn(g, 4, 3, 3, 3), b=randn(g, 4))),
    "conv2d_lenet": ("F.conv2d(x, w, b)", lambda g: dict(x=randn(g, 2, 8, 13, 13), w=randn(g, 16, 8, 3, 3), b=randn(g, 16))),
    "conv1d": ("F.conv1d(x, w, b, stride=2, padding=1, dilation=2, groups=2)", lambda g: dict(x=randn(g, 2, 4, 11), w=randn(g, 6, 2, 3), b=randn(g, 6))),
    "conv_transpose2d": ("F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1)", lambda g: dict(x=randn(g, 2, 4, 3, 4), w=randn(g, 4, 3, 3, 3), b=randn(g, 3))),
    "conv_transpose2d_groups_dilation": ("F.conv_transpose2d(x, w, None, stride=(2, 1), padding=(0, 1), output_padding=(1, 0), groups=2, dilation=(1, 2))", lambda g: dict(x=randn(g, 1, 4, 4, 3), w=randn(g, 4, 3, 2, 3))),
    "max_pool2d": ("F.max_pool2d(x, 2)", lambda g: dict(x=spaced(g, 2, 3, 6, 7))),
    "max_pool2d_pad_dilation_ceil": ("F.max_pool2d(x, (3, 2), stride=2, padding=1, dilation=(1, 2), ceil_mode=True)", lambda g: dict(x=spaced(g, 2, 2, 7, 8))),
    "max_pool2d_indices": ("F.max_pool2d(x, 3, stride=2, padding=1, return_indices=True)", lambda g: dict(x=spaced(g, 3, 5, 6))),
    "avg_pool2d": ("F.avg_pool2d(x, 2)", lambda g: dict(x=randn(g, 2, 3, 6, 7))),
    "avg_pool2d_pad_ceil": ("F.avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True)", lambda g: dict(x=randn(g, 2, 2, 8, 7))),
    "avg_pool2d_exclude_pad": ("F.avg_pool2d(x, (2, 3), stride=(2, 1), padding=(1, 1), ceil_mode=True, count_include_pad=False)", lambda g: dict(x=randn(g, 1, 3, 7, 6))),
    "adaptive_avg_pool2d": ("F.adaptive_avg_pool2d(x, (3, 4))", lambda g: dict(x=randn(g, 2, 3, 7, 9))),
    "adaptive_avg_pool2d_global": ("F.adaptive_avg_pool2d(x, 1)", lambda g: dict(x=randn(g, 3, 5, 5))),
}


def main():
    tensors, cases = {}, []
    for name, (expr, make) in CASES.items():
        g = gen(name)
        inputs = make(g)
        x64 = {k: v.double().requires_grad_() for k, v in inputs.items()}
        out = eval(expr, {"F": F}, x64)
        outs = list(out) if isinstance(out, tuple) else [out]
        loss = 0
        out_specs = []
        for i, o in enumerate(outs):
            oname = f"out{i}"
            tensors[f"{name}/out/{oname}"] = o.detach().float().contiguous()
            if o.dtype == torch.float64:
                r = torch.randn(o.shape, generator=g)
                tensors[f"{name}/seed/{oname}"] = r
                loss = loss + (o * r.double()).sum()
            out_specs.append({"name": oname, "dtype": "f32" if o.is_floating_point() else "i64"})
        loss.backward()
        for k, v in inputs.items():
            tensors[f"{name}/in/{k}"] = v.contiguous()
            tensors[f"{name}/grad/{k}"] = x64[k].grad.float().contiguous()
        cases.append({"name": name, "torch": expr, "inputs": list(inputs), "outputs": out_specs})
    save_file(tensors, os.path.join(OUT_DIR, "nn_conv.safetensors"))
    with open(os.path.join(OUT_DIR, "nn_conv.json"), "w") as f:
        json.dump({"generator": "scripts/make_nn_fixtures.py", "torch": torch.__version__, "cases": cases}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
