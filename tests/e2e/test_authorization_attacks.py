"""Authorization that cannot be talked around: each way an outside review got a credential or a
permission that policy denies, replayed with boto3 and the AWS CLI against a running server, and
its variants (other actions, other entity types, other condition keys). Every attack must be
refused with the AWS error code; the control case beside it must work."""

from __future__ import annotations

import json
import uuid

import pytest
from botocore.exceptions import ClientError

from podiam_e2e import ACCOUNT, allow, client_error, principal_trust

OTHER = "444455556666"
PODIAM_ARGS = ["--additional-account", OTHER]
PI_TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"}, "Action": ["sts:AssumeRole", "sts:TagSession"]}]})


def statements(*stmts: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(stmts)})


ALLOW_ALL = {"Effect": "Allow", "Action": "*", "Resource": "*"}


def principal(server, policy: str, name: str | None = None) -> dict[str, str]:
    """A user with `policy` inline, and its keys."""
    iam = server.client("iam")
    name = name or f"u-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=policy)
    k = iam.create_access_key(UserName=name)["AccessKey"]
    return {"AccessKeyId": k["AccessKeyId"], "SecretAccessKey": k["SecretAccessKey"], "name": name}


def denied(fn, *args, code: str = "AccessDenied", **kw) -> str:
    with pytest.raises(ClientError) as e:
        fn(*args, **kw)
    status, got = client_error(e.value)
    assert got == code, f"{got} ({status}): {e.value}"
    return str(e.value)


# ---- 1. the ARN authorized is the stored entity's, not the one the request spells


def test_a_deny_on_a_user_holds_whatever_case_the_request_uses(server):
    iam = server.client("iam")
    iam.create_user(UserName="Admin")
    attacker = principal(server, statements(ALLOW_ALL, {"Effect": "Deny", "Action": "iam:*",
                                                       "Resource": f"arn:aws:iam::{ACCOUNT}:user/Admin"}))
    a = server.client("iam", attacker)
    for spelled in ("admin", "ADMIN", "aDmIn"):
        msg = denied(a.get_user, UserName=spelled)
        assert f"user/Admin" in msg and "with an explicit deny in an identity-based policy" in msg, msg
        denied(a.create_access_key, UserName=spelled)
        denied(a.put_user_policy, UserName=spelled, PolicyName="x", PolicyDocument=allow("*"))
        denied(a.attach_user_policy, UserName=spelled, PolicyArn=f"arn:aws:iam::{ACCOUNT}:policy/none")
    # The control: another user is reachable.
    iam.create_user(UserName="Bystander")
    assert a.get_user(UserName="bystander")["User"]["UserName"] == "Bystander"


def test_a_deny_on_a_path_holds_when_the_request_names_only_the_entity(server):
    iam = server.client("iam")
    iam.create_user(UserName="boss", Path="/admins/")
    iam.create_role(RoleName="Vault", Path="/admins/", AssumeRolePolicyDocument=PI_TRUST)
    attacker = principal(server, statements(ALLOW_ALL, {"Effect": "Deny", "Action": "iam:*", "Resource": [
        f"arn:aws:iam::{ACCOUNT}:user/admins/*", f"arn:aws:iam::{ACCOUNT}:role/admins/*"]}))
    a = server.client("iam", attacker)
    denied(a.get_user, UserName="boss")
    denied(a.delete_user, UserName="boss")
    denied(a.create_access_key, UserName="boss")
    denied(a.get_role, RoleName="vault")
    denied(a.update_assume_role_policy, RoleName="Vault", PolicyDocument=PI_TRUST)
    denied(a.put_role_policy, RoleName="VAULT", PolicyName="x", PolicyDocument=allow("*"))
    assert iam.get_user(UserName="boss")["User"]["Path"] == "/admins/"


def test_pass_role_is_authorized_on_the_stored_role_and_the_pod_gets_it(server):
    eks, iam = server.client("eks"), server.client("iam")
    eks.create_cluster(name="pr", roleArn=f"arn:aws:iam::{ACCOUNT}:role/eks", resourcesVpcConfig={"subnetIds": ["s"]})
    iam.create_role(RoleName="PodAdmin", AssumeRolePolicyDocument=PI_TRUST)
    iam.create_role(RoleName="PodUser", AssumeRolePolicyDocument=PI_TRUST)
    attacker = principal(server, statements(ALLOW_ALL, {"Effect": "Deny", "Action": "iam:PassRole",
                                                       "Resource": f"arn:aws:iam::{ACCOUNT}:role/PodAdmin"}))
    a = server.client("eks", attacker)
    for spelled in ("podadmin", "PODADMIN", "PodAdmin"):
        msg = denied(a.create_pod_identity_association, clusterName="pr", namespace="default", serviceAccount="sa",
                     roleArn=f"arn:aws:iam::{ACCOUNT}:role/{spelled}", code="AccessDeniedException")
        assert "iam:PassRole" in msg and "role/PodAdmin" in msg, msg
    # Another partition's spelling names nothing.
    denied(a.create_pod_identity_association, clusterName="pr", namespace="default", serviceAccount="sa",
           roleArn=f"arn:aws-cn:iam::{ACCOUNT}:role/PodAdmin", code="InvalidParameterException")
    # The control: the allowed role, spelled in another case, is stored canonically.
    assoc = a.create_pod_identity_association(clusterName="pr", namespace="default", serviceAccount="sa",
                                              roleArn=f"arn:aws:iam::{ACCOUNT}:role/poduser")["association"]
    assert assoc["roleArn"] == f"arn:aws:iam::{ACCOUNT}:role/PodUser"
    # Updating to the denied role is refused the same way.
    denied(a.update_pod_identity_association, clusterName="pr", associationId=assoc["associationId"],
           roleArn=f"arn:aws:iam::{ACCOUNT}:role/podadmin", code="AccessDeniedException")
    # CreateCluster passes its role too.
    denied(a.create_cluster, name="pr2", roleArn=f"arn:aws:iam::{ACCOUNT}:role/podadmin",
           resourcesVpcConfig={"subnetIds": ["s"]}, code="AccessDeniedException")


