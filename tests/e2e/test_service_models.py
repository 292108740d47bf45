"""Input validation and output shapes checked against AWS's own service models.

botocore ships the models of IAM, STS, EKS and EKS Auth. For every operation podiam serves (an
explicit list, checked against what the server answers), every top-level input member with a
modeled constraint (string length, integer range, pattern, enum; a list's or map's length and its
members' or keys' constraints) is sent once per constraint with a value that breaks exactly that
constraint, and must be refused with the modeled error: `ValidationError` (400) naming the member
for IAM and STS, `InvalidParameterException` (400) for EKS and EKS Auth. The requests of write
operations are otherwise valid, and the state read back afterwards is unchanged: no refused
request wrote anything. Then one successful call per cheap operation must carry every output
member the model marks as required.
"""

from __future__ import annotations

import glob
import html
import gzip
import json
import re
from pathlib import Path
from urllib.parse import urlencode

import botocore
import botocore.auth
import botocore.awsrequest
import botocore.credentials
import pytest
import requests
from botocore.exceptions import ClientError
from podiam_e2e import ACCOUNT, REGION, allow, principal_trust

DATA = Path(botocore.__file__).parent / "data"

SERVED = {
    "sts": ["AssumeRole", "AssumeRoleWithWebIdentity", "GetAccessKeyInfo", "GetCallerIdentity"],
    "iam": [
        "AddClientIDToOpenIDConnectProvider", "AttachRolePolicy", "AttachUserPolicy", "CreateAccessKey",
        "CreateOpenIDConnectProvider", "CreatePolicy", "CreatePolicyVersion", "CreateRole", "CreateUser",
        "DeleteAccessKey", "DeleteOpenIDConnectProvider", "DeletePolicy", "DeleteRole",
        "DeleteRolePermissionsBoundary", "DeleteRolePolicy", "DeleteUser", "DeleteUserPermissionsBoundary",
        "DeleteUserPolicy", "DetachRolePolicy", "DetachUserPolicy", "GetOpenIDConnectProvider", "GetPolicy",
        "GetPolicyVersion", "GetRole", "GetRolePolicy", "GetUser", "GetUserPolicy", "ListAccessKeys",
        "ListAttachedRolePolicies", "ListAttachedUserPolicies", "ListOpenIDConnectProviderTags",
        "ListOpenIDConnectProviders", "ListPolicies", "ListRolePolicies", "ListRoleTags", "ListRoles",
        "ListUserPolicies", "ListUsers", "PutRolePermissionsBoundary", "PutRolePolicy",
        "PutUserPermissionsBoundary", "PutUserPolicy", "RemoveClientIDFromOpenIDConnectProvider",
        "SimulateCustomPolicy", "SimulatePrincipalPolicy", "TagOpenIDConnectProvider", "TagRole",
        "UntagOpenIDConnectProvider", "UntagRole", "UpdateAssumeRolePolicy",
        "UpdateOpenIDConnectProviderThumbprint", "UpdateRole", "UpdateRoleDescription",
    ],
    "eks": [
        "AssociateAccessPolicy", "CreateAccessEntry", "CreateCluster", "CreatePodIdentityAssociation",
        "DeleteAccessEntry", "DeleteCluster", "DeletePodIdentityAssociation", "DescribeAccessEntry",
        "DescribeCluster", "DescribePodIdentityAssociation", "DisassociateAccessPolicy", "ListAccessEntries",
        "ListAccessPolicies", "ListAssociatedAccessPolicies", "ListClusters", "ListPodIdentityAssociations",
        "ListTagsForResource", "TagResource", "UntagResource", "UpdateAccessEntry", "UpdateClusterConfig",
        "UpdatePodIdentityAssociation",
    ],
    "eks-auth": ["AssumeRoleForPodIdentity"],
}
QUERY = {"iam": "2010-05-08", "sts": "2011-06-15"}
NOT_SERVED = {"InvalidAction", "UnknownOperationException"}

# Constraints that cannot be broken on the wire, with the reason.
SKIPPED = {
    ("eks-auth", "AssumeRoleForPodIdentity", "clusterName", "min"):
        "an empty URI label leaves a path that names no operation",
    ("eks", "UntagResource", "tagKeys", "min"):
        "an empty query-string list is not sent at all (the SDK drops it)",
}
# Patterns a value cannot be derived to break (none so far: every model pattern is a character
# class or a short sequence of them, broken by a character outside every class).
UNINVERTIBLE_PATTERNS: dict[str, str] = {}

