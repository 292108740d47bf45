#!/usr/bin/env bash
# Load test of the kube-apiserver webhooks of `podiam serve` (plain HTTP on loopback, keep-alive):
# TokenReview (`POST /podiam/clusters/NAME/authenticate`) with a real `aws eks get-token` token of
# an IAM user that has an access entry, and SubjectAccessReview (`.../authorize`) for that user as
# the TokenReview answer mapped it (a view policy scoped to one namespace; the review asks to list
# pods there, so it is allowed). The same fixed request is replayed (kube-apiserver caches answers
# per token for 2 minutes by default, so podiam sees repeats too). Reports answers/s at 32
# connections and latency at 4, next to the cost of one SigV4 presigned verification on one core
# (the sigv4 crate's verify_throughput example).
# Targets (TokenReview): >= 10,000 answers/s at 32 connections, p99 <= 2 ms at 4.
#
# Usage: bench/kube_webhooks.sh [DURATION_SECONDS]   (PODIAM_BIN to use a prebuilt binary;
# BENCH_SERVER_CPUS / BENCH_WRK_CPUS: taskset CPU lists to pin the server / wrk)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
DUR=${1:-10}
if ! command -v wrk >/dev/null; then
    echo "installing wrk" >&2
    (apt-get install -y wrk || (apt-get update && apt-get install -y wrk)) >/dev/null
fi
bash scripts/pyenv.sh >/dev/null
AWS="$root/.venv/bin/aws"
BIN=${PODIAM_BIN:-}
if [ -z "$BIN" ]; then
    cargo build --release -p podiam >&2
    BIN=${CARGO_TARGET_DIR:-target}/release/podiam
fi
server_pin=(); wrk_pin=()
[ -n "${BENCH_SERVER_CPUS:-}" ] && server_pin=(taskset -c "$BENCH_SERVER_CPUS")
[ -n "${BENCH_WRK_CPUS:-}" ] && wrk_pin=(taskset -c "$BENCH_WRK_CPUS")
WORK=$(mktemp -d)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

PORT=$((20000 + RANDOM % 20000))
PODIAM_LOG=warn "${server_pin[@]}" "$BIN" serve --listen 127.0.0.1:$PORT --data-dir "$WORK/data" \
    > "$WORK/serve.log" 2>&1 &
PID=$!
for _ in $(seq 200); do grep -q "podiam serving on" "$WORK/serve.log" 2>/dev/null && break; sleep 0.1; done
grep -q "podiam serving on" "$WORK/serve.log" || { cat "$WORK/serve.log" >&2; exit 1; }
URL=http://127.0.0.1:$PORT

export AWS_CONFIG_FILE="$WORK/data/config" AWS_SHARED_CREDENTIALS_FILE="$WORK/data/credentials" AWS_PROFILE=podiam
ACCT=$("$AWS" sts get-caller-identity --query Account --output text)
"$AWS" eks create-cluster --name bench --role-arn "arn:aws:iam::$ACCT:role/eks" \
    --resources-vpc-config subnetIds=subnet-1 --access-config authenticationMode=API >/dev/null
"$AWS" iam create-user --user-name kubectl-user >/dev/null
read -r KEY SECRET < <("$AWS" iam create-access-key --user-name kubectl-user \
    --query 'AccessKey.[AccessKeyId,SecretAccessKey]' --output text)
USER_ARN="arn:aws:iam::$ACCT:user/kubectl-user"
"$AWS" eks create-access-entry --cluster-name bench --principal-arn "$USER_ARN" >/dev/null
"$AWS" eks associate-access-policy --cluster-name bench --principal-arn "$USER_ARN" \
    --policy-arn arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy \
    --access-scope type=namespace,namespaces=team-a >/dev/null
TOKEN=$(env -u AWS_PROFILE AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \
    AWS_ACCESS_KEY_ID="$KEY" AWS_SECRET_ACCESS_KEY="$SECRET" AWS_DEFAULT_REGION=us-east-1 \
    AWS_ENDPOINT_URL_STS="$URL" "$AWS" eks get-token --cluster-name bench --query status.token --output text)

python3 - "$TOKEN" "$WORK" <<'PY'
import json, sys
token, work = sys.argv[1], sys.argv[2]
json.dump({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}},
          open(f"{work}/tokenreview.json", "w"))
PY
curl -sf -H 'content-type: application/json' --data-binary @"$WORK/tokenreview.json" \
    "$URL/podiam/clusters/bench/authenticate" > "$WORK/tr-answer.json"
python3 - "$WORK" <<'PY'
import json, sys
work = sys.argv[1]
st = json.load(open(f"{work}/tr-answer.json"))["status"]
assert st.get("authenticated") is True, st
u = st["user"]
json.dump({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": {
    "resourceAttributes": {"namespace": "team-a", "verb": "list", "group": "", "version": "v1", "resource": "pods"},
    "user": u["username"], "uid": u["uid"], "groups": u["groups"] + ["system:authenticated"], "extra": u["extra"]}},
    open(f"{work}/sar.json", "w"))
PY
curl -sf -H 'content-type: application/json' --data-binary @"$WORK/sar.json" \
    "$URL/podiam/clusters/bench/authorize" | grep -q '"allowed":true' \
    || { echo "sanity SubjectAccessReview not allowed" >&2; exit 1; }

load() { # NAME BODY PATH
    cat > "$WORK/$1.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("$2", "rb")
wrk.body = f:read("*all")
f:close()
LUA
    "${wrk_pin[@]}" wrk -t2 -c32 -d2s -s "$WORK/$1.lua" "$URL$3" >/dev/null
    "${wrk_pin[@]}" wrk -t2 -c32 -d"${DUR}s" --latency -s "$WORK/$1.lua" "$URL$3" > "$WORK/$1-c32.txt"
    "${wrk_pin[@]}" wrk -t1 -c4 -d"${DUR}s" --latency -s "$WORK/$1.lua" "$URL$3" > "$WORK/$1-c4.txt"
    local rps32 rps4 p50 p99 err
    rps32=$(awk '/Requests\/sec/ {printf "%.0f", $2}' "$WORK/$1-c32.txt")
    rps4=$(awk '/Requests\/sec/ {printf "%.0f", $2}' "$WORK/$1-c4.txt")
    p50=$(awk '$1=="50%" {print $2}' "$WORK/$1-c4.txt")
    p99=$(awk '$1=="99%" {print $2}' "$WORK/$1-c4.txt")
    err=$(cat "$WORK/$1-c32.txt" "$WORK/$1-c4.txt" | grep -E "Non-2xx|Socket errors" || true)
    echo "| $1 | $rps32 | $rps4 | $p50 | $p99 | ${err:-none} |"
}
echo "$(nproc) cores; ${DUR}s per run; token $(wc -c < "$WORK/tokenreview.json") bytes of review"
echo
echo "| review | answers/s at 32 | answers/s at 4 | p50 at 4 | p99 at 4 | errors |"
echo "| --- | ---: | ---: | ---: | ---: | --- |"
load TokenReview "$WORK/tokenreview.json" /podiam/clusters/bench/authenticate
load SubjectAccessReview "$WORK/sar.json" /podiam/clusters/bench/authorize
echo
echo "One SigV4 verification on one core (crates/sigv4/examples/verify_throughput.rs):"
cargo run --quiet --release -p podiam-sigv4 --example verify_throughput
