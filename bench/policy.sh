#!/usr/bin/env bash
# Policy engine micro-benchmark (single thread): IRSA trust evaluation, a 10-statement identity
# policy with conditions, and parsing a 2 KB document. Prints a markdown table.
#
# Environment (optional):
#   POLICY_BENCH_SECONDS  minimum measured seconds per case (default 1.5)
#   POLICY_BENCH_STRICT=1 exit 3 when a target is not met (default: report only)
#   CARGO_TARGET_DIR      as usual
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo run --quiet --release -p podiam-policy --example bench
