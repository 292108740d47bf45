"""`podiam webhook --kubeconfig` against a fake Kubernetes API server, for what the real one
cannot do on demand.

test_kube_webhook.py runs the webhook against a real kube-apiserver (watch, RBAC, the
MutatingWebhookConfiguration, pods stored mutated). What stays here needs an API server whose
timing or content the test controls: a ServiceAccount that reaches the watch a chosen 300 ms
after its pod's admission began (only the lookup grace period gets the pod its role), and pods
of accounts the API does not have (a real apiserver refuses such a pod before calling any
webhook). The fake answers plain HTTP with a bearer token: `GET /api/v1/serviceaccounts` a
ServiceAccountList with a resourceVersion, `?watch=true` a stream of `{"type", "object"}` lines,
`GET /api/v1/namespaces/NS/serviceaccounts/NAME` one object or a 404 Status, as the Kubernetes
API shapes them. The rest is real: the webhook process, its kube-rs client, the podiam control
plane and boto3 running with exactly the environment the webhook injected."""

from __future__ import annotations

import json
import os
import queue
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from podiam_e2e import ACCOUNT, irsa_trust, require
from webhook_e2e import Webhook, caller_arn_as_pod, env_of, pod

CLUSTER = "kubewatched"
TOKEN = "fake-apiserver-token"


class FakeApiServer:
    def __init__(self):
        self.lock = threading.Lock()
        self.rv = 0
        self.accounts: dict[tuple[str, str], dict] = {}
        self.watchers: list[queue.Queue] = []
        self.requests: list[str] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def send_json(self, code: int, body: dict):
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                with api.lock:
                    api.requests.append(self.path)
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    return self.send_json(401, status(401, "Unauthorized", "Unauthorized"))
                url = urllib.parse.urlsplit(self.path)
                q = urllib.parse.parse_qs(url.query)
                parts = url.path.strip("/").split("/")
                if url.path == "/api/v1/serviceaccounts" and q.get("watch") == ["true"]:
                    return self.watch()
                if url.path == "/api/v1/serviceaccounts":
                    with api.lock:
                        items = [{k: v for k, v in o.items() if k not in ("kind", "apiVersion")}
                                 for o in api.accounts.values()]
                        rv = str(api.rv)
                    return self.send_json(200, {"kind": "ServiceAccountList", "apiVersion": "v1",
                                                "metadata": {"resourceVersion": rv}, "items": items})
                if len(parts) == 6 and parts[:3] == ["api", "v1", "namespaces"] and parts[4] == "serviceaccounts":
                    with api.lock:
                        o = api.accounts.get((parts[3], parts[5]))
                    if o is None:
                        return self.send_json(404, status(404, "NotFound", f'serviceaccounts "{parts[5]}" not found'))
                    return self.send_json(200, o)
                return self.send_json(404, status(404, "NotFound", "the server could not find the requested resource"))

            def watch(self):
                q: queue.Queue = queue.Queue()
                with api.lock:
                    api.watchers.append(q)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                try:
                    while True:
                        try:
                            line = q.get(timeout=0.5)
                        except queue.Empty:
                            if api.closed:
                                break
                            continue
                        data = (line + "\n").encode()
                        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                        self.wfile.flush()
                    self.wfile.write(b"0\r\n\r\n")
                except OSError:
                    pass
                finally:
                    with api.lock:
                        api.watchers.remove(q)

        self.closed = False
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def put(self, ns: str, name: str, annotations: dict[str, str], watch: bool = True):
        with self.lock:
            self.rv += 1
            obj = {"apiVersion": "v1", "kind": "ServiceAccount",
                   "metadata": {"name": name, "namespace": ns, "annotations": annotations,
                                "resourceVersion": str(self.rv), "uid": f"00000000-0000-4000-8000-{self.rv:012d}",
                                "creationTimestamp": "2026-12-01T00:00:00Z"}}
            kind = "MODIFIED" if (ns, name) in self.accounts else "ADDED"
            self.accounts[(ns, name)] = obj
            if watch:
                for w in self.watchers:
                    w.put(json.dumps({"type": kind, "object": obj}))

    def watching(self) -> bool:
        with self.lock:
            return bool(self.watchers)

    def kubeconfig(self, path, token: str = TOKEN):
        path.write_text(
            "apiVersion: v1\nkind: Config\n"
            f"clusters:\n- name: fake\n  cluster:\n    server: {self.url}\n"
            "contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: webhook\n"
            "current-context: fake\n"
            f"users:\n- name: webhook\n  user:\n    token: {token}\n")
        return path

    def close(self):
        self.closed = True
        self.httpd.shutdown()


