#!/usr/bin/env bash
# Installs everything the test suite needs (idempotently), then runs every test.
# This is the README's test command, and what .ci/run calls.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== toolchain components"
rustup component add rustfmt clippy >/dev/null 2>&1 || true

echo "== format, lints, docs"
cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --quiet

echo "== tests"
cargo test --all-targets
cargo test --doc
