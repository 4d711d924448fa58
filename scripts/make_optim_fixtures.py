"""Generates tests/fixtures/optim.{safetensors,json}: PyTorch's reference for tests/optim.rs.

Run with a Python that has torch, numpy and safetensors (never needed in CI):

    /root/torch-venv/bin/python scripts/make_optim_fixtures.py

What it records:
- optimizers: for a small fixed model (W [4, 3], b [3]; loss = sum((x @ W + b - t)^2) with fixed
  x [8, 4], t [8, 3]), 100 steps of each configuration in float32 and in float64, the parameters
  at steps 0, 10, ..., 100 (safetensors `{name}.{dtype}.W` [11, 4, 3], `{name}.{dtype}.b` [11, 3]);
  the JSON holds each configuration's parameter groups with every hyper-parameter as PyTorch
  stored it, plus each optimizer class's defaults.
- schedulers: the learning rate of every group at creation and after each of 100 steps
  (`sched.{name}.lr` [101, 2] float64), OneCycleLR's momentum / beta1 too
  (`sched.{name}.momentum`), ReduceLROnPlateau fed a fixed metric sequence
  (`sched.{name}.metrics` [100]). Exact values go in the safetensors file: JSON readers do not all
  round 17-digit decimals back to the same double.
- clipping: the gradients at the initial parameters after clip_grad_norm_ / clip_grad_value_.
"""

import json
import math
import os

import numpy as np
import torch
from safetensors.numpy import save_file

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "tests", "fixtures")
STEPS = 100
EVERY = 10

torch.manual_seed(0)
X = torch.randn(8, 4, dtype=torch.float64)
T = torch.randn(8, 3, dtype=torch.float64) * 2 + 3
W0 = torch.randn(4, 3, dtype=torch.float64) * 0.5
B0 = torch.randn(3, dtype=torch.float64) * 0.5

# name -> (class, param groups as (which params, group options), common options)
OPTIMIZERS = [
    ("sgd", torch.optim.SGD, [(["W", "b"], {})], {"lr": 0.01}),
    ("sgd_momentum", torch.optim.SGD, [(["W", "b"], {})], {"lr": 0.01, "momentum": 0.9}),
    ("sgd_nesterov_wd", torch.optim.SGD, [(["W", "b"], {})],
     {"lr": 0.01, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1}),
    ("sgd_dampening", torch.optim.SGD, [(["W", "b"], {})],
     {"lr": 0.01, "momentum": 0.8, "dampening": 0.3}),
    ("adam", torch.optim.Adam, [(["W", "b"], {})], {"lr": 0.05}),
    ("adam_amsgrad", torch.optim.Adam, [(["W", "b"], {})],
     {"lr": 0.05, "betas": (0.8, 0.99), "amsgrad": True, "weight_decay": 0.1}),
    ("adamw", torch.optim.AdamW, [(["W", "b"], {})], {"lr": 0.05}),
    ("adamw_amsgrad", torch.optim.AdamW, [(["W", "b"], {})],
     {"lr": 0.05, "amsgrad": True, "weight_decay": 0.1, "eps": 1e-6}),
    ("adamw_groups", torch.optim.AdamW,
     [(["W"], {"lr": 0.05, "weight_decay": 0.1}), (["b"], {"lr": 0.02, "weight_decay": 0.0})],
     {"lr": 0.01}),
    ("rmsprop", torch.optim.RMSprop, [(["W", "b"], {})], {"lr": 0.01}),
    ("rmsprop_centered_momentum", torch.optim.RMSprop, [(["W", "b"], {})],
     {"lr": 0.01, "alpha": 0.9, "centered": True, "momentum": 0.9, "weight_decay": 0.01}),
    ("adagrad", torch.optim.Adagrad, [(["W", "b"], {})],
     {"lr": 0.1, "lr_decay": 0.01, "initial_accumulator_value": 0.1, "weight_decay": 0.01}),
]

