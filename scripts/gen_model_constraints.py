#!/usr/bin/env python3
"""Generate crates/server/src/wire/model_table.rs: the modeled input constraints (length, value
range, pattern, enum) of every top-level input member of the operations podiam serves, and the
names of every input member (what an audit event records of a request), read from the AWS service
models that botocore ships.

    .venv/bin/python scripts/gen_model_constraints.py

The operation lists below must match what the server routes (tests/e2e/test_service_models.py
checks the same lists against a running server). Patterns are AWS's (Java) regular expressions;
each is kept verbatim for the error message and translated for Rust's `regex` where the dialects
differ (`\\w` and `\\d` are ASCII in Java, code points above U+FFFF, `-` after a class range).
"""

from __future__ import annotations

import glob
import gzip
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "crates/server/src/wire/model_table.rs"

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
SERVICE_VARIANT = {"sts": "Sts", "iam": "Iam", "eks": "Eks", "eks-auth": "EksAuth"}


def load(service: str, data: Path) -> dict:
    [path] = glob.glob(str(data / service / "*" / "service-2.json*"))
    with (gzip.open(path) if path.endswith(".gz") else open(path, "rb")) as f:
        return json.load(f)


def rust_pattern(p: str) -> str:
    """AWS's Java pattern as a Rust `regex` matching the whole value."""
    p = re.sub(r"\\u([0-9A-Fa-f]{5,6})", r"\\x{\1}", p)  # `\u10000` means U+10000 in these models
    out, in_class, prev_range = [], False, False
    i = 0
    while i < len(p):
        c = p[i]
        if c == "\\" and i + 1 < len(p):
            esc = p[i:i + 2]
            if esc in ("\\w", "\\d"):
                cls = "0-9A-Za-z_" if esc == "\\w" else "0-9"
                out.append(cls if in_class else f"[{cls}]")
                i += 2
                prev_range = False
                continue
            m = re.match(r"\\(u[0-9A-Fa-f]{4}|x\{[0-9A-Fa-f]+\}|p\{\w+\})", p[i:])
            tok = m.group(0) if m else esc
            out.append(tok)
            i += len(tok)
            prev_range = False
            continue
        if c == "[" and not in_class:
            in_class, prev_range = True, False
        elif c == "]" and in_class:
            in_class = False
        elif c == "-" and in_class:
            if prev_range:
                out.append("\\-")
                i += 1
                prev_range = False
                continue
            nxt = p[i + 1] if i + 1 < len(p) else "]"
            if nxt != "]" and out and out[-1] != "[":
                out.append("-")
                # the range's upper end follows; after it, a `-` is a literal in Java
                j = i + 1
                m = re.match(r"\\(u[0-9A-Fa-f]{4}|x\{[0-9A-Fa-f]+\})|.", p[j:])
                out.append(m.group(0))
                i = j + len(m.group(0))
                prev_range = True
                continue
        out.append(c)
        i += 1
        prev_range = False
    return "^(?:" + "".join(out) + ")$"


def constraints(shape: dict) -> dict:
    return {k: shape[k] for k in ("min", "max", "pattern", "enum") if k in shape}


def rs_str(s: str) -> str:
    """A Rust string literal (the models' names and patterns are ASCII; JSON escapes are Rust's)."""
    assert s.isascii() and "\\u" not in json.dumps(s).replace("\\\\", ""), s
    return json.dumps(s)


def rs_opt_num(v) -> str:
    return "None" if v is None else f"Some({int(v)})"


def rs_check(c: dict, kind: str) -> str:
    pat = c.get("pattern")
    enum = ", ".join(rs_str(e) for e in c.get("enum", []))
    return (f"Check {{ kind: Kind::{kind}, min: {rs_opt_num(c.get('min'))}, max: {rs_opt_num(c.get('max'))}, "
            f"pattern: {'None' if pat is None else 'Some(' + rs_str(pat) + ')'}, "
            f"regex: {'None' if pat is None else 'Some(' + rs_str(rust_pattern(pat)) + ')'}, "
            f"one_of: &[{enum}] }}")


