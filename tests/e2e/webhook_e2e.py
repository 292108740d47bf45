"""Helpers for the admission webhook's end-to-end tests: the `podiam webhook` process, an
AdmissionReview round trip over HTTPS with the CA it generated, an RFC 6902 patch applier, and
what the kubelet would do with the mutated pod (project the token where the pod expects it)."""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import os
import re
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import requests

from podiam_e2e import clean_env, podiam_bin, register_log


class Webhook:
    def __init__(self, workdir: Path, args: list[str], env: dict[str, str], *, listen: str = "127.0.0.1:0",
                 log_name: str = "webhook.log"):
        """`podiam webhook --listen LISTEN --self-signed WORKDIR/certs ARGS` (a CA already in
        WORKDIR/certs is reused, so a restarted webhook keeps its caBundle); its output goes to
        WORKDIR/LOG_NAME. `url` is its HTTPS base URL, `metrics_url` the plain-HTTP one of
        --metrics-listen (if given)."""
        self.dir = workdir
        self.log_path = workdir / log_name
        self.log = open(self.log_path, "wb")
        register_log(self.log_path)
        certs = workdir / "certs"
        self.metrics_url: str | None = None
        argv = [podiam_bin(), "webhook", "--listen", listen, "--self-signed", str(certs), *args]
        self.proc = subprocess.Popen(argv, env=env, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"webhook exited {self.proc.returncode}: {self.text()}"
            m = re.search(r"listening on (https://\S+)", self.text())
            if m:
                self.url = m.group(1)
                self.ca = str(certs / "ca.crt")
                mm = re.search(r"metrics on (http://\S+)", self.text())
                self.metrics_url = mm.group(1) if mm else None
                return
            time.sleep(0.05)
        raise AssertionError(f"webhook not ready: {self.text()}")

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()
        return self.proc.returncode

    def mutate(self, pod: dict) -> tuple[dict, list]:
        """Admit `pod` (CREATE); the mutated pod and the patch."""
        uid = str(uuid.uuid4())
        review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                  "request": {"uid": uid, "kind": {"group": "", "version": "v1", "kind": "Pod"},
                              "resource": {"group": "", "version": "v1", "resource": "pods"},
                              "namespace": pod["metadata"]["namespace"], "operation": "CREATE", "object": pod}}
        r = requests.post(f"{self.url}/mutate", json=review, verify=self.ca, timeout=10)
        assert r.status_code == 200, r.text
        resp = r.json()["response"]
        assert resp["uid"] == uid and resp["allowed"] is True, resp
        if "patch" not in resp:
            return pod, []
        assert resp["patchType"] == "JSONPatch"
        patch = json.loads(base64.b64decode(resp["patch"]))
        return apply_patch(pod, patch), patch


def _walk(doc, pointer: str):
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
    parent = doc
    for p in parts[:-1]:
        parent = parent[int(p)] if isinstance(parent, list) else parent[p]
    return parent, parts[-1]


def apply_patch(doc: dict, patch: list) -> dict:
    """RFC 6902 `add` and `replace` (what the webhook emits)."""
    out = copy.deepcopy(doc)
    for op in patch:
        parent, key = _walk(out, op["path"])
        if op["op"] == "add":
            if isinstance(parent, list):
                parent.insert(len(parent) if key == "-" else int(key), op["value"])
            else:
                parent[key] = op["value"]
        elif op["op"] == "replace":
            if isinstance(parent, list):
                parent[int(key)] = op["value"]
            else:
                assert key in parent, op
                parent[key] = op["value"]
        else:
            raise AssertionError(f"unexpected op {op}")
    return out


def pod(name: str, ns: str, sa: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
            "spec": {"serviceAccountName": sa, "containers": [{"name": "app", "image": "app:1"}]}}


def projected_token(mutated: dict, container: str = "app") -> tuple[str, str, int]:
    """(file path inside the pod, audience, expirationSeconds) of the projected token the
    container mounts, as the kubelet would write it."""
    c = next(c for c in mutated["spec"]["containers"] if c["name"] == container)
    for v in mutated["spec"].get("volumes", []):
        for src in v.get("projected", {}).get("sources", []):
            t = src.get("serviceAccountToken")
            if not t:
                continue
            mount = next((m for m in c.get("volumeMounts", []) if m["name"] == v["name"]), None)
            if mount:
                return f"{mount['mountPath'].rstrip('/')}/{t['path']}", t["audience"], t["expirationSeconds"]
    raise AssertionError(f"no projected token mounted in {container}: {json.dumps(mutated)}")


def env_of(mutated: dict, container: str = "app") -> dict[str, str]:
    c = next(c for c in mutated["spec"]["containers"] if c["name"] == container)
    return {e["name"]: e["value"] for e in c.get("env", [])}


@contextlib.contextmanager
def projected(path: str, token: str):
    """The token where the pod reads it (the kubelet's job; needs root for /var/run), for the
    duration of the block. The kubelet's paths are fixed and shared by every test process, so
    one block at a time holds them (the suite runs its modules in parallel processes)."""
    import fcntl
    import shutil

    with open(os.path.join(tempfile.gettempdir(), "podiam-e2e-kubelet-paths.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        existed = os.path.exists(os.path.dirname(path))
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(token)
        try:
            yield
        finally:
            if existed:
                os.remove(path)
            else:
                shutil.rmtree(os.path.dirname(path), ignore_errors=True)


def pod_process_env(injected: dict[str, str]) -> dict[str, str]:
    """A process environment with exactly the injected AWS variables and nothing else from AWS."""
    env = clean_env(AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    env.update(injected)
    return env


def caller_arn_as_pod(server, cluster: str, mutated: dict, pod_uid: str | None = None) -> str:
    """What the kubelet and the pod's SDK would do with a pod mutated for IRSA: project the
    token (audience, expiration and path from the injected volume, minted by the cluster's
    issuer) and run boto3 with exactly the injected environment; the caller ARN it gets."""
    import subprocess

    from podiam_e2e import VENV_PYTHON

    env = env_of(mutated)
    path, aud, exp = projected_token(mutated)
    assert path == env["AWS_WEB_IDENTITY_TOKEN_FILE"], (path, env)
    meta = mutated["metadata"]
    sa = mutated["spec"]["serviceAccountName"]
    token = server.token(cluster, meta["namespace"], sa, audience=[aud],
                         pod=(meta["name"], pod_uid or str(uuid.uuid4())), expiration=exp)
    with projected(path, token):
        code = "import boto3; print(boto3.client('sts').get_caller_identity()['Arn'])"
        p = subprocess.run([VENV_PYTHON, "-c", code], env=pod_process_env(env), capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        return p.stdout.strip()
