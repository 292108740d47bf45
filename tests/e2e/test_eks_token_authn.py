"""`aws eks get-token` authentication: the real AWS CLI presigns GetCallerIdentity for podiam's STS
endpoint; `POST /podiam/clusters/<name>/authenticate` answers the API server's TokenReview with the
identity the cluster's access entries map the signer to (an IAM user, an AssumeRole session, an
IRSA session, a node role), and refuses everything else with one generic error — the reason goes
to the server log only. Clusters in CONFIG_MAP and API_AND_CONFIG_MAP mode map through the aws-auth
ConfigMap files given with `--aws-auth`, read again when they change."""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import re
import tempfile
import time
import urllib.parse
from pathlib import Path

import pytest
import requests

from podiam_e2e import ACCOUNT, REGION, Podiam, principal_trust

CLUSTER = "authn"
PREFIX = "k8s-aws-v1."
ROOT_TRUST = principal_trust({"AWS": f"arn:aws:iam::{ACCOUNT}:root"})
REFUSED = {"authenticated": False, "error": "the token was not accepted"}

# The aws-auth ConfigMaps, written before the server starts (a file that does not load fails it).
AWS_AUTH = Path(tempfile.mkdtemp(prefix="podiam-e2e-aws-auth-"))
# authn-cm (CONFIG_MAP): the whole manifest, as kubectl prints it. `ops` lives under /team/: the
# authenticator matches a session by its role without the path, so the entry with the path is dead.
CM_YAML = f"""apiVersion: v1
kind: ConfigMap
metadata:
  name: aws-auth
  namespace: kube-system
data:
  mapRoles: |
    - rolearn: arn:aws:iam::{ACCOUNT}:role/ops
      username: "cm-ops:{{{{SessionName}}}}"
      groups: [cm-ops, "acct-{{{{AccountID}}}}"]
    - rolearn: arn:aws:iam::{ACCOUNT}:role/p/deep
      username: never
  mapUsers: |
    - userarn: arn:aws:iam::{ACCOUNT}:user/alice
      username: cm-alice
      groups: [cm-devs]
"""
# authn-both (API_AND_CONFIG_MAP): just the data. alice also has an access entry there.
BOTH_YAML = f"""mapUsers: |
  - userarn: arn:aws:iam::{ACCOUNT}:user/alice
    username: cm-alice
  - userarn: arn:aws:iam::{ACCOUNT}:user/nobody
    username: cm-nobody
    groups: [cm-nobody]
"""
# authn (API): never read.
API_YAML = f"""mapUsers: |
  - userarn: arn:aws:iam::{ACCOUNT}:user/nobody
    username: cm-nobody
mapAccounts: |
  - "{ACCOUNT}"
"""
for _name, _text in (("cm", CM_YAML), ("both", BOTH_YAML), ("api", API_YAML)):
    (AWS_AUTH / f"{_name}.yaml").write_text(_text)
PODIAM_ARGS = ("--aws-auth", f"authn-cm={AWS_AUTH / 'cm.yaml'}",
               "--aws-auth", f"{ACCOUNT}/authn-both={AWS_AUTH / 'both.yaml'}",
               "--aws-auth", f"{CLUSTER}={AWS_AUTH / 'api.yaml'}")


def role(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/{name}"


def user(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:user/{name}"


def keys_of(k: dict) -> dict:
    return {"AccessKeyId": k["AccessKeyId"], "SecretAccessKey": k["SecretAccessKey"],
            **({"SessionToken": k["SessionToken"]} if k.get("SessionToken") else {})}


def get_token(server, creds: dict, cluster: str = CLUSTER, sts_endpoint: str | None = None) -> str:
    """A token from the real CLI, with the STS endpoint pointed at podiam."""
    env = server.creds_env(creds)
    env["AWS_ENDPOINT_URL_STS"] = sts_endpoint or server.endpoint
    out = server.aws("eks", "get-token", "--cluster-name", cluster, env=env)
    assert out["kind"] == "ExecCredential", out
    token = out["status"]["token"]
    assert token.startswith(PREFIX), token
    return token


def url_of(token: str) -> str:
    s = token[len(PREFIX):]
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)).decode()


