#!/usr/bin/env python3
"""Times the same workloads in tapegrad and in PyTorch, in one run, and prints their ratios.

Run it with the Python interpreter of an environment that has torch installed, from anywhere:

    /root/torch-venv/bin/python scripts/compare_pytorch.py            # or any venv with torch
    /root/torch-venv/bin/python scripts/compare_pytorch.py --threads 2 --only matmul --rounds 3
    /root/torch-venv/bin/python scripts/compare_pytorch.py --only step --rounds 3   # training steps
    /root/torch-venv/bin/python scripts/compare_pytorch.py --memory 200    # peak RSS, MLP training

It builds and runs `cargo run --release --example bench_compare` (examples/bench_compare.rs holds
the tapegrad side of every workload; keep the two lists in step), runs the same workloads in
PyTorch with the interpreter running this script, at each thread count, and prints per workload:
both times, tapegrad time / PyTorch time (below 1 means tapegrad is faster) and, for matrix
products, both GFLOP/s. Without torch it prints tapegrad's numbers alone and says so.

The two libraries alternate (tapegrad, PyTorch, tapegrad, ...) for --rounds rounds and each keeps
its best time, so that load from other processes hits both alike. Timing follows the Rust side:
warm up, size a batch of calls to about 0.2 s, take the best of 5 batches.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

EAGER_ITERS = 10_000


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def time_it(f, reps, target, clock="wall"):
    """Seconds per call of f: best of `reps` batches sized to last about `target` seconds, in
    elapsed time or (clock="cpu") in CPU time of the process, all threads."""
    now = CLOCKS[clock]
    f()
    t = now()
    f()
    once = max(now() - t, 1e-9)
    calls = min(max(int(target / once), 1), 1_000_000)
    best = float("inf")
    for _ in range(reps):
        t = now()
        for _ in range(calls):
            f()
        best = min(best, (now() - t) / calls)
    return best


def torch_workloads(torch):
    """(name, work, unit, fn) for each workload, mirroring examples/bench_compare.rs."""
    w = []
    x = torch.randn(16, requires_grad=True)
    wt = torch.randn(16, requires_grad=True)
    b = torch.randn(16, requires_grad=True)

    def eager():
        for _ in range(EAGER_ITERS):
            y = (x * wt + b).tanh().sum()
            y.backward()

    w.append((f"eager_overhead_x{EAGER_ITERS}", float(EAGER_ITERS), "iter", eager))
    for n in (256, 512, 1024, 2048):
        a, bb = torch.randn(n, n), torch.randn(n, n)
        w.append((f"matmul_f32_{n}", 2.0 * n**3, "flop", lambda a=a, bb=bb: a @ bb))
    for nb, n in ((64, 64), (16, 128)):
        a, bb = torch.randn(nb, n, n), torch.randn(nb, n, n)
        w.append((f"bmm_f32_{nb}x{n}", 2.0 * nb * n**3, "flop", lambda a=a, bb=bb: a @ bb))
    for size in (1 << 20, 1 << 24):
        tag = f"{size >> 20}M"
        a, bb = torch.randn(size), torch.randn(size)
        ops = {
            "add": lambda a=a, bb=bb: a + bb,
            "mul": lambda a=a, bb=bb: a * bb,
            "tanh": lambda a=a: torch.tanh(a),
            "exp": lambda a=a: torch.exp(a),
            "gelu": lambda a=a: torch.nn.functional.gelu(a),
            "sum": lambda a=a: a.sum(),
        }
        for op, f in ops.items():
            w.append((f"{op}_f32_{tag}", float(size), "elem", f))
    w += train_workloads(torch)
    return w


def train_workloads(torch):
    """The training steps of benches/common/train_steps.rs: (name, 0, "step", fn)."""
    nn, F = torch.nn, torch.nn.functional
    w = []

    def train_step(model, opt, x, y):
        def step():
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            return loss

        return step

    mlp = mlp_model(nn)
    opt = torch.optim.SGD(mlp.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(64, 784), torch.randint(0, 10, (64,))
    w.append(("mlp_step", 0.0, "step", train_step(mlp, opt, x, y)))

    cnn = nn.Sequential(
        nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(400, 10),
    )
    opt = torch.optim.SGD(cnn.parameters(), lr=0.01)
    x, y = torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,))
    w.append(("cnn_step", 0.0, "step", train_step(cnn, opt, x, y)))

    block = nn.TransformerEncoderLayer(128, 4, 512, dropout=0.0, activation="gelu",
                                       norm_first=True, batch_first=True)
    x = torch.randn(8, 64, 128)

    def transformer():
        block.zero_grad()
        y = block(x).sum()
        y.backward()
        return y

    w.append(("transformer_step", 0.0, "step", transformer))
    return w


def mlp_model(nn):
    return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                         nn.Linear(128, 10))


def mlp_memory_child(steps):
    """Trains the MLP for `steps` steps on fresh random batches (the PyTorch side of --memory)."""
    import torch

    model = mlp_model(torch.nn)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    for _ in range(steps):
        x, y = torch.randn(64, 784), torch.randint(0, 10, (64,))
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    print(json.dumps({"library": "torch", "steps": steps, "last_loss": loss.item()}))


def child_maxrss_mib(cmd):
    """Runs cmd as a child process and returns its peak resident memory in MiB (ru_maxrss)."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # RUSAGE_CHILDREN holds the largest child so far: run each measured child from a fresh
    # parent so that an earlier, larger child cannot hide it
    if after < before:
        raise RuntimeError("ru_maxrss decreased")
    return after / 1024.0


