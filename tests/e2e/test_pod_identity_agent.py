"""EKS Pod Identity through the node agent, end to end: `podiam serve` and `podiam agent` as
processes, the agent bound to 169.254.170.23:80 (and [fd00:ec2::23]:80) on a dummy link that
`podiam agent init` creates inside a network namespace this module makes, and "pods" (boto3, the
AWS CLI, aws-sdk-rust) run inside that namespace with only the container-credentials environment
the webhook would inject. Where network namespaces are unavailable (not root, no `ip`), the agent
binds 127.0.0.1 on a free port instead, and the module says so."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

from podiam_e2e import ACCOUNT, AWS_CLI, REGION, REPO, VENV_PYTHON, clean_env, podiam_bin, register_log, require

PODIAM_LISTEN_HOST = "0.0.0.0"
CLUSTER = "agent-e2e"
PI_AUD = "pods.eks.amazonaws.com"
AGENT_IP = "169.254.170.23"
REFRESH_SECS = 6  # the agent's --max-credential-retention in this module


class Net:
    """Where the agent and the pods run: a network namespace joined to the host by a veth pair,
    or (fallback) the host itself."""

    def __init__(self) -> None:
        self.ns: str | None = None
        tag = os.getpid() % 100000
        self.octet = os.getpid() % 250 + 1
        self.host_if, self.ns_if = f"pdh{tag}", f"pdn{tag}"
        self.host_ip, self.ns_ip = f"10.231.{self.octet}.1", f"10.231.{self.octet}.2"

    def setup(self) -> "Net":
        if os.geteuid() != 0 or not shutil.which("ip"):
            sys.stderr.write("\nnetwork namespaces unavailable (not root or no iproute2): the agent binds 127.0.0.1\n")
            return self
        name = f"podiam-e2e-{os.getpid()}"
        cmds = [
            ["ip", "netns", "add", name],
            ["ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if],
            ["ip", "link", "set", self.ns_if, "netns", name],
            ["ip", "addr", "add", f"{self.host_ip}/30", "dev", self.host_if],
            ["ip", "link", "set", self.host_if, "up"],
            ["ip", "netns", "exec", name, "ip", "addr", "add", f"{self.ns_ip}/30", "dev", self.ns_if],
            ["ip", "netns", "exec", name, "ip", "link", "set", self.ns_if, "up"],
            ["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"],
        ]
        for c in cmds:
            p = subprocess.run(c, capture_output=True, text=True)
            if p.returncode != 0:
                subprocess.run(["ip", "netns", "del", name], capture_output=True)
                subprocess.run(["ip", "link", "del", self.host_if], capture_output=True)
                sys.stderr.write(f"\nnetwork namespace setup failed ({' '.join(c)}: {p.stderr.strip()}): the agent binds 127.0.0.1\n")
                return self
        self.ns = name
        return self

    def teardown(self) -> None:
        if self.ns:
            subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)
            subprocess.run(["ip", "link", "del", self.host_if], capture_output=True)

    def cmd(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.ns, *argv] if self.ns else argv

    def run(self, argv: list[str], env: dict[str, str], timeout: float = 60, **kw) -> subprocess.CompletedProcess:
        return subprocess.run(self.cmd(argv), env=env, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, **kw)

    def server_url(self, server) -> str:
        """The control plane's URL as seen from the agent and the pods."""
        return f"http://{self.host_ip}:{server.port}" if self.ns else server.endpoint


