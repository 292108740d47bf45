"""What an anonymous AssumeRoleWithWebIdentity caller can make podiam fetch, and what it learns.

The issuer fetch must not follow redirects to plain http, to the metadata address or to another
host; must not fetch a jwks_uri at a metadata or unnamed local address; must not let a stalling
issuer delay the key fetches of other issuers; must not fetch at all for a role that does not
exist; must not reuse keys fetched under one provider's thumbprints for another provider; and the
caller gets AWS's IDPCommunicationError message, never a URL, status or connection error.

Issuers are HTTPS paths on port 443 of a random loopback address (`https://127.x.y.z/<name>`), as
in test_external_issuer.py; the hosts here answer each path with a route the test chooses, and
also listen on port 80 of the same address to see whether plain http is ever requested."""

from __future__ import annotations

import hashlib
import http.server
import json
import secrets
import shutil
import ssl
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from podiam_e2e import (
    ACCOUNT,
    ExternalIssuer,
    IssuerHost,
    expect_error,
    irsa_trust,
    new_rsa,
    self_signed_cert,
)

OTHER = "444455556666"
PODIAM_ARGS = ["--additional-account", OTHER]

# AWS's message, double space included.
IDP_MESSAGE = ("Couldn't retrieve verification key from your identity provider,  please reference "
               "AssumeRoleWithWebIdentity documentation for requirements")
METADATA = "169.254.169.254"

Route = Callable[[http.server.BaseHTTPRequestHandler], None]


def send_json(h: http.server.BaseHTTPRequestHandler, body: dict) -> None:
    data = json.dumps(body).encode()
    h.send_response(200)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", str(len(data)))
    h.end_headers()
    h.wfile.write(data)


def redirect(location: str) -> Route:
    def route(h):
        h.send_response(302)
        h.send_header("Location", location)
        h.send_header("Content-Length", "0")
        h.end_headers()
    return route