def status(code: int, reason: str, message: str) -> dict:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


@pytest.fixture(scope="module")
def world(server, tmp_path_factory):
    eks, iam = server.client("eks"), server.client("iam")
    eks.create_cluster(name=CLUSTER, roleArn=f"arn:aws:iam::{ACCOUNT}:role/eks", resourcesVpcConfig={"subnetIds": ["s"]})
    issuer = eks.describe_cluster(name=CLUSTER)["cluster"]["identity"]["oidc"]["issuer"]
    hp = issuer.removeprefix("https://")
    iam.create_open_id_connect_provider(Url=issuer, ClientIDList=["sts.amazonaws.com"])
    for sa in ("annotated", "late"):
        iam.create_role(RoleName=f"kube-{sa}", AssumeRolePolicyDocument=json.dumps(irsa_trust(hp, f"system:serviceaccount:shop:{sa}")))
    api = FakeApiServer()
    api.put("shop", "annotated", {"eks.amazonaws.com/role-arn": f"arn:aws:iam::{ACCOUNT}:role/kube-annotated",
                                  "eks.amazonaws.com/token-expiration": "3600"})
    api.put("shop", "plain", {})
    work = tmp_path_factory.mktemp("webhook-kube")
    hook = Webhook(work, ["--kubeconfig", str(api.kubeconfig(work / "kubeconfig")),
                          "--service-account-lookup-grace-period", "3s",
                          "--default-region", "us-east-1", "--inject-sts-endpoint", server.endpoint], server.env)
    yield {"hook": hook, "api": api, "work": work}
    assert hook.stop() == 0, hook.text()[-3000:]
    api.close()


def test_service_account_created_just_before_its_pod(server, world):
    hook, api = world["hook"], world["api"]
    deadline = time.monotonic() + 10
    while not api.watching():
        assert time.monotonic() < deadline, "the webhook never opened a watch"
        time.sleep(0.05)
    # The account appears on the watch 300 ms after the pod's admission starts (and is not
    # readable before either), so only the lookup grace period gets it injected.
    timer = threading.Timer(0.3, api.put, ("shop", "late", {"eks.amazonaws.com/role-arn": f"arn:aws:iam::{ACCOUNT}:role/kube-late"}))
    started = time.monotonic()
    timer.start()
    mutated, patch = hook.mutate(pod("late-0", "shop", "late"))
    timer.join()
    assert patch, "the pod was admitted before its service account arrived"
    assert 0.25 < time.monotonic() - started < 3, time.monotonic() - started
    assert env_of(mutated)["AWS_ROLE_ARN"] == f"arn:aws:iam::{ACCOUNT}:role/kube-late"
    metrics = requests.get(f"{hook.url}/metrics", verify=hook.ca, timeout=5).text
    assert 'podiam_webhook_service_account_lookup_waits_total{result="found"} 1' in metrics, metrics
    require(os.geteuid() == 0, "writing the projected token under /var/run needs root")
    arn = caller_arn_as_pod(server, CLUSTER, mutated)
    assert arn.startswith(f"arn:aws:sts::{ACCOUNT}:assumed-role/kube-late/"), arn


def test_unknown_and_unannotated_accounts_get_no_patch(server, world):
    hook = world["hook"]
    _, patch = hook.mutate(pod("plain-0", "shop", "plain"))
    assert patch == []
    started = time.monotonic()
    _, patch = hook.mutate(pod("ghost-0", "shop", "ghost"))
    assert patch == []
    assert time.monotonic() - started >= 2.9, "an unknown account must wait the grace period"


def test_bad_kubeconfig_fails_at_start(server, tmp_path):
    from podiam_e2e import clean_env, podiam_bin
    import subprocess

    (tmp_path / "kc").write_text("clusters: [{{{")
    p = subprocess.run([podiam_bin(), "webhook", "--listen", "127.0.0.1:0", "--self-signed", str(tmp_path / "certs"),
                        "--kubeconfig", str(tmp_path / "kc")], env=clean_env(), capture_output=True, text=True, timeout=60)
    assert p.returncode != 0
    assert "Kubernetes API" in p.stderr, p.stderr
