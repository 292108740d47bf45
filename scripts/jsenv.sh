#!/usr/bin/env bash
# Installs (idempotently) the JavaScript clients of the end-to-end suite, pinned by
# tests/e2e/js/package-lock.json, into tests/e2e/js/node_modules with `npm ci`. A re-run with an
# unchanged lock file and Node.js version is a no-op: node_modules holds a stamp keyed on both.
#
# Environment: NPM (npm executable, default npm), NODE (node executable, default node).
set -euo pipefail
cd "$(dirname "$0")/.."
dir="$(pwd)/tests/e2e/js"
npm=${NPM:-npm}
node=${NODE:-node}
stamp="$dir/node_modules/.podiam-lock.stamp"

for tool in "$node" "$npm"; do
  command -v "$tool" >/dev/null 2>&1 || { echo "jsenv.sh: $tool not found" >&2; exit 1; }
done
want="$( { cat "$dir/package-lock.json"; "$node" --version; } | sha256sum | cut -d' ' -f1)"

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

# One installer at a time (two test runs may start together); the winner's work is reused.
exec 9>"$dir/.jsenv.lock"
flock 9
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

echo "jsenv.sh: installing $dir/node_modules" >&2
(cd "$dir" && "$npm" ci --no-audit --no-fund --silent)
printf '%s\n' "$want" > "$stamp"
echo "jsenv.sh: ready" >&2
