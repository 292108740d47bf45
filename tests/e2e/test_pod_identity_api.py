"""EKS Pod Identity through the real clients: association CRUD and tags with the AWS CLI and boto3,
`aws eks-auth assume-role-for-pod-identity` signed by a node identity, session tags in trust and
permission policies, cross-account target roles with `sts:ExternalId`, and the error codes of both
APIs."""

from __future__ import annotations

import json
import re
import time
import uuid

import jwt
import pytest
from botocore.exceptions import ClientError

from podiam_e2e import ACCOUNT, REGION, AwsCliError, client_error

OTHER = "444455556666"
PODIAM_ARGS = ["--additional-account", OTHER]
PI_AUD = "pods.eks.amazonaws.com"
CLUSTER = "pi"


def pi_trust(conditions: dict | None = None) -> str:
    stmt = {"Sid": "AllowEksAuthToAssumeRoleForPodIdentity", "Effect": "Allow",
            "Principal": {"Service": "pods.eks.amazonaws.com"}, "Action": ["sts:AssumeRole", "sts:TagSession"]}
    if conditions:
        stmt["Condition"] = conditions
    return json.dumps({"Version": "2012-10-17", "Statement": [stmt]})


@pytest.fixture(scope="module")
def env(server):
    """A cluster, a node user allowed `eks-auth:AssumeRoleForPodIdentity`, and its keys."""
    eks, iam = server.client("eks"), server.client("iam")
    eks.create_cluster(name=CLUSTER, roleArn=f"arn:aws:iam::{ACCOUNT}:role/eks", resourcesVpcConfig={"subnetIds": ["s"]})
    iam.create_user(UserName="node")
    iam.put_user_policy(UserName="node", PolicyName="eks-auth", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "eks-auth:AssumeRoleForPodIdentity", "Resource": "*"}]}))
    k = iam.create_access_key(UserName="node")["AccessKey"]
    iam.create_user(UserName="nobody")
    k2 = iam.create_access_key(UserName="nobody")["AccessKey"]
    return {"node": {"AccessKeyId": k["AccessKeyId"], "SecretAccessKey": k["SecretAccessKey"]},
            "nobody": {"AccessKeyId": k2["AccessKeyId"], "SecretAccessKey": k2["SecretAccessKey"]}}


def make_role(server, name: str, trust: str | None = None, policy: dict | None = None, account_profile: str | None = None) -> str:
    iam = server.client("iam", server.root_keys(account_profile) if account_profile else None)
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust or pi_trust())
    if policy:
        iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=json.dumps(policy))
    acct = OTHER if account_profile else ACCOUNT
    return f"arn:aws:iam::{acct}:role/{name}"


def pod_token(server, ns: str, sa: str, pod: str = "web-0", aud: str = PI_AUD) -> str:
    return server.token(CLUSTER, ns, sa, audience=[aud], pod=(pod, str(uuid.uuid4())))


def eks_auth(server, creds: dict, token: str, cluster: str = CLUSTER) -> dict:
    return server.aws("eks-auth", "assume-role-for-pod-identity", "--cluster-name", cluster, "--token", token,
                      env=server.creds_env(creds))


def eks_auth_error(server, creds: dict, token: str, cluster: str = CLUSTER) -> str | None:
    with pytest.raises(AwsCliError) as e:
        eks_auth(server, creds, token, cluster)
    assert e.value.rc != 0
    return e.value.code


def caller_arn(server, creds: dict) -> str:
    c = creds["credentials"]
    return server.aws("sts", "get-caller-identity", env=server.creds_env(
        {"AccessKeyId": c["accessKeyId"], "SecretAccessKey": c["secretAccessKey"], "SessionToken": c["sessionToken"]}))["Arn"]


def session_creds(r: dict) -> dict:
    c = r["credentials"]
    return {"AccessKeyId": c["accessKeyId"], "SecretAccessKey": c["secretAccessKey"], "SessionToken": c["sessionToken"]}


# ------------------------------------------------------------------------------ associations


