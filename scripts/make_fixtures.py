#!/usr/bin/env python3
"""Writes the PyTorch parity fixtures that tests/parity.rs compares tapegrad against.

Regenerate (only when adding or changing a case; needs PyTorch, which CI never installs):

    /root/torch-venv/bin/python scripts/make_fixtures.py

and commit both outputs:

    tests/fixtures/ops.safetensors  every tensor, stored as f32
    tests/fixtures/ops.json         the case list

CI and `cargo test` read only these committed files; they never run this script.

Each case is one line below: a name, a PyTorch expression (the very string that is evaluated, and
recorded in ops.json as the case's description) and its inputs. For each case the script stores
the inputs, the outputs, a fixed random seed tensor `r` per differentiable output, and the gradient
of `sum((out * r).sum())` with respect to every floating-point input, so the backward of every op
is tested with a non-trivial upstream gradient, not just ones.

Inputs are drawn in f32 (so tapegrad sees exactly the same values) but the reference outputs and
gradients are computed in f64 and rounded to f32 once, so the fixtures carry no f32 rounding
error of PyTorch's own. Each case draws from its own generator seeded by a hash of its name, so
adding or reordering cases leaves the other cases' data unchanged. Inputs are kept away from
non-differentiable points (relu/abs at 0, clamp bounds, ties in max/min).

Tensor keys in ops.safetensors, for case `c`:
    c/in/<input>      an input (index and mask inputs too, as f32 holding 0/1 or integers)
    c/out/<output>    an output (integer outputs such as argmax indices as f32 too)
    c/seed/<output>   r for a differentiable output
    c/grad/<input>    d sum((out * r).sum()) / d input, for inputs that require grad
ops.json gives each tensor's real dtype ("f32", "i64", "bool") so the reader can convert.
"""

import json
import os
import zlib

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT_DIR = os.path.join(ROOT, "tests", "fixtures")

DTYPE_NAMES = {torch.float32: "f32", torch.float64: "f32", torch.int64: "i64", torch.bool: "bool"}


class Gen:
    """Seeded f32 input makers for one case."""

    def __init__(self, name):
        self.g = torch.Generator().manual_seed(zlib.crc32(name.encode()))

    def randn(self, *shape):
        return torch.randn(shape, generator=self.g)

    def pos(self, *shape, lo=0.5, hi=2.0):
        """Uniform in [lo, hi): for log, sqrt, pow bases, divisors."""
        return lo + (hi - lo) * torch.rand(shape, generator=self.g)

    def away(self, *shape, points=(0.0,), margin=0.1):
        """Standard normal, pushed at least `margin` away from each of `points` (kinks)."""
        x = self.randn(*shape)
        for p in points:
            d = x - p
            near = d.abs() < margin
            x = torch.where(near, p + torch.where(d >= 0, margin, -margin) + d, x)
        return x

    def mag(self, *shape):
        """Random sign, magnitude in [0.5, 1.5): products that neither vanish nor explode."""
        sign = torch.where(torch.rand(shape, generator=self.g) < 0.5, -1.0, 1.0)
        return sign * self.pos(*shape, lo=0.5, hi=1.5)

    def mask(self, *shape):
        return torch.rand(shape, generator=self.g) < 0.5

    def index_list(self, values):
        return torch.tensor(values, dtype=torch.int64)


class Const:
    """A floating-point input that does not require grad."""

    def __init__(self, t):
        self.t = t


CASES = []


def case(name, expr, inputs, outs=("out",)):
    """Evaluates `expr` on `inputs` (a dict name -> tensor or Const) and records the case."""
    CASES.append((name, expr, inputs(Gen(name)), outs))


# Shorthands for the input dicts: each is called with the case's own generator.
def X(make, *shape, **kw):
    return lambda g: {"x": getattr(g, make)(*shape, **kw)}


def AB(make_a, shape_a, make_b, shape_b):
    return lambda g: {"a": getattr(g, make_a)(*shape_a), "b": getattr(g, make_b)(*shape_b)}


