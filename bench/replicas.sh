#!/usr/bin/env bash
# Replicas over PostgreSQL at scale: N roles (default 100,000) inserted directly with SQL, then
#   - catch-up: how long a running replica takes to serve the last role after the insert commits
#     (one change-feed read of N records, woken by NOTIFY);
#   - cold start: from `podiam serve` spawned to /readyz answering 200, loading the N records;
#   - resident memory (VmRSS, VmHWM) of a replica with an empty store and with N roles;
#   - then, with BENCH_ASSOCIATIONS Pod Identity associations added, cold start and memory again;
#   - EKS Auth AssumeRoleForPodIdentity throughput (wrk, 32 connections, one signed request
#     replayed) of a replica over that store side by side with a replica over a copy of the
#     database taken before the bulk inserts (a handful of records), in alternated rounds.
# Prints a table and writes it to bench/results/replicas-latest.md.
#
# Environment (all optional):
#   PODIAM_BIN      podiam binary (default: target/release/podiam, or under $CARGO_TARGET_DIR;
#                   built with `cargo build --release -p podiam` if missing)
#   BENCH_ROLES     number of roles (100000)
#   BENCH_ASSOCIATIONS  Pod Identity associations added afterwards for a second set of cold starts
#                   (1000000; 0 skips them)
#   BENCH_STARTS    cold starts measured (3; the table shows the median)
#   BENCH_ROUNDS    alternated AssumeRoleForPodIdentity rounds per store (3), BENCH_DURATION
#                   seconds each (10)
#   PODIAM_TEST_POSTGRES_URL  an existing server to use (a fresh database is created in it with
#                   psql); default: a throwaway cluster from scripts/postgres.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

log() { printf '== %s\n' "$*" >&2; }

if [ -z "${PODIAM_BIN:-}" ]; then
  PODIAM_BIN="${CARGO_TARGET_DIR:-$root/target}/release/podiam"
  if [ ! -x "$PODIAM_BIN" ]; then
    log "building podiam (release)"
    cargo build --release -p podiam
  fi
fi
export PODIAM_BIN
[ -x "$root/.venv/bin/python" ] || bash scripts/pyenv.sh
if ! command -v wrk >/dev/null 2>&1; then
  log "installing wrk"
  apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
fi

scratch=$(mktemp -d "${TMPDIR:-/tmp}/podiam-bench-replicas.XXXXXX")
chmod 755 "$scratch"  # the throwaway PostgreSQL below runs as user postgres
cleanup() {
  if [ -n "${own_pg:-}" ]; then bash "$root/scripts/postgres.sh" destroy >/dev/null 2>&1 || true; fi
  rm -rf "$scratch"
}
trap cleanup EXIT

if [ -z "${PODIAM_TEST_POSTGRES_URL:-}" ]; then
  log "starting a throwaway PostgreSQL"
  export PODIAM_PG_DIR="$scratch/pg"
  own_pg=1
  pg_env=$(bash scripts/postgres.sh start)
  eval "$pg_env"
fi
db="bench_replicas_$(date +%s)_$$"
psql -X -q -v ON_ERROR_STOP=1 "$PODIAM_TEST_POSTGRES_URL" -c "CREATE DATABASE $db" >&2
base=${PODIAM_TEST_POSTGRES_URL%%\?*}
export BENCH_DB_URL="${base%/*}/$db" BENCH_SMALL_DB_URL="${base%/*}/${db}_small" BENCH_ADMIN_URL="$PODIAM_TEST_POSTGRES_URL"

BENCH_SCRATCH="$scratch" "$root/.venv/bin/python" - <<'EOF'
import base64, json, os, re, statistics, subprocess, sys, time, urllib.request
from pathlib import Path

import boto3, botocore.config
sys.path.insert(0, str(Path.cwd() / "bench"))
from pod_identity import eks_auth_lua, wrk  # noqa: E402

root = Path.cwd()
scratch = Path(os.environ["BENCH_SCRATCH"])
url = os.environ["BENCH_DB_URL"]
n = int(os.environ.get("BENCH_ROLES", "100000"))
starts = int(os.environ.get("BENCH_STARTS", "3"))
podiam = os.environ["PODIAM_BIN"]
account = "111122223333"
key = scratch / "master.key"
key.write_text(base64.b64encode(os.urandom(32)).decode() + "\n")
key.chmod(0o600)