def token_of(url: str) -> str:
    return PREFIX + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


def review(server, token: str, cluster: str = CLUSTER, version: str = "v1", *, account: str | None = None) -> dict:
    path = f"{account}/{cluster}" if account else cluster
    body = {"apiVersion": f"authentication.k8s.io/{version}", "kind": "TokenReview",
            "spec": {"token": token, "audiences": ["https://kubernetes.default.svc"]}}
    r = requests.post(f"{server.endpoint}/podiam/clusters/{path}/authenticate", json=body, timeout=30)
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["apiVersion"], out["kind"]) == (f"authentication.k8s.io/{version}", "TokenReview"), out
    return out["status"]


def refusals(server) -> list[str]:
    return [line for line in server.log().splitlines() if "token review: refused" in line]


def refused(server, token: str, reason: str, cluster: str = CLUSTER, **kw) -> None:
    """The generic answer; the reason in the one new log line, which never holds the token."""
    before = len(refusals(server))
    assert review(server, token, cluster, **kw) == REFUSED
    lines = refusals(server)
    assert len(lines) == before + 1, lines[-3:]
    assert reason in lines[-1], lines[-1]
    assert token[len(PREFIX):][:40] not in lines[-1]


def presign(creds: dict, host: str, cluster: str | None, when: datetime.datetime, *,
            action: str = "GetCallerIdentity") -> str:
    """A presigned URL made here, for the shapes the CLI never makes (an old date, no cluster
    header); with today's date and the CLI's shape it is accepted like the CLI's."""
    amz_date = when.strftime("%Y%m%dT%H%M%SZ")
    scope = f"{amz_date[:8]}/{REGION}/sts/aws4_request"
    signed = "host;x-k8s-aws-id" if cluster is not None else "host"
    params = {"Action": action, "Version": "2011-06-15", "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
              "X-Amz-Credential": f"{creds['AccessKeyId']}/{scope}", "X-Amz-Date": amz_date,
              "X-Amz-Expires": "60", "X-Amz-SignedHeaders": signed}
    if creds.get("SessionToken"):
        params["X-Amz-Security-Token"] = creds["SessionToken"]
    q = "&".join(f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}"
                 for k, v in sorted(params.items()))
    headers = f"host:{host}\n" + (f"x-k8s-aws-id:{cluster}\n" if cluster is not None else "")
    creq = "\n".join(["GET", "/", q, headers, signed, hashlib.sha256(b"").hexdigest()])
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(creq.encode()).hexdigest()])
    key = ("AWS4" + creds["SecretAccessKey"]).encode()
    for part in (amz_date[:8], REGION, "sts", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
    return token_of(f"http://{host}/?{q}&X-Amz-Signature={sig}")


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


@pytest.fixture(scope="module")
def env(server):
    iam = server.client("iam")
    # Roles are assumed by a user: an account root may not call AssumeRole.
    iam.create_user(UserName="assumer")
    iam.put_user_policy(UserName="assumer", PolicyName="p", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]}))
    sts = server.client("sts", keys_of(iam.create_access_key(UserName="assumer")["AccessKey"]))
    iam.create_role(RoleName="eks", AssumeRolePolicyDocument=ROOT_TRUST)
    server.aws("eks", "create-cluster", "--name", CLUSTER, "--role-arn", role("eks"),
               "--resources-vpc-config", "subnetIds=s", "--access-config", "authenticationMode=API")
    out = {}
    # An IAM user with an entry, and one without.
    for name in ("alice", "nobody"):
        iam.create_user(UserName=name)
        out[name] = keys_of(iam.create_access_key(UserName=name)["AccessKey"])
    server.aws("eks", "create-access-entry", "--cluster-name", CLUSTER, "--principal-arn", user("alice"),
               "--kubernetes-groups", "devs")
    # A role under a path, assumed with AssumeRole; its entry names a username template.
    iam.create_role(RoleName="ops", Path="/team/", AssumeRolePolicyDocument=ROOT_TRUST)
    ops = f"arn:aws:iam::{ACCOUNT}:role/team/ops"
    server.aws("eks", "create-access-entry", "--cluster-name", CLUSTER, "--principal-arn", ops,
               "--kubernetes-groups", "ops", "--username", "ops:{{SessionName}}:{{SessionNameRaw}}:{{AccountID}}")
    out["ops"] = keys_of(sts.assume_role(RoleArn=ops, RoleSessionName="jane@example.com")["Credentials"])
    out["ops_role_id"] = iam.get_role(RoleName="ops")["Role"]["RoleId"]
    # An IRSA role: its cluster is the issuer; the entry is in CLUSTER, with EKS's default username.
    irsa = server.irsa("authn-irsa", "irsa-role")
    server.aws("eks", "create-access-entry", "--cluster-name", CLUSTER, "--principal-arn", irsa["role_arn"],
               "--kubernetes-groups", "pods")
    out["irsa"] = server.web_credentials(irsa["role_arn"], server.token("authn-irsa"), session="pod-1")
    # A hybrid node role.
    iam.create_role(RoleName="hybrid", AssumeRolePolicyDocument=ROOT_TRUST)
    server.aws("eks", "create-access-entry", "--cluster-name", CLUSTER, "--principal-arn", role("hybrid"),
               "--type", "HYBRID_LINUX")
    out["hybrid"] = keys_of(sts.assume_role(RoleArn=role("hybrid"), RoleSessionName="mi-0abc")["Credentials"])
    # A cluster in CONFIG_MAP mode (EKS's default), one in API_AND_CONFIG_MAP mode where alice has an
    # entry, and one more in API mode.
    server.aws("eks", "create-cluster", "--name", "authn-cm", "--role-arn", role("eks"),
               "--resources-vpc-config", "subnetIds=s")
    server.aws("eks", "create-cluster", "--name", "authn-both", "--role-arn", role("eks"),
               "--resources-vpc-config", "subnetIds=s", "--access-config", "authenticationMode=API_AND_CONFIG_MAP")
    server.aws("eks", "create-access-entry", "--cluster-name", "authn-both", "--principal-arn", user("alice"),
               "--kubernetes-groups", "entry-devs")
    # A role under a path that the ConfigMap names with its path.
    iam.create_role(RoleName="deep", Path="/p/", AssumeRolePolicyDocument=ROOT_TRUST)
    out["deep"] = keys_of(sts.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/p/deep",
                                          RoleSessionName="d1")["Credentials"])
    server.aws("eks", "create-cluster", "--name", "authn-other", "--role-arn", role("eks"),
               "--resources-vpc-config", "subnetIds=s", "--access-config", "authenticationMode=API")
    return out


