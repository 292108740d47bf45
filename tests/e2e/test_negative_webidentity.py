"""AssumeRoleWithWebIdentity refusals over raw HTTP (unsigned query-protocol POSTs): each asserts
the exact AWS error code and HTTP status, and that the server never answers 5xx."""

from __future__ import annotations

import datetime as dt
import json
import time

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization

from podiam_e2e import (
    ACCOUNT,
    IssuerHost,
    Podiam,
    b64u,
    expect_error,
    hs256_jwt,
    irsa_trust,
    jwk_to_public_key,
    jwt_parts,
    new_rsa,
    parse_error_xml,
    public_key_secrets,
    raw_jwt,
    xml_text,
)

ROLE = "neg-role"


@pytest.fixture(scope="module")
def env(server, tmp_path_factory):
    hosted = server.irsa("neg", ROLE)
    server.client("iam").update_role(RoleName=ROLE, MaxSessionDuration=7200)
    unregistered = server.irsa("neg-unregistered", "", register=False)
    host = IssuerHost(tmp_path_factory.mktemp("issuer"))
    ext = host.issuer("neg")
    ext.register(server)
    ext_role = ext.role(server, "neg-ext-role")
    # The hosted issuer's signing key, as a cluster would get it, to sign tokens with any claims.
    out = tmp_path_factory.mktemp("export")
    p = server.podiam("issuer", "export", "--cluster", "neg", "--out-dir", str(out))
    assert p.returncode == 0, p.stderr
    signing_key = serialization.load_pem_private_key((out / "sa-signer.key").read_bytes(), None)
    yield {"hosted": hosted, "unregistered": unregistered, "ext": ext, "ext_role": ext_role, "signing_key": signing_key}
    host.stop()


@pytest.fixture
def token(server, env):
    return server.token("neg")


def hosted_kid(server, env) -> str:
    return server.jwks(env["hosted"]["id"])["keys"][0]["kid"]


def hosted_claims(env, **kw) -> dict:
    now = int(time.time())
    c = {"iss": env["hosted"]["issuer"], "sub": "system:serviceaccount:default:my-sa", "aud": ["sts.amazonaws.com"],
         "iat": now, "nbf": now, "exp": now + 3600}
    c.update(kw)
    return c


def sign_hosted(server, env, claims: dict) -> str:
    return jwt.encode(claims, env["signing_key"], algorithm="RS256", headers={"kid": hosted_kid(server, env)})


# ----------------------------------------------------------------------------- accepted


def test_valid_token_over_raw_http(server, env, token):
    r = server.assume_web(env["hosted"]["role_arn"], token, "raw-ok")
    assert r.status_code == 200, r.text
    assert xml_text(r.text, "Arn") == f"arn:aws:sts::{ACCOUNT}:assumed-role/{ROLE}/raw-ok"
    assert xml_text(r.text, "SubjectFromWebIdentityToken") == "system:serviceaccount:default:my-sa"
    assert r.headers.get("x-amzn-RequestId")


def test_duration_bounds_accepted(server, env, token):
    for seconds in (900, 7200):
        r = server.assume_web(env["hosted"]["role_arn"], token, f"d{seconds}", DurationSeconds=seconds)
        assert r.status_code == 200, r.text
        exp = dt.datetime.fromisoformat(xml_text(r.text, "Expiration").replace("Z", "+00:00")).timestamp()
        assert abs(exp - (time.time() + seconds)) < 30


def test_session_name_bounds_accepted(server, env, token):
    for name in ("ab", "x" * 64, "a.b@c=d,e-f_g+h"):
        r = server.assume_web(env["hosted"]["role_arn"], token, name)
        assert r.status_code == 200, r.text


def test_exported_key_signs_valid_tokens(server, env):
    r = server.assume_web(env["hosted"]["role_arn"], sign_hosted(server, env, hosted_claims(env)), "exported")
    assert r.status_code == 200, r.text


def test_expiry_within_leeway_accepted(server, env):
    claims = env["ext"].claims(exp=int(time.time()) - 60)
    r = server.assume_web(env["ext_role"], env["ext"].sign(claims), "leeway")
    assert r.status_code == 200, r.text


# ----------------------------------------------------------------------------- refused: trust


def test_wrong_sub_is_access_denied(server, env):
    expect_error(server.assume_web(env["hosted"]["role_arn"], server.token("neg", "default", "other-sa")), 403, "AccessDenied")


def test_role_that_does_not_exist(server, env, token):
    expect_error(server.assume_web(f"arn:aws:iam::{ACCOUNT}:role/no-such-role", token), 403, "AccessDenied")


def test_role_path_mismatch(server, env, token):
    expect_error(server.assume_web(f"arn:aws:iam::{ACCOUNT}:role/some/path/{ROLE}", token), 403, "AccessDenied")


def test_role_in_another_account(server, env, token):
    # the provider is looked up in the role's account, where it is not registered
    expect_error(server.assume_web(f"arn:aws:iam::444455556666:role/{ROLE}", token), 400, "InvalidIdentityToken")