def rss(pid: int) -> tuple[int, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    get = lambda k: int(re.search(rf"^{k}:\s+(\d+) kB", status, re.M).group(1))
    return get("VmRSS"), get("VmHWM")


class Replica:
    def __init__(self, name: str):
        self.dir = scratch / name
        self.log = scratch / f"{name}.log"

    def start(self, store: str = url) -> float:
        t0 = time.monotonic()
        self.proc = subprocess.Popen([podiam, "serve", "--listen", "127.0.0.1:0", "--data-dir", str(self.dir),
                                      "--account-id", account, "--store", store, "--master-key-file", str(key)],
                                     stdout=open(self.log, "wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env={**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
                                          "PODIAM_LOG": "warn"})
        while True:
            if self.proc.poll() is not None:
                sys.exit(f"podiam exited:\n{self.log.read_text()}")
            m = re.search(r"podiam serving on (http://\S+)", self.log.read_text(errors="replace"))
            if m:
                self.endpoint = m.group(1)
                try:
                    if urllib.request.urlopen(f"{self.endpoint}/readyz", timeout=1).status == 200:
                        return time.monotonic() - t0
                except OSError:
                    pass
            time.sleep(0.002)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(30)

    def iam(self, creds):
        return boto3.client("iam", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=creds[0], aws_secret_access_key=creds[1],
                            config=botocore.config.Config(retries={"max_attempts": 0}))


def psql(sql: str) -> None:
    subprocess.run(["psql", "-X", "-q", "-o", "/dev/null", "-v", "ON_ERROR_STOP=1", url], input=sql, text=True, check=True)


print("== first start (migrations, account)", file=sys.stderr)
first = Replica("first")
first.start()
cred = (first.dir / "credentials").read_text()
creds = (re.search(r"aws_access_key_id = (\S+)", cred).group(1), re.search(r"aws_secret_access_key = (\S+)", cred).group(1))
empty_rss = rss(first.proc.pid)
boto3.client("eks", endpoint_url=first.endpoint, region_name="us-east-1", aws_access_key_id=creds[0],
             aws_secret_access_key=creds[1]).create_cluster(
    name="bench", roleArn=f"arn:aws:iam::{account}:role/eks", resourcesVpcConfig={"subnetIds": ["s"]})
n_assoc = int(os.environ.get("BENCH_ASSOCIATIONS", "1000000"))
first.iam(creds).list_roles()

# What AssumeRoleForPodIdentity needs: a role pods may assume, a node allowed to call EKS Auth,
# an association, and a pod token from the cluster's issuer.
iam = first.iam(creds)
iam.create_role(RoleName="bench-pod", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"}, "Action": ["sts:AssumeRole", "sts:TagSession"],
    "Condition": {"StringEquals": {"aws:RequestTag/eks-cluster-name": "bench"}}}]}))
iam.create_user(UserName="node")
iam.put_user_policy(UserName="node", PolicyName="eks-auth", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "eks-auth:AssumeRoleForPodIdentity", "Resource": "*"}]}))
node_key = iam.create_access_key(UserName="node")["AccessKey"]
boto3.client("eks", endpoint_url=first.endpoint, region_name="us-east-1", aws_access_key_id=creds[0],
             aws_secret_access_key=creds[1]).create_pod_identity_association(
    clusterName="bench", namespace="bench", serviceAccount="sa-0", roleArn=f"arn:aws:iam::{account}:role/bench-pod")
pod_token = subprocess.run(
    [podiam, "token", "--cluster", "bench", "--namespace", "bench", "--service-account", "sa-0",
     "--audience", "pods.eks.amazonaws.com", "--pod-name", "bench-pod", "--pod-uid", "0c9a3f5e-0000-4000-8000-000000000001",
     "--expiration", "7200"],
    env={**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")}, "AWS_ENDPOINT_URL": first.endpoint, "AWS_ACCESS_KEY_ID": creds[0],
         "AWS_SECRET_ACCESS_KEY": creds[1], "AWS_REGION": "us-east-1", "AWS_CONFIG_FILE": os.devnull,
         "AWS_SHARED_CREDENTIALS_FILE": os.devnull},
    capture_output=True, text=True, check=True).stdout.strip()
