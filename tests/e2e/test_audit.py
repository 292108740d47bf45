"""The audit trail through the tools people already use: an IRSA exchange and a Pod Identity
exchange found with `aws cloudtrail lookup-events` by the access key they issued (with the pod's
name, uid and node), refused tokens recorded with their error code, mutating calls and
AccessDenied recorded while successful reads are not, LookupEvents' errors, permission and
account isolation, pagination over thousands of events, refusal floods (unsigned, or by one
signed caller) that cannot fill the store, `podiam audit who`, the JSON-lines log, and no secret
or token anywhere in the stored events or the log."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

import pytest
import requests
from botocore.exceptions import ClientError

from conftest import start_server
from podiam_e2e import ACCOUNT, REGION, client_error, raw_jwt, unique

OTHER = "444455556666"
CLUSTER = "audit"
PI_AUD = "pods.eks.amazonaws.com"


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    base = tmp_path_factory.mktemp("audit")
    log = base / "audit.jsonl"
    s = start_server(tmp_path_factory, "audit-serve", extra_args=["--additional-account", OTHER, "--audit-log", str(log)])
    s.audit_log = log
    s.secrets = []  # every secret and token this module is handed or mints
    yield s
    s.stop()


@pytest.fixture(scope="module")
def world(srv):
    """A cluster with an OIDC provider and an IRSA role; a Pod Identity association; a node user
    allowed eks-auth:AssumeRoleForPodIdentity; a user that may look events up and one that may not."""
    out = srv.irsa(CLUSTER, "irsa-app", sa="app", ns="team-a")
    iam, eks = srv.client("iam"), srv.client("eks")
    iam.create_role(RoleName="pi-app", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"},
                                                "Action": ["sts:AssumeRole", "sts:TagSession"]}]}))
    eks.create_pod_identity_association(clusterName=CLUSTER, namespace="team-b", serviceAccount="worker",
                                        roleArn=f"arn:aws:iam::{ACCOUNT}:role/pi-app")
    keys = {}
    for user, actions in [("node", "eks-auth:AssumeRoleForPodIdentity"), ("auditor", "cloudtrail:LookupEvents"),
                          ("nobody", "sts:GetCallerIdentity")]:
        iam.create_user(UserName=user)
        iam.put_user_policy(UserName=user, PolicyName="p", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}))
        k = iam.create_access_key(UserName=user)["AccessKey"]
        keys[user] = {"AccessKeyId": k["AccessKeyId"], "SecretAccessKey": k["SecretAccessKey"]}
        srv.secrets.append(k["SecretAccessKey"])
    srv.secrets.extend(srv.root_keys(p)["SecretAccessKey"] for p in ("podiam", f"podiam-{OTHER}"))
    out["keys"] = keys
    return out


def lookup(srv, key: str, value: str, creds=None, **extra) -> list[dict]:
    """Every event of one lookup attribute, through the AWS CLI (which follows NextToken)."""
    env = srv.creds_env(creds) if creds else srv.env
    got = srv.aws("cloudtrail", "lookup-events", "--lookup-attributes", f"AttributeKey={key},AttributeValue={value}",
                  *[a for k, v in extra.items() for a in (f"--{k}", str(v))], env=env)
    return got["Events"]


def irsa_exchange(srv, world, pod: str) -> tuple[dict, str, str]:
    uid = str(uuid.uuid4())
    token = srv.token(CLUSTER, "team-a", "app", pod=(pod, uid))
    srv.secrets.append(token)
    creds = srv.web_credentials(world["role_arn"], token, session=pod)
    srv.secrets += [creds["SecretAccessKey"], creds["SessionToken"]]
    return creds, uid, token


def test_an_irsa_exchange_is_found_by_the_key_it_issued(srv, world):
    creds, uid, _ = irsa_exchange(srv, world, "api-7d9f-x2")
    events = lookup(srv, "AccessKeyId", creds["AccessKeyId"])
    issuing = [e for e in events if e["EventName"] == "AssumeRoleWithWebIdentity"]
    assert len(issuing) == 1, events
    e = json.loads(issuing[0]["CloudTrailEvent"])
    assert e["eventSource"] == "sts.amazonaws.com" and e["awsRegion"] == REGION
    assert e["responseElements"]["credentials"] == {"accessKeyId": creds["AccessKeyId"],
                                                    "expiration": e["responseElements"]["credentials"]["expiration"]}
    k8s = e["additionalEventData"]["kubernetes"]
    assert k8s["podName"] == "api-7d9f-x2" and k8s["podUid"] == uid, k8s
    assert (k8s["cluster"], k8s["namespace"], k8s["serviceAccount"], k8s["nodeName"]) == (CLUSTER, "team-a", "app", "podiam-node")
    assert k8s["tokenJti"]
    ui = e["userIdentity"]
    assert ui["type"] == "WebIdentityUser" and ui["userName"] == "system:serviceaccount:team-a:app"
    assert ui["identityProvider"] == world["provider_arn"]
    assert e["requestParameters"]["roleArn"] == world["role_arn"]
    assert e["requestParameters"]["roleSessionName"] == "api-7d9f-x2"
    assert "webIdentityToken" not in e["requestParameters"]
    assert e["recipientAccountId"] == ACCOUNT and e["readOnly"] is False and e["eventType"] == "AwsApiCall"
    assert e["eventID"] == issuing[0]["EventId"] and e["requestID"]
    types = {r["ResourceType"]: r["ResourceName"] for r in issuing[0]["Resources"]}
    assert types["AWS::IAM::Role"] == world["role_arn"]
    assert types["AWS::IAM::AccessKey"] == creds["AccessKeyId"]
    assert types["podiam::Kubernetes::Pod"] == "team-a/api-7d9f-x2"
    # The key's own calls are found by the same attribute.
    srv.aws("sts", "get-caller-identity", env=srv.creds_env(creds))
    with pytest.raises(ClientError):
        srv.client("iam", creds).create_user(UserName="not-allowed")
    events = lookup(srv, "AccessKeyId", creds["AccessKeyId"])
    denied = [json.loads(x["CloudTrailEvent"]) for x in events if x["EventName"] == "CreateUser"]
    assert len(denied) == 1 and denied[0]["errorCode"] == "AccessDenied", events
    assert denied[0]["userIdentity"]["type"] == "AssumedRole"
    assert denied[0]["userIdentity"]["sessionContext"]["webIdFederationData"]["federatedProvider"] == world["provider_arn"]


def test_a_pod_identity_exchange_is_found_by_the_key_it_issued(srv, world):
    uid = str(uuid.uuid4())
    token = srv.token(CLUSTER, "team-b", "worker", audience=[PI_AUD], pod=("worker-0", uid))
    srv.secrets.append(token)
    r = srv.aws("eks-auth", "assume-role-for-pod-identity", "--cluster-name", CLUSTER, "--token", token,
                env=srv.creds_env(world["keys"]["node"]))
    c = r["credentials"]
    srv.secrets += [c["secretAccessKey"], c["sessionToken"]]
    events = lookup(srv, "AccessKeyId", c["accessKeyId"])
    assert [x["EventName"] for x in events] == ["AssumeRoleForPodIdentity"], events
    e = json.loads(events[0]["CloudTrailEvent"])
    assert e["eventSource"] == "eks-auth.amazonaws.com"
    k8s = e["additionalEventData"]["kubernetes"]
    assert (k8s["podName"], k8s["podUid"], k8s["namespace"], k8s["serviceAccount"], k8s["cluster"]) == \
        ("worker-0", uid, "team-b", "worker", CLUSTER)
    assert e["userIdentity"]["type"] == "IAMUser" and e["userIdentity"]["userName"] == "node"
    assert e["userIdentity"]["accessKeyId"] == world["keys"]["node"]["AccessKeyId"]
    assert e["responseElements"]["podIdentityAssociation"]["associationId"].startswith("a-")
    assert "token" not in e["requestParameters"] and e["requestParameters"]["clusterName"] == CLUSTER
    # The node's key finds it too (the caller's key), as CloudTrail's AccessKeyId lookup does.
    by_node = lookup(srv, "AccessKeyId", world["keys"]["node"]["AccessKeyId"])
    assert events[0]["EventId"] in {x["EventId"] for x in by_node}


def test_refused_tokens_are_events_with_their_error_code(srv, world):
    wrong_sa = srv.token(CLUSTER, "team-a", "intruder", pod=("evil-0", str(uuid.uuid4())))
    srv.secrets.append(wrong_sa)
    r = srv.assume_web(world["role_arn"], wrong_sa, session="refused-sa")
    assert r.status_code == 403
    forged = raw_jwt({"alg": "RS256", "typ": "JWT"}, {"iss": "https://unknown.example", "sub": "forged-sub"}, b"sig")
    r = srv.assume_web(world["role_arn"], forged, session="refused-junk")
    assert r.status_code == 400
    r = srv.assume_web(world["role_arn"], "not-a-jwt", session="refused-shape")
    assert r.status_code == 400
    events = [json.loads(x["CloudTrailEvent"]) for x in lookup(srv, "EventName", "AssumeRoleWithWebIdentity")]
    by_session = {(e["requestParameters"] or {}).get("roleSessionName"): e for e in events}
    denied = by_session["refused-sa"]
    assert denied["errorCode"] == "AccessDenied" and "responseElements" not in denied or denied["responseElements"] is None
    assert denied["additionalEventData"]["kubernetes"]["podName"] == "evil-0"
    assert denied["additionalEventData"]["tokenVerified"] is True
    junk = by_session["refused-junk"]
    assert junk["errorCode"] == "InvalidIdentityToken", junk
    assert junk["additionalEventData"]["tokenVerified"] is False
    assert junk["userIdentity"]["userName"] == "forged-sub"
    shape = by_session["refused-shape"]
    assert shape["errorCode"] == "InvalidIdentityToken" and shape["recipientAccountId"] == ACCOUNT
    assert "additionalEventData" not in shape and shape["userIdentity"] == {"type": "Unknown"}
    # A refused pod is found by its name too.
    pods = lookup(srv, "ResourceName", "team-a/evil-0")
    assert [json.loads(x["CloudTrailEvent"])["errorCode"] for x in pods] == ["AccessDenied"]


def test_changes_and_denials_are_events_successful_reads_are_not(srv, world):
    iam = srv.client("iam")
    name = unique("audited")
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}]}))
    iam.get_role(RoleName=name)
    with pytest.raises(ClientError) as e:
        srv.client("iam", world["keys"]["nobody"]).get_role(RoleName=name)
    assert client_error(e.value) == (403, "AccessDenied")
    events = [json.loads(x["CloudTrailEvent"]) for x in lookup(srv, "ResourceName", name)]
    assert sorted(e["eventName"] for e in events) == ["CreateRole", "GetRole"], events
    get = next(e for e in events if e["eventName"] == "GetRole")
    assert get["errorCode"] == "AccessDenied" and get["readOnly"] is True
    assert get["userIdentity"]["userName"] == "nobody"
    create = next(e for e in events if e["eventName"] == "CreateRole")
    assert create["userIdentity"]["type"] == "Root" and "errorCode" not in create
    assert create["requestParameters"]["roleName"] == name
    eks_events = lookup(srv, "EventSource", "eks.amazonaws.com")
    assert "CreatePodIdentityAssociation" in {x["EventName"] for x in eks_events}
    assert lookup(srv, "ReadOnly", "true") and lookup(srv, "ReadOnly", "false")
    assert all(x["ReadOnly"] == "true" for x in lookup(srv, "ReadOnly", "true"))


def test_lookup_events_refuses_bad_input_as_cloudtrail_does(srv, world):
    ct = srv.client("cloudtrail")
    la = lambda k, v: {"AttributeKey": k, "AttributeValue": v}  # noqa: E731
    cases = [
        (dict(LookupAttributes=[la("EventName", "a"), la("Username", "b")]), "InvalidLookupAttributesException"),
        (dict(LookupAttributes=[la("Region", "us-east-1")]), "InvalidLookupAttributesException"),
        (dict(LookupAttributes=[la("ReadOnly", "maybe")]), "InvalidLookupAttributesException"),
        (dict(LookupAttributes=[la("EventName", "x" * 2001)]), "InvalidLookupAttributesException"),
        (dict(StartTime=2_000_000_000, EndTime=1_000_000_000), "InvalidTimeRangeException"),
        (dict(MaxResults=0), "InvalidMaxResultsException"),
        (dict(MaxResults=51), "InvalidMaxResultsException"),
        (dict(NextToken="forged"), "InvalidNextTokenException"),
        (dict(EventCategory="data"), "InvalidEventCategoryException"),
    ]
    for kw, code in cases:
        with pytest.raises(ClientError) as e:
            ct.lookup_events(**kw)
        assert client_error(e.value) == (400, code), (kw, e.value.response)
    # A token is bound to its query: another query's (or another account's) token is refused.
    page = ct.lookup_events(MaxResults=1)
    assert page["NextToken"]
    with pytest.raises(ClientError) as e:
        ct.lookup_events(MaxResults=1, NextToken=page["NextToken"], LookupAttributes=[la("EventName", "CreateRole")])
    assert client_error(e.value) == (400, "InvalidNextTokenException")
    with pytest.raises(ClientError) as e:
        srv.client("cloudtrail", srv.root_keys(f"podiam-{OTHER}")).lookup_events(MaxResults=1, NextToken=page["NextToken"])
    assert client_error(e.value) == (400, "InvalidNextTokenException")
    assert ct.lookup_events(EventCategory="insight")["Events"] == []


def test_lookup_needs_permission_and_shows_only_the_callers_account(srv, world):
    with pytest.raises(ClientError) as e:
        srv.client("cloudtrail", world["keys"]["nobody"]).lookup_events()
    assert client_error(e.value)[1] == "AccessDeniedException"
    mine = srv.client("cloudtrail", world["keys"]["auditor"]).lookup_events(MaxResults=50)["Events"]
    assert mine
    other = srv.client("cloudtrail", srv.root_keys(f"podiam-{OTHER}"))
    theirs = other.lookup_events(MaxResults=50)["Events"]
    assert not {x["EventId"] for x in theirs} & {x["EventId"] for x in mine}
    for key, value in [("EventName", "AssumeRoleWithWebIdentity"), ("ResourceName", world["role_arn"]),
                       ("EventSource", "sts.amazonaws.com"), ("Username", "node"), ("ReadOnly", "false")]:
        got = other.lookup_events(LookupAttributes=[{"AttributeKey": key, "AttributeValue": value}])["Events"]
        assert got == [], (key, got)
    # Account OTHER's own call is its own event.
    other_iam = srv.client("iam", srv.root_keys(f"podiam-{OTHER}"))
    other_iam.create_user(UserName="theirs")
    got = other.lookup_events(LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "CreateUser"}])["Events"]
    assert [json.loads(x["CloudTrailEvent"])["recipientAccountId"] for x in got] == [OTHER]


def test_pagination_over_thousands_of_events(srv, world):
    # 2,500 answered changes by one user, each its own event. (Refusals would not do: a caller's
    # refusals are kept only up to its allowance; see the test below.)
    iam = srv.client("iam")
    iam.create_role(RoleName="paged", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}]}))
    iam.create_user(UserName="pager")
    iam.put_user_policy(UserName="pager", PolicyName="p", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:UpdateRoleDescription",
                                                "Resource": f"arn:aws:iam::{ACCOUNT}:role/paged"}]}))
    k = iam.create_access_key(UserName="pager")["AccessKey"]
    srv.secrets.append(k["SecretAccessKey"])
    pager = srv.client("iam", {"AccessKeyId": k["AccessKeyId"], "SecretAccessKey": k["SecretAccessKey"]})

    def describe(i: int) -> int:
        return pager.update_role_description(RoleName="paged", Description=f"page-{i}")["ResponseMetadata"]["HTTPStatusCode"]

    with ThreadPoolExecutor(4) as pool:
        assert set(pool.map(describe, range(2500))) == {200}
    ct = srv.client("cloudtrail")
    seen, times, names = [], [], set()
    for page in ct.get_paginator("lookup_events").paginate(
            LookupAttributes=[{"AttributeKey": "Username", "AttributeValue": "pager"}],
            PaginationConfig={"PageSize": 50}):
        assert len(page["Events"]) <= 50
        seen += [x["EventId"] for x in page["Events"]]
        times += [x["EventTime"] for x in page["Events"]]
        names |= {(json.loads(x["CloudTrailEvent"])["requestParameters"] or {}).get("description") for x in page["Events"]}
    assert len(seen) == len(set(seen)) == 2500
    assert times == sorted(times, reverse=True)
    assert {f"page-{i}" for i in range(2500)} == names
    # The CLI follows the tokens too.
    assert len(lookup(srv, "Username", "pager")) == len(seen)


def test_a_signed_callers_refusals_cannot_fill_the_store(srv, world):
    """Refusals cost their caller nothing: past an allowance per caller (a burst of 500, then 20 a
    second) they are counted as suppressed, not kept; other callers' refusals are kept all the same."""
    iam = srv.client("iam")
    iam.create_user(UserName="flooder")
    k = iam.create_access_key(UserName="flooder")["AccessKey"]
    srv.secrets.append(k["SecretAccessKey"])
    flooder = {"AccessKeyId": k["AccessKeyId"], "SecretAccessKey": k["SecretAccessKey"]}
    s = requests.Session()

    def metric(name: str = 'podiam_audit_events_total{outcome="suppressed"}') -> float:
        text = requests.get(srv.endpoint + "/metrics", timeout=10).text
        line = next((ln for ln in text.splitlines() if ln.startswith(name + " ")), f"{name} 0")
        return float(line.split()[-1])

    by_caller = 'podiam_audit_suppressed_total{allowance="caller"}'
    before, before_caller = metric(), metric(by_caller)

    def refuse(i: int) -> int:
        body = urlencode({"Action": "GetRole", "Version": "2010-05-08", "RoleName": f"flood-{i}"})
        p = _signed_iam(srv, flooder, body)
        return s.post(p.url, data=p.body, headers=dict(p.headers), timeout=30).status_code

    t0 = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        assert set(pool.map(refuse, range(1500))) == {403}
    elapsed = time.monotonic() - t0
    # Another caller's refusal, right after, is kept.
    with pytest.raises(ClientError) as e:
        srv.client("iam", world["keys"]["nobody"]).get_role(RoleName="after-the-flood")
    assert client_error(e.value) == (403, "AccessDenied")
    assert [x["EventName"] for x in lookup(srv, "Username", "nobody")
            if "after-the-flood" in x["CloudTrailEvent"]] == ["GetRole"]
    stored = sum(len(page["Events"]) for page in srv.client("cloudtrail").get_paginator("lookup_events").paginate(
        LookupAttributes=[{"AttributeKey": "Username", "AttributeValue": "flooder"}]))
    assert 500 <= stored <= 500 + 20 * (elapsed + 1), (stored, elapsed)
    assert metric() - before >= 1500 - stored
    # The caller's own allowance is the one it used up.
    assert metric(by_caller) - before_caller >= 1500 - stored


