#!/usr/bin/env bash
# podiam's full test suite: unit and integration tests of every crate, then the end-to-end
# suites that drive a real `podiam serve` with the AWS CLI, boto3, aws-sdk-js-v3 and aws-sdk-rust,
# and a real kube-apiserver with etcd. Installs what it needs on first use: a Python virtualenv
# with the AWS CLI, boto3 and pytest; the pinned JavaScript SDK clients; kube-apiserver, kubectl,
# etcd and helm built from their Go modules into a cache outside the clone (scripts/kube.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

# This script installs and starts everything the tests need, so none of them may skip for want
# of a component: under CI=true such a test fails instead (run a single test file by hand to
# get the skip instead).
export CI=true

# Stages print their start time from the beginning of the run, so a slow one shows.
stage() { printf '== [%4ds] %s\n' "$SECONDS" "$*"; }

# The client environments install while the code compiles (they wait on the network, not the
# CPU); their logs are shown if they fail. The crate tests need them (the error table reads
# botocore's models), so they are waited for before those run.
logs=$(mktemp -d "${TMPDIR:-/tmp}/podiam-test-logs.XXXXXX")
stage "in the background: python clients (.venv), javascript clients (tests/e2e/js), kubernetes control plane"
bash scripts/pyenv.sh >"$logs/pyenv.log" 2>&1 &
pyenv_pid=$!
bash scripts/jsenv.sh >"$logs/jsenv.log" 2>&1 &
jsenv_pid=$!
# kube-apiserver, kubectl, etcd and helm, pinned in scripts/kube/go.mod and built from their Go
# modules into a cache outside the clone: minutes on a fresh machine, a cache hit after.
bash scripts/kube.sh build >"$logs/kube.log" 2>&1 &
kube_pid=$!
wait_for() { # NAME PID LOG
  if ! wait "$2"; then
    cat "$3" >&2
    echo "test.sh: $1 failed" >&2
    exit 1
  fi
}

stage "style: rustfmt and module layout"
cargo fmt --all --check
# Module dependencies go one way, and no source file grows past 600 lines without a reason.
python3 scripts/check_modules.py

stage "build, linted by clippy (warnings are errors): the podiam binary, every crate's tests, the aws-sdk-rust client"
# `cargo clippy` is `cargo check` with clippy-driver as the workspace's compiler wrapper; the
# same wrapper on `cargo build` lints every workspace crate it compiles, with all its targets
# (what `cargo clippy --all-targets -- -D warnings` does), while compiling it, instead of a
# second, check-only compilation of the workspace and every dependency. It stays set for every
# cargo call below, which would otherwise see a changed compiler and build the workspace again.
# (clippy-driver compiles with `--cfg clippy`, which no podiam crate reads, and without MIR
# optimisations: the test binaries run a little slower, never differently.)
RUSTC_WORKSPACE_WRAPPER="$(rustc --print sysroot)/bin/clippy-driver"
export RUSTC_WORKSPACE_WRAPPER
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
# The wrapper must deny: a lint that only warns here would let the build pass unlinted.
probe=$(mktemp -d "${TMPDIR:-/tmp}/podiam-lint-probe.XXXXXX")
echo 'pub fn f() -> u8 { return 1; }' >"$probe/probe.rs"
probe_rc=0
"$RUSTC_WORKSPACE_WRAPPER" rustc --edition 2021 --crate-type lib --emit metadata \
  -o "$probe/probe.rmeta" "$probe/probe.rs" 2>"$probe/err" || probe_rc=$?
if [ "$probe_rc" -eq 0 ] || ! grep -q needless_return "$probe/err"; then
  cat "$probe/err" >&2
  rm -rf "$probe"
  echo "test.sh: $RUSTC_WORKSPACE_WRAPPER (exit $probe_rc) did not refuse a clippy warning; the build would go unlinted" >&2
  exit 1
fi
rm -rf "$probe"
# podiam's crates (the default members) with their targets, in one cargo invocation, so the long
# single crates and the final links share the two cores; the crate tests below then only run.
# Built apart from the aws-sdk-rust client: cargo unifies dependency features across what one
# invocation builds, and the client switches on some (hyper's http2, ...) that podiam must not
# come to rely on unnoticed. The client, a test peer, is then built (and linted) on its own.
cargo build --locked --all-targets
cargo build --locked -p podiam-sdk-e2e

stage "postgresql (store conformance and replica tests run against it)"
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

wait_for "scripts/pyenv.sh" "$pyenv_pid" "$logs/pyenv.log"
wait_for "scripts/jsenv.sh" "$jsenv_pid" "$logs/jsenv.log"

stage "crate tests"
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --locked --no-fail-fast
else
  cargo test --locked --no-fail-fast
fi

wait_for "scripts/kube.sh build" "$kube_pid" "$logs/kube.log"
stage "kubernetes control plane: $(tail -n 1 "$logs/kube.log")"

export PODIAM_BIN="$root/target/debug/podiam"
# The aws-sdk-rust scenarios (one server of their own) run beside the Python and JavaScript
# ones; their output is printed after.
stage "end to end: aws-sdk-rust (in the background), AWS CLI, boto3 and the JavaScript SDK"
SDK_E2E_BIN="$root/target/debug/podiam-sdk-e2e" AWS_CLI="$root/.venv/bin/aws" \
  bash tests/sdk-rust/run.sh >"$logs/sdk-rust.log" 2>&1 &
sdk_pid=$!
# Modules run in two processes (pytest-xdist), each module whole on one, in file order; the
# slowest tests are listed at the end, so a slow CI run shows where its time went.
pytest_rc=0
"$root/.venv/bin/pytest" tests/e2e -q -p no:cacheprovider -n 2 --dist loadfile --durations=25 || pytest_rc=$?
sdk_rc=0
wait "$sdk_pid" || sdk_rc=$?
stage "end to end: aws-sdk-rust"
cat "$logs/sdk-rust.log"
rm -rf "$logs"
if [ "$pytest_rc" -ne 0 ] || [ "$sdk_rc" -ne 0 ]; then
  echo "test.sh: end-to-end failures (pytest exit $pytest_rc, aws-sdk-rust exit $sdk_rc)" >&2
  exit 1
fi
stage "all passed"