def test_association_lifecycle_with_the_cli(server, env):
    role = make_role(server, "pi-crud")
    role2 = make_role(server, "pi-crud-2")
    a = server.aws("eks", "create-pod-identity-association", "--cluster-name", CLUSTER, "--namespace", "crud",
                   "--service-account", "sa", "--role-arn", role, "--tags", "team=a")["association"]
    assert re.fullmatch(r"a-[a-z0-9]{17}", a["associationId"]), a
    assert a["associationArn"] == f"arn:aws:eks:{REGION}:{ACCOUNT}:podidentityassociation/{CLUSTER}/{a['associationId']}"
    assert (a["clusterName"], a["namespace"], a["serviceAccount"], a["roleArn"]) == (CLUSTER, "crud", "sa", role)
    assert a["tags"] == {"team": "a"} and a["disableSessionTags"] is False
    assert "targetRoleArn" not in a and "externalId" not in a and "policy" not in a
    assert isinstance(a["createdAt"], float) and a["createdAt"] == a["modifiedAt"]  # epoch seconds on the wire
    aid = a["associationId"]
    d = server.aws("eks", "describe-pod-identity-association", "--cluster-name", CLUSTER, "--association-id", aid)
    assert d["association"] == a
    lst = server.aws("eks", "list-pod-identity-associations", "--cluster-name", CLUSTER, "--namespace", "crud")
    assert lst["associations"] == [{"clusterName": CLUSTER, "namespace": "crud", "serviceAccount": "sa",
                                    "associationArn": a["associationArn"], "associationId": aid}]
    time.sleep(0.01)
    u = server.aws("eks", "update-pod-identity-association", "--cluster-name", CLUSTER, "--association-id", aid,
                   "--role-arn", role2)["association"]
    assert u["roleArn"] == role2 and u["createdAt"] == a["createdAt"]
    deleted = server.aws("eks", "delete-pod-identity-association", "--cluster-name", CLUSTER, "--association-id", aid)
    assert deleted["association"]["associationId"] == aid and deleted["association"]["roleArn"] == role2
    with pytest.raises(AwsCliError) as e:
        server.aws("eks", "describe-pod-identity-association", "--cluster-name", CLUSTER, "--association-id", aid)
    assert e.value.code == "ResourceNotFoundException"
    assert server.aws("eks", "list-pod-identity-associations", "--cluster-name", CLUSTER, "--namespace", "crud")["associations"] == []


def test_one_association_per_service_account(server, env):
    role = make_role(server, "pi-dup")
    eks = server.client("eks")
    eks.create_pod_identity_association(clusterName=CLUSTER, namespace="dup", serviceAccount="sa", roleArn=role)
    with pytest.raises(ClientError) as e:
        eks.create_pod_identity_association(clusterName=CLUSTER, namespace="dup", serviceAccount="sa", roleArn=role)
    assert client_error(e.value) == (409, "ResourceInUseException")
    # another service account of the namespace is fine
    eks.create_pod_identity_association(clusterName=CLUSTER, namespace="dup", serviceAccount="sa2", roleArn=role)


def test_client_request_token_makes_create_idempotent(server, env):
    role = make_role(server, "pi-idem")
    eks = server.client("eks")
    tok = str(uuid.uuid4())
    a = eks.create_pod_identity_association(clusterName=CLUSTER, namespace="idem", serviceAccount="sa", roleArn=role,
                                            clientRequestToken=tok)["association"]
    b = eks.create_pod_identity_association(clusterName=CLUSTER, namespace="idem", serviceAccount="sa", roleArn=role,
                                            clientRequestToken=tok)["association"]
    assert a["associationId"] == b["associationId"]
    with pytest.raises(ClientError) as e:  # same key, a new token: a second create, refused
        eks.create_pod_identity_association(clusterName=CLUSTER, namespace="idem", serviceAccount="sa", roleArn=role,
                                            clientRequestToken=str(uuid.uuid4()))
    assert client_error(e.value) == (409, "ResourceInUseException")


