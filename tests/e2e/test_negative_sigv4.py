"""SigV4 refusals: requests signed by botocore's own signer (SigV4Auth) with one thing wrong, sent
raw with requests, each asserting the exact status and AWS error code."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import secrets
import xml.etree.ElementTree as ET
from typing import Iterator

import botocore.auth
import pytest
import requests
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from podiam_e2e import ACCOUNT, expect_error, unique, xml_text

GCI = "Action=GetCallerIdentity&Version=2011-06-15"
LIST_ROLES = "Action=ListRoles&Version=2010-05-08"
FORM = "application/x-www-form-urlencoded; charset=utf-8"


@contextlib.contextmanager
def signing_clock(offset: dt.timedelta) -> Iterator[None]:
    """Make botocore's signer believe the time is now + offset."""
    real = botocore.auth.get_current_datetime
    botocore.auth.get_current_datetime = lambda: real() + offset
    try:
        yield
    finally:
        botocore.auth.get_current_datetime = real


def signed(server, creds: dict, body: str = GCI, *, service: str = "sts", region: str = "us-east-1",
           offset: dt.timedelta | None = None, tamper_body: str | None = None, headers: dict | None = None) -> requests.Response:
    req = AWSRequest(method="POST", url=server.endpoint + "/", data=body, headers={"Content-Type": FORM, **(headers or {})})
    c = Credentials(creds["AccessKeyId"], creds["SecretAccessKey"], creds.get("SessionToken"))
    with signing_clock(offset or dt.timedelta()):
        SigV4Auth(c, service, region).add_auth(req)
    p = req.prepare()
    return requests.post(p.url, data=tamper_body if tamper_body is not None else p.body, headers=dict(p.headers), timeout=30)


@pytest.fixture(scope="module")
def keys(server):
    """Root keys, an IAM user's keys and temporary (web identity) credentials."""
    iam = server.client("iam")
    iam.create_user(UserName="sig-user")
    user = iam.create_access_key(UserName="sig-user")["AccessKey"]
    irsa = server.irsa("sig", "sig-role")
    session = server.web_credentials(irsa["role_arn"], server.token("sig"), "sig-session")
    other = server.web_credentials(irsa["role_arn"], server.token("sig"), "other-session")
    return {"root": server.root_keys(), "user": user, "session": session, "other_session": other}


def flip(s: str, i: int) -> str:
    return s[:i] + ("A" if s[i] != "A" else "B") + s[i + 1:]


# ------------------------------------------------------------------------------ accepted


def test_root_signed_call(server, keys):
    r = signed(server, keys["root"])
    assert r.status_code == 200, r.text
    assert xml_text(r.text, "Arn") == f"arn:aws:iam::{ACCOUNT}:root"


def test_user_signed_call(server, keys):
    r = signed(server, keys["user"])
    assert r.status_code == 200, r.text
    assert xml_text(r.text, "Arn") == f"arn:aws:iam::{ACCOUNT}:user/sig-user"


def test_session_signed_call(server, keys):
    r = signed(server, keys["session"])
    assert r.status_code == 200, r.text
    assert xml_text(r.text, "Arn") == f"arn:aws:sts::{ACCOUNT}:assumed-role/sig-role/sig-session"


def test_clock_skew_within_five_minutes_is_accepted(server, keys):
    for minutes in (-4, 4):
        r = signed(server, keys["root"], offset=dt.timedelta(minutes=minutes))
        assert r.status_code == 200, (minutes, r.text)


def test_presigned_query_string(server, keys):
    req = AWSRequest(method="GET", url=f"{server.endpoint}/?{GCI}")
    c = Credentials(keys["user"]["AccessKeyId"], keys["user"]["SecretAccessKey"])
    SigV4QueryAuth(c, "sts", "us-east-1", expires=300).add_auth(req)
    p = req.prepare()
    r = requests.get(p.url, headers=dict(p.headers), timeout=30)
    assert r.status_code == 200, r.text
    assert xml_text(r.text, "Arn") == f"arn:aws:iam::{ACCOUNT}:user/sig-user"


# ------------------------------------------------------------------------------ refused


def test_error_xml_shape(server):
    r = server.post({"Action": "GetCallerIdentity", "Version": "2011-06-15"})
    assert r.status_code == 403
    assert r.headers["Content-Type"].startswith("text/xml")
    root = ET.fromstring(r.text)
    local = lambda e: e.tag.rsplit("}", 1)[-1]  # noqa: E731
    assert local(root) == "ErrorResponse"
    assert [local(c) for c in root] == ["Error", "RequestId"]
    error = root[0]
    assert [local(c) for c in error] == ["Type", "Code", "Message"]
    assert [c.text for c in error][:2] == ["Sender", "MissingAuthenticationToken"]
    assert error[2].text
    assert re.fullmatch(r"[0-9a-f-]{36}", root[1].text), root[1].text
    assert r.headers.get("x-amzn-RequestId") == root[1].text


