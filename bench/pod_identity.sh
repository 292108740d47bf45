#!/usr/bin/env bash
# EKS Pod Identity benchmark: the node agent's cache hits side by side with a minimal hyper server
# (the floor), and EKS Auth AssumeRoleForPodIdentity against `podiam serve` with 100 and with
# 100,000 associations stored. Prints a markdown table. See bench/pod_identity.py.
#
# Environment (optional): BENCH_DURATION (10 s per case), BENCH_WARMUP (2), BENCH_ASSOCIATIONS
# (100000), BENCH_ROUNDS (3 alternated EKS Auth rounds), BENCH_PIN=1 (pin servers and wrk for the
# latency case), BENCH_STRICT=1 (exit 3 when a target is missed), BENCH_KEEP=1 (keep the scratch
# dir), CARGO_TARGET_DIR as usual.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
target=${CARGO_TARGET_DIR:-$root/target}
echo "== building podiam and the floor server (release)" >&2
cargo build --release --locked -p podiam >&2
cargo build --release --locked -p podiam-agent --example floor >&2
bash scripts/pyenv.sh
if ! command -v wrk >/dev/null 2>&1; then
  echo "== installing wrk" >&2
  apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
fi
PODIAM_BIN="$target/release/podiam" FLOOR_BIN="$target/release/examples/floor" \
  exec "${PODIAM_VENV:-$root/.venv}/bin/python" bench/pod_identity.py