@pytest.mark.parametrize("kw,code", [
    ({"namespace": "Bad_NS"}, "InvalidParameterException"),
    ({"serviceAccount": ""}, "InvalidParameterException"),
    ({"roleArn": "not-an-arn"}, "InvalidParameterException"),
    ({"roleArn": f"arn:aws:iam::{ACCOUNT}:role/does-not-exist"}, "InvalidParameterException"),
    ({"roleArn": f"arn:aws:iam::{OTHER}:role/elsewhere"}, "InvalidParameterException"),
    ({"policy": '{"Version":"2012-10-17","Statement":[]}'}, "InvalidParameterException"),  # needs disableSessionTags
    ({"policy": "{not json", "disableSessionTags": True}, "InvalidParameterException"),
    ({"targetRoleArn": "arn:aws:s3:::bucket"}, "InvalidParameterException"),
    ({"tags": {"aws:reserved": "x"}}, "InvalidParameterException"),
    ({"tags": {f"k{i}": "v" for i in range(51)}}, "InvalidParameterException"),
    ({"clusterName": "no-such-cluster"}, "ResourceNotFoundException"),
])
def test_create_rejects_bad_input(server, env, kw, code):
    role = f"arn:aws:iam::{ACCOUNT}:role/pi-bad"
    try:
        server.client("iam").create_role(RoleName="pi-bad", AssumeRolePolicyDocument=pi_trust())
    except ClientError:
        pass
    args = {"clusterName": CLUSTER, "namespace": "bad", "serviceAccount": "sa", "roleArn": role, **kw}
    eks = server.client("eks")
    with pytest.raises(ClientError) as e:
        eks.create_pod_identity_association(**args)
    status, got = client_error(e.value)
    assert got == code and status == (404 if code == "ResourceNotFoundException" else 400), e.value.response
    assert e.value.response["Error"]["Message"]
    # nothing was written
    assert eks.list_pod_identity_associations(clusterName=CLUSTER, namespace="bad")["associations"] == []


def test_list_paginates_and_filters(server, env):
    role = make_role(server, "pi-page")
    eks = server.client("eks")
    for i in range(7):
        eks.create_pod_identity_association(clusterName=CLUSTER, namespace="page", serviceAccount=f"sa-{i}", roleArn=role)
    seen, token, pages = [], None, 0
    while True:
        kw = {"nextToken": token} if token else {}
        r = eks.list_pod_identity_associations(clusterName=CLUSTER, namespace="page", maxResults=3, **kw)
        pages += 1
        assert len(r["associations"]) <= 3
        seen += [a["serviceAccount"] for a in r["associations"]]
        token = r.get("nextToken")
        if not token:
            break
    assert pages == 3 and sorted(seen) == [f"sa-{i}" for i in range(7)]
    r = eks.list_pod_identity_associations(clusterName=CLUSTER, namespace="page", serviceAccount="sa-4")
    assert [a["serviceAccount"] for a in r["associations"]] == ["sa-4"]
    for bad in ({"maxResults": 0}, {"maxResults": 101}, {"nextToken": "garbage"}):
        with pytest.raises(ClientError) as e:
            eks.list_pod_identity_associations(clusterName=CLUSTER, **bad)
        assert client_error(e.value) == (400, "InvalidParameterException")
    with pytest.raises(ClientError) as e:
        eks.list_pod_identity_associations(clusterName="nope")
    assert client_error(e.value) == (404, "ResourceNotFoundException")