# The small store of the throughput comparison: this database as it is now.
first.stop()
subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", os.environ["BENCH_ADMIN_URL"], "-c",
                f"CREATE DATABASE {os.environ['BENCH_SMALL_DB_URL'].rsplit('/', 1)[1]} TEMPLATE {url.rsplit('/', 1)[1]}"],
               check=True)
first.start()

trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                                                            "Action": "sts:AssumeRole"}]})
last = f"bench-role-{n:06d}"
print(f"== inserting {n} roles with SQL while a replica runs", file=sys.stderr)
t_sql = time.monotonic()
psql(f"""
BEGIN;
UPDATE change_seq SET value = value + 1 WHERE id = 1;
INSERT INTO records (kind, account, id, doc, version, updated_at, seq)
SELECT 'role', '{account}', 'bench-role-' || lpad(i::text, 6, '0'),
       json_build_object('name', 'bench-role-' || lpad(i::text, 6, '0'),
                         'id', 'AROA' || upper(substr(md5(i::text), 1, 17)),
                         'path', '/', 'trust_policy', $trust${trust}$trust$, 'description', 'benchmark role',
                         'max_session_duration', 3600, 'created', extract(epoch FROM now())::bigint,
                         'tags', json_build_array(json_build_object('key', 'team', 'value', 'bench')))::text,
       1, extract(epoch FROM now())::bigint, (SELECT value FROM change_seq WHERE id = 1)
FROM generate_series(1, {n}) AS i;
SELECT pg_notify('podiam_changes', (SELECT value FROM change_seq WHERE id = 1)::text);
COMMIT;
""")
t_commit = time.monotonic()
iam = first.iam(creds)
while True:
    try:
        iam.get_role(RoleName=last)
        break
    except iam.exceptions.NoSuchEntityException:
        time.sleep(0.01)
catch_up = time.monotonic() - t_commit
time.sleep(0.5)
caught_up_rss = rss(first.proc.pid)
first.stop()
print(f"   SQL insert {t_commit - t_sql:.1f}s; running replica served the last role {catch_up:.2f}s after the commit",
      file=sys.stderr)

cold, full_rss = [], None
for i in range(starts):
    r = Replica(f"cold{i}")
    cold.append(r.start())
    r.iam(creds).get_role(RoleName=last)
    time.sleep(0.3)
    full_rss = rss(r.proc.pid)
    r.stop()
    print(f"   cold start {i + 1}: ready in {cold[-1]:.2f}s", file=sys.stderr)

