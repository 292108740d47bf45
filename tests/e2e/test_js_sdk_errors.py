"""EKS errors as the AWS SDK for JavaScript v3 (`@aws-sdk/client-eks`, pinned in
tests/e2e/js/package-lock.json, installed by scripts/jsenv.sh) classifies them: a rejected key or
signature must reach it under EKS's names (`UnrecognizedClientException`,
`InvalidSignatureException`), not the query protocol's, and modeled errors must be instances of
the client's exception classes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from podiam_e2e import ACCOUNT, REGION, clean_env, remember_secrets, require

JS = Path(__file__).parent / "js"
CLUSTER = "jserr"


@pytest.fixture(scope="module")
def node() -> str:
    node = shutil.which("node")
    ready = node and (JS / "node_modules" / "@aws-sdk" / "client-eks").is_dir()
    require(ready, "node or tests/e2e/js/node_modules missing: run scripts/jsenv.sh")
    return node


def run_cases(node: str, server, cases: list[dict]) -> dict[str, dict]:
    arg = json.dumps({"endpoint": server.endpoint, "region": REGION, "cases": cases})
    p = subprocess.run([node, str(JS / "eks_errors.mjs"), arg], cwd=JS, capture_output=True, text=True,
                       timeout=60, env=clean_env(AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull), stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stderr
    remember_secrets(p.stdout)
    return {r["id"]: r for r in map(json.loads, p.stdout.splitlines())}


def test_eks_errors_reach_the_js_sdk_under_eks_names(server, node):
    eks, iam = server.client("eks"), server.client("iam")
    eks.create_cluster(name=CLUSTER, roleArn=f"arn:aws:iam::{ACCOUNT}:role/eks", resourcesVpcConfig={"subnetIds": ["s"]})
    iam.create_user(UserName="js-nobody")
    nobody = iam.create_access_key(UserName="js-nobody")["AccessKey"]
    root = server.root_keys()

    def case(id_: str, key: str, secret: str, cluster: str = CLUSTER) -> dict:
        return {"id": id_, "accessKeyId": key, "secretAccessKey": secret, "cluster": cluster}

    out = run_cases(node, server, [
        case("unknown key", "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        case("wrong secret", root["AccessKeyId"], "x" * 40),
        case("not allowed", nobody["AccessKeyId"], nobody["SecretAccessKey"]),
        case("no cluster", root["AccessKeyId"], root["SecretAccessKey"], "no-such-cluster"),
        case("allowed", root["AccessKeyId"], root["SecretAccessKey"]),
    ])

    def got(id_: str) -> tuple:
        r = out[id_]
        return (r["name"], r["status"], r["fault"], r["serviceException"], r["instanceOf"])

    # The front door's errors are no model's: the SDK keeps the header's name on its base class.
    assert got("unknown key") == ("UnrecognizedClientException", 403, "client", True, []), out["unknown key"]
    assert out["unknown key"]["message"] == "The security token included in the request is invalid."
    assert got("wrong secret") == ("InvalidSignatureException", 403, "client", True, []), out["wrong secret"]
    assert out["wrong secret"]["message"].startswith("The request signature we calculated does not match")
    assert got("not allowed") == ("AccessDeniedException", 403, "client", True, ["AccessDeniedException"]), out["not allowed"]
    assert out["not allowed"]["message"].startswith("User: arn:aws:iam::111122223333:user/js-nobody is not authorized")
    assert got("no cluster") == ("ResourceNotFoundException", 404, "client", True, ["ResourceNotFoundException"]), out["no cluster"]
    assert out["allowed"] == {"id": "allowed", "ok": True}
