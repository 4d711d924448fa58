#!/usr/bin/env python3
"""Writes the PyTorch parity fixtures of the layer ops (tests/nn_ops_parity.rs reads them).

Regenerate (only when adding or changing a case; needs PyTorch, which CI never installs):

    /root/torch-venv/bin/python scripts/make_nnops_fixtures.py

and commit the output, tests/fixtures/nn_ops.safetensors, together with this script.

Cases: layer_norm (with and without affine), batch_norm (training, with the running statistics
after the call; eval), group_norm, embedding (with and without padding_idx) and
scaled_dot_product_attention (no mask, causal, boolean key-padding mask, float mask, a boolean
mask leaving one query no key: PyTorch's CPU kernel gives zeros there, not NaN). Dropout is
not here: its mask comes from tapegrad's own generator, so it is tested statistically instead.

Inputs are drawn in f32 (so tapegrad sees exactly the same values), but the references are
computed in f64 from them and rounded to f32 once, so they carry no f32 rounding error of
PyTorch's own. For each differentiable output a fixed random `r` is stored, and the gradient of
`(out * r).sum()` with respect to every float input. Each case draws from its own generator,
seeded by a hash of its name, so adding a case leaves the others unchanged.

Tensor keys, for case `c` (dtypes as in PyTorch: f32, i64 for indices, bool for masks):
    c/in/<input>     an input
    c/out/<output>   an output (batch_norm_train also stores running_mean / running_var after
                     the call, as outputs without a seed)
    c/seed/<output>  r for a differentiable output
    c/grad/<input>   d (out * r).sum() / d input, for the float inputs
"""

import os
import zlib

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "tests", "fixtures", "nn_ops.safetensors")


class Gen:
    """Seeded f32 inputs for one case."""

    def __init__(self, name):
        self.g = torch.Generator().manual_seed(zlib.crc32(name.encode()))

    def randn(self, *shape):
        return torch.randn(shape, generator=self.g)

    def pos(self, *shape):
        return 0.5 + 1.5 * torch.rand(shape, generator=self.g)

    def ints(self, high, *shape):
        return torch.randint(0, high, shape, generator=self.g)


