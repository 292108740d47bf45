"""`podiam webhook` called by a real kube-apiserver, configured from deploy/webhook.yaml and the
Helm chart.

A real control plane (etcd + kube-apiserver from scripts/kube.sh; no kubelet, so pods stay
Pending) signs service-account tokens with the podiam cluster's hosted-issuer key. The
Namespace, ServiceAccount, ClusterRole and ClusterRoleBinding of deploy/webhook.yaml are applied
with kubectl, and the webhook runs with a kubeconfig holding that ServiceAccount's token (from
the TokenRequest API), so the manifest's RBAC is what it watches ServiceAccounts with. The
webhook Service and MutatingWebhookConfiguration registered are the chart's (`helm template`
of charts/podiam, the chart's caBundle value set to the webhook's own CA), which
test_kube_manifests.py shows equal to the file's, and the registered configuration is compared
with the file's field by field here too. This apiserver has no kube-proxy and no endpoints controller:
it runs with --enable-aggregator-routing=true, which makes it call a webhook Service at an
address of the Service's EndpointSlice rather than at its cluster IP, and the test writes that
EndpointSlice by hand, pointing at the webhook on a non-loopback address of this host (an
EndpointSlice may not name a loopback one). On a host with no such address, the configuration's
clientConfig.service is replaced with a `url` on 127.0.0.1 instead.

Pods are then created with kubectl and read back as the apiserver stored them: mutated for IRSA
and EKS Pod Identity as amazon-eks-pod-identity-webhook leaves them, unchanged when nothing
applies or when they carry the opt-out label (not sent at all: the objectSelector), admitted
unmutated when the webhook is down (failurePolicy Ignore, counted by the apiserver), and
injected exactly once across a reinvocation caused by a second webhook. An IRSA pod's stored
environment and a TokenRequest token bound to it get boto3 a role session from podiam.

Without the binaries or an apiserver that starts, the module skips (fails under CI=true)."""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
import yaml

from helm_e2e import chart_webhook_configuration, chart_webhook_service_objects
from kube_e2e import PROBE, ControlPlane, KubeUnavailable, free_port, kube_bin, non_loopback_address
from podiam_e2e import ACCOUNT, REGION, REPO, VENV_PYTHON, jwt_parts, require
from webhook_e2e import Webhook, pod_process_env, projected

CLUSTER = "kube-hooked"
NS = "shop"
IRSA_SA = "checkout"  # annotated with ROLE's ARN
PI_SA = "payments"  # has a Pod Identity association
PLAIN_SA = "plain"  # neither
ROLE = "kube-hook-role"
PI_ROLE = "kube-hook-pi-role"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/{ROLE}"
HOOK_NAME = "pod-identity-webhook.podiam.io"  # the webhook's name in deploy/webhook.yaml
SKIP_LABEL = "eks.amazonaws.com/skip-pod-identity-webhook"
SIDECAR_LABEL = "podiam-test/sidecar"
IMAGE = "registry.k8s.io/pause:3.10"
GRACE = "3s"  # --service-account-lookup-grace-period (the file's timeoutSeconds is 5)

IRSA_MOUNT = "/var/run/secrets/eks.amazonaws.com/serviceaccount"
PI_MOUNT = "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount"
PI_AUD = "pods.eks.amazonaws.com"

# What the stored pod's containers hold after an IRSA injection (with --sts-regional-endpoint and
# --default-region, as EKS runs its webhook): the env in this order, one mount, one volume.
IRSA_ENV = [
    {"name": "AWS_STS_REGIONAL_ENDPOINTS", "value": "regional"},
    {"name": "AWS_DEFAULT_REGION", "value": REGION},
    {"name": "AWS_REGION", "value": REGION},
    {"name": "AWS_ROLE_ARN", "value": ROLE_ARN},
    {"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": f"{IRSA_MOUNT}/token"},
]
IRSA_MOUNT_ENTRY = {"name": "aws-iam-token", "readOnly": True, "mountPath": IRSA_MOUNT}
IRSA_VOLUME = {"name": "aws-iam-token", "projected": {"defaultMode": 420, "sources": [{"serviceAccountToken": {
    "audience": "sts.amazonaws.com", "expirationSeconds": 86400, "path": "token"}}]}}
