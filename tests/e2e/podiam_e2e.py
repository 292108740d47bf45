"""Shared helpers of podiam's end-to-end suite: the server process, the venv's AWS CLI, boto3
clients, raw query-protocol requests, AWS error parsing, JWT building and an external HTTPS OIDC
issuer. Fixtures live in conftest.py; test modules import the helpers from here."""

from __future__ import annotations

import base64
import configparser
import datetime as dt
import hashlib
import hmac
import http.server
import ipaddress
import itertools
import json
import os
import re
import secrets
import shutil
import signal
import ssl
import subprocess
import tempfile
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Iterable

import boto3
import botocore.config
import pytest
import requests
import urllib3
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

# Readiness probes of an HTTPS server skip verification (its CA is the test's business).
urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"
AWS_CLI = str(VENV_BIN / "aws")
VENV_PYTHON = str(VENV_BIN / "python")
ACCOUNT = "111122223333"
REGION = "us-east-1"
STS_AUDIENCE = "sts.amazonaws.com"


def require(present: object, missing: str) -> None:
    """Stop the calling test when what it exercises is not here (`present` is false; `missing`
    says what is absent and how to get it). On a developer's machine the test is skipped; under
    CI (`CI=true`) it fails, so that a run meant to exercise everything cannot pass by skipping."""
    if present:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{missing} (CI=true: a test that cannot run its real component fails)", pytrace=False)
    pytest.skip(missing)


def podiam_bin() -> str:
    b = os.environ.get("PODIAM_BIN") or "target/debug/podiam"
    p = Path(b)
    if not p.is_absolute():
        p = REPO / p
    return str(p)


def clean_env(**extra: str) -> dict[str, str]:
    """The process environment without any AWS_* variable (so nothing from the developer's
    shell or ~/.aws leaks into a call), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    env.update(extra)
    return env


# ------------------------------------------------------------------------------------ errors


class AwsCliError(Exception):
    def __init__(self, args: Iterable[str], rc: int, out: str, err: str):
        super().__init__(f"aws {' '.join(args)} exited {rc}: {err.strip()}")
        self.rc, self.stdout, self.stderr = rc, out, err

    @property
    def code(self) -> str | None:
        m = re.search(r"An error occurred \(([^)]+)\)", self.stderr)
        return m.group(1) if m else None


def cli_error_code(stderr: str) -> str | None:
    m = re.search(r"An error occurred \(([^)]+)\)", stderr)
    return m.group(1) if m else None


def parse_error_xml(text: str) -> dict[str, str]:
    """`<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/></ErrorResponse>`
    (namespaced or not) as a flat dict: Type, Code, Message, RequestId."""
    root = ET.fromstring(text)

    def local(tag: str) -> str:
        return tag.rsplit("}", 1)[-1]

    assert local(root.tag) == "ErrorResponse", text
    out: dict[str, str] = {}
    for child in root:
        if local(child.tag) == "Error":
            for e in child:
                out[local(e.tag)] = e.text or ""
        elif local(child.tag) == "RequestId":
            out["RequestId"] = child.text or ""
    return out


def expect_error(resp: requests.Response, status: int, code: str | Iterable[str]) -> dict[str, str]:
    """Assert a query-protocol error response: never a 5xx, the exact status and code."""
    assert resp.status_code < 500, f"server error {resp.status_code}: {resp.text}"
    err = parse_error_xml(resp.text)
    codes = {code} if isinstance(code, str) else set(code)
    assert err.get("Code") in codes and resp.status_code == status, (
        f"expected {status} {sorted(codes)}, got {resp.status_code} {err.get('Code')}: {err.get('Message')}"
    )
    assert err.get("Message"), "error without a message"
    assert err.get("Type") == "Sender", err
    return err


def client_error(exc: Exception) -> tuple[int, str]:
    """(HTTP status, code) of a botocore ClientError."""
    r = exc.response  # type: ignore[attr-defined]
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"]


def xml_text(text: str, name: str) -> str | None:
    """Text of the first element named `name` (any namespace) in an XML document."""
    root = ET.fromstring(text)
    for e in root.iter():
        if e.tag.rsplit("}", 1)[-1] == name:
            return e.text
    return None


# --------------------------------------------------------------------------------- server


_LOG_SEQ = itertools.count(1)

# ---- secrets that must never reach a log
#
# Every secret access key and session token a test is handed (by podiam's responses through
# requests, boto3 and the helpers here, and the root keys the servers wrote) is remembered; at the
# end of the session conftest.py checks that none appears in any podiam process's log.

SECRETS: set[str] = set()
PROCESS_LOGS: list[Path] = []
CREDENTIAL_FILES: list[Path] = []
_SECRET_PATTERNS = (
    re.compile(r"<(?:SecretAccessKey|SessionToken)>([^<]+)</"),
    re.compile(r'"(?:SecretAccessKey|SessionToken|Token|secretAccessKey|sessionToken)"\s*:\s*"([^"]+)"'),
)


def remember_secrets(text: str | bytes | None) -> None:
    """Remember the secret access keys and session tokens in a response body (XML or JSON)."""
    if not text:
        return
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    if "ecretAccessKey" not in text and "oken" not in text:
        return
    for pat in _SECRET_PATTERNS:
        for value in pat.findall(text):
            if len(value) >= 16:
                SECRETS.add(value)


def register_log(path: Path) -> None:
    """A podiam process's log, to be checked for secrets at the end of the session."""
    PROCESS_LOGS.append(Path(path))