# ----- elementwise ------------------------------------------------------------------------------
case("neg", "-x", X("randn", 3, 4))
case("exp", "torch.exp(x)", X("randn", 3, 4))
case("log", "torch.log(x)", X("pos", 3, 4))
case("sqrt", "torch.sqrt(x)", X("pos", 3, 4))
case("rsqrt", "torch.rsqrt(x)", X("pos", 3, 4))
case("abs", "torch.abs(x)", X("away", 3, 4))
case("sign", "torch.sign(x)", X("away", 3, 4))
case("square", "torch.square(x)", X("randn", 3, 4))
case("pow_tensor", "torch.pow(a, b)", AB("pos", (3, 4), "randn", (3, 4)))
case("pow_tensor_broadcast", "torch.pow(a, b)", AB("pos", (2, 3, 1), "randn", (4,)))
case("pow_scalar_int", "torch.pow(x, 3.0)", X("randn", 3, 4))
case("pow_scalar_frac", "torch.pow(x, 2.5)", X("pos", 3, 4))
case("pow_scalar_neg", "torch.pow(x, -1.5)", X("pos", 3, 4))
case("sin", "torch.sin(x)", X("randn", 3, 4))
case("cos", "torch.cos(x)", X("randn", 3, 4))
case("tanh", "torch.tanh(x)", X("randn", 3, 4))
case("sigmoid", "torch.sigmoid(x)", X("randn", 3, 4))
case("relu", "torch.relu(x)", X("away", 3, 4))
case("leaky_relu", "F.leaky_relu(x, 0.1)", X("away", 3, 4))
case("gelu", "F.gelu(x)", X("randn", 3, 4))
case("gelu_tanh", "F.gelu(x, approximate='tanh')", X("randn", 3, 4))
case("silu", "F.silu(x)", X("randn", 3, 4))
case("softplus", "F.softplus(x)", X("randn", 3, 4))
case("clamp", "torch.clamp(x, -0.5, 0.5)", X("away", 3, 4, points=(-0.5, 0.5), margin=0.05))
case("clamp_min", "torch.clamp(x, min=-0.2)", X("away", 3, 4, points=(-0.2,), margin=0.05))
case("clamp_max", "torch.clamp(x, max=0.3)", X("away", 3, 4, points=(0.3,), margin=0.05))
# b differs from a by at least 0.1 everywhere: no ties, where the gradient is undefined.
def NO_TIES(g):
    a = g.randn(3, 4)
    return {"a": a, "b": a + g.away(3, 4)}


case("maximum", "torch.maximum(a, b)", NO_TIES)
case("minimum", "torch.minimum(a, b)", NO_TIES)
case("maximum_broadcast", "torch.maximum(a, b)", AB("away", (2, 3, 1), "away", (4,)))
case("where", "torch.where(cond, a, b)",
     lambda g: {"cond": g.mask(3, 4), "a": g.randn(3, 4), "b": g.randn(3, 4)})
case("where_broadcast", "torch.where(cond, a, b)",
     lambda g: {"cond": g.mask(3, 1), "a": g.randn(3, 4), "b": g.randn(4)})
case("masked_fill", "x.masked_fill(mask, -1.5)",
     lambda g: {"x": g.randn(3, 4), "mask": g.mask(3, 4)})
case("masked_fill_broadcast", "x.masked_fill(mask, 2.0)",
     lambda g: {"x": g.randn(2, 3, 4), "mask": g.mask(1, 4)})
case("gt", "a > b", lambda g: {"a": Const(g.randn(3, 4)), "b": Const(g.randn(4))})
case("le_scalar", "x <= 0.25", lambda g: {"x": Const(g.away(3, 4, points=(0.25,)))})