class AttackHost:
    """HTTPS on port 443 and plain HTTP on port 80 of one random loopback address, with a
    self-signed certificate for it; `routes[(scheme, path)]` answers a request, anything else is a
    404. Every request is recorded in `hits` as (scheme, path)."""

    def __init__(self, tmpdir: Path):
        self.routes: dict[tuple[str, str], Route] = {}
        self.hits: list[tuple[str, str]] = []
        self.release = threading.Event()  # ends stalled handlers
        host = self

        def handler(scheme: str):
            class Handler(http.server.BaseHTTPRequestHandler):
                def do_GET(self):  # noqa: N802
                    host.hits.append((scheme, self.path))
                    route = host.routes.get((scheme, self.path))
                    if route is None:
                        self.send_error(404)
                    else:
                        route(self)

                def log_message(self, *a):  # quiet
                    pass
            return Handler

        for _ in range(20):
            ip = f"127.{secrets.randbelow(254) + 1}.{secrets.randbelow(254) + 1}.{secrets.randbelow(253) + 2}"
            try:
                tls = http.server.ThreadingHTTPServer((ip, 443), handler("https"))
            except OSError:
                continue
            try:
                plain = http.server.ThreadingHTTPServer((ip, 80), handler("http"))
            except OSError:
                tls.server_close()
                continue
            break
        else:
            raise RuntimeError("no free loopback address for ports 443 and 80")
        self.ip = ip
        cert, key = self_signed_cert(("localhost",), (ip,))
        self.thumbprint = hashlib.sha1(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
        d = Path(tempfile.mkdtemp(dir=tmpdir))
        (d / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (d / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                      serialization.NoEncryption()))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(d / "cert.pem", d / "key.pem")
        shutil.rmtree(d)
        tls.socket = ctx.wrap_socket(tls.socket, server_side=True)
        self.servers = [tls, plain]
        for s in self.servers:
            s.daemon_threads = True
            threading.Thread(target=s.serve_forever, daemon=True).start()
        self.base = f"https://{ip}"

    def issuer(self, name: str, *, serve: bool = True) -> ExternalIssuer:
        """An issuer `https://<ip>/<name>` (signing keys from ExternalIssuer); `serve` answers its
        discovery document and JWKS normally."""
        iss = ExternalIssuer(self, name)  # type: ignore[arg-type]  # needs only .base and .thumbprint
        if serve:
            self.serve(iss)
        return iss

    def serve(self, iss: ExternalIssuer, *, jwks_uri: str | None = None, scheme: str = "https",
              claimed: str | None = None) -> None:
        """Answer `iss`'s discovery document (naming `claimed` as the issuer, its own URL by
        default) and JWKS on `scheme`."""
        self.routes[(scheme, self.discovery_path(iss))] = lambda h: send_json(
            h, {"issuer": claimed or iss.issuer, "jwks_uri": jwks_uri or f"{iss.issuer}/keys"})
        self.routes[(scheme, f"/{iss.name}/keys")] = lambda h: send_json(
            h, {"keys": [iss.public_jwk(k) for k in iss.served]})

    def discovery_path(self, iss: ExternalIssuer) -> str:
        return f"/{iss.name}/.well-known/openid-configuration"

    def hits_of(self, iss: ExternalIssuer) -> list[tuple[str, str]]:
        return [h for h in self.hits if h[1].startswith(f"/{iss.name}/")]

    def stop(self) -> None:
        self.release.set()
        for s in self.servers:
            s.shutdown()
            s.server_close()


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    h = AttackHost(tmp_path_factory.mktemp("attack"))
    yield h
    h.stop()


@pytest.fixture(scope="module")
def other(tmp_path_factory):
    """A second host: another loopback address, another certificate."""
    h = AttackHost(tmp_path_factory.mktemp("attack2"))
    yield h
    h.stop()


@pytest.fixture(scope="module")
def plain_host(tmp_path_factory):
    """The well-behaved issuer host of test_external_issuer.py."""
    h = IssuerHost(tmp_path_factory.mktemp("issuers"))
    yield h
    h.stop()


def setup(server, iss: ExternalIssuer, role: str, *, thumbprints: list[str] | None = None) -> str:
    iss.register(server, thumbprints=thumbprints)
    return iss.role(server, role)


def expect_idp_error(resp, *hosts: AttackHost) -> None:
    err = expect_error(resp, 400, "IDPCommunicationError")
    assert err["Message"] == IDP_MESSAGE
    for leak in ["http", "127.", METADATA, "well-known", "status", "refused", "tls", *(h.ip for h in hosts)]:
        assert leak not in err["Message"].lower(), err["Message"]


# ---------------------------------------------------------------------------------- redirects


def test_redirect_to_plain_http_is_not_followed(server, host):
    iss = host.issuer("to-http", serve=False)
    path = host.discovery_path(iss)
    host.routes[("https", path)] = redirect(f"http://{host.ip}{path}")
    host.serve(iss, jwks_uri=f"http://{host.ip}/to-http/keys", scheme="http")  # what podiam must not read
    role = setup(server, iss, "atk-to-http")
    expect_idp_error(server.assume_web(role, iss.sign()), host)
    assert host.hits_of(iss) == [("https", path)], "the plain-http target must not be requested"


@pytest.mark.parametrize("target", [f"http://{METADATA}/latest/meta-data/iam/security-credentials/",
                                    f"https://{METADATA}/latest/meta-data/",
                                    "http://[fd00:ec2::254]/latest/meta-data/"])
def test_redirect_to_the_metadata_address_is_not_followed(server, host, target):
    name = f"to-metadata-{secrets.token_hex(3)}"
    iss = host.issuer(name, serve=False)
    host.routes[("https", host.discovery_path(iss))] = redirect(target)
    role = setup(server, iss, f"atk-{name}")
    t0 = time.monotonic()
    expect_idp_error(server.assume_web(role, iss.sign()), host)
    assert time.monotonic() - t0 < 5, "refused before any connection attempt"


def test_redirect_to_another_host_is_not_followed(server, host, other):
    """Even a host the provider's thumbprints would trust, serving a consistent discovery
    document and keys of the attacker's choosing."""
    iss = host.issuer("to-other", serve=False)
    elsewhere = other.issuer("to-other", serve=False)
    other.serve(elsewhere, claimed=iss.issuer)  # its discovery document claims the original issuer
    host.routes[("https", host.discovery_path(iss))] = redirect(f"{other.base}/to-other/.well-known/openid-configuration")
    role = setup(server, iss, "atk-to-other", thumbprints=[host.thumbprint, other.thumbprint])
    token = jwt.encode(iss.claims(), elsewhere.keys["key-1"], algorithm="RS256", headers={"kid": "key-1"})
    expect_idp_error(server.assume_web(role, token), host, other)
    assert other.hits == [], "the other host must not be contacted"


# ---------------------------------------------------------------------------------- jwks_uri


def test_jwks_uri_at_the_metadata_address_is_not_fetched(server, host):
    iss = host.issuer("jwks-metadata", serve=False)
    host.serve(iss, jwks_uri=f"https://{METADATA}/latest/meta-data/iam/security-credentials/")
    role = setup(server, iss, "atk-jwks-metadata")
    expect_idp_error(server.assume_web(role, iss.sign()), host)
    assert host.hits_of(iss) == [("https", host.discovery_path(iss))]


def test_jwks_uri_at_a_local_address_the_provider_does_not_name(server, host, other):
    iss = host.issuer("jwks-local", serve=False)
    host.serve(iss, jwks_uri=f"{other.base}/jwks-local/keys")
    keys = other.issuer("jwks-local")
    role = setup(server, iss, "atk-jwks-local", thumbprints=[host.thumbprint, other.thumbprint])
    token = jwt.encode(iss.claims(), keys.keys["key-1"], algorithm="RS256", headers={"kid": "key-1"})
    expect_idp_error(server.assume_web(role, token), host, other)
    assert other.hits == []


# ---------------------------------------------------------------------------------- slow issuer


def test_a_stalling_issuer_does_not_delay_other_issuers(server, host, plain_host):
    stall = host.issuer("stall", serve=False)
    host.routes[("https", host.discovery_path(stall))] = lambda h: host.release.wait(120)
    stall_role = setup(server, stall, "atk-stall")
    fresh = plain_host.issuer("fresh-during-stall")  # its keys are not cached: needs a fetch too
    fresh.register(server)
    fresh_role = fresh.role(server, "ext-fresh-during-stall")

    started = time.monotonic()
    with ThreadPoolExecutor(6) as pool:
        stalled = [pool.submit(server.assume_web, stall_role, stall.sign()) for _ in range(6)]
        time.sleep(0.5)
        t0 = time.monotonic()
        r = server.assume_web(fresh_role, fresh.sign(), "during-stall")
        elapsed = time.monotonic() - t0
        assert r.status_code == 200, r.text
        assert elapsed < 2, f"a call for another issuer took {elapsed:.1f}s while one issuer stalls"
        for f in stalled:
            expect_idp_error(f.result(), host)
    assert time.monotonic() - started < 20, "every caller of the stalling issuer is bounded by the fetch budget"
    assert host.hits_of(stall) == [("https", host.discovery_path(stall))], "one fetch for the six callers"
    # The failure is remembered: the next caller is answered at once, without a new attempt.
    t0 = time.monotonic()
    expect_idp_error(server.assume_web(stall_role, stall.sign()), host)
    assert time.monotonic() - t0 < 1
    assert len(host.hits_of(stall)) == 1


# ---------------------------------------------------------------------------------- missing role


def test_missing_role_fetches_nothing(server, host):
    iss = host.issuer("no-role")
    iss.register(server)
    # With nothing cached, a missing role answers as an existing role whose issuer cannot be
    # reached (so the answer does not tell whether the role exists), and nothing is fetched.
    for token in (iss.sign(), iss.sign(key=new_rsa())):
        r = server.assume_web(f"arn:aws:iam::{ACCOUNT}:role/atk-no-such-role", token)
        expect_error(r, 400, "IDPCommunicationError")
    assert host.hits_of(iss) == [], "no fetch for a role that does not exist"


def test_missing_and_existing_roles_answer_a_forged_token_alike(server, host):
    """Once the issuer's keys are cached, a forged token gets InvalidIdentityToken whether or not
    the role exists (no role-existence oracle), and still nothing is fetched for the missing one."""
    iss = host.issuer("forged-alike")
    role = setup(server, iss, "atk-forged-alike")
    assert server.assume_web(role, iss.sign()).status_code == 200
    before = list(host.hits_of(iss))
    forged = iss.sign(key=new_rsa())
    expect_error(server.assume_web(role, forged), 400, "InvalidIdentityToken")
    expect_error(server.assume_web(f"arn:aws:iam::{ACCOUNT}:role/atk-forged-missing", forged), 400,
                 "InvalidIdentityToken")
    expect_error(server.assume_web(f"arn:aws:iam::{ACCOUNT}:role/atk-forged-missing", iss.sign()), 403, "AccessDenied")
    assert host.hits_of(iss) == before


# ---------------------------------------------------------------------------------- cache key


def test_keys_fetched_under_one_trust_do_not_serve_another_account(server, host, other):
    iss = host.issuer("shared-url")
    role = setup(server, iss, "atk-shared-url")
    assert server.assume_web(role, iss.sign()).status_code == 200  # keys cached under host's thumbprint
    iam = server.client("iam", server.root_keys(f"podiam-{OTHER}"))
    for name, prints in (("wrong-print", [other.thumbprint]), ("no-print", [])):
        arn = iam.create_open_id_connect_provider(Url=iss.issuer, ClientIDList=["sts.amazonaws.com"],
                                                  ThumbprintList=prints)["OpenIDConnectProviderArn"]
        trust = irsa_trust(iss.hostpath, "system:serviceaccount:default:my-sa")
        trust["Statement"][0]["Principal"]["Federated"] = arn
        iam.create_role(RoleName=f"atk-{name}", AssumeRolePolicyDocument=json.dumps(trust))
        expect_idp_error(server.assume_web(f"arn:aws:iam::{OTHER}:role/atk-{name}", iss.sign()), host, other)
        iam.delete_role(RoleName=f"atk-{name}")
        iam.delete_open_id_connect_provider(OpenIDConnectProviderArn=arn)


# ---------------------------------------------------------------------------------- kid


def test_a_token_without_kid_needs_a_single_key_issuer(server, host):
    one = host.issuer("one-key")
    role_one = setup(server, one, "atk-one-key")
    no_kid = jwt.encode(one.claims(), one.keys["key-1"], algorithm="RS256")
    assert "kid" not in jwt.get_unverified_header(no_kid)
    r = server.assume_web(role_one, no_kid)
    assert r.status_code == 200, r.text

    two = host.issuer("two-keys")
    two.add_key("key-2")
    role_two = setup(server, two, "atk-two-keys")
    for kid in ("key-1", "key-2"):
        token = jwt.encode(two.claims(), two.keys[kid], algorithm="RS256")
        expect_error(server.assume_web(role_two, token), 400, "InvalidIdentityToken")
    assert server.assume_web(role_two, two.sign(kid="key-2")).status_code == 200
