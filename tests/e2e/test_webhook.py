"""The admission webhook end to end, IRSA flow: `podiam webhook` mutates a pod whose service
account maps to a role; the test projects the token the kubelet would (audience, expiration and
path from the injected volume, minted by the cluster's podiam issuer), then runs boto3 with
exactly the injected environment and gets the role's credentials. (The Pod Identity flow through
the webhook is in test_pod_identity_agent.py, where the node agent runs.)"""

from __future__ import annotations

import json
import os

import pytest

from podiam_e2e import ACCOUNT, irsa_trust, require
from webhook_e2e import Webhook, caller_arn_as_pod, env_of, pod, projected_token

CLUSTER = "hooked"


@pytest.fixture(scope="module")
def world(server, tmp_path_factory):
    eks, iam = server.client("eks"), server.client("iam")
    eks.create_cluster(name=CLUSTER, roleArn=f"arn:aws:iam::{ACCOUNT}:role/eks", resourcesVpcConfig={"subnetIds": ["s"]})
    issuer = eks.describe_cluster(name=CLUSTER)["cluster"]["identity"]["oidc"]["issuer"]
    hp = issuer.removeprefix("https://")
    iam.create_open_id_connect_provider(Url=issuer, ClientIDList=["sts.amazonaws.com"])
    iam.create_role(RoleName="hooked-app", AssumeRolePolicyDocument=json.dumps(irsa_trust(hp, "system:serviceaccount:shop:api")))
    work = tmp_path_factory.mktemp("webhook")
    sa_file = work / "sa.json"
    sa_file.write_text(json.dumps({"shop/api": {"RoleARN": f"arn:aws:iam::{ACCOUNT}:role/hooked-app",
                                                "Audience": "sts.amazonaws.com", "UseRegionalSTS": True,
                                                "TokenExpiration": 3600}}))
    hook = Webhook(work, ["--service-account-file", str(sa_file), "--default-region", "us-east-1",
                          "--inject-sts-endpoint", server.endpoint], server.env)
    yield {"hook": hook}
    assert hook.stop() == 0, hook.text()[-3000:]


def test_irsa_pod_gets_credentials_with_exactly_the_injected_environment(server, world, tmp_path):
    hook = world["hook"]
    mutated, patch = hook.mutate(pod("api-0", "shop", "api"))
    assert patch, "the pod was not mutated"
    env = env_of(mutated)
    assert env["AWS_ROLE_ARN"] == f"arn:aws:iam::{ACCOUNT}:role/hooked-app"
    assert env["AWS_STS_REGIONAL_ENDPOINTS"] == "regional" and env["AWS_REGION"] == "us-east-1"
    assert env["AWS_ENDPOINT_URL_STS"] == server.endpoint
    _, aud, exp = projected_token(mutated)
    assert aud == "sts.amazonaws.com" and exp == 3600
    require(os.geteuid() == 0, "writing the projected token under /var/run needs root")
    arn = caller_arn_as_pod(server, CLUSTER, mutated)
    assert arn.startswith(f"arn:aws:sts::{ACCOUNT}:assumed-role/hooked-app/botocore-session-"), arn


def test_pods_without_identity_and_mutated_pods_get_no_patch(server, world):
    hook = world["hook"]
    _, patch = hook.mutate(pod("other-0", "shop", "no-role"))
    assert patch == []
    mutated, patch = hook.mutate(pod("api-1", "shop", "api"))
    assert patch
    _, again = hook.mutate(mutated)
    assert again == [], "mutating an already-mutated pod changes nothing"


def test_opt_out_label_is_respected(server, world):
    hook = world["hook"]
    p = pod("api-2", "shop", "api")
    p["metadata"]["labels"] = {"eks.amazonaws.com/skip-pod-identity-webhook": "true"}
    _, patch = hook.mutate(p)
    assert patch == []
