"""podiam's Helm chart (charts/podiam) for the end-to-end tests: `helm` from the same cache as
kube-apiserver and kubectl (`scripts/kube.sh build`, pinned in scripts/kube/go.mod), rendering
with `helm template`, and the rendered objects as dicts.

`chart_webhook_configuration(url, ca_bundle)` is the chart's MutatingWebhookConfiguration for a
webhook reached at `url` (https, e.g. a `podiam webhook` on loopback) whose certificate `ca_bundle`
(base64 PEM) signed: what a test registers with a real apiserver to exercise the chart's webhook
rather than a copy of it."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import yaml  # PyYAML, installed with the AWS CLI

from kube_e2e import KubeUnavailable, kube_bin

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "podiam"
DEPLOY = REPO / "deploy"


class HelmError(Exception):
    """`helm` exited non-zero; `stderr` has its message."""

    def __init__(self, args: list[str], returncode: int, stderr: str):
        super().__init__(f"helm {' '.join(args)} exited {returncode}: {stderr.strip()}")
        self.returncode = returncode
        self.stderr = stderr


def helm_bin() -> Path:
    """The helm binary built beside kubectl (raises KubeUnavailable when there is none)."""
    h = kube_bin() / "helm"
    if not os.access(h, os.X_OK):
        raise KubeUnavailable(f"not executable: {h} (scripts/kube.sh build makes it; a stale PODIAM_KUBE_BIN?)")
    return h


_HOME = tempfile.mkdtemp(prefix="podiam-helm-")
atexit.register(shutil.rmtree, _HOME, True)


def helm_rc(*args: str, helm: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run helm with its caches and configuration in a directory of this process (nothing of the
    user's: no repositories, no plugins, no kubeconfig)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "HELM_", "AWS_"))}
    env.update(HOME=_HOME, HELM_CACHE_HOME=f"{_HOME}/cache", HELM_CONFIG_HOME=f"{_HOME}/config",
               HELM_DATA_HOME=f"{_HOME}/data", KUBECONFIG=os.devnull)
    return subprocess.run([str(helm or helm_bin()), *args], env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def template_text(values: dict | None = None, *, namespace: str = "podiam", release: str = "podiam",
                  helm: Path | None = None) -> str:
    """`helm template` of the chart with `values` (nested dicts, as a values file): the YAML.
    Raises HelmError when helm refuses the values."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", dir=_HOME, delete=False) as f:
        json.dump(values or {}, f)  # JSON is YAML
    try:
        args = ["template", release, str(CHART), "--namespace", namespace, "--values", f.name]
        p = helm_rc(*args, helm=helm)
    finally:
        os.unlink(f.name)
    if p.returncode != 0:
        raise HelmError(args, p.returncode, p.stderr)
    return p.stdout


def documents(text: str) -> list[dict]:
    """The objects of a multi-document YAML stream (empty documents dropped)."""
    return [d for d in yaml.safe_load_all(text) if d]


def template(values: dict | None = None, **kw) -> list[dict]:
    """The chart's objects rendered with `values`."""
    return documents(template_text(values, **kw))


def find(objs: list[dict], kind: str, name: str) -> dict:
    hits = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(hits) == 1, f"{kind}/{name}: {len(hits)} in {[(o['kind'], o['metadata']['name']) for o in objs]}"
    return hits[0]


def chart_webhook_configuration(url: str, ca_bundle: str, values: dict | None = None) -> dict:
    """The chart's MutatingWebhookConfiguration `podiam-webhook`, calling `url` (https) and
    trusting `ca_bundle` (base64 PEM), rendered with the chart's defaults otherwise (`values` are
    merged over them: e.g. {"webhook": {"failurePolicy": "Fail"}})."""
    v: dict = {"clusterName": "chart-e2e", "podiamUrl": "https://127.0.0.1:1",
               "controlPlane": {"enabled": False}, "agent": {"enabled": False},
               "webhook": {"url": url, "tls": {"mode": "secret", "caBundle": ca_bundle}}}
    _merge(v, values or {})
    return find(template(v), "MutatingWebhookConfiguration", "podiam-webhook")


def chart_webhook_service_objects(ca_bundle: str, values: dict | None = None) -> tuple[dict, dict]:
    """The chart's webhook Service and its MutatingWebhookConfiguration calling it (the in-cluster
    default), trusting `ca_bundle` (base64 PEM): what `helm install` registers."""
    v: dict = {"clusterName": "chart-e2e", "podiamUrl": "https://127.0.0.1:1",
               "controlPlane": {"enabled": False}, "agent": {"enabled": False},
               "webhook": {"tls": {"mode": "secret", "caBundle": ca_bundle}}}
    _merge(v, values or {})
    objs = template(v)
    return find(objs, "Service", "podiam-webhook"), find(objs, "MutatingWebhookConfiguration", "podiam-webhook")


def _merge(into: dict, over: dict) -> dict:
    for k, val in over.items():
        if isinstance(val, dict) and isinstance(into.get(k), dict):
            _merge(into[k], val)
        else:
            into[k] = val
    return into