assoc_rows = []
if n_assoc:
    print(f"== inserting {n_assoc} pod identity associations with SQL", file=sys.stderr)
    t_sql = time.monotonic()
    psql(f"""
BEGIN;
UPDATE change_seq SET value = value + 1 WHERE id = 1;
INSERT INTO records (kind, account, id, doc, version, updated_at, seq)
SELECT 'pod_identity_association', '{account}', 'a-' || substr(md5(i::text), 1, 17),
       json_build_object('id', 'a-' || substr(md5(i::text), 1, 17), 'cluster', 'bench',
                         'namespace', 'ns-' || (i % 1000), 'service_account', 'sa-' || i,
                         'role_arn', 'arn:aws:iam::{account}:role/bench-role-' || lpad(((i % {n}) + 1)::text, 6, '0'),
                         'target_role_arn', NULL, 'external_id', md5('x' || i::text), 'disable_session_tags', false,
                         'policy', NULL, 'tags', '{{}}'::json, 'created_ms', (extract(epoch FROM now()) * 1000)::bigint,
                         'modified_ms', (extract(epoch FROM now()) * 1000)::bigint, 'owner_arn', NULL,
                         'client_request_token', NULL)::text,
       1, extract(epoch FROM now())::bigint, (SELECT value FROM change_seq WHERE id = 1)
FROM generate_series(1, {n_assoc}) AS i;
COMMIT;
""")
    print(f"   SQL insert {time.monotonic() - t_sql:.1f}s", file=sys.stderr)
    cold_a, assoc_rss = [], None
    for i in range(starts):
        r = Replica(f"cold-assoc{i}")
        cold_a.append(r.start())
        eks = boto3.client("eks", endpoint_url=r.endpoint, region_name="us-east-1", aws_access_key_id=creds[0],
                           aws_secret_access_key=creds[1])
        assert eks.list_pod_identity_associations(clusterName="bench", namespace="ns-7", maxResults=5)["associations"]
        time.sleep(0.3)
        assoc_rss = rss(r.proc.pid)
        r.stop()
        print(f"   cold start {i + 1} with associations: ready in {cold_a[-1]:.2f}s", file=sys.stderr)
    per_100k = (assoc_rss[0] - full_rss[0]) / 1024 / (n_assoc / 100_000)

    rounds = int(os.environ.get("BENCH_ROUNDS", "3"))
    big, small = Replica("eks-auth-big"), Replica("eks-auth-small")
    big.start()
    small.start(os.environ["BENCH_SMALL_DB_URL"])

    runs = {"big": [], "small": []}
    for i in range(rounds):
        print(f"== AssumeRoleForPodIdentity round {i + 1}/{rounds}: small store, then {n_assoc:,} associations",
              file=sys.stderr)
        for name, r in (("small", small), ("big", big)):
            lua = eks_auth_lua(r.endpoint, "bench", pod_token, node_key, scratch / f"{name}.lua")
            runs[name].append(wrk(f"{r.endpoint}/clusters/bench/assume-role-for-pod-identity", lua, 32, 2))
    big.stop()
    small.stop()
    rps_small = statistics.mean(x["rps"] for x in runs["small"])
    rps_big = statistics.mean(x["rps"] for x in runs["big"])
    assoc_rows = [
        ("pod identity associations added", f"{n_assoc:,}"),
        (f"cold start to /readyz with roles and associations (median of {starts})",
         f"{statistics.median(cold_a):.2f} s (min {min(cold_a):.2f}, max {max(cold_a):.2f})"),
        ("RSS after a cold start with roles and associations (VmRSS / VmHWM)",
         f"{assoc_rss[0] / 1024:.0f} / {assoc_rss[1] / 1024:.0f} MiB"),
        ("RSS per 100,000 associations", f"{per_100k:.0f} MiB"),
        (f"AssumeRoleForPodIdentity, small store, 32 conns (mean of {rounds})",
         f"{rps_small:,.0f} req/s (p99 ≤ {max(x['p99_ms'] for x in runs['small']):.1f} ms)"),
        (f"AssumeRoleForPodIdentity, {n_assoc:,} associations + {n:,} roles, 32 conns (mean of {rounds})",
         f"{rps_big:,.0f} req/s (p99 ≤ {max(x['p99_ms'] for x in runs['big']):.1f} ms): {rps_big / rps_small:.0%} of the small store"),
    ]

rows = [
    ("roles in the store", f"{n:,}"),
    ("catch-up of a running replica (commit → last role served)", f"{catch_up:.2f} s"),
    (f"cold start to /readyz (median of {starts})", f"{statistics.median(cold):.2f} s (min {min(cold):.2f}, max {max(cold):.2f})"),
    ("RSS, empty store (VmRSS / VmHWM)", f"{empty_rss[0] / 1024:.0f} / {empty_rss[1] / 1024:.0f} MiB"),
    ("RSS after catching up on the roles (VmRSS / VmHWM)", f"{caught_up_rss[0] / 1024:.0f} / {caught_up_rss[1] / 1024:.0f} MiB"),
    ("RSS after a cold start with the roles (VmRSS / VmHWM)", f"{full_rss[0] / 1024:.0f} / {full_rss[1] / 1024:.0f} MiB"),
] + assoc_rows
md = "| replicas over PostgreSQL | |\n| --- | --- |\n" + "".join(f"| {a} | {b} |\n" for a, b in rows)
md += f"\nbinary: `{podiam}`; {os.cpu_count()} CPUs; PostgreSQL on the same machine.\n"
print(md)
out = root / "bench" / "results" / "replicas-latest.md"
out.write_text(md)
EOF
