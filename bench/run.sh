#!/usr/bin/env bash
# podiam's benchmark: the same wrk load against `podiam serve` and against moto_server (the
# baseline), one after the other on this machine, then a side-by-side table printed and written
# to bench/results/latest.md. See bench/README.md.
#
# Environment (all optional):
#   PODIAM_BIN          podiam binary (default: target/release/podiam, or under $CARGO_TARGET_DIR;
#                       built with `cargo build --release -p podiam` if missing, used as is if stale)
#   BENCH_VENV          virtualenv with moto[server], boto3 and awscli, used as is (default:
#                       $PODIAM_VENV or .venv, set up by scripts/pyenv.sh)
#   BENCH_DURATION      seconds measured per podiam case (10); BENCH_WARMUP (2)
#   BENCH_MOTO_DURATION seconds measured per moto case (5); BENCH_MOTO_WARMUP (1)
#   BENCH_SKIP_MOTO=1   podiam only (the ratio column stays empty)
#   BENCH_SERVER_CPUS / BENCH_WRK_CPUS  taskset CPU lists to pin the server / wrk (unpinned)
#   TOKIO_WORKER_THREADS  podiam's runtime worker threads (tokio's default: one per core)
#   BENCH_STRICT=1      exit 3 when a target is not met (default: report only)
#   BENCH_OUT           report path (default: bench/results/latest.md)
#   BENCH_KEEP=1        keep the scratch directory (server logs, wrk outputs)
# Exit status: 0 ok; 1 setup failure; 2 a non-2xx response or socket error under load; 3 (with
# BENCH_STRICT=1) a target not met.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

duration=${BENCH_DURATION:-10}
warmup=${BENCH_WARMUP:-2}
moto_duration=${BENCH_MOTO_DURATION:-5}
moto_warmup=${BENCH_MOTO_WARMUP:-1}
out_md=${BENCH_OUT:-$root/bench/results/latest.md}
account=111122223333

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- tools
if [ -z "${PODIAM_BIN:-}" ]; then
  PODIAM_BIN="${CARGO_TARGET_DIR:-$root/target}/release/podiam"
  if [ ! -x "$PODIAM_BIN" ]; then
    log "building podiam (release)"
    cargo build --release -p podiam
  fi
fi
[ -x "$PODIAM_BIN" ] || die "PODIAM_BIN=$PODIAM_BIN is not an executable"

if [ -n "${BENCH_VENV:-}" ]; then
  venv=$BENCH_VENV
else
  venv=${PODIAM_VENV:-$root/.venv}
  bash scripts/pyenv.sh # idempotent: a no-op when the venv is up to date
fi
for tool in python aws moto_server; do
  [ -x "$venv/bin/$tool" ] || die "$venv/bin/$tool missing (the venv needs awscli, boto3 and moto[server])"
done
py="$venv/bin/python"
aws="$venv/bin/aws"
helper="$root/bench/bench.py"

if ! command -v wrk >/dev/null 2>&1; then
  log "installing wrk"
  apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
fi

# Command prefixes that pin the servers / wrk to CPUs (arrays, not functions: a backgrounded
# function would run in a subshell and $! would not be the server's pid).
server_pin=()
wrk_pin=()
if [ -n "${BENCH_SERVER_CPUS:-}" ]; then server_pin=(taskset -c "$BENCH_SERVER_CPUS"); fi
if [ -n "${BENCH_WRK_CPUS:-}" ]; then wrk_pin=(taskset -c "$BENCH_WRK_CPUS"); fi

# ---------------------------------------------------------------- scratch, cleanup
work=$(mktemp -d /tmp/podiam-bench.XXXXXX)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ -n "${BENCH_KEEP:-}" ]; then echo "bench: scratch kept in $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
export BENCH_RESULTS="$work/results.jsonl"
: >"$BENCH_RESULTS"