def test_update_rules(server, env):
    role = make_role(server, "pi-upd")
    eks = server.client("eks")
    a = eks.create_pod_identity_association(clusterName=CLUSTER, namespace="upd", serviceAccount="sa", roleArn=role)["association"]
    aid = a["associationId"]
    with pytest.raises(ClientError) as e:  # a policy still needs disableSessionTags
        eks.update_pod_identity_association(clusterName=CLUSTER, associationId=aid,
                                            policy='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}')
    assert client_error(e.value) == (400, "InvalidParameterException")
    u = eks.update_pod_identity_association(clusterName=CLUSTER, associationId=aid, disableSessionTags=True,
                                            targetRoleArn=f"arn:aws:iam::{OTHER}:role/target",
                                            policy='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}')["association"]
    assert u["disableSessionTags"] is True and u["targetRoleArn"].endswith(":role/target")
    assert re.fullmatch(r"[0-9a-f]{32}", u["externalId"]), u
    again = eks.update_pod_identity_association(clusterName=CLUSTER, associationId=aid, roleArn=role)["association"]
    assert again["externalId"] == u["externalId"], "the external id is stable for the association"
    cleared = eks.update_pod_identity_association(clusterName=CLUSTER, associationId=aid, targetRoleArn="", policy="")["association"]
    assert "targetRoleArn" not in cleared and "policy" not in cleared
    with pytest.raises(ClientError) as e:
        eks.update_pod_identity_association(clusterName=CLUSTER, associationId="a-00000000000000000", roleArn=role)
    assert client_error(e.value) == (404, "ResourceNotFoundException")


def test_tags_on_associations(server, env):
    role = make_role(server, "pi-tags")
    a = server.client("eks").create_pod_identity_association(clusterName=CLUSTER, namespace="tags", serviceAccount="sa",
                                                             roleArn=role, tags={"a": "1"})["association"]
    arn = a["associationArn"]
    server.aws("eks", "tag-resource", "--resource-arn", arn, "--tags", "b=2,c=3")
    assert server.aws("eks", "list-tags-for-resource", "--resource-arn", arn)["tags"] == {"a": "1", "b": "2", "c": "3"}
    server.aws("eks", "untag-resource", "--resource-arn", arn, "--tag-keys", "a", "c")
    assert server.aws("eks", "list-tags-for-resource", "--resource-arn", arn)["tags"] == {"b": "2"}
    cl = f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/{CLUSTER}"
    server.aws("eks", "tag-resource", "--resource-arn", cl, "--tags", "env=dev")
    assert server.aws("eks", "list-tags-for-resource", "--resource-arn", cl)["tags"]["env"] == "dev"
    with pytest.raises(AwsCliError) as e:
        server.aws("eks", "list-tags-for-resource", "--resource-arn", arn.replace(a["associationId"], "a-00000000000000000"))
    assert e.value.code == "NotFoundException"
    with pytest.raises(AwsCliError) as e:
        server.aws("eks", "tag-resource", "--resource-arn", arn, "--tags", "aws:x=1")
    assert e.value.code == "BadRequestException"


def test_creating_needs_pass_role(server, env):
    iam = server.client("iam")
    iam.create_user(UserName="pi-admin")
    iam.put_user_policy(UserName="pi-admin", PolicyName="eks", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "eks:*", "Resource": "*"}]}))
    k = iam.create_access_key(UserName="pi-admin")["AccessKey"]
    creds = {"AccessKeyId": k["AccessKeyId"], "SecretAccessKey": k["SecretAccessKey"]}
    role = make_role(server, "pi-pass")
    eks = server.client("eks", creds)
    with pytest.raises(ClientError) as e:
        eks.create_pod_identity_association(clusterName=CLUSTER, namespace="pass", serviceAccount="sa", roleArn=role)
    assert client_error(e.value) == (403, "AccessDeniedException")
    assert "iam:PassRole" in e.value.response["Error"]["Message"]
    iam.put_user_policy(UserName="pi-admin", PolicyName="pass", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:PassRole", "Resource": role,
                                                "Condition": {"StringEquals": {"iam:PassedToService": "pods.eks.amazonaws.com"}}}]}))
    eks.create_pod_identity_association(clusterName=CLUSTER, namespace="pass", serviceAccount="sa", roleArn=role)


