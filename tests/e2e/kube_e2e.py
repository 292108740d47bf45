"""A real Kubernetes control plane for podiam's end-to-end tests: etcd and kube-apiserver on
loopback, as controller-runtime's envtest runs them (no kubelet, scheduler or controller-manager),
driven with kubectl. The binaries come from `scripts/kube.sh build` (versions pinned in
scripts/kube/go.mod). Pods can be created through the API (they stay Pending) and the apiserver
issues real service-account tokens through the TokenRequest API, signed with the keys its
--service-account-* flags name (those `podiam issuer export` prints).

As a library: `kube_bin()` and `ControlPlane`. As a program (what `scripts/kube.sh start|stop`
runs): `kube_e2e.py start DIR [kube-apiserver flags...]` starts both processes detached, waits for
/readyz and prints shell assignments (KUBECONFIG=...); run again on the same DIR it restarts
kube-apiserver with the new flags and keeps etcd and its data; `kube_e2e.py stop DIR` stops both.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import shlex
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterable

REPO = Path(__file__).resolve().parents[2]
KUBE_SH = REPO / "scripts" / "kube.sh"


# What a pod's SDK does with the IRSA environment: boto3's default chain, in a fresh process.
PROBE = r"""
import json
import boto3, botocore.exceptions
try:
    s = boto3.Session()
    out = {"ok": s.client("sts").get_caller_identity()}
    out["method"] = s.get_credentials().method
except botocore.exceptions.ClientError as e:
    out = {"code": e.response["Error"]["Code"], "status": e.response["ResponseMetadata"]["HTTPStatusCode"]}
except Exception as e:
    out = {"exception": type(e).__name__, "message": str(e)}