def test_token_of_another_registered_provider(server, env):
    # the external issuer is registered, but the role trusts only the hosted one
    expect_error(server.assume_web(env["hosted"]["role_arn"], env["ext"].sign()), 403, "AccessDenied")


def test_audience_accepted_by_provider_but_not_by_trust(server, env):
    iam = server.client("iam")
    iam.add_client_id_to_open_id_connect_provider(OpenIDConnectProviderArn=env["hosted"]["provider_arn"], ClientID="second-aud")
    token = server.token("neg", audience=["second-aud"])
    expect_error(server.assume_web(env["hosted"]["role_arn"], token), 403, "AccessDenied")


def test_string_like_trust_on_sub(server, env):
    hp = env["hosted"]["hostpath"]
    trust = irsa_trust(hp, "system:serviceaccount:team-*:*", operator="StringLike")
    server.client("iam").create_role(RoleName="neg-like", AssumeRolePolicyDocument=json.dumps(trust))
    arn = f"arn:aws:iam::{ACCOUNT}:role/neg-like"
    assert server.assume_web(arn, server.token("neg", "team-a", "builder")).status_code == 200
    expect_error(server.assume_web(arn, server.token("neg", "default", "builder")), 403, "AccessDenied")


# ------------------------------------------------------------------------ refused: the token


def test_wrong_audience(server, env):
    expect_error(server.assume_web(env["hosted"]["role_arn"], server.token("neg", audience=["other"])), 400, "InvalidIdentityToken")


def test_expired_token_external_issuer(server, env):
    now = int(time.time())
    claims = env["ext"].claims(iat=now - 7200, nbf=now - 7200, exp=now - 600)
    expect_error(server.assume_web(env["ext_role"], env["ext"].sign(claims)), 400, "ExpiredTokenException")


def test_expired_token_hosted_issuer(server, env):
    now = int(time.time())
    token = sign_hosted(server, env, hosted_claims(env, iat=now - 7200, nbf=now - 7200, exp=now - 301 - 30))
    expect_error(server.assume_web(env["hosted"]["role_arn"], token), 400, "ExpiredTokenException")


def test_not_yet_valid_token(server, env):
    now = int(time.time())
    claims = env["ext"].claims(nbf=now + 900, exp=now + 3600)
    expect_error(server.assume_web(env["ext_role"], env["ext"].sign(claims)), 400, "InvalidIdentityToken")


def test_token_without_exp(server, env):
    claims = env["ext"].claims(exp=None)
    expect_error(server.assume_web(env["ext_role"], env["ext"].sign(claims)), 400, "InvalidIdentityToken")


def test_token_without_sub(server, env):
    expect_error(server.assume_web(env["hosted"]["role_arn"], sign_hosted(server, env, hosted_claims(env, sub=None))),
                 400, "InvalidIdentityToken")


def test_tampered_signature(server, env, token):
    h, p, s = token.split(".")
    i = len(s) // 2
    s = s[:i] + ("A" if s[i] != "A" else "B") + s[i + 1:]
    expect_error(server.assume_web(env["hosted"]["role_arn"], f"{h}.{p}.{s}"), 400, "InvalidIdentityToken")


def test_tampered_payload(server, env, token):
    h, p, s = token.split(".")
    claims = jwt_parts(token)[1]
    claims["sub"] = "system:serviceaccount:kube-system:admin"
    forged = f"{h}.{b64u(json.dumps(claims).encode())}.{s}"
    expect_error(server.assume_web(env["hosted"]["role_arn"], forged), 400, "InvalidIdentityToken")


def test_unknown_kid(server, env):
    token = jwt.encode(hosted_claims(env), new_rsa(), algorithm="RS256", headers={"kid": "no-such-kid"})
    expect_error(server.assume_web(env["hosted"]["role_arn"], token), 400, "InvalidIdentityToken")


def test_known_kid_signed_by_another_key(server, env):
    token = jwt.encode(hosted_claims(env), new_rsa(), algorithm="RS256", headers={"kid": hosted_kid(server, env)})
    expect_error(server.assume_web(env["hosted"]["role_arn"], token), 400, "InvalidIdentityToken")


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_alg_none(server, env, alg):
    token = raw_jwt({"alg": alg, "kid": hosted_kid(server, env), "typ": "JWT"}, hosted_claims(env))
    expect_error(server.assume_web(env["hosted"]["role_arn"], token), 400, "InvalidIdentityToken")


def test_hs256_with_the_issuers_public_key(server, env):
    kid = hosted_kid(server, env)
    jwk = server.jwks(env["hosted"]["id"])["keys"][0]
    pub = jwk_to_public_key(jwk)
    for secret in public_key_secrets(pub):
        token = hs256_jwt({"alg": "HS256", "kid": kid, "typ": "JWT"}, hosted_claims(env), secret)
        expect_error(server.assume_web(env["hosted"]["role_arn"], token), 400, "InvalidIdentityToken")


def test_unregistered_issuer(server, env):
    token = server.token("neg-unregistered")
    assert jwt_parts(token)[1]["iss"] == env["unregistered"]["issuer"]
    expect_error(server.assume_web(env["hosted"]["role_arn"], token), 400, "InvalidIdentityToken")