PI_ENV = [
    {"name": "AWS_STS_REGIONAL_ENDPOINTS", "value": "regional"},
    {"name": "AWS_DEFAULT_REGION", "value": REGION},
    {"name": "AWS_REGION", "value": REGION},
    {"name": "AWS_CONTAINER_CREDENTIALS_FULL_URI", "value": "http://169.254.170.23/v1/credentials"},
    {"name": "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "value": f"{PI_MOUNT}/eks-pod-identity-token"},
]
PI_MOUNT_ENTRY = {"name": "eks-pod-identity-token", "readOnly": True, "mountPath": PI_MOUNT}
AWS_ENV_NAMES = {e["name"] for e in IRSA_ENV + PI_ENV}


# ------------------------------------------------------------------------------ helpers


def deploy_docs() -> dict[str, dict]:
    """deploy/webhook.yaml's documents by kind (each kind is there once)."""
    docs = [d for d in yaml.safe_load_all((REPO / "deploy" / "webhook.yaml").read_text()) if d]
    by_kind = {d["kind"]: d for d in docs}
    assert len(by_kind) == len(docs), [d["kind"] for d in docs]
    return by_kind


def parse_metrics(text: str, name: str, /, **labels: str) -> float:
    """The value of the Prometheus sample `name` whose labels include `labels` (0 if absent)."""
    total = 0.0
    for line in text.splitlines():
        m = re.fullmatch(r"([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?", line.strip())
        if not m or m.group(1) != name:
            continue
        have = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            total += float(m.group(3))
    return total


def pod_manifest(name: str, sa: str, *, containers=("app",), init=(), labels: dict | None = None) -> dict:
    meta: dict = {"name": name, "namespace": NS}
    if labels:
        meta["labels"] = labels
    spec: dict = {"serviceAccountName": sa, "containers": [{"name": c, "image": IMAGE} for c in containers]}
    if init:
        spec["initContainers"] = [{"name": c, "image": IMAGE} for c in init]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def get_pod(kube: ControlPlane, name: str) -> dict:
    return json.loads(kube.kubectl("get", "pod", name, "-n", NS, "-o", "json"))


def create_pod(kube: ControlPlane, manifest: dict) -> dict:
    """`kubectl create` the pod, then the pod as `kubectl get` reads it back from the API."""
    kube.apply(manifest)
    return get_pod(kube, manifest["metadata"]["name"])


def dry_run(kube: ControlPlane, manifest: dict) -> dict:
    """The pod as a server-side dry-run create would store it (webhooks included)."""
    return json.loads(kube.kubectl("create", "-f", "-", "--dry-run=server", "-o", "json", stdin=json.dumps(manifest)))


def container(pod: dict, name: str) -> dict:
    return next(c for c in pod["spec"].get("containers", []) + pod["spec"].get("initContainers", [])
                if c["name"] == name)


def aws_env(c: dict) -> list[dict]:
    return [e for e in c.get("env", []) if e["name"] in AWS_ENV_NAMES]


def no_injection(pod: dict) -> None:
    """Nothing of either identity in the stored pod."""
    vols = [v["name"] for v in pod["spec"].get("volumes", [])]
    assert "aws-iam-token" not in vols and "eks-pod-identity-token" not in vols, vols
    for c in pod["spec"]["containers"] + pod["spec"].get("initContainers", []):
        assert aws_env(c) == [], c
        assert all(m["name"] not in ("aws-iam-token", "eks-pod-identity-token") for m in c.get("volumeMounts", [])), c
    assert "eks.amazonaws.com/pod-identity" not in pod["metadata"].get("labels", {})


def normalized_spec(pod: dict) -> dict:
    """The stored spec without what differs between two pods of the same manifest: the random
    suffix of the kube-api-access volume."""
    text = json.dumps(pod["spec"], sort_keys=True)
    return json.loads(re.sub(r"kube-api-access-[a-z0-9]+", "kube-api-access-X", text))


def wait_until(what: str, check, timeout: float = 20.0, every: float = 0.25):
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        assert time.monotonic() < deadline, f"not within {timeout}s: {what}"
        time.sleep(every)


def token_kubeconfig(kube: ControlPlane, token: str, path: Path) -> Path:
    cfg = {"apiVersion": "v1", "kind": "Config", "current-context": "sa",
           "clusters": [{"name": "kube", "cluster": {"server": kube.url,
                                                     "certificate-authority": str(kube.pki / "ca.crt")}}],
           "users": [{"name": "sa", "user": {"token": token}}],
           "contexts": [{"name": "sa", "context": {"cluster": "kube", "user": "sa"}}]}
    path.write_text(json.dumps(cfg))
    path.chmod(0o600)
    return path


class HookedCluster:
    """The webhook process (restartable on the same port and CA, with other flags) and what it
    is registered with."""

    def __init__(self, server, kube: ControlPlane, work: Path, kubeconfig: Path, host: str):
        self.server, self.kube, self.work, self.kubeconfig = server, kube, work, kubeconfig
        self.host = host  # where the webhook listens (an EndpointSlice's address, or 127.0.0.1)
        self.port = free_port()
        self.hook: Webhook | None = None
        self.starts = 0

    def start(self, endpoint: str | None = None) -> Webhook:
        self.starts += 1
        args = ["--kubeconfig", str(self.kubeconfig), "--service-account-lookup-grace-period", GRACE,
                "--cluster-name", CLUSTER, "--endpoint", endpoint or self.server.endpoint,
                "--association-refresh", "1", "--default-region", REGION, "--sts-regional-endpoint",
                "--metrics-listen", "127.0.0.1:0"]
        for name in dict.fromkeys(("podiam-webhook.podiam.svc", "localhost", "127.0.0.1", self.host)):
            args += ["--dns-name", name]
        self.hook = Webhook(self.work, args, {**self.server.env, "PODIAM_LOG": "info"},
                            listen=f"{self.host}:{self.port}", log_name=f"webhook-{self.starts}.log")
        return self.hook

    def stop(self) -> None:
        if self.hook is not None:
            rc = self.hook.stop()
            assert rc == 0, self.hook.text()[-3000:]
            self.hook = None

    @property
    def ca_bundle(self) -> str:
        return base64.b64encode((self.work / "certs" / "ca.crt").read_bytes()).decode()

    def metrics(self) -> str:
        assert self.hook and self.hook.metrics_url
        r = requests.get(f"{self.hook.metrics_url}/metrics", timeout=5)
        assert r.status_code == 200, r.text
        return r.text

    def metric(self, name: str, /, **labels: str) -> float:
        return parse_metrics(self.metrics(), name, **labels)

    def admissions(self) -> float:
        """Pods the webhook has answered for, whatever it injected."""
        return self.metric("podiam_webhook_mutations_total")


def apiserver_metric(kube: ControlPlane, name: str, /, **labels: str) -> float:
    return parse_metrics(kube.kubectl("get", "--raw", "/metrics"), name, **labels)


# ------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def irsa(server):
    """The cluster in podiam, its OIDC provider, a role trusting shop/checkout and a role for
    Pod Identity."""
    out = server.irsa(CLUSTER, ROLE, sa=IRSA_SA, ns=NS)
    server.client("iam").create_role(RoleName=PI_ROLE, AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": PI_AUD}, "Action": ["sts:AssumeRole", "sts:TagSession"]}]}))
    return out


@pytest.fixture(scope="module")
def kube(server, irsa, tmp_path_factory, request):
    """kube-apiserver signing service-account tokens with the cluster's hosted-issuer key."""
    try:
        bin_dir = kube_bin()
    except KubeUnavailable as e:
        require(False, f"the Kubernetes control plane is unavailable: {e}")
    base = tmp_path_factory.mktemp("kube")
    p = server.podiam("issuer", "export", "--cluster", CLUSTER, "--out-dir", str(base / "issuer"))
    assert p.returncode == 0, p.stderr
    cp = ControlPlane(base / "cp", bin_dir)
    try:
        # Webhook Services are called at an endpoint's address (see the module's docstring).
        cp.start([*p.stdout.split(), "--enable-aggregator-routing=true"])
    except KubeUnavailable as e:
        cp.stop()
        require(False, f"the Kubernetes control plane is unavailable: {e}")
    yield cp
    if request.session.testsfailed:
        print(f"\n--- kube-apiserver log (tail) ---\n{cp.log('kube-apiserver')[-4000:]}")
    cp.stop()


@pytest.fixture(scope="module")
def cluster(server, irsa, kube, tmp_path_factory, request):
    """deploy/webhook.yaml's RBAC applied, the webhook running with its ServiceAccount's token,
    the chart's Service and MutatingWebhookConfiguration registered, and namespace shop with its
    accounts."""
    docs = deploy_docs()
    for kind in ("Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding"):
        kube.kubectl("apply", "-f", "-", stdin=json.dumps(docs[kind]))
    kube.kubectl("create", "namespace", NS)
    kube.kubectl("create", "serviceaccount", PLAIN_SA, "-n", NS)
    kube.kubectl("create", "serviceaccount", PI_SA, "-n", NS)
    kube.kubectl("create", "serviceaccount", IRSA_SA, "-n", NS)
    kube.kubectl("annotate", "serviceaccount", IRSA_SA, "-n", NS, f"eks.amazonaws.com/role-arn={ROLE_ARN}")
    server.client("eks").create_pod_identity_association(
        clusterName=CLUSTER, namespace=NS, serviceAccount=PI_SA, roleArn=f"arn:aws:iam::{ACCOUNT}:role/{PI_ROLE}")

    work = tmp_path_factory.mktemp("kube-webhook")
    token = kube.kubectl("create", "token", "podiam-webhook", "-n", "podiam", "--duration", "2h").strip()
    address = non_loopback_address()
    hooked = HookedCluster(server, kube, work, token_kubeconfig(kube, token, work / "kubeconfig"),
                           address or "127.0.0.1")
    hooked.token = token
    hooked.start()

    try:
        svc, mwc = chart_webhook_service_objects(hooked.ca_bundle)
    except KubeUnavailable as e:
        hooked.stop()
        require(False, f"helm: {e}")
    (hook_cfg,) = mwc["webhooks"]
    if address:
        kube.kubectl("apply", "-f", "-", stdin=json.dumps(svc))
        https = next(p for p in svc["spec"]["ports"] if p["port"] == hook_cfg["clientConfig"]["service"]["port"])
        kube.kubectl("apply", "-f", "-", stdin=json.dumps({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "podiam-webhook-local", "namespace": svc["metadata"]["namespace"],
                         "labels": {"kubernetes.io/service-name": svc["metadata"]["name"]}},
            "addressType": "IPv4", "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
            "ports": [{"name": https["name"], "port": hooked.port, "protocol": "TCP"}]}))
    else:
        path = hook_cfg["clientConfig"]["service"]["path"]
        mwc = chart_webhook_configuration(f"https://127.0.0.1:{hooked.port}{path}", hooked.ca_bundle)
    hooked.via_service = bool(address)
    kube.kubectl("apply", "-f", "-", stdin=json.dumps(mwc))
    hooked.mwc_file = docs["MutatingWebhookConfiguration"]
    # The apiserver picks a new configuration up from its informer: wait until it calls.
    n = iter(range(10**6))
    wait_until("the apiserver calls the webhook", lambda: any(
        e["name"] == "AWS_ROLE_ARN"
        for e in container(dry_run(kube, pod_manifest(f"probe-{next(n)}", IRSA_SA)), "app").get("env", [])))
    yield hooked
    if request.session.testsfailed:
        for log in sorted(work.glob("webhook-*.log")):
            print(f"\n--- {log.name} (tail) ---\n{log.read_text(errors='replace')[-3000:]}")
    hooked.stop()


# ------------------------------------------------------------------------------ RBAC and registration


def test_webhook_watches_service_accounts_with_the_manifests_rbac(kube, cluster):
    """The webhook's only credential is the podiam-webhook ServiceAccount's token, and the
    ClusterRole of deploy/webhook.yaml is enough for it to list and watch every account."""
    assert kube.whoami(cluster.token)["username"] == "system:serviceaccount:podiam:podiam-webhook"
    text = cluster.hook.text()
    m = re.search(r"watching (\d+) service accounts", text)
    assert m and int(m.group(1)) == 4, text  # shop's three and podiam-webhook (no controller makes defaults)
    r = requests.get(f"{cluster.hook.url}/readyz", verify=cluster.hook.ca, timeout=5)
    assert r.status_code == 200, r.text
    as_hook = "--as=system:serviceaccount:podiam:podiam-webhook"
    for verb in ("get", "list", "watch"):
        p = kube.kubectl_rc("auth", "can-i", verb, "serviceaccounts", "--all-namespaces", as_hook)
        assert p.stdout.strip() == "yes", (verb, p.stdout, p.stderr)


def test_the_manifests_rbac_grants_nothing_else_and_is_needed(server, kube, cluster, tmp_path):
    as_hook = "--as=system:serviceaccount:podiam:podiam-webhook"
    for verb, what in (("get", "secrets"), ("list", "pods"), ("create", "serviceaccounts"),
                       ("patch", "serviceaccounts"), ("create", "serviceaccounts/token"), ("get", "configmaps")):
        p = kube.kubectl_rc("auth", "can-i", verb, what, "--all-namespaces", as_hook)
        assert p.stdout.strip() == "no", (verb, what, p.stdout, p.stderr)
    # Another account of the same namespace, without the binding: the API refuses its watch,
    # and the webhook it would run says it is not ready, and admits an IRSA pod unmutated.
    kube.kubectl("create", "serviceaccount", "unbound", "-n", "podiam")
    token = kube.kubectl("create", "token", "unbound", "-n", "podiam").strip()
    kc = token_kubeconfig(kube, token, tmp_path / "kc")
    p = kube.kubectl_rc("--kubeconfig", str(kc), "get", "serviceaccounts", "-A")
    assert p.returncode != 0 and "forbidden" in p.stderr.lower(), p.stderr
    hook = Webhook(tmp_path, ["--kubeconfig", str(kc),
                              "--service-account-lookup-grace-period", "0"], server.env)
    try:
        r = requests.get(f"{hook.url}/readyz", verify=hook.ca, timeout=5)
        assert r.status_code == 503, r.text
        assert "not listed yet" in hook.text(), hook.text()
        _, patch = hook.mutate(pod_manifest("unbound-0", IRSA_SA))
        assert patch == []
    finally:
        assert hook.stop() == 0, hook.text()[-3000:]


def test_the_registered_configuration_is_the_files(kube, cluster):
    """Every field of the file's webhook is registered as written, the caBundle filled in; the
    apiserver reaches the webhook through the file's Service reference (or, on a host without a
    non-loopback address, through a url replacing it)."""
    stored = json.loads(kube.kubectl("get", "mutatingwebhookconfiguration", "podiam-webhook", "-o", "json"))
    (got,) = stored["webhooks"]
    (want,) = copy.deepcopy(cluster.mwc_file["webhooks"])
    want["clientConfig"]["caBundle"] = cluster.ca_bundle
    if not cluster.via_service:
        service = want["clientConfig"].pop("service")
        want["clientConfig"]["url"] = f"https://127.0.0.1:{cluster.port}{service['path']}"
    for k, v in want.items():
        assert got[k] == v, (k, got[k], v)
    assert want["failurePolicy"] == "Ignore" and want["reinvocationPolicy"] == "IfNeeded"
    assert want["objectSelector"] == {"matchExpressions": [{"key": SKIP_LABEL, "operator": "DoesNotExist"}]}
    if cluster.via_service:
        assert got["clientConfig"]["service"] == {"name": "podiam-webhook", "namespace": "podiam",
                                                  "path": "/mutate", "port": 443}
        # The webhook listens on the EndpointSlice's address only: the apiserver's calls (the
        # fixture waited for one) went through the Service.
        assert cluster.hook.url == f"https://{cluster.host}:{cluster.port}", cluster.hook.url


# ------------------------------------------------------------------------------ IRSA


def test_irsa_pod_is_stored_mutated_in_every_container(kube, cluster):
    before = cluster.metric("podiam_webhook_mutations_total", method="irsa")
    pod = create_pod(kube, pod_manifest("checkout-0", IRSA_SA, containers=("app", "proxy"), init=("migrate",)))
    assert cluster.metric("podiam_webhook_mutations_total", method="irsa") == before + 1
    vols = pod["spec"]["volumes"]
    assert vols[0] == IRSA_VOLUME, vols
    assert [v["name"] for v in vols].count("aws-iam-token") == 1
    assert any(v["name"].startswith("kube-api-access-") for v in vols), vols  # the apiserver's own
    for name in ("app", "proxy", "migrate"):
        c = container(pod, name)
        assert c["env"] == IRSA_ENV, (name, c)
        mounts = c["volumeMounts"]
        assert mounts[-1] == IRSA_MOUNT_ENTRY, (name, mounts)
        assert [m["name"] for m in mounts].count("aws-iam-token") == 1
    assert "eks.amazonaws.com/pod-identity" not in pod["metadata"].get("labels", {})


def irsa_pod_process(server, kube, pod: dict, tmp_path: Path, audience: str | None = None) -> dict:
    """What the kubelet and the pod's SDK would do with the stored pod: a TokenRequest token
    bound to it (audience and lifetime from its aws-iam-token volume, unless `audience`), written
    where its env says, and boto3's default chain with exactly its env (plus where STS is)."""
    vol = next(v for v in pod["spec"]["volumes"] if v["name"] == "aws-iam-token")
    src = vol["projected"]["sources"][0]["serviceAccountToken"]
    m = pod["metadata"]
    token = kube.kubectl("create", "token", pod["spec"]["serviceAccountName"], "-n", NS,
                         "--audience", audience or src["audience"], "--duration", f"{src['expirationSeconds']}s",
                         "--bound-object-kind", "Pod", "--bound-object-name", m["name"],
                         "--bound-object-uid", m["uid"]).strip()
    env = {e["name"]: e["value"] for e in container(pod, "app")["env"]}
    claims = jwt_parts(token)[1]
    assert claims["kubernetes.io"]["pod"] == {"name": m["name"], "uid": m["uid"]}
    assert claims["exp"] - claims["iat"] == src["expirationSeconds"]
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    penv = pod_process_env({**env, "AWS_ENDPOINT_URL_STS": server.endpoint, "HOME": str(home)})
    with projected(env["AWS_WEB_IDENTITY_TOKEN_FILE"], token):
        p = subprocess.run([VENV_PYTHON, "-c", PROBE], env=penv, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_irsa_pod_gets_its_role_from_podiam_with_the_stored_env_and_a_bound_token(server, kube, cluster, tmp_path):
    require(os.geteuid() == 0, "writing the projected token under /var/run needs root")
    pod = get_pod(kube, "checkout-0")
    out = irsa_pod_process(server, kube, pod, tmp_path)
    assert out.get("method") == "assume-role-with-web-identity", out
    assert re.fullmatch(rf"arn:aws:sts::{ACCOUNT}:assumed-role/{ROLE}/botocore-session-\d+", out["ok"]["Arn"]), out


def test_irsa_pod_with_a_token_of_another_audience_is_refused(server, kube, cluster, tmp_path):
    require(os.geteuid() == 0, "writing the projected token under /var/run needs root")
    pod = get_pod(kube, "checkout-0")
    out = irsa_pod_process(server, kube, pod, tmp_path, audience=PI_AUD)
    assert out.get("code") in ("InvalidIdentityToken", "AccessDenied") and out.get("status") in (400, 403), out


# ------------------------------------------------------------------------------ Pod Identity


def test_pod_identity_pod_is_stored_mutated(kube, cluster):
    pod = create_pod(kube, pod_manifest("payments-0", PI_SA, containers=("app", "proxy"), init=("migrate",)))
    assert pod["metadata"]["labels"]["eks.amazonaws.com/pod-identity"] == "enabled"
    vols = pod["spec"]["volumes"]
    assert vols[0]["name"] == "eks-pod-identity-token", vols
    (src,) = vols[0]["projected"]["sources"]
    tok = src["serviceAccountToken"]
    assert tok["audience"] == PI_AUD and tok["path"] == "eks-pod-identity-token", tok
    assert 79200 <= tok["expirationSeconds"] <= 86400, tok  # upstream's jitter of the default
    assert "aws-iam-token" not in [v["name"] for v in vols]
    for name in ("app", "proxy", "migrate"):
        c = container(pod, name)
        assert c["env"] == PI_ENV, (name, c)
        assert c["volumeMounts"][-1] == PI_MOUNT_ENTRY, (name, c["volumeMounts"])


def test_pod_without_role_or_association_is_stored_unchanged(kube, cluster):
    """Sent and answered without a patch: stored exactly as a pod the webhook never saw."""
    before_none = cluster.metric("podiam_webhook_mutations_total", method="none")
    sent = create_pod(kube, pod_manifest("plain-0", PLAIN_SA, init=("migrate",)))
    assert cluster.metric("podiam_webhook_mutations_total", method="none") == before_none + 1
    unsent = create_pod(kube, pod_manifest("plain-1", PLAIN_SA, init=("migrate",), labels={SKIP_LABEL: "true"}))
    no_injection(sent)
    assert normalized_spec(sent) == normalized_spec(unsent)
    assert "labels" not in sent["metadata"]


def test_skip_labelled_pod_is_never_sent(kube, cluster):
    """The objectSelector keeps the pod from the webhook: its account names a role, but the
    webhook never hears of it."""
    before = cluster.admissions()
    pod = create_pod(kube, pod_manifest("checkout-skip", IRSA_SA, labels={SKIP_LABEL: "true"}))
    pi = create_pod(kube, pod_manifest("payments-skip", PI_SA, labels={SKIP_LABEL: "false"}))  # any value
    no_injection(pod)
    no_injection(pi)
    assert cluster.admissions() == before


# ------------------------------------------------------------------------------ accounts that change


def test_service_account_created_or_annotated_just_before_its_pod(kube, cluster):
    # Account and pod in one kubectl call: created back to back.
    for i in range(3):
        sa = f"late-{i}"
        role = f"arn:aws:iam::{ACCOUNT}:role/late-{i}"
        kube.kubectl("create", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "v1", "kind": "ServiceAccount",
             "metadata": {"name": sa, "namespace": NS, "annotations": {"eks.amazonaws.com/role-arn": role}}},
            pod_manifest(f"late-{i}", sa)]}))
        env = {e["name"]: e["value"] for e in container(get_pod(kube, f"late-{i}"), "app").get("env", [])}
        assert env.get("AWS_ROLE_ARN") == role, (i, env)
    # An account the webhook has seen without a role, annotated just before the pod.
    kube.kubectl("create", "serviceaccount", "annotated-late", "-n", NS)
    role = f"arn:aws:iam::{ACCOUNT}:role/annotated-late"
    kube.kubectl("annotate", "serviceaccount", "annotated-late", "-n", NS, f"eks.amazonaws.com/role-arn={role}")
    env = {e["name"]: e["value"] for e in container(create_pod(kube, pod_manifest("annotated-late-0", "annotated-late")),
                                                     "app").get("env", [])}
    assert env.get("AWS_ROLE_ARN") == role, env


