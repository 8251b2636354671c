#!/usr/bin/env bash
# The test command: installs and starts what the tests need, then runs every test.
# Usage: bash scripts/test.sh   (from anywhere; works on a fresh machine with Rust)
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> toolchain: $(cargo --version)"

# Lints first: cheap, and a red lint fails the run like a red test.
echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "==> cargo test"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace --all-targets --locked 2>&1 | tee "$log"

# One closing line over every test binary.
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