# hyper-parameters tapegrad knows, by PyTorch name ("betas" is split into betas.0 / betas.1)
HYPER = ["lr", "weight_decay", "momentum", "dampening", "nesterov", "maximize", "betas", "eps",
         "amsgrad", "alpha", "centered", "lr_decay", "initial_accumulator_value"]


def flat_hyper(group):
    out = {}
    for k in HYPER:
        if k not in group:
            continue
        v = group[k]
        if k == "betas":
            out["betas.0"], out["betas.1"] = float(v[0]), float(v[1])
        else:
            out[k] = float(v)
    return out


def loss_fn(x, t, w, b):
    return ((x @ w + b - t) ** 2).sum()


def run_optimizer(cls, groups, options, dtype):
    x, t = X.to(dtype), T.to(dtype)
    params = {"W": W0.to(dtype).clone().requires_grad_(), "b": B0.to(dtype).clone().requires_grad_()}
    opt = cls([{"params": [params[n] for n in names], **extra} for names, extra in groups],
              **options)
    traj = {"W": [params["W"].detach().clone()], "b": [params["b"].detach().clone()]}
    for step in range(1, STEPS + 1):
        opt.zero_grad()
        loss_fn(x, t, params["W"], params["b"]).backward()
        opt.step()
        if step % EVERY == 0:
            traj["W"].append(params["W"].detach().clone())
            traj["b"].append(params["b"].detach().clone())
    return opt, {k: torch.stack(v).numpy() for k, v in traj.items()}


def metrics_min():
    # a loss that falls, then stalls with small wiggles, then falls again
    return [1.0 / (1 + k / 10) + 0.02 * math.sin(k) if k < 40 or k > 70 else 0.2 + 0.001 * (k % 3)
            for k in range(STEPS)]


# LambdaLR / MultiplicativeLR take functions: the fixture names them, and tests/optim.rs
# defines the same functions under the same names.
LAMBDAS = {
    "warmup4": lambda e: min(1.0, (e + 1) / 4),
    "inverse": lambda e: 1.0 / (1.0 + 0.1 * e),
    "alternate": lambda e: 0.9 if e % 2 else 1.05,
}


def lambdas(names):
    """One function for every group, or one per group, as the spec names them."""
    fns = [LAMBDAS[n] for n in names]
    return fns[0] if len(fns) == 1 else fns


