"""deploy/ and the Helm chart (charts/podiam) against a real kube-apiserver.

One control plane (etcd + kube-apiserver from scripts/kube.sh, helm built beside them) for the
module, with the namespaces `podiam` and `identity` and a subset of cert-manager's v1 CRDs
(Certificate, Issuer, ClusterIssuer; the fields the chart uses, no unknown field allowed).

- every file in deploy/ (placeholders filled in) and `helm template` of the chart for its main
  value sets pass `kubectl apply --dry-run=server --validate=strict`, and the server returns each
  object rendered;
- `helm lint --strict` passes;
- the chart rendered with the values matching a deploy/ file produces the same objects as that
  file, compared after the server's defaulting: same workload specs (container args, env, probes,
  volumes), Services, RBAC, MutatingWebhookConfiguration, Secret keys;
- the generated webhook certificate names the Service and is signed by the caBundle's CA;
- refused: values that cannot work (`helm template` fails naming the value, from
  values.schema.json or the templates), and objects the server rejects (an unknown field, a
  selector that does not match, a webhook with both a URL and a Service, deploy/ with its
  placeholders left in), which shows that the dry-run checks something.

Without the binaries or an apiserver that starts, the module skips (fails under CI=true)."""

from __future__ import annotations

import base64
import copy
import ipaddress
import json
import re
import urllib.parse

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from helm_e2e import (CHART, DEPLOY, HelmError, chart_webhook_configuration, documents, find, helm_bin, helm_rc,
                      template, template_text)
from kube_e2e import ControlPlane, KubeUnavailable
from podiam_e2e import require

CLUSTER = "demo"
PODIAM_URL = "http://podiam.podiam.svc:8080"
MASTER_KEY = base64.b64encode(bytes(range(32))).decode()


