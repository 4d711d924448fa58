#!/usr/bin/env python3
"""Writes the PyTorch parity fixtures of the loss functions, read by tests/loss_parity.rs.

Regenerate (only when adding or changing a case; needs PyTorch, which CI never installs):

    /root/torch-venv/bin/python scripts/make_loss_fixtures.py

and commit both outputs:

    tests/fixtures/losses.safetensors  every tensor (float ones as f32, class indices as i64)
    tests/fixtures/losses.json         the case list: function, options, input names

Each case calls one torch.nn.functional loss with the options recorded in losses.json (the Rust
test builds the same call from them). Inputs are drawn in f32, so tapegrad sees exactly the same
values, but the reference loss and gradient are computed in f64 and rounded to f32 once. The
gradient is that of `sum(loss * r)` for a fixed random `r` of the loss's shape, with respect to
the input (the first argument), so the backward is tested with a non-trivial upstream gradient.

Tensor keys, for case `c`:
    c/in/<name>  an input: x (input), target, weight, pos_weight
    c/out        the loss
    c/seed       r
    c/grad       d sum(loss * r) / d x
"""

import json
import warnings
import os
import zlib

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT_DIR = os.path.join(ROOT, "tests", "fixtures")
REDUCTIONS = ["none", "mean", "sum"]


class Gen:
    """Seeded f32 input makers for one case (seeded by the case name, so cases are independent)."""

    def __init__(self, name):
        self.g = torch.Generator().manual_seed(zlib.crc32(name.encode()))

    def randn(self, *shape):
        return torch.randn(shape, generator=self.g)

    def uniform(self, *shape, lo=0.0, hi=1.0):
        return lo + (hi - lo) * torch.rand(shape, generator=self.g)

    def away(self, *shape, points=(0.0,), margin=0.1):
        """Standard normal, pushed at least `margin` away from each of `points` (kinks)."""
        x = self.randn(*shape)
        for p in points:
            d = x - p
            near = d.abs() < margin
            x = torch.where(near, p + torch.where(d >= 0, margin, -margin) + d, x)
        return x

    def classes(self, shape, c, ignore=None, n_ignored=0):
        t = torch.randint(0, c, shape, generator=self.g)
        if n_ignored:
            flat = t.view(-1)
            pos = torch.randperm(flat.numel(), generator=self.g)[:n_ignored]
            flat[pos] = ignore
        return t

    def probs(self, *shape, dim=1):
        return torch.softmax(2 * self.randn(*shape), dim=dim)


CASES = []


def case(name, fn, inputs, **opts):
    CASES.append((name, fn, inputs, opts))


def regression():
    for red in REDUCTIONS:
        for fn, kinks, extra in [
            ("mse_loss", (), {}),
            ("l1_loss", (0.0,), {}),
            ("smooth_l1_loss", (0.0, 1.0, -1.0), {"beta": 1.0}),
            ("smooth_l1_loss", (0.0, 0.5, -0.5), {"beta": 0.5}),
            ("smooth_l1_loss", (0.0,), {"beta": 0.0}),
            ("huber_loss", (0.0, 1.0, -1.0), {"delta": 1.0}),
            ("huber_loss", (0.0, 0.3, -0.3), {"delta": 0.3}),
        ]:
            suffix = "".join(f"_{k}{v}" for k, v in extra.items())
            name = f"{fn}{suffix}_{red}"
            g = Gen(name)
            t = g.randn(4, 3)
            x = t + g.away(4, 3, points=kinks)
            case(name, fn, {"x": x, "target": t}, reduction=red, **extra)


def classification():
    C = 5
    for red in REDUCTIONS:
        def ce(tag, x, target, **opts):
            case(f"cross_entropy_{tag}_{red}", "cross_entropy", {"x": x, "target": target, **opts.pop("tensors", {})},
                 reduction=red, **opts)

        g = Gen(f"ce_{red}")
        w = g.uniform(C, lo=0.2, hi=2.0)
        ce("index", g.randn(6, C), g.classes((6,), C))
        ce("weight", g.randn(6, C), g.classes((6,), C), tensors={"weight": w})
        ce("ignore", g.randn(6, C), g.classes((6,), C, -100, 2))
        ce("ignore_custom", g.randn(6, C), g.classes((6,), C, 3, 0), ignore_index=3)
        ce("weight_ignore", g.randn(6, C), g.classes((6,), C, -100, 2), tensors={"weight": w})
        ce("smooth", g.randn(6, C), g.classes((6,), C), label_smoothing=0.1)
        ce("smooth_weight_ignore", g.randn(6, C), g.classes((6,), C, -100, 2), tensors={"weight": w},
           label_smoothing=0.2)
        ce("prob", g.randn(6, C), g.probs(6, C))
        ce("prob_weight_smooth", g.randn(6, C), g.probs(6, C), tensors={"weight": w}, label_smoothing=0.15)
        ce("3d_weight_ignore_smooth", g.randn(3, C, 4), g.classes((3, 4), C, -100, 3), tensors={"weight": w},
           label_smoothing=0.1)
        ce("3d_prob_weight", g.randn(3, C, 4), g.probs(3, C, 4), tensors={"weight": w})
        ce("unbatched", g.randn(C), g.classes((), C))
        ce("unbatched_prob", g.randn(C), g.probs(C, dim=0))

        def nll(tag, x, target, **opts):
            case(f"nll_loss_{tag}_{red}", "nll_loss", {"x": x, "target": target, **opts.pop("tensors", {})},
                 reduction=red, **opts)

        nll("plain", torch.log_softmax(g.randn(6, C), 1), g.classes((6,), C))
        nll("weight_ignore", torch.log_softmax(g.randn(6, C), 1), g.classes((6,), C, 1, 2),
            tensors={"weight": w}, ignore_index=1)
        nll("3d_weight", torch.log_softmax(g.randn(3, C, 4), 1), g.classes((3, 4), C), tensors={"weight": w})