def test_token_from_issuer_of_another_cluster_with_forged_iss(server, env):
    # signed by the unregistered cluster's key but claiming the registered issuer
    h, p, s = server.token("neg-unregistered").split(".")
    claims = jwt_parts(f"{h}.{p}.{s}")[1]
    claims["iss"] = env["hosted"]["issuer"]
    forged = f"{h}.{b64u(json.dumps(claims).encode())}.{s}"
    expect_error(server.assume_web(env["hosted"]["role_arn"], forged), 400, "InvalidIdentityToken")


@pytest.mark.parametrize("bad", [
    "abcd",
    "abc.def",
    "aaaa.bbbb.cccc.dddd",
    "!!!!.@@@@.####",
    b64u(b"not json") + "." + b64u(b"{}") + ".c2ln",
    b64u(b'{"alg":"RS256"}') + "." + b64u(b"[1,2]") + ".c2ln",
    "a..b",
    "a.b.",
])
def test_malformed_tokens(server, env, bad):
    expect_error(server.assume_web(env["hosted"]["role_arn"], bad), 400, "InvalidIdentityToken")


def test_too_short_token_is_a_validation_error(server, env):
    # WebIdentityToken has a modeled minimum length of 4, as in AWS
    expect_error(server.assume_web(env["hosted"]["role_arn"], "abc"), 400, "ValidationError")


def test_oversize_token(server, env):
    expect_error(server.assume_web(env["hosted"]["role_arn"], "a" * 20001), 400, "ValidationError")
    # at the limit the token is parsed (and refused as a token, not as a parameter)
    expect_error(server.assume_web(env["hosted"]["role_arn"], "a" * 20000), 400, "InvalidIdentityToken")


# ------------------------------------------------------------------------ refused: parameters


@pytest.mark.parametrize("seconds", [899, 43201, 0, -1])
def test_bad_duration(server, env, token, seconds):
    expect_error(server.assume_web(env["hosted"]["role_arn"], token, DurationSeconds=seconds), 400, "ValidationError")


def test_duration_above_role_max_session_duration(server, env, token):
    expect_error(server.assume_web(env["hosted"]["role_arn"], token, DurationSeconds=7201), 400, "ValidationError")


def test_non_numeric_duration(server, env, token):
    r = server.assume_web(env["hosted"]["role_arn"], token, DurationSeconds="soon")
    expect_error(r, 400, ("ValidationError", "MalformedInput", "InvalidParameterValue"))


@pytest.mark.parametrize("name", ["a", "x" * 65, "has space", "semi;colon", ""])
def test_bad_session_name(server, env, token, name):
    expect_error(server.assume_web(env["hosted"]["role_arn"], token, name), 400, ("ValidationError", "MissingParameter"))


@pytest.mark.parametrize("arn", ["not-an-arn", f"arn:aws:iam::{ACCOUNT}:user/x-user-not-role", "arn:aws:iam::12:role/x"])
def test_bad_role_arn(server, env, token, arn):
    r = server.assume_web(arn, token)
    expect_error(r, 400, "ValidationError")


@pytest.mark.parametrize("missing", ["RoleArn", "RoleSessionName", "WebIdentityToken"])
def test_missing_parameter(server, env, token, missing):
    params = {"Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15", "RoleArn": env["hosted"]["role_arn"],
              "RoleSessionName": "s", "WebIdentityToken": token}
    del params[missing]
    expect_error(server.post(params), 400, ("MissingParameter", "ValidationError"))


@pytest.mark.parametrize("params", [
    {"Action": "AssumeRoleWithMagic", "Version": "2011-06-15"},
    {"Action": "AssumeRoleWithWebIdentity", "Version": "1999-01-01"},
    {"Action": "AssumeRoleWithWebIdentity"},
    {},
])
def test_unknown_action_or_version_is_a_client_error(server, env, params):
    r = server.post(params)
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    assert parse_error_xml(r.text)["Code"]


def test_tokens_of_a_deleted_cluster_are_refused(tmp_path):
    """After DeleteCluster the IAM provider may remain (as in AWS), but the cluster's tokens must
    stop working. Hosted issuers are under https://127.0.0.1 here, so whatever podiam tries to
    fetch for the vanished issuer stays on this machine."""
    s = Podiam(tmp_path / "data", extra_args=["--issuer-base-url", "https://127.0.0.1"]).start()
    try:
        irsa = s.irsa("short-lived", "short-lived-role")
        assert irsa["issuer"].startswith("https://127.0.0.1/id/")
        token = s.token("short-lived")
        assert s.assume_web(irsa["role_arn"], token).status_code == 200
        s.client("eks").delete_cluster(name="short-lived")
        r = s.assume_web(irsa["role_arn"], token)
        expect_error(r, 400, ("IDPCommunicationError", "InvalidIdentityToken"))
        assert requests.get(f"{s.endpoint}/id/{irsa['id']}/keys", timeout=10).status_code == 404
    finally:
        s.stop()