class Agent:
    def __init__(self, net: Net, server, creds: dict[str, str], workdir: Path, *extra: str) -> None:
        self.net, self.server, self.creds, self.workdir, self.extra = net, server, creds, workdir, list(extra)
        self.proc: subprocess.Popen | None = None
        self.log_path = workdir / f"agent-{uuid.uuid4().hex[:6]}.log"
        self.url = ""
        self.metrics_url = ""

    def start(self) -> "Agent":
        if self.net.ns:
            p = self.net.run([podiam_bin(), "agent", "init"], env=clean_env())
            assert p.returncode == 0, f"podiam agent init failed: {p.stderr}"
            binds = ["--bind", AGENT_IP, "--bind", "fd00:ec2::23", "--port", "80", "--probe-port", "2703",
                     "--metrics-port", "2705"]
        else:
            binds = ["--bind", "127.0.0.1", "--port", "0", "--probe-port", "0", "--metrics-address", "127.0.0.1",
                     "--metrics-port", "0"]
        env = clean_env(AWS_ACCESS_KEY_ID=self.creds["AccessKeyId"], AWS_SECRET_ACCESS_KEY=self.creds["SecretAccessKey"],
                        AWS_REGION=REGION, AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull,
                        PODIAM_LOG=os.environ.get("PODIAM_LOG", "info"))
        argv = [podiam_bin(), "agent", "--cluster-name", CLUSTER, "--endpoint", self.net.server_url(self.server),
                "--max-credential-retention", str(REFRESH_SECS), "--refresh-interval", "1", *binds, *self.extra]
        self.log = open(self.log_path, "wb")
        register_log(self.log_path)
        self.proc = subprocess.Popen(self.net.cmd(argv), env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"agent exited {self.proc.returncode}:\n{self.text()}"
            text = self.text()
            m = re.search(r"listening on (\S+)", text)
            mm = re.search(r"metrics on (\S+)", text)
            if m and (mm or "metrics" not in " ".join(binds)):
                addr = m.group(1).rstrip(",")
                self.url = f"http://{addr}/v1/credentials"
                if mm:
                    maddr = mm.group(1).rstrip(",")
                    port = maddr.rsplit(":", 1)[1]
                    host = self.net.ns_ip if self.net.ns else "127.0.0.1"
                    self.metrics_url = f"http://{host}:{port}/metrics"
                return self
            time.sleep(0.05)
        raise AssertionError(f"agent not ready:\n{self.text()}")

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int | None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()
        return self.proc.returncode if self.proc else None

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of `name` whose labels include `labels` (read from the host)."""
        text = requests.get(self.metrics_url, timeout=5).text
        total = 0.0
        for line in text.splitlines():
            if line.startswith("#"):
                continue
            m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)", line)
            if not m or m.group(1) != name:
                continue
            lab = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
            if all(lab.get(k) == v for k, v in labels.items()):
                total += float(m.group(3))
        return total


# ------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def net():
    n = Net().setup()
    yield n
    n.teardown()


@pytest.fixture(scope="module")
def world(server, net, tmp_path_factory):
    """Cluster, node identity, roles and associations; one agent for the module."""
    eks, iam = server.client("eks"), server.client("iam")
    eks.create_cluster(name=CLUSTER, roleArn=f"arn:aws:iam::{ACCOUNT}:role/eks", resourcesVpcConfig={"subnetIds": ["s"]})
    iam.create_user(UserName="agent-node")
    iam.put_user_policy(UserName="agent-node", PolicyName="eks-auth", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "eks-auth:AssumeRoleForPodIdentity", "Resource": "*"}]}))
    k = iam.create_access_key(UserName="agent-node")["AccessKey"]
    node = {"AccessKeyId": k["AccessKeyId"], "SecretAccessKey": k["SecretAccessKey"]}
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"}, "Action": ["sts:AssumeRole", "sts:TagSession"]}]})
    iam.create_role(RoleName="agent-app", AssumeRolePolicyDocument=trust)
    for sa in ("web", "evict", "burst", "outage"):
        eks.create_pod_identity_association(clusterName=CLUSTER, namespace="app", serviceAccount=sa,
                                            roleArn=f"arn:aws:iam::{ACCOUNT}:role/agent-app")
    work = tmp_path_factory.mktemp("agent")
    # test_500_concurrent_requests... is one pod bursting 500 requests at once; the default per-pod
    # burst (100) would answer most of them 429 (crates/agent's tests check that limit), so this
    # module's pods may burst that much.
    agent = Agent(net, server, node, work, "--inbound-pod-burst", "1000").start()
    yield {"agent": agent, "node": node, "work": work}
    rc = agent.stop()
    if rc not in (0, None):
        sys.stderr.write(f"\n--- agent log (exit {rc}) ---\n{agent.text()[-4000:]}\n")
    assert rc == 0, f"agent exited with {rc} on SIGTERM"


def pod_token(server, sa: str, pod: str = "web-0") -> str:
    return server.token(CLUSTER, "app", sa, audience=[PI_AUD], pod=(pod, str(uuid.uuid4())))


def pod_env(net: Net, server, agent: Agent, token_file: Path) -> dict[str, str]:
    """Exactly what the webhook injects for Pod Identity, plus where STS is."""
    return clean_env(AWS_CONTAINER_CREDENTIALS_FULL_URI=agent.url, AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=str(token_file),
                     AWS_ENDPOINT_URL=net.server_url(server), AWS_REGION=REGION, AWS_DEFAULT_REGION=REGION,
                     AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)


# A tiny HTTP client run inside the namespace: prints one JSON line per request.
FETCH = r"""
import http.client, json, sys, concurrent.futures as cf
host, port, path, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
token = sys.stdin.read()
hdr_host = sys.argv[5] if len(sys.argv) > 5 else None
def one(_):
    c = http.client.HTTPConnection(host, port, timeout=30)
    h = {"Authorization": token}
    if hdr_host is not None:
        c.putrequest("GET", path, skip_host=True); c.putheader("Host", hdr_host)
        for k, v in h.items(): c.putheader(k, v)
        c.endheaders()
    else:
        c.request("GET", path, headers=h)
    r = c.getresponse()
    return {"status": r.status, "type": r.getheader("content-type"), "body": r.read().decode()}
with cf.ThreadPoolExecutor(max_workers=min(n, 500)) as ex:
    for res in ex.map(one, range(n)):
        print(json.dumps(res))
"""


def fetch(net: Net, agent: Agent, token: str, n: int = 1, host_header: str | None = None) -> list[dict]:
    m = re.match(r"http://(\[[^\]]+\]|[^:/]+)(?::(\d+))?(/.*)", agent.url)
    host, port, path = m.group(1).strip("[]"), m.group(2) or "80", m.group(3)
    argv = [VENV_PYTHON, "-c", FETCH, host, port, path, str(n)] + ([host_header] if host_header is not None else [])
    p = subprocess.run(net.cmd(argv), input=token, capture_output=True, text=True, timeout=120, env=clean_env())
    assert p.returncode == 0, p.stderr
    return [json.loads(line) for line in p.stdout.splitlines()]


ARN_RE = rf"arn:aws:sts::{ACCOUNT}:assumed-role/agent-app/eks-{CLUSTER}-(?:[a-z0-9-]*)-[0-9a-f-]{{36}}"


# ------------------------------------------------------------------------------ the SDKs


def test_boto3_pod_gets_the_role(server, net, world, tmp_path):
    agent = world["agent"]
    tok = tmp_path / "token"
    tok.write_text(pod_token(server, "web", pod="boto-pod"))
    code = "import boto3; print(boto3.client('sts').get_caller_identity()['Arn'])"
    p = net.run([VENV_PYTHON, "-c", code], env=pod_env(net, server, agent, tok))
    assert p.returncode == 0, p.stderr + agent.text()[-2000:]
    assert re.fullmatch(ARN_RE, p.stdout.strip()) and "/eks-agent-e2e-boto-pod-" in p.stdout, p.stdout


def test_aws_cli_pod_gets_the_role(server, net, world, tmp_path):
    agent = world["agent"]
    tok = tmp_path / "token"
    tok.write_text(pod_token(server, "web", pod="cli-pod"))
    p = net.run([AWS_CLI, "sts", "get-caller-identity", "--output", "json"], env=pod_env(net, server, agent, tok))
    assert p.returncode == 0, p.stderr
    arn = json.loads(p.stdout)["Arn"]
    assert re.fullmatch(ARN_RE, arn) and "/eks-agent-e2e-cli-pod-" in arn, arn


def test_aws_sdk_rust_pod_gets_the_role(server, net, world, tmp_path):
    sdk = REPO / "target" / "debug" / "podiam-sdk-e2e"
    require(sdk.exists(), "podiam-sdk-e2e is not built (scripts/test.sh builds it)")
    agent = world["agent"]
    tok = tmp_path / "token"
    tok.write_text(pod_token(server, "web", pod="rust-pod"))
    p = net.run([str(sdk), "default-chain"], env=pod_env(net, server, agent, tok))
    assert p.returncode == 0, p.stderr
    m = re.search(r"ARN=(\S+)", p.stdout)
    assert m and re.fullmatch(ARN_RE, m.group(1)) and "/eks-agent-e2e-rust-pod-" in m.group(1), p.stdout


def test_agent_answer_shape_and_ipv6(server, net, world):
    agent = world["agent"]
    [r] = fetch(net, agent, pod_token(server, "web"))
    assert r["status"] == 200 and r["type"] == "application/json", r
    body = json.loads(r["body"])
    assert set(body) == {"AccessKeyId", "SecretAccessKey", "Token", "AccountId", "Expiration"}
    assert body["AccountId"] == ACCOUNT
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", body["Expiration"]), body
    # EKS's agent answers on [fd00:ec2::23] too, where the kernel has IPv6.
    require(net.ns, "the agent's link-local addresses need a network namespace (root and iproute2)")
    require(os.path.exists("/proc/net/if_inet6"), "the kernel has no IPv6 for the agent's [fd00:ec2::23]")
    six = Agent.__new__(Agent)
    six.url = "http://[fd00:ec2::23]/v1/credentials"
    [r6] = fetch(net, six, pod_token(server, "web"))
    assert r6["status"] == 200, r6


# ------------------------------------------------------------------------------ refusals


def test_wrong_host_is_403(server, net, world):
    [r] = fetch(net, world["agent"], pod_token(server, "web"), host_header="evil.example")
    assert r["status"] == 403 and "Called agent through invalid address" in r["body"], r


def test_bad_tokens_are_400_with_the_reason(server, net, world):
    agent = world["agent"]
    [r] = fetch(net, agent, "")
    assert r["status"] == 400 and "Service account token cannot be empty" in r["body"], r
    [r] = fetch(net, agent, "garbage")
    assert r["status"] == 400 and "Service account token cannot be parsed" in r["body"], r
    # a well-formed token from another issuer: the agent asks EKS Auth, which refuses it
    [r] = fetch(net, agent, "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4IiwiZXhwIjo0MTAyNDQ0ODAwfQ.c2ln")
    assert r["status"] == 400 and "InvalidTokenException" in r["body"], r
    # no association for this service account: EKS Auth's 404, passed through
    [r] = fetch(net, agent, pod_token(server, "unassociated"))
    assert r["status"] == 404 and "ResourceNotFoundException" in r["body"], r


# ------------------------------------------------------------------------------ cache


def test_500_concurrent_requests_for_one_new_token_make_one_upstream_call(server, net, world):
    agent = world["agent"]
    # The agent always serves metrics here (Agent.start waits for them): no URL is a failure.
    assert agent.metrics_url, f"the agent announced no metrics address:\n{agent.text()[-3000:]}"
    before = agent.metric("podiam_agent_upstream_calls_total")
    res = fetch(net, agent, pod_token(server, "burst", pod="burst-pod"), n=500)
    assert len(res) == 500 and all(r["status"] == 200 for r in res), {r["status"] for r in res}
    keys = {json.loads(r["body"])["AccessKeyId"] for r in res}
    assert len(keys) == 1, f"{len(keys)} different sessions were minted"
    assert agent.metric("podiam_agent_upstream_calls_total") - before == 1
    assert agent.metric("pod_identity_cache_state", state="hit") >= 1


def test_control_plane_outage_serves_cached_credentials(server, net, world):
    agent = world["agent"]
    cached = pod_token(server, "outage", pod="outage-pod")
    [first] = fetch(net, agent, cached)
    assert first["status"] == 200, first
    fresh = pod_token(server, "outage", pod="new-pod")
    port = server.port
    assert server.stop() == 0
    try:
        [again] = fetch(net, agent, cached)
        assert again["status"] == 200 and json.loads(again["body"]) == json.loads(first["body"]), again
        [miss] = fetch(net, agent, fresh)
        assert miss["status"] >= 500 and miss["body"].strip(), miss
    finally:
        server.start(port=port)
    [ok] = fetch(net, agent, fresh)
    assert ok["status"] == 200, ok


def test_deleted_association_is_evicted_at_the_next_refresh(server, net, world):
    agent = world["agent"]
    tok = pod_token(server, "evict", pod="evict-pod")
    [r] = fetch(net, agent, tok)
    assert r["status"] == 200, r
    eks = server.client("eks")
    aid = eks.list_pod_identity_associations(clusterName=CLUSTER, namespace="app", serviceAccount="evict")["associations"][0]["associationId"]
    assert agent.metrics_url, f"the agent announced no metrics address:\n{agent.text()[-3000:]}"
    evicted = agent.metric("pod_identity_cache_state", state="evicted")
    eks.delete_pod_identity_association(clusterName=CLUSTER, associationId=aid)
    deadline = time.monotonic() + REFRESH_SECS * 6 + 30
    status = 200
    while time.monotonic() < deadline:
        [r] = fetch(net, agent, tok)
        status = r["status"]
        if status != 200:
            break
        time.sleep(1)
    assert status == 404 and "ResourceNotFoundException" in r["body"], r
    assert agent.metric("pod_identity_cache_state", state="evicted") > evicted


# ------------------------------------------------------------------------------ through the webhook


def test_webhook_injected_pod_gets_credentials_through_the_agent(server, net, world, tmp_path):
    """The admission webhook sees the association and injects the container-credentials
    environment and the pods.eks.amazonaws.com token; with the token projected where the pod
    expects it, boto3 in the pod's network namespace gets the role through the agent."""
    from webhook_e2e import Webhook, env_of, pod, pod_process_env, projected, projected_token

    require(net.ns, "the injected URL is 169.254.170.23, which only the network namespace has "
            "(needs root and iproute2)")
    hook = Webhook(tmp_path, ["--cluster-name", CLUSTER, "--endpoint", server.endpoint,
                              "--inject-sts-endpoint", net.server_url(server), "--default-region", REGION],
                   {**server.env, "AWS_REGION": REGION})
    try:
        mutated, patch = hook.mutate(pod("hooked-0", "app", "web"))
    finally:
        assert hook.stop() == 0, hook.text()[-3000:]
    env = env_of(mutated)
    assert env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] == "http://169.254.170.23/v1/credentials", env
    assert "AWS_ROLE_ARN" not in env and env["AWS_REGION"] == REGION
    assert mutated["metadata"]["labels"]["eks.amazonaws.com/pod-identity"] == "enabled"
    path, aud, exp = projected_token(mutated)
    assert path == env["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] and aud == PI_AUD
    token = server.token(CLUSTER, "app", "web", audience=[aud], pod=("hooked-0", str(uuid.uuid4())),
                         expiration=min(exp, 172800))
    with projected(path, token):
        penv = pod_process_env(env)
        penv.setdefault("AWS_ENDPOINT_URL_STS", net.server_url(server))  # where STS is, as on EKS it needs no saying
        code = "import boto3; print(boto3.client('sts').get_caller_identity()['Arn'])"
        p = net.run([VENV_PYTHON, "-c", code], env=penv)
        assert p.returncode == 0, p.stderr
        assert re.fullmatch(ARN_RE, p.stdout.strip()) and "/eks-agent-e2e-hooked-0-" in p.stdout, p.stdout
