"""Direct mode of EKS Pod Identity: `podiam serve --enable-direct-pod-identity --tls-cert/--tls-key`
answers the container credentials request itself (for nodes that cannot run the agent). Shown over
HTTPS with a CA the test makes: python `requests`, aws-sdk-rust's container provider trusting that
CA through SSL_CERT_FILE, and boto3 and the AWS CLI, whose container provider trusts only certifi's
bundle (the test points botocore's bundle lookup at its CA). Off by default (404, as any unknown
path), and refused over plain HTTP even when on."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import re
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from podiam_e2e import ACCOUNT, AWS_CLI, REGION, VENV_PYTHON, REPO, Podiam, clean_env, make_ca_and_leaf, require

CLUSTER = "direct"
PI_AUD = "pods.eks.amazonaws.com"


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    return make_ca_and_leaf(tmp_path_factory.mktemp("tls"))


ENABLE = "--enable-direct-pod-identity"


@pytest.fixture(scope="module")
def servers(tmp_path_factory, tls):
    """The HTTPS server with direct mode on, a plain-HTTP one with direct mode on (whose direct
    requests are refused), and an HTTPS one with the default (off)."""
    ca, cert, key = tls
    tls_args = ["--tls-cert", str(cert), "--tls-key", str(key)]
    https = Podiam(tmp_path_factory.mktemp("https") / "data", extra_args=[ENABLE, *tls_args]).start()
    plain = Podiam(tmp_path_factory.mktemp("plain") / "data", extra_args=[ENABLE]).start()
    off = Podiam(tmp_path_factory.mktemp("off") / "data", extra_args=tls_args).start()
    yield https, plain, off
    for s in (https, plain, off):
        assert s.stop() == 0, s.log()[-2000:]


def setup_pod_identity(server: Podiam, ca: Path | None) -> None:
    kw = {"verify": str(ca)} if ca else {}
    eks, iam = server.client("eks", **kw), server.client("iam", **kw)
    eks.create_cluster(name=CLUSTER, roleArn=f"arn:aws:iam::{ACCOUNT}:role/eks", resourcesVpcConfig={"subnetIds": ["s"]})
    iam.create_role(RoleName="direct-app", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"}, "Action": ["sts:AssumeRole", "sts:TagSession"]}]}))
    eks.create_pod_identity_association(clusterName=CLUSTER, namespace="app", serviceAccount="web",
                                        roleArn=f"arn:aws:iam::{ACCOUNT}:role/direct-app")


def token(server: Podiam, sa: str = "web", aud: str = PI_AUD, ca: Path | None = None) -> str:
    env = server.env
    if ca:
        env["AWS_CA_BUNDLE"] = str(ca)
    p = subprocess.run([os.environ.get("PODIAM_BIN", str(REPO / "target/debug/podiam")), "token", "--cluster", CLUSTER,
                        "--namespace", "app", "--service-account", sa, "--audience", aud, "--pod-name", "web-1",
                        "--pod-uid", str(uuid.uuid4())], env=env, capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


def url(server: Podiam) -> str:
    return f"{server.endpoint}/podiam/pod-identity/{ACCOUNT}/{CLUSTER}/v1/credentials"


def test_https_endpoint_answers_like_the_agent(servers, tls):
    https, _, _ = servers
    ca = tls[0]
    assert https.endpoint.startswith("https://")
    setup_pod_identity(https, ca)
    r = requests.get(url(https), headers={"Authorization": token(https, ca=ca)}, verify=str(ca), timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert set(body) == {"AccessKeyId", "SecretAccessKey", "Token", "AccountId", "Expiration"}
    assert body["AccountId"] == ACCOUNT and body["AccessKeyId"].startswith("ASIA")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["Expiration"]), body["Expiration"]
    # plain HTTP to the HTTPS port is refused by TLS, not answered
    with pytest.raises(requests.RequestException):
        requests.get(url(https).replace("https://", "http://"), headers={"Authorization": "x"}, timeout=5)


def test_https_refusals(servers, tls):
    https, _, _ = servers
    ca = str(tls[0])
    # refusals use the agent's status codes and error line
    r = requests.get(url(https), verify=ca, timeout=10)
    assert r.status_code == 400 and "Service account token cannot be empty" in r.text
    r = requests.get(url(https), headers={"Authorization": "garbage"}, verify=ca, timeout=10)
    assert r.status_code == 400 and re.match(r"\[[0-9a-f-]+\]: \(InvalidParameterException\): .*, fault: client\n", r.text), r.text
    r = requests.get(url(https), headers={"Authorization": token(https, aud="sts.amazonaws.com", ca=tls[0])}, verify=ca, timeout=10)
    assert r.status_code == 400 and "(InvalidTokenException)" in r.text, r.text
    r = requests.get(url(https), headers={"Authorization": token(https, sa="nobody", ca=tls[0])}, verify=ca, timeout=10)
    assert r.status_code == 404 and "(ResourceNotFoundException)" in r.text, r.text
    # An anonymous caller learns nothing of which clusters (or accounts) exist: a cluster that
    # does not exist answers exactly as a token that does not verify.
    def line(r):
        return r.status_code, re.sub(r"^\[[0-9a-f-]+\]: ", "", r.text).replace("nope", CLUSTER).replace("999988887777", ACCOUNT)
    forged = token(https, ca=tls[0])
    forged = forged[: forged.rindex(".") + 1] + "A" * 20
    bad_sig = requests.get(url(https), headers={"Authorization": forged}, verify=ca, timeout=10)
    assert bad_sig.status_code == 400 and "(InvalidTokenException)" in bad_sig.text, bad_sig.text
    for other in (url(https).replace(f"/{CLUSTER}/", "/nope/"), url(https).replace(f"/{ACCOUNT}/", "/999988887777/")):
        for tok in (token(https, ca=tls[0]), forged):
            r = requests.get(other, headers={"Authorization": tok}, verify=ca, timeout=10)
            assert line(r) == line(bad_sig), (r.text, bad_sig.text)
    r = requests.get(f"{https.endpoint}/podiam/pod-identity/{ACCOUNT}/{CLUSTER}/other", verify=ca, timeout=10)
    assert r.status_code == 404


def pod_env(server: Podiam, token_file: Path, **extra: str) -> dict[str, str]:
    return clean_env(AWS_CONTAINER_CREDENTIALS_FULL_URI=url(server), AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=str(token_file),
                     AWS_ENDPOINT_URL=server.endpoint, AWS_REGION=REGION, AWS_DEFAULT_REGION=REGION,
                     AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull, **extra)


def test_aws_sdk_rust_over_https(servers, tls, tmp_path):
    https, _, _ = servers
    ca = tls[0]
    sdk = REPO / "target" / "debug" / "podiam-sdk-e2e"
    require(sdk.exists(), "podiam-sdk-e2e is not built (scripts/test.sh builds it)")
    tok = tmp_path / "token"
    tok.write_text(token(https, ca=ca))
    p = subprocess.run([str(sdk), "default-chain"], env=pod_env(https, tok, SSL_CERT_FILE=str(ca)),
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert re.search(rf"ARN=arn:aws:sts::{ACCOUNT}:assumed-role/direct-app/eks-{CLUSTER}-web-1-", p.stdout), p.stdout


# botocore's container provider verifies with certifi's bundle only (not AWS_CA_BUNDLE): point
# that lookup at the test's CA. Everything else is the unmodified SDK and CLI.
TRUST_CA = "import os, botocore.httpsession as h; h.where = lambda: os.environ['TEST_CA']; "


def test_boto3_and_the_cli_over_https(servers, tls, tmp_path):
    https, _, _ = servers
    ca = tls[0]
    tok = tmp_path / "token"
    tok.write_text(token(https, ca=ca))
    env = pod_env(https, tok, AWS_CA_BUNDLE=str(ca), TEST_CA=str(ca))
    code = TRUST_CA + "import boto3; print(boto3.client('sts').get_caller_identity()['Arn'])"
    p = subprocess.run([VENV_PYTHON, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith(f"arn:aws:sts::{ACCOUNT}:assumed-role/direct-app/eks-{CLUSTER}-web-1-"), p.stdout
    cli = TRUST_CA + "import sys; from awscli.clidriver import main; sys.exit(main())"
    p = subprocess.run([VENV_PYTHON, "-c", cli, "sts", "get-caller-identity", "--output", "json"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["Arn"].startswith(f"arn:aws:sts::{ACCOUNT}:assumed-role/direct-app/eks-{CLUSTER}-web-1-")
    # an unknown service account's pod gets no credentials from the chain
    tok.write_text(token(https, sa="nobody", ca=ca))
    p = subprocess.run([VENV_PYTHON, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and ("NoCredentials" in p.stderr or "CredentialRetrievalError" in p.stderr), p.stderr


def test_plain_http_is_refused_even_when_enabled(servers, tmp_path):
    _, plain, _ = servers
    assert plain.endpoint.startswith("http://")
    assert "no --tls-cert: every such request will be refused" in plain.log()
    setup_pod_identity(plain, None)
    good = token(plain)
    for headers in ({"Authorization": good}, {}):
        r = requests.get(url(plain), headers=headers, timeout=10)
        assert r.status_code == 403, r.text
        assert re.fullmatch(r"\[[0-9a-f-]+\]: \(AccessDeniedException\): direct-mode Pod Identity is served over HTTPS only, "
                            r"fault: client\n", r.text), r.text
    # and so the SDK's container provider gets nothing
    tok = tmp_path / "token"
    tok.write_text(good)
    code = "import boto3; print(boto3.client('sts').get_caller_identity()['Arn'])"
    p = subprocess.run([VENV_PYTHON, "-c", code], env=pod_env(plain, tok), capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and ("NoCredentials" in p.stderr or "CredentialRetrievalError" in p.stderr), p.stderr


def test_off_by_default_answers_as_an_unknown_path(servers, tls):
    _, _, off = servers
    ca = str(tls[0])
    setup_pod_identity(off, tls[0])
    unknown = requests.get(f"{off.endpoint}/no/such/path", verify=ca, timeout=10)
    assert unknown.status_code == 404
    for path in (url(off), f"{off.endpoint}/podiam/pod-identity/{ACCOUNT}/{CLUSTER}/other"):
        r = requests.get(path, headers={"Authorization": token(off, ca=tls[0])}, verify=ca, timeout=10)
        assert r.status_code == 404, r.text
        assert r.headers["x-amzn-errortype"] == unknown.headers["x-amzn-errortype"] == "UnknownOperationException"
        assert r.headers["content-type"] == unknown.headers["content-type"]
        assert "SecretAccessKey" not in r.text
