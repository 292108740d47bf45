"""IRSA end to end with the unmodified AWS CLI (the venv's): an EKS cluster with a podiam-hosted
issuer, its OIDC provider, a role trusting one service account, `podiam token`, then
AssumeRoleWithWebIdentity and GetCallerIdentity with the returned credentials. Also ES256 issuers
and key rotation."""

from __future__ import annotations

import json
import re
import time

import jwt
import pytest
import requests

from podiam_e2e import ACCOUNT, AwsCliError, irsa_trust, jwk_to_public_key, jwt_parts

ROLE = "irsa-cli-role"
SA_SUB = "system:serviceaccount:default:my-sa"


def create_cluster(server, name: str, *extra: str) -> dict:
    return server.aws("eks", "create-cluster", "--name", name, "--role-arn", f"arn:aws:iam::{ACCOUNT}:role/eks",
                      "--resources-vpc-config", "subnetIds=subnet-1", *extra)["cluster"]


def assume_cli(server, role_arn: str, token: str, tmp_path, session: str = "s1", *extra: str):
    tok = tmp_path / f"tok-{session}"
    tok.write_text(token)
    # the CLI reaches an unsigned STS call with the root profile's endpoint; credentials unused
    return server.aws("sts", "assume-role-with-web-identity", "--role-arn", role_arn, "--role-session-name", session,
                      "--web-identity-token", f"file://{tok}", *extra)


def caller(server, creds: dict) -> dict:
    return server.aws("sts", "get-caller-identity", env=server.creds_env(creds))


@pytest.fixture(scope="module")
def demo(server):
    c = create_cluster(server, "demo")
    assert c["name"] == "demo" and c["status"] == "ACTIVE"
    described = server.aws("eks", "describe-cluster", "--name", "demo")["cluster"]
    issuer = described["identity"]["oidc"]["issuer"]
    assert issuer == c["identity"]["oidc"]["issuer"]
    assert re.fullmatch(r"https://oidc\.podiam\.local/id/[0-9A-F]{32}", issuer), issuer
    hostpath = issuer.removeprefix("https://")
    arn = server.aws("iam", "create-open-id-connect-provider", "--url", issuer,
                     "--client-id-list", "sts.amazonaws.com")["OpenIDConnectProviderArn"]
    assert arn == f"arn:aws:iam::{ACCOUNT}:oidc-provider/{hostpath}"
    role = server.aws("iam", "create-role", "--role-name", ROLE, "--assume-role-policy-document",
                      json.dumps(irsa_trust(hostpath, SA_SUB)))["Role"]
    assert role["Arn"] == f"arn:aws:iam::{ACCOUNT}:role/{ROLE}"
    return {"issuer": issuer, "hostpath": hostpath, "id": hostpath.rsplit("/", 1)[1], "role_arn": role["Arn"],
            "provider_arn": arn}


def test_discovery_and_jwks_are_served(server, demo):
    doc = requests.get(f"{server.endpoint}/id/{demo['id']}/.well-known/openid-configuration", timeout=10).json()
    assert doc["issuer"] == demo["issuer"]
    assert doc["jwks_uri"] == demo["issuer"] + "/keys"
    assert "RS256" in doc["id_token_signing_alg_values_supported"]
    keys = server.jwks(demo["id"])["keys"]
    assert len(keys) == 1 and keys[0]["kty"] == "RSA" and keys[0]["alg"] == "RS256" and keys[0]["kid"]
    assert "d" not in keys[0] and "p" not in keys[0], "private key material in the JWKS"


def test_unknown_issuer_documents_are_404(server, demo):
    assert requests.get(f"{server.endpoint}/id/{'0' * 32}/keys", timeout=10).status_code == 404
    assert requests.get(f"{server.endpoint}/id/{'0' * 32}/.well-known/openid-configuration", timeout=10).status_code == 404


