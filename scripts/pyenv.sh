#!/usr/bin/env bash
# Creates (idempotently) the Python virtualenv <repo>/.venv with the pinned clients of
# tests/e2e/requirements.txt: the AWS CLI, boto3, pytest, requests, PyJWT, cryptography and
# moto[server] (the benchmark's baseline). A re-run with unchanged requirements is a no-op: the
# venv holds a stamp keyed on the requirements' hash and the Python version.
#
# Environment: PYTHON (interpreter that creates the venv, default python3), PODIAM_VENV (venv
# path, default <repo>/.venv).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
python=${PYTHON:-python3}
venv=${PODIAM_VENV:-$root/.venv}
req="$root/tests/e2e/requirements.txt"
stamp="$venv/.podiam-requirements.stamp"

command -v "$python" >/dev/null 2>&1 || { echo "pyenv.sh: $python not found" >&2; exit 1; }
want="$( { cat "$req"; "$python" -c 'import sys; print(sys.version)'; } | sha256sum | cut -d' ' -f1)"

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$venv/bin/python" ] \
   && [ -x "$venv/bin/aws" ] && [ -x "$venv/bin/pytest" ]; then
  exit 0
fi

# One installer at a time (two test runs may start together); the winner's work is reused.
mkdir -p "$venv"
exec 9>"$venv/.pyenv.lock"
flock 9
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$venv/bin/aws" ] && [ -x "$venv/bin/pytest" ]; then
  exit 0
fi

echo "pyenv.sh: setting up $venv" >&2
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
rm -f "$stamp"
export PIP_DISABLE_PIP_VERSION_CHECK=1
# --no-compile: Python compiles what is imported on first use; compiling all of botocore's and
# the CLI's modules up front only takes CPU from the build this runs beside (scripts/test.sh).
"$venv/bin/python" -m pip install --quiet --no-compile -r "$req"
# the CLI must be the venv's, never one found elsewhere on PATH
"$venv/bin/aws" --version >/dev/null
printf '%s\n' "$want" > "$stamp"
echo "pyenv.sh: ready ($venv)" >&2