# ------------------------------------------------------------------------------ accepted


def test_an_iam_user_token_maps_to_the_user_arn(server, env):
    status = review(server, get_token(server, env["alice"]))
    assert status["authenticated"] is True, status
    u = status["user"]
    uid = server.client("iam").get_user(UserName="alice")["User"]["UserId"]
    assert u["username"] == user("alice")
    assert u["groups"] == ["devs"]
    assert u["uid"] == f"aws-iam-authenticator:{ACCOUNT}:{uid}"
    binding = u["extra"].pop("podiam.io/access-binding")
    issued, tag = binding[0].split(".")
    assert abs(int(issued) - time.time()) < 300 and len(tag) == 43, binding  # base64url of 32 bytes
    assert u["extra"] == {"arn": [user("alice")], "canonicalArn": [user("alice")], "sessionName": [""],
                          "accessKeyId": [env["alice"]["AccessKeyId"]], "principalId": [uid],
                          "podiam.io/access-entry": [user("alice")]}
    assert "audiences" not in status


def test_an_assume_role_session_maps_through_the_role_entry_and_templates(server, env):
    for version in ("v1", "v1beta1"):
        status = review(server, get_token(server, env["ops"]), version=version)
        assert status["authenticated"] is True, status
        u = status["user"]
        assert u["username"] == f"ops:jane-example.com:jane@example.com:{ACCOUNT}"
        assert u["groups"] == ["ops"]
        assert u["uid"] == f"aws-iam-authenticator:{ACCOUNT}:{env['ops_role_id']}"
        assert u["extra"]["arn"] == [f"arn:aws:sts::{ACCOUNT}:assumed-role/ops/jane@example.com"]
        assert u["extra"]["sessionName"] == ["jane@example.com"]
        assert u["extra"]["principalId"] == [env["ops_role_id"]]


