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
# The stamp also names how the venv is set up ("bytecode": see below), so a venv set up the old
# way is finished on the next run.
want="$( { cat "$req"; "$python" -c 'import sys; print(sys.version)'; echo bytecode; } | sha256sum | cut -d' ' -f1)"

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
# --no-compile, then compileall below: pip's own compiling runs one file at a time.
"$venv/bin/python" -m pip install --quiet --no-compile -r "$req"
# Byte-compile the clients up front, on every core (~6 s). Python would compile them on first
# use, but where PYTHONDONTWRITEBYTECODE is set (CI machines often set it) it cannot keep what it
# compiled, and every `aws` call would compile the CLI and botocore anew: 1.3 s of CPU a call
# instead of 0.3 s, hundreds of times in the end-to-end suite. moto and the largest packages only
# it uses (the benchmark's baseline), and the installers, are left to compile on use. Bytecode
# only saves time: a module that does not compile is left as it is.
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
skip=$("$venv/bin/python" -c 'import re, sys; print("^" + re.escape(sys.argv[1]) + "/(moto|networkx|sympy|cfnlint|pip|setuptools)/")' "$site")
"$venv/bin/python" -m compileall -q -j 0 -x "$skip" "$site" >/dev/null \
  || echo "pyenv.sh: some modules could not be byte-compiled; they compile on use" >&2
# the CLI must be the venv's, never one found elsewhere on PATH
"$venv/bin/aws" --version >/dev/null
printf '%s\n' "$want" > "$stamp"
echo "pyenv.sh: ready ($venv)" >&2
