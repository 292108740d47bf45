"""IAM and STS AssumeRole through the AWS CLI and boto3: OIDC providers, roles, inline and managed
policies, users and access keys, and the authorization of signed calls by the policy engine."""

from __future__ import annotations

import json
import re

import botocore.exceptions
import pytest

from podiam_e2e import ACCOUNT, allow, client_error, principal_trust, unique

OTHER = "444455556666"
THUMB = "9e99a48a9960b14926bb7f3b02e22da2b0ab7280"
ISSUER = "https://oidc.example.test/id/ABC"


# this module's server also has a second account, for cross-account AssumeRole
PODIAM_ARGS = ["--additional-account", OTHER]


@pytest.fixture(scope="module")
def iam(server):
    return server.client("iam")


def err_of(call, *args, **kw) -> tuple[int, str]:
    """(status, code) of a call that must fail."""
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call(*args, **kw)
    status, code = client_error(e.value)
    assert status < 500, e.value
    return status, code


def cli_err(server, *args, env=None) -> str:
    rc, out, err = server.aws_rc(*args, env=env)
    assert rc != 0, out
    m = re.search(r"An error occurred \(([^)]+)\)", err)
    assert m, err
    return m.group(1)


def new_user(iam, *, policy: str | None = None) -> tuple[str, dict]:
    name = unique("u")
    iam.create_user(UserName=name)
    if policy:
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=policy)
    return name, iam.create_access_key(UserName=name)["AccessKey"]


def user_arn(name: str, account: str = ACCOUNT) -> str:
    return f"arn:aws:iam::{account}:user/{name}"


def role_arn(name: str, account: str = ACCOUNT) -> str:
    return f"arn:aws:iam::{account}:role/{name}"


def new_role(iam, trust: str, **kw) -> str:
    name = unique("r")
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust, **kw)
    return name


def assume(server, creds, arn: str, session: str = "sess", **kw) -> dict:
    return server.client("sts", creds).assume_role(RoleArn=arn, RoleSessionName=session, **kw)


# ============================================================================ OIDC providers


def test_provider_crud_cli(server):
    arn = server.aws("iam", "create-open-id-connect-provider", "--url", ISSUER, "--client-id-list", "sts.amazonaws.com",
                     "--thumbprint-list", THUMB, "--tags", "Key=env,Value=test")["OpenIDConnectProviderArn"]
    assert arn == f"arn:aws:iam::{ACCOUNT}:oidc-provider/oidc.example.test/id/ABC"
    got = server.aws("iam", "get-open-id-connect-provider", "--open-id-connect-provider-arn", arn)
    assert got["Url"] == "oidc.example.test/id/ABC"
    assert got["ClientIDList"] == ["sts.amazonaws.com"] and got["ThumbprintList"] == [THUMB]
    assert got["Tags"] == [{"Key": "env", "Value": "test"}]
    listed = server.aws("iam", "list-open-id-connect-providers")["OpenIDConnectProviderList"]
    assert {"Arn": arn} in listed
    server.aws("iam", "add-client-id-to-open-id-connect-provider", "--open-id-connect-provider-arn", arn, "--client-id", "other")
    server.aws("iam", "remove-client-id-from-open-id-connect-provider", "--open-id-connect-provider-arn", arn,
               "--client-id", "sts.amazonaws.com")
    server.aws("iam", "update-open-id-connect-provider-thumbprint", "--open-id-connect-provider-arn", arn,
               "--thumbprint-list", "a" * 40, "b" * 40)
    server.aws("iam", "tag-open-id-connect-provider", "--open-id-connect-provider-arn", arn, "--tags", "Key=team,Value=x")
    server.aws("iam", "untag-open-id-connect-provider", "--open-id-connect-provider-arn", arn, "--tag-keys", "env")
    tags = server.aws("iam", "list-open-id-connect-provider-tags", "--open-id-connect-provider-arn", arn)["Tags"]
    assert tags == [{"Key": "team", "Value": "x"}]
    got = server.aws("iam", "get-open-id-connect-provider", "--open-id-connect-provider-arn", arn)
    assert got["ClientIDList"] == ["other"] and got["ThumbprintList"] == ["a" * 40, "b" * 40]
    server.aws("iam", "delete-open-id-connect-provider", "--open-id-connect-provider-arn", arn)
    assert cli_err(server, "iam", "get-open-id-connect-provider", "--open-id-connect-provider-arn", arn) == "NoSuchEntity"


def test_provider_duplicate(iam):
    url = "https://dup.example.test"
    iam.create_open_id_connect_provider(Url=url, ClientIDList=["sts.amazonaws.com"], ThumbprintList=[THUMB])
    assert err_of(iam.create_open_id_connect_provider, Url=url, ClientIDList=["x"], ThumbprintList=[THUMB]) == (
        409, "EntityAlreadyExists")
    # the same issuer with a trailing slash is the same provider
    assert err_of(iam.create_open_id_connect_provider, Url=url + "/", ClientIDList=["x"], ThumbprintList=[THUMB]) == (
        409, "EntityAlreadyExists")


@pytest.mark.parametrize("url", ["http://plain.example.test", "https://h.example.test:8443", "https://h.example.test/?q=1",
                                 "https://h.example.test/#f", "ftp://h.example.test", "https://"])