print(json.dumps(out, default=str))
"""


def as_pod(endpoint: str, region: str, python: str, tmp_path: Path, role_arn: str, token: str) -> dict:
    """boto3's default chain in a fresh process with exactly the environment IRSA gives a pod,
    STS at `endpoint`; what it got (`ok`, or the error `code` and `status`)."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    tok = tmp_path / "token"
    tok.write_text(token)
    env = {"HOME": str(home), "AWS_ROLE_ARN": role_arn, "AWS_WEB_IDENTITY_TOKEN_FILE": str(tok),
           "AWS_ENDPOINT_URL_STS": endpoint, "AWS_REGION": region, "AWS_DEFAULT_REGION": region,
           "AWS_ROLE_SESSION_NAME": "kube-pod"}
    p = subprocess.run([python, "-c", PROBE], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


class KubeUnavailable(Exception):
    """The control plane cannot be had here (no binaries, or a process would not start)."""


def kube_bin() -> Path:
    """The directory of kube-apiserver, kubectl and etcd: $PODIAM_KUBE_BIN if set, else what
    `scripts/kube.sh build` prints (a cache hit costs a second; a cold build many minutes)."""
    if os.environ.get("PODIAM_KUBE_BIN"):
        d = Path(os.environ["PODIAM_KUBE_BIN"])
    else:
        p = subprocess.run(["bash", str(KUBE_SH), "build"], capture_output=True, text=True,
                           stdin=subprocess.DEVNULL)
        if p.returncode != 0:
            tail = "\n".join(p.stderr.strip().splitlines()[-15:])
            raise KubeUnavailable(f"scripts/kube.sh build failed ({p.returncode}):\n{tail}")
        d = Path(p.stdout.strip().splitlines()[-1])
    missing = [b for b in ("kube-apiserver", "kubectl", "etcd") if not os.access(d / b, os.X_OK)]
    if missing:
        raise KubeUnavailable(f"not executable in {d}: {', '.join(missing)}")
    return d


def _die_with_parent() -> None:
    """In the child: SIGKILL when the process that started it dies (a test run that is killed
    leaves no apiserver behind)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def non_loopback_address() -> str | None:
    """An IPv4 address of this host that is neither loopback nor link-local (the first
    interface's that has one), or None. An EndpointSlice may not name a loopback address, so a
    Service in front of a process on this host needs such an address."""
    import fcntl
    import struct

    for _, name in socket.if_nameindex():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:  # SIOCGIFADDR
                packed = fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", name.encode()[:15]))
            except OSError:
                continue
        a = ipaddress.ip_address(socket.inet_ntoa(packed[20:24]))
        if not (a.is_loopback or a.is_link_local or a.is_unspecified or a.is_multicast):
            return str(a)
    return None


def free_loopback_address(port: int = 443, tries: int = 20) -> str:
    """A random loopback address 127.x.y.z where `port` is free (probed by binding it), as the
    external issuers of podiam_e2e.IssuerHost are chosen: an issuer URL `https://127.x.y.z`
    carries no port, and processes in parallel each get an address of their own. Port 443 needs
    root (or CAP_NET_BIND_SERVICE)."""
    import secrets

    last: OSError | None = None
    for _ in range(tries):
        ip = f"127.{secrets.randbelow(254) + 1}.{secrets.randbelow(254) + 1}.{secrets.randbelow(253) + 2}"
        with socket.socket() as s:
            try:
                s.bind((ip, port))
                return ip
            except PermissionError as e:
                raise KubeUnavailable(f"binding port {port} needs root or CAP_NET_BIND_SERVICE: {e}") from e
            except OSError as e:  # in use: another address
                last = e
    raise KubeUnavailable(f"no free loopback address for port {port}: {last}")


# ------------------------------------------------------------------------------ certificates


def _write_pki(d: Path, ips: Iterable[str] = ()) -> None:
    """A CA, a serving certificate for 127.0.0.1/localhost (and `ips`) and an admin client
    certificate (group system:masters), all signed by the CA. apiserver-chain.crt is the serving
    certificate followed by the CA, for an apiserver that serves its chain."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    except ImportError as e:
        raise KubeUnavailable(f"{e}: the certificates need Python's cryptography (scripts/pyenv.sh makes .venv)") from e

    now = dt.datetime.now(dt.timezone.utc)

    def pem_key(k) -> bytes:
        return k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                               serialization.NoEncryption())

    def write(name: str, data: bytes, mode: int = 0o644) -> None:
        p = d / name
        p.write_bytes(data)
        p.chmod(mode)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "podiam-test-kube-ca")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=7))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))

    def leaf(subject: x509.Name, usage, san: list | None):
        key = ec.generate_private_key(ec.SECP256R1())
        b = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_name).public_key(key.public_key())
             .serial_number(x509.random_serial_number())
             .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=7))
             .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
             .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
             .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False))
        if san:
            b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
        return b.sign(ca_key, hashes.SHA256()), key

    serving, serving_key = leaf(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]),
                                ExtendedKeyUsageOID.SERVER_AUTH,
                                [x509.DNSName("localhost")]
                                + [x509.IPAddress(ipaddress.ip_address(i)) for i in dict.fromkeys(["127.0.0.1", *ips])])
    admin, admin_key = leaf(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters"),
                                       x509.NameAttribute(NameOID.COMMON_NAME, "podiam-test-admin")]),
                            ExtendedKeyUsageOID.CLIENT_AUTH, None)
    pem = serialization.Encoding.PEM
    write("ca.crt", ca.public_bytes(pem))
    write("apiserver.crt", serving.public_bytes(pem))
    write("apiserver-chain.crt", serving.public_bytes(pem) + ca.public_bytes(pem))
    write("apiserver.key", pem_key(serving_key), 0o600)
    write("admin.crt", admin.public_bytes(pem))
    write("admin.key", pem_key(admin_key), 0o600)
    sa = ec.generate_private_key(ec.SECP256R1())
    write("sa.key", sa.private_bytes(pem, serialization.PrivateFormat.TraditionalOpenSSL,
                                     serialization.NoEncryption()), 0o600)
    write("sa.pub", sa.public_key().public_bytes(pem, serialization.PublicFormat.SubjectPublicKeyInfo))


# ----------------------------------------------------------------------------- control plane