# ----- binary arithmetic, broadcast [2,3,1] op [4] ----------------------------------------------
case("add", "a + b", AB("randn", (2, 3, 1), "randn", (4,)))
case("sub", "a - b", AB("randn", (2, 3, 1), "randn", (4,)))
case("mul", "a * b", AB("randn", (2, 3, 1), "randn", (4,)))
case("div", "a / b", AB("randn", (2, 3, 1), "mag", (4,)))
case("add_same_shape", "a + b", AB("randn", (3, 4), "randn", (3, 4)))
case("mul_scalar", "x * 2.5", X("randn", 3, 4))
case("rsub_scalar", "1.0 - x", X("randn", 3, 4))
case("rdiv_scalar", "2.0 / x", X("mag", 3, 4))

# ----- reductions -------------------------------------------------------------------------------
case("sum_all", "x.sum()", X("randn", 2, 3, 4))
case("sum_dim", "x.sum(dim=1)", X("randn", 2, 3, 4))
case("sum_dim_keepdim", "x.sum(dim=1, keepdim=True)", X("randn", 2, 3, 4))
case("sum_dims_neg", "x.sum(dim=(0, -1))", X("randn", 2, 3, 4))
case("mean_all", "x.mean()", X("randn", 2, 3, 4))
case("mean_dim", "x.mean(dim=2)", X("randn", 2, 3, 4))
case("mean_dims_keepdim", "x.mean(dim=(0, 2), keepdim=True)", X("randn", 2, 3, 4))
case("var_all", "x.var()", X("randn", 3, 4))
case("var_dim_unbiased", "x.var(dim=1, correction=1)", X("randn", 3, 4))
case("var_dim_biased_keepdim", "x.var(dim=0, correction=0, keepdim=True)", X("randn", 3, 4))
case("std_all", "x.std()", X("randn", 3, 4))
case("std_dim_unbiased", "x.std(dim=1, correction=1)", X("randn", 3, 4))
case("std_dim_biased", "x.std(dim=-1, correction=0)", X("randn", 2, 3, 4))
case("max_dim", "x.max(dim=1)", X("randn", 3, 4), outs=("values", "indices"))
case("max_dim_keepdim", "x.max(dim=0, keepdim=True)", X("randn", 3, 4), outs=("values", "indices"))
case("min_dim", "x.min(dim=-1)", X("randn", 2, 3, 4), outs=("values", "indices"))
case("max_all", "x.max()", X("randn", 3, 4))
case("min_all", "x.min()", X("randn", 3, 4))
case("argmax_dim", "x.argmax(dim=1)", lambda g: {"x": Const(g.randn(3, 4))})
case("argmin_dim_keepdim", "x.argmin(dim=0, keepdim=True)", lambda g: {"x": Const(g.randn(3, 4))})
case("argmax_all", "x.argmax()", lambda g: {"x": Const(g.randn(3, 4))})
case("prod_all", "x.prod()", X("mag", 3, 4))
case("prod_dim", "x.prod(dim=1)", X("mag", 3, 4))
case("logsumexp", "torch.logsumexp(x, dim=1)", X("randn", 3, 4))
case("logsumexp_keepdim", "torch.logsumexp(x, dim=0, keepdim=True)", X("randn", 3, 4))
case("softmax", "torch.softmax(x, dim=-1)", X("randn", 3, 4))
case("softmax_dim0", "torch.softmax(x, dim=0)", X("randn", 2, 3, 4))
case("log_softmax", "torch.log_softmax(x, dim=1)", X("randn", 3, 4))
case("norm_p2_all", "torch.linalg.vector_norm(x, 2)", X("randn", 3, 4))
case("norm_p1_dim", "torch.linalg.vector_norm(x, 1, dim=1)", X("away", 3, 4))
case("norm_p2_dim_keepdim", "torch.linalg.vector_norm(x, 2, dim=0, keepdim=True)", X("randn", 3, 4))

# ----- matmul -----------------------------------------------------------------------------------
case("matmul_dot", "torch.matmul(a, b)", AB("randn", (4,), "randn", (4,)))
case("matmul_2d", "torch.matmul(a, b)", AB("randn", (3, 4), "randn", (4, 5)))
case("matmul_vec_mat", "torch.matmul(a, b)", AB("randn", (4,), "randn", (4, 5)))
case("matmul_mat_vec", "torch.matmul(a, b)", AB("randn", (3, 4), "randn", (4,)))
case("matmul_batched", "torch.matmul(a, b)", AB("randn", (2, 3, 4), "randn", (4, 5)))
case("matmul_batch_broadcast", "torch.matmul(a, b)", AB("randn", (2, 1, 3, 4), "randn", (3, 4, 2)))