def norm_cases():
    """name -> (inputs, differentiable input names, fn(inputs as f64) -> dict of outputs)."""
    cases = {}

    g = Gen("layer_norm_affine")
    cases["layer_norm_affine"] = (
        {"x": g.randn(4, 3, 5), "weight": g.randn(3, 5), "bias": g.randn(3, 5)},
        lambda t: {"y": F.layer_norm(t["x"], [3, 5], t["weight"], t["bias"], 1e-5)},
    )
    g = Gen("layer_norm_plain")
    cases["layer_norm_plain"] = (
        {"x": g.randn(4, 6)},
        lambda t: {"y": F.layer_norm(t["x"], [6], None, None, 1e-5)},
    )

    g = Gen("batch_norm_train")
    bn_in = {"x": g.randn(4, 3, 2, 2), "weight": g.randn(3), "bias": g.randn(3),
             "running_mean": g.randn(3), "running_var": g.pos(3)}

    def bn_train(t):
        rm, rv = t["running_mean"].detach().clone(), t["running_var"].detach().clone()
        y = F.batch_norm(t["x"], rm, rv, t["weight"], t["bias"], True, 0.1, 1e-5)
        return {"y": y, "running_mean": rm, "running_var": rv}

    cases["batch_norm_train"] = (bn_in, bn_train)

    g = Gen("batch_norm_eval")
    cases["batch_norm_eval"] = (
        {"x": g.randn(5, 3, 4), "weight": g.randn(3), "bias": g.randn(3),
         "running_mean": g.randn(3), "running_var": g.pos(3)},
        lambda t: {"y": F.batch_norm(t["x"], t["running_mean"], t["running_var"], t["weight"],
                                     t["bias"], False, 0.1, 1e-5)},
    )

    g = Gen("group_norm")
    cases["group_norm"] = (
        {"x": g.randn(2, 6, 3, 2), "weight": g.randn(6), "bias": g.randn(6)},
        lambda t: {"y": F.group_norm(t["x"], 3, t["weight"], t["bias"], 1e-5)},
    )

    g = Gen("embedding")
    cases["embedding"] = (
        {"idx": g.ints(7, 3, 4), "weight": g.randn(7, 5)},
        lambda t: {"y": F.embedding(t["idx"], t["weight"])},
    )
    g = Gen("embedding_padding")
    idx = g.ints(7, 3, 4)
    idx[0, 1] = 2  # make sure the padding row is looked up
    cases["embedding_padding"] = (
        {"idx": idx, "weight": g.randn(7, 5)},
        lambda t: {"y": F.embedding(t["idx"], t["weight"], padding_idx=2)},
    )

    def qkv(name, l, s):
        g = Gen(name)
        return g, {"q": g.randn(2, 2, l, 4), "k": g.randn(2, 2, s, 4), "v": g.randn(2, 2, s, 3)}

    sdpa = F.scaled_dot_product_attention
    _, t0 = qkv("sdpa", 3, 5)
    cases["sdpa"] = (t0, lambda t: {"y": sdpa(t["q"], t["k"], t["v"])})
    _, t1 = qkv("sdpa_causal", 4, 4)
    cases["sdpa_causal"] = (t1, lambda t: {"y": sdpa(t["q"], t["k"], t["v"], is_causal=True)})
    _, t2 = qkv("sdpa_padding_mask", 3, 5)
    t2["mask"] = torch.tensor([[True] * 5, [True] * 3 + [False] * 2]).reshape(2, 1, 1, 5)
    cases["sdpa_padding_mask"] = (
        t2, lambda t: {"y": sdpa(t["q"], t["k"], t["v"], attn_mask=t["mask"])})
    g, t3 = qkv("sdpa_float_mask", 3, 5)
    t3["mask"] = g.randn(2, 1, 3, 5)
    cases["sdpa_float_mask"] = (
        t3, lambda t: {"y": sdpa(t["q"], t["k"], t["v"], attn_mask=t["mask"], scale=0.7)})
    _, t4 = qkv("sdpa_fully_masked_row", 3, 5)
    keep = torch.rand(2, 1, 3, 5, generator=Gen("sdpa_fully_masked_row/mask").g) < 0.6
    keep[..., 0] = True  # every query keeps key 0 ...
    keep[0, 0, 1, :] = False  # ... except query 1 of sample 0, which keeps nothing
    t4["mask"] = keep
    cases["sdpa_fully_masked_row"] = (
        t4, lambda t: {"y": sdpa(t["q"], t["k"], t["v"], attn_mask=t["mask"])})
    return cases


NOT_DIFFERENTIABLE = {"running_mean", "running_var"}


def main():
    out = {}
    for name, (inputs, fn) in norm_cases().items():
        g = Gen(name + "/seed")
        wide = {}
        for k, v in inputs.items():
            out[f"{name}/in/{k}"] = v.contiguous()
            if v.is_floating_point():
                v = v.double()
                if k not in NOT_DIFFERENTIABLE:
                    v.requires_grad_(True)
            wide[k] = v
        outputs = fn(wide)
        loss = 0
        for k, y in outputs.items():
            out[f"{name}/out/{k}"] = y.detach().float().contiguous()
            if y.requires_grad:
                r = g.randn(*y.shape)
                out[f"{name}/seed/{k}"] = r
                loss = loss + (y * r.double()).sum()
        loss.backward()
        for k, v in wide.items():
            if v.requires_grad:
                out[f"{name}/grad/{k}"] = v.grad.float().contiguous()
    save_file(out, OUT)
    print(f"wrote {len(out)} tensors to {OUT} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