def test_token_claims_and_signature(server, demo):
    tok = server.token("demo", "default", "my-sa")
    header, claims = jwt_parts(tok)
    assert header["alg"] == "RS256"
    assert claims["iss"] == demo["issuer"] and claims["sub"] == SA_SUB
    assert claims["aud"] in (["sts.amazonaws.com"], "sts.amazonaws.com")
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["kubernetes.io"]["namespace"] == "default"
    assert claims["kubernetes.io"]["serviceaccount"]["name"] == "my-sa"
    jwk = next(k for k in server.jwks(demo["id"])["keys"] if k["kid"] == header["kid"])
    # an independent verifier (PyJWT) accepts the token with the served key
    verified = jwt.decode(tok, jwk_to_public_key(jwk), algorithms=["RS256"], audience="sts.amazonaws.com",
                          issuer=demo["issuer"])
    assert verified["sub"] == SA_SUB


def test_token_options(server, demo):
    tok = server.token("demo", "ns1", "sa1", audience=["a1", "a2"], pod=("web-0", "5c8e0000-0000-4000-8000-000000000001"),
                       expiration=600)
    _, c = jwt_parts(tok)
    assert c["sub"] == "system:serviceaccount:ns1:sa1"
    assert c["aud"] == ["a1", "a2"]
    assert c["exp"] - c["iat"] == 600
    assert c["kubernetes.io"]["pod"]["name"] == "web-0"
    assert c["kubernetes.io"]["pod"]["uid"] == "5c8e0000-0000-4000-8000-000000000001"