# A subset of cert-manager's v1 API (written for this test): the fields of Certificate, Issuer and
# ClusterIssuer the chart may use, with a structural schema, so that strict validation refuses a
# field cert-manager does not have.
def _crd(kind: str, plural: str, scope: str, spec: dict) -> dict:
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.cert-manager.io"},
        "spec": {"group": "cert-manager.io", "scope": scope,
                 "names": {"kind": kind, "plural": plural, "singular": kind.lower(), "listKind": f"{kind}List"},
                 "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                     "type": "object",
                     "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                                    "metadata": {"type": "object"}, "spec": spec}}}}]}}


_S = {"type": "string"}
_ISSUER_SPEC = {"type": "object", "properties": {
    "selfSigned": {"type": "object", "properties": {"crlDistributionPoints": {"type": "array", "items": _S}}},
    "ca": {"type": "object", "required": ["secretName"], "properties": {"secretName": _S}}}}
CERT_MANAGER_CRDS = [
    _crd("Certificate", "certificates", "Namespaced", {
        "type": "object", "required": ["secretName", "issuerRef"], "properties": {
            "secretName": _S, "commonName": _S, "duration": _S, "renewBefore": _S, "isCA": {"type": "boolean"},
            "dnsNames": {"type": "array", "items": _S}, "ipAddresses": {"type": "array", "items": _S},
            "usages": {"type": "array", "items": _S},
            "privateKey": {"type": "object", "properties": {
                "algorithm": {"type": "string", "enum": ["RSA", "ECDSA", "Ed25519"]}, "size": {"type": "integer"},
                "encoding": {"type": "string", "enum": ["PKCS1", "PKCS8"]},
                "rotationPolicy": {"type": "string", "enum": ["Never", "Always"]}}},
            "issuerRef": {"type": "object", "required": ["name"],
                          "properties": {"name": _S, "kind": _S, "group": _S}}}}),
    _crd("Issuer", "issuers", "Namespaced", _ISSUER_SPEC),
    _crd("ClusterIssuer", "clusterissuers", "Cluster", _ISSUER_SPEC),
]


@pytest.fixture(scope="module")
def helm():
    """helm, built beside kubectl (tests that only render need nothing else)."""
    try:
        return helm_bin()
    except KubeUnavailable as e:
        require(False, f"helm is unavailable: {e}")


@pytest.fixture(scope="module")
def kube(helm, tmp_path_factory, request):
    bin_dir = helm.parent
    cp = ControlPlane(tmp_path_factory.mktemp("kube") / "cp", bin_dir)
    try:
        cp.start()
    except KubeUnavailable as e:
        cp.stop()
        require(False, f"the Kubernetes control plane is unavailable: {e}")
    # Namespaced objects can only be dry-run into a namespace that exists.
    cp.kubectl("create", "namespace", "podiam")
    cp.kubectl("create", "namespace", "identity")
    cp.kubectl("create", "-f", "-", stdin="\n---\n".join(json.dumps(c) for c in CERT_MANAGER_CRDS))
    cp.kubectl("wait", "--for=condition=Established", "--timeout=60s",
               *[f"crd/{c['metadata']['name']}" for c in CERT_MANAGER_CRDS])
    yield cp
    if request.session.testsfailed:
        print(f"\n--- kube-apiserver log (tail) ---\n{cp.log('kube-apiserver')[-4000:]}")
    cp.stop()


@pytest.fixture(scope="module")
def ca_bundle(kube) -> str:
    """A real CA certificate, base64 PEM, as a caBundle."""
    return base64.b64encode((kube.pki / "ca.crt").read_bytes()).decode()


# ------------------------------------------------------------------------------------ helpers


def dry_run_rc(kube: ControlPlane, text: str):
    return kube.kubectl_rc("apply", "--dry-run=server", "--validate=strict", "-o", "json", "-f", "-", stdin=text)


def dry_run(kube: ControlPlane, text: str) -> list[dict]:
    """`kubectl apply --dry-run=server` of `text` (YAML), which must pass: the objects as the
    server returned them (defaulted), which must be the objects of `text`."""
    p = dry_run_rc(kube, text)
    assert p.returncode == 0, f"server dry-run refused:\n{p.stderr}"
    out = json.loads(p.stdout)
    objs = out["items"] if out.get("kind") == "List" else [out]
    key = lambda o: (o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"])  # noqa: E731
    sent = [key(o) for o in documents(text)]
    assert sorted(key(o) for o in objs) == sorted(sent), (sent, [key(o) for o in objs])
    return objs


def deploy_text(name: str, ca_bundle: str) -> str:
    """deploy/NAME with its placeholders filled in (and a well-formed master key)."""
    text = (DEPLOY / name).read_text()
    for k, v in {"CA_BUNDLE": ca_bundle, "CLUSTER_NAME": CLUSTER, "PODIAM_URL": PODIAM_URL}.items():
        text = text.replace("${" + k + "}", v)
    assert "${" not in text, f"deploy/{name} has a placeholder this test does not know: {re.findall(r'[$][{][^}]*}', text)}"
    return text.replace("REPLACE-with-base64-of-32-random-bytes", MASTER_KEY)


DEPLOY_FILES = sorted(p.name for p in DEPLOY.glob("*"))


def errors_of(values: dict) -> str:
    with pytest.raises(HelmError) as e:
        template_text(values)
    return e.value.stderr


# ------------------------------------------------------------------------------- deploy/ files


@pytest.mark.parametrize("name", DEPLOY_FILES)
def test_deploy_file_passes_server_dry_run(kube, ca_bundle, name):
    objs = dry_run(kube, deploy_text(name, ca_bundle))
    assert objs, f"deploy/{name} has no object"


def test_deploy_file_with_placeholders_left_in_is_refused(kube):
    """The raw webhook.yaml (caBundle `${CA_BUNDLE}`) is refused: the substitution matters and
    the dry-run decodes what it is given."""
    p = dry_run_rc(kube, (DEPLOY / "webhook.yaml").read_text())
    assert p.returncode != 0
    assert "caBundle" in p.stderr or "base64" in p.stderr, p.stderr


# ----------------------------------------------------------------------- chart: main value sets


def _names(objs, kind):
    return sorted(o["metadata"]["name"] for o in objs if o["kind"] == kind)


def _container(objs, kind, name):
    return find(objs, kind, name)["spec"]["template"]["spec"]["containers"][0]


def _check_defaults(objs):
    assert _names(objs, "Deployment") == ["podiam", "podiam-webhook"]
    assert find(objs, "Deployment", "podiam")["spec"]["strategy"]["type"] == "Recreate"
    assert find(objs, "PersistentVolumeClaim", "podiam-data")
    assert _names(objs, "DaemonSet") == ["podiam-agent"]
    assert "--endpoint=http://podiam.podiam.svc:8080" in _container(objs, "DaemonSet", "podiam-agent")["args"]
    assert find(objs, "Secret", "podiam-webhook-tls")["type"] == "kubernetes.io/tls"
    assert not [o for o in objs if o["kind"] == "Secret" and o["metadata"]["name"].endswith("-aws")]


def _check_postgres(objs):
    d = find(objs, "Deployment", "podiam")
    assert d["spec"]["replicas"] == 3 and d["spec"]["strategy"]["type"] == "RollingUpdate"
    assert d["spec"]["template"]["spec"]["volumes"][0]["emptyDir"] == {}
    assert _container(objs, "Deployment", "podiam")["envFrom"] == [{"secretRef": {"name": "podiam-store"}}]
    assert set(find(objs, "Secret", "podiam-store")["data"]) == {"PODIAM_STORE", "PODIAM_MASTER_KEY"}
    assert not _names(objs, "PersistentVolumeClaim")


def _check_postgres_existing(objs):
    assert _container(objs, "Deployment", "podiam")["envFrom"] == [{"secretRef": {"name": "db-credentials"}}]
    assert not _names(objs, "Secret")


def _check_cert_manager(objs):
    mwc = find(objs, "MutatingWebhookConfiguration", "podiam-webhook")
    assert mwc["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == "podiam/podiam-webhook"
    assert "caBundle" not in mwc["webhooks"][0]["clientConfig"]
    cert = find(objs, "Certificate", "podiam-webhook")
    assert cert["spec"]["secretName"] == "podiam-webhook-tls"
    assert "podiam-webhook.podiam.svc" in cert["spec"]["dnsNames"]
    assert cert["spec"]["issuerRef"]["name"] == "podiam-webhook-selfsigned"
    assert find(objs, "Issuer", "podiam-webhook-selfsigned")["spec"] == {"selfSigned": {}}
    assert "podiam-webhook-tls" not in _names(objs, "Secret")


def _check_cluster_issuer(objs):
    assert find(objs, "Certificate", "podiam-webhook")["spec"]["issuerRef"] == {
        "name": "corp-ca", "kind": "ClusterIssuer", "group": "cert-manager.io"}
    assert not _names(objs, "Issuer")


def _check_url(objs):
    cc = find(objs, "MutatingWebhookConfiguration", "podiam-webhook")["webhooks"][0]["clientConfig"]
    assert cc["url"] == "https://webhook.example.com:9443/mutate" and "service" not in cc
    assert not _names(objs, "DaemonSet") and _names(objs, "Deployment") == ["podiam-webhook"]


def _check_agent_only(objs):
    assert sorted({o["kind"] for o in objs}) == ["DaemonSet", "Secret"]
    args = _container(objs, "DaemonSet", "podiam-agent")["args"]
    assert "--endpoint=https://podiam.example.com" in args
    assert "--cluster-issuer-url=https://kubernetes.default.svc" in args and args[-1] == "--max-cache-size=10"
    assert find(objs, "DaemonSet", "podiam-agent")["spec"]["template"]["spec"]["nodeSelector"] == {"pool": "general"}


def _check_control_plane_only(objs):
    assert sorted({o["kind"] for o in objs}) == ["Deployment", "PersistentVolumeClaim", "Service"]
    env = {e["name"]: e.get("value") for e in _container(objs, "Deployment", "podiam")["env"]}
    assert env["PODIAM_ISSUER_BASE_URL"] == "https://oidc.example.com"
    assert env["PODIAM_LOG_FORMAT"] == "json"
    assert find(objs, "PersistentVolumeClaim", "podiam-data")["spec"]["storageClassName"] == "fast"


def _check_other_namespace(objs):
    assert {o["metadata"].get("namespace") for o in objs if o["kind"] not in
            ("ClusterRole", "ClusterRoleBinding", "MutatingWebhookConfiguration")} == {"identity"}
    mwc = find(objs, "MutatingWebhookConfiguration", "podiam-webhook")
    assert mwc["webhooks"][0]["clientConfig"]["service"]["namespace"] == "identity"
    assert find(objs, "ClusterRoleBinding", "podiam-webhook")["subjects"][0]["namespace"] == "identity"
    args = _container(objs, "Deployment", "podiam-webhook")["args"]
    assert "--inject-sts-endpoint=https://podiam.example.com" in args
    assert "--service-account-file=/etc/webhook/config/config" not in args


VALUE_SETS = {
    # name: (values, namespace, check of the objects the server returned)
    "defaults (SQLite, agent, webhook with a generated certificate)": ({"clusterName": CLUSTER}, "podiam", _check_defaults),
    "PostgreSQL, 3 replicas, URL and master key": (
        {"clusterName": CLUSTER, "controlPlane": {"store": "postgres", "replicas": 3, "postgres": {
            "url": "postgres://podiam:pw@db.example.com:5432/podiam", "masterKey": MASTER_KEY}}},
        "podiam", _check_postgres),
    "PostgreSQL from an existing Secret": (
        {"controlPlane": {"store": "postgres", "replicas": 2, "postgres": {"existingSecret": "db-credentials"}},
         "agent": {"enabled": False}, "webhook": {"enabled": False}}, "podiam", _check_postgres_existing),
    "webhook with cert-manager (self-signed Issuer)": (
        {"clusterName": CLUSTER, "webhook": {"tls": {"mode": "certManager"}}}, "podiam", _check_cert_manager),
    "webhook with cert-manager (a ClusterIssuer)": (
        {"clusterName": CLUSTER, "controlPlane": {"enabled": False}, "agent": {"enabled": False},
         "podiamUrl": "https://podiam.example.com",
         "webhook": {"tls": {"mode": "certManager", "certManager": {"issuerRef": {
             "name": "corp-ca", "kind": "ClusterIssuer", "group": "cert-manager.io"}}}}},
        "podiam", _check_cluster_issuer),
    "webhook at a URL": (
        {"clusterName": CLUSTER, "controlPlane": {"enabled": False}, "agent": {"enabled": False},
         "podiamUrl": "https://podiam.example.com",
         "webhook": {"url": "https://webhook.example.com:9443/mutate", "failurePolicy": "Fail",
                     "credentials": {"existingSecret": "eks-lister"}}},
        "podiam", _check_url),
    "agent only": (
        {"clusterName": CLUSTER, "podiamUrl": "https://podiam.example.com",
         "controlPlane": {"enabled": False}, "webhook": {"enabled": False},
         "agent": {"credentials": {"accessKeyId": "AKIAEXAMPLE", "secretAccessKey": "secret"},
                   "clusterIssuerUrl": "https://kubernetes.default.svc", "extraArgs": ["--max-cache-size=10"],
                   "nodeSelector": {"pool": "general"}}},
        "podiam", _check_agent_only),
    "control plane only": (
        {"agent": {"enabled": False}, "webhook": {"enabled": False},
         "controlPlane": {"issuerBaseUrl": "https://oidc.example.com",
                          "extraEnv": [{"name": "PODIAM_LOG_FORMAT", "value": "json"}],
                          "sqlite": {"persistence": {"storageClassName": "fast", "size": "5Gi"}},
                          "resources": {"limits": {"memory": "256Mi"}}}},
        "podiam", _check_control_plane_only),
    "webhook only, another namespace": (
        {"clusterName": CLUSTER, "podiamUrl": "https://podiam.example.com",
         "controlPlane": {"enabled": False}, "agent": {"enabled": False},
         "webhook": {"injectStsEndpoint": "https://podiam.example.com", "serviceAccounts": {"enabled": False},
                     "defaultRegion": "eu-west-1", "stsRegionalEndpoint": True}},
        "identity", _check_other_namespace),
}


@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_chart_value_set_passes_server_dry_run(kube, name):
    values, ns, check = VALUE_SETS[name]
    check(dry_run(kube, template_text(values, namespace=ns)))


def test_chart_with_every_part_disabled_renders_nothing(helm):
    assert template({"controlPlane": {"enabled": False}, "agent": {"enabled": False},
                     "webhook": {"enabled": False}}) == []


def test_helm_lint(kube):
    for values in (["--set", f"clusterName={CLUSTER}"],
                   ["--set", "controlPlane.store=postgres", "--set", "controlPlane.replicas=3",
                    "--set", "controlPlane.postgres.existingSecret=db", "--set", "agent.enabled=false",
                    "--set", "webhook.enabled=false"]):
        p = helm_rc("lint", "--strict", str(CHART), *values)
        assert p.returncode == 0, p.stdout + p.stderr
        assert "0 chart(s) failed" in p.stdout


def test_helm_lint_refuses_invalid_values(kube):
    """helm lint checks values.schema.json (it only logs a template's `fail`, which
    test_invalid_values_are_refused covers with `helm template`)."""
    for bad, fragment in (("webhok.enabled=false", "'webhok' not allowed"),
                          ("webhook.url=http://webhook.example.com", "/webhook/url")):
        p = helm_rc("lint", str(CHART), "--set", f"clusterName={CLUSTER}", "--set", bad)
        assert p.returncode != 0, p.stdout
        assert fragment in p.stdout + p.stderr and "1 chart(s) failed" in p.stdout + p.stderr


def _cert(b64: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(base64.b64decode(b64))


def _signed_by(leaf: x509.Certificate, ca: x509.Certificate) -> bool:
    key = ca.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(leaf.signature, leaf.tbs_certificate_bytes, padding.PKCS1v15(), leaf.signature_hash_algorithm)
        else:
            assert isinstance(key, ec.EllipticCurvePublicKey)
            key.verify(leaf.signature, leaf.tbs_certificate_bytes, ec.ECDSA(leaf.signature_hash_algorithm))
        return True
    except Exception:
        return False


@pytest.mark.parametrize("url", ["", "https://10.20.30.40:8443/mutate", "https://webhook.example.com/mutate"])
def test_generated_certificate_names_the_service_and_matches_the_ca_bundle(helm, url):
    objs = template({"clusterName": CLUSTER, "webhook": {"url": url, "tls": {"extraDnsNames": ["hooks.internal"]}}},
                    namespace="identity")
    secret = find(objs, "Secret", "podiam-webhook-tls")
    mwc = find(objs, "MutatingWebhookConfiguration", "podiam-webhook")
    ca_b64 = mwc["webhooks"][0]["clientConfig"]["caBundle"]
    assert secret["data"]["ca.crt"] == ca_b64
    ca, leaf = _cert(ca_b64), _cert(secret["data"]["tls.crt"])
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert _signed_by(leaf, ca) and leaf.issuer == ca.subject
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    dns = set(san.get_values_for_type(x509.DNSName))
    assert {"podiam-webhook", "podiam-webhook.identity", "podiam-webhook.identity.svc",
            "podiam-webhook.identity.svc.cluster.local", "hooks.internal"} <= dns
    ips = {str(i) for i in san.get_values_for_type(x509.IPAddress)}
    if url:
        host = urllib.parse.urlsplit(url).hostname
        try:
            ipaddress.ip_address(host)
        except ValueError:
            assert host in dns
        else:
            assert host in ips
    # Another render is another CA (helm template cannot read the Secret back), so a fixed
    # caBundle can only come from the Secret an upgrade finds.
    again = find(template({"clusterName": CLUSTER}), "Secret", "podiam-webhook-tls")
    assert again["data"]["ca.crt"] != ca_b64


def _value_paths(d: dict, prefix: str = "") -> set[str]:
    """The leaf paths of values.yaml (a map that is empty by default is a leaf)."""
    out = set()
    for k, v in d.items():
        path = f"{prefix}{k}"
        if isinstance(v, dict) and v and k not in ("resources",):
            out |= _value_paths(v, path + ".")
        else:
            out.add(path)
    return out


def test_every_value_is_documented_and_checked():
    """Every value of values.yaml has a row in the README's table, and values.schema.json knows it
    (it refuses unknown keys, so a value it does not list could not be set)."""
    values = documents((CHART / "values.yaml").read_text())[0]
    documented: set[str] = set()
    for line in (CHART / "README.md").read_text().splitlines():
        if not line.startswith("| `"):
            continue
        names = re.findall(r"`([^`]+)`", line.split("|")[1])
        first = names[0]
        documented.add(first)
        for n in names[1:]:
            if n.startswith("."):
                documented.add(first.rsplit(".", 1)[0] + n)
    schema = json.loads((CHART / "values.schema.json").read_text())

    def in_schema(path: str) -> bool:
        node = schema
        for part in path.split("."):
            props = node.get("properties", {})
            if part not in props:
                return False
            node = props[part]
        return True

    paths = _value_paths(values)
    undocumented = sorted(p for p in paths if p not in documented
                          and not any(d.endswith(".*") and p.startswith(d[:-1]) for d in documented))
    assert not undocumented, f"values missing from charts/podiam/README.md: {undocumented}"
    assert not [p for p in paths if not in_schema(p)], "values missing from values.schema.json"
    stale = sorted(d for d in documented if "." in d and not d.endswith(".*") and d not in paths
                   and not any(p.startswith(d + ".") for p in paths))
    assert not stale, f"README rows for values that do not exist: {stale}"


# ------------------------------------------------------------------- chart == deploy/ (no drift)


def _deploy_values(name: str, text: str, ca_bundle: str) -> dict:
    """The chart's values that stand for deploy/NAME (its placeholders filled in as above)."""
    objs = documents(text)
    base = {"clusterName": CLUSTER, "podiamUrl": PODIAM_URL, "image": {"pullPolicy": "Always"},
            "controlPlane": {"enabled": False}, "agent": {"enabled": False}, "webhook": {"enabled": False}}
    if name.startswith("control-plane"):
        container = find(objs, "Deployment", "podiam")["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e["value"] for e in container["env"]}
        cp = {"enabled": True, "issuerBaseUrl": env["PODIAM_ISSUER_BASE_URL"], "publicUrl": env["PODIAM_PUBLIC_URL"]}
        if "postgres" in name:
            store = find(objs, "Secret", "podiam-store")["stringData"]
            cp.update(store="postgres", replicas=find(objs, "Deployment", "podiam")["spec"]["replicas"],
                      postgres={"url": store["PODIAM_STORE"], "masterKey": store["PODIAM_MASTER_KEY"]})
        base["controlPlane"] = cp
    elif name == "agent.yaml":
        creds = find(objs, "Secret", "podiam-agent-aws")["stringData"]
        base["agent"] = {"enabled": True, "credentials": {"accessKeyId": creds["AWS_ACCESS_KEY_ID"],
                                                           "secretAccessKey": creds["AWS_SECRET_ACCESS_KEY"]}}
    elif name == "webhook.yaml":
        creds = find(objs, "Secret", "podiam-webhook-aws")["stringData"]
        config = json.loads(find(objs, "ConfigMap", "pod-identity-webhook")["data"]["config"])
        base["webhook"] = {"enabled": True,
                           "credentials": {"accessKeyId": creds["AWS_ACCESS_KEY_ID"],
                                           "secretAccessKey": creds["AWS_SECRET_ACCESS_KEY"]},
                           "serviceAccounts": {"config": config},
                           "tls": {"mode": "secret", "caBundle": ca_bundle}}
    else:
        raise AssertionError(f"deploy/{name}: no chart values stand for it (add them here)")
    return base


def _comparable(o: dict) -> dict:
    """What must be equal between deploy/'s object and the chart's, after the server's defaults:
    everything but metadata and status (Service IPs are allocated per request; Secret values are
    placeholders, their keys must match; the ConfigMap's JSON is compared parsed)."""
    c = {k: v for k, v in copy.deepcopy(o).items() if k not in ("metadata", "status")}
    if o["kind"] == "Service":
        for k in ("clusterIP", "clusterIPs"):
            c["spec"].pop(k, None)
    if o["kind"] == "Secret":
        c["data"] = sorted(c.get("data", {}))
    if o["kind"] == "ConfigMap" and "config" in c.get("data", {}):
        c["data"]["config"] = json.loads(c["data"]["config"])
    return c


@pytest.mark.parametrize("name", DEPLOY_FILES)
def test_chart_produces_the_objects_of_deploy(kube, ca_bundle, name):
    """The chart, with the values that stand for deploy/NAME, renders exactly its objects (but the
    Namespace, which `helm install --create-namespace` makes), equal after the server's defaults:
    container args, env, probes, volumes, RBAC rules, the MutatingWebhookConfiguration."""
    text = deploy_text(name, ca_bundle)
    ours = [o for o in dry_run(kube, text) if o["kind"] != "Namespace"]
    chart = dry_run(kube, template_text(_deploy_values(name, text, ca_bundle)))
    key = lambda o: (o["kind"], o["metadata"]["name"])  # noqa: E731
    assert sorted(map(key, chart)) == sorted(map(key, ours))
    by_key = {key(o): o for o in chart}
    for o in ours:
        twin = by_key[key(o)]
        assert _comparable(twin) == _comparable(o), f"{key(o)} differs between the chart and deploy/{name}"
        md, tmd = o["metadata"], twin["metadata"]
        assert tmd.get("namespace") == md.get("namespace")
        assert md.get("labels", {}).items() <= tmd.get("labels", {}).items()
        ann = {k: v for k, v in md.get("annotations", {}).items() if not k.startswith("kubectl.kubernetes.io/")}
        assert ann.items() <= tmd.get("annotations", {}).items()


def test_chart_cert_manager_annotation_is_the_one_deploy_documents(helm):
    """deploy/webhook.yaml names the cert-manager annotation in a comment; the chart's cert-manager
    mode sets exactly it."""
    m = re.search(r"#\s*(cert-manager\.io/inject-ca-from):\s*(\S+)", (DEPLOY / "webhook.yaml").read_text())
    assert m, "deploy/webhook.yaml no longer documents the cert-manager annotation"
    mwc = find(template({"clusterName": CLUSTER, "webhook": {"tls": {"mode": "certManager"}}}),
               "MutatingWebhookConfiguration", "podiam-webhook")
    assert mwc["metadata"]["annotations"] == {m.group(1): m.group(2)}


def test_chart_webhook_configuration_helper(kube, ca_bundle):
    """chart_webhook_configuration(url, ca_bundle): the chart's MutatingWebhookConfiguration
    calling `url`, accepted by the server, equal to deploy/webhook.yaml's but for the URL."""
    mwc = chart_webhook_configuration("https://127.0.0.1:18443/mutate", ca_bundle)
    (served,) = dry_run(kube, json.dumps(mwc))
    (ours,) = [o for o in documents(deploy_text("webhook.yaml", ca_bundle)) if o["kind"] == "MutatingWebhookConfiguration"]
    assert served["metadata"]["name"] == ours["metadata"]["name"]
    (hook,), (want,) = mwc["webhooks"], ours["webhooks"]
    assert hook["clientConfig"] == {"url": "https://127.0.0.1:18443/mutate", "caBundle": ca_bundle}
    assert {k: v for k, v in hook.items() if k != "clientConfig"} == {k: v for k, v in want.items() if k != "clientConfig"}
    assert chart_webhook_configuration("https://127.0.0.1:1/m", ca_bundle, {"webhook": {"failurePolicy": "Fail"}})[
        "webhooks"][0]["failurePolicy"] == "Fail"


# -------------------------------------------------------------------------------- refusals


INVALID_VALUES = {
    # name: (values, a fragment of helm's message)
    "SQLite with 3 replicas": ({"clusterName": CLUSTER, "controlPlane": {"replicas": 3}},
                               "SQLite allows exactly one writer"),
    "PostgreSQL without a URL or Secret": ({"clusterName": CLUSTER, "controlPlane": {"store": "postgres", "replicas": 3}},
                                           "needs controlPlane.postgres.url"),
    "PostgreSQL without a master key": ({"clusterName": CLUSTER, "controlPlane": {
        "store": "postgres", "postgres": {"url": "postgres://u:p@db:5432/podiam"}}}, "controlPlane.postgres.masterKey"),
    "PostgreSQL URL of another database": ({"clusterName": CLUSTER, "controlPlane": {
        "store": "postgres", "postgres": {"url": "mysql://u:p@db/podiam", "masterKey": MASTER_KEY}}},
        "/controlPlane/postgres/url"),
    "a master key that is not 32 bytes of base64": ({"clusterName": CLUSTER, "controlPlane": {
        "store": "postgres", "postgres": {"url": "postgres://u:p@db/podiam", "masterKey": "c2hvcnQ="}}},
        "/controlPlane/postgres/masterKey"),
    "an unknown store": ({"clusterName": CLUSTER, "controlPlane": {"store": "mysql"}}, "/controlPlane/store"),
    "webhook URL over http": ({"clusterName": CLUSTER, "webhook": {"url": "http://webhook.example.com/mutate"}},
                              "/webhook/url"),
    "agent without a cluster name": ({"webhook": {"enabled": False}}, "clusterName is required"),
    "webhook without a cluster name": ({"agent": {"enabled": False}}, "clusterName is required"),
    "no podiam URL and no control plane": ({"clusterName": CLUSTER, "controlPlane": {"enabled": False}},
                                           "podiamUrl is required"),
    "an access key without its secret": ({"clusterName": CLUSTER, "agent": {"credentials": {"accessKeyId": "AKIA1"}}},
                                         "accessKeyId and secretAccessKey go together"),
    "secret mode without a caBundle": ({"clusterName": CLUSTER, "webhook": {"tls": {"mode": "secret", "secretName": "x"}}},
                                       "needs webhook.tls.caBundle"),
    "a caBundle that is no PEM certificate": ({"clusterName": CLUSTER, "webhook": {"tls": {
        "mode": "secret", "caBundle": base64.b64encode(b"not a certificate").decode()}}}, "base64-encoded PEM certificate"),
    "an unknown TLS mode": ({"clusterName": CLUSTER, "webhook": {"tls": {"mode": "selfSigned"}}}, "/webhook/tls/mode"),
    "a misspelt value": ({"clusterName": CLUSTER, "webhok": {"enabled": False}}, "'webhok' not allowed"),
    "a misspelt nested value": ({"clusterName": CLUSTER, "agent": {"tolerartions": []}}, "'tolerartions' not allowed"),
    "a webhook timeout over 30 s": ({"clusterName": CLUSTER, "webhook": {"timeoutSeconds": 31}}, "/webhook/timeoutSeconds"),
    "an unknown failure policy": ({"clusterName": CLUSTER, "webhook": {"failurePolicy": "Retry"}}, "/webhook/failurePolicy"),
    "a ConfigMap entry without a role": ({"clusterName": CLUSTER, "webhook": {"serviceAccounts": {
        "config": {"default/app": {"Audience": "sts.amazonaws.com"}}}}}, "RoleARN"),
}


@pytest.mark.parametrize("name", list(INVALID_VALUES))
def test_invalid_values_are_refused(helm, name):
    values, fragment = INVALID_VALUES[name]
    # Each case is a valid value set but for the one fault.
    err = errors_of(values)
    assert fragment in err, err


def test_valid_neighbours_of_refused_values_render(helm):
    """The refusals above are about the one fault: fixed, each renders."""
    for values in ({"clusterName": CLUSTER, "controlPlane": {"replicas": 1}},
                   {"clusterName": CLUSTER, "controlPlane": {"store": "postgres", "replicas": 3, "postgres": {
                       "url": "postgresql://u:p@db:5432/podiam", "masterKey": MASTER_KEY}}},
                   {"clusterName": CLUSTER, "webhook": {"url": "https://webhook.example.com/mutate"}},
                   {"clusterName": CLUSTER, "controlPlane": {"enabled": False}, "podiamUrl": "https://p.example.com"},
                   {"clusterName": CLUSTER, "webhook": {"timeoutSeconds": 30}}):
        assert template(values)


def _chart_objects(values=None) -> list[dict]:
    return template(values or {"clusterName": CLUSTER})


def test_server_refuses_an_unknown_field(kube):
    objs = _chart_objects()
    ds = find(objs, "DaemonSet", "podiam-agent")
    ds["spec"]["template"]["spec"]["hostNetwrk"] = True
    p = dry_run_rc(kube, json.dumps(ds))
    assert p.returncode != 0
    assert 'unknown field "spec.template.spec.hostNetwrk"' in p.stderr, p.stderr


def test_server_refuses_a_selector_that_does_not_match(kube):
    d = find(_chart_objects(), "Deployment", "podiam-webhook")
    d["spec"]["selector"]["matchLabels"]["app"] = "something-else"
    p = dry_run_rc(kube, json.dumps(d))
    assert p.returncode != 0
    assert "selector" in p.stderr and "does not match template" in p.stderr, p.stderr


def test_server_refuses_a_webhook_with_both_url_and_service(kube):
    mwc = find(_chart_objects(), "MutatingWebhookConfiguration", "podiam-webhook")
    mwc["webhooks"][0]["clientConfig"]["url"] = "https://webhook.example.com/mutate"
    p = dry_run_rc(kube, json.dumps(mwc))
    assert p.returncode != 0
    assert "exactly one of url or service is required" in p.stderr, p.stderr


def test_server_refuses_an_unknown_certificate_field(kube):
    """The cert-manager subset is strict, so the chart's Certificate passing it means something."""
    cert = find(_chart_objects({"clusterName": CLUSTER, "webhook": {"tls": {"mode": "certManager"}}}),
                "Certificate", "podiam-webhook")
    cert["spec"]["dnsName"] = ["podiam-webhook.podiam.svc"]
    p = dry_run_rc(kube, json.dumps(cert))
    assert p.returncode != 0
    assert 'unknown field "spec.dnsName"' in p.stderr, p.stderr


def test_dry_runs_created_nothing(kube):
    out = json.loads(kube.kubectl("get", "deployments,daemonsets,secrets,mutatingwebhookconfigurations",
                                  "-A", "-o", "json"))
    assert [(o["kind"], o["metadata"]["name"]) for o in out["items"]] == []