def run_scheduler(spec, tensors):
    kind = spec["type"]
    p1 = torch.zeros(2, requires_grad=True)
    p2 = torch.zeros(2, requires_grad=True)
    lrs = spec["group_lrs"]
    if spec.get("optimizer") == "Adam":
        opt = torch.optim.Adam([{"params": [p1], "lr": lrs[0]}, {"params": [p2], "lr": lrs[1]}])
    else:
        opt = torch.optim.SGD([{"params": [p1], "lr": lrs[0]}, {"params": [p2], "lr": lrs[1]}],
                              momentum=0.9)
    S = torch.optim.lr_scheduler
    a = spec.get("args", {})

    def make(kind, a):
        if kind == "StepLR":
            return S.StepLR(opt, a["step_size"], a["gamma"])
        if kind == "MultiStepLR":
            return S.MultiStepLR(opt, a["milestones"], a["gamma"])
        if kind == "ExponentialLR":
            return S.ExponentialLR(opt, a["gamma"])
        if kind == "CosineAnnealingLR":
            return S.CosineAnnealingLR(opt, a["t_max"], a["eta_min"])
        if kind == "LinearLR":
            return S.LinearLR(opt, a["start_factor"], a["end_factor"], a["total_iters"])
        if kind == "OneCycleLR":
            return S.OneCycleLR(opt, a["max_lr"], total_steps=a["total_steps"],
                                pct_start=a.get("pct_start", 0.3),
                                anneal_strategy=a.get("anneal_strategy", "cos"),
                                div_factor=a.get("div_factor", 25.0),
                                final_div_factor=a.get("final_div_factor", 1e4),
                                three_phase=a.get("three_phase", False))
        if kind == "LambdaLR":
            return S.LambdaLR(opt, lambdas(a["lambdas"]))
        if kind == "MultiplicativeLR":
            return S.MultiplicativeLR(opt, lambdas(a["lambdas"]))
        if kind == "ConstantLR":
            return S.ConstantLR(opt, a["factor"], a["total_iters"])
        if kind == "PolynomialLR":
            return S.PolynomialLR(opt, a["total_iters"], a["power"])
        if kind == "CosineAnnealingWarmRestarts":
            return S.CosineAnnealingWarmRestarts(opt, a["t_0"], a["t_mult"], a["eta_min"])
        if kind == "CyclicLR":
            return S.CyclicLR(opt, a["base_lr"], a["max_lr"], step_size_up=a["step_size_up"],
                              step_size_down=a.get("step_size_down"), mode=a["mode"],
                              gamma=a.get("gamma", 1.0))
        if kind == "ReduceLROnPlateau":
            return S.ReduceLROnPlateau(opt, mode=a["mode"], factor=a["factor"],
                                       patience=a["patience"], threshold=a["threshold"],
                                       threshold_mode=a["threshold_mode"],
                                       cooldown=a["cooldown"], min_lr=a["min_lr"])
        raise ValueError(kind)

    if kind == "SequentialLR":
        children = [make(c["type"], c["args"]) for c in spec["children"]]
        sched = S.SequentialLR(opt, children, milestones=a["milestones"])
    else:
        sched = make(kind, a)
    momentum_key = "betas" if spec.get("optimizer") == "Adam" else "momentum"

    def momentum():
        return [float(g[momentum_key][0] if momentum_key == "betas" else g[momentum_key])
                for g in opt.param_groups]

    out_lr = [[float(g["lr"]) for g in opt.param_groups]]
    out_m = [momentum()]
    metrics = spec.get("metrics")
    epochs = spec.get("epochs")
    for k in range(STEPS):
        opt.step()  # no gradients: only keeps PyTorch from warning about the call order
        if metrics is not None:
            sched.step(metrics[k])
        elif epochs is not None:
            sched.step(epochs[k])
        else:
            sched.step()
        out_lr.append([float(v) for v in sched.get_last_lr()])
        out_m.append(momentum())
    name = spec["name"]
    tensors[f"sched.{name}.lr"] = np.array(out_lr, dtype=np.float64)
    if kind in ("OneCycleLR", "CyclicLR"):
        tensors[f"sched.{name}.momentum"] = np.array(out_m, dtype=np.float64)
    spec = dict(spec)
    if metrics is not None:
        tensors[f"sched.{name}.metrics"] = np.array(metrics, dtype=np.float64)
        del spec["metrics"]
    return spec