def test_deleting_the_cluster_deletes_its_associations(server, env):
    eks = server.client("eks")
    eks.create_cluster(name="pi-gone", roleArn=f"arn:aws:iam::{ACCOUNT}:role/eks", resourcesVpcConfig={"subnetIds": ["s"]})
    role = make_role(server, "pi-gone")
    eks.create_pod_identity_association(clusterName="pi-gone", namespace="x", serviceAccount="sa", roleArn=role)
    eks.delete_cluster(name="pi-gone")
    eks.create_cluster(name="pi-gone", roleArn=f"arn:aws:iam::{ACCOUNT}:role/eks", resourcesVpcConfig={"subnetIds": ["s"]})
    assert eks.list_pod_identity_associations(clusterName="pi-gone")["associations"] == []


# ------------------------------------------------------------------------------ EKS Auth


def test_assume_role_for_pod_identity_with_the_cli(server, env):
    role = make_role(server, "pi-app")
    a = server.client("eks").create_pod_identity_association(clusterName=CLUSTER, namespace="app", serviceAccount="web",
                                                             roleArn=role)["association"]
    tok = pod_token(server, "app", "web", pod="web-7d9f")
    r = eks_auth(server, env["node"], tok)
    assert r["subject"] == {"namespace": "app", "serviceAccount": "web"}
    assert r["audience"] == PI_AUD
    assert r["podIdentityAssociation"] == {"associationArn": a["associationArn"], "associationId": a["associationId"]}
    arn = r["assumedRoleUser"]["arn"]
    m = re.fullmatch(rf"arn:aws:sts::{ACCOUNT}:assumed-role/pi-app/(eks-{CLUSTER}-web-7d9f-[0-9a-f-]{{36}})", arn)
    assert m, arn
    assert r["assumedRoleUser"]["assumeRoleId"].endswith(":" + m.group(1))
    assert r["credentials"]["accessKeyId"].startswith("ASIA")
    # the association role's session lasts six hours, as EKS Auth's does
    assert time.time() + 6 * 3600 - 100 < r["credentials"]["expiration"] <= time.time() + 6 * 3600 + 1
    assert caller_arn(server, r) == arn
    # a second call makes a new session (a new UUID)
    assert eks_auth(server, env["node"], tok)["assumedRoleUser"]["arn"] != arn


def test_assume_role_for_pod_identity_refusals(server, env, tmp_path):
    role = make_role(server, "pi-ref")
    server.client("eks").create_pod_identity_association(clusterName=CLUSTER, namespace="ref", serviceAccount="sa", roleArn=role)
    good = pod_token(server, "ref", "sa")
    # the node identity needs eks-auth:AssumeRoleForPodIdentity
    assert eks_auth_error(server, env["nobody"], good) == "AccessDeniedException"
    # a token for STS (IRSA) is not a Pod Identity token
    assert eks_auth_error(server, env["node"], pod_token(server, "ref", "sa", aud="sts.amazonaws.com")) == "InvalidTokenException"
    # no association for the service account
    assert eks_auth_error(server, env["node"], pod_token(server, "ref", "other")) == "ResourceNotFoundException"
    # unknown cluster
    assert eks_auth_error(server, env["node"], good, cluster="nope") == "ResourceNotFoundException"
    # not a JWT
    assert eks_auth_error(server, env["node"], "not-a-jwt") == "InvalidParameterException"
    # tokens signed with the cluster's own key but wrong in other ways
    out = tmp_path / "export"
    x = server.podiam("issuer", "export", "--cluster", CLUSTER, "--out-dir", str(out))
    assert x.returncode == 0, x.stderr
    key = (out / "sa-signer.key").read_text()
    iss = re.search(r"--service-account-issuer=(\S+)", x.stdout).group(1)
    kid = jwt.get_unverified_header(good)["kid"]
    now = int(time.time())
    base = {"iss": iss, "aud": [PI_AUD], "sub": "system:serviceaccount:ref:sa", "iat": now, "nbf": now, "exp": now + 600,
            "kubernetes.io": {"namespace": "ref", "serviceaccount": {"name": "sa", "uid": "u"},
                              "pod": {"name": "p", "uid": "u2"}}}

    def signed(**over):
        claims = {**base, **over}
        for k in [k for k, v in over.items() if v is None]:
            del claims[k]
        alg = jwt.get_unverified_header(good)["alg"]
        return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})

    assert eks_auth(server, env["node"], signed())["subject"]["serviceAccount"] == "sa"
    assert eks_auth_error(server, env["node"], signed(exp=now - 3600, iat=now - 7200, nbf=now - 7200)) == "ExpiredTokenException"
    assert eks_auth_error(server, env["node"], signed(iss="https://elsewhere.example/id/X")) == "InvalidTokenException"
    assert eks_auth_error(server, env["node"], signed(**{"kubernetes.io": {"namespace": "ref"}})) == "InvalidTokenException"
    assert eks_auth_error(server, env["node"], signed(sub="system:serviceaccount:ref:sa-other")) == "InvalidTokenException"
    tampered = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    assert eks_auth_error(server, env["node"], tampered) == "InvalidTokenException"


