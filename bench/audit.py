#!/usr/bin/env python3
"""Audit-trail benchmark, driven by bench/audit.sh: the cost of auditing on the two credential
paths that make events, measured in one run on two `podiam serve` processes alike in everything
but auditing — one with the default trail (events kept in SQLite, `--audit-retention-days 90`),
one with it off (`--audit-retention-days 0`) — in alternation (BENCH_ROUNDS, default 3):

  1. AssumeRoleWithWebIdentity (IRSA): one request replayed by wrk (32 connections), each call a
     verified token, a trust evaluation, a minted session and, on the audited server, an event;
  2. EKS Auth AssumeRoleForPodIdentity, what the node agent calls on a cache miss: one signed
     request replayed.

Prints a markdown table with mean req/s of each and the ratio; the target is at most 10% lower
with auditing on. Checks afterwards that the audited server wrote an event per request.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench import arwwi_body, write_lua  # noqa: E402
from pod_identity import ACCOUNT, Proc, eks_auth_lua, log, root_clients, wrk  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
CLUSTER = "bench"


def setup(podiam: str, work: Path, name: str, flags: list[str], env: dict[str, str]) -> dict:
    data = work / name
    serve = Proc([podiam, "serve", "--listen", "127.0.0.1:0", "--data-dir", str(data), "--account-id", ACCOUNT, *flags],
                 work / f"{name}.log", env, r"podiam serving on (http://\S+)")
    endpoint = serve.match.group(1)
    eks, iam = root_clients(data, endpoint)
    eks.create_cluster(name=CLUSTER, roleArn=f"arn:aws:iam::{ACCOUNT}:role/eks", resourcesVpcConfig={"subnetIds": ["s"]})
    issuer = eks.describe_cluster(name=CLUSTER)["cluster"]["identity"]["oidc"]["issuer"]
    hostpath = issuer.removeprefix("https://")
    iam.create_open_id_connect_provider(Url=issuer, ClientIDList=["sts.amazonaws.com"])
    iam.create_role(RoleName="bench-irsa", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/{hostpath}"},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {f"{hostpath}:sub": "system:serviceaccount:default:bench",
                                       f"{hostpath}:aud": "sts.amazonaws.com"}}}]}))
    iam.create_role(RoleName="bench-pod", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"}, "Action": ["sts:AssumeRole", "sts:TagSession"]}]}))
    eks.create_pod_identity_association(clusterName=CLUSTER, namespace="bench", serviceAccount="pi",
                                        roleArn=f"arn:aws:iam::{ACCOUNT}:role/bench-pod")
    iam.create_user(UserName="node")
    iam.put_user_policy(UserName="node", PolicyName="eks-auth", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "eks-auth:AssumeRoleForPodIdentity", "Resource": "*"}]}))
    key = iam.create_access_key(UserName="node")["AccessKey"]
    cli_env = {**env, "AWS_CONFIG_FILE": str(data / "config"), "AWS_SHARED_CREDENTIALS_FILE": str(data / "credentials"),
               "AWS_PROFILE": "podiam"}

    def token(*args: str) -> str:
        return subprocess.run([podiam, "token", "--cluster", CLUSTER, "--expiration", "7200", *args], env=cli_env,
                              capture_output=True, text=True, check=True).stdout.strip()

    irsa_tok = token("--namespace", "default", "--service-account", "bench", "--pod-name", "bench-0",
                     "--pod-uid", str(uuid.uuid4()))
    pi_tok = token("--namespace", "bench", "--service-account", "pi", "--audience", "pods.eks.amazonaws.com",
                   "--pod-name", "pi-0", "--pod-uid", str(uuid.uuid4()))
    arwwi = work / f"{name}-arwwi.lua"
    write_lua(arwwi, arwwi_body(f"arn:aws:iam::{ACCOUNT}:role/bench-irsa", irsa_tok),
              {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    miss = eks_auth_lua(endpoint, CLUSTER, pi_tok, key, work / f"{name}-eksauth.lua")
    return {"proc": serve, "endpoint": endpoint, "arwwi": arwwi, "miss": miss}


def written(endpoint: str) -> float:
    text = urllib.request.urlopen(f"{endpoint}/metrics", timeout=10).read().decode()
    m = re.search(r'^podiam_audit_events_total\{outcome="written"\} (\S+)$', text, re.M)
    return float(m.group(1)) if m else 0.0


def main() -> int:
    podiam = os.environ["PODIAM_BIN"]
    work = Path(tempfile.mkdtemp(prefix="podiam-audit-bench."))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PODIAM_LOG"] = "warn"
    servers = {}
    try:
        servers["on"] = setup(podiam, work, "on", [], env)
        servers["off"] = setup(podiam, work, "off", ["--audit-retention-days", "0"], env)
        results: dict[tuple[str, str], list[float]] = {}
        before = written(servers["on"]["endpoint"])
        for rnd in range(ROUNDS):
            order = ["off", "on"] if rnd % 2 == 0 else ["on", "off"]
            for case in ("arwwi", "miss"):
                for which in order:
                    s = servers[which]
                    url = s["endpoint"] + ("/" if case == "arwwi" else f"/clusters/{CLUSTER}/assume-role-for-pod-identity")
                    r = wrk(url, s[case], 32, 2)
                    log(f"round {rnd + 1}: {case} audit {which}: {r['rps']:.0f} req/s")
                    results.setdefault((case, which), []).append(r["rps"])
        events = written(servers["on"]["endpoint"]) - before
        requests = sum(sum(v) for (c, w), v in results.items() if w == "on") * int(os.environ.get("BENCH_DURATION", "10"))
        names = {"arwwi": "AssumeRoleWithWebIdentity (IRSA)", "miss": "EKS Auth AssumeRoleForPodIdentity (agent miss)"}
        out = [f"Audit trail on vs off, {ROUNDS} alternated rounds of wrk -t2 -c32, mean req/s", "",
               "| path | audit off | audit on | on/off | target ≥ 0.90 |", "| --- | ---: | ---: | ---: | --- |"]
        missed = False
        for case in ("arwwi", "miss"):
            off = sum(results[(case, "off")]) / ROUNDS
            on = sum(results[(case, "on")]) / ROUNDS
            ok = on >= 0.9 * off
            missed |= not ok
            out.append(f"| {names[case]} | {off:.0f} | {on:.0f} | {on / off:.3f} | {'met' if ok else 'MISSED'} |")
        out.append("")
        out.append(f"events written by the audited server during the measured runs (and warm-ups): {events:.0f} "
                   f"(measured requests alone: about {requests:.0f})")
        print("\n".join(out))
        if events < 0.9 * requests:
            print("bench: the audited server wrote fewer events than it answered requests", file=sys.stderr)
            return 2
        return 3 if missed and os.environ.get("BENCH_STRICT") == "1" else 0
    finally:
        for s in servers.values():
            s["proc"].stop()
        if not os.environ.get("BENCH_KEEP"):
            subprocess.run(["rm", "-rf", str(work)])


if __name__ == "__main__":
    sys.exit(main())