def test_unsigned_calls(server):
    expect_error(server.post({"Action": "GetCallerIdentity", "Version": "2011-06-15"}), 403, "MissingAuthenticationToken")
    expect_error(server.post({"Action": "ListRoles", "Version": "2010-05-08"}), 403, "MissingAuthenticationToken")
    r = requests.get(f"{server.endpoint}/clusters", timeout=10)
    assert r.status_code == 403 and r.headers.get("x-amzn-ErrorType", "").startswith("MissingAuthenticationToken"), (
        r.status_code, r.headers, r.text)


def test_modified_session_token(server, keys):
    s = dict(keys["session"])
    for i in (10, len(s["SessionToken"]) // 2, len(s["SessionToken"]) - 5):
        expect_error(signed(server, dict(s, SessionToken=flip(s["SessionToken"], i))), 403, "InvalidClientTokenId")


def test_session_token_of_another_session(server, keys):
    s = dict(keys["session"], SessionToken=keys["other_session"]["SessionToken"])
    expect_error(signed(server, s), 403, "InvalidClientTokenId")


def test_temporary_key_without_session_token(server, keys):
    s = {k: v for k, v in keys["session"].items() if k != "SessionToken"}
    expect_error(signed(server, s), 403, "InvalidClientTokenId")


def test_long_term_key_with_session_token(server, keys):
    expect_error(signed(server, dict(keys["user"], SessionToken=keys["session"]["SessionToken"])), 403,
                 "InvalidClientTokenId")


def test_unknown_access_key(server, keys):
    fake = {"AccessKeyId": "AKIA" + secrets.token_hex(8).upper(), "SecretAccessKey": keys["root"]["SecretAccessKey"]}
    expect_error(signed(server, fake), 403, "InvalidClientTokenId")


def test_wrong_secret(server, keys):
    for who in ("root", "user", "session"):
        c = dict(keys[who], SecretAccessKey=flip(keys[who]["SecretAccessKey"], 3))
        expect_error(signed(server, c), 403, "SignatureDoesNotMatch")


@pytest.mark.parametrize("minutes", [-10, 10, -60 * 24])
def test_signed_outside_the_clock_window(server, keys, minutes):
    expect_error(signed(server, keys["root"], offset=dt.timedelta(minutes=minutes)), 403, "SignatureDoesNotMatch")


def test_wrong_service_in_scope(server, keys):
    for who in ("root", "user"):
        err = expect_error(signed(server, keys[who], service="s3"), 403, "SignatureDoesNotMatch")
        assert err["Type"] == "Sender" and "scoped to correct service" in err["Message"]
    # an IAM call scoped to sts
    expect_error(signed(server, keys["root"], LIST_ROLES, service="sts"), 403, "SignatureDoesNotMatch")


def test_wrong_region_in_scope(server, keys):
    err = expect_error(signed(server, keys["root"], region="eu-west-9"), 403, "SignatureDoesNotMatch")
    assert "region" in err["Message"]


def test_body_changed_after_signing(server, keys):
    expect_error(signed(server, keys["root"], LIST_ROLES, service="iam", tamper_body=LIST_ROLES + "&MaxItems=1"), 403,
                 "SignatureDoesNotMatch")


def test_signed_header_changed_after_signing(server, keys):
    req = AWSRequest(method="POST", url=server.endpoint + "/", data=GCI,
                     headers={"Content-Type": FORM, "X-Amz-Meta-Thing": "one"})
    SigV4Auth(Credentials(keys["root"]["AccessKeyId"], keys["root"]["SecretAccessKey"]), "sts", "us-east-1").add_auth(req)
    p = req.prepare()
    h = dict(p.headers)
    assert "x-amz-meta-thing" in h["Authorization"]
    h["X-Amz-Meta-Thing"] = "two"
    expect_error(requests.post(p.url, data=p.body, headers=h, timeout=30), 403, "SignatureDoesNotMatch")


@pytest.mark.parametrize("auth", [
    "AWS4-HMAC-SHA256 garbage",
    "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/sts/aws4_request",
    "AWS4-HMAC-SHA1 Credential=AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=00",
    "Bearer abc",
])
def test_malformed_authorization_header(server, auth):
    r = requests.post(server.endpoint + "/", data=GCI,
                      headers={"Content-Type": FORM, "Authorization": auth,
                               "X-Amz-Date": dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")}, timeout=30)
    expect_error(r, 400, "IncompleteSignature")


def test_deleted_access_key(server):
    iam = server.client("iam")
    name = unique("gone")
    iam.create_user(UserName=name)
    k = iam.create_access_key(UserName=name)["AccessKey"]
    assert signed(server, k).status_code == 200
    iam.delete_access_key(UserName=name, AccessKeyId=k["AccessKeyId"])
    expect_error(signed(server, k), 403, "InvalidClientTokenId")


def test_signed_unknown_action(server, keys):
    expect_error(signed(server, keys["root"], "Action=GetCallerIdentityX&Version=2011-06-15"), 400, "InvalidAction")
    expect_error(signed(server, keys["root"], "Action=ListRolez&Version=2010-05-08", service="iam"), 400, "InvalidAction")