def test_simulate_principal_policy_is_authorized_on_the_stored_principal(server):
    iam = server.client("iam")
    iam.create_role(RoleName="Secret", AssumeRolePolicyDocument=PI_TRUST)
    attacker = principal(server, statements(ALLOW_ALL, {"Effect": "Deny", "Action": "iam:SimulatePrincipalPolicy",
                                                       "Resource": f"arn:aws:iam::{ACCOUNT}:role/Secret"}))
    a = server.client("iam", attacker)
    denied(a.simulate_principal_policy, PolicySourceArn=f"arn:aws:iam::{ACCOUNT}:role/secret", ActionNames=["s3:GetObject"])
    denied(a.simulate_principal_policy, PolicySourceArn=f"arn:aws:iam::{ACCOUNT}:role/SECRET", ActionNames=["s3:GetObject"])


# ---- 3. condition keys AWS sets


def test_resource_tags_reach_deny_statements(server):
    iam = server.client("iam")
    user = f"u-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    user_arn = f"arn:aws:iam::{ACCOUNT}:user/{user}"
    iam.create_role(RoleName="Prod", AssumeRolePolicyDocument=principal_trust({"AWS": user_arn}),
                    Tags=[{"Key": "env", "Value": "prod"}])
    iam.create_role(RoleName="Dev", AssumeRolePolicyDocument=principal_trust({"AWS": user_arn}),
                    Tags=[{"Key": "env", "Value": "dev"}])
    iam.put_user_policy(UserName=user, PolicyName="p", PolicyDocument=statements(
        ALLOW_ALL, {"Effect": "Deny", "Action": ["sts:AssumeRole", "iam:*"], "Resource": "*",
                    "Condition": {"StringEquals": {"aws:ResourceTag/env": "prod"}}}))
    k = iam.create_access_key(UserName=user)["AccessKey"]
    sts = server.client("sts", {"AccessKeyId": k["AccessKeyId"], "SecretAccessKey": k["SecretAccessKey"]})
    denied(sts.assume_role, RoleArn=f"arn:aws:iam::{ACCOUNT}:role/Prod", RoleSessionName="s1")
    a_iam = server.client("iam", {"AccessKeyId": k["AccessKeyId"], "SecretAccessKey": k["SecretAccessKey"]})
    denied(a_iam.get_role, RoleName="prod")
    denied(a_iam.untag_role, RoleName="Prod", TagKeys=["env"])
    assert sts.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/Dev", RoleSessionName="s1")["Credentials"]