def test_an_irsa_session_maps_with_the_default_role_username(server, env):
    status = review(server, get_token(server, env["irsa"]))
    assert status["authenticated"] is True, status
    assert status["user"]["username"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/irsa-role/pod-1"
    assert status["user"]["groups"] == ["pods"]
    assert status["user"]["extra"]["accessKeyId"] == [env["irsa"]["AccessKeyId"]]


def test_a_hybrid_node_maps_to_system_node(server, env):
    status = review(server, get_token(server, env["hybrid"]))
    assert status["authenticated"] is True, status
    assert (status["user"]["username"], status["user"]["groups"]) == ("system:node:mi-0abc", ["system:nodes"])


def test_a_token_made_here_in_the_cli_shape_is_accepted_and_the_account_route_works(server, env):
    host = server.endpoint.split("://", 1)[1]
    token = presign(env["alice"], host, CLUSTER, now() - datetime.timedelta(minutes=14))
    assert review(server, token)["authenticated"] is True
    assert review(server, token, account=ACCOUNT)["authenticated"] is True


# ------------------------------------------------------------------------------ refused


def test_an_expired_token_is_refused(server, env):
    host = server.endpoint.split("://", 1)[1]
    refused(server, presign(env["alice"], host, CLUSTER, now() - datetime.timedelta(minutes=16)), "expired")


def test_a_token_for_another_cluster_is_refused(server, env):
    refused(server, get_token(server, env["alice"], cluster="authn-other"), "signature refused")


def test_a_tampered_signature_is_refused(server, env):
    url = url_of(get_token(server, env["alice"]))
    head, sig = url.rsplit("X-Amz-Signature=", 1)
    flipped = ("1" if sig[0] == "0" else "0") + sig[1:]
    refused(server, token_of(f"{head}X-Amz-Signature={flipped}"), "signature refused")


def test_an_unsigned_cluster_id_is_refused(server, env):
    host = server.endpoint.split("://", 1)[1]
    refused(server, presign(env["alice"], host, None, now()), "x-k8s-aws-id is not a signed header")


def test_a_host_that_is_not_podiam_is_refused(server, env):
    # The same server reached by another name: the CLI presigns for that host.
    other = server.endpoint.replace("127.0.0.1", "localhost")
    refused(server, get_token(server, env["alice"], sts_endpoint=other), "not one of the accepted STS hosts")


def test_a_principal_with_no_access_entry_is_refused(server, env):
    refused(server, get_token(server, env["nobody"]), "no access entry")


def test_a_config_map_cluster_refuses_a_principal_the_config_map_does_not_name(server, env):
    refused(server, get_token(server, env["nobody"], cluster="authn-cm"),
            "not in the cluster's aws-auth ConfigMap", cluster="authn-cm")


def test_another_action_and_garbage_tokens_are_refused(server, env):
    host = server.endpoint.split("://", 1)[1]
    refused(server, presign(env["alice"], host, CLUSTER, now(), action="GetSessionToken"), "not GetCallerIdentity")
    refused(server, "k8s-aws-v1.%%%", "base64url")
    refused(server, PREFIX + "A" * 9000, "too long")
    refused(server, get_token(server, env["alice"]), "not in the cluster's account", account="999988887777")


def test_malformed_reviews_get_a_4xx_and_never_a_5xx(server, env):
    url = f"{server.endpoint}/podiam/clusters/{CLUSTER}/authenticate"
    for body in (b"", b"{", b"[]", json.dumps({"apiVersion": "v1", "kind": "TokenReview"}).encode(),
                 json.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "Pod"}).encode(),
                 json.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                             "spec": {"token": 7}}).encode(),
                 b"{" * 100_000):
        r = requests.post(url, data=body, timeout=30)
        assert r.status_code in (400, 413), (body[:40], r.status_code, r.text)
    assert requests.get(url, timeout=30).status_code == 405