SCHEDULERS = [
    {"name": "step", "type": "StepLR", "group_lrs": [0.1, 0.05],
     "args": {"step_size": 30, "gamma": 0.1}},
    {"name": "multistep", "type": "MultiStepLR", "group_lrs": [0.1, 0.05],
     "args": {"milestones": [20, 50, 50, 80], "gamma": 0.5}},
    {"name": "exponential", "type": "ExponentialLR", "group_lrs": [0.1, 0.05],
     "args": {"gamma": 0.95}},
    {"name": "cosine", "type": "CosineAnnealingLR", "group_lrs": [0.1, 0.05],
     "args": {"t_max": 30, "eta_min": 0.001}},
    {"name": "linear_warmup", "type": "LinearLR", "group_lrs": [0.1, 0.05],
     "args": {"start_factor": 0.25, "end_factor": 1.0, "total_iters": 10}},
    {"name": "linear_decay", "type": "LinearLR", "group_lrs": [0.1, 0.05],
     "args": {"start_factor": 1.0, "end_factor": 0.1, "total_iters": 50}},
    {"name": "sequential_warmup_cosine", "type": "SequentialLR", "group_lrs": [0.1, 0.05],
     "args": {"milestones": [5]},
     "children": [
         {"type": "LinearLR", "args": {"start_factor": 0.1, "end_factor": 1.0, "total_iters": 5}},
         {"type": "CosineAnnealingLR", "args": {"t_max": 95, "eta_min": 0.0}}]},
    {"name": "sequential_three", "type": "SequentialLR", "group_lrs": [0.1, 0.05],
     "args": {"milestones": [10, 40]},
     "children": [
         {"type": "ExponentialLR", "args": {"gamma": 0.9}},
         {"type": "StepLR", "args": {"step_size": 10, "gamma": 0.5}},
         {"type": "LinearLR", "args": {"start_factor": 0.5, "end_factor": 1.0, "total_iters": 10}}]},
    {"name": "onecycle", "type": "OneCycleLR", "group_lrs": [0.1, 0.05],
     "args": {"max_lr": [0.5, 0.25], "total_steps": 100}},
    {"name": "onecycle_three_phase_linear_adam", "type": "OneCycleLR", "optimizer": "Adam",
     "group_lrs": [0.1, 0.05],
     "args": {"max_lr": 0.5, "total_steps": 100, "pct_start": 0.25, "anneal_strategy": "linear",
              "three_phase": True, "div_factor": 10.0, "final_div_factor": 100.0}},
    {"name": "plateau_min_rel", "type": "ReduceLROnPlateau", "group_lrs": [0.1, 0.05],
     "args": {"mode": "min", "factor": 0.5, "patience": 3, "threshold": 1e-2,
              "threshold_mode": "rel", "cooldown": 2, "min_lr": 1e-3},
     "metrics": metrics_min()},
    {"name": "plateau_max_abs", "type": "ReduceLROnPlateau", "group_lrs": [0.1, 0.05],
     "args": {"mode": "max", "factor": 0.3, "patience": 2, "threshold": 0.05,
              "threshold_mode": "abs", "cooldown": 0, "min_lr": [0.01, 0.02]},
     "metrics": [1.0 - m for m in metrics_min()]},
    {"name": "lambda_per_group", "type": "LambdaLR", "group_lrs": [0.1, 0.05],
     "args": {"lambdas": ["warmup4", "inverse"]}},
    {"name": "multiplicative", "type": "MultiplicativeLR", "group_lrs": [0.1, 0.05],
     "args": {"lambdas": ["alternate"]}},
    {"name": "constant", "type": "ConstantLR", "group_lrs": [0.1, 0.05],
     "args": {"factor": 0.25, "total_iters": 7}},
    {"name": "polynomial", "type": "PolynomialLR", "group_lrs": [0.1, 0.05],
     "args": {"total_iters": 60, "power": 2.0}},
    {"name": "warm_restarts", "type": "CosineAnnealingWarmRestarts", "group_lrs": [0.1, 0.05],
     "args": {"t_0": 10, "t_mult": 1, "eta_min": 0.001}},
    {"name": "warm_restarts_doubling", "type": "CosineAnnealingWarmRestarts",
     "group_lrs": [0.1, 0.05], "args": {"t_0": 3, "t_mult": 2, "eta_min": 0.0}},
    {"name": "warm_restarts_fractional", "type": "CosineAnnealingWarmRestarts",
     "group_lrs": [0.1, 0.05], "args": {"t_0": 4, "t_mult": 3, "eta_min": 0.002},
     "epochs": [0.25 * (k + 1) + (3.0 if k > 60 else 0.0) for k in range(STEPS)]},
    {"name": "cyclic_triangular2", "type": "CyclicLR", "group_lrs": [0.1, 0.05],
     "args": {"base_lr": [0.01, 0.02], "max_lr": [0.1, 0.2], "step_size_up": 7,
              "step_size_down": 5, "mode": "triangular2"}},
    {"name": "cyclic_exp_range_adam", "type": "CyclicLR", "optimizer": "Adam",
     "group_lrs": [0.1, 0.05],
     "args": {"base_lr": 0.001, "max_lr": 0.01, "step_size_up": 10, "mode": "exp_range",
              "gamma": 0.99}},
    {"name": "sequential_lambda_polynomial", "type": "SequentialLR", "group_lrs": [0.1, 0.05],
     "args": {"milestones": [4]},
     "children": [
         {"type": "LambdaLR", "args": {"lambdas": ["warmup4"]}},
         {"type": "PolynomialLR", "args": {"total_iters": 90, "power": 1.0}}]},
]