def test_request_tags_and_tag_keys_reach_deny_statements(server):
    iam = server.client("iam")
    iam.create_role(RoleName="Taggable", AssumeRolePolicyDocument=PI_TRUST)
    a = server.client("iam", principal(server, statements(
        ALLOW_ALL,
        {"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"ForAnyValue:StringEquals": {"aws:TagKeys": ["level"]}}},
        {"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"StringEquals": {"aws:RequestTag/team": "admins"}}})))
    denied(a.tag_role, RoleName="Taggable", Tags=[{"Key": "level", "Value": "9"}])
    denied(a.tag_role, RoleName="Taggable", Tags=[{"Key": "team", "Value": "admins"}])
    denied(a.create_role, RoleName="T2", AssumeRolePolicyDocument=PI_TRUST, Tags=[{"Key": "level", "Value": "1"}])
    denied(a.create_user, UserName="T3", Tags=[{"Key": "team", "Value": "admins"}])
    denied(a.untag_role, RoleName="Taggable", TagKeys=["level"])
    eks = server.client("eks", principal(server, statements(ALLOW_ALL, {
        "Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"ForAnyValue:StringEquals": {"aws:TagKeys": ["level"]}}})))
    denied(eks.create_cluster, name="tk", roleArn=f"arn:aws:iam::{ACCOUNT}:role/eks",
           resourcesVpcConfig={"subnetIds": ["s"]}, tags={"level": "1"}, code="AccessDeniedException")
    a.tag_role(RoleName="Taggable", Tags=[{"Key": "team", "Value": "dev"}])
    assert {"Key": "team", "Value": "dev"} in iam.list_role_tags(RoleName="Taggable")["Tags"]


def test_policy_arn_and_permissions_boundary_keys(server):
    iam = server.client("iam")
    admin = iam.create_policy(PolicyName="Admin", PolicyDocument=allow("*"))["Policy"]["Arn"]
    readonly = iam.create_policy(PolicyName="ReadOnly", PolicyDocument=allow("iam:Get*"))["Policy"]["Arn"]
    iam.create_role(RoleName="Attachable", AssumeRolePolicyDocument=PI_TRUST)
    a = server.client("iam", principal(server, statements(ALLOW_ALL, {
        "Effect": "Deny", "Action": ["iam:AttachRolePolicy", "iam:AttachUserPolicy"], "Resource": "*",
        "Condition": {"ArnEquals": {"iam:PolicyARN": admin}}})))
    denied(a.attach_role_policy, RoleName="attachable", PolicyArn=admin)
    a.attach_role_policy(RoleName="attachable", PolicyArn=readonly)
    # Boundary delegation: creating roles only with the boundary set.
    d = server.client("iam", principal(server, statements(ALLOW_ALL, {
        "Effect": "Deny", "Action": "iam:CreateRole", "Resource": "*",
        "Condition": {"StringNotEquals": {"iam:PermissionsBoundary": readonly}}})))
    denied(d.create_role, RoleName="NoBoundary", AssumeRolePolicyDocument=PI_TRUST)
    denied(d.create_role, RoleName="WrongBoundary", AssumeRolePolicyDocument=PI_TRUST, PermissionsBoundary=admin)
    assert d.create_role(RoleName="Bounded", AssumeRolePolicyDocument=PI_TRUST, PermissionsBoundary=readonly)["Role"]


# ---- 4. sessions die with their role; session policies always apply


def _role_session(server, name: str, session_policy: str | None = None) -> dict[str, str]:
    iam = server.client("iam")
    user = principal(server, statements(ALLOW_ALL))
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=principal_trust(
        {"AWS": f"arn:aws:iam::{ACCOUNT}:user/{user['name']}"}))
    iam.put_role_policy(RoleName=name, PolicyName="all", PolicyDocument=statements(ALLOW_ALL))
    kw = {"Policy": session_policy} if session_policy else {}
    c = server.client("sts", user).assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/{name}", RoleSessionName="s1", **kw)
    return {k: c["Credentials"][k] for k in ("AccessKeyId", "SecretAccessKey", "SessionToken")}


def test_a_deleted_role_s_sessions_get_nothing(server):
    iam = server.client("iam")
    creds = _role_session(server, "Doomed", session_policy=allow("sts:GetCallerIdentity"))
    iam.create_role(RoleName="Trusting", AssumeRolePolicyDocument=principal_trust(
        {"AWS": f"arn:aws:iam::{ACCOUNT}:role/Doomed"}))
    sess_sts = server.client("sts", creds)
    assert sess_sts.get_caller_identity()["Arn"].endswith(":assumed-role/Doomed/s1")
    denied(server.client("iam", creds).list_roles)  # the session policy restricts it
    iam.delete_role_policy(RoleName="Doomed", PolicyName="all")
    iam.delete_role(RoleName="Doomed")
    for call in (sess_sts.get_caller_identity, server.client("iam", creds).list_roles):
        denied(call, code="InvalidClientTokenId")
    denied(sess_sts.assume_role, RoleArn=f"arn:aws:iam::{ACCOUNT}:role/Trusting", RoleSessionName="x1",
           code="InvalidClientTokenId")
    # Re-created under the same name: a new role, the old session still gets nothing.
    iam.create_role(RoleName="Doomed", AssumeRolePolicyDocument=PI_TRUST)
    iam.put_role_policy(RoleName="Doomed", PolicyName="all", PolicyDocument=statements(ALLOW_ALL))
    denied(sess_sts.get_caller_identity, code="InvalidClientTokenId")
    denied(server.client("iam", creds).list_roles, code="InvalidClientTokenId")


def test_a_session_secret_works_for_its_own_token_only(server):
    a = _role_session(server, "Twice")
    b = _role_session(server, "Twice2")
    mixed = {"AccessKeyId": a["AccessKeyId"], "SecretAccessKey": b["SecretAccessKey"], "SessionToken": a["SessionToken"]}
    denied(server.client("sts", mixed).get_caller_identity, code="SignatureDoesNotMatch")
    assert server.client("sts", a).get_caller_identity()["Arn"].endswith("/Twice/s1")


def test_session_policy_arns_must_be_in_the_role_account(server):
    other = server.client("iam", server.root_keys(f"podiam-{OTHER}"))
    foreign = other.create_policy(PolicyName="Foreign", PolicyDocument=allow("*"))["Policy"]["Arn"]
    user = principal(server, statements(ALLOW_ALL))
    server.client("iam").create_role(RoleName="PolArns", AssumeRolePolicyDocument=principal_trust(
        {"AWS": f"arn:aws:iam::{ACCOUNT}:user/{user['name']}"}))
    sts = server.client("sts", user)
    for arn in (foreign, f"arn:aws:iam::{OTHER}:policy/DoesNotExist"):
        msg = denied(sts.assume_role, RoleArn=f"arn:aws:iam::{ACCOUNT}:role/PolArns", RoleSessionName="s1",
                     PolicyArns=[{"arn": arn}], code="InvalidParameterValue")
        assert "Foreign" not in msg or arn == foreign


# ---- 11, 12. one folding of tag keys


def test_duplicate_tag_keys_differing_in_case_are_refused(server):
    iam = server.client("iam")
    for tags in ([{"Key": "Team", "Value": "a"}, {"Key": "team", "Value": "b"}],
                 [{"Key": "\u212Aey", "Value": "a"}, {"Key": "key", "Value": "b"}]):
        denied(iam.create_role, RoleName=f"Dup{uuid.uuid4().hex[:6]}", AssumeRolePolicyDocument=PI_TRUST, Tags=tags,
               code="InvalidInput")
        denied(iam.create_user, UserName=f"Dup{uuid.uuid4().hex[:6]}", Tags=tags, code="InvalidInput")
    user = principal(server, statements(ALLOW_ALL))
    iam.create_role(RoleName="DupTags", AssumeRolePolicyDocument=principal_trust(
        {"AWS": f"arn:aws:iam::{ACCOUNT}:user/{user['name']}"}, ["sts:AssumeRole", "sts:TagSession"]))
    denied(server.client("sts", user).assume_role, RoleArn=f"arn:aws:iam::{ACCOUNT}:role/DupTags", RoleSessionName="s1",
           Tags=[{"Key": "Team", "Value": "a"}, {"Key": "team", "Value": "b"}], code="InvalidParameterValue")
    # Tagging with another case replaces the key rather than adding a second one.
    iam.tag_role(RoleName="DupTags", Tags=[{"Key": "Team", "Value": "a"}])
    iam.tag_role(RoleName="DupTags", Tags=[{"Key": "TEAM", "Value": "b"}])
    assert iam.list_role_tags(RoleName="DupTags")["Tags"] == [{"Key": "TEAM", "Value": "b"}]


def test_a_look_alike_key_cannot_override_a_pod_identity_session_tag(server):
    eks, iam = server.client("eks"), server.client("iam")
    eks.create_cluster(name="kelvin", roleArn=f"arn:aws:iam::{ACCOUNT}:role/eks", resourcesVpcConfig={"subnetIds": ["s"]})
    iam.create_role(RoleName="PiFirst", AssumeRolePolicyDocument=PI_TRUST)
    iam.put_role_policy(RoleName="PiFirst", PolicyName="p", PolicyDocument=statements(ALLOW_ALL))
    iam.create_role(RoleName="Abac", AssumeRolePolicyDocument=principal_trust(
        {"AWS": f"arn:aws:iam::{ACCOUNT}:role/PiFirst"}, ["sts:AssumeRole", "sts:TagSession"]))
    eks.create_pod_identity_association(clusterName="kelvin", namespace="team-a", serviceAccount="sa",
                                        roleArn=f"arn:aws:iam::{ACCOUNT}:role/PiFirst")
    token = server.token("kelvin", "team-a", "sa", audience=["pods.eks.amazonaws.com"], pod=("p", str(uuid.uuid4())))
    node = principal(server, allow("eks-auth:AssumeRoleForPodIdentity"))
    creds = server.client("eks-auth", node).assume_role_for_pod_identity(clusterName="kelvin", token=token)["credentials"]
    sess = {"AccessKeyId": creds["accessKeyId"], "SecretAccessKey": creds["secretAccessKey"], "SessionToken": creds["sessionToken"]}
    sts = server.client("sts", sess)
    for key in ("\u212Aubernetes-namespace", "KUBERNETES-NAMESPACE", "kubernetes-namespace"):
        denied(sts.assume_role, RoleArn=f"arn:aws:iam::{ACCOUNT}:role/Abac", RoleSessionName="s1",
               Tags=[{"Key": key, "Value": "team-b"}], code="InvalidParameterValue")
    assert sts.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/Abac", RoleSessionName="s1")["Credentials"]


# ---- 14. the partition


def test_other_partitions_name_nothing(server):
    iam = server.client("iam")
    iam.create_role(RoleName="Part", AssumeRolePolicyDocument=PI_TRUST)
    user = principal(server, statements(ALLOW_ALL))
    sts = server.client("sts", user)
    with pytest.raises(ClientError) as e:
        sts.assume_role(RoleArn=f"arn:aws-cn:iam::{ACCOUNT}:role/Part", RoleSessionName="s1")
    assert client_error(e.value)[1] in ("ValidationError", "AccessDenied")
    denied(iam.get_open_id_connect_provider, OpenIDConnectProviderArn=f"arn:aws-cn:iam::{ACCOUNT}:oidc-provider/x.example.com",
           code="InvalidInput")
    denied(iam.attach_role_policy, RoleName="Part", PolicyArn=f"arn:aws-us-gov:iam::{ACCOUNT}:policy/p", code="InvalidInput")
    eks = server.client("eks")
    eks.create_cluster(name="part", roleArn=f"arn:aws:iam::{ACCOUNT}:role/eks", resourcesVpcConfig={"subnetIds": ["s"]})
    denied(eks.tag_resource, resourceArn=f"arn:aws-cn:eks:us-east-1:{ACCOUNT}:cluster/part", tags={"a": "b"},
           code="BadRequestException")


# ---- AccessDenied says why


def test_access_denied_messages_say_why(server):
    iam = server.client("iam")
    u = principal(server, allow("iam:GetRole"))
    msg = denied(server.client("iam", u).list_users)
    assert f"User: arn:aws:iam::{ACCOUNT}:user/{u['name']} is not authorized to perform: iam:ListUsers on resource: * " \
           "because no identity-based policy allows the iam:ListUsers action" in msg, msg
    iam.create_policy(PolicyName="BoundaryGetOnly", PolicyDocument=allow("iam:GetUser"))
    b = principal(server, statements(ALLOW_ALL))
    creds_user = b["name"]
    # podiam sets user boundaries only on roles; show the boundary wording on a role session.
    iam.create_role(RoleName="Bounded2", AssumeRolePolicyDocument=principal_trust(
        {"AWS": f"arn:aws:iam::{ACCOUNT}:user/{creds_user}"}),
        PermissionsBoundary=f"arn:aws:iam::{ACCOUNT}:policy/BoundaryGetOnly")
    iam.put_role_policy(RoleName="Bounded2", PolicyName="all", PolicyDocument=statements(ALLOW_ALL))
    c = server.client("sts", b).assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/Bounded2", RoleSessionName="s1")["Credentials"]
    sess = {k: c[k] for k in ("AccessKeyId", "SecretAccessKey", "SessionToken")}
    msg = denied(server.client("iam", sess).list_users)
    assert "because no permissions boundary allows the iam:ListUsers action" in msg, msg
    c = server.client("sts", b).assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/Bounded2", RoleSessionName="s1",
                                            Policy=allow("iam:GetUser"))["Credentials"]
    sess = {k: c[k] for k in ("AccessKeyId", "SecretAccessKey", "SessionToken")}
    msg = denied(server.client("iam", sess).get_role, RoleName="Bounded2")
    assert "because no session policy allows the iam:GetRole action" in msg or "permissions boundary" in msg, msg


# ---- session keys: only the installation administrator rotates or retires; retiring revokes


def test_session_keys_belong_to_the_installation_administrator(server):
    import base64
    import re
    import subprocess
    import time

    from podiam_e2e import podiam_bin

    def key_id(token: str) -> int:
        return int.from_bytes(base64.b64decode(token)[1:5], "big")

    def run(env, *args):
        return subprocess.run([podiam_bin(), "session-keys", *args], env=env, capture_output=True, text=True, timeout=30)

    # A tenant's root (another account of the installation) and a user cannot touch the keys.
    tenant_env = server.creds_env(server.root_keys(f"podiam-{OTHER}"))
    user_env = server.creds_env(principal(server, statements(ALLOW_ALL)))
    for env in (tenant_env, user_env):
        for args in (("rotate",), ("retire", "--key-id", "1"), ("list",)):
            q = run(env, *args)
            assert q.returncode != 0 and "403" in q.stderr and "administrator account" in q.stderr, (args, q.stderr)
    before = _role_session(server, "KeyHolder")
    old = key_id(before["SessionToken"])
    p = server.podiam("session-keys", "rotate")
    assert p.returncode == 0, p.stderr
    new = int(re.search(r"session key (\d+) mints from (\d+)", p.stdout).group(1))
    q = server.podiam("session-keys", "retire", "--key-id", str(new))
    assert q.returncode != 0 and "newest key" in q.stderr, q.stderr
    time.sleep(3.5)  # the new key mints once active
    after = _role_session(server, "KeyHolder2")
    assert key_id(after["SessionToken"]) == new
    assert server.client("sts", before).get_caller_identity()["Arn"].endswith("/KeyHolder/s1"), "rotation revokes nothing"
    q = server.podiam("session-keys", "retire", "--key-id", str(old))
    assert q.returncode == 0, q.stderr
    denied(server.client("sts", before).get_caller_identity, code="InvalidClientTokenId")
    assert server.client("sts", after).get_caller_identity()["Arn"].endswith("/KeyHolder2/s1")
    listed = server.podiam("session-keys", "list")
    assert listed.returncode == 0 and f'"keyId": {new}' in listed.stdout and f'"keyId": {old},' not in listed.stdout, listed.stdout


def test_get_access_key_info_is_authorized_and_get_caller_identity_never_denied(server):
    u = principal(server, statements({"Effect": "Deny", "Action": "sts:*", "Resource": "*"}))
    sts = server.client("sts", u)
    assert sts.get_caller_identity()["Arn"].endswith(f":user/{u['name']}"), "AWS never denies GetCallerIdentity"
    msg = denied(sts.get_access_key_info, AccessKeyId=u["AccessKeyId"])
    assert "sts:GetAccessKeyInfo" in msg and "explicit deny" in msg, msg
    ok = principal(server, allow("sts:GetAccessKeyInfo"))
    assert server.client("sts", ok).get_access_key_info(AccessKeyId=u["AccessKeyId"])["Account"] == ACCOUNT


# ---- references by name must not outlive what they named


def test_a_boundary_in_use_cannot_be_deleted_and_recreated(server):
    iam = server.client("iam")
    pb = iam.create_policy(PolicyName="PB", PolicyDocument=allow("iam:ListRoles"))["Policy"]["Arn"]
    iam.create_role(RoleName="BoundedByPB", AssumeRolePolicyDocument=PI_TRUST, PermissionsBoundary=pb)
    denied(iam.delete_policy, PolicyArn=pb, code="DeleteConflict")
    iam.create_user(UserName="UserBoundedByPB", PermissionsBoundary=pb)
    assert iam.get_user(UserName="UserBoundedByPB")["User"]["PermissionsBoundary"]["PermissionsBoundaryArn"] == pb
    iam.delete_role_permissions_boundary(RoleName="BoundedByPB")
    denied(iam.delete_policy, PolicyArn=pb, code="DeleteConflict")  # the user still uses it
    iam.delete_user_permissions_boundary(UserName="UserBoundedByPB")
    iam.delete_policy(PolicyArn=pb)


def test_create_user_applies_its_permissions_boundary(server):
    iam = server.client("iam")
    ub = iam.create_policy(PolicyName="UB", PolicyDocument=allow("iam:ListRoles"))["Policy"]["Arn"]
    iam.create_user(UserName="ub-user", PermissionsBoundary=ub)
    iam.put_user_policy(UserName="ub-user", PolicyName="all", PolicyDocument=statements(ALLOW_ALL))
    k = iam.create_access_key(UserName="ub-user")["AccessKey"]
    u = server.client("iam", {"AccessKeyId": k["AccessKeyId"], "SecretAccessKey": k["SecretAccessKey"]})
    msg = denied(u.list_users)
    assert "because no permissions boundary allows the iam:ListUsers action" in msg, msg
    u.list_roles()
    # Delegation: a principal may only set the boundary its policy names.
    d = server.client("iam", principal(server, statements(ALLOW_ALL, {
        "Effect": "Deny", "Action": ["iam:CreateUser", "iam:PutUserPermissionsBoundary", "iam:PutRolePermissionsBoundary",
                                     "iam:DeleteUserPermissionsBoundary"], "Resource": "*",
        "Condition": {"StringNotEquals": {"iam:PermissionsBoundary": ub}}})))
    denied(d.create_user, UserName="unbounded")
    d.create_user(UserName="bounded", PermissionsBoundary=ub)
    other = iam.create_policy(PolicyName="UB2", PolicyDocument=allow("*"))["Policy"]["Arn"]
    denied(d.put_user_permissions_boundary, UserName="bounded", PermissionsBoundary=other)
    d.delete_user_permissions_boundary(UserName="ub-user")  # its current boundary is UB: allowed


def test_a_recreated_principal_does_not_inherit_trust(server):
    iam = server.client("iam")
    user = principal(server, statements(ALLOW_ALL))
    user_arn = f"arn:aws:iam::{ACCOUNT}:user/{user['name']}"
    iam.create_role(RoleName="ci", AssumeRolePolicyDocument=principal_trust({"AWS": user_arn}))
    iam.put_role_policy(RoleName="ci", PolicyName="all", PolicyDocument=statements(ALLOW_ALL))
    ci_arn = f"arn:aws:iam::{ACCOUNT}:role/ci"
    iam.create_role(RoleName="adm", AssumeRolePolicyDocument=principal_trust({"AWS": [ci_arn, user_arn]}))
    ci_id = iam.get_role(RoleName="ci")["Role"]["RoleId"]
    iam.delete_role_policy(RoleName="ci", PolicyName="all")
    iam.delete_role(RoleName="ci")
    trust = iam.get_role(RoleName="adm")["Role"]["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    assert trust["Statement"][0]["Principal"]["AWS"] == [ci_id, user_arn], trust
    iam.create_role(RoleName="ci", AssumeRolePolicyDocument=principal_trust({"AWS": user_arn}))
    iam.put_role_policy(RoleName="ci", PolicyName="all", PolicyDocument=statements(ALLOW_ALL))
    c = server.client("sts", user).assume_role(RoleArn=ci_arn, RoleSessionName="s1")["Credentials"]
    sess = {k: c[k] for k in ("AccessKeyId", "SecretAccessKey", "SessionToken")}
    denied(server.client("sts", sess).assume_role, RoleArn=f"arn:aws:iam::{ACCOUNT}:role/adm", RoleSessionName="s2")
    # The other principal the trust names is untouched.
    assert server.client("sts", user).assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/adm", RoleSessionName="s3")


def test_a_chained_source_identity_needs_set_source_identity(server):
    iam = server.client("iam")
    user = principal(server, statements(ALLOW_ALL))
    user_arn = f"arn:aws:iam::{ACCOUNT}:user/{user['name']}"
    iam.create_role(RoleName="si1", AssumeRolePolicyDocument=principal_trust({"AWS": user_arn}, ["sts:AssumeRole", "sts:SetSourceIdentity"]))
    iam.put_role_policy(RoleName="si1", PolicyName="all", PolicyDocument=statements(ALLOW_ALL))
    si1 = f"arn:aws:iam::{ACCOUNT}:role/si1"
    iam.create_role(RoleName="si2", AssumeRolePolicyDocument=statements(
        {"Effect": "Allow", "Principal": {"AWS": si1}, "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"]},
        {"Effect": "Deny", "Principal": {"AWS": si1}, "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"],
         "Condition": {"StringEquals": {"sts:SourceIdentity": "mallory"}}}))
    iam.create_role(RoleName="si3", AssumeRolePolicyDocument=principal_trust({"AWS": si1}))
    c = server.client("sts", user).assume_role(RoleArn=si1, RoleSessionName="s1", SourceIdentity="mallory")["Credentials"]
    sess = server.client("sts", {k: c[k] for k in ("AccessKeyId", "SecretAccessKey", "SessionToken")})
    denied(sess.assume_role, RoleArn=f"arn:aws:iam::{ACCOUNT}:role/si2", RoleSessionName="s2")
    # A trust that does not allow sts:SetSourceIdentity cannot receive one either.
    denied(sess.assume_role, RoleArn=f"arn:aws:iam::{ACCOUNT}:role/si3", RoleSessionName="s3")
    c = server.client("sts", user).assume_role(RoleArn=si1, RoleSessionName="s1", SourceIdentity="alice")["Credentials"]
    sess = server.client("sts", {k: c[k] for k in ("AccessKeyId", "SecretAccessKey", "SessionToken")})
    assert sess.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/si2", RoleSessionName="s2")["SourceIdentity"] == "alice"


# ---- every action is authorized under its own name


def test_actions_are_authorized_under_their_own_names(server):
    iam = server.client("iam")
    iam.create_role(RoleName="Described", AssumeRolePolicyDocument=PI_TRUST)
    prov = iam.create_open_id_connect_provider(Url="https://own-names.example.com", ClientIDList=["sts.amazonaws.com"],
                                               ThumbprintList=["a" * 40])["OpenIDConnectProviderArn"]
    a = server.client("iam", principal(server, statements(ALLOW_ALL, {
        "Effect": "Deny", "Action": ["iam:UpdateRoleDescription", "iam:ListOpenIDConnectProviderTags"], "Resource": "*"})))
    denied(a.update_role_description, RoleName="Described", Description="pwned")
    denied(a.list_open_id_connect_provider_tags, OpenIDConnectProviderArn=prov)
    assert "pwned" != iam.get_role(RoleName="Described")["Role"].get("Description")
    a.update_role(RoleName="Described", Description="fine")  # iam:UpdateRole is not denied


# ---- what a caller may learn


def test_assume_role_refusals_say_the_same_whether_or_not_the_role_exists(server):
    iam = server.client("iam")
    iam.create_role(RoleName="web", Path="/sec/", AssumeRolePolicyDocument=PI_TRUST)
    other_root = server.client("sts", server.root_keys(f"podiam-{OTHER}"))
    u = principal(server, statements(ALLOW_ALL))
    sts = server.client("sts", u)
    msgs = set()
    for arn in (f"arn:aws:iam::{ACCOUNT}:role/sec/WEB", f"arn:aws:iam::{ACCOUNT}:role/sec/nosuch", f"arn:aws:iam::{ACCOUNT}:role/web"):
        msg = denied(sts.assume_role, RoleArn=arn, RoleSessionName="s1")
        assert "role/sec/web" not in msg, msg
        msgs.add(msg.replace(arn, "ARN"))
    assert len(msgs) == 1, msgs
    del other_root


def test_eks_tag_apis_do_not_reveal_what_exists(server):
    server.client("eks").create_cluster(name="hidden", roleArn=f"arn:aws:iam::{ACCOUNT}:role/eks",
                                        resourcesVpcConfig={"subnetIds": ["s"]})
    nop = server.client("eks", principal(server, statements({"Effect": "Allow", "Action": "iam:GetUser", "Resource": "*"})))
    for name in ("hidden", "nosuch"):
        arn = f"arn:aws:eks:us-east-1:{ACCOUNT}:cluster/{name}"
        denied(nop.list_tags_for_resource, resourceArn=arn, code="AccessDeniedException")
        denied(nop.tag_resource, resourceArn=arn, tags={"a": "b"}, code="AccessDeniedException")


def test_minting_tokens_can_be_confined_to_a_namespace(server):
    server.client("eks").create_cluster(name="mint", roleArn=f"arn:aws:iam::{ACCOUNT}:role/eks",
                                        resourcesVpcConfig={"subnetIds": ["s"]})
    import subprocess

    from podiam_e2e import podiam_bin
    u = principal(server, statements({"Effect": "Allow", "Action": "podiam:MintServiceAccountToken", "Resource": "*",
                                      "Condition": {"StringEquals": {"podiam:Namespace": "team-a"}}}))
    env = server.creds_env(u)

    def mint(ns):
        return subprocess.run([podiam_bin(), "token", "--cluster", "mint", "--namespace", ns, "--service-account", "sa"],
                              env=env, capture_output=True, text=True, timeout=30)
    assert mint("team-a").returncode == 0
    p = mint("kube-system")
    assert p.returncode != 0 and "podiam:MintServiceAccountToken" in p.stderr, p.stderr


# ---- a tenant cannot fill the shared control plane; responses always parse


def test_cluster_quota_and_spec_size(server):
    eks = server.client("eks", server.root_keys(f"podiam-{OTHER}"))
    denied(eks.create_cluster, name="padded", roleArn=f"arn:aws:iam::{OTHER}:role/eks",
           resourcesVpcConfig={"subnetIds": ["s" * 900_000]}, code="InvalidParameterException")


def test_descriptions_that_xml_cannot_carry_are_refused(server):
    iam = server.client("iam")
    denied(iam.create_role, RoleName="Ctl", AssumeRolePolicyDocument=PI_TRUST, Description="x\x01y", code="ValidationError")
    iam.create_role(RoleName="Ctl", AssumeRolePolicyDocument=PI_TRUST, Description="tab\there é")
    denied(iam.update_role_description, RoleName="Ctl", Description="x\x1fy", code="ValidationError")
    assert iam.list_roles()["Roles"]


def test_transitive_tags_need_tag_session_in_the_next_trust(server):
    iam = server.client("iam")
    user = principal(server, statements(ALLOW_ALL))
    user_arn = f"arn:aws:iam::{ACCOUNT}:user/{user['name']}"
    iam.create_role(RoleName="hop1", AssumeRolePolicyDocument=principal_trust({"AWS": user_arn}, ["sts:AssumeRole", "sts:TagSession"]))
    iam.put_role_policy(RoleName="hop1", PolicyName="all", PolicyDocument=statements(ALLOW_ALL))
    hop1 = f"arn:aws:iam::{ACCOUNT}:role/hop1"
    # hop2 trusts hop1 but never lets a session be tagged; hop3 allows tagging only team=blue.
    iam.create_role(RoleName="hop2", Tags=[{"Key": "team", "Value": "blue"}], AssumeRolePolicyDocument=statements(
        {"Effect": "Allow", "Principal": {"AWS": hop1}, "Action": "sts:AssumeRole"},
        {"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "sts:TagSession"}))
    iam.create_role(RoleName="hop3", AssumeRolePolicyDocument=statements(
        {"Effect": "Allow", "Principal": {"AWS": hop1}, "Action": ["sts:AssumeRole", "sts:TagSession"],
         "Condition": {"StringEquals": {"aws:RequestTag/team": "blue"}}}))
    sts = server.client("sts", user)
    c = sts.assume_role(RoleArn=hop1, RoleSessionName="s1", Tags=[{"Key": "team", "Value": "red"}],
                        TransitiveTagKeys=["team"])["Credentials"]
    tagged = server.client("sts", {k: c[k] for k in ("AccessKeyId", "SecretAccessKey", "SessionToken")})
    denied(tagged.assume_role, RoleArn=f"arn:aws:iam::{ACCOUNT}:role/hop2", RoleSessionName="s2")
    denied(tagged.assume_role, RoleArn=f"arn:aws:iam::{ACCOUNT}:role/hop3", RoleSessionName="s3")
    # Without the transitive tag, the chain into hop2 works; with team=blue, hop3 admits it.
    c = sts.assume_role(RoleArn=hop1, RoleSessionName="s1")["Credentials"]
    plain = server.client("sts", {k: c[k] for k in ("AccessKeyId", "SecretAccessKey", "SessionToken")})
    assert plain.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/hop2", RoleSessionName="s2")["Credentials"]
    c = sts.assume_role(RoleArn=hop1, RoleSessionName="s1", Tags=[{"Key": "team", "Value": "blue"}],
                        TransitiveTagKeys=["team"])["Credentials"]
    blue = server.client("sts", {k: c[k] for k in ("AccessKeyId", "SecretAccessKey", "SessionToken")})
    assert blue.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/hop3", RoleSessionName="s3")["Credentials"]


def test_web_identity_refusals_do_not_tell_whether_the_role_exists(server):
    import time

    import jwt as pyjwt

    from podiam_e2e import new_rsa, xml_text
    iam = server.client("iam")
    # A provider whose issuer cannot be reached (nothing listens on 127.0.0.9:443).
    iam.create_open_id_connect_provider(Url="https://127.0.0.9", ClientIDList=["sts.amazonaws.com"], ThumbprintList=["a" * 40])
    iam.create_role(RoleName="wi-admin", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/127.0.0.9"},
        "Action": "sts:AssumeRoleWithWebIdentity"}]}))
    now = int(time.time())
    forged = pyjwt.encode({"iss": "https://127.0.0.9", "sub": "x", "aud": "sts.amazonaws.com", "iat": now, "exp": now + 600},
                          new_rsa(), algorithm="RS256", headers={"kid": "k"})
    answers = set()
    for role in ("wi-admin", "wi-nosuch"):
        r = server.assume_web(f"arn:aws:iam::{ACCOUNT}:role/{role}", forged)
        answers.add((r.status_code, xml_text(r.text, "Code"), xml_text(r.text, "Message")))
    assert len(answers) == 1, answers