def test_provider_bad_url(iam, url):
    assert err_of(iam.create_open_id_connect_provider, Url=url, ClientIDList=["a"], ThumbprintList=[THUMB]) == (400, "InvalidInput")


@pytest.mark.parametrize("thumbs", [["abc"], ["a" * 41], ["a" * 39]])
def test_provider_bad_thumbprint_length(iam, thumbs):
    assert err_of(iam.create_open_id_connect_provider, Url=f"https://{unique('t')}.example.test",
                  ClientIDList=["a"], ThumbprintList=thumbs) == (400, "ValidationError")


def test_provider_too_many_thumbprints(iam):
    assert err_of(iam.create_open_id_connect_provider, Url="https://six.example.test", ClientIDList=["a"],
                  ThumbprintList=[f"{i:040x}" for i in range(6)]) == (409, "LimitExceeded")


def test_provider_non_hex_thumbprint(iam):
    assert err_of(iam.create_open_id_connect_provider, Url="https://hex.example.test", ClientIDList=["a"],
                  ThumbprintList=["g" * 40]) == (400, "InvalidInput")


def test_provider_missing(iam):
    arn = f"arn:aws:iam::{ACCOUNT}:oidc-provider/nope.example.test"
    assert err_of(iam.get_open_id_connect_provider, OpenIDConnectProviderArn=arn) == (404, "NoSuchEntity")
    assert err_of(iam.delete_open_id_connect_provider, OpenIDConnectProviderArn=arn) == (404, "NoSuchEntity")
    assert err_of(iam.add_client_id_to_open_id_connect_provider, OpenIDConnectProviderArn=arn, ClientID="x") == (
        404, "NoSuchEntity")


def test_provider_client_id_too_long(iam):
    assert err_of(iam.create_open_id_connect_provider, Url="https://cid.example.test", ClientIDList=["x" * 256],
                  ThumbprintList=[THUMB]) == (400, "ValidationError")


# ====================================================================================== roles

TRUST_EC2 = principal_trust({"Service": "ec2.amazonaws.com"})


def test_role_crud_cli(server):
    r = server.aws("iam", "create-role", "--role-name", "CliRole", "--path", "/team/", "--description", "first",
                   "--max-session-duration", "7200", "--tags", "Key=a,Value=1", "--assume-role-policy-document", TRUST_EC2)["Role"]
    assert r["Arn"] == f"arn:aws:iam::{ACCOUNT}:role/team/CliRole" and r["Path"] == "/team/"
    assert re.fullmatch(r"AROA[A-Z0-9]{17}", r["RoleId"]), r["RoleId"]
    got = server.aws("iam", "get-role", "--role-name", "clirole")["Role"]  # names are case-insensitive
    assert got["RoleName"] == "CliRole" and got["MaxSessionDuration"] == 7200 and got["Description"] == "first"
    assert got["AssumeRolePolicyDocument"] == json.loads(TRUST_EC2)
    names = [x["RoleName"] for x in server.aws("iam", "list-roles", "--path-prefix", "/team/")["Roles"]]
    assert names == ["CliRole"]
    server.aws("iam", "update-role", "--role-name", "CliRole", "--description", "second", "--max-session-duration", "43200")
    trust2 = principal_trust({"Service": "lambda.amazonaws.com"})
    server.aws("iam", "update-assume-role-policy", "--role-name", "CliRole", "--policy-document", trust2)
    server.aws("iam", "tag-role", "--role-name", "CliRole", "--tags", "Key=b,Value=2")
    server.aws("iam", "untag-role", "--role-name", "CliRole", "--tag-keys", "a")
    assert server.aws("iam", "list-role-tags", "--role-name", "CliRole")["Tags"] == [{"Key": "b", "Value": "2"}]
    got = server.aws("iam", "get-role", "--role-name", "CliRole")["Role"]
    assert got["Description"] == "second" and got["MaxSessionDuration"] == 43200
    assert got["AssumeRolePolicyDocument"] == json.loads(trust2)
    server.aws("iam", "delete-role", "--role-name", "CliRole")
    assert cli_err(server, "iam", "get-role", "--role-name", "CliRole") == "NoSuchEntity"


def test_role_duplicate_name_case_insensitive(iam):
    iam.create_role(RoleName="DupRole", AssumeRolePolicyDocument=TRUST_EC2)
    assert err_of(iam.create_role, RoleName="duprole", AssumeRolePolicyDocument=TRUST_EC2) == (409, "EntityAlreadyExists")
    assert err_of(iam.create_role, RoleName="DupRole", Path="/other/", AssumeRolePolicyDocument=TRUST_EC2) == (
        409, "EntityAlreadyExists")


def test_role_missing(iam):
    assert err_of(iam.get_role, RoleName="no-such-role") == (404, "NoSuchEntity")
    assert err_of(iam.delete_role, RoleName="no-such-role") == (404, "NoSuchEntity")
    assert err_of(iam.update_assume_role_policy, RoleName="no-such-role", PolicyDocument=TRUST_EC2) == (404, "NoSuchEntity")
    assert err_of(iam.put_role_policy, RoleName="no-such-role", PolicyName="p", PolicyDocument=allow("s3:*")) == (
        404, "NoSuchEntity")


