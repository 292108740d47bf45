#!/usr/bin/env bash
# Audit-trail benchmark: AssumeRoleWithWebIdentity and EKS Auth AssumeRoleForPodIdentity (the
# node agent's cache miss) on `podiam serve` with auditing on and off, alternated in one run.
# Prints a markdown table. See bench/audit.py.
#
# Environment (optional): BENCH_DURATION (10 s per case), BENCH_WARMUP (2), BENCH_ROUNDS (3),
# BENCH_STRICT=1 (exit 3 when on is more than 10% below off), BENCH_KEEP=1, CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
target=${CARGO_TARGET_DIR:-$root/target}
echo "== building podiam (release)" >&2
cargo build --release --locked -p podiam >&2
bash scripts/pyenv.sh
if ! command -v wrk >/dev/null 2>&1; then
  echo "== installing wrk" >&2
  apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
fi
PODIAM_BIN="${PODIAM_BIN:-$target/release/podiam}" exec "${PODIAM_VENV:-$root/.venv}/bin/python" bench/audit.py