class ControlPlane:
    """etcd and kube-apiserver over DIR (etcd data in DIR/etcd, certificates in DIR/pki, the admin
    kubeconfig DIR/kubeconfig, logs DIR/*.log). `detach` starts them in their own sessions, for
    the command line: they outlive this process, and DIR/state.json records their pids.

    kube-apiserver listens on `host` (a loopback address; its serving certificate names it) and
    `secure_port` (0: a free port); `serve_chain` makes it serve its certificate followed by the
    CA's (as a certificate chain ending in a CA, which an OIDC provider thumbprint can name);
    `anonymous_auth` lets unauthenticated requests in (as system:anonymous, for RBAC to allow or
    not: e.g. the service-account issuer's discovery)."""

    def __init__(self, directory: Path, bin_dir: Path | None = None, *, detach: bool = False,
                 host: str = "127.0.0.1", secure_port: int = 0, serve_chain: bool = False,
                 anonymous_auth: bool = False):
        self.dir = Path(directory).resolve()
        self.bin = Path(bin_dir) if bin_dir else kube_bin()
        self.detach = detach
        self.host = host
        self.secure_port = secure_port
        self.serve_chain = serve_chain
        self.anonymous_auth = anonymous_auth
        self.pki = self.dir / "pki"
        self.kubeconfig = self.dir / "kubeconfig"
        self.etcd_port = 0
        self.port = 0
        self.etcd: subprocess.Popen | int | None = None
        self.apiserver: subprocess.Popen | int | None = None
        self.apiserver_flags: list[str] = []
        self.starts = 0
        self.last_start_seconds = 0.0

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    # ---- lifecycle

    def start(self, flags: Iterable[str] = (), timeout: float = 120.0) -> "ControlPlane":
        """Start etcd (unless running) and kube-apiserver with `flags` appended to its own."""
        self.dir.mkdir(parents=True, exist_ok=True)
        if not (self.pki / "ca.crt").exists():
            self.pki.mkdir(mode=0o700, exist_ok=True)
            _write_pki(self.pki, [self.host])
        if not self._alive(self.etcd):
            self._start_etcd(timeout)
        self.start_apiserver(flags, timeout)
        return self

    def _spawn(self, name: str, cmd: list[str]) -> subprocess.Popen:
        log = open(self.dir / f"{name}.log", "ab")
        log.write(f"\n==== {time.strftime('%H:%M:%S')} {shlex.join(cmd)}\n".encode())
        log.flush()
        try:
            return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    cwd=self.dir, start_new_session=self.detach,
                                    preexec_fn=None if self.detach else _die_with_parent)
        finally:
            log.close()

    def _start_etcd(self, timeout: float) -> None:
        client, peer = free_port(), free_port()
        self.etcd_port = client
        cmd = [str(self.bin / "etcd"), "--name", "podiam-test", "--data-dir", str(self.dir / "etcd"),
               "--listen-client-urls", f"http://127.0.0.1:{client}",
               "--advertise-client-urls", f"http://127.0.0.1:{client}",
               "--listen-peer-urls", f"http://127.0.0.1:{peer}",
               "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
               "--initial-cluster", f"podiam-test=http://127.0.0.1:{peer}",
               "--unsafe-no-fsync", "--log-level", "warn"]
        self.etcd = self._spawn("etcd", cmd)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.etcd.poll() is not None:
                raise KubeUnavailable(f"etcd exited with {self.etcd.returncode}:\n{self.log('etcd')}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{client}/health", timeout=1) as r:
                    if json.loads(r.read()).get("health") == "true":
                        return
            except (OSError, ValueError):
                pass
            time.sleep(0.1)
        self._kill(self.etcd)
        raise KubeUnavailable(f"etcd not healthy within {timeout}s:\n{self.log('etcd')}")

    def start_apiserver(self, flags: Iterable[str] = (), timeout: float = 120.0) -> None:
        """(Re)start kube-apiserver with `flags`; etcd and its data stay. Waits for /readyz."""
        self.stop_apiserver()
        self.apiserver_flags = list(flags)
        if not any(f.startswith("--service-account-issuer") for f in self.apiserver_flags):
            # No issuer given: a key of its own, so that the apiserver starts all the same.
            self.apiserver_flags += ["--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                                     f"--service-account-key-file={self.pki / 'sa.pub'}",
                                     f"--service-account-signing-key-file={self.pki / 'sa.key'}"]
        t0 = time.monotonic()
        for attempt in range(3):  # a free port can be taken between the probe and the bind
            self.port = self.secure_port or free_port()
            cert = "apiserver-chain.crt" if self.serve_chain else "apiserver.crt"
            cmd = [str(self.bin / "kube-apiserver"),
                   f"--bind-address={self.host}", f"--advertise-address={self.host}", f"--secure-port={self.port}",
                   f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
                   f"--tls-cert-file={self.pki / cert}",
                   f"--tls-private-key-file={self.pki / 'apiserver.key'}",
                   f"--client-ca-file={self.pki / 'ca.crt'}",
                   f"--cert-dir={self.dir / 'apiserver-certs'}",
                   *([] if any(f.startswith("--authorization-mode") for f in self.apiserver_flags)
                     else ["--authorization-mode=RBAC"]),
                   f"--anonymous-auth={str(self.anonymous_auth).lower()}",
                   "--endpoint-reconciler-type=none",
                   "--service-cluster-ip-range=10.96.0.0/24", "--allow-privileged=true",
                   "--profiling=false", "--v=1",
                   *self.apiserver_flags]
            self.apiserver = self._spawn("kube-apiserver", cmd)
            err = self._wait_ready(timeout - (time.monotonic() - t0))
            if err is None:
                self.starts += 1
                self.last_start_seconds = time.monotonic() - t0
                self._write_kubeconfig()
                self._save_state()
                return
            self._kill(self.apiserver)
            self.apiserver = None
            if "address already in use" not in err or attempt == 2 or self.secure_port:
                raise KubeUnavailable(err)
        raise AssertionError("unreachable")

    def _wait_ready(self, timeout: float) -> str | None:
        ctx = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
        ctx.load_cert_chain(self.pki / "admin.crt", self.pki / "admin.key")
        deadline = time.monotonic() + max(timeout, 1)
        last = ""
        while time.monotonic() < deadline:
            rc = self._returncode(self.apiserver)
            if rc is not None:
                return f"kube-apiserver exited with {rc}:\n{self.log('kube-apiserver')[-6000:]}"
            try:
                with urllib.request.urlopen(f"{self.url}/readyz", timeout=2, context=ctx) as r:
                    if r.status == 200:
                        return None
            except urllib.error.HTTPError as e:
                last = f"/readyz {e.code}"
            except OSError as e:
                last = str(e)
            time.sleep(0.2)
        return f"kube-apiserver not ready within {timeout:.0f}s ({last}):\n{self.log('kube-apiserver')[-6000:]}"

    def _write_kubeconfig(self) -> None:
        cfg = {
            "apiVersion": "v1", "kind": "Config", "current-context": "podiam-test",
            "clusters": [{"name": "podiam-test", "cluster": {"server": self.url,
                                                             "certificate-authority": str(self.pki / "ca.crt")}}],
            "users": [{"name": "admin", "user": {"client-certificate": str(self.pki / "admin.crt"),
                                                 "client-key": str(self.pki / "admin.key")}}],
            "contexts": [{"name": "podiam-test", "context": {"cluster": "podiam-test", "user": "admin"}}],
        }
        self.kubeconfig.write_text(json.dumps(cfg, indent=2) + "\n")  # JSON is YAML
        self.kubeconfig.chmod(0o600)

    def stop_apiserver(self) -> None:
        self._kill(self.apiserver)
        self.apiserver = None

    def stop(self) -> None:
        self.stop_apiserver()
        self._kill(self.etcd)
        self.etcd = None
        self._save_state()

    # ---- state for the command line (pids of detached processes)

    def _save_state(self) -> None:
        def pid(p):
            return p.pid if isinstance(p, subprocess.Popen) else p
        state = {"etcd_pid": pid(self.etcd), "etcd_port": self.etcd_port, "apiserver_pid": pid(self.apiserver),
                 "host": self.host, "port": self.port, "bin": str(self.bin), "apiserver_flags": self.apiserver_flags}
        (self.dir / "state.json").write_text(json.dumps(state, indent=2) + "\n")

    def load_state(self) -> "ControlPlane":
        p = self.dir / "state.json"
        if p.exists():
            s = json.loads(p.read_text())
            self.etcd, self.etcd_port = s.get("etcd_pid"), s.get("etcd_port", 0)
            self.apiserver, self.port = s.get("apiserver_pid"), s.get("port", 0)
            self.host = s.get("host", self.host)
            self.apiserver_flags = s.get("apiserver_flags", [])
            for attr, exe in (("etcd", "etcd"), ("apiserver", "kube-apiserver")):
                if not self._alive(getattr(self, attr), exe):
                    setattr(self, attr, None)
        return self

    # ---- processes

    @staticmethod
    def _returncode(p) -> int | None:
        if isinstance(p, subprocess.Popen):
            return p.poll()
        return None if ControlPlane._alive(p) else -1

    @staticmethod
    def _alive(p, exe: str | None = None) -> bool:
        if p is None:
            return False
        if isinstance(p, subprocess.Popen):
            return p.poll() is None
        try:  # a pid from state.json: alive, and still the program we started
            cmdline = Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0")[0].decode()
        except OSError:
            return False
        return exe is None or Path(cmdline).name == exe

    def _kill(self, p, timeout: float = 20.0) -> None:
        if not self._alive(p):
            return
        pid = p.pid if isinstance(p, subprocess.Popen) else p
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if isinstance(p, subprocess.Popen):
                if p.poll() is not None:
                    return
            elif not self._alive(p):
                return
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)
        if isinstance(p, subprocess.Popen):
            p.wait(10)

    def log(self, name: str) -> str:
        try:
            return (self.dir / f"{name}.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # ---- clients

    def kubectl_rc(self, *args: str, stdin: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "AWS_"))}
        env["KUBECONFIG"] = str(self.kubeconfig)
        env["HOME"] = str(self.dir)  # kubectl's discovery cache stays in DIR
        return subprocess.run([str(self.bin / "kubectl"), *args], input=stdin, env=env, capture_output=True,
                              text=True, timeout=timeout, stdin=None if stdin is not None else subprocess.DEVNULL)

    def kubectl(self, *args: str, stdin: str | None = None, timeout: float = 60) -> str:
        p = self.kubectl_rc(*args, stdin=stdin, timeout=timeout)
        if p.returncode != 0:
            raise RuntimeError(f"kubectl {shlex.join(args)} exited {p.returncode}: {p.stderr.strip()}")
        return p.stdout

    def whoami(self, token: str) -> dict:
        """The user the apiserver authenticates `token` as (a SelfSubjectReview):
        {"username": ..., "groups": [...], ...}."""
        ctx = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
        body = json.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}).encode()
        req = urllib.request.Request(f"{self.url}/apis/authentication.k8s.io/v1/selfsubjectreviews", data=body,
                                     method="POST", headers={"Authorization": f"Bearer {token}",
                                                             "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10, context=ctx) as r:
            return json.loads(r.read())["status"]["userInfo"]

    def apply(self, obj: dict) -> dict:
        """Create `obj` (a manifest as a dict) and return it as the API stored it."""
        return json.loads(self.kubectl("create", "-f", "-", "-o", "json", stdin=json.dumps(obj)))


# ----------------------------------------------------------------------------- command line


def _main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in ("start", "stop"):
        print("usage: kube_e2e.py start DIR [kube-apiserver flags...] | stop DIR", file=sys.stderr)
        return 2
    cmd, d, flags = argv[0], Path(argv[1]), argv[2:]
    try:
        if cmd == "stop":
            cp = ControlPlane(d, Path(os.environ.get("PODIAM_KUBE_BIN") or "/nonexistent"), detach=True).load_state()
            cp.stop()
            print(f"stopped the control plane of {cp.dir}", file=sys.stderr)
            return 0
        cp = ControlPlane(d, detach=True).load_state()
        t0 = time.monotonic()
        cp.start(flags)
        print(f"kube-apiserver ready at {cp.url} in {time.monotonic() - t0:.1f}s "
              f"(logs in {cp.dir}/*.log; stop with scripts/kube.sh stop {shlex.quote(str(d))})", file=sys.stderr)
        for k, v in (("KUBECONFIG", cp.kubeconfig), ("KUBE_APISERVER_URL", cp.url),
                     ("KUBE_CA_FILE", cp.pki / "ca.crt"), ("KUBE_BIN", cp.bin)):
            print(f"export {k}={shlex.quote(str(v))}")
        return 0
    except KubeUnavailable as e:
        print(f"kube_e2e.py: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
