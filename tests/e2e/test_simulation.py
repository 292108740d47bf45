"""IAM policy simulation from the AWS CLI (`simulate-custom-policy`, `simulate-principal-policy`),
session revocation and `podiam explain` against a running server."""

from __future__ import annotations

import json

from podiam_e2e import ACCOUNT

DOC = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
    {"Effect": "Deny", "Action": "s3:DeleteBucket", "Resource": "*",
     "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}},
]}


def decisions(out: dict) -> list[tuple[str, str]]:
    return [(r["EvalActionName"], r["EvalDecision"]) for r in out["EvaluationResults"]]


def test_simulate_custom_policy(server):
    out = server.aws("iam", "simulate-custom-policy", "--policy-input-list", json.dumps(DOC),
                     "--action-names", "s3:GetObject", "s3:DeleteBucket", "iam:GetRole",
                     "--context-entries", "ContextKeyName=aws:SourceIp,ContextKeyValues=10.1.2.3,ContextKeyType=ip")
    assert decisions(out) == [("s3:GetObject", "allowed"), ("s3:DeleteBucket", "explicitDeny"),
                              ("iam:GetRole", "implicitDeny")]
    deny = out["EvaluationResults"][1]["MatchedStatements"][0]
    assert deny["SourcePolicyId"] == "PolicyInputList.1"
    assert deny["StartPosition"]["Line"] == 1


def test_simulate_custom_policy_reports_missing_context(server):
    out = server.aws("iam", "simulate-custom-policy", "--policy-input-list", json.dumps(DOC),
                     "--action-names", "s3:DeleteBucket")
    r = out["EvaluationResults"][0]
    assert r["EvalDecision"] == "allowed"
    assert r["MissingContextValues"] == ["aws:SourceIp"]


def test_simulate_custom_policy_rejects_malformed_policy(server):
    rc, _, err = server.aws_rc("iam", "simulate-custom-policy", "--policy-input-list", '{"Version":"2012-10-17"',
                               "--action-names", "s3:GetObject")
    assert rc != 0 and "MalformedPolicyDocument" in err


def test_simulate_principal_policy(server):
    server.aws("iam", "create-user", "--user-name", "sim-user")
    server.aws("iam", "put-user-policy", "--user-name", "sim-user", "--policy-name", "read-roles", "--policy-document",
               json.dumps({"Version": "2012-10-17", "Statement": [
                   {"Sid": "ReadRoles", "Effect": "Allow", "Action": "iam:GetRole", "Resource": "*"}]}))
    out = server.aws("iam", "simulate-principal-policy", "--policy-source-arn", f"arn:aws:iam::{ACCOUNT}:user/sim-user",
                     "--action-names", "iam:GetRole", "iam:DeleteRole")
    assert decisions(out) == [("iam:GetRole", "allowed"), ("iam:DeleteRole", "implicitDeny")]
    assert out["EvaluationResults"][0]["MatchedStatements"][0]["SourcePolicyId"] == "read-roles"
    rc, _, err = server.aws_rc("iam", "simulate-principal-policy", "--policy-source-arn",
                               f"arn:aws:iam::{ACCOUNT}:user/nobody", "--action-names", "iam:GetRole")
    assert rc != 0 and "NoSuchEntity" in err