KINDS = {"string": "Str", "integer": "Int", "long": "Int", "list": "List", "map": "Map"}

QUERY_SERVICES = {"sts", "iam"}


def query_paths(shapes: dict, ref: dict, prefix: str, depth: int = 0) -> list[str]:
    """Every query-protocol parameter name a member can be sent as, list indexes written `#`:
    `Tags.member.#.Key`, `Map.entry.#.key`."""
    shape = shapes[ref["shape"]]
    if depth > 6:
        return []
    if shape["type"] == "structure":
        out = []
        for mname, mref in sorted(shape["members"].items()):
            out += query_paths(shapes, mref, f"{prefix}.{mref.get('locationName', mname)}", depth + 1)
        return out
    if shape["type"] == "list":
        return query_paths(shapes, shape["member"], f"{prefix}.member.#", depth + 1)
    if shape["type"] == "map":
        return ([f"{prefix}.entry.#.key"]
                + query_paths(shapes, shape["value"], f"{prefix}.entry.#.value", depth + 1))
    return [prefix]


def main() -> None:
    data = Path(sys.argv[1]) if len(sys.argv) > 1 else next(
        (ROOT / ".venv/lib").glob("python3*/site-packages/botocore/data"))
    ops = []
    for service, names in SERVED.items():
        model = load(service, data)
        shapes = model["shapes"]
        for name in names:
            op = model["operations"][name]
            http = op.get("http", {})
            members = []
            inp = shapes[op["input"]["shape"]] if "input" in op else {"members": {}}
            if service in QUERY_SERVICES:
                inputs = [p for mname, ref in sorted(inp["members"].items())
                          for p in query_paths(shapes, ref, ref.get("locationName", mname))]
            else:
                # rest-json: the body's top-level members (labels and query strings travel
                # elsewhere).
                inputs = [ref.get("jsonName", mname) for mname, ref in sorted(inp["members"].items())
                          if "location" not in ref]
            for mname, ref in sorted(inp["members"].items()):
                shape = shapes[ref["shape"]]
                kind = KINDS.get(shape["type"])
                if kind is None:
                    continue
                own = constraints(shape)
                inner = None
                if shape["type"] == "list":
                    inner = constraints(shapes[shape["member"]["shape"]])
                elif shape["type"] == "map":
                    inner = constraints(shapes[shape["key"]["shape"]])
                if not own and not inner:
                    continue
                loc = {"uri": "Label", "querystring": "QueryString"}.get(ref.get("location"), "Body")
                wire = ref.get("locationName", mname)
                inner_rs = "None" if not inner else f"Some({rs_check(inner, 'Str')})"
                members.append(
                    f"        Member {{ name: {rs_str(mname)}, wire: {rs_str(wire)}, at: At::{loc}, "
                    f"check: {rs_check(own, kind)}, each: {inner_rs} }},")
            ops.append(
                f"    Operation {{ service: Service::{SERVICE_VARIANT[service]}, name: {rs_str(name)}, "
                f"method: {rs_str(http.get('method', 'POST'))}, uri: {rs_str(http.get('requestUri', '/'))}, members: &[\n"
                + "\n".join(members) + ("\n" if members else "") + "    ], inputs: &["
                + ", ".join(rs_str(i) for i in inputs) + "] },")
    text = (
        "//! GENERATED by scripts/gen_model_constraints.py from the AWS service models botocore ships\n"
        "//! (iam, sts, eks, eks-auth): the constrained top-level input members of every operation\n"
        "//! podiam serves, and the names of all its input members. Do not edit; regenerate.\n\n"
        "use super::model::{At, Check, Kind, Member, Operation, Service};\n\n"
        "/// Every served operation and its constrained input members.\n"
        "pub(crate) static OPERATIONS: &[Operation] = &[\n" + "\n".join(ops) + "\n];\n")
    OUT.write_text(text)
    print(f"wrote {OUT.relative_to(ROOT)}: {len(ops)} operations")


if __name__ == "__main__":
    main()