@pytest.mark.parametrize("doc", [
    "not json",
    "{}",
    '{"Version":"2012-10-17","Statement":[]}',
    '{"Version":"2012-10-17","Statement":[{"Effect":"Maybe","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}',
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole"}]}',
    '{"Version":"2099-01-01","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}',
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole","Resource":"*"}]}',
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole","Condition":{"StringEqualz":{"aws:SourceIp":"x"}}}]}',
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]} trailing',
])
def test_role_malformed_trust_policy(iam, doc):
    assert err_of(iam.create_role, RoleName=unique("bad"), AssumeRolePolicyDocument=doc) == (400, "MalformedPolicyDocument")


def test_update_assume_role_policy_malformed(iam):
    name = new_role(iam, TRUST_EC2)
    assert err_of(iam.update_assume_role_policy, RoleName=name, PolicyDocument='{"Statement":"x"}') == (
        400, "MalformedPolicyDocument")
    assert iam.get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"] == json.loads(TRUST_EC2)


@pytest.mark.parametrize("seconds", [3599, 43201, 0])
def test_role_bad_max_session_duration(iam, seconds):
    assert err_of(iam.create_role, RoleName=unique("msd"), AssumeRolePolicyDocument=TRUST_EC2,
                  MaxSessionDuration=seconds) == (400, "ValidationError")


@pytest.mark.parametrize("name", ["x" * 65, "bad name", "bad/name", ""])
def test_role_bad_name(iam, name):
    assert err_of(iam.create_role, RoleName=name, AssumeRolePolicyDocument=TRUST_EC2) == (400, "ValidationError")


@pytest.mark.parametrize("path", ["team", "/team", "/a b/", "//"])
def test_role_bad_path(iam, path):
    assert err_of(iam.create_role, RoleName=unique("p"), Path=path, AssumeRolePolicyDocument=TRUST_EC2) == (
        400, "ValidationError")


def test_delete_role_with_policies_conflicts(iam):
    name = new_role(iam, TRUST_EC2)
    iam.put_role_policy(RoleName=name, PolicyName="inline", PolicyDocument=allow("s3:GetObject"))
    assert err_of(iam.delete_role, RoleName=name) == (409, "DeleteConflict")
    iam.delete_role_policy(RoleName=name, PolicyName="inline")
    parn = iam.create_policy(PolicyName=unique("m"), PolicyDocument=allow("s3:GetObject"))["Policy"]["Arn"]
    iam.attach_role_policy(RoleName=name, PolicyArn=parn)
    assert err_of(iam.delete_role, RoleName=name) == (409, "DeleteConflict")
    iam.detach_role_policy(RoleName=name, PolicyArn=parn)
    iam.delete_role(RoleName=name)
    assert err_of(iam.get_role, RoleName=name) == (404, "NoSuchEntity")


# ================================================================================ policies

ODD_DOC = {
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": "Odd", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
         "Resource": "arn:aws:s3:::bucket/a b+c&d=e%20f/\u00e9*",
         "Condition": {"StringLike": {"s3:prefix": ["home/${aws:username}/*", "x?y"]}}},
        {"Effect": "Deny", "NotAction": "iam:*", "NotResource": ["arn:aws:iam::*:role/x"]},
    ],
}


def test_inline_role_policy_round_trip(server, iam):
    name = new_role(iam, TRUST_EC2)
    iam.put_role_policy(RoleName=name, PolicyName="odd", PolicyDocument=json.dumps(ODD_DOC))
    got = iam.get_role_policy(RoleName=name, PolicyName="odd")
    assert got["PolicyDocument"] == ODD_DOC and got["RoleName"] == name and got["PolicyName"] == "odd"
    assert server.aws("iam", "get-role-policy", "--role-name", name, "--policy-name", "odd")["PolicyDocument"] == ODD_DOC
    assert iam.list_role_policies(RoleName=name)["PolicyNames"] == ["odd"]
    iam.delete_role_policy(RoleName=name, PolicyName="odd")
    assert err_of(iam.get_role_policy, RoleName=name, PolicyName="odd") == (404, "NoSuchEntity")


def test_inline_policy_malformed(iam):
    name = new_role(iam, TRUST_EC2)
    for doc in ('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Resource":"*"}]}',  # no Action
                '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*","Principal":"*"}]}',
                "[]"):
        assert err_of(iam.put_role_policy, RoleName=name, PolicyName="p", PolicyDocument=doc) == (400, "MalformedPolicyDocument")