def binary():
    for red in REDUCTIONS:
        g = Gen(f"bce_{red}")
        x = g.uniform(4, 5, lo=0.05, hi=0.95)
        case(f"binary_cross_entropy_{red}", "binary_cross_entropy", {"x": x, "target": g.uniform(4, 5)},
             reduction=red)
        case(f"binary_cross_entropy_weight_{red}", "binary_cross_entropy",
             {"x": g.uniform(4, 5, lo=0.05, hi=0.95), "target": (g.uniform(4, 5) < 0.5).float(),
              "weight": g.uniform(5, lo=0.2, hi=2.0)}, reduction=red)
        # logits up to ±40 (exp would overflow in a naive log(1 + exp(-x)) at -x > 88 in f32; here
        # the large ones check that the linear branch is right)
        logits = g.randn(4, 5) * 3
        logits[0, 0], logits[1, 1] = 40.0, -40.0
        case(f"bce_with_logits_{red}", "binary_cross_entropy_with_logits",
             {"x": logits, "target": g.uniform(4, 5)}, reduction=red)
        case(f"bce_with_logits_weight_pos_weight_{red}", "binary_cross_entropy_with_logits",
             {"x": g.randn(4, 5) * 3, "target": (g.uniform(4, 5) < 0.5).float(),
              "weight": g.uniform(4, 1, lo=0.2, hi=2.0), "pos_weight": g.uniform(5, lo=0.5, hi=3.0)},
             reduction=red)
        case(f"bce_with_logits_pos_weight_{red}", "binary_cross_entropy_with_logits",
             {"x": g.randn(4, 5) * 3, "target": g.uniform(4, 5), "pos_weight": g.uniform(5, lo=0.5, hi=3.0)},
             reduction=red)


def kl():
    for red in REDUCTIONS + ["batchmean"]:
        g = Gen(f"kl_{red}")
        q = g.probs(4, 5)
        q[0, 1] = 0.0  # xlogy: 0 log 0 = 0
        case(f"kl_div_{red}", "kl_div", {"x": torch.log_softmax(g.randn(4, 5), 1), "target": q},
             reduction=red, log_target=False)
        case(f"kl_div_log_target_{red}", "kl_div",
             {"x": torch.log_softmax(g.randn(4, 5), 1), "target": torch.log_softmax(g.randn(4, 5), 1)},
             reduction=red, log_target=True)


def call(fn, t, opts):
    """The torch call of a case, on f64 copies `t` of its inputs."""
    f = getattr(F, fn)
    kw = dict(opts)
    for k in ("weight", "pos_weight"):
        if k in t:
            kw[k] = t[k]
    return f(t["x"], t["target"], **kw)


def main():
    # kl_div "mean" warns that it will change meaning; the fixtures pin the current one
    warnings.filterwarnings("ignore", message="reduction: .mean. divides")
    regression()
    classification()
    binary()
    kl()
    tensors, cases = {}, []
    names = set()
    for name, fn, inputs, opts in CASES:
        assert name not in names, name
        names.add(name)
        t = {k: (v.double() if v.is_floating_point() else v) for k, v in inputs.items()}
        t["x"] = t["x"].clone().requires_grad_()
        out = call(fn, t, opts)
        r = torch.randn(out.shape, generator=torch.Generator().manual_seed(zlib.crc32(b"r" + name.encode())))
        (grad,) = torch.autograd.grad((out * r.double()).sum(), t["x"])
        for k, v in inputs.items():
            tensors[f"{name}/in/{k}"] = v.clone().contiguous()
        tensors[f"{name}/out"] = out.detach().float().contiguous()
        tensors[f"{name}/seed"] = r.float()
        tensors[f"{name}/grad"] = grad.float()
        cases.append({"name": name, "fn": fn, "inputs": sorted(inputs), "options": opts,
                      "call": f"F.{fn}({', '.join(['x', 'target'] + [f'{k}={v!r}' for k, v in opts.items()] + [f'{k}={k}' for k in sorted(inputs) if k not in ('x', 'target')])})"})
    os.makedirs(OUT_DIR, exist_ok=True)
    save_file(tensors, os.path.join(OUT_DIR, "losses.safetensors"))
    with open(os.path.join(OUT_DIR, "losses.json"), "w") as fh:
        # one case per line: readable diffs, small file
        lines = ",\n  ".join(json.dumps(c) for c in cases)
        fh.write(f'{{"generator": "scripts/make_loss_fixtures.py", "torch": "{torch.__version__}",\n'
                 f' "cases": [\n  {lines}\n]}}\n')
    print(f"{len(cases)} cases, {len(tensors)} tensors")


if __name__ == "__main__":
    main()
