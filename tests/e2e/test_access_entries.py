"""EKS access entries through the real AWS CLI (and boto3 where the HTTP status is checked): the
whole access-entry API, access policies and their scopes, the cluster's `accessConfig`
(authentication modes, the creator's bootstrap entry, UpdateClusterConfig), pagination, tags, the
documented error codes with their statuses, IAM authorization with EKS's condition keys, and no
write on a refused request."""

from __future__ import annotations

import json
import re

import pytest
from botocore.exceptions import ClientError

from podiam_e2e import ACCOUNT, REGION, AwsCliError, allow, client_error

CLUSTER = "ae"
POLICY = "arn:aws:eks::aws:cluster-access-policy/"
VIEW, EDIT, ADMIN, CLUSTER_ADMIN = (POLICY + n for n in (
    "AmazonEKSViewPolicy", "AmazonEKSEditPolicy", "AmazonEKSAdminPolicy", "AmazonEKSClusterAdminPolicy"))
EC2_TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


def role(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/{name}"


def cli_code(server, *args: str, env: dict | None = None) -> str | None:
    with pytest.raises(AwsCliError) as e:
        server.aws(*args, env=env)
    return e.value.code


def user_keys(server, name: str, policy: str) -> dict:
    iam = server.client("iam")
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=policy)
    k = iam.create_access_key(UserName=name)["AccessKey"]
    return {"AccessKeyId": k["AccessKeyId"], "SecretAccessKey": k["SecretAccessKey"]}


def make_cluster(server, name: str, *access: str, env: dict | None = None) -> dict:
    args = ["eks", "create-cluster", "--name", name, "--role-arn", role("eks"),
            "--resources-vpc-config", "subnetIds=s"]
    if access:
        args += ["--access-config", ",".join(access)]
    return server.aws(*args, env=env)["cluster"]


def entries(server, cluster: str = CLUSTER, *extra: str) -> list[str]:
    return server.aws("eks", "list-access-entries", "--cluster-name", cluster, *extra)["accessEntries"]


@pytest.fixture(scope="module")
def env(server):
    iam = server.client("iam")
    for name in ("eks", "dev", "ops", "node", "win", "page-0", "page-1", "page-2", "page-3", "page-4"):
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=EC2_TRUST)
    iam.create_role(RoleName="pathed", Path="/team/", AssumeRolePolicyDocument=EC2_TRUST)
    iam.create_user(UserName="alice")
    make_cluster(server, CLUSTER, "authenticationMode=API_AND_CONFIG_MAP")
    return {}


# ------------------------------------------------------------------------------ the API


