"""IRSA through boto3's default credential chain, exactly as a pod sees it: a fresh process whose
environment holds only AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ENDPOINT_URL_STS and
AWS_REGION/AWS_DEFAULT_REGION (HOME an empty directory, no other credentials), calling
sts.get_caller_identity()."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from podiam_e2e import ACCOUNT, VENV_PYTHON

ROLE = "irsa-boto3-role"

PROBE = r"""
import json, sys
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


@pytest.fixture(scope="module")
def irsa(server):
    return server.irsa("boto3-demo", ROLE)


def pod(server, tmp_path, role_arn: str, token: str, **extra: str) -> dict:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    tok = tmp_path / "token"
    tok.write_text(token)
    # What the EKS pod identity webhook injects. botocore reads the region from AWS_DEFAULT_REGION
    # only (AWS_REGION is for other SDKs), and EKS injects both.
    env = {"HOME": str(home), "AWS_ROLE_ARN": role_arn, "AWS_WEB_IDENTITY_TOKEN_FILE": str(tok),
           "AWS_ENDPOINT_URL_STS": server.endpoint, "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
           **extra}
    p = subprocess.run([VENV_PYTHON, "-c", PROBE], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_default_chain_assumes_the_role(server, irsa, tmp_path):
    out = pod(server, tmp_path, irsa["role_arn"], server.token("boto3-demo"))
    assert "ok" in out, out
    assert out["method"] == "assume-role-with-web-identity"
    assert re.fullmatch(rf"arn:aws:sts::{ACCOUNT}:assumed-role/{ROLE}/botocore-session-\d+", out["ok"]["Arn"]), out
    assert out["ok"]["Account"] == ACCOUNT


def test_default_chain_with_session_name(server, irsa, tmp_path):
    out = pod(server, tmp_path, irsa["role_arn"], server.token("boto3-demo"), AWS_ROLE_SESSION_NAME="web-7f9c")
    assert out["ok"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/{ROLE}/web-7f9c", out


def test_default_chain_wrong_service_account(server, irsa, tmp_path):
    out = pod(server, tmp_path, irsa["role_arn"], server.token("boto3-demo", "default", "intruder"))
    assert out == {"code": "AccessDenied", "status": 403}


def test_default_chain_wrong_namespace(server, irsa, tmp_path):
    out = pod(server, tmp_path, irsa["role_arn"], server.token("boto3-demo", "kube-system", "my-sa"))
    assert out == {"code": "AccessDenied", "status": 403}


def test_default_chain_garbage_token(server, irsa, tmp_path):
    out = pod(server, tmp_path, irsa["role_arn"], "not-a-jwt")
    assert out == {"code": "InvalidIdentityToken", "status": 400}


def test_default_chain_missing_role(server, irsa, tmp_path):
    out = pod(server, tmp_path, f"arn:aws:iam::{ACCOUNT}:role/no-such-role", server.token("boto3-demo"))
    assert out == {"code": "AccessDenied", "status": 403}