def test_trust_policy_must_name_the_pods_service(server, env):
    role = make_role(server, "pi-untrusted", trust=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": ["sts:AssumeRole", "sts:TagSession"]}]}))
    server.client("eks").create_pod_identity_association(clusterName=CLUSTER, namespace="untrusted", serviceAccount="sa", roleArn=role)
    assert eks_auth_error(server, env["node"], pod_token(server, "untrusted", "sa")) == "AccessDeniedException"
    # sts:AssumeRole alone is not enough while session tags are on
    role2 = make_role(server, "pi-notag", trust=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))
    eks = server.client("eks")
    a = eks.create_pod_identity_association(clusterName=CLUSTER, namespace="notag", serviceAccount="sa", roleArn=role2)["association"]
    assert eks_auth_error(server, env["node"], pod_token(server, "notag", "sa")) == "AccessDeniedException"
    # ... and is enough once the association disables them
    eks.update_pod_identity_association(clusterName=CLUSTER, associationId=a["associationId"], disableSessionTags=True)
    assert eks_auth(server, env["node"], pod_token(server, "notag", "sa"))["assumedRoleUser"]["arn"].startswith(
        f"arn:aws:sts::{ACCOUNT}:assumed-role/pi-notag/eks-{CLUSTER}-")


def test_trust_policy_request_tag_admits_only_one_service_account(server, env):
    role = make_role(server, "pi-only-api", trust=pi_trust({"StringEquals": {
        "aws:RequestTag/kubernetes-service-account": "api", "aws:RequestTag/eks-cluster-name": CLUSTER}}))
    eks = server.client("eks")
    eks.create_pod_identity_association(clusterName=CLUSTER, namespace="tagged", serviceAccount="api", roleArn=role)
    eks.create_pod_identity_association(clusterName=CLUSTER, namespace="tagged", serviceAccount="worker", roleArn=role)
    assert eks_auth(server, env["node"], pod_token(server, "tagged", "api"))["subject"]["serviceAccount"] == "api"
    assert eks_auth_error(server, env["node"], pod_token(server, "tagged", "worker")) == "AccessDeniedException"