def test_annotation_after_the_pod_and_pod_updates_change_nothing(kube, cluster):
    """The webhook acts on CREATE only (the file's rules): a pod created before its account is
    annotated stays unmutated, and updating it is not sent."""
    kube.kubectl("create", "serviceaccount", "too-late", "-n", NS)
    pod = create_pod(kube, pod_manifest("too-late-0", "too-late"))
    no_injection(pod)
    kube.kubectl("annotate", "serviceaccount", "too-late", "-n", NS,
                 f"eks.amazonaws.com/role-arn=arn:aws:iam::{ACCOUNT}:role/too-late")
    before = cluster.admissions()
    kube.kubectl("label", "pod", "too-late-0", "-n", NS, "touched=yes")
    kube.kubectl("annotate", "pod", "too-late-0", "-n", NS, "touched=yes")
    again = get_pod(kube, "too-late-0")
    no_injection(again)
    assert again["metadata"]["labels"] == {"touched": "yes"}
    assert cluster.admissions() == before


def test_pod_of_an_account_that_does_not_exist_is_refused_before_the_webhook(kube, cluster):
    """The apiserver's ServiceAccount admission plugin runs before the mutating webhooks and
    refuses a pod whose account does not exist: the webhook is only asked about accounts the
    API has, so its lookup grace period only covers its watch lagging behind the API."""
    kube.kubectl("create", "serviceaccount", "gone", "-n", NS)
    kube.kubectl("annotate", "serviceaccount", "gone", "-n", NS,
                 f"eks.amazonaws.com/role-arn=arn:aws:iam::{ACCOUNT}:role/gone")
    kube.kubectl("delete", "serviceaccount", "gone", "-n", NS)
    before = cluster.admissions()
    p = kube.kubectl_rc("create", "-f", "-", "-o", "json", stdin=json.dumps(pod_manifest("gone-0", "gone")))
    assert p.returncode != 0 and 'serviceaccount "gone" not found' in p.stderr, (p.stdout, p.stderr)
    assert kube.kubectl_rc("get", "pod", "gone-0", "-n", NS).returncode != 0
    assert cluster.admissions() == before
    assert cluster.metric("podiam_webhook_service_account_lookup_waits_total", result="missing") == 0


