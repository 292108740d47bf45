#!/usr/bin/env bash
# Run every cargo-fuzz target of podiam for a bounded time (default 60 s each), starting from the
# committed seed corpora. Not part of CI. Usage: scripts/fuzz.sh [SECONDS_PER_TARGET]
# Needs cargo-fuzz (installed here on first use). The toolchain is stable, so the nightly-only
# flags cargo-fuzz passes are unlocked with RUSTC_BOOTSTRAP=1 and no sanitizer is used.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
status=0
for dir in crates/*/fuzz; do
  for t in "$dir"/fuzz_targets/*.rs; do
    name=$(basename "$t" .rs)
    corpus="$dir/corpus/$name"
    [ -d "$corpus" ] || corpus="$dir/corpus"
    work=$(mktemp -d)
    cp -r "$corpus"/. "$work"/ 2>/dev/null || true
    echo "== $dir $name ($secs s)"
    if ! (cd "$dir" && cargo fuzz run --sanitizer none "$name" "$work" -- -max_total_time="$secs" -rss_limit_mb=2048); then
      echo "!! $name found a crash (artifacts in $dir/artifacts/$name)"; status=1
    fi
    rm -rf "$work"
  done
done
exit $status