def test_assume_role_with_web_identity_and_caller_identity(server, demo, tmp_path):
    tok = server.token("demo", "default", "my-sa")
    out = assume_cli(server, demo["role_arn"], tok, tmp_path, "s1")
    assert out["SubjectFromWebIdentityToken"] == SA_SUB
    assert out["Audience"] == "sts.amazonaws.com"
    assert out["Provider"] == f"arn:aws:iam::{ACCOUNT}:oidc-provider/{demo['hostpath']}"
    assert out["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/{ROLE}/s1"
    assert re.fullmatch(r"AROA[A-Z0-9]+:s1", out["AssumedRoleUser"]["AssumedRoleId"])
    creds = out["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA") and creds["SessionToken"]
    me = caller(server, creds)
    assert me["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/{ROLE}/s1"
    assert me["Account"] == ACCOUNT
    assert me["UserId"] == out["AssumedRoleUser"]["AssumedRoleId"]


def test_assumed_role_without_identity_policy_is_denied_iam(server, demo, tmp_path):
    out = assume_cli(server, demo["role_arn"], server.token("demo"), tmp_path, "s2")
    rc, _, err = server.aws_rc("iam", "list-roles", env=server.creds_env(out["Credentials"]))
    assert rc != 0 and "(AccessDenied)" in err, err


def test_cli_wrong_service_account_is_denied(server, demo, tmp_path):
    with pytest.raises(AwsCliError) as e:
        assume_cli(server, demo["role_arn"], server.token("demo", "default", "other-sa"), tmp_path, "s3")
    assert e.value.code == "AccessDenied"


def test_cli_altered_secret_is_rejected(server, demo, tmp_path):
    creds = dict(assume_cli(server, demo["role_arn"], server.token("demo"), tmp_path, "s4")["Credentials"])
    creds["SecretAccessKey"] = creds["SecretAccessKey"][:-1] + ("A" if creds["SecretAccessKey"][-1] != "A" else "B")
    rc, _, err = server.aws_rc("sts", "get-caller-identity", env=server.creds_env(creds))
    assert rc != 0 and "(SignatureDoesNotMatch)" in err, err


def test_cli_cluster_errors(server, demo):
    rc, _, err = server.aws_rc("eks", "describe-cluster", "--name", "no-such-cluster")
    assert rc != 0 and "(ResourceNotFoundException)" in err, err
    rc, _, err = server.aws_rc("eks", "create-cluster", "--name", "demo", "--role-arn", f"arn:aws:iam::{ACCOUNT}:role/eks",
                               "--resources-vpc-config", "subnetIds=subnet-1")
    assert rc != 0 and "(ResourceInUseException)" in err, err


def test_cli_duplicate_provider(server, demo):
    rc, _, err = server.aws_rc("iam", "create-open-id-connect-provider", "--url", demo["issuer"],
                               "--client-id-list", "sts.amazonaws.com")
    assert rc != 0 and "(EntityAlreadyExists)" in err, err


def test_token_command_errors(server, demo):
    p = server.podiam("token", "--cluster", "no-such-cluster", "--namespace", "default", "--service-account", "x")
    assert p.returncode != 0 and p.stdout == "", (p.returncode, p.stdout)
    p = server.podiam("token", "--cluster", "demo", "--namespace", "default", "--service-account", "x", "--expiration", "599")
    assert p.returncode != 0 and p.stdout == ""


def test_es256_cluster(server, tmp_path):
    c = create_cluster(server, "demo-ec", "--tags", "podiam.io/issuer-algorithm=ES256")
    issuer = c["identity"]["oidc"]["issuer"]
    hostpath = issuer.removeprefix("https://")
    issuer_id = hostpath.rsplit("/", 1)[1]
    keys = server.jwks(issuer_id)["keys"]
    assert [(k["kty"], k.get("crv"), k.get("alg")) for k in keys] == [("EC", "P-256", "ES256")]
    doc = requests.get(f"{server.endpoint}/id/{issuer_id}/.well-known/openid-configuration", timeout=10).json()
    assert doc["id_token_signing_alg_values_supported"] == ["ES256"]
    server.aws("iam", "create-open-id-connect-provider", "--url", issuer, "--client-id-list", "sts.amazonaws.com")
    server.aws("iam", "create-role", "--role-name", "irsa-ec", "--assume-role-policy-document",
               json.dumps(irsa_trust(hostpath, SA_SUB)))
    tok = server.token("demo-ec")
    header, _ = jwt_parts(tok)
    assert header["alg"] == "ES256" and header["kid"] == keys[0]["kid"]
    jwt.decode(tok, jwk_to_public_key(keys[0]), algorithms=["ES256"], audience="sts.amazonaws.com")
    out = assume_cli(server, f"arn:aws:iam::{ACCOUNT}:role/irsa-ec", tok, tmp_path, "ec")
    assert out["Provider"] == f"arn:aws:iam::{ACCOUNT}:oidc-provider/{hostpath}"
    assert caller(server, out["Credentials"])["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/irsa-ec/ec"


def test_unknown_issuer_algorithm_tag_is_rejected(server):
    rc, _, err = server.aws_rc("eks", "create-cluster", "--name", "demo-bad-alg", "--role-arn",
                               f"arn:aws:iam::{ACCOUNT}:role/eks", "--resources-vpc-config", "subnetIds=subnet-1",
                               "--tags", "podiam.io/issuer-algorithm=HS256")
    assert rc != 0 and "(InvalidParameterException)" in err, err


def test_key_rotation_keeps_old_tokens_valid(server, demo, tmp_path):
    """The new key is in the JWKS at once but signs only from its activation time; the old key
    signs until then and keeps verifying afterwards."""
    before = server.token("demo")
    kid_before = jwt_parts(before)[0]["kid"]
    p = server.podiam("issuer", "rotate", "--cluster", "demo")
    assert p.returncode == 0, p.stderr
    m = re.fullmatch(r"new signing key: (\S+) \(in the JWKS now, signs from (\d+)\)\n", p.stdout)
    assert m, p.stdout
    kid_new, active_from = m.group(1), int(m.group(2))
    assert active_from > time.time() - 1, (active_from, time.time())
    keys = server.jwks(demo["id"])["keys"]
    assert len(keys) == 2 and {k["kid"] for k in keys} == {kid_before, kid_new}
    pending = server.token("demo")
    if jwt_parts(pending)[1]["iat"] < active_from:
        assert jwt_parts(pending)[0]["kid"] == kid_before, "the new key signed before its activation"
    time.sleep(max(0.0, active_from - time.time()) + 0.1)
    after = server.token("demo")
    kid_after = jwt_parts(after)[0]["kid"]
    assert kid_after == kid_new
    # a token minted before the rotation still verifies, and so does one signed with the new key
    old = assume_cli(server, demo["role_arn"], before, tmp_path, "before-rotation")
    assert old["AssumedRoleUser"]["Arn"].endswith("/before-rotation")
    new = assume_cli(server, demo["role_arn"], after, tmp_path, "after-rotation")
    assert caller(server, new["Credentials"])["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/{ROLE}/after-rotation"


def test_rotate_unknown_cluster_fails(server):
    p = server.podiam("issuer", "rotate", "--cluster", "no-such-cluster")
    assert p.returncode != 0