# Characters tried, in order, to break a pattern: the first that the pattern refuses is used.
BREAKERS = ["\u0001", "\u0100", "!", "#", " ", "\ufffd"]

CLUSTER = "mdlc"
ROLE = "mdl-role"
USER = "mdl-user"


def load(service: str) -> dict:
    [path] = glob.glob(str(DATA / service / "*" / "service-2.json*"))
    with (gzip.open(path) if path.endswith(".gz") else open(path, "rb")) as f:
        return json.load(f)


MODELS = {s: load(s) for s in SERVED}


def lower_first(s: str) -> str:
    return s[:1].lower() + s[1:]


def py_pattern(p: str) -> str:
    """An AWS (Java) pattern as a Python `re` pattern, close enough to judge the breakers: Java's
    `\\w` and `\\d` are ASCII, `\\u10000` means U+10000, and Python has no `\\p{..}` classes."""
    p = re.sub(r"\\u([0-9A-Fa-f]{5,6})", lambda m: "\\U%08X" % int(m.group(1), 16), p)
    p = p.replace("\\w", "A-Za-z0-9_")
    p = p.replace("\\p{L}", "A-Za-z\u00aa-\u02ff").replace("\\p{N}", "0-9").replace("\\p{Z}", " \u00a0")
    # INVARIANT: the models use `\w` and `\d` only inside a character class, where a bare range
    # stands for them.
    return p.replace("\\d", "0-9")


def pattern_breaker(pattern: str, min_len: int, max_len: int | None) -> str | None:
    rx = re.compile(py_pattern(pattern))
    n = max(min_len, 1)
    if max_len is not None and n > max_len:
        return None
    for c in BREAKERS:
        v = c * n
        if not rx.fullmatch(v):
            return v
    return None


def constraint_cases(c: dict, type_: str):
    """(constraint, bad value, message fragment) for one shape's constraints."""
    mn, mx = c.get("min"), c.get("max")
    if type_ in ("integer", "long"):
        if mn is not None:
            yield "min", mn - 1, f"Member must have value greater than or equal to {mn}"
        if mx is not None:
            yield "max", mx + 1, f"Member must have value less than or equal to {mx}"
        return
    if mn:
        yield "min", "a" * (mn - 1), f"Member must have length greater than or equal to {mn}"
    if mx is not None:
        yield "max", "a" * (mx + 1), f"Member must have length less than or equal to {mx}"
    if "enum" in c:
        yield "enum", "NotAModeledValue", "Member must satisfy enum value set"
    if "pattern" in c:
        v = pattern_breaker(c["pattern"], mn or 0, mx)
        if v is None:
            assert c["pattern"] in UNINVERTIBLE_PATTERNS, f"no value breaks {c['pattern']!r}"
        else:
            yield "pattern", v, "Member must satisfy regular expression pattern"


def cases():
    """Every (service, op, member, constraint, where, bad value, message fragment)."""
    for service, ops in SERVED.items():
        m = MODELS[service]
        shapes = m["shapes"]
        for op in ops:
            o = m["operations"][op]
            if "input" not in o:
                continue
            for name, ref in shapes[o["input"]["shape"]]["members"].items():
                shape = shapes[ref["shape"]]
                t = shape["type"]
                own = {k: shape[k] for k in ("min", "max", "pattern", "enum") if k in shape}
                if t in ("string", "integer", "long"):
                    for kind, v, frag in constraint_cases(own, t):
                        yield service, op, name, ref, kind, ("value", v), frag
                elif t in ("list", "map"):
                    if own.get("min"):
                        yield service, op, name, ref, "min", ("count", own["min"] - 1), \
                            f"Member must have length greater than or equal to {own['min']}"
                    if "max" in own:
                        yield service, op, name, ref, "max", ("count", own["max"] + 1), \
                            f"Member must have length less than or equal to {own['max']}"
                    inner_ref = shape["member"] if t == "list" else shape["key"]
                    inner = shapes[inner_ref["shape"]]
                    if inner["type"] == "string":
                        ic = {k: inner[k] for k in ("min", "max", "pattern", "enum") if k in inner}
                        for kind, v, frag in constraint_cases(ic, "string"):
                            yield service, op, name, ref, f"member {kind}", ("item", v), frag