def test_malformed_access_reviews_get_a_4xx_and_forged_ones_no_opinion(server, env):
    url = f"{server.endpoint}/podiam/clusters/{CLUSTER}/authorize"
    sar = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview"}
    for body, status in ((b"", 400), (b"{", 400), (b"[]", 400), (json.dumps({**sar, "kind": "Pod"}).encode(), 400),
                         (json.dumps({**sar, "apiVersion": "v1"}).encode(), 400),
                         (json.dumps({**sar, "spec": {"groups": ["a"], "group": ["b"]}}).encode(), 400),
                         (b"{" * 100_000, 413)):
        r = requests.post(url, data=body, timeout=30)
        assert r.status_code == status, (body[:40], r.status_code, r.text)
    assert requests.get(url, timeout=30).status_code == 405
    assert requests.post(f"{server.endpoint}/podiam/clusters/{CLUSTER}/authorize/x", data=b"{}",
                         timeout=30).status_code == 404
    # Well-formed, with a forged binding: no opinion, and no reason to the caller.
    forged = {**sar, "spec": {"user": user("alice"), "uid": f"aws-iam-authenticator:{ACCOUNT}:AIDAX",
                              "extra": {"podiam.io/access-entry": [user("alice")],
                                        "podiam.io/access-binding": ["1.AAAA"]},
                              "nonResourceAttributes": {"path": "/healthz", "verb": "get"}}}
    r = requests.post(url, json=forged, timeout=30)
    assert r.status_code == 200 and r.json()["status"] == {"allowed": False}, r.text


def test_no_refusal_reason_reaches_the_caller(server, env):
    # Every refusal above answered the same body; a signer of another account sees it too.
    unknown = {"AccessKeyId": "AKIA" + "Z" * 16, "SecretAccessKey": "x" * 40}
    host = server.endpoint.split("://", 1)[1]
    refused(server, presign(unknown, host, CLUSTER, now()), "signature refused")


# ------------------------------------------------------------------------------ pattern entries, session tags (podiam)

TAG_TRUST = principal_trust({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, ["sts:AssumeRole", "sts:TagSession"])
SSO = "aws-reserved/sso.amazonaws.com"
STD_EXTRA = ["accessKeyId", "arn", "canonicalArn", "podiam.io/access-binding", "podiam.io/access-entry", "principalId",
             "sessionName"]


@pytest.fixture(scope="module")
def pat(server, env):
    """Pattern entries made before their roles exist, and a user who assumes roles with tags."""
    iam = server.client("iam")
    iam.create_user(UserName="tagger")
    iam.put_user_policy(UserName="tagger", PolicyName="p", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["sts:AssumeRole", "sts:TagSession"], "Resource": "*"}]}))
    tagger = keys_of(iam.create_access_key(UserName="tagger")["AccessKey"])

    def entry(arn: str, *extra: str) -> None:
        server.aws("eks", "create-access-entry", "--cluster-name", CLUSTER, "--principal-arn", arn, *extra)

    entry(role("pat-*"), "--kubernetes-groups", "pat")
    entry(role("pat-ops-*"), "--kubernetes-groups", "pat-ops", "--username", "ops:{{SessionTag:Team}}:{{RoleName}}")
    entry(role("AWSReservedSSO_Admin_*"), "--kubernetes-groups", "sso", "--username", "sso:{{SessionTag:email}}")
    for name, path in (("pat-a", "/"), ("pat-ops-a", "/"), ("pat-exact", "/"), ("pat-deep", "/x/"),
                       ("AWSReservedSSO_Admin_0123456789abcdef", f"/{SSO}/eu-west-2/")):
        iam.create_role(RoleName=name, Path=path, AssumeRolePolicyDocument=TAG_TRUST)
    entry(role("pat-exact"), "--kubernetes-groups", "exact")
    iam.create_user(UserName="pat-user")

    def session(arn: str, name: str = "jane", **tags: str) -> dict:
        args = ["sts", "assume-role", "--role-arn", arn, "--role-session-name", name]
        if tags:
            args += ["--tags", *(f"Key={k},Value={v}" for k, v in tags.items())]
        return keys_of(server.aws(*args, env=server.creds_env(tagger))["Credentials"])

    return {"session": session,
            "user": keys_of(iam.create_access_key(UserName="pat-user")["AccessKey"])}


