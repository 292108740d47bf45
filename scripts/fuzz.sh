#!/usr/bin/env bash
# Run every cargo-fuzz target of podiam for a bounded time (default 60 s each), starting from the
# committed seed corpora. Not part of CI. Usage: scripts/fuzz.sh [SECONDS_PER_TARGET]
# Needs cargo-fuzz (installed here on first use). The toolchain is stable, so the nightly-only
# flags cargo-fuzz passes are unlocked with RUSTC_BOOTSTRAP=1 and no sanitizer is used.
# Each crates/*/fuzz directory is its own workspace (an empty [workspace] table); its builds go to
# its own target/ unless CARGO_TARGET_DIR is set. Crash inputs land in crates/*/fuzz/artifacts/.
# Exits 1 if a target fails to build, finds a crash, or has no seed corpus.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
status=0
summary=()
for dir in crates/*/fuzz; do
  grep -q '^\[workspace\]' "$dir/Cargo.toml" || {
    echo "!! $dir/Cargo.toml has no [workspace] table (it would join the root workspace)"; status=1; continue; }
  for t in "$dir"/fuzz_targets/*.rs; do
    name=$(basename "$t" .rs)
    corpus="$dir/corpus/$name"
    [ -d "$corpus" ] || corpus="$dir/corpus"
    if [ -z "$(find "$corpus" -maxdepth 1 -type f -print -quit 2>/dev/null)" ]; then
      echo "!! $dir $name has no seed corpus (expected files in $dir/corpus/$name)"; status=1
    fi
    echo "== $dir $name ($secs s)"
    if ! (cd "$dir" && cargo fuzz build --sanitizer none "$name"); then
      echo "!! $name failed to build"; status=1; summary+=("$dir $name: build failed"); continue
    fi
    work=$(mktemp -d)
    log=$(mktemp)
    cp -r "$corpus"/. "$work"/ 2>/dev/null || true
    if (cd "$dir" && cargo fuzz run --sanitizer none "$name" "$work" -- -max_total_time="$secs" -rss_limit_mb=2048) 2>&1 | tee "$log"; then
      done_line=$(grep -o 'Done [0-9]* runs in [0-9]* second(s)' "$log" | tail -n 1 || true)
      summary+=("$dir $name: ${done_line:-finished}")
    else
      echo "!! $name found a crash (artifacts in $dir/artifacts/$name)"; status=1
      summary+=("$dir $name: CRASH (see $dir/artifacts/$name)")
    fi
    rm -rf "$work" "$log"
  done
done
echo "== summary"
printf '%s\n' "${summary[@]}"
exit $status