# ----- shape ops --------------------------------------------------------------------------------
case("reshape", "x.reshape(4, -1)", X("randn", 2, 3, 4))
case("view", "x.view(6, 4)", X("randn", 2, 3, 4))
case("permute", "x.permute(2, 0, 1)", X("randn", 2, 3, 4))
case("transpose", "x.transpose(0, 2)", X("randn", 2, 3, 4))
case("t", "x.t()", X("randn", 3, 4))
case("expand", "x.expand(2, 3, 4)", X("randn", 3, 1))
case("narrow", "x.narrow(1, 1, 2)", X("randn", 2, 3, 4))
case("slice_step", "x[:, 1:5:2]", X("randn", 2, 5, 3))
case("index_select", "x.index_select(1, idx)",
     lambda g: {"x": g.randn(3, 4), "idx": g.index_list([0, 2, 2, 3])})
case("gather", "x.gather(1, idx)",
     lambda g: {"x": g.randn(3, 4), "idx": g.index_list([[0, 0], [3, 1], [2, 2]])})
case("scatter_add", "x.scatter_add(1, idx, src)",
     lambda g: {"x": g.randn(3, 4), "idx": g.index_list([[0, 0], [3, 1], [2, 2]]),
                "src": g.randn(3, 2)})
case("cat_dim0", "torch.cat([a, b], dim=0)", AB("randn", (2, 3), "randn", (1, 3)))
case("cat_dim1", "torch.cat([a, b], dim=1)", AB("randn", (2, 3), "randn", (2, 2)))
case("stack", "torch.stack([a, b], dim=1)", AB("randn", (2, 3), "randn", (2, 3)))
case("split", "torch.split(x, 2, dim=0)", X("randn", 5, 3), outs=("p0", "p1", "p2"))
case("chunk", "torch.chunk(x, 2, dim=1)", X("randn", 3, 4), outs=("p0", "p1"))
case("pad_last", "F.pad(x, (1, 2), value=0.5)", X("randn", 3, 4))
case("pad_two_dims", "F.pad(x, (1, 0, 0, 2))", X("randn", 2, 3, 4))
case("repeat", "x.repeat(2, 1, 2)", X("randn", 2, 3))
case("flatten", "x.flatten()", X("randn", 2, 3, 4))
case("flatten_from", "x.flatten(1)", X("randn", 2, 3, 4))
case("squeeze", "x.squeeze()", X("randn", 3, 1, 4, 1))
case("squeeze_dim", "x.squeeze(1)", X("randn", 3, 1, 4))
case("unsqueeze", "x.unsqueeze(-1)", X("randn", 3, 4))

# ----- non-contiguous inputs: x is stored transposed ([4, 3]) or permuted, or is expanded -------
case("noncontig_exp", "torch.exp(x.t())", X("randn", 4, 3))
case("noncontig_add", "x.t() + b", lambda g: {"x": g.randn(4, 3), "b": g.randn(4)})
case("noncontig_sum_dim", "x.t().sum(dim=1)", X("randn", 4, 3))
case("noncontig_matmul", "torch.matmul(x.t(), b)", lambda g: {"x": g.randn(4, 3), "b": g.randn(4, 2)})
case("noncontig_reshape", "x.t().reshape(-1)", X("randn", 4, 3))
case("noncontig_mul_both", "x.t() * y.t()", lambda g: {"x": g.randn(4, 3), "y": g.randn(4, 3)})
case("noncontig_where", "torch.where(cond, x.t(), b)",
     lambda g: {"cond": g.mask(3, 4), "x": g.randn(4, 3), "b": g.randn(3, 1)})
