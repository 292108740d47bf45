"""Replicas: several `podiam serve` processes on one PostgreSQL, sharing a master key file.

A write through one replica is visible through the others within a second (change feed with
LISTEN/NOTIFY), sessions minted by one verify on the others, a killed replica costs the others
nothing, and a PostgreSQL outage leaves reads and the credential path working from memory while
writes fail with a 500 ServiceFailure (and work again once PostgreSQL is back); past
--max-staleness, a replica answers credential calls and /readyz with 503.

Needs PODIAM_TEST_POSTGRES_URL (scripts/test.sh starts a server with scripts/postgres.sh). The
outage test also needs PODIAM_PG_DIR, the cluster scripts/postgres.sh manages, to stop and start
it. Each module run works in a fresh database of that server.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import botocore.exceptions
import pytest
import requests

from podiam_e2e import (ACCOUNT, REPO, STS_AUDIENCE, Podiam, allow, b64u, b64u_decode, client_error, irsa_trust, jwt_parts,
                        podiam_bin, principal_trust, require)

PG_URL = os.environ.get("PODIAM_TEST_POSTGRES_URL", "")
PG_DIR = os.environ.get("PODIAM_PG_DIR", "")
PG_SCRIPT = str(REPO / "scripts" / "postgres.sh")



@pytest.fixture(scope="module", autouse=True)
def postgres_url():
    require(PG_URL, "PODIAM_TEST_POSTGRES_URL is unset: no PostgreSQL to run replicas on "
            "(scripts/test.sh starts one with scripts/postgres.sh)")

CALLER = "replica-caller"  # the IAM user that assumes the test roles (root may not)
ROOT_TRUST = principal_trust({"AWS": f"arn:aws:iam::{ACCOUNT}:user/{CALLER}"})
LIMIT = 1.0  # seconds within which a replica must see another's write


def fresh_database() -> str:
    """URL of a new, empty database on the test server."""
    name = f"podiam_e2e_{uuid.uuid4().hex[:12]}"
    if PG_DIR:
        p = subprocess.run(["bash", PG_SCRIPT, "createdb", name], capture_output=True, text=True, timeout=60,
                           env={**os.environ, "PODIAM_PG_DIR": PG_DIR})
        assert p.returncode == 0, p.stderr
        return p.stdout.strip()
    psql = shutil.which("psql")
    if psql is None:
        return PG_URL  # must then be an empty database
    p = subprocess.run([psql, "-X", "-q", PG_URL, "-c", f"CREATE DATABASE {name}"], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    base, _, query = PG_URL.partition("?")
    return base.rsplit("/", 1)[0] + f"/{name}" + (f"?{query}" if query else "")


def pg_ctl(action: str) -> None:
    p = subprocess.run(["bash", PG_SCRIPT, action], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PODIAM_PG_DIR": PG_DIR})
    assert p.returncode == 0, f"postgres.sh {action}: {p.stderr}"


def write_master_key(path: Path) -> Path:
    path.write_text(base64.b64encode(os.urandom(32)).decode() + "\n")
    path.chmod(0o600)
    return path


def replica(base: Path, name: str, url: str, key: Path, *extra: str) -> Podiam:
    return Podiam(base / name, extra_args=["--store", url, "--master-key-file", str(key), *extra])


def until(what: str, fn, limit: float = LIMIT, step: float = 0.005):
    """Call `fn` until it returns a truthy value or `limit` seconds pass; (value, elapsed)."""
    t0 = time.monotonic()
    last: Exception | None = None
    while True:
        try:
            v = fn()
            if v:
                return v, time.monotonic() - t0
        except botocore.exceptions.ClientError as e:
            last = e
        if time.monotonic() - t0 > limit:
            raise AssertionError(f"{what}: not within {limit}s (last error: {last})")
        time.sleep(step)


def error_of(fn) -> tuple[int, str]:
    with pytest.raises(botocore.exceptions.ClientError) as e:
        fn()
    return client_error(e.value)


class Cluster:
    def __init__(self, base: Path):
        self.url = fresh_database()
        self.key = write_master_key(base / "master.key")
        self.base = base
        self.r1 = replica(base, "r1", self.url, self.key).start()  # creates the account
        self.r2 = replica(base, "r2", self.url, self.key).start()
        self.root = self.r1.root_keys()
        iam = self.iam(self.r1)
        iam.create_user(UserName=CALLER)
        iam.put_user_policy(UserName=CALLER, PolicyName="assume", PolicyDocument=allow("sts:AssumeRole"))
        k = iam.create_access_key(UserName=CALLER)["AccessKey"]
        self.user = {"AccessKeyId": k["AccessKeyId"], "SecretAccessKey": k["SecretAccessKey"]}

    def iam(self, r: Podiam):
        return r.client("iam", self.root)

    def sts(self, r: Podiam, creds: dict | None = None):
        return r.client("sts", creds or self.root)

    def cli(self, r: Podiam, *args: str, creds: dict | None = None):
        return r.aws(*args, env=r.creds_env(creds or self.root))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, request):
    c = Cluster(tmp_path_factory.mktemp("replicas"))
    yield c
    for r in (c.r1, c.r2):
        died = r.proc is not None and r.proc.poll() is not None
        rc = r.stop()
        if request.session.testsfailed or rc not in (0, None) or died:
            print(f"\n--- {r.data_dir.name} log (exit {rc}) ---\n{r.log()[-4000:]}")
        assert "panicked" not in r.log(), r.log()[-4000:]


def test_second_replica_joins_without_bootstrap(cluster):
    """The second replica finds the account in the store: it creates nothing and writes no
    credentials; the first replica's root key works on it."""
    assert (cluster.r1.data_dir / "credentials").exists()
    assert not (cluster.r2.data_dir / "credentials").exists()
    for r in (cluster.r1, cluster.r2):
        assert cluster.sts(r).get_caller_identity()["Arn"] == f"arn:aws:iam::{ACCOUNT}:root"