def test_a_pattern_entry_maps_a_role_made_after_it(server, pat):
    status = review(server, get_token(server, pat["session"](role("pat-a"), "jane@example.com")))
    assert status["authenticated"] is True, status
    u = status["user"]
    assert u["username"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/pat-a/jane-example.com"
    assert u["groups"] == ["pat"]
    rid = server.client("iam").get_role(RoleName="pat-a")["Role"]["RoleId"]
    assert u["uid"] == f"aws-iam-authenticator:{ACCOUNT}:{rid}"
    assert sorted(u["extra"]) == STD_EXTRA
    assert u["extra"]["podiam.io/access-entry"] == [role("pat-*")], u["extra"]


def test_the_exact_entry_then_the_longest_prefix_wins_and_session_tags_fill_the_name(server, pat):
    u = review(server, get_token(server, pat["session"](role("pat-exact"))))["user"]
    assert u["groups"] == ["exact"]
    u = review(server, get_token(server, pat["session"](role("pat-ops-a"), team="blue")))["user"]
    assert (u["username"], u["groups"]) == ("ops:blue:pat-ops-a", ["pat-ops"])
    assert sorted(u["extra"]) == STD_EXTRA


def test_an_sso_role_matches_the_pathless_pattern(server, pat):
    arn = role(f"{SSO}/eu-west-2/AWSReservedSSO_Admin_0123456789abcdef")
    u = review(server, get_token(server, pat["session"](arn, "jane@example.com", email="jane@example.com")))["user"]
    assert (u["username"], u["groups"]) == ("sso:jane@example.com", ["sso"])


def test_a_missing_tag_is_refused(server, pat):
    refused(server, get_token(server, pat["session"](role("pat-ops-a"), other="x")), "does not carry")


def test_a_tag_value_cannot_spell_a_prefix_or_another_name(server, pat):
    arn = role(f"{SSO}/eu-west-2/AWSReservedSSO_Admin_0123456789abcdef")
    # Tag values fill a username only with a session name's characters: no `:` or `/`.
    for value in ("system:masters", f"arn:aws:iam::{ACCOUNT}:user/alice", "a/b"):
        refused(server, get_token(server, pat["session"](arn, email=value)), "characters a username template")
    assert review(server, get_token(server, pat["session"](arn, email="jane.doe@example.com")))["user"][
        "username"] == "sso:jane.doe@example.com"
    # A username may not begin with a tag: the tag's setter would choose the whole name.
    rc, _, err = server.aws_rc("eks", "update-access-entry", "--cluster-name", CLUSTER, "--principal-arn",
                               role("pat-ops-*"), "--username", "{{SessionTag:team}}")
    assert rc != 0 and "InvalidParameterException" in err and "literal text" in err, err


def test_a_pattern_matches_no_user_no_other_path_and_no_other_case(server, pat):
    refused(server, get_token(server, pat["user"]), "no access entry")
    refused(server, get_token(server, pat["session"](role("x/pat-deep"))), "no access entry")
    server.client("iam").create_role(RoleName="Pat-b", AssumeRolePolicyDocument=TAG_TRUST)
    refused(server, get_token(server, pat["session"](role("Pat-b"))), "no access entry")


# ------------------------------------------------------------------------------ aws-auth ConfigMap


def metric(server, name: str) -> float:
    text = requests.get(f"{server.endpoint}/metrics", timeout=10).text
    m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def test_a_config_map_cluster_maps_an_assumed_role_by_the_role_without_its_path(server, env):
    status = review(server, get_token(server, env["ops"], cluster="authn-cm"), "authn-cm")
    assert status["authenticated"] is True, status
    u = status["user"]
    assert u["username"] == "cm-ops:jane-example.com"
    assert u["groups"] == ["cm-ops", f"acct-{ACCOUNT}"]
    assert u["uid"] == f"aws-iam-authenticator:{ACCOUNT}:{env['ops_role_id']}"
    # The same extra as an entry-mapped user, and nothing more.
    assert u["extra"] == {"arn": [f"arn:aws:sts::{ACCOUNT}:assumed-role/ops/jane@example.com"],
                          "canonicalArn": [role("ops")], "sessionName": ["jane@example.com"],
                          "accessKeyId": [env["ops"]["AccessKeyId"]], "principalId": [env["ops_role_id"]]}
    status = review(server, get_token(server, env["alice"], cluster="authn-cm"), "authn-cm")
    assert (status["user"]["username"], status["user"]["groups"]) == ("cm-alice", ["cm-devs"])


def test_api_and_config_map_an_access_entry_wins_and_the_config_map_maps_the_rest(server, env):
    status = review(server, get_token(server, env["alice"], cluster="authn-both"), "authn-both")
    assert (status["user"]["username"], status["user"]["groups"]) == (user("alice"), ["entry-devs"]), status
    status = review(server, get_token(server, env["nobody"], cluster="authn-both"), "authn-both",
                    account=ACCOUNT)
    assert (status["user"]["username"], status["user"]["groups"]) == ("cm-nobody", ["cm-nobody"]), status


def test_api_mode_ignores_the_config_map_file(server, env):
    # api.yaml names nobody and lists the whole account: neither counts in API mode.
    refused(server, get_token(server, env["nobody"]), "no access entry")


def test_a_role_written_with_its_path_never_matches(server, env):
    refused(server, get_token(server, env["deep"], cluster="authn-cm"),
            "not in the cluster's aws-auth ConfigMap", cluster="authn-cm")


def test_a_root_never_maps_through_the_config_map(server, env):
    refused(server, get_token(server, server.root_keys(), cluster="authn-cm"), "root", cluster="authn-cm")


def test_a_config_map_token_for_another_cluster_is_refused(server, env):
    refused(server, get_token(server, env["ops"], cluster="authn-both"), "signature refused", cluster="authn-cm")


def test_a_cluster_of_another_account_route_is_refused(server, env):
    refused(server, get_token(server, env["ops"], cluster="authn-cm"), "not in the cluster's account",
            cluster="authn-cm", account="999988887777")


def wait_for(check, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(0.5)


def test_an_edited_file_is_read_again_and_a_bad_edit_keeps_the_last_good_mapping(server, env):
    path = AWS_AUTH / "cm.yaml"
    token = get_token(server, env["nobody"], cluster="authn-cm")
    assert review(server, token, "authn-cm") == REFUSED
    ok_before = metric(server, 'podiam_aws_auth_reloads_total{result="ok"}')
    path.write_text(CM_YAML.replace("username: cm-alice", "username: cm-alice\n    - userarn: "
                                    f"arn:aws:iam::{ACCOUNT}:user/nobody\n      username: cm-nobody"))
    status = wait_for(lambda: review(server, token, "authn-cm")["authenticated"] and review(server, token, "authn-cm"))
    assert status and status["user"]["username"] == "cm-nobody", status
    assert metric(server, 'podiam_aws_auth_reloads_total{result="ok"}') >= ok_before + 1

    errors_before = metric(server, 'podiam_aws_auth_reloads_total{result="error"}')
    path.write_text("data:\n  mapUsers: |\n    - userarn: [unclosed\n")
    assert wait_for(lambda: metric(server, 'podiam_aws_auth_reloads_total{result="error"}') > errors_before)
    assert "keeping the last good mapping" in server.log()
    assert review(server, token, "authn-cm")["user"]["username"] == "cm-nobody"

    path.write_text(CM_YAML)
    assert wait_for(lambda: review(server, token, "authn-cm") == REFUSED)
    assert review(server, get_token(server, env["ops"], cluster="authn-cm"), "authn-cm")["authenticated"] is True


def test_a_file_that_does_not_load_fails_start_up(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("mapRoles: |\n  - username: x\n")
    for args, why in (((f"c={bad}",), "no rolearn"), ((f"c={tmp_path / 'missing.yaml'}",), "reading"),
                      (("bad name=x",), "not a valid cluster name")):
        p = Podiam(tmp_path / f"data-{why.replace(' ', '-')}", extra_args=[a for v in args for a in ("--aws-auth", v)])
        with pytest.raises(RuntimeError) as e:
            p.start(timeout=20)
        assert why in str(e.value), str(e.value)[-2000:]
        assert "--aws-auth" in str(e.value)