case("noncontig_mean_permuted", "x.permute(2, 0, 1).mean(dim=1)", X("randn", 2, 3, 4))
case("noncontig_matmul_batched", "torch.matmul(x.transpose(1, 2), b)",
     lambda g: {"x": g.randn(2, 4, 3), "b": g.randn(4, 2)})
case("noncontig_expanded_mul", "x.expand(3, 4) * b", lambda g: {"x": g.randn(3, 1), "b": g.randn(3, 4)})
case("noncontig_softmax", "torch.softmax(x.t(), dim=-1)", X("randn", 4, 3))
case("noncontig_cat", "torch.cat([x.t(), b], dim=0)", lambda g: {"x": g.randn(4, 3), "b": g.randn(2, 4)})


def dtype_name(t):
    return DTYPE_NAMES[t.dtype]


def run_case(name, expr, inputs, outs):
    tensors, entries, leaves = {}, [], {}
    env = {"torch": torch, "F": F}
    for key, val in inputs.items():
        grad = not isinstance(val, Const) and val.is_floating_point()
        t = val.t if isinstance(val, Const) else val
        tensors[f"{name}/in/{key}"] = t.float()
        entries.append({"name": key, "shape": list(t.shape), "dtype": dtype_name(t),
                        "requires_grad": grad})
        # The reference is computed in f64 from the f32 values.
        v = t.double() if t.is_floating_point() else t.clone()
        if grad:
            v.requires_grad_(True)
            leaves[key] = v
        env[key] = v
    result = eval(expr, env)
    results = list(result) if isinstance(result, tuple) else [result]
    assert len(results) == len(outs), f"{name}: {len(results)} outputs, names {outs}"
    loss = None
    out_entries = []
    for oname, o in zip(outs, results):
        diff = o.requires_grad
        tensors[f"{name}/out/{oname}"] = o.detach().float()
        out_entries.append({"name": oname, "shape": list(o.shape), "dtype": dtype_name(o),
                            "differentiable": diff})
        if diff:
            r = Gen(f"{name}/seed/{oname}").randn(*o.shape)
            tensors[f"{name}/seed/{oname}"] = r
            term = (o * r.double()).sum()
            loss = term if loss is None else loss + term
    if leaves:
        assert loss is not None, f"{name}: inputs require grad but no output is differentiable"
        grads = torch.autograd.grad(loss, list(leaves.values()))
        for key, gr in zip(leaves, grads):
            tensors[f"{name}/grad/{key}"] = gr.float()
    return tensors, {"name": name, "op": expr, "inputs": entries, "outputs": out_entries}


def main():
    torch.manual_seed(0)  # nothing should use the global generator; pinned anyway
    names = [c[0] for c in CASES]
    dup = {n for n in names if names.count(n) > 1}
    assert not dup, f"duplicate case names: {sorted(dup)}"
    all_tensors, listing = {}, []
    for c in CASES:
        tensors, entry = run_case(*c)
        all_tensors.update(tensors)
        listing.append(entry)
    os.makedirs(OUT_DIR, exist_ok=True)
    all_tensors = {k: v.contiguous() for k, v in all_tensors.items()}
    save_file(all_tensors, os.path.join(OUT_DIR, "ops.safetensors"))
    doc = {
        "generator": "scripts/make_fixtures.py",
        "torch_version": torch.__version__.split("+")[0],
        "loss": "sum over differentiable outputs o of (o * seed[o]).sum()",
        "cases": listing,
    }
    # One case per line: readable, and a changed case is a one-line diff.
    head = {k: v for k, v in doc.items() if k != "cases"}
    lines = [json.dumps(head)[:-1] + ', "cases": [']
    lines += [" " + json.dumps(c) + "," for c in listing]
    lines[-1] = lines[-1][:-1]
    lines.append("]}")
    with open(os.path.join(OUT_DIR, "ops.json"), "w") as f:
        f.write("\n".join(lines) + "\n")
    size = os.path.getsize(os.path.join(OUT_DIR, "ops.safetensors"))
    print(f"{len(listing)} cases, {len(all_tensors)} tensors, ops.safetensors {size} bytes")


if __name__ == "__main__":
    main()