def test_role_created_on_one_replica_is_usable_on_the_other_within_a_second(cluster):
    r1, r2 = cluster.r1, cluster.r2
    name = f"repl-{uuid.uuid4().hex[:8]}"
    iam2, sts2 = cluster.iam(r2), cluster.sts(r2, cluster.user)
    created = cluster.cli(r1, "iam", "create-role", "--role-name", name, "--assume-role-policy-document", ROOT_TRUST)
    t_written = time.monotonic()
    role, _ = until("GetRole on replica 2", lambda: iam2.get_role(RoleName=name)["Role"])
    creds, _ = until("AssumeRole on replica 2", lambda: sts2.assume_role(RoleArn=role["Arn"], RoleSessionName="s1")["Credentials"])
    elapsed = time.monotonic() - t_written
    print(f"role usable on replica 2 {elapsed * 1000:.0f} ms after CreateRole returned on replica 1")
    assert elapsed < LIMIT, elapsed
    assert role["RoleId"] == created["Role"]["RoleId"]
    assert creds["AccessKeyId"].startswith("ASIA")
    # and through the CLI too
    assert cluster.cli(r2, "iam", "get-role", "--role-name", name)["Role"]["Arn"] == role["Arn"]

    # Writes work through either replica: an inline policy added on replica 2 shows on replica 1.
    cluster.cli(r2, "iam", "put-role-policy", "--role-name", name, "--policy-name", "p",
                "--policy-document", '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}')
    t = time.monotonic()
    until("inline policy on replica 1", lambda: cluster.iam(r1).list_role_policies(RoleName=name)["PolicyNames"] == ["p"])
    assert time.monotonic() - t < LIMIT