ALL_CASES = list(cases())


def case_id(c) -> str:
    return f"{c[0]}:{c[1]}.{c[2]}:{c[4]}"


# ------------------------------------------------------------------------------------- wire


def query_call(server, service: str, action: str, params: dict[str, str]) -> requests.Response:
    """One SigV4-signed query-protocol POST as root (raw, so any value reaches the server)."""
    body = urlencode({"Action": action, "Version": QUERY[service], **params})
    headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    req = botocore.awsrequest.AWSRequest("POST", server.endpoint + "/", data=body, headers=headers)
    k = server.root_keys()
    botocore.auth.SigV4Auth(botocore.credentials.Credentials(k["AccessKeyId"], k["SecretAccessKey"]),
                            service, REGION).add_auth(req)
    return requests.post(server.endpoint + "/", data=body.encode(), headers=dict(req.headers), timeout=30)


def xml_field(text: str, tag: str) -> str | None:
    m = re.search(rf"<{tag}>(.*?)</{tag}>", text, re.S)
    return html.unescape(m.group(1)) if m else None


def query_value(name: str, item_type: str | None, where: str, v) -> dict[str, str]:
    """`name` as query parameters holding the violating `v`."""
    if where == "value":
        return {name: str(v)}
    if where == "item":
        return {f"{name}.member.1": v}
    if v == 0:
        return {name: ""}
    if item_type == "structure":
        out = {}
        for i in range(1, v + 1):
            out[f"{name}.member.{i}.Key"] = f"k{i}"
            out[f"{name}.member.{i}.Value"] = "v"
        return out
    return {f"{name}.member.{i}": f"item{i}" for i in range(1, v + 1)}


def rest_value(shape: dict, item_type: str | None, where: str, v):
    if where == "value":
        return v
    if where == "item":
        return [v] if shape["type"] == "list" else {v: "x"}
    if shape["type"] == "map":
        return {f"k{i}": "v" for i in range(v)}
    return [{} if item_type == "structure" else f"item{i}" for i in range(v)]


# ------------------------------------------------------------------------------------ state