def test_managed_policy_round_trip(server, iam):
    name = unique("managed")
    p = iam.create_policy(PolicyName=name, PolicyDocument=json.dumps(ODD_DOC), Description="d")["Policy"]
    assert p["Arn"] == f"arn:aws:iam::{ACCOUNT}:policy/{name}" and p["DefaultVersionId"] == "v1"
    v1 = iam.get_policy_version(PolicyArn=p["Arn"], VersionId="v1")["PolicyVersion"]
    assert v1["Document"] == ODD_DOC and v1["IsDefaultVersion"] is True
    doc2 = json.loads(allow("sqs:SendMessage", "arn:aws:sqs:us-east-1:111122223333:q"))
    v2 = iam.create_policy_version(PolicyArn=p["Arn"], PolicyDocument=json.dumps(doc2), SetAsDefault=True)["PolicyVersion"]
    assert v2["VersionId"] == "v2"
    assert iam.get_policy(PolicyArn=p["Arn"])["Policy"]["DefaultVersionId"] == "v2"
    cli = server.aws("iam", "get-policy-version", "--policy-arn", p["Arn"], "--version-id", "v2")["PolicyVersion"]
    assert cli["Document"] == doc2
    assert p["Arn"] in [x["Arn"] for x in iam.list_policies(Scope="Local")["Policies"]]
    role = new_role(iam, TRUST_EC2)
    iam.attach_role_policy(RoleName=role, PolicyArn=p["Arn"])
    assert iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"] == [{"PolicyName": name, "PolicyArn": p["Arn"]}]
    assert err_of(iam.delete_policy, PolicyArn=p["Arn"]) == (409, "DeleteConflict")
    iam.detach_role_policy(RoleName=role, PolicyArn=p["Arn"])
    iam.delete_policy(PolicyArn=p["Arn"])
    assert err_of(iam.get_policy, PolicyArn=p["Arn"]) == (404, "NoSuchEntity")


def test_managed_policy_errors(iam):
    name = unique("mp")
    iam.create_policy(PolicyName=name, PolicyDocument=allow("s3:GetObject"))
    assert err_of(iam.create_policy, PolicyName=name, PolicyDocument=allow("s3:GetObject")) == (409, "EntityAlreadyExists")
    assert err_of(iam.create_policy, PolicyName=unique("mp"), PolicyDocument='{"Statement":[{"Effect":"Allow"}]}') == (
        400, "MalformedPolicyDocument")
    missing = f"arn:aws:iam::{ACCOUNT}:policy/no-such-policy"
    assert err_of(iam.get_policy, PolicyArn=missing) == (404, "NoSuchEntity")
    assert err_of(iam.attach_role_policy, RoleName=new_role(iam, TRUST_EC2), PolicyArn=missing) == (404, "NoSuchEntity")
    arn = f"arn:aws:iam::{ACCOUNT}:policy/{name}"
    assert err_of(iam.get_policy_version, PolicyArn=arn, VersionId="v9") == (404, "NoSuchEntity")


# ============================================================================ users and authorization