def test_principal_tag_policy_allows_one_namespace_only(server, env):
    role = make_role(server, "pi-ns-scoped", policy={"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "iam:GetRole", "Resource": "*",
        "Condition": {"StringEquals": {"aws:PrincipalTag/kubernetes-namespace": "team-a"}}}]})
    eks = server.client("eks")
    for ns in ("team-a", "team-b"):
        eks.create_pod_identity_association(clusterName=CLUSTER, namespace=ns, serviceAccount="sa", roleArn=role)
    a = session_creds(eks_auth(server, env["node"], pod_token(server, "team-a", "sa", pod="a-pod")))
    b = session_creds(eks_auth(server, env["node"], pod_token(server, "team-b", "sa", pod="b-pod")))
    assert server.aws("iam", "get-role", "--role-name", "pi-ns-scoped", env=server.creds_env(a))["Role"]["RoleName"] == "pi-ns-scoped"
    rc, _, err = server.aws_rc("iam", "get-role", "--role-name", "pi-ns-scoped", env=server.creds_env(b))
    assert rc != 0 and "AccessDenied" in err, err
    # every session tag is there, with the pod's values
    tags_policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:ListRoles", "Resource": "*",
                   "Condition": {"StringEquals": {"aws:PrincipalTag/eks-cluster-arn": f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/{CLUSTER}",
                                                  "aws:PrincipalTag/eks-cluster-name": CLUSTER,
                                                  "aws:PrincipalTag/kubernetes-service-account": "sa",
                                                  "aws:PrincipalTag/kubernetes-pod-name": "a-pod"},
                                 "Null": {"aws:PrincipalTag/kubernetes-pod-uid": "false"}}}]}
    server.client("iam").put_role_policy(RoleName="pi-ns-scoped", PolicyName="tags", PolicyDocument=json.dumps(tags_policy))
    server.aws("iam", "list-roles", "--max-items", "1", env=server.creds_env(a))
    rc, _, err = server.aws_rc("iam", "list-roles", "--max-items", "1", env=server.creds_env(b))
    assert rc != 0 and "AccessDenied" in err, err


def test_association_policy_restricts_the_session(server, env):
    role = make_role(server, "pi-restricted", policy={"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": ["iam:GetRole", "iam:ListRoles"], "Resource": "*"}]})
    server.client("eks").create_pod_identity_association(
        clusterName=CLUSTER, namespace="restricted", serviceAccount="sa", roleArn=role, disableSessionTags=True,
        policy=json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:GetRole", "Resource": "*"}]}))
    c = session_creds(eks_auth(server, env["node"], pod_token(server, "restricted", "sa")))
    server.aws("iam", "get-role", "--role-name", "pi-restricted", env=server.creds_env(c))
    rc, _, err = server.aws_rc("iam", "list-roles", env=server.creds_env(c))
    assert rc != 0 and "AccessDenied" in err, err


# ------------------------------------------------------------------------------ cross-account


def test_target_role_in_another_account(server, env):
    target = f"arn:aws:iam::{OTHER}:role/pi-target"
    first = make_role(server, "pi-first", policy={"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": ["sts:AssumeRole", "sts:TagSession"], "Resource": target}]})
    eks = server.client("eks")
    a = eks.create_pod_identity_association(clusterName=CLUSTER, namespace="xacct", serviceAccount="sa", roleArn=first,
                                            targetRoleArn=target)["association"]
    ext = a["externalId"]
    assert a["targetRoleArn"] == target and ext

    def target_trust(external_id: str) -> str:
        return json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"AWS": first}, "Action": ["sts:AssumeRole", "sts:TagSession"],
            "Condition": {"StringEquals": {"sts:ExternalId": external_id}}}]})

    other_iam = server.client("iam", server.root_keys(f"podiam-{OTHER}"))
    other_iam.create_role(RoleName="pi-target", AssumeRolePolicyDocument=target_trust("not-the-external-id"))
    assert eks_auth_error(server, env["node"], pod_token(server, "xacct", "sa")) == "AccessDeniedException"
    other_iam.update_assume_role_policy(RoleName="pi-target", PolicyDocument=target_trust(ext))
    r = eks_auth(server, env["node"], pod_token(server, "xacct", "sa", pod="x-pod"))
    assert re.fullmatch(rf"arn:aws:sts::{OTHER}:assumed-role/pi-target/eks-{CLUSTER}-x-pod-[0-9a-f-]{{36}}",
                        r["assumedRoleUser"]["arn"]), r
    assert caller_arn(server, r) == r["assumedRoleUser"]["arn"]
    # a chained session lasts at most an hour
    exp = r["credentials"]["expiration"]
    assert isinstance(exp, int) and time.time() + 3500 < exp <= time.time() + 3601, exp
    # without the first role's permission to assume the target, the chain breaks
    server.client("iam").delete_role_policy(RoleName="pi-first", PolicyName="p")
    assert eks_auth_error(server, env["node"], pod_token(server, "xacct", "sa")) == "AccessDeniedException"