@pytest.fixture(scope="module")
def world(server):
    """A role, a user, a managed policy and a cluster for the otherwise-valid requests."""
    iam, eks = server.client("iam"), server.client("eks")
    trust = principal_trust({"AWS": f"arn:aws:iam::{ACCOUNT}:root"})
    iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=trust)
    iam.create_user(UserName=USER)
    pol = iam.create_policy(PolicyName="mdl-pol", PolicyDocument=allow("s3:GetObject"))["Policy"]["Arn"]
    eks.create_cluster(name=CLUSTER, roleArn=f"arn:aws:iam::{ACCOUNT}:role/eks",
                       resourcesVpcConfig={"subnetIds": ["s"]},
                       accessConfig={"authenticationMode": "API_AND_CONFIG_MAP"})
    cluster_arn = eks.describe_cluster(name=CLUSTER)["cluster"]["arn"]
    role_arn = f"arn:aws:iam::{ACCOUNT}:role/{ROLE}"
    doc = allow("s3:GetObject")
    base = {
        ("iam", "CreateRole"): {"RoleName": "mdl-new-role", "AssumeRolePolicyDocument": trust},
        ("iam", "CreateUser"): {"UserName": "mdl-new-user"},
        ("iam", "CreatePolicy"): {"PolicyName": "mdl-new-pol", "PolicyDocument": doc},
        ("iam", "CreatePolicyVersion"): {"PolicyArn": pol, "PolicyDocument": doc},
        ("iam", "CreateOpenIDConnectProvider"): {"Url": "https://mdl.example.com",
                                                 "ClientIDList.member.1": "sts.amazonaws.com",
                                                 "ThumbprintList.member.1": "a" * 40},
        ("iam", "CreateAccessKey"): {"UserName": USER},
        ("iam", "PutRolePolicy"): {"RoleName": ROLE, "PolicyName": "mdl-inline", "PolicyDocument": doc},
        ("iam", "PutUserPolicy"): {"UserName": USER, "PolicyName": "mdl-inline", "PolicyDocument": doc},
        ("iam", "AttachRolePolicy"): {"RoleName": ROLE, "PolicyArn": pol},
        ("iam", "AttachUserPolicy"): {"UserName": USER, "PolicyArn": pol},
        ("iam", "TagRole"): {"RoleName": ROLE, "Tags.member.1.Key": "k", "Tags.member.1.Value": "v"},
        ("iam", "UpdateRole"): {"RoleName": ROLE, "Description": "changed"},
        ("iam", "UpdateRoleDescription"): {"RoleName": ROLE, "Description": "changed"},
        ("iam", "UpdateAssumeRolePolicy"): {"RoleName": ROLE, "PolicyDocument": trust},
        ("iam", "PutRolePermissionsBoundary"): {"RoleName": ROLE, "PermissionsBoundary": pol},
        ("iam", "PutUserPermissionsBoundary"): {"UserName": USER, "PermissionsBoundary": pol},
        ("iam", "DeleteRole"): {"RoleName": ROLE},
        ("iam", "DeleteUser"): {"UserName": USER},
        ("iam", "DeletePolicy"): {"PolicyArn": pol},
        ("sts", "AssumeRole"): {"RoleArn": role_arn, "RoleSessionName": "mdl"},
        ("sts", "AssumeRoleWithWebIdentity"): {"RoleArn": role_arn, "RoleSessionName": "mdl",
                                               "WebIdentityToken": "e30.e30.c2ln"},
        ("eks", "CreateCluster"): {"name": "mdl-new-cluster", "roleArn": role_arn,
                                   "resourcesVpcConfig": {"subnetIds": ["s"]}},
        ("eks", "DeleteCluster"): {"name": CLUSTER},
        ("eks", "CreatePodIdentityAssociation"): {"clusterName": CLUSTER, "namespace": "ns",
                                                  "serviceAccount": "sa", "roleArn": role_arn},
        ("eks", "CreateAccessEntry"): {"clusterName": CLUSTER, "principalArn": role_arn},
        ("eks", "TagResource"): {"resourceArn": cluster_arn, "tags": {"k": "v"}},
        ("eks", "UntagResource"): {"resourceArn": cluster_arn, "tagKeys": ["k"]},
    }
    return {"base": base, "policy_arn": pol, "role_arn": role_arn, "cluster_arn": cluster_arn}


def snapshot(server) -> dict:
    """Everything a refused write could have changed."""
    iam, eks = server.client("iam"), server.client("eks")
    roles = {r["RoleName"]: (r.get("Description"), r["MaxSessionDuration"], r.get("PermissionsBoundary"),
                             json.dumps(r["AssumeRolePolicyDocument"], sort_keys=True))
             for r in iam.list_roles()["Roles"]}
    out = {
        "roles": roles,
        "role_tags": iam.list_role_tags(RoleName=ROLE)["Tags"],
        "role_inline": iam.list_role_policies(RoleName=ROLE)["PolicyNames"],
        "role_attached": iam.list_attached_role_policies(RoleName=ROLE)["AttachedPolicies"],
        "users": sorted((u["UserName"], str(u.get("PermissionsBoundary"))) for u in iam.list_users()["Users"]),
        "user_inline": iam.list_user_policies(UserName=USER)["PolicyNames"],
        "user_attached": iam.list_attached_user_policies(UserName=USER)["AttachedPolicies"],
        "user_keys": len(iam.list_access_keys(UserName=USER)["AccessKeyMetadata"]),
        "policies": sorted((p["PolicyName"], p["DefaultVersionId"]) for p in iam.list_policies(Scope="Local")["Policies"]),
        "providers": iam.list_open_id_connect_providers()["OpenIDConnectProviderList"],
        "clusters": sorted(eks.list_clusters()["clusters"]),
        "cluster_tags": eks.describe_cluster(name=CLUSTER)["cluster"].get("tags"),
        "associations": eks.list_pod_identity_associations(clusterName=CLUSTER)["associations"],
        "access_entries": eks.list_access_entries(clusterName=CLUSTER)["accessEntries"],
    }
    return out


# ------------------------------------------------------------------------------------ tests


