"""Helpers shared by the PyTorch fixture generators (scripts/make_*fixtures.py).

- `OUT_DIR`: tests/fixtures, where every generator writes.
- `Gen`: seeded f32 input makers for one case, seeded by a hash of the case name, so adding or
  reordering cases leaves the other cases' data unchanged.
- `save(stem, tensors, meta)`: writes `<stem>.safetensors` (contiguous tensors) and, if `meta` is
  given, `<stem>.json` with one line per case, so diffs of regenerated fixtures stay readable.

Run the generators with the PyTorch venv (never needed in CI): /root/torch-venv/bin/python.
"""

import json
import os
import zlib

import torch
from safetensors.torch import save_file

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT_DIR = os.path.join(ROOT, "tests", "fixtures")


class Gen:
    """Seeded f32 input makers for one case."""

    def __init__(self, name):
        self.g = torch.Generator().manual_seed(zlib.crc32(name.encode()))

    def randn(self, *shape):
        return torch.randn(shape, generator=self.g)

    def pos(self, *shape, lo=0.5, hi=2.0):
        """Uniform in [lo, hi)."""
        return lo + (hi - lo) * torch.rand(shape, generator=self.g)

    def uniform(self, *shape, bound=1.0):
        """Uniform in [-bound, bound)."""
        return (2 * torch.rand(shape, generator=self.g) - 1) * bound

    def away(self, *shape, points=(0.0,), margin=0.1):
        """Standard normal, pushed at least `margin` away from each of `points` (kinks)."""
        x = self.randn(*shape)
        for p in points:
            d = x - p
            near = d.abs() < margin
            x = torch.where(near, p + torch.where(d >= 0, margin, -margin) + d, x)
        return x

    def spaced(self, *shape):
        """A random permutation of 0.05 · (0 .. n), shifted to mean 0: no ties in max pooling."""
        n = 1
        for s in shape:
            n *= s
        return (torch.randperm(n, generator=self.g).float() * 0.05 - 0.025 * n).reshape(shape)

    def ints(self, high, *shape):
        return torch.randint(0, high, shape, generator=self.g)

    def mask(self, *shape, p=0.5):
        return torch.rand(shape, generator=self.g) < p


def save(stem, tensors, meta=None):
    """Writes tests/fixtures/<stem>.safetensors and, with `meta` (a dict whose "cases" is a
    list), tests/fixtures/<stem>.json with one case per line."""
    save_file({k: v.contiguous() for k, v in tensors.items()},
              os.path.join(OUT_DIR, stem + ".safetensors"))
    if meta is None:
        return
    head = {k: v for k, v in meta.items() if k != "cases"}
    lines = [json.dumps(head)[:-1] + ', "cases": [']
    cases = meta.get("cases", [])
    lines += [" " + json.dumps(c) + ("," if i + 1 < len(cases) else "") for i, c in enumerate(cases)]
    lines.append("]}")
    with open(os.path.join(OUT_DIR, stem + ".json"), "w") as f:
        f.write("\n".join(lines) + "\n")