def clip_fixtures(dtype, tensors):
    x, t = X.to(dtype), T.to(dtype)
    cases = [("norm2", "norm", 1.0, 2.0), ("norm_inf", "norm", 1.0, math.inf),
             ("norm1_large", "norm", 1e6, 1.0), ("value", "value", 0.5, None)]
    out = []
    for name, kind, v, p in cases:
        w = W0.to(dtype).clone().requires_grad_()
        b = B0.to(dtype).clone().requires_grad_()
        loss_fn(x, t, w, b).backward()
        entry = {"name": name, "kind": kind, "value": v}
        if kind == "norm":
            entry["norm_type"] = "inf" if p == math.inf else p
            entry["total_norm"] = float(torch.nn.utils.clip_grad_norm_([w, b], v, p))
        else:
            torch.nn.utils.clip_grad_value_([w, b], v)
        tag = f"clip.{name}.{str(dtype).removeprefix('torch.')}"
        tensors[f"{tag}.W"] = w.grad.numpy()
        tensors[f"{tag}.b"] = b.grad.numpy()
        out.append(entry)
    return out


def main():
    tensors = {"x": X.numpy(), "t": T.numpy(), "W0": W0.numpy(), "b0": B0.numpy()}
    optimizers = []
    defaults = {}
    for name, cls, groups, options in OPTIMIZERS:
        for dtype in (torch.float32, torch.float64):
            opt, traj = run_optimizer(cls, groups, options, dtype)
            tag = str(dtype).removeprefix("torch.")
            tensors[f"{name}.{tag}.W"] = traj["W"]
            tensors[f"{name}.{tag}.b"] = traj["b"]
        optimizers.append({
            "name": name,
            "type": cls.__name__,
            "groups": [{"params": names, **flat_hyper(g)}
                       for (names, _), g in zip(groups, opt.param_groups)],
        })
        p = torch.zeros(1, requires_grad=True)
        defaults[cls.__name__] = flat_hyper(cls([p], lr=0.123).param_groups[0])
    schedulers = [run_scheduler(s, tensors) for s in SCHEDULERS]
    clip = clip_fixtures(torch.float64, tensors)
    clip_fixtures(torch.float32, tensors)
    meta = {
        "torch_version": torch.__version__,
        "steps": STEPS,
        "record_every": EVERY,
        "loss": "sum((x @ W + b - t)^2)",
        "optimizers": optimizers,
        "defaults": defaults,
        "schedulers": schedulers,
        "clip": clip,
    }
    os.makedirs(OUT, exist_ok=True)
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()},
              os.path.join(OUT, "optim.safetensors"))
    with open(os.path.join(OUT, "optim.json"), "w") as f:
        f.write(compact_json(meta))


def compact_json(meta):
    """One line per top-level scalar and per list entry: small, and diffs stay readable."""
    lines = []
    for k, v in meta.items():
        if isinstance(v, list):
            items = ",\n  ".join(json.dumps(e, separators=(",", ":")) for e in v)
            lines.append(f' "{k}": [\n  {items}\n ]')
        else:
            lines.append(f" {json.dumps(k)}: {json.dumps(v, separators=(',', ':'))}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


if __name__ == "__main__":
    main()