wait_http() { # wait_http URL SECONDS PID — until URL answers (any HTTP status with ANY=1, else 200)
  local url=$1 secs=$2 pid=$3 code i
  for ((i = 0; i < secs * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || return 1
    code=$(curl -s -o /dev/null -w '%{http_code}' "$url" || true)
    if [ "$code" = 200 ] || { [ -n "${ANY:-}" ] && [ "$code" != 000 ]; }; then return 0; fi
    sleep 0.1
  done
  return 1
}

# CPU accounting around each measured run: the server's CPU per request is steadier than req/s
# on a shared 2-core box, and the CPU nobody of ours used says how much else was running.
clk_tck=$(getconf CLK_TCK)
pid_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# Machine-wide busy time (all but idle and iowait), and of it irq+softirq (loopback TCP). With
# tick-based accounting (no IRQ_TIME_ACCOUNTING) a softirq tick is also charged to the task it
# interrupted, so the server's and wrk's times include part of it.
machine_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9; exit}' /proc/stat; }
irq_ticks() { awk '/^cpu / {print $7 + $8; exit}' /proc/stat; }

# run_case TARGET URL CASE LUA CONNECTIONS THREADS DURATION WARMUP  (server pid in $server_pid)
run_case() {
  local target=$1 url=$2 case=$3 lua=$4 conns=$5 threads=$6 dur=$7 warm=$8
  local out="$work/wrk-$target-$case-c$conns.txt" s0 s1 m0 m1 i0 i1 t0 t1
  "${wrk_pin[@]}" wrk -t"$threads" -c"$conns" -d"${warm}s" --timeout 10s -s "$lua" "$url" >/dev/null
  s0=$(pid_ticks "$server_pid") m0=$(machine_ticks) i0=$(irq_ticks) t0=$(date +%s.%N)
  local TIMEFORMAT='%U %S'
  { time "${wrk_pin[@]}" wrk -t"$threads" -c"$conns" -d"${dur}s" --timeout 10s --latency -s "$lua" "$url" \
    >"$out" 2>"$out.err"; } 2>"$out.time"
  s1=$(pid_ticks "$server_pid") m1=$(machine_ticks) i1=$(irq_ticks) t1=$(date +%s.%N)
  "$py" "$helper" parse "$out" "$target" "$case" "$conns" \
    "$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')" "$((s1 - s0))" "$((m1 - m0))" "$((i1 - i0))" "$clk_tck" \
    "$(awk '{print $1 + $2}' "$out.time")" || {
    cat "$out" "$out.err" >&2
    exit 2
  }
}

# run_cases TARGET URL ROLE_ARN TOKEN_FILE DURATION WARMUP
run_cases() {
  local target=$1 url=$2 role=$3 token=$4 dur=$5 warm=$6
  "$py" "$helper" prepare-arwwi "$work/$target-arwwi.lua" "$url" "$role" "$token"
  run_case "$target" "$url" AssumeRoleWithWebIdentity "$work/$target-arwwi.lua" 32 2 "$dur" "$warm"
  run_case "$target" "$url" AssumeRoleWithWebIdentity "$work/$target-arwwi.lua" 4 1 "$dur" "$warm"
  # Signed right before its load: a SigV4 signature is valid for 5 minutes and is replayed as is.
  "$py" "$helper" prepare-gci "$work/$target-gci.lua" "$url" "$role" "$token"
  run_case "$target" "$url" GetCallerIdentity "$work/$target-gci.lua" 32 2 "$dur" "$warm"
  run_case "$target" "$url" GetCallerIdentity "$work/$target-gci.lua" 4 1 "$dur" "$warm"
}

trust_policy() { # trust_policy HOSTPATH
  local hp=$1
  printf '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::%s:oidc-provider/%s"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"%s:sub":"system:serviceaccount:default:bench","%s:aud":"sts.amazonaws.com"}}}]}' \
    "$account" "$hp" "$hp" "$hp"
}

# Anything else burning CPU skews every number here (2 cores, shared with wrk): say so.
busy=$(top -b -n 2 -d 1 -w 200 2>/dev/null | awk '/^top -/ {n++} n == 2 && $1 ~ /^[0-9]+$/ && $9 + 0 >= 10 {printf "%s%s %s%%", sep, $12, $9; sep=", "}' || true)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
if [ -n "$busy" ]; then log "warning: other processes are using CPU: $busy (load average $load_before); numbers will be low"; fi

# ---------------------------------------------------------------- podiam
pport=$("$py" "$helper" free-port)
purl="http://127.0.0.1:$pport"
log "podiam serve on $purl ($PODIAM_BIN)"
PODIAM_LOG=${PODIAM_LOG:-warn} "${server_pin[@]}" "$PODIAM_BIN" serve --listen "127.0.0.1:$pport" \
  --data-dir "$work/podiam" --account-id "$account" >"$work/podiam.log" 2>&1 &
podiam_pid=$!
server_pid=$podiam_pid
pids+=("$podiam_pid")
wait_http "$purl/readyz" 60 "$podiam_pid" || { cat "$work/podiam.log" >&2; die "podiam did not become ready"; }

(
  # The root profile podiam wrote, and nothing from the caller's environment that would win over it.
  unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_DEFAULT_PROFILE AWS_ENDPOINT_URL \
    AWS_ENDPOINT_URL_IAM AWS_ENDPOINT_URL_STS AWS_ENDPOINT_URL_EKS AWS_ROLE_ARN AWS_WEB_IDENTITY_TOKEN_FILE
  export AWS_CONFIG_FILE="$work/podiam/config" AWS_SHARED_CREDENTIALS_FILE="$work/podiam/credentials" AWS_PROFILE=podiam
  issuer=$("$aws" eks create-cluster --name bench --role-arn "arn:aws:iam::$account:role/eks" \
    --resources-vpc-config subnetIds=subnet-1 --query cluster.identity.oidc.issuer --output text)
  hp=${issuer#https://}
  log "issuer $issuer"
  "$aws" iam create-open-id-connect-provider --url "$issuer" --client-id-list sts.amazonaws.com >/dev/null
  "$aws" iam create-role --role-name bench --assume-role-policy-document "$(trust_policy "$hp")" >/dev/null
  "$PODIAM_BIN" token --cluster bench --namespace default --service-account bench --expiration 7200 >"$work/token"
  printf '%s\n' "$(trust_policy "$hp")" >"$work/trust.json"
) || { cat "$work/podiam.log" >&2; die "podiam setup failed"; }
[ -s "$work/token" ] || die "podiam token printed nothing"

log "load on podiam: ${duration}s per case after ${warmup}s warm-up"
run_cases podiam "$purl" "arn:aws:iam::$account:role/bench" "$work/token" "$duration" "$warmup"
podiam_rss=$(awk '/VmHWM/ {print $2 " " $3}' "/proc/$podiam_pid/status" 2>/dev/null || echo "?")
kill "$podiam_pid"
wait "$podiam_pid" 2>/dev/null || true
if grep -qiE 'error|panic' "$work/podiam.log"; then
  log "podiam logged errors under load:"
  grep -iE 'error|panic' "$work/podiam.log" | head -20 >&2
fi

# ---------------------------------------------------------------- moto
moto_version="-"
if [ -z "${BENCH_SKIP_MOTO:-}" ]; then
  mport=$("$py" "$helper" free-port)
  murl="http://127.0.0.1:$mport"
  moto_version=$("$py" -c 'import moto; print(moto.__version__)')
  log "moto_server $moto_version on $murl"
  "${server_pin[@]}" "$venv/bin/moto_server" -H 127.0.0.1 -p "$mport" >"$work/moto.log" 2>&1 &
  moto_pid=$!
  server_pid=$moto_pid
  pids+=("$moto_pid")
  ANY=1 wait_http "$murl/moto-api/" 60 "$moto_pid" || { cat "$work/moto.log" >&2; die "moto_server did not start"; }
  mrole=$("$py" "$helper" moto-setup "$murl" bench "$(cat "$work/trust.json")") || die "moto setup failed"
  log "load on moto: ${moto_duration}s per case after ${moto_warmup}s warm-up"
  run_cases moto "$murl" "$mrole" "$work/token" "$moto_duration" "$moto_warmup"
  kill "$moto_pid"
  wait "$moto_pid" 2>/dev/null || true
fi

# ---------------------------------------------------------------- report
{
  echo "Run $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) cores ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)),"
  echo "wrk and the server on the same machine; podiam ${duration}s per case after ${warmup}s warm-up,"
  echo "moto $moto_version ${moto_duration}s per case after ${moto_warmup}s warm-up; -t2 at 32 connections, -t1 at 4."
  echo "Load average before the run: $load_before${busy:+; busy then: $busy}."
  echo "podiam peak RSS: $podiam_rss; worker threads: ${TOKIO_WORKER_THREADS:-default}; pinning: server ${BENCH_SERVER_CPUS:-none}, wrk ${BENCH_WRK_CPUS:-none}."
} >"$work/meta.txt"
mkdir -p "$(dirname "$out_md")"
status=0
"$py" "$helper" report "$BENCH_RESULTS" "$out_md" "$work/meta.txt" || status=$?
echo "written to ${out_md#"$root"/}"
if [ "$status" = 3 ] && [ -z "${BENCH_STRICT:-}" ]; then status=0; fi
exit "$status"