def test_users_and_access_keys(server, iam):
    name = unique("user")
    u = iam.create_user(UserName=name, Path="/dev/")["User"]
    assert u["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/dev/{name}" and re.fullmatch(r"AIDA[A-Z0-9]{17}", u["UserId"])
    assert iam.get_user(UserName=name)["User"]["UserId"] == u["UserId"]
    assert err_of(iam.create_user, UserName=name.upper()) == (409, "EntityAlreadyExists")
    k = iam.create_access_key(UserName=name)["AccessKey"]
    assert re.fullmatch(r"AKIA[A-Z0-9]{16}", k["AccessKeyId"]) and len(k["SecretAccessKey"]) == 40 and k["Status"] == "Active"
    listed = iam.list_access_keys(UserName=name)["AccessKeyMetadata"]
    assert [x["AccessKeyId"] for x in listed] == [k["AccessKeyId"]] and "SecretAccessKey" not in listed[0]
    me = server.aws("sts", "get-caller-identity", env=server.creds_env(k))
    assert me["Arn"] == u["Arn"] and me["UserId"] == u["UserId"]
    assert server.client("sts").get_access_key_info(AccessKeyId=k["AccessKeyId"])["Account"] == ACCOUNT
    # a user with keys cannot be deleted (DeleteConflict), and not at all once it is gone
    assert err_of(iam.delete_user, UserName=name) == (409, "DeleteConflict")
    iam.delete_access_key(UserName=name, AccessKeyId=k["AccessKeyId"])
    iam.delete_user(UserName=name)
    assert err_of(iam.get_user, UserName=name) == (404, "NoSuchEntity")
    assert err_of(iam.create_access_key, UserName=name) == (404, "NoSuchEntity")


def test_user_authorization_allow_then_deny(server, iam):
    name, k = new_user(iam)
    env = server.creds_env(k)
    assert cli_err(server, "iam", "list-roles", env=env) == "AccessDenied"
    iam.put_user_policy(UserName=name, PolicyName="allow-list", PolicyDocument=allow("iam:ListRoles"))
    assert "Roles" in server.aws("iam", "list-roles", env=env)
    # the allow does not extend to other actions
    assert err_of(server.client("iam", k).list_users) == (403, "AccessDenied")
    iam.put_user_policy(UserName=name, PolicyName="deny-list", PolicyDocument=allow("iam:List*", effect="Deny"))
    assert cli_err(server, "iam", "list-roles", env=env) == "AccessDenied"
    iam.delete_user_policy(UserName=name, PolicyName="deny-list")
    assert "Roles" in server.client("iam", k).list_roles()


def test_user_authorization_by_resource(server, iam):
    allowed = new_role(iam, TRUST_EC2)
    other = new_role(iam, TRUST_EC2)
    parn = iam.create_policy(PolicyName=unique("get-one"), PolicyDocument=allow("iam:GetRole", role_arn(allowed)))["Policy"]["Arn"]
    name, k = new_user(iam)
    iam.attach_user_policy(UserName=name, PolicyArn=parn)
    assert iam.list_attached_user_policies(UserName=name)["AttachedPolicies"][0]["PolicyArn"] == parn
    c = server.client("iam", k)
    assert c.get_role(RoleName=allowed)["Role"]["RoleName"] == allowed
    assert err_of(c.get_role, RoleName=other) == (403, "AccessDenied")
    assert err_of(c.create_role, RoleName=unique("x"), AssumeRolePolicyDocument=TRUST_EC2) == (403, "AccessDenied")
    iam.detach_user_policy(UserName=name, PolicyArn=parn)
    assert err_of(c.get_role, RoleName=allowed) == (403, "AccessDenied")


def test_user_cannot_escalate_via_own_policy(server, iam):
    name, k = new_user(iam, policy=allow("iam:GetUser"))
    assert err_of(server.client("iam", k).put_user_policy, UserName=name, PolicyName="admin",
                  PolicyDocument=allow("*")) == (403, "AccessDenied")


# ================================================================================ AssumeRole


def test_user_assumes_role_named_in_trust(server, iam):
    name, k = new_user(iam)
    role = new_role(iam, principal_trust({"AWS": user_arn(name)}))
    out = server.aws("sts", "assume-role", "--role-arn", role_arn(role), "--role-session-name", "cli-s", env=server.creds_env(k))
    assert out["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/cli-s"
    me = server.aws("sts", "get-caller-identity", env=server.creds_env(out["Credentials"]))
    assert me["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/cli-s"


def test_user_not_in_trust_is_denied(server, iam):
    trusted, _ = new_user(iam)
    _, k = new_user(iam, policy=allow("sts:AssumeRole"))
    role = new_role(iam, principal_trust({"AWS": user_arn(trusted)}))
    assert err_of(assume, server, k, role_arn(role)) == (403, "AccessDenied")


def test_account_trust_needs_identity_policy(server, iam):
    role = new_role(iam, principal_trust({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}))
    name, k = new_user(iam)
    assert err_of(assume, server, k, role_arn(role)) == (403, "AccessDenied")
    iam.put_user_policy(UserName=name, PolicyName="assume", PolicyDocument=allow("sts:AssumeRole", role_arn(role)))
    assert assume(server, k, role_arn(role))["AssumedRoleUser"]["Arn"].endswith(f"/{role}/sess")


def test_root_cannot_assume_roles(server, iam):
    role = new_role(iam, principal_trust({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}))
    assert err_of(assume, server, server.root_keys(), role_arn(role)) == (403, "AccessDenied")
    assert cli_err(server, "sts", "assume-role", "--role-arn", role_arn(role), "--role-session-name", "root-try") == "AccessDenied"


def test_assume_missing_role_is_access_denied(server, iam):
    _, k = new_user(iam, policy=allow("sts:AssumeRole"))
    assert err_of(assume, server, k, role_arn("no-such-role")) == (403, "AccessDenied")


def test_role_chaining_duration(server, iam):
    name, k = new_user(iam)
    first = new_role(iam, principal_trust({"AWS": user_arn(name)}), MaxSessionDuration=43200)
    second = new_role(iam, principal_trust({"AWS": role_arn(first)}), MaxSessionDuration=43200)
    direct = assume(server, k, role_arn(first), DurationSeconds=7200)  # not chained: up to the role's maximum
    creds = direct["Credentials"]
    assert err_of(assume, server, creds, role_arn(second), DurationSeconds=7200) == (400, "ValidationError")
    chained = assume(server, creds, role_arn(second), "chained", DurationSeconds=3600)
    assert chained["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/{second}/chained"
    me = server.client("sts", chained["Credentials"]).get_caller_identity()
    assert me["Arn"] == chained["AssumedRoleUser"]["Arn"]


def test_duration_above_role_maximum(server, iam):
    name, k = new_user(iam)
    role = new_role(iam, principal_trust({"AWS": user_arn(name)}))
    assert err_of(assume, server, k, role_arn(role), DurationSeconds=3601) == (400, "ValidationError")
    assert err_of(assume, server, k, role_arn(role), DurationSeconds=899) == (400, "ValidationError")


def test_external_id(server, iam):
    name, k = new_user(iam)
    role = new_role(iam, principal_trust({"AWS": user_arn(name)}, condition={"StringEquals": {"sts:ExternalId": "ext-123"}}))
    assert err_of(assume, server, k, role_arn(role)) == (403, "AccessDenied")
    assert err_of(assume, server, k, role_arn(role), ExternalId="ext-124") == (403, "AccessDenied")
    assert err_of(assume, server, k, role_arn(role), ExternalId="bad external id") == (400, "ValidationError")
    assert assume(server, k, role_arn(role), ExternalId="ext-123")["AssumedRoleUser"]["Arn"].endswith("/sess")


def test_session_tags_and_principal_tag_conditions(server, iam):
    name, k = new_user(iam)
    trust = principal_trust({"AWS": user_arn(name)}, ["sts:AssumeRole", "sts:TagSession"])
    role = new_role(iam, trust)
    iam.put_role_policy(RoleName=role, PolicyName="blue-only", PolicyDocument=allow(
        "iam:ListRoles", condition={"StringEquals": {"aws:PrincipalTag/team": "blue"}}))
    blue = assume(server, k, role_arn(role), "blue", Tags=[{"Key": "team", "Value": "blue"}])
    assert "Roles" in server.client("iam", blue["Credentials"]).list_roles()
    red = assume(server, k, role_arn(role), "red", Tags=[{"Key": "team", "Value": "red"}])
    assert err_of(server.client("iam", red["Credentials"]).list_roles) == (403, "AccessDenied")
    untagged = assume(server, k, role_arn(role), "none")
    assert err_of(server.client("iam", untagged["Credentials"]).list_roles) == (403, "AccessDenied")


def test_session_tags_need_tag_session_in_trust(server, iam):
    name, k = new_user(iam)
    role = new_role(iam, principal_trust({"AWS": user_arn(name)}))
    assert err_of(assume, server, k, role_arn(role), Tags=[{"Key": "team", "Value": "blue"}]) == (403, "AccessDenied")


def test_transitive_tags_survive_chaining(server, iam):
    name, k = new_user(iam)
    first = new_role(iam, principal_trust({"AWS": user_arn(name)}, ["sts:AssumeRole", "sts:TagSession"]))
    second = new_role(iam, principal_trust({"AWS": role_arn(first)}, ["sts:AssumeRole", "sts:TagSession"]))
    iam.put_role_policy(RoleName=second, PolicyName="blue-only", PolicyDocument=allow(
        "iam:ListRoles", condition={"StringEquals": {"aws:PrincipalTag/team": "blue"}}))
    s1 = assume(server, k, role_arn(first), Tags=[{"Key": "team", "Value": "blue"}], TransitiveTagKeys=["team"])
    s2 = assume(server, s1["Credentials"], role_arn(second))
    assert "Roles" in server.client("iam", s2["Credentials"]).list_roles()
    # a transitive tag cannot be overridden down the chain
    assert err_of(assume, server, s1["Credentials"], role_arn(second), Tags=[{"Key": "team", "Value": "red"}])[0] == 400


def test_source_identity(server, iam):
    name, k = new_user(iam)
    plain = new_role(iam, principal_trust({"AWS": user_arn(name)}))
    assert err_of(assume, server, k, role_arn(plain), SourceIdentity="alice") == (403, "AccessDenied")
    role = new_role(iam, principal_trust({"AWS": user_arn(name)}, ["sts:AssumeRole", "sts:SetSourceIdentity"]))
    out = assume(server, k, role_arn(role), SourceIdentity="alice")
    assert out["SourceIdentity"] == "alice"
    assert err_of(assume, server, k, role_arn(role), SourceIdentity="aws:alice") == (400, "ValidationError")


def test_cross_account_assume_role(server, iam):
    other_iam = server.client("iam", server.root_keys(f"podiam-{OTHER}"))
    name = unique("xacct")
    other_iam.create_user(UserName=name)
    k = other_iam.create_access_key(UserName=name)["AccessKey"]
    assert server.client("sts", k).get_caller_identity()["Account"] == OTHER
    role = new_role(iam, principal_trust({"AWS": f"arn:aws:iam::{OTHER}:root"}))
    # trust alone is not enough across accounts: the caller's account must allow it too
    assert err_of(assume, server, k, role_arn(role)) == (403, "AccessDenied")
    other_iam.put_user_policy(UserName=name, PolicyName="assume", PolicyDocument=allow("sts:AssumeRole", role_arn(role)))
    out = assume(server, k, role_arn(role), "xacct")
    assert out["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/xacct"
    # and identity policy alone is not enough: a role whose trust does not name the account
    closed = new_role(iam, TRUST_EC2)
    other_iam.put_user_policy(UserName=name, PolicyName="assume-all", PolicyDocument=allow("sts:AssumeRole"))
    assert err_of(assume, server, k, role_arn(closed)) == (403, "AccessDenied")
    # root of one account cannot read the other account's roles
    assert err_of(other_iam.get_role, RoleName=role) == (404, "NoSuchEntity")


def test_session_policy_intersects_role_permissions(server, iam):
    name, k = new_user(iam)
    role = new_role(iam, principal_trust({"AWS": user_arn(name)}))
    iam.put_role_policy(RoleName=role, PolicyName="p", PolicyDocument=allow(["iam:ListRoles", "iam:ListUsers"]))
    full = server.client("iam", assume(server, k, role_arn(role))["Credentials"])
    assert "Users" in full.list_users() and "Roles" in full.list_roles()
    out = assume(server, k, role_arn(role), "scoped", Policy=allow("iam:ListRoles"))
    assert isinstance(out.get("PackedPolicySize"), int)
    scoped = server.client("iam", out["Credentials"])
    assert "Roles" in scoped.list_roles()
    assert err_of(scoped.list_users) == (403, "AccessDenied")
    # a session policy cannot grant what the role does not have
    wide = server.client("iam", assume(server, k, role_arn(role), "wide", Policy=allow("iam:*"))["Credentials"])
    assert err_of(wide.list_policies) == (403, "AccessDenied")
    assert err_of(assume, server, k, role_arn(role), Policy="{not json") == (400, "MalformedPolicyDocument")


def test_role_with_path(server, iam):
    name, k = new_user(iam)
    role = unique("pathy")
    iam.create_role(RoleName=role, Path="/team/x/", AssumeRolePolicyDocument=principal_trust({"AWS": user_arn(name)}))
    out = assume(server, k, f"arn:aws:iam::{ACCOUNT}:role/team/x/{role}", "pp")
    # the assumed-role ARN carries no path
    assert out["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/pp"
    assert err_of(assume, server, k, role_arn(role)) == (403, "AccessDenied")


def test_policy_variables_and_source_ip(server, iam):
    name, k = new_user(iam, policy=allow("iam:GetUser", f"arn:aws:iam::{ACCOUNT}:user/${{aws:username}}"))
    other, _ = new_user(iam)
    c = server.client("iam", k)
    assert c.get_user(UserName=name)["User"]["UserName"] == name
    assert err_of(c.get_user, UserName=other) == (403, "AccessDenied")
    iam.put_user_policy(UserName=name, PolicyName="ip", PolicyDocument=allow(
        "iam:ListUsers", condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}))
    assert err_of(c.list_users) == (403, "AccessDenied")
    iam.put_user_policy(UserName=name, PolicyName="ip", PolicyDocument=allow(
        "iam:ListUsers", condition={"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}))
    assert "Users" in c.list_users()


def test_trust_deny_wins(server, iam):
    name, k = new_user(iam)
    doc = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": user_arn(name)}, "Action": "sts:AssumeRole"},
        {"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole",
         "Condition": {"StringEquals": {"sts:RoleSessionName": "forbidden"}}}]}
    role = new_role(iam, json.dumps(doc))
    assert assume(server, k, role_arn(role), "allowed")["AssumedRoleUser"]["Arn"].endswith("/allowed")
    assert err_of(assume, server, k, role_arn(role), "forbidden") == (403, "AccessDenied")


def test_list_roles_pagination(iam):
    prefix = f"/{unique('pg')}/"
    made = sorted(new_role(iam, TRUST_EC2, Path=prefix) for _ in range(5))
    seen, marker, pages = [], None, 0
    while True:
        kw = {"Marker": marker} if marker else {}
        page = iam.list_roles(PathPrefix=prefix, MaxItems=2, **kw)
        pages += 1
        seen += [r["RoleName"] for r in page["Roles"]]
        if not page["IsTruncated"]:
            break
        marker = page["Marker"]
    assert sorted(seen) == made and pages == 3
    assert err_of(iam.list_roles, MaxItems=0) == (400, "ValidationError")
    assert err_of(iam.list_roles, MaxItems=1001) == (400, "ValidationError")


def test_description_and_tags_round_trip_special_characters(iam):
    desc = "a <b> & \"c\" 'd' \u00e9"
    name = new_role(iam, TRUST_EC2, Description=desc, Tags=[{"Key": "k\u00e9y", "Value": "v a/l=u+e@"}])
    r = iam.get_role(RoleName=name)["Role"]
    assert r["Description"] == desc
    assert iam.list_role_tags(RoleName=name)["Tags"] == [{"Key": "k\u00e9y", "Value": "v a/l=u+e@"}]
    assert err_of(iam.tag_role, RoleName=name, Tags=[{"Key": "bad!", "Value": "x"}]) == (400, "ValidationError")
    # More than the model's 50 tags in one request is a constraint violation; more than 50 in all,
    # added over several requests, is the account limit.
    assert err_of(iam.tag_role, RoleName=name, Tags=[{"Key": f"k{i}", "Value": "x"} for i in range(51)]) == (
        400, "ValidationError")
    iam.tag_role(RoleName=name, Tags=[{"Key": f"k{i}", "Value": "x"} for i in range(49)])
    assert err_of(iam.tag_role, RoleName=name, Tags=[{"Key": "one-more", "Value": "x"}]) == (409, "LimitExceeded")


def test_reserved_tag_prefix(iam):
    name = new_role(iam, TRUST_EC2)
    status, _ = err_of(iam.tag_role, RoleName=name, Tags=[{"Key": "aws:team", "Value": "x"}])
    assert status == 400


def test_concurrent_create_of_one_name(server, iam):
    from concurrent.futures import ThreadPoolExecutor

    base = unique("Race")
    variants = [base.upper(), base.lower(), base, base.swapcase()] * 3

    def create(n: str) -> int:
        c = server.client("iam")
        try:
            return c.create_role(RoleName=n, AssumeRolePolicyDocument=TRUST_EC2)["ResponseMetadata"]["HTTPStatusCode"]
        except botocore.exceptions.ClientError as e:
            assert client_error(e) == (409, "EntityAlreadyExists"), e
            return 409

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(create, variants))
    assert results.count(200) == 1 and results.count(409) == len(variants) - 1, results
    roles = [r for page in iam.get_paginator("list_roles").paginate() for r in page["Roles"]]
    assert len([r for r in roles if r["RoleName"].lower() == base.lower()]) == 1


def test_revoke_older_sessions(server, iam):
    import time

    name, k = new_user(iam)
    role = new_role(iam, principal_trust({"AWS": user_arn(name)}))
    iam.put_role_policy(RoleName=role, PolicyName="p", PolicyDocument=allow("IAM:listROLES"))  # actions match case-insensitively
    old = server.client("iam", assume(server, k, role_arn(role), "old")["Credentials"])
    assert "Roles" in old.list_roles()
    time.sleep(1.1)  # token issue times have one-second resolution
    p = server.podiam("role", "revoke-sessions", "--role", role)
    assert p.returncode == 0, p.stderr
    assert "AWSRevokeOlderSessions" in iam.list_role_policies(RoleName=role)["PolicyNames"]
    assert err_of(old.list_roles) == (403, "AccessDenied")
    time.sleep(1.1)
    new = server.client("iam", assume(server, k, role_arn(role), "new")["Credentials"])
    assert "Roles" in new.list_roles()


def test_null_condition_requires_external_id(server, iam):
    name, k = new_user(iam)
    role = new_role(iam, principal_trust({"AWS": user_arn(name)}, condition={"Null": {"sts:ExternalId": "false"}}))
    assert err_of(assume, server, k, role_arn(role)) == (403, "AccessDenied")
    assert assume(server, k, role_arn(role), ExternalId="anything")["AssumedRoleUser"]["Arn"].endswith("/sess")


def test_policy_size_and_version_limits(iam):
    role = new_role(iam, TRUST_EC2)
    huge = allow("s3:GetObject", "arn:aws:s3:::b/" + "x" * 10300)
    assert err_of(iam.put_role_policy, RoleName=role, PolicyName="big", PolicyDocument=huge) == (409, "LimitExceeded")
    user, _ = new_user(iam)
    assert err_of(iam.put_user_policy, UserName=user, PolicyName="big",
                  PolicyDocument=allow("s3:GetObject", "arn:aws:s3:::b/" + "x" * 2100)) == (409, "LimitExceeded")
    assert err_of(iam.create_policy, PolicyName=unique("big"),
                  PolicyDocument=allow("s3:GetObject", "arn:aws:s3:::b/" + "x" * 6200)) == (409, "LimitExceeded")
    parn = iam.create_policy(PolicyName=unique("versions"), PolicyDocument=allow("s3:GetObject"))["Policy"]["Arn"]
    for i in range(2, 6):
        assert iam.create_policy_version(PolicyArn=parn, PolicyDocument=allow("s3:GetObject"))["PolicyVersion"]["VersionId"] == f"v{i}"
    assert err_of(iam.create_policy_version, PolicyArn=parn, PolicyDocument=allow("s3:GetObject")) == (409, "LimitExceeded")


def test_trust_policy_must_name_existing_users_and_roles(iam):
    """IAM refuses a trust policy naming a user or role that does not exist (400
    MalformedPolicyDocument, "Invalid principal in policy"), on create and on update."""
    ghost = f"arn:aws:iam::{ACCOUNT}:user/does-not-exist"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iam.create_role(RoleName=unique("ghost"), AssumeRolePolicyDocument=principal_trust({"AWS": ghost}))
    assert client_error(e.value) == (400, "MalformedPolicyDocument")
    assert e.value.response["Error"]["Message"] == f'Invalid principal in policy: "AWS":"{ghost}"'
    assert err_of(iam.create_role, RoleName=unique("ghost"),
                  AssumeRolePolicyDocument=principal_trust({"AWS": [f"arn:aws:iam::{ACCOUNT}:root",
                                                                    f"arn:aws:iam::{ACCOUNT}:role/no-such-role"]})) == \
        (400, "MalformedPolicyDocument")
    # Existing entities are accepted, with their path; a wrong path is not the same entity.
    user = unique("trusted")
    iam.create_user(UserName=user, Path="/team/")
    ok = iam.create_role(RoleName=unique("trusting"),
                         AssumeRolePolicyDocument=principal_trust({"AWS": f"arn:aws:iam::{ACCOUNT}:user/team/{user}"}))["Role"]
    assert err_of(iam.create_role, RoleName=unique("ghost"),
                  AssumeRolePolicyDocument=principal_trust({"AWS": f"arn:aws:iam::{ACCOUNT}:user/{user}"})) == \
        (400, "MalformedPolicyDocument")
    # Roles trusting roles; the account root, "*" and other accounts' entities (which podiam
    # cannot see) are accepted.
    iam.create_role(RoleName=unique("chained"),
                    AssumeRolePolicyDocument=principal_trust({"AWS": [ok["Arn"], f"arn:aws:iam::{ACCOUNT}:root",
                                                                      "arn:aws:iam::210987654321:user/elsewhere"]}))
    iam.create_role(RoleName=unique("anyone"), AssumeRolePolicyDocument=principal_trust({"AWS": "*"}))
    # UpdateAssumeRolePolicy checks too, and leaves the policy unchanged when it refuses.
    before = iam.get_role(RoleName=ok["RoleName"])["Role"]["AssumeRolePolicyDocument"]
    assert err_of(iam.update_assume_role_policy, RoleName=ok["RoleName"],
                  PolicyDocument=principal_trust({"AWS": ghost})) == (400, "MalformedPolicyDocument")
    assert iam.get_role(RoleName=ok["RoleName"])["Role"]["AssumeRolePolicyDocument"] == before
