"""OIDC issuers podiam does not host: the discovery + JWKS fetch over TLS trusted by the
provider's thumbprint (a self-signed certificate, not in the system roots), the key cache, refetch
on an unknown kid (at most every 30 s), stale keys while the issuer is down, and forged tokens.

Issuers are HTTPS paths on port 443 of a random loopback address (IAM provider URLs carry no port,
as in AWS): `https://127.x.y.z/<name>`. Tokens are signed here with PyJWT."""

from __future__ import annotations

import json
import time

import jwt
import pytest

from podiam_e2e import (
    ACCOUNT,
    IssuerHost,
    allow,
    expect_error,
    hs256_jwt,
    jwk_to_public_key,
    new_rsa,
    public_key_secrets,
    raw_jwt,
    rsa_jwk,
    xml_text,
)

REFETCH_INTERVAL = 30  # seconds; docs/ARCHITECTURE.md


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    h = IssuerHost(tmp_path_factory.mktemp("issuers"))
    yield h
    h.stop()


@pytest.fixture(scope="module")
def other_host(tmp_path_factory):
    """A second HTTPS server with a different self-signed certificate."""
    h = IssuerHost(tmp_path_factory.mktemp("issuers2"))
    yield h
    h.stop()


@pytest.fixture(scope="module")
def rotating(server, host):
    """An issuer whose keys are fetched as early as possible in the module, so that the rotation
    test at the end of the module runs past the refetch interval."""
    iss = host.issuer("rotating")
    iss.register(server)
    arn = iss.role(server, "ext-rotating")
    r = server.assume_web(arn, iss.sign(), "prime")
    assert r.status_code == 200, r.text
    return {"iss": iss, "role": arn, "primed": time.monotonic()}


@pytest.fixture(scope="module")
def main(server, host, rotating):
    iss = host.issuer("main")
    iss.register(server)
    return {"iss": iss, "role": iss.role(server, "ext-main")}


def test_valid_token(server, main):
    iss = main["iss"]
    r = server.assume_web(main["role"], iss.sign(), "ext-ok")
    assert r.status_code == 200, r.text
    assert xml_text(r.text, "Provider") == f"arn:aws:iam::{ACCOUNT}:oidc-provider/{iss.hostpath}"
    assert xml_text(r.text, "SubjectFromWebIdentityToken") == "system:serviceaccount:default:my-sa"
    assert xml_text(r.text, "Audience") == "sts.amazonaws.com"
    creds = {k: xml_text(r.text, k) for k in ("AccessKeyId", "SecretAccessKey", "SessionToken")}
    me = server.client("sts", creds).get_caller_identity()
    assert me["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/ext-main/ext-ok"
    assert iss.hits.get("/.well-known/openid-configuration") == 1 and iss.fetches() == 1


def test_keys_are_cached(server, main):
    before = main["iss"].fetches()
    for i in range(3):
        assert server.assume_web(main["role"], main["iss"].sign(), f"cached-{i}").status_code == 200
    assert main["iss"].fetches() == before


def test_cli_with_external_issuer(server, main, tmp_path):
    tok = tmp_path / "tok"
    tok.write_text(main["iss"].sign())
    out = server.aws("sts", "assume-role-with-web-identity", "--role-arn", main["role"], "--role-session-name", "cli",
                     "--web-identity-token", f"file://{tok}")
    assert out["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/ext-main/cli"


def test_ec_issuer(server, host):
    iss = host.issuer("ec", ec_key=True)
    iss.register(server)
    role = iss.role(server, "ext-ec")
    token = iss.sign()
    assert jwt.get_unverified_header(token)["alg"] == "ES256"
    r = server.assume_web(role, token, "ec")
    assert r.status_code == 200, r.text


def test_audience_from_a_list(server, main):
    token = main["iss"].sign(main["iss"].claims(aud=["other", "sts.amazonaws.com"]))
    r = server.assume_web(main["role"], token, "multi-aud")
    assert r.status_code == 200, r.text
    assert xml_text(r.text, "Audience") == "sts.amazonaws.com"


def test_session_tags_from_the_token(server, host):
    iss = host.issuer("tags")
    iss.register(server)
    iam = server.client("iam")
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Federated": iss.provider_arn},
        "Action": ["sts:AssumeRoleWithWebIdentity", "sts:TagSession"],
        "Condition": {"StringEquals": {f"{iss.hostpath}:aud": "sts.amazonaws.com"}}}]}
    iam.create_role(RoleName="ext-tags", AssumeRolePolicyDocument=json.dumps(trust))
    iam.put_role_policy(RoleName="ext-tags", PolicyName="blue", PolicyDocument=allow(
        "iam:ListRoles", condition={"StringEquals": {"aws:PrincipalTag/team": "blue"}}))
    arn = f"arn:aws:iam::{ACCOUNT}:role/ext-tags"

    def creds_for(team: str) -> dict:
        claims = iss.claims(**{"https://aws.amazon.com/tags": {"principal_tags": {"team": [team]}}})
        r = server.assume_web(arn, iss.sign(claims), f"team-{team}")
        assert r.status_code == 200, r.text
        return {k: xml_text(r.text, k) for k in ("AccessKeyId", "SecretAccessKey", "SessionToken")}

    assert "Roles" in server.client("iam", creds_for("blue")).list_roles()
    with pytest.raises(Exception) as e:
        server.client("iam", creds_for("red")).list_roles()
    assert e.value.response["Error"]["Code"] == "AccessDenied"  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------- TLS and fetch