# ------------------------------------------------------------------------------ reinvocation


class SidecarWebhook:
    """A second mutating webhook (HTTPS, the podiam webhook's certificate): adds a `sidecar`
    container to pods that have none, and records the pods it was sent."""

    def __init__(self, certs: Path):
        self.seen: list[dict] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                req = review["request"]
                pod = req["object"]
                hook.seen.append(pod)
                resp = {"uid": req["uid"], "allowed": True}
                if not any(c["name"] == "sidecar" for c in pod["spec"]["containers"]):
                    patch = [{"op": "add", "path": "/spec/containers/-", "value": {"name": "sidecar", "image": IMAGE}}]
                    resp.update(patchType="JSONPatch", patch=base64.b64encode(json.dumps(patch).encode()).decode())
                body = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                                   "response": resp}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(certs / "tls.crt", certs / "tls.key")
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def sidecar(kube, cluster):
    side = SidecarWebhook(cluster.work / "certs")
    # Named after podiam-webhook: the apiserver calls it second, so podiam's (IfNeeded) is
    # called again after it changed the pod.
    kube.kubectl("apply", "-f", "-", stdin=json.dumps({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "sidecar-injector"},
        "webhooks": [{"name": "sidecar.podiam-test.io", "admissionReviewVersions": ["v1"], "sideEffects": "None",
                      "failurePolicy": "Fail", "timeoutSeconds": 5, "reinvocationPolicy": "Never",
                      "clientConfig": {"url": f"https://127.0.0.1:{side.port}/", "caBundle": cluster.ca_bundle},
                      "objectSelector": {"matchLabels": {SIDECAR_LABEL: "true"}},
                      "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                                 "resources": ["pods"], "scope": "Namespaced"}]}]}))
    n = iter(range(10**6))
    wait_until("the apiserver calls the sidecar webhook", lambda: len(dry_run(
        kube, pod_manifest(f"side-probe-{next(n)}", PLAIN_SA, labels={SIDECAR_LABEL: "true"}))["spec"]["containers"]) == 2)
    side.seen.clear()
    yield side
    kube.kubectl("delete", "mutatingwebhookconfiguration", "sidecar-injector")
    side.close()


def test_reinvocation_injects_the_added_sidecar_once_and_nothing_twice(kube, cluster, sidecar):
    before = cluster.metric("podiam_webhook_mutations_total", method="irsa")
    pod = create_pod(kube, pod_manifest("checkout-side", IRSA_SA, labels={SIDECAR_LABEL: "true"}))
    # podiam first, the sidecar webhook second (it saw the app container injected already),
    # then podiam again for the sidecar it added.
    (seen,) = sidecar.seen
    assert [c["name"] for c in seen["spec"]["containers"]] == ["app"]
    assert aws_env(seen["spec"]["containers"][0]) == IRSA_ENV
    assert cluster.metric("podiam_webhook_mutations_total", method="irsa") == before + 2
    assert [c["name"] for c in pod["spec"]["containers"]] == ["app", "sidecar"]
    assert [v["name"] for v in pod["spec"]["volumes"]].count("aws-iam-token") == 1
    for name in ("app", "sidecar"):
        c = container(pod, name)
        assert c["env"] == IRSA_ENV, (name, c)
        assert [m["name"] for m in c["volumeMounts"]].count("aws-iam-token") == 1, (name, c)
        assert c["volumeMounts"][-1] == IRSA_MOUNT_ENTRY


def test_reinvocation_injects_pod_identity_once(kube, cluster, sidecar):
    before = cluster.metric("podiam_webhook_mutations_total", method="pod-identity")
    pod = create_pod(kube, pod_manifest("payments-side", PI_SA, labels={SIDECAR_LABEL: "true"}))
    assert cluster.metric("podiam_webhook_mutations_total", method="pod-identity") == before + 2
    assert [c["name"] for c in pod["spec"]["containers"]] == ["app", "sidecar"]
    assert [v["name"] for v in pod["spec"]["volumes"]].count("eks-pod-identity-token") == 1
    assert pod["metadata"]["labels"] == {SIDECAR_LABEL: "true", "eks.amazonaws.com/pod-identity": "enabled"}
    for name in ("app", "sidecar"):
        c = container(pod, name)
        assert c["env"] == PI_ENV, (name, c)
        assert [m["name"] for m in c["volumeMounts"]].count("eks-pod-identity-token") == 1, (name, c)


def test_reinvocation_of_a_pod_without_identity_injects_nothing(kube, cluster, sidecar):
    pod = create_pod(kube, pod_manifest("plain-side", PLAIN_SA, labels={SIDECAR_LABEL: "true"}))
    assert [c["name"] for c in pod["spec"]["containers"]] == ["app", "sidecar"]
    no_injection(pod)


# ------------------------------------------------------------------------------ failures


def test_pod_created_while_the_webhook_is_down_is_admitted_unmutated_and_counted(kube, cluster):
    labels = {"name": HOOK_NAME, "type": "admit"}
    before = apiserver_metric(kube, "apiserver_admission_webhook_fail_open_count", **labels)
    cluster.stop()
    try:
        pod = create_pod(kube, pod_manifest("checkout-down", IRSA_SA))
        no_injection(pod)
        after = apiserver_metric(kube, "apiserver_admission_webhook_fail_open_count", **labels)
        assert after == before + 1, (before, after)
        assert HOOK_NAME in kube.log("kube-apiserver") and "connection refused" in kube.log("kube-apiserver")
    finally:
        cluster.start()
    wait_until("the restarted webhook is called again", lambda: any(
        e["name"] == "AWS_ROLE_ARN" for e in container(dry_run(kube, pod_manifest("probe-up", IRSA_SA)), "app")["env"]))


def test_pod_identity_pod_admitted_while_the_eks_api_is_down_is_counted_and_logged(kube, cluster):
    """podiam's control plane unreachable at --endpoint since the webhook started: the
    associations are unknown, the pod is admitted without Pod Identity, and the webhook says so
    in its metrics and its log."""
    cluster.stop()
    try:
        hook = cluster.start(endpoint=f"http://127.0.0.1:{free_port()}")
        assert "listing associations failed" in hook.text(), hook.text()
        assert cluster.metric("podiam_webhook_associations_unavailable_total") == 0
        pod = create_pod(kube, pod_manifest("payments-down", PI_SA))
        no_injection(pod)
        irsa = create_pod(kube, pod_manifest("checkout-eks-down", IRSA_SA))
        assert container(irsa, "app")["env"] == IRSA_ENV  # IRSA needs no association
        assert cluster.metric("podiam_webhook_associations_unavailable_total") == 2
        line = next((ln for ln in hook.text().splitlines() if "Pod Identity associations not listed yet" in ln), "")
        assert f'service_account="{PI_SA}"' in line and f'namespace="{NS}"' in line, hook.text()[-3000:]
        # The background refresh (every second here, retries included) says so too.
        wait_until("the refresh logs its failure", lambda: "none listed yet, so pods get no Pod Identity" in hook.text(),
                   timeout=10)
        assert "keeping the previous set" not in hook.text()  # there is none
    finally:
        cluster.stop()
        cluster.start()
    assert cluster.metric("podiam_webhook_associations_unavailable_total") == 0