def test_sessions_minted_on_one_replica_verify_on_the_other(cluster):
    r1, r2 = cluster.r1, cluster.r2
    name = f"sess-{uuid.uuid4().hex[:8]}"
    cluster.iam(r1).create_role(RoleName=name, AssumeRolePolicyDocument=ROOT_TRUST)
    arn = f"arn:aws:iam::{ACCOUNT}:role/{name}"
    until("role on replica 2", lambda: cluster.iam(r2).get_role(RoleName=name))
    minted_on_1 = cluster.sts(r1, cluster.user).assume_role(RoleArn=arn, RoleSessionName="from-r1")["Credentials"]
    minted_on_2 = cluster.sts(r2, cluster.user).assume_role(RoleArn=arn, RoleSessionName="from-r2")["Credentials"]
    creds1 = {k: minted_on_1[k] for k in ("AccessKeyId", "SecretAccessKey", "SessionToken")}
    creds2 = {k: minted_on_2[k] for k in ("AccessKeyId", "SecretAccessKey", "SessionToken")}
    who = cluster.cli(r2, "sts", "get-caller-identity", creds=creds1)
    assert who["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/{name}/from-r1"
    assert cluster.sts(r1, creds2).get_caller_identity()["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/{name}/from-r2"


def key_id_of(session_token: str) -> int:
    """The key id in a podiam session token (bytes 1-4 after the version byte)."""
    raw = base64.b64decode(session_token)
    return int.from_bytes(raw[1:5], "big")


def test_session_key_rotation_fails_no_verification(cluster):
    """While replica 1 rotates the session key, sessions minted on either replica keep verifying
    on the other; once the new key is active both mint with it, and old sessions still work."""
    r1, r2 = cluster.r1, cluster.r2
    name = f"rot-{uuid.uuid4().hex[:8]}"
    cluster.iam(r1).create_role(RoleName=name, AssumeRolePolicyDocument=ROOT_TRUST)
    arn = f"arn:aws:iam::{ACCOUNT}:role/{name}"
    until("role on replica 2", lambda: cluster.iam(r2).get_role(RoleName=name))
    sts = {r: cluster.sts(r, cluster.user) for r in (r1, r2)}

    def mint(r: Podiam) -> dict:
        c = sts[r].assume_role(RoleArn=arn, RoleSessionName="rot")["Credentials"]
        return {k: c[k] for k in ("AccessKeyId", "SecretAccessKey", "SessionToken")}

    before = mint(r1)
    old_id = key_id_of(before["SessionToken"])
    p = r1.podiam("session-keys", "rotate")
    assert p.returncode == 0, p.stderr
    m = re.search(r"session key (\d+) mints from (\d+)", p.stdout)
    assert m, p.stdout
    new_id, active_from = int(m.group(1)), int(m.group(2))
    assert new_id > old_id and active_from > time.time()
    seen, checked = set(), 0
    while time.time() < active_from + 2:
        for a, b in ((r1, r2), (r2, r1)):
            c = mint(a)
            seen.add(key_id_of(c["SessionToken"]))
            # every session verifies on the other replica, at every moment of the rotation
            assert cluster.sts(b, c).get_caller_identity()["Arn"].endswith(f"/{name}/rot")
            checked += 1
    assert {old_id, new_id} <= seen, (seen, checked)
    for r in (r1, r2):
        assert key_id_of(mint(r)["SessionToken"]) == new_id
        assert cluster.sts(r, before).get_caller_identity()["Arn"].endswith(f"/{name}/rot"), "old sessions still verify"
    # only the installation administrator's root may rotate
    user_env = r1.creds_env(cluster.user)
    q = subprocess.run([podiam_bin(), "session-keys", "rotate"], env=user_env, capture_output=True, text=True, timeout=30)
    assert q.returncode != 0 and "403" in q.stderr and "installation's administrator account" in q.stderr, q.stderr


def test_issuer_key_rotation_fails_no_verification(cluster):
    """While replica 1 rotates a hosted issuer's signing key, tokens minted on either replica keep
    verifying (AssumeRoleWithWebIdentity) on the other: the new key is in the JWKS at once and signs
    only from its activation time, the old key signs until then; afterwards both replicas sign with
    the new key and tokens of the old key still verify."""
    r1, r2 = cluster.r1, cluster.r2
    name = f"iss-{uuid.uuid4().hex[:8]}"
    cluster.cli(r1, "eks", "create-cluster", "--name", name, "--role-arn", f"arn:aws:iam::{ACCOUNT}:role/eks",
                "--resources-vpc-config", "subnetIds=subnet-1")
    issuer = cluster.cli(r1, "eks", "describe-cluster", "--name", name)["cluster"]["identity"]["oidc"]["issuer"]
    hostpath = issuer.removeprefix("https://")
    issuer_id = hostpath.rsplit("/", 1)[1]
    iam1 = cluster.iam(r1)
    iam1.create_open_id_connect_provider(Url=issuer, ClientIDList=[STS_AUDIENCE])
    iam1.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(irsa_trust(hostpath, "system:serviceaccount:default:app")))
    arn = f"arn:aws:iam::{ACCOUNT}:role/{name}"
    until("role on replica 2", lambda: cluster.iam(r2).get_role(RoleName=name))

    def mint(r: Podiam) -> str:
        p = subprocess.run([podiam_bin(), "token", "--cluster", name, "--namespace", "default", "--service-account", "app"],
                           env=r.creds_env(cluster.root), capture_output=True, text=True, timeout=30,
                           stdin=subprocess.DEVNULL)
        assert p.returncode == 0, p.stderr
        return p.stdout.strip()

    def verifies(r: Podiam, token: str) -> str | None:
        """None when AssumeRoleWithWebIdentity with `token` succeeds on `r`, else the error."""
        resp = r.assume_web(arn, token, "rot")
        return None if resp.status_code == 200 else f"{resp.status_code}: {resp.text}"

    def jwks_kids(r: Podiam) -> set[str]:
        return {k["kid"] for k in r.jwks(issuer_id)["keys"]}

    before = mint(r1)
    old = jwt_parts(before)[0]["kid"]
    assert jwks_kids(r1) == jwks_kids(r2) == {old}
    minted: list[tuple[str, int, str]] = []  # (kid, iat, minted on)
    failures: list[str] = []
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            for a, b in ((r1, r2), (r2, r1)):
                tok = mint(a)
                header, claims = jwt_parts(tok)
                minted.append((header["kid"], claims["iat"], a.data_dir.name))
                # every token verifies on the other replica, at every moment of the rotation
                err = verifies(b, tok)
                if err:
                    failures.append(f"{header['kid']} minted on {a.data_dir.name} at {claims['iat']}, "
                                    f"refused on {b.data_dir.name}: {err}")

    worker = threading.Thread(target=loop)
    worker.start()
    try:
        time.sleep(0.5)
        p = r1.podiam("issuer", "rotate", "--cluster", name)
        assert p.returncode == 0, p.stderr
        m = re.fullmatch(r"new signing key: (\S+) \(in the JWKS now, signs from (\d+)\)\n", p.stdout)
        assert m, p.stdout
        new, active_from = m.group(1), int(m.group(2))
        # published at once: on replica 1 now, on replica 2 within a second, long before it signs
        assert jwks_kids(r1) == {old, new}
        until("new key in replica 2's JWKS", lambda: jwks_kids(r2) == {old, new})
        assert time.time() < active_from
        while time.time() < active_from + 2:
            time.sleep(0.1)
    finally:
        stop.set()
        worker.join(60)
    assert not failures, failures[:5]
    kids = [k for k, _, _ in minted]
    assert new != old and set(kids) == {old, new}, (old, new, len(minted))
    # the new key signed nothing before its activation, and everything from it on
    early = [(k, iat, r) for k, iat, r in minted if iat < active_from]
    late = [(k, iat, r) for k, iat, r in minted if iat >= active_from]
    assert early and late, (len(early), len(late))
    assert all(k == old for k, _, _ in early), [e for e in early if e[0] != old][:5]
    assert all(k == new for k, _, _ in late), [e for e in late if e[0] != new][:5]
    assert {r for _, _, r in late} == {"r1", "r2"}
    print(f"issuer rotation: {len(minted)} tokens, {len(early)} by the old key, {len(late)} by the new one, 0 refused")
    for r in (r1, r2):
        assert jwt_parts(mint(r))[0]["kid"] == new
        assert verifies(r, before) is None, "tokens of the old key still verify"
        assert jwks_kids(r) == {old, new}
    # a signature that does not match its kid is refused, old or new kid
    h, pl, sig = mint(r1).split(".")
    forged = ".".join([b64u(json.dumps({**json.loads(b64u_decode(h)), "kid": old}).encode()), pl, sig])
    assert verifies(r2, forged) is not None
    # rotating needs podiam:RotateIssuerKey: the test user may not, and nothing changes
    q = subprocess.run([podiam_bin(), "issuer", "rotate", "--cluster", name], env=r1.creds_env(cluster.user),
                       capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert q.returncode != 0 and "403" in q.stderr and "not authorized to perform: podiam:RotateIssuerKey" in q.stderr, q.stderr
    assert jwks_kids(r1) == {old, new}


def test_deleted_role_stops_being_usable_on_the_other_replica_within_a_second(cluster):
    r1, r2 = cluster.r1, cluster.r2
    name = f"doomed-{uuid.uuid4().hex[:8]}"
    arn = f"arn:aws:iam::{ACCOUNT}:role/{name}"
    cluster.iam(r1).create_role(RoleName=name, AssumeRolePolicyDocument=ROOT_TRUST)
    sts2, iam2 = cluster.sts(r2, cluster.user), cluster.iam(r2)
    until("role on replica 2", lambda: sts2.assume_role(RoleArn=arn, RoleSessionName="before"))
    cluster.cli(r1, "iam", "delete-role", "--role-name", name)
    t = time.monotonic()

    def refused() -> bool:
        try:
            sts2.assume_role(RoleArn=arn, RoleSessionName="after")
        except botocore.exceptions.ClientError as e:
            status, _ = client_error(e)
            assert status < 500, e
            return True
        return False

    until("AssumeRole refused on replica 2", refused)
    elapsed = time.monotonic() - t
    print(f"deleted role refused on replica 2 after {elapsed * 1000:.0f} ms")
    assert elapsed < LIMIT
    assert error_of(lambda: iam2.get_role(RoleName=name)) == (404, "NoSuchEntity")
    # The name can be used again at once, through the other replica.
    iam2.create_role(RoleName=name, AssumeRolePolicyDocument=ROOT_TRUST, Description="second")
    until("recreated role on replica 1",
          lambda: cluster.iam(r1).get_role(RoleName=name)["Role"].get("Description") == "second")


def test_conflicting_creates_on_two_replicas(cluster):
    """The same role created through both replicas at once: exactly one wins, the other gets a
    client error (409/EntityAlreadyExists), never a 5xx; both then agree."""
    for i in range(5):
        name = f"race-{uuid.uuid4().hex[:8]}"
        results: list = [None, None]

        def create(idx: int, r: Podiam) -> None:
            try:
                results[idx] = cluster.iam(r).create_role(RoleName=name, AssumeRolePolicyDocument=ROOT_TRUST)["Role"]["RoleId"]
            except botocore.exceptions.ClientError as e:
                results[idx] = client_error(e)

        ts = [threading.Thread(target=create, args=(0, cluster.r1)), threading.Thread(target=create, args=(1, cluster.r2))]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        won = [r for r in results if isinstance(r, str)]
        lost = [r for r in results if isinstance(r, tuple)]
        assert len(won) == 1 and len(lost) == 1, results
        assert lost[0] in ((409, "EntityAlreadyExists"), (409, "ConcurrentModification")), lost
        for r in (cluster.r1, cluster.r2):
            until("winner everywhere", lambda r=r: cluster.iam(r).get_role(RoleName=name)["Role"]["RoleId"] == won[0])


def test_killing_a_replica_costs_the_other_nothing(cluster):
    r1, r2 = cluster.r1, cluster.r2
    name = f"steady-{uuid.uuid4().hex[:8]}"
    arn = f"arn:aws:iam::{ACCOUNT}:role/{name}"
    cluster.iam(r2).create_role(RoleName=name, AssumeRolePolicyDocument=ROOT_TRUST)
    until("role on replica 1", lambda: cluster.iam(r1).get_role(RoleName=name))
    session = cluster.sts(r1, cluster.user).assume_role(RoleArn=arn, RoleSessionName="steady")["Credentials"]
    creds = {k: session[k] for k in ("AccessKeyId", "SecretAccessKey", "SessionToken")}
    clients = {r.data_dir.name: (cluster.sts(r, cluster.user), cluster.sts(r, creds), cluster.iam(r)) for r in (r1, r2)}
    failures: dict[str, list[str]] = {"r1": [], "r2": []}
    calls = {"r1": 0, "r2": 0}
    lock = threading.Lock()
    stop = threading.Event()

    def worker(n: int) -> None:
        i = n
        while not stop.is_set():
            target = "r1" if i % 2 == 0 else "r2"
            i += 1
            sts_root, sts_sess, iam = clients[target]
            try:
                match i % 3:
                    case 0:
                        assert sts_sess.get_caller_identity()["Arn"].endswith(f"/{name}/steady")
                    case 1:
                        sts_root.assume_role(RoleArn=arn, RoleSessionName="spread")
                    case _:
                        iam.get_role(RoleName=name)
                ok = True
            except Exception as e:  # connection refused once replica 1 is gone
                ok = False
                err = f"{type(e).__name__}: {e}"
            with lock:
                calls[target] += 1
                if not ok:
                    failures[target].append(err)

    with ThreadPoolExecutor(max_workers=6) as pool:
        futures = [pool.submit(worker, n) for n in range(6)]
        time.sleep(1.0)
        r1.kill9()
        r1.proc.wait(10)
        time.sleep(2.0)
        stop.set()
        for f in futures:
            f.result()
    print(f"calls: {calls}, failures on replica 1 after the kill: {len(failures['r1'])}")
    assert r1.proc.returncode == -signal.SIGKILL
    assert calls["r2"] > 20, calls
    assert not failures["r2"], failures["r2"][:5]
    # The survivor still writes, and the restarted replica catches up from the store.
    cluster.iam(r2).tag_role(RoleName=name, Tags=[{"Key": "after", "Value": "kill"}])
    r1.start()
    tags = cluster.iam(r1).list_role_tags(RoleName=name)["Tags"]
    assert {"Key": "after", "Value": "kill"} in tags
    assert cluster.sts(r1, creds).get_caller_identity()["Arn"].endswith(f"/{name}/steady")


def test_postgres_outage_keeps_reads_and_credentials_and_fails_writes(cluster):
    require(PG_DIR, "PODIAM_PG_DIR is unset: the PostgreSQL server is not one scripts/postgres.sh can stop")
    r1, r2 = cluster.r1, cluster.r2
    name = f"outage-{uuid.uuid4().hex[:8]}"
    arn = f"arn:aws:iam::{ACCOUNT}:role/{name}"
    cluster.iam(r1).create_role(RoleName=name, AssumeRolePolicyDocument=ROOT_TRUST)
    until("role on replica 2", lambda: cluster.iam(r2).get_role(RoleName=name))
    # EKS Pod Identity too: a cluster, a role for its pods, an association and a pod token.
    cluster_name = f"c-{name}"
    r1.client("eks", cluster.root).create_cluster(name=cluster_name, roleArn=f"arn:aws:iam::{ACCOUNT}:role/eks",
                                                  resourcesVpcConfig={"subnetIds": ["s"]})
    cluster.iam(r1).create_role(RoleName=f"{name}-pod", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"},
                                                "Action": ["sts:AssumeRole", "sts:TagSession"]}]}))
    r1.client("eks", cluster.root).create_pod_identity_association(
        clusterName=cluster_name, namespace="default", serviceAccount="app", roleArn=f"arn:aws:iam::{ACCOUNT}:role/{name}-pod")
    pod_token = r1.token(cluster_name, "default", "app", audience=["pods.eks.amazonaws.com"], pod=("app-0", str(uuid.uuid4())))
    # A third replica that issues credentials from memory for 3 s of outage at most.
    r3 = replica(cluster.base, "r3", cluster.url, cluster.key, "--max-staleness", "3").start()
    until("role on replica 3", lambda: cluster.iam(r3).get_role(RoleName=name))
    eks_auth = r3.client("eks-auth", cluster.root)
    assert requests.get(f"{r3.endpoint}/readyz", timeout=5).status_code == 200
    pg_ctl("stop")
    stopped = time.monotonic()
    try:
        creds = cluster.sts(r3, cluster.user).assume_role(RoleArn=arn, RoleSessionName="r3-fresh")["Credentials"]
        assert creds["AccessKeyId"].startswith("ASIA")
        assert eks_auth.assume_role_for_pod_identity(clusterName=cluster_name, token=pod_token)["credentials"]["sessionToken"]
        for r in (r1, r2):
            sts, iam = cluster.sts(r, cluster.user), cluster.iam(r)
            # reads and the credential path: from memory
            assert cluster.sts(r).get_caller_identity()["Arn"] == f"arn:aws:iam::{ACCOUNT}:root"
            assert sts.get_caller_identity()["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/{CALLER}"
            creds = sts.assume_role(RoleArn=arn, RoleSessionName="during-outage")["Credentials"]
            session = {k: creds[k] for k in ("AccessKeyId", "SecretAccessKey", "SessionToken")}
            assert cluster.sts(r, session).get_caller_identity()["Arn"].endswith(f"/{name}/during-outage")
            assert iam.get_role(RoleName=name)["Role"]["Arn"] == arn
            # writes: a prompt 500 ServiceFailure, not a hang (boto3 retries a 500 once here, and
            # each attempt waits for the store's connect timeout, 3 s)
            t = time.monotonic()
            assert error_of(lambda: iam.create_role(RoleName=f"{name}-x", AssumeRolePolicyDocument=ROOT_TRUST)) == \
                (500, "ServiceFailure")
            took = time.monotonic() - t
            print(f"{r.data_dir.name}: write failed after {took:.2f}s with PostgreSQL down")
            assert took < 15, took
            assert r.proc.poll() is None, "replica died during the outage"
        # Past its bound, replica 3 refuses to issue credentials (retryable 503) and reports
        # unready, while replicas 1 and 2 (bound 300 s) keep issuing.
        time.sleep(max(0.0, 3.5 - (time.monotonic() - stopped)))
        assert error_of(lambda: cluster.sts(r3, cluster.user).assume_role(RoleArn=arn, RoleSessionName="r3-stale")) == \
            (503, "ServiceUnavailable")
        assert error_of(lambda: eks_auth.assume_role_for_pod_identity(clusterName=cluster_name, token=pod_token)) == \
            (503, "ServiceUnavailableException")
        ready = requests.get(f"{r3.endpoint}/readyz", timeout=5)
        assert ready.status_code == 503 and "unreachable" in ready.text, ready.text
        assert cluster.sts(r3).get_caller_identity()["Arn"] == f"arn:aws:iam::{ACCOUNT}:root", "reads still work"
        assert cluster.sts(r1, cluster.user).assume_role(RoleArn=arn, RoleSessionName="r1-later")["Credentials"]
    finally:
        pg_ctl("start")
    # Back: replica 3 issues again once it has read the feed.
    until("replica 3 issues again", lambda: cluster.sts(r3, cluster.user).assume_role(RoleArn=arn, RoleSessionName="r3-back"),
          limit=20, step=0.2)
    assert requests.get(f"{r3.endpoint}/readyz", timeout=5).status_code == 200
    assert eks_auth.assume_role_for_pod_identity(clusterName=cluster_name, token=pod_token)["credentials"]["sessionToken"]
    assert r3.stop() in (0, None), r3.log()[-3000:]
    # PostgreSQL is back: writes succeed again (the pool reconnects) and replicate again.
    iam2 = cluster.iam(r2)
    until("write after the restart", lambda: iam2.create_role(RoleName=f"{name}-back", AssumeRolePolicyDocument=ROOT_TRUST),
          limit=20, step=0.2)
    until("replication after the restart", lambda: cluster.iam(r1).get_role(RoleName=f"{name}-back"), limit=5)
    name2 = f"{name}-again"
    cluster.iam(r1).create_role(RoleName=name2, AssumeRolePolicyDocument=ROOT_TRUST)
    _, elapsed = until("replication after the restart", lambda: iam2.get_role(RoleName=name2), limit=LIMIT)
    print(f"after the restart: replicated in {elapsed * 1000:.0f} ms")
    for r in (r1, r2):
        assert "panicked" not in r.log()


def test_replicas_starting_at_once_on_an_empty_store(tmp_path):
    """Three replicas start together on a fresh database: all become ready (the losers of the
    first-start races retry), exactly one creates the account, and the key works on all."""
    url = fresh_database()
    key = write_master_key(tmp_path / "master.key")
    reps = [replica(tmp_path, f"c{i}", url, key) for i in range(3)]
    errors: list[str] = []

    def start(r: Podiam) -> None:
        try:
            r.start()
        except Exception as e:  # noqa: BLE001
            errors.append(str(e))

    ts = [threading.Thread(target=start, args=(r,)) for r in reps]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    try:
        assert not errors, errors
        with_creds = [r for r in reps if (r.data_dir / "credentials").exists()]
        assert len(with_creds) == 1, [r.data_dir.name for r in with_creds]
        root = with_creds[0].root_keys()
        for r in reps:
            assert r.client("sts", root).get_caller_identity()["Account"] == ACCOUNT
    finally:
        for r in reps:
            r.stop()


def test_an_audit_event_written_through_one_replica_is_found_through_the_other(cluster):
    r1, r2 = cluster.r1, cluster.r2
    name = f"audited-{uuid.uuid4().hex[:8]}"
    cluster.iam(r1).create_role(RoleName=name, AssumeRolePolicyDocument=ROOT_TRUST)
    creds = cluster.sts(r1, cluster.user).assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/{name}",
                                                      RoleSessionName="audited")["Credentials"]

    def found():
        ct = r2.client("cloudtrail", cluster.root)
        got = ct.lookup_events(LookupAttributes=[{"AttributeKey": "AccessKeyId",
                                                  "AttributeValue": creds["AccessKeyId"]}])["Events"]
        return [json.loads(e["CloudTrailEvent"]) for e in got if e["EventName"] == "AssumeRole"]

    events, _ = until("the AssumeRole event through replica 2", lambda: found() or None, limit=5)
    assert events[0]["responseElements"]["credentials"]["accessKeyId"] == creds["AccessKeyId"]
    assert events[0]["userIdentity"]["userName"] == CALLER
    created = [e for e in r2.client("cloudtrail", cluster.root).lookup_events(
        LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": name}])["Events"]]
    assert [e["EventName"] for e in created] == ["CreateRole"]