def measure_memory(binary, steps):
    """Peak RSS of a child training the MLP for `steps` steps, for tapegrad and for PyTorch, each
    measured by a fresh intermediate process (ru_maxrss of children is a running maximum)."""
    probe = [sys.executable, str(Path(__file__).resolve()), "--maxrss-of"]
    tg = json.loads(subprocess.run(probe + [str(binary), "--mlp-memory", str(steps)],
                                   check=True, capture_output=True, text=True).stdout)
    pt = json.loads(subprocess.run(probe + [sys.executable, str(Path(__file__).resolve()),
                                            "--mlp-memory-child", str(steps)],
                                   check=True, capture_output=True, text=True).stdout)
    return tg["maxrss_mib"], pt["maxrss_mib"]


def run_torch(torch, threads, only, quick, clock):
    torch.set_num_threads(threads)
    reps, target = (3, 0.05) if quick else (5, 0.2)
    out = {}
    for name, work, unit, f in torch_workloads(torch):
        if only and only not in name:
            continue
        with torch.no_grad() if unit in ("flop", "elem") else _null():
            out[name] = {"seconds": time_it(f, reps, target, clock), "work": work, "unit": unit}
    return out


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def build_rust():
    cmd = ["cargo", "build", "--release", "--example", "bench_compare"]
    print("building:", " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, cwd=ROOT, check=True)
    target = os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target"))
    return Path(target) / "release" / "examples" / "bench_compare"


def run_rust(binary, threads, only, quick, clock):
    cmd = [str(binary), "--threads", str(threads), "--clock", clock]
    if only:
        cmd += ["--only", only]
    if quick:
        cmd.append("--quick")
    res = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    return {r["name"]: r for r in res["results"]}


def best(a, b):
    """Keeps the faster measurement of each workload."""
    if a is None:
        return b
    return {k: (v if v["seconds"] < a[k]["seconds"] else a[k]) for k, v in b.items()}


def fmt_time(s):
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)):
        if s >= scale:
            return f"{s / scale:8.2f} {unit:2}"
    return f"{s / 1e-9:8.2f} ns"


def per_call(r):
    """Time of the unit the workload is quoted in (one pass for the eager loop)."""
    return r["seconds"] / r["work"] if r["unit"] == "iter" else r["seconds"]


def rate(r):
    if r["unit"] == "flop":
        return f"{r['work'] / r['seconds'] / 1e9:7.1f} GF/s"
    if r["unit"] == "elem":
        return f"{r['work'] / r['seconds'] / 1e9:7.2f} Ge/s"
    return " " * 12


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts (default 1 2)")
    p.add_argument("--only", default=None, help="run workloads whose name contains this")
    p.add_argument("--rounds", type=int, default=2, help="alternations of the two libraries")
    p.add_argument("--quick", action="store_true", help="shorter timings (noisier)")
    p.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                   help="wall: elapsed time (default); cpu: CPU time of each process, all "
                        "threads (steadier on a busy machine; at 2 threads it counts both "
                        "threads' work, including spin-waiting)")
    p.add_argument("--json", default=None, help="also write all measurements to this file")
    p.add_argument("--memory", type=int, default=None, metavar="STEPS",
                   help="instead of timing: peak RSS of a process training the MLP for STEPS steps")
    p.add_argument("--maxrss-of", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    p.add_argument("--mlp-memory-child", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.maxrss_of:
        print(json.dumps({"maxrss_mib": child_maxrss_mib(args.maxrss_of)}))
        return
    if args.mlp_memory_child is not None:
        mlp_memory_child(args.mlp_memory_child)
        return

    try:
        import torch
    except ImportError:
        torch = None
        print(f"PyTorch was not found by {sys.executable}: printing tapegrad's numbers only "
              "(run with the python of an environment that has torch).")
    openblas = {k: v for k, v in os.environ.items() if k.startswith("OPENBLAS")}
    if openblas:
        print(f"note: {openblas} is set; it affects numpy/OpenBLAS, not torch (MKL) or tapegrad")
    if torch is not None:
        print(f"torch {torch.__version__}, interpreter {sys.executable}")
    binary = build_rust()

    if args.memory is not None:
        tg, pt = measure_memory(binary, args.memory)
        print(f"\npeak RSS of a process training the MLP for {args.memory} steps (ru_maxrss):")
        print(f"tapegrad {tg:8.1f} MiB")
        if torch is not None:
            print(f"pytorch  {pt:8.1f} MiB")
            print(f"tg/pt    {tg / pt:8.3f}")
        return

    everything = {}
    for threads in args.threads:
        tg = pt = None
        for _ in range(args.rounds):
            tg = best(tg, run_rust(binary, threads, args.only, args.quick, args.clock))
            if torch is not None:
                pt = best(pt, run_torch(torch, threads, args.only, args.quick, args.clock))
        everything[threads] = {"tapegrad": tg, "torch": pt}
        print(f"\n== {threads} thread(s), {args.clock} clock ==")
        head = f"{'workload':24} {'tapegrad':>11} {'':12}"
        if pt is not None:
            head += f" {'pytorch':>11} {'':12} {'tg/pt time':>10}"
        print(head)
        for name, r in tg.items():
            line = f"{name:24} {fmt_time(per_call(r))} {rate(r)}"
            if pt is not None and name in pt:
                q = pt[name]
                line += f" {fmt_time(per_call(q))} {rate(q)} {r['seconds'] / q['seconds']:10.3f}"
            print(line)
        print("(eager_overhead: time per forward+backward pass; *_step: time "
              "per training step;\n tg/pt < 1: tapegrad faster; GF/s ratio = 1 / time ratio)")
    if args.json:
        Path(args.json).write_text(json.dumps(everything, indent=1))


if __name__ == "__main__":
    main()