def test_wrong_thumbprint(server, other_host, host):
    iss = other_host.issuer("wrong-thumb")
    iss.register(server, thumbprints=[host.thumbprint])  # a real thumbprint, of another certificate
    role = iss.role(server, "ext-wrong-thumb")
    expect_error(server.assume_web(role, iss.sign()), 400, "IDPCommunicationError")
    assert iss.fetches() == 0 and not iss.hits, "the TLS handshake should have failed before any request"


def test_no_thumbprint_and_not_in_system_roots(server, host):
    iss = host.issuer("no-thumb")
    iss.register(server, thumbprints=[])
    expect_error(server.assume_web(iss.role(server, "ext-no-thumb"), iss.sign()), 400, "IDPCommunicationError")
    assert not iss.hits


def test_issuer_not_serving_discovery(server, host):
    iss = host.issuer("not-found")
    iss.register(server)
    role = iss.role(server, "ext-not-found")
    token = iss.sign()
    del host.issuers["not-found"]  # the path now answers 404
    expect_error(server.assume_web(role, token), 400, "IDPCommunicationError")


def test_issuer_down_before_first_fetch(server, host):
    iss = host.issuer("down-early")
    iss.register(server)
    role = iss.role(server, "ext-down-early")
    iss.down = True
    expect_error(server.assume_web(role, iss.sign()), 400, "IDPCommunicationError")
    assert iss.hits.get("/.well-known/openid-configuration") == 1


def test_unreachable_host(server, host):
    # a loopback address where nothing listens on 443
    a, b, c, d = (int(x) for x in host.ip.split("."))
    ip = f"127.{b}.{c}.{d + 1 if d < 254 else d - 1}"
    iam = server.client("iam")
    iam.create_open_id_connect_provider(Url=f"https://{ip}/nothing", ClientIDList=["sts.amazonaws.com"],
                                        ThumbprintList=[host.thumbprint])
    iam.create_role(RoleName="ext-unreachable", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {
            "Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/{ip}/nothing"},
            "Action": "sts:AssumeRoleWithWebIdentity"}]}))
    now = int(time.time())
    token = jwt.encode({"iss": f"https://{ip}/nothing", "sub": "x", "aud": "sts.amazonaws.com", "iat": now, "exp": now + 600},
                       new_rsa(), algorithm="RS256", headers={"kid": "k"})
    expect_error(server.assume_web(f"arn:aws:iam::{ACCOUNT}:role/ext-unreachable", token), 400, "IDPCommunicationError")


def test_discovery_names_another_issuer(server, host):
    iss = host.issuer("liar", discovery_issuer="https://accounts.example.test")
    iss.register(server)
    expect_error(server.assume_web(iss.role(server, "ext-liar"), iss.sign()), 400, "IDPCommunicationError")
    assert iss.fetches() == 0, "the JWKS of an issuer whose discovery document does not match must not be used"


def test_issuer_down_after_fetch_serves_cached_keys(server, host):
    iss = host.issuer("goes-down")
    iss.register(server)
    role = iss.role(server, "ext-goes-down")
    assert server.assume_web(role, iss.sign(), "up").status_code == 200
    iss.down = True
    r = server.assume_web(role, iss.sign(), "down")
    assert r.status_code == 200, r.text
    # a kid it never saw cannot be had while the issuer is down
    iss.add_key("never-seen")
    expect_error(server.assume_web(role, iss.sign(kid="never-seen")), 400, "InvalidIdentityToken")


def test_unknown_kid_refetch_is_rate_limited(server, rotating):
    """Within the refetch interval of the last fetch, an unknown kid does not make podiam fetch
    again (no amplification of attacker traffic towards the issuer)."""
    iss = rotating["iss"]
    assert time.monotonic() - rotating["primed"] < REFETCH_INTERVAL - 5, "module too slow for this check"
    before = iss.fetches()
    stranger = new_rsa()
    token = iss.sign(kid="kid-nobody-serves", key=stranger)
    for _ in range(3):
        expect_error(server.assume_web(rotating["role"], token), 400, "InvalidIdentityToken")
    assert iss.fetches() == before