def test_anonymous_refusals_cannot_fill_the_store(srv, world):
    body = {"Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15", "RoleArn": world["role_arn"],
            "WebIdentityToken": "not-a-token"}
    s = requests.Session()

    def refuse(i: int) -> int:
        return s.post(srv.endpoint + "/", data={**body, "RoleSessionName": f"flood-{i}"}, timeout=30).status_code

    t0 = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        assert set(pool.map(refuse, range(4000))) == {400}
    elapsed = time.monotonic() - t0
    # A credential issued during the flood's aftermath is recorded all the same.
    creds, _, _ = irsa_exchange(srv, world, "after-flood")
    assert [x["EventName"] for x in lookup(srv, "AccessKeyId", creds["AccessKeyId"])] == ["AssumeRoleWithWebIdentity"]
    stored = sum(1 for page in srv.client("cloudtrail").get_paginator("lookup_events").paginate(
        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "AssumeRoleWithWebIdentity"}])
        for x in page["Events"]
        if (json.loads(x["CloudTrailEvent"])["requestParameters"] or {}).get("roleSessionName", "").startswith("flood-"))
    assert 0 < stored <= 2000 + 200 * (elapsed + 1), (stored, elapsed)
    text = requests.get(srv.endpoint + "/metrics", timeout=10).text
    suppressed = [ln for ln in text.splitlines() if ln.startswith('podiam_audit_events_total{outcome="suppressed"}')]
    assert suppressed and float(suppressed[0].split()[-1]) >= 4000 - stored, text