def probe(server, service: str, op: str):
    """Call `op` with nothing but placeholder URI labels; the error code, or None on success."""
    if service in QUERY:
        r = query_call(server, service, op, {})
        return xml_field(r.text, "Code") if r.status_code != 200 else None
    m = MODELS[service]
    shapes = m["shapes"]
    o = m["operations"][op]
    params = {}
    if "input" in o:
        for name, ref in shapes[o["input"]["shape"]]["members"].items():
            if ref.get("location") == "uri":
                params[name] = "mdl-probe-nonexistent"
    client = server.client(service, config_kw={"inject_host_prefix": False})
    try:
        getattr(client, botocore.xform_name(op))(**params)
    except ClientError as e:
        return e.response["Error"]["Code"]
    return None


def test_served_operations_match_the_server(server):
    """The explicit list of served operations is exactly what the server answers."""
    mismatches = []
    for service, ops in SERVED.items():
        assert set(ops) <= set(MODELS[service]["operations"]), service
        for op in MODELS[service]["operations"]:
            code = probe(server, service, op)
            served = code not in NOT_SERVED
            if served != (op in ops):
                mismatches.append((service, op, code))
    assert not mismatches, mismatches


def test_every_modeled_constraint_is_enforced(server, world):
    before = snapshot(server)
    failures, checked, skipped = [], 0, []
    for c in ALL_CASES:
        service, op, name, ref, kind, (where, v), frag = c
        if (service, op, name, kind) in SKIPPED:
            skipped.append(case_id(c))
            continue
        shapes = MODELS[service]["shapes"]
        shape = shapes[ref["shape"]]
        item_type = shapes[shape["member"]["shape"]]["type"] if shape["type"] == "list" else None
        checked += 1
        base = dict(world["base"].get((service, op), {}))
        if service in QUERY:
            wire = ref.get("locationName", name)
            params = {k: val for k, val in base.items() if k != wire and not k.startswith(wire + ".")}
            params.update(query_value(wire, item_type, where, v))
            r = query_call(server, service, op, params)
            code, msg = xml_field(r.text, "Code"), xml_field(r.text, "Message") or ""
            want_code, member = "ValidationError", lower_first(wire)
            status = r.status_code
        else:
            params = dict(base)
            for lname, lref in shapes[MODELS[service]["operations"][op]["input"]["shape"]]["members"].items():
                if lref.get("location") == "uri":
                    params.setdefault(lname, CLUSTER if lname in ("name", "clusterName") else "mdl-probe")
            params[name] = rest_value(shape, item_type, where, v)
            client = server.client(service, config_kw={"inject_host_prefix": False})
            try:
                getattr(client, botocore.xform_name(op))(**params)
                code, msg, status = None, "", 200
            except ClientError as e:
                code, msg = e.response["Error"]["Code"], e.response["Error"].get("Message", "")
                status = e.response["ResponseMetadata"]["HTTPStatusCode"]
            want_code, member = "InvalidParameterException", name
        ok = (status == 400 and code == want_code and f"at '{member}' failed to satisfy constraint" in msg
              and frag in msg and msg.startswith("1 validation error detected: Value "))
        if not ok:
            failures.append(f"{case_id(c)}: {status} {code} {msg[:160]!r}")
    assert not failures, f"{len(failures)} of {checked} constraints not enforced:\n" + "\n".join(failures)
    assert checked > 150, checked
    assert sorted(skipped) == sorted(f"{s}:{o}.{m}:{k}" for (s, o, m, k) in SKIPPED), skipped
    assert snapshot(server) == before, "a refused request changed state"


# ------------------------------------------------------------------------------ output shapes


def missing_required(shapes: dict, shape_name: str, value, path: str = "") -> list[str]:
    shape = shapes[shape_name]
    out = []
    if shape["type"] == "structure" and isinstance(value, dict):
        for r in shape.get("required", []):
            if r not in value:
                out.append(f"{path}{r}")
        for k, ref in shape["members"].items():
            if k in value:
                out += missing_required(shapes, ref["shape"], value[k], f"{path}{k}.")
    elif shape["type"] == "list" and isinstance(value, list):
        for i, item in enumerate(value):
            out += missing_required(shapes, shape["member"]["shape"], item, f"{path}{i}.")
    elif shape["type"] == "map" and isinstance(value, dict):
        for k, item in value.items():
            out += missing_required(shapes, shape["value"]["shape"], item, f"{path}{k}.")
    return out


