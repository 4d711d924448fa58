#!/usr/bin/env bash
# Runs every notebook in notebooks/ headless with the evcxr Rust kernel, like a reader pressing
# "Run all", and fails on the first cell error. scripts/test.sh calls it; run it alone with
#   bash scripts/run_notebooks.sh [notebooks/02_training.ipynb ...]
#
# What it installs (each only when missing):
# - jupyter's nbconvert and nbclient, into the repo's .venv;
# - evcxr_jupyter (the Rust kernel), with `cargo install --locked`: about ten minutes of build on
#   a fresh 2-core machine, so it is skipped when already installed;
# - Graphviz's `dot` program (notebook 03 draws the autograd graph with it), with apt-get.
# The executed notebooks are written to a temporary folder; the committed ones keep no outputs.
set -euo pipefail
cd "$(dirname "$0")/.."

EVCXR_VERSION=0.22.0
NBCONVERT_VERSION=7.17.2
NBCLIENT_VERSION=0.11.0
# a cell may build the crate (first notebook) or train a small model
CELL_TIMEOUT=1200

echo "== notebooks: jupyter nbconvert (.venv)"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
if ! .venv/bin/python -m pip show nbconvert nbclient >/dev/null 2>&1; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check \
    "nbconvert==$NBCONVERT_VERSION" "nbclient==$NBCLIENT_VERSION"
fi

echo "== notebooks: evcxr_jupyter"
export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v evcxr_jupyter >/dev/null 2>&1; then
  start=$SECONDS
  cargo install --locked evcxr_jupyter --version "$EVCXR_VERSION"
  echo "evcxr_jupyter built in $((SECONDS - start))s"
fi
# registers the "rust" kernel in the user's Jupyter data folder (cheap, idempotent)
evcxr_jupyter --install >/dev/null

echo "== notebooks: graphviz"
if ! command -v dot >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq graphviz >/dev/null
fi

if [ $# -gt 0 ]; then
  NOTEBOOKS=("$@")
else
  NOTEBOOKS=(notebooks/*.ipynb)
fi
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
for nb in "${NOTEBOOKS[@]}"; do
  echo "== notebook $nb"
  start=$SECONDS
  # nbconvert exits non-zero (and prints the failing cell) on any cell error (a compile error,
  # an `Err` from `?`)
  .venv/bin/jupyter nbconvert --to notebook --execute \
    --ExecutePreprocessor.kernel_name=rust \
    --ExecutePreprocessor.timeout="$CELL_TIMEOUT" \
    --output-dir "$OUT" "$nb"
  # evcxr reports a panic in a cell as printed text, not as a cell error: look for it
  .venv/bin/python - "$OUT/$(basename "$nb")" <<'PY'
import json, sys
path = sys.argv[1]
for i, cell in enumerate(json.load(open(path))["cells"]):
    for out in cell.get("outputs", []):
        text = "".join(out.get("text", ""))
        if "panicked at" in text:
            sys.exit(f"{path}: cell {i} panicked:\n{text}")
PY
  echo "$nb: ran in $((SECONDS - start))s"
done
echo "notebooks: ${#NOTEBOOKS[@]} passed, 0 failed"