def test_audit_who_names_the_holder_of_a_key_and_what_a_pod_received(srv, world):
    creds, uid, _ = irsa_exchange(srv, world, "who-0")
    p = srv.podiam("audit", "who", "--access-key", creds["AccessKeyId"])
    assert p.returncode == 0, p.stderr
    line = p.stdout.strip()
    assert "\n" not in line
    for want in [f"issued {creds['AccessKeyId']}", f"assumed-role/irsa-app/who-0", f"cluster {CLUSTER}",
                 "namespace team-a", "service account app", f"pod who-0 (uid {uid})", "node podiam-node",
                 "AssumeRoleWithWebIdentity"]:
        assert want in line, (want, line)
    p = srv.podiam("audit", "who", "--pod", "team-a/who-0")
    assert p.returncode == 0 and "who-0" in p.stdout and creds["AccessKeyId"] in p.stdout, p
    p = srv.podiam("audit", "who", "--pod", "team-a/who-0", "--cluster", "elsewhere")
    assert p.returncode == 0 and creds["AccessKeyId"] not in p.stdout, p
    p = srv.podiam("audit", "who", "--access-key", "ASIAUNKNOWNKEY000000")
    assert p.returncode != 0 and "no event issued" in p.stderr, p
    p = srv.podiam("audit", "who", "--pod", "no-slash")
    assert p.returncode != 0