def test_entry_lifecycle_with_the_cli(server, env):
    e = server.aws("eks", "create-access-entry", "--cluster-name", CLUSTER, "--principal-arn", role("dev"),
                   "--kubernetes-groups", "devs", "qa", "--tags", "team=a")["accessEntry"]
    assert re.fullmatch(rf"arn:aws:eks:{REGION}:{ACCOUNT}:access-entry/{CLUSTER}/role/{ACCOUNT}/dev/"
                        r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", e["accessEntryArn"]), e
    assert (e["clusterName"], e["principalArn"], e["type"]) == (CLUSTER, role("dev"), "STANDARD")
    assert e["username"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/dev/{{{{SessionName}}}}"
    assert e["kubernetesGroups"] == ["devs", "qa"] and e["tags"] == {"team": "a"}
    assert isinstance(e["createdAt"], float) and e["createdAt"] == e["modifiedAt"]
    d = server.aws("eks", "describe-access-entry", "--cluster-name", CLUSTER, "--principal-arn", role("dev"))
    assert d["accessEntry"] == e
    assert role("dev") in entries(server)
    u = server.aws("eks", "update-access-entry", "--cluster-name", CLUSTER, "--principal-arn", role("dev"),
                   "--kubernetes-groups", "ops", "--username", "dev-{{SessionName}}")["accessEntry"]
    assert (u["kubernetesGroups"], u["username"]) == (["ops"], "dev-{{SessionName}}")
    assert u["createdAt"] == e["createdAt"] and u["modifiedAt"] >= e["modifiedAt"]
    assert u["accessEntryArn"] == e["accessEntryArn"]
    assert server.aws("eks", "delete-access-entry", "--cluster-name", CLUSTER, "--principal-arn", role("dev")) == {}
    assert role("dev") not in entries(server)
    assert cli_code(server, "eks", "describe-access-entry", "--cluster-name", CLUSTER,
                    "--principal-arn", role("dev")) == "ResourceNotFoundException"


def test_users_paths_and_node_types(server, env):
    alice = f"arn:aws:iam::{ACCOUNT}:user/alice"
    a = server.aws("eks", "create-access-entry", "--cluster-name", CLUSTER, "--principal-arn", alice)["accessEntry"]
    assert a["username"] == alice and a["kubernetesGroups"] == []
    assert f":access-entry/{CLUSTER}/user/{ACCOUNT}/alice/" in a["accessEntryArn"]
    pathed = f"arn:aws:iam::{ACCOUNT}:role/team/pathed"
    p = server.aws("eks", "create-access-entry", "--cluster-name", CLUSTER, "--principal-arn", pathed)["accessEntry"]
    assert p["principalArn"] == pathed and f"/role/{ACCOUNT}/pathed/" in p["accessEntryArn"]
    n = server.aws("eks", "create-access-entry", "--cluster-name", CLUSTER, "--principal-arn", role("node"),
                   "--type", "EC2_LINUX")["accessEntry"]
    assert (n["type"], n["username"], n["kubernetesGroups"]) == (
        "EC2_LINUX", "system:node:{{EC2PrivateDNSName}}", ["system:nodes"])
    w = server.aws("eks", "create-access-entry", "--cluster-name", CLUSTER, "--principal-arn", role("win"),
                   "--type", "EC2_WINDOWS")["accessEntry"]
    assert w["kubernetesGroups"] == ["system:nodes", "eks:kube-proxy-windows"]


def test_access_policies_and_scopes(server, env):
    pols = server.aws("eks", "list-access-policies")["accessPolicies"]
    by_name = {p["name"]: p["arn"] for p in pols}
    for name, arn in [("AmazonEKSClusterAdminPolicy", CLUSTER_ADMIN), ("AmazonEKSAdminPolicy", ADMIN),
                      ("AmazonEKSEditPolicy", EDIT), ("AmazonEKSViewPolicy", VIEW)]:
        assert by_name[name] == arn
    server.aws("eks", "create-access-entry", "--cluster-name", CLUSTER, "--principal-arn", role("ops"))
    r = server.aws("eks", "associate-access-policy", "--cluster-name", CLUSTER, "--principal-arn", role("ops"),
                   "--policy-arn", VIEW, "--access-scope", "type=namespace,namespaces=team-b,team-a")
    assert (r["clusterName"], r["principalArn"]) == (CLUSTER, role("ops"))
    a = r["associatedAccessPolicy"]
    assert a["policyArn"] == VIEW and a["accessScope"] == {"type": "namespace", "namespaces": ["team-a", "team-b"]}
    # Associating the same policy again replaces its scope; associatedAt stays.
    b = server.aws("eks", "associate-access-policy", "--cluster-name", CLUSTER, "--principal-arn", role("ops"),
                   "--policy-arn", VIEW, "--access-scope", "type=cluster")["associatedAccessPolicy"]
    assert b["accessScope"] == {"type": "cluster"} and b["associatedAt"] == a["associatedAt"]
    server.aws("eks", "associate-access-policy", "--cluster-name", CLUSTER, "--principal-arn", role("ops"),
               "--policy-arn", EDIT, "--access-scope", "type=cluster")
    listed = server.aws("eks", "list-associated-access-policies", "--cluster-name", CLUSTER,
                        "--principal-arn", role("ops"))
    assert (listed["clusterName"], listed["principalArn"]) == (CLUSTER, role("ops"))
    assert [p["policyArn"] for p in listed["associatedAccessPolicies"]] == [EDIT, VIEW]
    # The associatedPolicyArn filter.
    assert entries(server, CLUSTER, "--associated-policy-arn", EDIT) == [role("ops")]
    assert server.aws("eks", "disassociate-access-policy", "--cluster-name", CLUSTER, "--principal-arn", role("ops"),
                      "--policy-arn", EDIT) == {}
    assert entries(server, CLUSTER, "--associated-policy-arn", EDIT) == []
    assert entries(server, CLUSTER, "--associated-policy-arn", VIEW) == [role("ops")]
    assert cli_code(server, "eks", "disassociate-access-policy", "--cluster-name", CLUSTER, "--principal-arn",
                    role("ops"), "--policy-arn", EDIT) == "ResourceNotFoundException"


def test_pagination_cli_and_raw(server, env):
    make_cluster(server, "ae-page", "authenticationMode=API")
    arns = [role(f"page-{i}") for i in range(5)]
    for a in arns:
        server.aws("eks", "create-access-entry", "--cluster-name", "ae-page", "--principal-arn", a)
        server.aws("eks", "associate-access-policy", "--cluster-name", "ae-page", "--principal-arn", a,
                   "--policy-arn", VIEW, "--access-scope", "type=cluster")
    # The CLI pages through everything by itself, and by --max-items / --starting-token.
    assert entries(server, "ae-page") == sorted(arns)
    first = server.aws("eks", "list-access-entries", "--cluster-name", "ae-page", "--max-items", "2")
    assert first["accessEntries"] == sorted(arns)[:2] and first["NextToken"]
    rest = server.aws("eks", "list-access-entries", "--cluster-name", "ae-page", "--starting-token",
                      first["NextToken"])
    assert rest["accessEntries"] == sorted(arns)[2:]
    # Raw maxResults / nextToken.
    eks = server.client("eks")
    seen, token, pages = [], None, 0
    while True:
        r = eks.list_access_entries(clusterName="ae-page", maxResults=2, **({"nextToken": token} if token else {}))
        pages += 1
        seen += r["accessEntries"]
        token = r.get("nextToken")
        if not token:
            break
    assert pages == 3 and seen == sorted(arns)
    r = eks.list_access_entries(clusterName="ae-page", associatedPolicyArn=VIEW, maxResults=4)
    assert len(r["accessEntries"]) == 4 and r["nextToken"]
    p1 = eks.list_access_policies(maxResults=1)
    p2 = eks.list_access_policies(maxResults=1, nextToken=p1["nextToken"])
    assert p1["accessPolicies"] != p2["accessPolicies"]
    assert len(server.aws("eks", "list-access-policies", "--max-items", "1")["accessPolicies"]) == 1
    server.aws("eks", "associate-access-policy", "--cluster-name", "ae-page", "--principal-arn", arns[0],
               "--policy-arn", EDIT, "--access-scope", "type=cluster")
    a1 = eks.list_associated_access_policies(clusterName="ae-page", principalArn=arns[0], maxResults=1)
    a2 = eks.list_associated_access_policies(clusterName="ae-page", principalArn=arns[0], maxResults=1,
                                             nextToken=a1["nextToken"])
    assert [p["policyArn"] for p in a1["associatedAccessPolicies"] + a2["associatedAccessPolicies"]] == [EDIT, VIEW]
    assert "nextToken" not in a2


def test_tags_on_the_entry_arn(server, env):
    e = server.aws("eks", "create-access-entry", "--cluster-name", "ae-page", "--principal-arn", role("dev"),
                   "--tags", "a=1")["accessEntry"]
    arn = e["accessEntryArn"]
    server.aws("eks", "tag-resource", "--resource-arn", arn, "--tags", "b=2")
    assert server.aws("eks", "list-tags-for-resource", "--resource-arn", arn)["tags"] == {"a": "1", "b": "2"}
    server.aws("eks", "untag-resource", "--resource-arn", arn, "--tag-keys", "a")
    d = server.aws("eks", "describe-access-entry", "--cluster-name", "ae-page", "--principal-arn", role("dev"))
    assert d["accessEntry"]["tags"] == {"b": "2"}
    missing = arn[:-36] + "00000000-0000-4000-8000-000000000000"
    assert cli_code(server, "eks", "list-tags-for-resource", "--resource-arn", missing) == "NotFoundException"


# ------------------------------------------------------------------------------ accessConfig


def test_authentication_modes_are_one_way(server, env):
    c = make_cluster(server, "ae-cm")
    assert c["accessConfig"] == {"bootstrapClusterCreatorAdminPermissions": True, "authenticationMode": "CONFIG_MAP"}
    eks = server.client("eks")
    for call in (lambda: eks.create_access_entry(clusterName="ae-cm", principalArn=role("dev")),
                 lambda: eks.list_access_entries(clusterName="ae-cm"),
                 lambda: eks.describe_access_entry(clusterName="ae-cm", principalArn=role("dev"))):
        with pytest.raises(ClientError) as e:
            call()
        assert client_error(e.value) == (400, "InvalidRequestException")
    assert cli_code(server, "eks", "update-cluster-config", "--name", "ae-cm", "--access-config",
                    "authenticationMode=API") == "InvalidParameterException"
    u = server.aws("eks", "update-cluster-config", "--name", "ae-cm", "--access-config",
                   "authenticationMode=API_AND_CONFIG_MAP")["update"]
    assert (u["status"], u["type"], u["params"]) == (
        "Successful", "AccessConfigUpdate", [{"type": "AuthenticationMode", "value": "API_AND_CONFIG_MAP"}])
    assert server.aws("eks", "describe-cluster", "--name", "ae-cm")["cluster"]["accessConfig"]["authenticationMode"] \
        == "API_AND_CONFIG_MAP"
    for back in ("CONFIG_MAP", "API_AND_CONFIG_MAP"):
        with pytest.raises(ClientError) as e:
            eks.update_cluster_config(name="ae-cm", accessConfig={"authenticationMode": back})
        assert client_error(e.value) == (400, "InvalidParameterException")
    server.aws("eks", "update-cluster-config", "--name", "ae-cm", "--access-config", "authenticationMode=API")
    with pytest.raises(ClientError) as e:
        eks.update_cluster_config(name="ae-cm", accessConfig={"authenticationMode": "API_AND_CONFIG_MAP"})
    assert client_error(e.value) == (400, "InvalidParameterException")
    with pytest.raises(ClientError) as e:
        eks.update_cluster_config(name="no-such", accessConfig={"authenticationMode": "API"})
    assert client_error(e.value) == (404, "ResourceNotFoundException")
    # A cluster without the access-entry API cannot skip its creator's admin rights.
    with pytest.raises(ClientError) as e:
        eks.create_cluster(name="ae-nob", roleArn=role("eks"), resourcesVpcConfig={"subnetIds": ["s"]},
                           accessConfig={"bootstrapClusterCreatorAdminPermissions": False})
    assert client_error(e.value) == (400, "InvalidParameterException")
    assert "ae-nob" not in eks.list_clusters()["clusters"]


def test_creator_bootstrap_and_cluster_deletion(server, env):
    keys = user_keys(server, "creator", allow(["eks:*", "iam:PassRole"]))
    as_creator = server.creds_env(keys)
    me = f"arn:aws:iam::{ACCOUNT}:user/creator"
    make_cluster(server, "ae-boot", "authenticationMode=API", env=as_creator)
    assert entries(server, "ae-boot", "--associated-policy-arn", CLUSTER_ADMIN) == [me]
    pols = server.aws("eks", "list-associated-access-policies", "--cluster-name", "ae-boot", "--principal-arn", me)
    assert [(p["policyArn"], p["accessScope"]) for p in pols["associatedAccessPolicies"]] == \
        [(CLUSTER_ADMIN, {"type": "cluster"})]
    make_cluster(server, "ae-noboot", "authenticationMode=API", "bootstrapClusterCreatorAdminPermissions=false",
                 env=as_creator)
    assert entries(server, "ae-noboot") == []
    # Created in CONFIG_MAP mode, the creator's entry comes when the API is turned on.
    make_cluster(server, "ae-later", env=as_creator)
    server.aws("eks", "update-cluster-config", "--name", "ae-later", "--access-config",
               "authenticationMode=API_AND_CONFIG_MAP", env=as_creator)
    assert entries(server, "ae-later") == [me]
    # Deleting a cluster deletes its entries: a new cluster of the same name starts empty.
    server.aws("eks", "delete-cluster", "--name", "ae-boot")
    make_cluster(server, "ae-boot", "authenticationMode=API")
    assert entries(server, "ae-boot") == []


# ------------------------------------------------------------------------------ errors


def test_duplicate_and_missing(server, env):
    eks = server.client("eks")
    eks.create_access_entry(clusterName="ae-noboot", principalArn=role("dev"), clientRequestToken="t-1")
    again = eks.create_access_entry(clusterName="ae-noboot", principalArn=role("dev"), clientRequestToken="t-1")
    assert again["accessEntry"]["principalArn"] == role("dev")  # the same request, retried
    with pytest.raises(ClientError) as e:
        eks.create_access_entry(clusterName="ae-noboot", principalArn=role("dev"))
    assert client_error(e.value) == (409, "ResourceInUseException")
    for call in (lambda: eks.describe_access_entry(clusterName="ae-noboot", principalArn=role("ops")),
                 lambda: eks.update_access_entry(clusterName="ae-noboot", principalArn=role("ops"), username="x"),
                 lambda: eks.delete_access_entry(clusterName="ae-noboot", principalArn=role("ops")),
                 lambda: eks.list_associated_access_policies(clusterName="ae-noboot", principalArn=role("ops")),
                 lambda: eks.associate_access_policy(clusterName="ae-noboot", principalArn=role("ops"),
                                                     policyArn=VIEW, accessScope={"type": "cluster"}),
                 lambda: eks.list_access_entries(clusterName="no-such-cluster"),
                 lambda: eks.create_access_entry(clusterName="no-such-cluster", principalArn=role("dev"))):
        with pytest.raises(ClientError) as e:
            call()
        assert client_error(e.value) == (404, "ResourceNotFoundException"), e.value.response


BAD_CREATES = [
    {"kubernetesGroups": ["system:masters"]},
    {"type": "EC2_LINUX", "kubernetesGroups": ["g"]},
    {"type": "EC2_LINUX", "username": "n"},
    {"type": "FARGATE_LINUX", "principalArn": f"arn:aws:iam::{ACCOUNT}:user/alice"},
    {"type": "WINDOWS_95"},
    {"username": "system:admin"},
    {"username": "x-{{Unknown}}"},
    {"principalArn": role("does-not-exist")},
    {"principalArn": "arn:aws:iam::444455556666:role/dev"},
    {"principalArn": f"arn:aws:sts::{ACCOUNT}:assumed-role/dev/s"},
    {"principalArn": f"arn:aws:iam::{ACCOUNT}:root"},
    {"principalArn": "not-an-arn"},
    {"tags": {"aws:reserved": "x"}},
]


def test_create_refuses_bad_input(server, env):
    eks = server.client("eks")
    before = eks.list_access_entries(clusterName=CLUSTER)["accessEntries"]
    for kw in BAD_CREATES:
        with pytest.raises(ClientError) as e:
            eks.create_access_entry(**{"clusterName": CLUSTER, "principalArn": role("eks"), **kw})
        assert client_error(e.value) == (400, "InvalidParameterException"), (kw, e.value.response)
        assert e.value.response["Error"]["Message"]
    assert eks.list_access_entries(clusterName=CLUSTER)["accessEntries"] == before
    # The CLI shows the same code.
    assert cli_code(server, "eks", "create-access-entry", "--cluster-name", CLUSTER, "--principal-arn", role("eks"),
                    "--kubernetes-groups", "system:masters") == "InvalidParameterException"


def test_policy_and_update_errors(server, env):
    eks = server.client("eks")
    cases = [
        dict(principalArn=role("ops"), policyArn=POLICY + "NoSuchPolicy", accessScope={"type": "cluster"}),
        dict(principalArn=role("ops"), policyArn=VIEW, accessScope={"type": "namespace"}),
        dict(principalArn=role("ops"), policyArn=VIEW, accessScope={"type": "namespace", "namespaces": ["Bad_NS"]}),
        dict(principalArn=role("ops"), policyArn=VIEW, accessScope={"type": "cluster", "namespaces": ["a"]}),
        dict(principalArn=role("ops"), policyArn=VIEW, accessScope={"type": "galaxy"}),
        dict(principalArn=role("node"), policyArn=VIEW, accessScope={"type": "cluster"}),  # a node entry
    ]
    def associated():
        return eks.list_associated_access_policies(clusterName=CLUSTER, principalArn=role("ops"))[
            "associatedAccessPolicies"]

    before = associated()
    for kw in cases:
        with pytest.raises(ClientError) as e:
            eks.associate_access_policy(clusterName=CLUSTER, **kw)
        assert client_error(e.value) == (400, "InvalidParameterException"), kw
    assert associated() == before
    node = eks.describe_access_entry(clusterName=CLUSTER, principalArn=role("node"))["accessEntry"]
    for kw in ({"kubernetesGroups": ["g"]}, {"username": "n"}):
        with pytest.raises(ClientError) as e:
            eks.update_access_entry(clusterName=CLUSTER, principalArn=role("node"), **kw)
        assert client_error(e.value) == (400, "InvalidParameterException")
    with pytest.raises(ClientError) as e:
        eks.update_access_entry(clusterName=CLUSTER, principalArn=role("ops"), kubernetesGroups=["system:nodes"])
    assert client_error(e.value) == (400, "InvalidParameterException")
    assert eks.describe_access_entry(clusterName=CLUSTER, principalArn=role("node"))["accessEntry"] == node
    for kw in ({"maxResults": 0}, {"maxResults": 101}, {"nextToken": "not-a-token"},
               {"associatedPolicyArn": POLICY + "Nope"}):
        with pytest.raises(ClientError) as e:
            eks.list_access_entries(clusterName=CLUSTER, **kw)
        assert client_error(e.value) == (400, "InvalidParameterException"), kw
    with pytest.raises(ClientError) as e:
        eks.update_cluster_config(name=CLUSTER, logging={"clusterLogging": []})
    assert client_error(e.value) == (400, "InvalidParameterException")
    with pytest.raises(ClientError) as e:  # no role or user ARN names an entry
        eks.describe_access_entry(clusterName=CLUSTER, principalArn="not-an-arn")
    assert client_error(e.value) == (400, "InvalidParameterException")


# ------------------------------------------------------------------------------ authorization


def test_describe_only_user_cannot_write(server, env):
    keys = user_keys(server, "reader", allow(["eks:DescribeAccessEntry", "eks:ListAccessEntries"]))
    reader = server.creds_env(keys)
    assert role("ops") in server.aws("eks", "list-access-entries", "--cluster-name", CLUSTER, env=reader)["accessEntries"]
    server.aws("eks", "describe-access-entry", "--cluster-name", CLUSTER, "--principal-arn", role("ops"), env=reader)
    before = entries(server)
    eks = server.client("eks", keys)
    writes = [
        lambda: eks.create_access_entry(clusterName=CLUSTER, principalArn=role("eks")),
        lambda: eks.update_access_entry(clusterName=CLUSTER, principalArn=role("ops"), username="x"),
        lambda: eks.delete_access_entry(clusterName=CLUSTER, principalArn=role("ops")),
        lambda: eks.associate_access_policy(clusterName=CLUSTER, principalArn=role("ops"), policyArn=ADMIN,
                                            accessScope={"type": "cluster"}),
        lambda: eks.disassociate_access_policy(clusterName=CLUSTER, principalArn=role("ops"), policyArn=VIEW),
        lambda: eks.list_associated_access_policies(clusterName=CLUSTER, principalArn=role("ops")),
        lambda: eks.list_access_policies(),
        lambda: eks.update_cluster_config(name=CLUSTER, accessConfig={"authenticationMode": "API"}),
    ]
    for call in writes:
        with pytest.raises(ClientError) as e:
            call()
        assert client_error(e.value) == (403, "AccessDeniedException")
    assert cli_code(server, "eks", "create-access-entry", "--cluster-name", CLUSTER, "--principal-arn",
                    role("eks"), env=reader) == "AccessDeniedException"
    assert entries(server) == before
    d = server.aws("eks", "describe-access-entry", "--cluster-name", CLUSTER, "--principal-arn", role("ops"))
    assert [p["policyArn"] for p in server.aws("eks", "list-associated-access-policies", "--cluster-name", CLUSTER,
                                               "--principal-arn", role("ops"))["associatedAccessPolicies"]] == [VIEW]
    assert d["accessEntry"]["username"] != "x"


def test_condition_keys(server, env):
    policy = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "eks:CreateAccessEntry", "Resource": "*", "Condition": {
            "StringEquals": {"eks:accessEntryType": "STANDARD"},
            "ArnLike": {"eks:principalArn": f"arn:aws:iam::{ACCOUNT}:role/page-*"},
            "ForAllValues:StringEquals": {"eks:kubernetesGroups": ["viewers"]}}},
        {"Effect": "Allow", "Action": ["eks:AssociateAccessPolicy", "eks:DisassociateAccessPolicy"],
         "Resource": f"arn:aws:eks:{REGION}:{ACCOUNT}:access-entry/ae-cond/role/{ACCOUNT}/page-*",
         "Condition": {"StringEquals": {"eks:policyArn": VIEW, "eks:accessScope": "namespace"},
                       "ForAllValues:StringEquals": {"eks:namespaces": ["team-a", "team-b"]}}},
        {"Effect": "Allow", "Action": "eks:UpdateClusterConfig", "Resource": "*",
         "Condition": {"StringEquals": {"eks:authenticationMode": "API_AND_CONFIG_MAP"}}},
    ]})
    keys = user_keys(server, "scoped", policy)
    eks = server.client("eks", keys)
    make_cluster(server, "ae-cond")
    with pytest.raises(ClientError) as e:  # the condition on eks:authenticationMode
        eks.update_cluster_config(name="ae-cond", accessConfig={"authenticationMode": "API"})
    assert client_error(e.value) == (403, "AccessDeniedException")
    eks.update_cluster_config(name="ae-cond", accessConfig={"authenticationMode": "API_AND_CONFIG_MAP"})
    denied_creates = [
        {"principalArn": role("page-0"), "type": "EC2_LINUX"},
        {"principalArn": role("dev")},
        {"principalArn": role("page-0"), "kubernetesGroups": ["viewers", "admins"]},
    ]
    for kw in denied_creates:
        with pytest.raises(ClientError) as e:
            eks.create_access_entry(clusterName="ae-cond", **kw)
        assert client_error(e.value) == (403, "AccessDeniedException"), kw
    assert entries(server, "ae-cond") == []
    eks.create_access_entry(clusterName="ae-cond", principalArn=role("page-0"), kubernetesGroups=["viewers"])
    denied_scopes = [
        (EDIT, {"type": "namespace", "namespaces": ["team-a"]}),
        (VIEW, {"type": "cluster"}),
        (VIEW, {"type": "namespace", "namespaces": ["team-a", "kube-system"]}),
    ]
    for policy_arn, scope in denied_scopes:
        with pytest.raises(ClientError) as e:
            eks.associate_access_policy(clusterName="ae-cond", principalArn=role("page-0"), policyArn=policy_arn,
                                        accessScope=scope)
        assert client_error(e.value) == (403, "AccessDeniedException"), (policy_arn, scope)
    root = server.client("eks")
    assert root.list_associated_access_policies(clusterName="ae-cond", principalArn=role("page-0"))[
        "associatedAccessPolicies"] == []
    eks.associate_access_policy(clusterName="ae-cond", principalArn=role("page-0"), policyArn=VIEW,
                                accessScope={"type": "namespace", "namespaces": ["team-a"]})
    # Disassociating is judged on the stored scope: once widened to the cluster, out of reach.
    root.associate_access_policy(clusterName="ae-cond", principalArn=role("page-0"), policyArn=VIEW,
                                 accessScope={"type": "cluster"})
    with pytest.raises(ClientError) as e:
        eks.disassociate_access_policy(clusterName="ae-cond", principalArn=role("page-0"), policyArn=VIEW)
    assert client_error(e.value) == (403, "AccessDeniedException")
    left = root.list_associated_access_policies(clusterName="ae-cond", principalArn=role("page-0"))
    assert [p["accessScope"] for p in left["associatedAccessPolicies"]] == [{"type": "cluster"}]
    root.associate_access_policy(clusterName="ae-cond", principalArn=role("page-0"), policyArn=VIEW,
                                 accessScope={"type": "namespace", "namespaces": ["team-b"]})
    eks.disassociate_access_policy(clusterName="ae-cond", principalArn=role("page-0"), policyArn=VIEW)
    left = root.list_associated_access_policies(clusterName="ae-cond", principalArn=role("page-0"))
    assert left["associatedAccessPolicies"] == []


