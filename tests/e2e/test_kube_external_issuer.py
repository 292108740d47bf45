"""External issuer mode with a real kube-apiserver: the cluster signs service-account tokens with
keys of its own (podiam never sees them) and serves its issuer's discovery document and JWKS
itself, the way a self-managed cluster is registered in AWS IAM.

kube-apiserver (scripts/kube.sh's binaries, no kubelet: pods stay Pending) listens on port 443 of
a random loopback address 127.x.y.z, with `--service-account-issuer https://127.x.y.z` and
`--service-account-jwks-uri https://127.x.y.z/openid/v1/jwks`; it serves its certificate followed
by its CA's, and its discovery is opened to anonymous callers as Kubernetes documents it
(`--anonymous-auth=true` and a ClusterRoleBinding of `system:service-account-issuer-discovery` to
the group `system:unauthenticated`). podiam registers the issuer with
`iam create-open-id-connect-provider --thumbprint-list <SHA-1 of the cluster CA>`, and a token
from the TokenRequest API (`kubectl create token`, bound to a pod created through the API) is
exchanged with AssumeRoleWithWebIdentity: podiam fetched the apiserver's discovery document and
JWKS over TLS trusted by the thumbprint alone.

Without the binaries, port 443 or an apiserver that starts, the module skips (fails under
CI=true)."""

from __future__ import annotations

import hashlib
import json
import ssl
import time
import urllib.error
import urllib.request

import jwt
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

import kube_e2e
from kube_e2e import ControlPlane, KubeUnavailable, free_loopback_address, kube_bin
from podiam_e2e import (
    ACCOUNT,
    REGION,
    STS_AUDIENCE,
    VENV_PYTHON,
    Podiam,
    expect_error,
    irsa_trust,
    jwt_parts,
    require,
    self_signed_cert,
    xml_text,
)

NS = "shop"
SA = "checkout"
POD = "checkout-5c8d"
ROLE = "kube-ext-role"
DISCOVERY = "/.well-known/openid-configuration"
JWKS = "/openid/v1/jwks"