def test_metrics_count_written_events(srv, world):
    text = requests.get(srv.endpoint + "/metrics", timeout=10).text
    written = [line for line in text.splitlines() if line.startswith('podiam_audit_events_total{outcome="written"}')]
    assert written and float(written[0].split()[-1]) > 0, text
    assert 'podiam_audit_events_total{outcome="dropped"} 0' in text


def test_the_log_and_the_store_hold_no_secret(srv, world):
    irsa_exchange(srv, world, "secrets-0")
    assert srv.secrets, "nothing to look for"
    srv.stop()  # flushes nothing extra: what is written is written
    try:
        lines = srv.audit_log.read_text().splitlines()
        assert lines and all(json.loads(line)["eventVersion"] == "1.09" for line in lines)
        blobs = [srv.audit_log.read_bytes()]
        for f in srv.data_dir.glob("podiam.db*"):
            blobs.append(f.read_bytes())
        db = sqlite3.connect(srv.data_dir / "podiam.db")
        blobs.append("\n".join(r[0] for r in db.execute("SELECT record FROM audit_events")).encode())
        db.close()
        for secret in srv.secrets:
            for b in blobs:
                assert secret.encode() not in b, f"a secret ({secret[:6]}...) is in the audit trail"
        # Each JWT's signature alone is not there either.
        for secret in srv.secrets:
            if secret.count(".") == 2:
                sig = secret.rsplit(".", 1)[1].encode()
                assert all(sig not in b for b in blobs)
    finally:
        srv.start()


