#!/usr/bin/env bash
# podiam's full test suite: unit and integration tests of every crate, then the end-to-end
# suites that drive a real `podiam serve` with the AWS CLI, boto3 and aws-sdk-rust.
# Installs what it needs (a Python virtualenv with the AWS CLI, boto3 and pytest) on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

echo "== python clients (virtualenv .venv)"
bash scripts/pyenv.sh

echo "== build"
cargo build --locked -p podiam -p podiam-sdk-e2e

echo "== crate tests"
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --locked --no-fail-fast
else
  cargo test --locked --no-fail-fast
fi

export PODIAM_BIN="$root/target/debug/podiam"
echo "== end to end: AWS CLI and boto3"
"$root/.venv/bin/pytest" tests/e2e -q -p no:cacheprovider

echo "== end to end: aws-sdk-rust"
SDK_E2E_BIN="$root/target/debug/podiam-sdk-e2e" AWS_CLI="$root/.venv/bin/aws" bash tests/sdk-rust/run.sh
