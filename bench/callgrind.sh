#!/usr/bin/env bash
# Instructions per AssumeRoleWithWebIdentity request, counted by callgrind: robust to whatever else
# runs on the machine, unlike req/s. Sets up the bench scenario of run.sh (cluster, OIDC provider,
# role `bench` with StringEquals on sub and aud, a `podiam token`) with a plain server, restarts
# the server on the same data directory under `valgrind --tool=callgrind --instr-atstart=no`,
# warms up, counts N requests on one keep-alive connection, and prints Ir/request and the top
# inclusive functions per request. See bench/README.md.
#
#   bash bench/callgrind.sh [N]        (N requests counted, default 2000)
#
# Environment: PODIAM_BIN (default $CARGO_TARGET_DIR/release/podiam, else target/release/podiam;
# never built here), BENCH_VENV (virtualenv with awscli; default $PODIAM_VENV or .venv),
# CALLGRIND_OUT (where the callgrind.out file is kept; default: a scratch file, removed),
# CALLGRIND_TOP (functions listed, default 60).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
n=${1:-2000}
account=111122223333
log() { printf '== %s\n' "$*" >&2; }
die() { printf 'callgrind.sh: %s\n' "$*" >&2; exit 1; }

bin=${PODIAM_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/podiam}
[ -x "$bin" ] || die "$bin is not an executable (cargo build --release -p podiam-cli)"
venv=${BENCH_VENV:-${PODIAM_VENV:-$root/.venv}}
py="$venv/bin/python"
aws="$venv/bin/aws"
[ -x "$aws" ] || die "$aws missing (scripts/pyenv.sh)"
command -v callgrind_control >/dev/null || die "valgrind is not installed (apt-get install -y valgrind)"

work=$(mktemp -d /tmp/podiam-callgrind.XXXXXX)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
port=$("$py" "$root/bench/bench.py" free-port)
url="http://127.0.0.1:$port"

wait_ready() { # wait_ready SECONDS
  local i
  for ((i = 0; i < $1 * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || return 1
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/readyz" || true)" = 200 ] && return 0
    sleep 0.1
  done
  return 1
}

# 1. Set up with a plain server (fast), as run.sh does.
PODIAM_LOG=warn "$bin" serve --listen "127.0.0.1:$port" --data-dir "$work/podiam" --account-id "$account" \
  >"$work/setup.log" 2>&1 &
pid=$!
wait_ready 60 || { cat "$work/setup.log" >&2; die "podiam did not become ready"; }
(
  unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_DEFAULT_PROFILE AWS_ENDPOINT_URL \
    AWS_ENDPOINT_URL_IAM AWS_ENDPOINT_URL_STS AWS_ENDPOINT_URL_EKS AWS_ROLE_ARN AWS_WEB_IDENTITY_TOKEN_FILE
  export AWS_CONFIG_FILE="$work/podiam/config" AWS_SHARED_CREDENTIALS_FILE="$work/podiam/credentials" AWS_PROFILE=podiam
  issuer=$("$aws" eks create-cluster --name bench --role-arn "arn:aws:iam::$account:role/eks" \
    --resources-vpc-config subnetIds=subnet-1 --query cluster.identity.oidc.issuer --output text)
  hp=${issuer#https://}
  "$aws" iam create-open-id-connect-provider --url "$issuer" --client-id-list sts.amazonaws.com >/dev/null
  trust=$(printf '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::%s:oidc-provider/%s"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"%s:sub":"system:serviceaccount:default:bench","%s:aud":"sts.amazonaws.com"}}}]}' \
    "$account" "$hp" "$hp" "$hp")
  "$aws" iam create-role --role-name bench --assume-role-policy-document "$trust" >/dev/null
  "$bin" token --cluster bench --namespace default --service-account bench --expiration 7200 >"$work/token"
) || { cat "$work/setup.log" >&2; die "setup failed"; }
[ -s "$work/token" ] || die "podiam token printed nothing"
kill "$pid"
wait "$pid" 2>/dev/null || true

# 2. The same data directory under callgrind, one worker thread (valgrind runs one thread at a
# time anyway), instrumentation off until the warm-up is done.
out=${CALLGRIND_OUT:-$work/callgrind.out}
TOKIO_WORKER_THREADS=1 PODIAM_LOG=warn valgrind --tool=callgrind --instr-atstart=no \
  --callgrind-out-file="$out" "$bin" serve --listen "127.0.0.1:$port" --data-dir "$work/podiam" \
  --account-id "$account" >"$work/serve.log" 2>&1 &
pid=$!
wait_ready 300 || { cat "$work/serve.log" >&2; die "podiam under valgrind did not become ready"; }

# One keep-alive connection, the request run.sh replays; every answer must be 200.
drive() { # drive COUNT
  "$py" - "$url" "arn:aws:iam::$account:role/bench" "$work/token" "$1" <<'EOF'
import http.client, sys, urllib.parse
url, role, token_file, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
token = open(token_file).read().strip()
body = urllib.parse.urlencode({"Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15",
    "RoleArn": role, "RoleSessionName": "bench", "WebIdentityToken": token}).encode()
host, port = urllib.parse.urlsplit(url).netloc.split(":")
conn = http.client.HTTPConnection(host, int(port), timeout=120)
headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
for i in range(count):
    conn.request("POST", "/", body, headers)
    r = conn.getresponse()
    doc = r.read()
    if r.status != 200 or b"<AccessKeyId>" not in doc:
        sys.exit(f"request {i}: {r.status} {doc[:300]!r}")
EOF
}
log "warm-up: 200 requests"
drive 200
callgrind_control -z "$pid" >/dev/null 2>&1
callgrind_control -i on "$pid" >/dev/null 2>&1
log "counting $n requests"
drive "$n"
callgrind_control -i off "$pid" >/dev/null 2>&1
# The dump taken with -d is "$out.1" (the one at exit goes to "$out" and counts nothing).
callgrind_control -d "$pid" >/dev/null 2>&1
dump="$out.1"
for ((i = 0; i < 600; i++)); do [ -s "$dump" ] && break; sleep 0.1; done
sleep 1 # the dump is written by the server; let it finish
kill "$pid"
wait "$pid" 2>/dev/null || true
pid=
[ -s "$dump" ] || { ls -l "$(dirname "$out")" >&2; die "no callgrind dump $dump"; }
total=$(callgrind_annotate "$dump" 2>/dev/null | awk '/PROGRAM TOTALS/ && !t {gsub(",", "", $1); t = $1} END {print t}')
printf 'requests: %d\ntotal Ir: %s\nIr/request: %d\n' "$n" "$total" "$((total / n))"
printf '\ninclusive Ir per request (top %s):\n' "${CALLGRIND_TOP:-60}"
callgrind_annotate --inclusive=yes --threshold=100 "$dump" 2>/dev/null |
  awk -v n="$n" -v top="${CALLGRIND_TOP:-60}" '
    /^-+$/ {dash++; next}
    dash >= 3 && NF >= 2 && $1 ~ /^[0-9,]+$/ {
      ir = $1; gsub(",", "", ir); $1 = ""; sub(/^ +/, "")
      sub(/^\([^)]*\) /, "")
      printf "%9d  %s\n", ir / n, substr($0, 1, 150)
      if (++k >= top) exit
    }' || true # awk stops reading early: callgrind_annotate gets SIGPIPE
if [ -n "${CALLGRIND_OUT:-}" ]; then cp "$dump" "$CALLGRIND_OUT"; log "dump kept in $CALLGRIND_OUT"; fi