def _signed_iam(srv, creds: dict, body: str) -> requests.PreparedRequest:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    req = AWSRequest(method="POST", url=srv.endpoint + "/", data=body,
                     headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    SigV4Auth(Credentials(creds["AccessKeyId"], creds["SecretAccessKey"]), "iam", REGION).add_auth(req)
    return req.prepare()


def test_an_event_names_the_key_that_signed_not_another_the_header_mentions(srv, world):
    """The Authorization header is not signed: a caller who adds an element naming someone
    else's key must not get its call recorded under that key."""
    mallory, victim = world["keys"]["nobody"], world["keys"]["auditor"]
    role = f"spoof-{uuid.uuid4().hex[:8]}"
    p = _signed_iam(srv, mallory, f"Action=GetRole&Version=2010-05-08&RoleName={role}")
    auth = p.headers["Authorization"]
    algo, rest = auth.split(" ", 1)
    doctored = {**dict(p.headers), "Authorization": f"{algo} X-Credential={victim['AccessKeyId']}/x, {rest}"}
    r = requests.post(p.url, data=p.body, headers=doctored, timeout=30)
    assert r.status_code == 403 and "AccessDenied" in r.text, r.text
    by_victim = lookup(srv, "AccessKeyId", victim["AccessKeyId"])
    assert not [x for x in by_victim if role in x["CloudTrailEvent"]], by_victim
    by_mallory = [x for x in lookup(srv, "AccessKeyId", mallory["AccessKeyId"]) if role in x["CloudTrailEvent"]]
    assert len(by_mallory) == 1
    event = json.loads(by_mallory[0]["CloudTrailEvent"])
    assert event["userIdentity"]["accessKeyId"] == mallory["AccessKeyId"]
    assert event["errorCode"] == "AccessDenied"


def test_anonymous_refusals_are_kept_small(srv, world):
    """An unsigned caller chooses every byte of its refused request: its event keeps only the
    members the service models, at most 1 KiB of them (past that, their names) and 256 characters
    of user agent."""
    # Modeled members within the model's bounds (else the wire check refuses the request before
    # the service sees it), and members no model names.
    junk = {"ProviderId": "x" * 2000, **{f"Junk{i}": "j" * 7900 for i in range(4)}}
    marker = f"small-{uuid.uuid4().hex[:8]}"
    r = requests.post(srv.endpoint + "/", data={"Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15",
                                                "RoleArn": world["role_arn"], "RoleSessionName": marker,
                                                "WebIdentityToken": "not-a-token", **junk},
                      headers={"User-Agent": "ua/" + "u" * 5000}, timeout=30)
    assert r.status_code == 400, r.text
    recent = srv.client("cloudtrail").lookup_events(
        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "AssumeRoleWithWebIdentity"}],
        StartTime=time.time() - 60)["Events"]
    got = [x for x in recent if "podiam:truncated" in x["CloudTrailEvent"]]
    events = [json.loads(x["CloudTrailEvent"]) for x in got]
    mine = [e for e in events if "providerId" in e["requestParameters"]["parameterNames"]]
    assert mine, events
    e = mine[0]
    assert not any(n.startswith("junk") for n in e["requestParameters"]["parameterNames"]), e
    assert len(json.dumps(e["requestParameters"])) <= 1024
    assert len(e["userAgent"]) < 300
    assert len(json.dumps(e)) < 4096


def test_a_created_access_key_is_found_by_its_id(srv, world):
    iam = srv.client("iam")
    user = f"keyed-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    k = iam.create_access_key(UserName=user)["AccessKey"]
    srv.secrets.append(k["SecretAccessKey"])
    got = lookup(srv, "AccessKeyId", k["AccessKeyId"])
    assert [x["EventName"] for x in got] == ["CreateAccessKey"]
    event = json.loads(got[0]["CloudTrailEvent"])
    assert event["responseElements"]["accessKey"] == {"accessKeyId": k["AccessKeyId"], "status": "Active", "userName": user}
    assert k["SecretAccessKey"] not in got[0]["CloudTrailEvent"]