def thumbprint(pem_file) -> str:
    """IAM's thumbprint of a certificate: the SHA-1 of its DER encoding, in hex."""
    cert = x509.load_pem_x509_certificate(pem_file.read_bytes())
    return hashlib.sha1(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def anonymous_get(kube, path: str) -> tuple[int, bytes, dict]:
    """GET `path` of the apiserver without credentials, TLS verified with the cluster CA."""
    ctx = ssl.create_default_context(cafile=str(kube.pki / "ca.crt"))
    try:
        with urllib.request.urlopen(f"{kube.issuer}{path}", timeout=10, context=ctx) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


@pytest.fixture(scope="module")
def kube(tmp_path_factory, request):
    """kube-apiserver on https://127.x.y.z (port 443) with service-account keys of its own,
    serving its issuer's discovery to anonymous callers."""
    try:
        bin_dir = kube_bin()
        ip = free_loopback_address(443)
    except KubeUnavailable as e:
        require(False, f"the Kubernetes control plane is unavailable: {e}")
    cp = ControlPlane(tmp_path_factory.mktemp("kube-ext") / "cp", bin_dir, host=ip, secure_port=443,
                      serve_chain=True, anonymous_auth=True)
    cp.issuer = f"https://{ip}"
    try:
        cp.start([f"--service-account-issuer={cp.issuer}",
                  f"--service-account-jwks-uri={cp.issuer}{JWKS}",
                  f"--service-account-key-file={cp.pki / 'sa.pub'}",
                  f"--service-account-signing-key-file={cp.pki / 'sa.key'}"])
    except KubeUnavailable as e:
        cp.stop()
        require(False, f"the Kubernetes control plane is unavailable: {e}")
    try:
        # Anonymous callers are authenticated, but the default binding of the discovery role is
        # to system:serviceaccounts only.
        cp.before_binding = {p: anonymous_get(cp, p)[0] for p in (DISCOVERY, JWKS)}
        cp.kubectl("create", "clusterrolebinding", "service-account-issuer-discovery-anonymous",
                   "--clusterrole=system:service-account-issuer-discovery", "--group=system:unauthenticated")
        deadline = time.monotonic() + 30  # RBAC's informer sees the binding within moments
        while anonymous_get(cp, DISCOVERY)[0] != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
    except BaseException:
        cp.stop()
        raise
    cp.ca_thumbprint = thumbprint(cp.pki / "ca.crt")
    cp.leaf_thumbprint = thumbprint(cp.pki / "apiserver.crt")
    yield cp
    if request.session.testsfailed:
        print(f"\n--- kube-apiserver log (tail) ---\n{cp.log('kube-apiserver')[-4000:]}")
    cp.stop()


@pytest.fixture(scope="module")
def pod(kube):
    """Namespace shop, ServiceAccount checkout and a Pod running as it, created through the API."""
    kube.kubectl("create", "namespace", NS)
    kube.kubectl("create", "serviceaccount", SA, "-n", NS)
    return kube.apply({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": POD, "namespace": NS},
        "spec": {"serviceAccountName": SA,
                 "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]}})


def register(podiam: Podiam, kube, thumbprints: list[str]) -> str:
    """`iam create-open-id-connect-provider` for the apiserver's issuer, with the AWS CLI."""
    args = ["iam", "create-open-id-connect-provider", "--url", kube.issuer, "--client-id-list", STS_AUDIENCE]
    if thumbprints:
        args += ["--thumbprint-list", *thumbprints]
    return podiam.aws(*args)["OpenIDConnectProviderArn"]


def trusting_role(podiam: Podiam, kube, name: str = ROLE, ns: str = NS, sa: str = SA) -> str:
    """A role trusting system:serviceaccount:<ns>:<sa> of the apiserver's issuer, audience STS."""
    hostpath = kube.issuer.removeprefix("https://")
    podiam.client("iam").create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(
        irsa_trust(hostpath, f"system:serviceaccount:{ns}:{sa}")))
    return f"arn:aws:iam::{ACCOUNT}:role/{name}"


@pytest.fixture(scope="module")
def provider(server, kube):
    """The apiserver's issuer as podiam's OIDC provider (trusted by the cluster CA's thumbprint)
    and a role trusting shop/checkout."""
    arn = register(server, kube, [kube.ca_thumbprint])
    assert arn == f"arn:aws:iam::{ACCOUNT}:oidc-provider/{kube.issuer.removeprefix('https://')}"
    return {"arn": arn, "role": trusting_role(server, kube)}


@pytest.fixture
def fresh(tmp_path):
    """A podiam of its own (so its provider for the apiserver's URL can be registered anew)."""
    p = Podiam(tmp_path / "data").start()
    yield p
    assert p.stop() == 0, p.log()[-3000:]


def create_token(kube, pod: dict | None = None, audience: str | None = STS_AUDIENCE, sa: str = SA,
                 ns: str = NS) -> str:
    """`kubectl create token` (the TokenRequest API), bound to `pod` if given; the apiserver's
    own audience when `audience` is None."""
    args = ["create", "token", sa, "-n", ns]
    if audience is not None:
        args += ["--audience", audience]
    if pod is not None:
        m = pod["metadata"]
        args += ["--bound-object-kind", "Pod", "--bound-object-name", m["name"], "--bound-object-uid", m["uid"]]
    return kube.kubectl(*args).strip()


def as_pod(server, tmp_path, role_arn: str, token: str) -> dict:
    """boto3's default chain in a fresh process with exactly the environment IRSA gives a pod."""
    return kube_e2e.as_pod(server.endpoint, REGION, VENV_PYTHON, tmp_path, role_arn, token)


def fetch_metrics(server: Podiam, issuer: str) -> tuple[str | None, str | None]:
    """(podiam_jwks_fetches_total, podiam_jwks_fetch_failures_total) of `issuer`."""
    text = requests.get(f"{server.endpoint}/metrics", timeout=10).text
    samples = dict(line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))
    return (samples.get(f'podiam_jwks_fetches_total{{issuer="{issuer}"}}'),
            samples.get(f'podiam_jwks_fetch_failures_total{{issuer="{issuer}"}}'))


# ------------------------------------------------------------------------------ the issuer


def test_discovery_is_served_to_anonymous_callers_once_bound(kube):
    # without the binding, anonymous callers are authenticated and refused by RBAC
    assert kube.before_binding == {DISCOVERY: 403, JWKS: 403}
    status, body, headers = anonymous_get(kube, DISCOVERY)
    assert status == 200, body
    doc = json.loads(body)
    assert doc["issuer"] == kube.issuer
    assert doc["jwks_uri"] == f"{kube.issuer}{JWKS}"
    assert doc["id_token_signing_alg_values_supported"] == ["ES256"]  # the EC key of --service-account-*
    status, body, headers = anonymous_get(kube, JWKS)
    assert status == 200, body
    assert headers["Content-Type"] == "application/jwk-set+json"
    keys = json.loads(body)["keys"]
    assert [(k["kty"], k["crv"], k["alg"]) for k in keys] == [("EC", "P-256", "ES256")]


def test_the_token_names_the_apiserver_as_issuer(kube, pod):
    token = create_token(kube, pod)
    header, claims = jwt_parts(token)
    assert header["alg"] == "ES256"
    assert header["kid"] in {k["kid"] for k in json.loads(anonymous_get(kube, JWKS)[1])["keys"]}
    assert claims["iss"] == kube.issuer
    assert claims["sub"] == f"system:serviceaccount:{NS}:{SA}"
    assert claims["aud"] == [STS_AUDIENCE]
    assert claims["kubernetes.io"]["pod"] == {"name": POD, "uid": pod["metadata"]["uid"]}


# ------------------------------------------------------------------------------ accepted


def test_irsa_through_the_default_chain_with_a_pod_bound_token(server, kube, provider, pod, tmp_path):
    out = as_pod(server, tmp_path, provider["role"], create_token(kube, pod))
    assert out.get("method") == "assume-role-with-web-identity", out
    assert out["ok"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/{ROLE}/kube-pod", out
    assert out["ok"]["Account"] == ACCOUNT


def test_assume_role_with_web_identity_names_the_provider(server, kube, provider, pod):
    r = server.assume_web(provider["role"], create_token(kube, pod), "kube-ext")
    assert r.status_code == 200, r.text
    assert xml_text(r.text, "Provider") == provider["arn"]
    assert xml_text(r.text, "SubjectFromWebIdentityToken") == f"system:serviceaccount:{NS}:{SA}"
    assert xml_text(r.text, "Audience") == STS_AUDIENCE
    creds = {k: xml_text(r.text, k) for k in ("AccessKeyId", "SecretAccessKey", "SessionToken")}
    assert server.client("sts", creds).get_caller_identity()["Arn"] == \
        f"arn:aws:sts::{ACCOUNT}:assumed-role/{ROLE}/kube-ext"


def test_a_token_not_bound_to_a_pod_and_with_several_audiences(server, kube, provider):
    token = kube.kubectl("create", "token", SA, "-n", NS, "--audience", "vault",
                         "--audience", STS_AUDIENCE).strip()
    assert jwt_parts(token)[1]["aud"] == ["vault", STS_AUDIENCE]
    r = server.assume_web(provider["role"], token, "multi-aud")
    assert r.status_code == 200, r.text
    assert xml_text(r.text, "Audience") == STS_AUDIENCE


def test_keys_are_fetched_once_and_cached(server, kube, provider, pod):
    for i in range(3):
        assert server.assume_web(provider["role"], create_token(kube, pod), f"cached-{i}").status_code == 200
    assert fetch_metrics(server, kube.issuer) == ("1", None)


def test_the_leaf_thumbprint_pins_the_serving_certificate(fresh, kube, pod):
    register(fresh, kube, [kube.leaf_thumbprint])
    r = fresh.assume_web(trusting_role(fresh, kube), create_token(kube, pod), "leaf")
    assert r.status_code == 200, r.text


# ------------------------------------------------------------------------------ refused


def test_a_wrong_thumbprint_until_it_is_corrected(fresh, kube, pod):
    """A real thumbprint of an unrelated certificate: the TLS handshake fails, podiam answers
    IDPCommunicationError; after update-open-id-connect-provider-thumbprint to the cluster CA's
    the same kind of token works at once (the keys are cached under what trusted them, so the
    failure's backoff does not carry over)."""
    other, _ = self_signed_cert(("localhost",), (kube.host,))
    wrong = hashlib.sha1(other.public_bytes(serialization.Encoding.DER)).hexdigest()
    arn = register(fresh, kube, [wrong])
    role = trusting_role(fresh, kube)
    expect_error(fresh.assume_web(role, create_token(kube, pod)), 400, "IDPCommunicationError")
    assert fetch_metrics(fresh, kube.issuer) == ("1", "1")
    fresh.aws("iam", "update-open-id-connect-provider-thumbprint", "--open-id-connect-provider-arn", arn,
              "--thumbprint-list", kube.ca_thumbprint)
    r = fresh.assume_web(role, create_token(kube, pod), "corrected")
    assert r.status_code == 200, r.text
    assert fetch_metrics(fresh, kube.issuer) == ("2", "1")


def test_no_thumbprint_and_a_cluster_ca_not_in_the_system_roots(fresh, kube, pod):
    register(fresh, kube, [])
    expect_error(fresh.assume_web(trusting_role(fresh, kube), create_token(kube, pod)), 400,
                 "IDPCommunicationError")


def test_another_service_account_of_the_cluster(server, kube, provider, pod, tmp_path):
    kube.kubectl("create", "serviceaccount", "intruder", "-n", NS)
    out = as_pod(server, tmp_path, provider["role"], create_token(kube, sa="intruder"))
    assert out == {"code": "AccessDenied", "status": 403}


def test_the_same_service_account_name_in_another_namespace(server, kube, provider, pod, tmp_path):
    kube.kubectl("create", "namespace", "staging")
    kube.kubectl("create", "serviceaccount", SA, "-n", "staging")
    token = create_token(kube, ns="staging")
    assert jwt_parts(token)[1]["sub"] == f"system:serviceaccount:staging:{SA}"
    assert as_pod(server, tmp_path, provider["role"], token) == {"code": "AccessDenied", "status": 403}


def test_a_wrong_audience(server, kube, provider, pod):
    token = create_token(kube, pod, audience="vault")
    err = expect_error(server.assume_web(provider["role"], token), 400, "InvalidIdentityToken")
    assert "audience" in err["Message"], err


def test_the_apiservers_own_audience(server, kube, provider, pod):
    """A token for the apiserver itself (no --audience: the issuer URL) authenticates there, and
    is not an STS token."""
    token = create_token(kube, pod, audience=None)
    assert jwt_parts(token)[1]["aud"] == [kube.issuer]
    assert kube.whoami(token)["username"] == f"system:serviceaccount:{NS}:{SA}"
    err = expect_error(server.assume_web(provider["role"], token), 400, "InvalidIdentityToken")
    assert "audience" in err["Message"], err


def test_a_hosted_issuer_token_for_this_providers_role(server, kube, provider, pod):
    """The same namespace and service account from podiam's hosted issuer (another cluster,
    registered too) are another principal; and the reverse, the apiserver's token for the hosted
    cluster's role."""
    hosted = server.irsa("kube-ext-hosted", "kube-ext-hosted-role", sa=SA, ns=NS)
    token = server.token("kube-ext-hosted", NS, SA, audience=[STS_AUDIENCE])
    assert server.assume_web(hosted["role_arn"], token).status_code == 200
    expect_error(server.assume_web(provider["role"], token), 403, "AccessDenied")
    expect_error(server.assume_web(hosted["role_arn"], create_token(kube, pod)), 403, "AccessDenied")


def test_a_token_signed_by_another_key_under_this_issuer(server, kube, provider, pod):
    """What another apiserver configured with the same issuer URL would sign: the same claims and
    kid, another key."""
    header, claims = jwt_parts(create_token(kube, pod))
    other = ec.generate_private_key(ec.SECP256R1())
    forged = jwt.encode(claims, other, algorithm="ES256", headers={"kid": header["kid"]})
    no_kid = jwt.encode(claims, other, algorithm="ES256")  # the issuer publishes a single key
    for token in (forged, no_kid):
        err = expect_error(server.assume_web(provider["role"], token), 400, "InvalidIdentityToken")
        assert "signature" in err["Message"], err


def test_a_ca_thumbprint_needs_the_ca_in_the_served_chain(fresh, kube, pod):
    """kube-apiserver serving its certificate alone (the usual --tls-cert-file): the cluster CA's
    thumbprint names no certificate podiam is shown, and the TLS handshake is not trusted (as in
    AWS, whose thumbprint is of the top certificate the server sends); the leaf's pins it."""
    kube.serve_chain = False
    try:
        kube.start_apiserver(kube.apiserver_flags)  # etcd, the binding and the pod stay
        arn = register(fresh, kube, [kube.ca_thumbprint])
        role = trusting_role(fresh, kube)
        expect_error(fresh.assume_web(role, create_token(kube, pod)), 400, "IDPCommunicationError")
        fresh.aws("iam", "update-open-id-connect-provider-thumbprint", "--open-id-connect-provider-arn", arn,
                  "--thumbprint-list", kube.leaf_thumbprint)
        r = fresh.assume_web(role, create_token(kube, pod), "leaf-only")
        assert r.status_code == 200, r.text
    finally:
        kube.serve_chain = True
        kube.start_apiserver(kube.apiserver_flags)