# ------------------------------------------------------------------------------ pattern entries (podiam)

SSO_PATH = "aws-reserved/sso.amazonaws.com"


@pytest.fixture(scope="module")
def pat(server, env):
    """A cluster of its own for the pattern entries, so the snapshots above are untouched."""
    make_cluster(server, "ae-pat", "authenticationMode=API")
    return "ae-pat"


def test_pattern_entry_lifecycle_with_the_cli(server, pat):
    # No role named team-* exists: a pattern needs none. The CLI puts `*` and `/` in the URL path.
    for arn in (role("team-*"), role(f"{SSO_PATH}/AWSReservedSSO_Admin_*"), role("t?am-ops-*")):
        e = server.aws("eks", "create-access-entry", "--cluster-name", pat, "--principal-arn", arn,
                       "--kubernetes-groups", "team")["accessEntry"]
        name = arn.rsplit("/", 1)[1]
        assert re.fullmatch(rf"arn:aws:eks:{REGION}:{ACCOUNT}:access-entry/{pat}/role/{ACCOUNT}/{re.escape(name)}/"
                            r"[0-9a-f-]{36}", e["accessEntryArn"]), e
        assert e["principalArn"] == arn and e["type"] == "STANDARD"
        assert e["username"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/{{{{RoleName}}}}/{{{{SessionName}}}}"
        d = server.aws("eks", "describe-access-entry", "--cluster-name", pat, "--principal-arn", arn)
        assert d["accessEntry"] == e
    assert sorted(entries(server, pat)) == sorted(
        [role("team-*"), role(f"{SSO_PATH}/AWSReservedSSO_Admin_*"), role("t?am-ops-*")])
    # Paging over pattern keys: one at a time, all of them, in order.
    seen, token = [], None
    while True:
        page = server.client("eks").list_access_entries(clusterName=pat, maxResults=1,
                                                         **({"nextToken": token} if token else {}))
        seen += page["accessEntries"]
        token = page.get("nextToken")
        if not token:
            break
    assert seen == sorted(seen) and len(seen) == 3
    u = server.aws("eks", "update-access-entry", "--cluster-name", pat, "--principal-arn", role("team-*"),
                   "--username", "team:{{SessionTag:team}}:{{SessionName}}")["accessEntry"]
    assert u["username"] == "team:{{SessionTag:team}}:{{SessionName}}"
    server.aws("eks", "associate-access-policy", "--cluster-name", pat, "--principal-arn", role("team-*"),
               "--policy-arn", VIEW, "--access-scope", "type=namespace,namespaces=team")
    listed = server.aws("eks", "list-associated-access-policies", "--cluster-name", pat,
                        "--principal-arn", role("team-*"))
    assert listed["principalArn"] == role("team-*")
    assert [p["policyArn"] for p in listed["associatedAccessPolicies"]] == [VIEW]
    assert entries(server, pat, "--associated-policy-arn", VIEW) == [role("team-*")]
    server.aws("eks", "disassociate-access-policy", "--cluster-name", pat, "--principal-arn", role("team-*"),
               "--policy-arn", VIEW)
    server.aws("eks", "delete-access-entry", "--cluster-name", pat, "--principal-arn", role("t?am-ops-*"))
    assert cli_code(server, "eks", "describe-access-entry", "--cluster-name", pat,
                    "--principal-arn", role("t?am-ops-*")) == "ResourceNotFoundException"


BAD_PATTERNS = [
    ({"principalArn": role("*")}, "every role"),
    ({"principalArn": role("?x")}, "every role"),
    ({"principalArn": f"arn:aws:iam::{ACCOUNT}:user/dev-*"}, "only role names"),
    ({"principalArn": "arn:aws:iam::*:role/dev-*"}, "outside the role name"),
    ({"principalArn": role("team*/dev")}, "outside the role name"),
    ({"principalArn": role("node-*"), "type": "EC2_LINUX"}, "must name one role"),
    ({"principalArn": role("node-*"), "type": "HYBRID_LINUX"}, "must name one role"),
    ({"principalArn": "arn:aws:iam::444455556666:role/dev-*"}, "cluster's account"),
    ({"principalArn": role("dev-*"), "username": "u:{{SessionTag:}}"}, "tag key"),
    ({"principalArn": role("dev-*"), "username": "u:{{SessionTags:team}}"}, "not a template"),
    ({"principalArn": role("dev-*"), "username": "u:{{SessionTag:team}"}, "without }}"),
    ({"principalArn": role("dev-*"), "username": "{{EC2PrivateDNSName}}"}, "node types only"),
]


def test_pattern_entries_refuse_bad_patterns_and_templates(server, pat):
    eks = server.client("eks")
    before = entries(server, pat)
    for kw, why in BAD_PATTERNS:
        with pytest.raises(ClientError) as e:
            eks.create_access_entry(**{"clusterName": pat, **kw})
        assert client_error(e.value) == (400, "InvalidParameterException"), (kw, e.value.response)
        assert why in e.value.response["Error"]["Message"], (kw, e.value.response)
    assert entries(server, pat) == before
    assert cli_code(server, "eks", "create-access-entry", "--cluster-name", pat,
                    "--principal-arn", role("*")) == "InvalidParameterException"
    for username in ("{{SessionTag:}}", "{{Nope}}", "x}}"):
        assert cli_code(server, "eks", "update-access-entry", "--cluster-name", pat, "--principal-arn",
                        role("team-*"), "--username", username) == "InvalidParameterException", username


def test_overlapping_patterns_conflict(server, pat):
    eks = server.client("eks")
    before = entries(server, pat)
    # team-* exists: as specific (prefix "team-") and able to match the same names.
    for arn in (role("team-?b*"), role("team-*x"), role("team-*")):
        with pytest.raises(ClientError) as e:
            eks.create_access_entry(clusterName=pat, principalArn=arn)
        assert client_error(e.value) == (409, "ResourceInUseException"), arn
        assert role("team-*") in e.value.response["Error"]["Message"], e.value.response
    assert entries(server, pat) == before
    eks.create_access_entry(clusterName=pat, principalArn=role("team-b*"))  # more specific: fine
    eks.delete_access_entry(clusterName=pat, principalArn=role("team-b*"))


def test_iam_sees_the_pattern_as_text(server, pat):
    # A grant on one role's entries does not reach the pattern entry; a Deny on `${*}` keeps a
    # principal from making pattern entries at all.
    keys = user_keys(server, "pat-admin", json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "eks:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "eks:DescribeAccessEntry",
         "Resource": f"arn:aws:eks:{REGION}:{ACCOUNT}:access-entry/{pat}/role/{ACCOUNT}/team-${{*}}/*"},
        {"Effect": "Deny", "Action": "eks:CreateAccessEntry", "Resource": "*",
         "Condition": {"StringLike": {"eks:principalArn": ["*${*}*", "*${?}*"]}}}]}))
    eks = server.client("eks", keys)
    with pytest.raises(ClientError) as e:
        eks.describe_access_entry(clusterName=pat, principalArn=role("team-*"))
    assert client_error(e.value) == (403, "AccessDeniedException")
    eks.describe_access_entry(clusterName=pat, principalArn=role(f"{SSO_PATH}/AWSReservedSSO_Admin_*"))
    for arn in (role("ops-*"), role("ops-?")):
        with pytest.raises(ClientError) as e:
            eks.create_access_entry(clusterName=pat, principalArn=arn)
        assert client_error(e.value) == (403, "AccessDeniedException"), arn
    eks.create_access_entry(clusterName=pat, principalArn=role("ops"))
