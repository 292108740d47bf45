"""The operations surface of a real `podiam serve`: /metrics (Prometheus text) after an
AssumeRoleWithWebIdentity and an AccessDenied, the request id answered, and logs without colour
codes when stderr is not a terminal."""

from __future__ import annotations

import re

import botocore.exceptions
import pytest
import requests

PODIAM_ARGS = ("--log-format", "json")
ROLE = "ops-role"


def scrape(server) -> dict[str, float]:
    r = requests.get(f"{server.endpoint}/metrics", timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for line in r.text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


@pytest.fixture(scope="module")
def traffic(server):
    irsa = server.irsa("ops-demo", ROLE)
    r = server.assume_web(irsa["role_arn"], server.token("ops-demo"), "ops1")
    assert r.status_code == 200, r.text
    rid = r.headers["x-amzn-RequestId"]
    assert re.fullmatch(r"[0-9a-f-]{36}", rid) and rid in r.text
    creds = {k: re.search(rf"<{k}>([^<]+)</{k}>", r.text).group(1) for k in ("AccessKeyId", "SecretAccessKey", "SessionToken")}
    with pytest.raises(botocore.exceptions.ClientError) as e:
        server.client("iam", creds).list_roles()
    assert e.value.response["Error"]["Code"] == "AccessDenied"
    return irsa


def test_metrics_count_the_web_identity_call_and_the_denial(server, traffic):
    m = scrape(server)
    assert m['podiam_requests_total{protocol="sts",action="AssumeRoleWithWebIdentity",code="200"}'] == 1
    assert m['podiam_requests_total{protocol="iam",action="ListRoles",code="AccessDenied"}'] == 1
    assert m['podiam_requests_total{protocol="eks",action="CreateCluster",code="200"}'] == 1
    assert m['podiam_access_denied_total{reason="no_identity_allow"}'] == 1
    assert m['podiam_credential_duration_seconds_count{path="AssumeRoleWithWebIdentity"}'] == 1
    assert m['podiam_credential_duration_seconds_bucket{path="AssumeRoleWithWebIdentity",le="+Inf"}'] == 1
    assert m['podiam_credential_duration_seconds_count{path="AssumeRoleForPodIdentity"}'] == 0
    assert m["podiam_store_commit_duration_seconds_count"] >= 3
    assert m["podiam_stale"] == 0


def test_scrapes_count_themselves_and_the_exposition_stays_bounded(server, traffic):
    # A made-up action is counted as `other`: callers cannot add label values.
    r = server.post({"Action": "NoSuchActionXyz", "Version": "2011-06-15"})
    assert r.status_code >= 400
    before = scrape(server)
    after = scrape(server)
    probe = 'podiam_requests_total{protocol="probe",action="Probe",code="200"}'
    assert after[probe] == before[probe] + 1
    assert not any("NoSuchActionXyz" in k for k in after)


def test_logs_carry_no_colour_codes_off_a_terminal(server, traffic):
    assert "\x1b[" not in server.log()
