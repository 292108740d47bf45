#!/usr/bin/env bash
# Load test of `podiam webhook`: wrk over HTTPS keep-alive POSTing a typical pod
# AdmissionReview (an IRSA pod: two containers, one init container, volumes, env) to /mutate.
# Reports admissions/s at 16 connections and the p99 latency at 4 connections.
# Targets: >= 10,000 admissions/s, p99 <= 2 ms.
#
# Usage: bench/webhook.sh [DURATION_SECONDS]   (PODIAM_BIN to use a prebuilt binary)
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-10}
if ! command -v wrk >/dev/null; then
    echo "installing wrk" >&2
    (apt-get install -y wrk || (apt-get update && apt-get install -y wrk)) >/dev/null
fi
BIN=${PODIAM_BIN:-}
if [ -z "$BIN" ]; then
    cargo build --release -p podiam >&2
    BIN=${CARGO_TARGET_DIR:-target}/release/podiam
fi
WORK=$(mktemp -d)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

cat > "$WORK/sa.json" <<'JSON'
{"shop/checkout": {"RoleARN": "arn:aws:iam::111122223333:role/checkout", "UseRegionalSTS": true}}
JSON
PORT=$((20000 + RANDOM % 20000))
PODIAM_LOG=warn "$BIN" webhook --listen 127.0.0.1:$PORT --self-signed "$WORK/certs" \
    --service-account-file "$WORK/sa.json" --default-region us-east-1 > "$WORK/out.log" 2>&1 &
PID=$!
for _ in $(seq 100); do grep -q "listening on" "$WORK/out.log" 2>/dev/null && break; sleep 0.1; done
grep -q "listening on" "$WORK/out.log" || { cat "$WORK/out.log" >&2; exit 1; }

BODY=$(python3 - <<'PY'
import json
pod = {"apiVersion": "v1", "kind": "Pod",
  "metadata": {"generateName": "checkout-7d9f8b6c4-", "namespace": "shop",
    "labels": {"app": "checkout", "pod-template-hash": "7d9f8b6c4"},
    "annotations": {"kubectl.kubernetes.io/restartedAt": "2024-01-01T00:00:00Z"},
    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "checkout-7d9f8b6c4", "uid": "6b1f0c1e-3f7e-4a43-9d8e-0c2a7f1f2b11", "controller": True, "blockOwnerDeletion": True}]},
  "spec": {"serviceAccountName": "checkout", "serviceAccount": "checkout",
    "volumes": [{"name": "kube-api-access-x1", "projected": {"defaultMode": 420, "sources": [{"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}, {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}}]}}, {"name": "cache", "emptyDir": {}}],
    "initContainers": [{"name": "migrate", "image": "registry.example.com/checkout:1.42", "command": ["/app/migrate"], "env": [{"name": "DB_HOST", "value": "db.shop"}],
      "volumeMounts": [{"name": "kube-api-access-x1", "readOnly": True, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]}],
    "containers": [
      {"name": "app", "image": "registry.example.com/checkout:1.42", "ports": [{"containerPort": 8080, "protocol": "TCP"}],
       "env": [{"name": "LOG_LEVEL", "value": "info"}, {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
       "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
       "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": 5},
       "volumeMounts": [{"name": "cache", "mountPath": "/cache"}, {"name": "kube-api-access-x1", "readOnly": True, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]},
      {"name": "envoy", "image": "envoyproxy/envoy:v1.30", "args": ["-c", "/etc/envoy/envoy.yaml"],
       "volumeMounts": [{"name": "kube-api-access-x1", "readOnly": True, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]}],
    "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
    "securityContext": {}, "schedulerName": "default-scheduler", "priority": 0,
    "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]}}
print(json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
  "request": {"uid": "705ab4f5-6393-11e8-b7cc-42010a800002", "kind": {"group": "", "version": "v1", "kind": "Pod"},
    "resource": {"group": "", "version": "v1", "resource": "pods"}, "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
    "namespace": "shop", "operation": "CREATE", "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller", "groups": ["system:serviceaccounts", "system:authenticated"]},
    "object": pod, "oldObject": None, "dryRun": False, "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}}}))
PY
)
printf '%s' "$BODY" > "$WORK/body.json"
cat > "$WORK/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("$WORK/body.json", "rb")
wrk.body = f:read("*all")
f:close()
LUA
# Sanity: one admission gives a patch.
curl -sk -H 'content-type: application/json' --data-binary @"$WORK/body.json" https://127.0.0.1:$PORT/mutate | grep -q '"patchType":"JSONPatch"' \
    || { echo "sanity request failed" >&2; exit 1; }
echo "body: $(wc -c < "$WORK/body.json") bytes; $(nproc) cores; ${DUR}s per run"
wrk -t2 -c16 -d"${DUR}s" --latency -s "$WORK/post.lua" "https://127.0.0.1:$PORT/mutate" > "$WORK/c16.txt"
wrk -t1 -c4 -d"${DUR}s" --latency -s "$WORK/post.lua" "https://127.0.0.1:$PORT/mutate" > "$WORK/c4.txt"
RPS=$(awk '/Requests\/sec/ {print $2}' "$WORK/c16.txt")
P99=$(awk '$1=="99%" {print $2}' "$WORK/c4.txt")
P50=$(awk '$1=="50%" {print $2}' "$WORK/c4.txt")
ERR16=$(grep -E "Non-2xx|Socket errors" "$WORK/c16.txt" || true)
echo "16 connections: ${RPS} admissions/s (target >= 10000) ${ERR16}"
echo " 4 connections: p50 ${P50}, p99 ${P99} (target <= 2ms)"