def test_required_output_members_are_present(server, world):
    iam, sts, eks = server.client("iam"), server.client("sts"), server.client("eks")
    pol = world["policy_arn"]
    iam.put_role_policy(RoleName=ROLE, PolicyName="out", PolicyDocument=allow("s3:GetObject"))
    iam.put_user_policy(UserName=USER, PolicyName="out", PolicyDocument=allow("sts:AssumeRole"))
    k = iam.create_access_key(UserName=USER)["AccessKey"]
    user_sts = server.client("sts", {"AccessKeyId": k["AccessKeyId"], "SecretAccessKey": k["SecretAccessKey"]})
    iam.attach_role_policy(RoleName=ROLE, PolicyArn=pol)
    iam.attach_user_policy(UserName=USER, PolicyArn=pol)
    iam.tag_role(RoleName=ROLE, Tags=[{"Key": "k", "Value": "v"}])
    cluster = server.irsa("mdl-out", "mdl-irsa")
    a = eks.create_pod_identity_association(clusterName=CLUSTER, namespace="out", serviceAccount="sa",
                                            roleArn=world["role_arn"])["association"]
    calls = [
        ("sts", "GetCallerIdentity", lambda: sts.get_caller_identity()),
        ("sts", "AssumeRole", lambda: user_sts.assume_role(RoleArn=world["role_arn"], RoleSessionName="out")),
        ("sts", "GetAccessKeyInfo", lambda: sts.get_access_key_info(AccessKeyId=server.root_keys()["AccessKeyId"])),
        ("sts", "AssumeRoleWithWebIdentity", lambda: sts.assume_role_with_web_identity(
            RoleArn=cluster["role_arn"], RoleSessionName="out", WebIdentityToken=server.token("mdl-out"))),
        ("iam", "CreateRole", lambda: iam.create_role(RoleName="mdl-out-role",
                                                      AssumeRolePolicyDocument=principal_trust({"AWS": ACCOUNT}))),
        ("iam", "GetRole", lambda: iam.get_role(RoleName=ROLE)),
        ("iam", "ListRoles", lambda: iam.list_roles()),
        ("iam", "UpdateRoleDescription", lambda: iam.update_role_description(RoleName="mdl-out-role", Description="d")),
        ("iam", "ListRoleTags", lambda: iam.list_role_tags(RoleName=ROLE)),
        ("iam", "ListRolePolicies", lambda: iam.list_role_policies(RoleName=ROLE)),
        ("iam", "GetRolePolicy", lambda: iam.get_role_policy(RoleName=ROLE, PolicyName="out")),
        ("iam", "ListAttachedRolePolicies", lambda: iam.list_attached_role_policies(RoleName=ROLE)),
        ("iam", "CreateUser", lambda: iam.create_user(UserName="mdl-out-user")),
        ("iam", "GetUser", lambda: iam.get_user(UserName=USER)),
        ("iam", "ListUsers", lambda: iam.list_users()),
        ("iam", "ListUserPolicies", lambda: iam.list_user_policies(UserName=USER)),
        ("iam", "GetUserPolicy", lambda: iam.get_user_policy(UserName=USER, PolicyName="out")),
        ("iam", "ListAttachedUserPolicies", lambda: iam.list_attached_user_policies(UserName=USER)),
        ("iam", "CreateAccessKey", lambda: iam.create_access_key(UserName="mdl-out-user")),
        ("iam", "ListAccessKeys", lambda: iam.list_access_keys(UserName="mdl-out-user")),
        ("iam", "CreatePolicy", lambda: iam.create_policy(PolicyName="mdl-out-pol", PolicyDocument=allow("s3:*"))),
        ("iam", "GetPolicy", lambda: iam.get_policy(PolicyArn=pol)),
        ("iam", "ListPolicies", lambda: iam.list_policies(Scope="Local")),
        ("iam", "CreatePolicyVersion", lambda: iam.create_policy_version(PolicyArn=pol, PolicyDocument=allow("s3:*"))),
        ("iam", "GetPolicyVersion", lambda: iam.get_policy_version(PolicyArn=pol, VersionId="v1")),
        ("iam", "CreateOpenIDConnectProvider", lambda: iam.create_open_id_connect_provider(
            Url="https://mdl-out.example.com", ClientIDList=["a"], ThumbprintList=["a" * 40])),
        ("iam", "GetOpenIDConnectProvider", lambda: iam.get_open_id_connect_provider(
            OpenIDConnectProviderArn=cluster["provider_arn"])),
        ("iam", "ListOpenIDConnectProviders", lambda: iam.list_open_id_connect_providers()),
        ("iam", "ListOpenIDConnectProviderTags", lambda: iam.list_open_id_connect_provider_tags(
            OpenIDConnectProviderArn=cluster["provider_arn"])),
        ("iam", "SimulatePrincipalPolicy", lambda: iam.simulate_principal_policy(
            PolicySourceArn=world["role_arn"], ActionNames=["s3:GetObject"])),
        ("iam", "SimulateCustomPolicy", lambda: iam.simulate_custom_policy(
            PolicyInputList=[allow("s3:GetObject")], ActionNames=["s3:GetObject"])),
        ("eks", "DescribeCluster", lambda: eks.describe_cluster(name=CLUSTER)),
        ("eks", "ListClusters", lambda: eks.list_clusters()),
        ("eks", "DescribePodIdentityAssociation", lambda: eks.describe_pod_identity_association(
            clusterName=CLUSTER, associationId=a["associationId"])),
        ("eks", "ListPodIdentityAssociations", lambda: eks.list_pod_identity_associations(clusterName=CLUSTER)),
        ("eks", "UpdatePodIdentityAssociation", lambda: eks.update_pod_identity_association(
            clusterName=CLUSTER, associationId=a["associationId"], roleArn=world["role_arn"])),
        ("eks", "ListTagsForResource", lambda: eks.list_tags_for_resource(resourceArn=world["cluster_arn"])),
        ("eks", "DeletePodIdentityAssociation", lambda: eks.delete_pod_identity_association(
            clusterName=CLUSTER, associationId=a["associationId"])),
        ("eks", "ListAccessPolicies", lambda: eks.list_access_policies()),
        ("eks", "CreateAccessEntry", lambda: eks.create_access_entry(clusterName=CLUSTER,
                                                                     principalArn=world["role_arn"])),
        ("eks", "DescribeAccessEntry", lambda: eks.describe_access_entry(clusterName=CLUSTER,
                                                                         principalArn=world["role_arn"])),
        ("eks", "UpdateAccessEntry", lambda: eks.update_access_entry(clusterName=CLUSTER,
                                                                     principalArn=world["role_arn"],
                                                                     kubernetesGroups=["g"])),
        ("eks", "AssociateAccessPolicy", lambda: eks.associate_access_policy(
            clusterName=CLUSTER, principalArn=world["role_arn"],
            policyArn="arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy", accessScope={"type": "cluster"})),
        ("eks", "ListAssociatedAccessPolicies", lambda: eks.list_associated_access_policies(
            clusterName=CLUSTER, principalArn=world["role_arn"])),
        ("eks", "ListAccessEntries", lambda: eks.list_access_entries(clusterName=CLUSTER)),
        ("eks", "DisassociateAccessPolicy", lambda: eks.disassociate_access_policy(
            clusterName=CLUSTER, principalArn=world["role_arn"],
            policyArn="arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy")),
        ("eks", "DeleteAccessEntry", lambda: eks.delete_access_entry(clusterName=CLUSTER,
                                                                     principalArn=world["role_arn"])),
        ("eks", "UpdateClusterConfig", lambda: eks.update_cluster_config(
            name=CLUSTER, accessConfig={"authenticationMode": "API"})),
        ("eks", "CreateCluster", lambda: eks.create_cluster(name="mdl-out-2", roleArn=world["role_arn"],
                                                            resourcesVpcConfig={"subnetIds": ["s"]})),
        ("eks", "DeleteCluster", lambda: eks.delete_cluster(name="mdl-out-2")),
    ]
    missing = []
    outputs = {}
    for service, op, call in calls:
        out = call()
        outputs[op] = out
        m = MODELS[service]
        o = m["operations"][op]
        if "output" in o:
            missing += [f"{service}:{op}: {p}" for p in missing_required(m["shapes"], o["output"]["shape"], out)]
    assert not missing, missing
    # STS answers the ARN of the IAM OIDC provider that verified the token (not its `iss`).
    assert outputs["AssumeRoleWithWebIdentity"]["Provider"] == cluster["provider_arn"]
