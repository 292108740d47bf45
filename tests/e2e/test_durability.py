"""Durability: a restart on the same data directory keeps every record, key and session; files are
private; and a SIGKILL in the middle of a burst of writes loses no acknowledged write."""

from __future__ import annotations

import base64
import os
import signal
import stat
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import botocore.exceptions
import pytest
import requests

from podiam_e2e import ACCOUNT, Podiam, allow, client_error, principal_trust, xml_text


def mode(p) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


def assert_private(data_dir) -> None:
    assert mode(data_dir) == 0o700, oct(mode(data_dir))
    for f in ("credentials", "config", "master.key"):
        assert mode(data_dir / f) == 0o600, (f, oct(mode(data_dir / f)))


@pytest.fixture
def fresh(tmp_path):
    s = Podiam(tmp_path / "data").start()
    yield s
    s.stop(signal.SIGKILL)


def test_restart_keeps_everything(fresh, tmp_path):
    s = fresh
    assert_private(s.data_dir)
    iam = s.client("iam")
    irsa = s.irsa("durable", "durable-role")
    iam.put_role_policy(RoleName="durable-role", PolicyName="inline", PolicyDocument=allow("s3:GetObject"))
    iam.create_role(RoleName="doomed", AssumeRolePolicyDocument=principal_trust({"Service": "ec2.amazonaws.com"}))
    iam.create_user(UserName="dana")
    user_key = iam.create_access_key(UserName="dana")["AccessKey"]
    iam.create_role(RoleName="user-role", AssumeRolePolicyDocument=principal_trust({"AWS": f"arn:aws:iam::{ACCOUNT}:user/dana"}))
    role_before = iam.get_role(RoleName="durable-role")["Role"]
    token_before = s.token("durable")
    web_session = s.web_credentials(irsa["role_arn"], token_before, "before-restart")
    user_session = s.client("sts", user_key).assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/user-role",
                                                          RoleSessionName="chained-before")["Credentials"]
    iam.delete_role(RoleName="doomed")
    jwks_before = s.jwks(irsa["id"])
    files_before = {f: (s.data_dir / f).read_bytes() for f in ("credentials", "master.key")}

    assert s.stop(signal.SIGTERM) == 0, s.log()
    s.start()  # on a new free port: config follows it, credentials do not change
    assert f"endpoint_url = {s.endpoint}" in (s.data_dir / "config").read_text()
    assert_private(s.data_dir)
    assert {f: (s.data_dir / f).read_bytes() for f in files_before} == files_before

    iam = s.client("iam")
    role_after = iam.get_role(RoleName="durable-role")["Role"]
    assert role_after["RoleId"] == role_before["RoleId"] and role_after["Arn"] == role_before["Arn"]
    assert role_after["AssumeRolePolicyDocument"] == role_before["AssumeRolePolicyDocument"]
    assert iam.list_role_policies(RoleName="durable-role")["PolicyNames"] == ["inline"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iam.get_role(RoleName="doomed")
    assert client_error(e.value) == (404, "NoSuchEntity")
    assert iam.get_open_id_connect_provider(OpenIDConnectProviderArn=irsa["provider_arn"])["ClientIDList"] == ["sts.amazonaws.com"]
    cluster = s.client("eks").describe_cluster(name="durable")["cluster"]
    assert cluster["identity"]["oidc"]["issuer"] == irsa["issuer"]
    assert s.jwks(irsa["id"]) == jwks_before
    # sessions minted before the restart still verify
    assert s.client("sts", web_session).get_caller_identity()["Arn"] == \
        f"arn:aws:sts::{ACCOUNT}:assumed-role/durable-role/before-restart"
    assert s.client("sts", user_session).get_caller_identity()["Arn"] == \
        f"arn:aws:sts::{ACCOUNT}:assumed-role/user-role/chained-before"
    assert s.client("sts", user_key).get_caller_identity()["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/dana"
    assert s.aws("sts", "get-caller-identity")["Arn"] == f"arn:aws:iam::{ACCOUNT}:root"
    # so do tokens signed before the restart, and new ones
    r = s.assume_web(irsa["role_arn"], token_before, "old-token")
    assert r.status_code == 200, r.text
    assert s.web_credentials(irsa["role_arn"], s.token("durable"), "after-restart")["AccessKeyId"].startswith("ASIA")


def test_wrong_master_key_refuses_to_start(fresh, tmp_path):
    s = fresh
    s.client("iam").create_user(UserName="sealed")
    assert s.stop(signal.SIGTERM) == 0
    wrong = tmp_path / "wrong.key"
    wrong.write_text(base64.b64encode(os.urandom(32)).decode())
    wrong.chmod(0o600)
    impostor = Podiam(s.data_dir, extra_args=["--master-key-file", str(wrong)])
    with pytest.raises(RuntimeError, match="exited"):
        impostor.start(timeout=20)
    assert impostor.proc.returncode != 0
    # the data is intact for the right key
    s.start()
    assert s.client("iam").get_user(UserName="sealed")["User"]["UserName"] == "sealed"


def test_sigterm_stops_gracefully(fresh):
    s = fresh
    assert requests.get(f"{s.endpoint}/readyz", timeout=5).status_code == 200
    t0 = time.monotonic()
    assert s.stop(signal.SIGTERM) == 0
    assert time.monotonic() - t0 < 10
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{s.endpoint}/readyz", timeout=2)


def test_sigkill_during_a_burst_of_writes(fresh):
    s = fresh
    iam = s.client("iam", config_kw={"max_pool_connections": 16})
    trust = principal_trust({"Service": "ec2.amazonaws.com"})
    names = [f"burst-{i:03d}" for i in range(200)]
    acked: dict[str, str] = {}
    failed: list[str] = []
    lock = threading.Lock()
    killed = threading.Event()
    kill_after = 60

    def create(name: str) -> None:
        if killed.is_set():
            with lock:
                failed.append(name)
            return
        try:
            r = iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)
        except Exception:  # connection refused/reset once the server is gone
            with lock:
                failed.append(name)
            return
        assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
        with lock:
            acked[name] = r["Role"]["RoleId"]
            if len(acked) >= kill_after and not killed.is_set():
                killed.set()
                s.kill9()

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(create, names))
    assert killed.is_set(), "the burst finished before the kill"
    s.proc.wait(10)
    assert s.proc.returncode == -signal.SIGKILL
    assert kill_after <= len(acked) < len(names), len(acked)
    print(f"burst: {len(acked)} acknowledged, {len(failed)} failed before restart")

    s.start()
    iam = s.client("iam")
    present: dict[str, str] = {}
    for page in iam.get_paginator("list_roles").paginate(PathPrefix="/"):
        for r in page["Roles"]:
            present[r["RoleName"]] = r["RoleId"]
    lost = sorted(set(acked) - set(present))
    assert not lost, f"acknowledged CreateRole lost after SIGKILL: {lost}"
    for name, role_id in acked.items():
        assert present[name] == role_id, name
    assert set(present) <= set(names), set(present) - set(names)
    # the store is consistent and writable
    for name in list(present)[:5]:
        assert iam.get_role(RoleName=name)["Role"]["RoleId"] == present[name]
    assert iam.create_role(RoleName="after-crash", AssumeRolePolicyDocument=trust)["Role"]["RoleName"] == "after-crash"
    missing = next((n for n in names if n not in present), None)
    if missing:  # a write that was never acknowledged can be made now
        iam.create_role(RoleName=missing, AssumeRolePolicyDocument=trust)
    r = s.post({"Action": "GetCallerIdentity", "Version": "2011-06-15"})
    assert r.status_code == 403 and xml_text(r.text, "Code") == "MissingAuthenticationToken"
    assert "panicked" not in s.log()
