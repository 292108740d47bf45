#!/usr/bin/env bash
# podiam's full test suite: unit and integration tests of every crate, then the end-to-end
# suites that drive a real `podiam serve` with the AWS CLI, boto3, aws-sdk-js-v3 and aws-sdk-rust.
# Installs what it needs (a Python virtualenv with the AWS CLI, boto3 and pytest; the pinned
# JavaScript SDK clients) on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

echo "== python clients (virtualenv .venv)"
bash scripts/pyenv.sh

echo "== javascript clients (tests/e2e/js/node_modules)"
bash scripts/jsenv.sh

echo "== style: rustfmt and clippy (warnings are errors)"
cargo fmt --all --check
# Module dependencies go one way, and no source file grows past 600 lines without a reason.
python3 scripts/check_modules.py
# The aws-sdk-rust test client (tests/sdk-rust) is a test peer, built below for the end-to-end
# suite; every crate of podiam is linted with all its targets.
cargo clippy --locked --all-targets -- -D warnings

echo "== build"
cargo build --locked -p podiam -p podiam-sdk-e2e

echo "== postgresql (store conformance and replica tests run against it)"
if [ -z "${PODIAM_TEST_POSTGRES_URL:-}" ]; then
  # A throwaway cluster (installed with apt-get if missing), stopped and deleted at exit.
  if [ -n "${PODIAM_PG_DIR:-}" ]; then
    trap 'bash "$root/scripts/postgres.sh" stop || true' EXIT
  else
    PODIAM_PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/podiam-pg.XXXXXX")
    export PODIAM_PG_DIR
    trap 'bash "$root/scripts/postgres.sh" destroy || true' EXIT
  fi
  pg_env=$(bash scripts/postgres.sh start)  # fails the run if PostgreSQL cannot start
  eval "$pg_env"
fi
echo "PODIAM_TEST_POSTGRES_URL=$PODIAM_TEST_POSTGRES_URL"

echo "== crate tests"
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --locked --no-fail-fast
else
  cargo test --locked --no-fail-fast
fi

export PODIAM_BIN="$root/target/debug/podiam"
echo "== end to end: AWS CLI, boto3 and the JavaScript SDK"
# Modules run in two processes (pytest-xdist), each module whole on one, in file order.
"$root/.venv/bin/pytest" tests/e2e -q -p no:cacheprovider -n 2 --dist loadfile

echo "== end to end: aws-sdk-rust"
SDK_E2E_BIN="$root/target/debug/podiam-sdk-e2e" AWS_CLI="$root/.venv/bin/aws" bash tests/sdk-rust/run.sh