# ---------------------------------------------------------------------------- forged tokens


def test_expired_token(server, main):
    now = int(time.time())
    claims = main["iss"].claims(iat=now - 7200, nbf=now - 7200, exp=now - 600)
    expect_error(server.assume_web(main["role"], main["iss"].sign(claims)), 400, "ExpiredTokenException")


def test_wrong_audience(server, main):
    expect_error(server.assume_web(main["role"], main["iss"].sign(main["iss"].claims(aud="other"))), 400,
                 "InvalidIdentityToken")


def test_issuer_claim_with_trailing_slash(server, main):
    claims = main["iss"].claims(iss=main["iss"].issuer + "/")
    expect_error(server.assume_web(main["role"], main["iss"].sign(claims)), 400, "InvalidIdentityToken")


def test_alg_none(server, main):
    token = raw_jwt({"alg": "none", "kid": "key-1"}, main["iss"].claims())
    expect_error(server.assume_web(main["role"], token), 400, "InvalidIdentityToken")


def test_hs256_with_the_public_key(server, main):
    pub = jwk_to_public_key(main["iss"].public_jwk("key-1"))
    for secret in public_key_secrets(pub):
        token = hs256_jwt({"alg": "HS256", "kid": "key-1", "typ": "JWT"}, main["iss"].claims(), secret)
        expect_error(server.assume_web(main["role"], token), 400, "InvalidIdentityToken")


def test_embedded_jwk_of_an_attacker_key(server, main):
    attacker = new_rsa()
    for kid in ("attacker", "key-1"):
        token = jwt.encode(main["iss"].claims(), attacker, algorithm="RS256",
                           headers={"kid": kid, "jwk": rsa_jwk(attacker, kid)})
        expect_error(server.assume_web(main["role"], token), 400, "InvalidIdentityToken")


def test_jku_pointing_at_an_attacker_jwks(server, main, host):
    evil = host.issuer("evil")
    before = dict(evil.hits)
    token = jwt.encode(main["iss"].claims(), evil.keys["key-1"], algorithm="RS256",
                       headers={"kid": "key-1", "jku": f"{evil.issuer}/keys"})
    expect_error(server.assume_web(main["role"], token), 400, "InvalidIdentityToken")
    assert evil.hits == before, "podiam must not follow a token's jku"


def test_signed_by_another_issuers_key_with_same_kid(server, main, host):
    other = host.issuer("other-keys")  # also has a key named key-1
    expect_error(server.assume_web(main["role"], main["iss"].sign(kid="key-1", key=other.keys["key-1"])), 400,
                 "InvalidIdentityToken")


def test_rotation_at_the_issuer(server, rotating):
    """The issuer starts serving a new key; the first token signed with it succeeds once the
    refetch interval since the last fetch has passed (refetch on unknown kid)."""
    iss = rotating["iss"]
    iss.add_key("key-2")  # served alongside key-1, as issuers do during a rotation
    wait = REFETCH_INTERVAL + 1 - (time.monotonic() - rotating["primed"])
    if wait > 0:
        time.sleep(wait)
    before = iss.fetches()
    token = iss.sign(kid="key-2")
    r = server.assume_web(rotating["role"], token, "rotated")
    assert r.status_code == 200, r.text
    assert iss.fetches() == before + 1
    # the old key is still served and still accepted, without another fetch
    assert server.assume_web(rotating["role"], iss.sign(kid="key-1"), "old-key").status_code == 200
    assert iss.fetches() == before + 1


def test_metrics_count_fetches_and_failures_by_issuer(server, host):
    import requests

    up = host.issuer("metrics-up")
    up.register(server)
    r = server.assume_web(up.role(server, "ext-metrics-up"), up.sign(), "metrics")
    assert r.status_code == 200, r.text
    down = host.issuer("metrics-down")
    down.register(server)
    role = down.role(server, "ext-metrics-down")
    down.down = True
    expect_error(server.assume_web(role, down.sign()), 400, "IDPCommunicationError")
    text = requests.get(f"{server.endpoint}/metrics", timeout=10).text
    samples = dict(line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))
    assert samples[f'podiam_jwks_fetches_total{{issuer="https://{up.hostpath}"}}'] == "1", text
    assert f'podiam_jwks_fetch_failures_total{{issuer="https://{up.hostpath}"}}' not in samples, text
    assert samples[f'podiam_jwks_fetches_total{{issuer="https://{down.hostpath}"}}'] == "1", text
    assert samples[f'podiam_jwks_fetch_failures_total{{issuer="https://{down.hostpath}"}}'] == "1", text