def leaked_secrets() -> tuple[int, list[str]]:
    """(how many secrets were checked, the ones found in some process log, shortened)."""
    for f in CREDENTIAL_FILES:
        if f.exists():
            cp = configparser.ConfigParser()
            cp.read(f)
            SECRETS.update(cp[s]["aws_secret_access_key"] for s in cp.sections() if "aws_secret_access_key" in cp[s])
    text = "\n".join(p.read_text(errors="replace") for p in dict.fromkeys(PROCESS_LOGS) if p.exists())
    leaked = [f"{s[:6]}... (in {len(s)} chars)" for s in SECRETS if s in text]
    return len(SECRETS), leaked


class Podiam:
    """One `podiam serve` process over a data directory; can be stopped and started again."""

    def __init__(self, data_dir: Path, *, account_id: str = ACCOUNT, extra_args: Iterable[str] = (),
                 listen_host: str = "127.0.0.1"):
        self.data_dir = Path(data_dir)
        self.listen_host = listen_host
        self.account_id = account_id
        self.extra_args = list(extra_args)
        self.proc: subprocess.Popen | None = None
        self.endpoint = ""
        self.port = 0
        self.starts = 0
        self.log_path: Path | None = None
        self._log = None

    # ---- lifecycle

    def start(self, port: int = 0, timeout: float = 30.0) -> "Podiam":
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.starts += 1
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}-server-{next(_LOG_SEQ)}.log"
        self._log = open(self.log_path, "wb")
        register_log(self.log_path)
        CREDENTIAL_FILES.append(self.data_dir / "credentials")
        cmd = [podiam_bin(), "serve", "--listen", f"{self.listen_host}:{port}", "--data-dir", str(self.data_dir),
               "--account-id", self.account_id, *self.extra_args]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                                     env=clean_env(PODIAM_LOG=os.environ.get("PODIAM_LOG", "warn")))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"podiam exited with {self.proc.returncode}:\n{self.log()}")
            m = re.search(r"podiam serving on (https?://\S+)", self.log())
            if m:
                self.endpoint = m.group(1)
                self.port = int(self.endpoint.rsplit(":", 1)[1])
                try:
                    if requests.get(f"{self.endpoint}/readyz", timeout=1, verify=False).status_code == 200:
                        return self
                except requests.RequestException:
                    pass
            time.sleep(0.05)
        self.stop(signal.SIGKILL)
        raise RuntimeError(f"podiam not ready within {timeout}s:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
        """Send `sig` and wait for the exit; returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self._log:
            self._log.close()
            self._log = None
        return self.proc.returncode

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace") if self.log_path else ""
        except FileNotFoundError:
            return ""

    # ---- identities

    @property
    def env(self) -> dict[str, str]:
        """AWS env for the account root, through the files the server wrote."""
        return clean_env(AWS_CONFIG_FILE=str(self.data_dir / "config"),
                         AWS_SHARED_CREDENTIALS_FILE=str(self.data_dir / "credentials"),
                         AWS_PROFILE="podiam")

    def root_keys(self, profile: str = "podiam") -> dict[str, str]:
        """Root keys of the first account (or of another account's profile `podiam-<id>`)."""
        cp = configparser.ConfigParser()
        cp.read(self.data_dir / "credentials")
        return {"AccessKeyId": cp[profile]["aws_access_key_id"],
                "SecretAccessKey": cp[profile]["aws_secret_access_key"]}

    def creds_env(self, creds: dict[str, str]) -> dict[str, str]:
        """AWS env for explicit credentials (`AccessKeyId`, `SecretAccessKey`, optional
        `SessionToken`), with no config or credentials file."""
        env = clean_env(AWS_ACCESS_KEY_ID=creds["AccessKeyId"], AWS_SECRET_ACCESS_KEY=creds["SecretAccessKey"],
                        AWS_ENDPOINT_URL=self.endpoint, AWS_DEFAULT_REGION=REGION, AWS_REGION=REGION,
                        AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
        if creds.get("SessionToken"):
            env["AWS_SESSION_TOKEN"] = creds["SessionToken"]
        return env

    # ---- clients

    def aws_rc(self, *args: str, env: dict[str, str] | None = None, timeout: float = 60) -> tuple[int, str, str]:
        """Run the venv's AWS CLI; (returncode, stdout, stderr)."""
        p = subprocess.run([AWS_CLI, *args, "--output", "json"], env=env if env is not None else self.env,
                           capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        remember_secrets(p.stdout)
        return p.returncode, p.stdout, p.stderr

    def aws(self, *args: str, env: dict[str, str] | None = None) -> Any:
        """Run the venv's AWS CLI and return its parsed JSON output ({} when it prints nothing)."""
        rc, out, err = self.aws_rc(*args, env=env)
        if rc != 0:
            raise AwsCliError(args, rc, out, err)
        return json.loads(out) if out.strip() else {}

    def token(self, cluster: str, namespace: str = "default", service_account: str = "my-sa", *,
              audience: Iterable[str] = (), pod: tuple[str, str] | None = None, expiration: int | None = None) -> str:
        """`podiam token ...`: one JWT from the cluster's hosted issuer."""
        args = [podiam_bin(), "token", "--cluster", cluster, "--namespace", namespace, "--service-account", service_account]
        for a in audience:
            args += ["--audience", a]
        if pod:
            args += ["--pod-name", pod[0], "--pod-uid", pod[1]]
        if expiration is not None:
            args += ["--expiration", str(expiration)]
        p = subprocess.run(args, env=self.env, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        assert p.returncode == 0, f"podiam token failed ({p.returncode}): {p.stderr}"
        assert p.stdout.endswith("\n") and p.stdout.count("\n") == 1, repr(p.stdout)
        return p.stdout.strip()

    def podiam(self, *args: str) -> subprocess.CompletedProcess:
        """Run another `podiam` subcommand against this server (root env)."""
        return subprocess.run([podiam_bin(), *args], env=self.env, capture_output=True, text=True, timeout=30,
                              stdin=subprocess.DEVNULL)

    def client(self, service: str, creds: dict[str, str] | None = None, **kw: Any):
        """A boto3 client for `service` on this server (root unless `creds`); no retries, so each
        call is exactly one request, and no client-side parameter validation, so invalid input
        reaches the server."""
        c = creds or self.root_keys()
        session = boto3.session.Session(aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"],
                                         aws_session_token=c.get("SessionToken"), region_name=REGION)
        cfg = botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5,
                                     read_timeout=30, parameter_validation=False,
                                     **kw.pop("config_kw", {}))
        return session.client(service, endpoint_url=self.endpoint, config=cfg, **kw)

    def post(self, params: dict[str, Any], **kw: Any) -> requests.Response:
        """An unsigned query-protocol POST."""
        return requests.post(self.endpoint + "/", data=params, timeout=30, **kw)

    def assume_web(self, role_arn: str, token: str, session: str = "s1", **extra: Any) -> requests.Response:
        """Unsigned AssumeRoleWithWebIdentity over raw HTTP."""
        params = {"Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15", "RoleArn": role_arn,
                  "RoleSessionName": session, "WebIdentityToken": token}
        params.update({k: str(v) for k, v in extra.items()})
        return self.post(params)

    def web_credentials(self, role_arn: str, token: str, session: str = "s1") -> dict[str, str]:
        r = self.assume_web(role_arn, token, session)
        assert r.status_code == 200, r.text
        return {k: xml_text(r.text, k) or "" for k in ("AccessKeyId", "SecretAccessKey", "SessionToken")}

    # ---- fixtures of state

    def irsa(self, cluster: str, role: str, *, sa: str = "my-sa", ns: str = "default", tags: dict[str, str] | None = None,
             register: bool = True, trust_extra: dict | None = None) -> dict[str, str]:
        """With boto3: a cluster, its OIDC provider (unless `register` is false) and a role that
        trusts `system:serviceaccount:<ns>:<sa>` with audience sts.amazonaws.com."""
        eks = self.client("eks")
        iam = self.client("iam")
        kw = {"tags": tags} if tags else {}
        eks.create_cluster(name=cluster, roleArn=f"arn:aws:iam::{ACCOUNT}:role/eks",
                           resourcesVpcConfig={"subnetIds": ["subnet-1"]}, **kw)
        issuer = eks.describe_cluster(name=cluster)["cluster"]["identity"]["oidc"]["issuer"]
        hostpath = issuer.removeprefix("https://")
        out = {"cluster": cluster, "issuer": issuer, "hostpath": hostpath, "id": hostpath.rsplit("/", 1)[1]}
        if register:
            out["provider_arn"] = iam.create_open_id_connect_provider(
                Url=issuer, ClientIDList=[STS_AUDIENCE])["OpenIDConnectProviderArn"]
        if role:
            iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(
                irsa_trust(hostpath, f"system:serviceaccount:{ns}:{sa}", extra=trust_extra)))
            out["role_arn"] = f"arn:aws:iam::{ACCOUNT}:role/{role}"
        return out

    def jwks(self, issuer_id: str) -> dict:
        r = requests.get(f"{self.endpoint}/id/{issuer_id}/keys", timeout=10)
        assert r.status_code == 200, r.text
        return r.json()


def irsa_trust(hostpath: str, sub: str, aud: str = STS_AUDIENCE, *, extra: dict | None = None,
               operator: str = "StringEquals") -> dict:
    cond = {operator: {f"{hostpath}:sub": sub, f"{hostpath}:aud": aud}}
    stmt = {"Effect": "Allow", "Principal": {"Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/{hostpath}"},
            "Action": "sts:AssumeRoleWithWebIdentity", "Condition": cond}
    if extra:
        stmt.update(extra)
    return {"Version": "2012-10-17", "Statement": [stmt]}


def principal_trust(principal: dict, actions: str | list[str] = "sts:AssumeRole", condition: dict | None = None) -> str:
    stmt: dict[str, Any] = {"Effect": "Allow", "Principal": principal, "Action": actions}
    if condition:
        stmt["Condition"] = condition
    return json.dumps({"Version": "2012-10-17", "Statement": [stmt]})


def allow(actions: str | list[str], resource: str = "*", effect: str = "Allow", condition: dict | None = None) -> str:
    stmt: dict[str, Any] = {"Effect": effect, "Action": actions, "Resource": resource}
    if condition:
        stmt["Condition"] = condition
    return json.dumps({"Version": "2012-10-17", "Statement": [stmt]})


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# ------------------------------------------------------------------------------------- JWT


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64u_decode(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def jwt_parts(token: str) -> tuple[dict, dict]:
    """(header, payload) of a JWT, unverified."""
    h, p, _ = token.split(".")
    return json.loads(b64u_decode(h)), json.loads(b64u_decode(p))


def raw_jwt(header: dict, payload: dict, signature: bytes = b"") -> str:
    return ".".join([b64u(json.dumps(header).encode()), b64u(json.dumps(payload).encode()), b64u(signature)])


def hs256_jwt(header: dict, payload: dict, secret: bytes) -> str:
    signing_input = f"{b64u(json.dumps(header).encode())}.{b64u(json.dumps(payload).encode())}"
    sig = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64u(sig)}"


def jwk_to_public_key(jwk: dict):
    if jwk["kty"] == "RSA":
        n = int.from_bytes(b64u_decode(jwk["n"]), "big")
        e = int.from_bytes(b64u_decode(jwk["e"]), "big")
        return rsa.RSAPublicNumbers(e, n).public_key()
    if jwk["kty"] == "EC":
        x = int.from_bytes(b64u_decode(jwk["x"]), "big")
        y = int.from_bytes(b64u_decode(jwk["y"]), "big")
        return ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
    raise ValueError(jwk["kty"])


def public_key_secrets(pub) -> list[bytes]:
    """The encodings of a public key an algorithm-confusion attacker would use as an HMAC key."""
    return [
        pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
        pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1),
        pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo),
    ]


def rsa_jwk(key: rsa.RSAPrivateKey, kid: str) -> dict:
    nums = key.public_key().public_numbers()
    return {"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
            "n": b64u(nums.n.to_bytes((nums.n.bit_length() + 7) // 8, "big")),
            "e": b64u(nums.e.to_bytes((nums.e.bit_length() + 7) // 8, "big"))}


def ec_jwk(key: ec.EllipticCurvePrivateKey, kid: str) -> dict:
    nums = key.public_key().public_numbers()
    return {"kty": "EC", "kid": kid, "use": "sig", "alg": "ES256", "crv": "P-256",
            "x": b64u(nums.x.to_bytes(32, "big")), "y": b64u(nums.y.to_bytes(32, "big"))}


def new_rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


# ------------------------------------------------------------------------- external issuer


def make_ca_and_leaf(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1/localhost signed by it: (ca, cert, key) PEM paths."""
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "podiam e2e CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


def self_signed_cert(hosts: tuple[str, ...] = ("localhost",), ips: tuple[str, ...] = ("127.0.0.1",)):
    """(certificate, key) of a self-signed TLS server certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
    now = dt.datetime.now(dt.timezone.utc)
    san = [x509.DNSName(h) for h in hosts] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert, key


class IssuerHost:
    """An HTTPS server on port 443 of a random loopback address 127.x.y.z (IAM provider URLs carry
    no port, as in AWS) with a self-signed certificate for that address, `localhost` and
    127.0.0.1. It serves any number of external OIDC issuers, one per path:
    `https://127.x.y.z/<name>`. Port 443 needs root (or CAP_NET_BIND_SERVICE)."""

    def __init__(self, tmpdir: Path):
        self.issuers: dict[str, "ExternalIssuer"] = {}
        host_self = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                name, _, rest = self.path.lstrip("/").partition("/")
                iss = host_self.issuers.get(name)
                if iss is None:
                    self.send_error(404)
                    return
                iss.hits["/" + rest] = iss.hits.get("/" + rest, 0) + 1
                if iss.down:
                    self.send_error(503)
                    return
                if rest == ".well-known/openid-configuration":
                    body = {"issuer": iss.discovery_issuer or iss.issuer, "jwks_uri": f"{iss.issuer}/keys",
                            "response_types_supported": ["id_token"], "subject_types_supported": ["public"],
                            "id_token_signing_alg_values_supported": ["RS256", "ES256"]}
                elif rest == "keys":
                    body = {"keys": [iss.public_jwk(k) for k in iss.served]}
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *a):  # quiet
                pass

        last: Exception | None = None
        for _ in range(20):
            ip = f"127.{secrets.randbelow(254) + 1}.{secrets.randbelow(254) + 1}.{secrets.randbelow(253) + 2}"
            try:
                self.httpd = http.server.ThreadingHTTPServer((ip, 443), Handler)
                break
            except PermissionError as e:
                raise RuntimeError("binding port 443 needs root or CAP_NET_BIND_SERVICE") from e
            except OSError as e:  # in use: another address
                last = e
        else:
            raise RuntimeError(f"no free loopback address for port 443: {last}")
        self.ip = ip
        self.cert, tls_key = self_signed_cert(("localhost",), (ip, "127.0.0.1"))
        self.thumbprint = hashlib.sha1(self.cert.public_bytes(serialization.Encoding.DER)).hexdigest()
        d = Path(tempfile.mkdtemp(dir=tmpdir))
        (d / "cert.pem").write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        (d / "key.pem").write_bytes(tls_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(d / "cert.pem", d / "key.pem")
        shutil.rmtree(d)
        self.httpd.daemon_threads = True
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.base = f"https://{ip}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()
        self.running = True

    def issuer(self, name: str | None = None, **kw: Any) -> "ExternalIssuer":
        iss = ExternalIssuer(self, name or unique("iss"), **kw)
        self.issuers[iss.name] = iss
        return iss

    def stop(self) -> None:
        if self.running:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.running = False


class ExternalIssuer:
    """One OIDC issuer podiam does not host, `https://127.x.y.z/<name>` on an IssuerHost, with
    RSA (or EC) signing keys the test controls. `down` makes it answer 503."""

    def __init__(self, host: IssuerHost, name: str, *, kid: str = "key-1", ec_key: bool = False,
                 discovery_issuer: str | None = None):
        self.host = host
        self.name = name
        self.issuer = f"{host.base}/{name}"
        self.hostpath = self.issuer.removeprefix("https://")
        self.provider_arn = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{self.hostpath}"
        self.thumbprint = host.thumbprint
        self.discovery_issuer = discovery_issuer
        self.down = False
        self.hits: dict[str, int] = {}
        self.keys: dict[str, Any] = {}
        self.served: list[str] = []
        self.add_key(kid, ec_key=ec_key)

    def add_key(self, kid: str, *, ec_key: bool = False, serve: bool = True):
        self.keys[kid] = ec.generate_private_key(ec.SECP256R1()) if ec_key else new_rsa()
        if serve:
            self.served.append(kid)
        return self.keys[kid]

    def public_jwk(self, kid: str) -> dict:
        k = self.keys[kid]
        return ec_jwk(k, kid) if isinstance(k, ec.EllipticCurvePrivateKey) else rsa_jwk(k, kid)

    def fetches(self) -> int:
        """How many times the JWKS was requested."""
        return self.hits.get("/keys", 0)

    def claims(self, sub: str = "system:serviceaccount:default:my-sa", aud: str | list[str] = STS_AUDIENCE,
               lifetime: int = 3600, **extra: Any) -> dict:
        now = int(time.time())
        c = {"iss": self.issuer, "sub": sub, "aud": aud, "iat": now, "nbf": now, "exp": now + lifetime}
        c.update(extra)
        return {k: v for k, v in c.items() if v is not None}

    def sign(self, claims: dict | None = None, *, kid: str | None = None, key=None, headers: dict | None = None) -> str:
        import jwt  # pyjwt

        kid = kid or self.served[-1]
        key = key if key is not None else self.keys[kid]
        alg = "ES256" if isinstance(key, ec.EllipticCurvePrivateKey) else "RS256"
        h = {"kid": kid, **(headers or {})}
        return jwt.encode(claims or self.claims(), key, algorithm=alg, headers=h)

    def register(self, server: Podiam, *, thumbprints: list[str] | None = None, client_ids: list[str] | None = None) -> str:
        iam = server.client("iam")
        return iam.create_open_id_connect_provider(
            Url=self.issuer, ClientIDList=client_ids or [STS_AUDIENCE],
            ThumbprintList=[self.thumbprint] if thumbprints is None else thumbprints)["OpenIDConnectProviderArn"]

    def role(self, server: Podiam, name: str, sub: str = "system:serviceaccount:default:my-sa") -> str:
        server.client("iam").create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(irsa_trust(self.hostpath, sub)))
        return f"arn:aws:iam::{ACCOUNT}:role/{name}"
