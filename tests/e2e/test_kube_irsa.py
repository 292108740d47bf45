"""IRSA and EKS Pod Identity with tokens from a real kube-apiserver.

A cluster is created in podiam, `podiam issuer export` writes its signing key and prints the
kube-apiserver flags, and a real control plane (etcd + kube-apiserver from scripts/kube.sh, no
kubelet: pods stay Pending) starts with them. A ServiceAccount and a Pod are created through the
API with kubectl, and `kubectl create token` asks the TokenRequest API for a token bound to the
pod. boto3, through its default credential chain in a fresh process with only the pod's
environment, exchanges it for a role session; after `podiam issuer rotate`, a new export and an
apiserver restart, tokens signed before and after both work; and EKS Auth's
AssumeRoleForPodIdentity takes the pod-bound token and tags the session with the API's pod name
and uid.

Without the binaries or an apiserver that starts, the module skips (fails under CI=true)."""

from __future__ import annotations

import json
import re

import pytest
from botocore.exceptions import ClientError

import kube_e2e
from kube_e2e import ControlPlane, KubeUnavailable, kube_bin
from podiam_e2e import ACCOUNT, REGION, VENV_PYTHON, jwt_parts, require

CLUSTER = "kube-real"
NS = "shop"
SA = "checkout"
ROLE = "kube-irsa-role"
PI_AUD = "pods.eks.amazonaws.com"




@pytest.fixture(scope="module")
def irsa(server):
    """The cluster in podiam, its OIDC provider and a role trusting shop/checkout."""
    return server.irsa(CLUSTER, ROLE, sa=SA, ns=NS)


def export_flags(server, out_dir) -> list[str]:
    p = server.podiam("issuer", "export", "--cluster", CLUSTER, "--out-dir", str(out_dir))
    assert p.returncode == 0, p.stderr
    flags = p.stdout.split()
    assert all(f.startswith("--") for f in flags) and len(flags) == 4, p.stdout
    return flags


@pytest.fixture(scope="module")
def kube(server, irsa, tmp_path_factory, request):
    """kube-apiserver signing service-account tokens with the cluster's hosted-issuer key."""
    try:
        bin_dir = kube_bin()
    except KubeUnavailable as e:
        require(False, f"the Kubernetes control plane is unavailable: {e}")
    base = tmp_path_factory.mktemp("kube")
    cp = ControlPlane(base / "cp", bin_dir)
    try:
        cp.start(export_flags(server, base / "issuer-1"))
    except KubeUnavailable as e:
        cp.stop()
        require(False, f"the Kubernetes control plane is unavailable: {e}")
    cp.export_base = base
    yield cp
    if request.session.testsfailed:
        print(f"\n--- kube-apiserver log (tail) ---\n{cp.log('kube-apiserver')[-4000:]}")
    cp.stop()


@pytest.fixture(scope="module")
def pod(kube):
    """Namespace shop, ServiceAccount checkout and a Pod running as it, created through the API."""
    kube.kubectl("create", "namespace", NS)
    kube.kubectl("create", "serviceaccount", SA, "-n", NS)
    return kube.apply({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "checkout-7d9f", "namespace": NS},
        "spec": {"serviceAccountName": SA,
                 "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]}})


def create_token(kube, pod: dict, audience: str = "sts.amazonaws.com", sa: str = SA) -> str:
    """`kubectl create token` bound to the pod: the TokenRequest API, as kubelet uses it."""
    m = pod["metadata"]
    return kube.kubectl("create", "token", sa, "-n", m["namespace"], "--audience", audience,
                        "--bound-object-kind", "Pod", "--bound-object-name", m["name"],
                        "--bound-object-uid", m["uid"]).strip()


def as_pod(server, tmp_path, role_arn: str, token: str) -> dict:
    """boto3's default chain in a fresh process with exactly the environment IRSA gives a pod."""
    return kube_e2e.as_pod(server.endpoint, REGION, VENV_PYTHON, tmp_path, role_arn, token)


def test_pod_is_created_through_the_api(kube, pod):
    assert re.fullmatch(r"[0-9a-f-]{36}", pod["metadata"]["uid"]), pod["metadata"]
    got = json.loads(kube.kubectl("get", "pod", "checkout-7d9f", "-n", NS, "-o", "json"))
    assert got["metadata"]["uid"] == pod["metadata"]["uid"]
    assert got["status"]["phase"] == "Pending"  # no scheduler, no kubelet
    # the ServiceAccount admission plugin gave it the projected token volume kubelet would fill
    vols = got["spec"]["volumes"]
    assert any(v.get("projected") and v["name"].startswith("kube-api-access-") for v in vols), vols


def test_irsa_with_a_token_from_the_token_request_api(server, irsa, kube, pod, tmp_path):
    token = create_token(kube, pod)
    header, claims = jwt_parts(token)
    assert claims["iss"] == irsa["issuer"]
    assert claims["sub"] == f"system:serviceaccount:{NS}:{SA}"
    assert claims["aud"] == ["sts.amazonaws.com"]
    assert claims["kubernetes.io"]["pod"] == {"name": "checkout-7d9f", "uid": pod["metadata"]["uid"]}
    assert header["kid"] in {k["kid"] for k in server.jwks(irsa["id"])["keys"]}
    out = as_pod(server, tmp_path, irsa["role_arn"], token)
    assert out.get("method") == "assume-role-with-web-identity", out
    assert out["ok"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/{ROLE}/kube-pod", out
    assert out["ok"]["Account"] == ACCOUNT


def test_irsa_refuses_another_service_account_of_the_cluster(server, irsa, kube, pod, tmp_path):
    kube.kubectl("create", "serviceaccount", "intruder", "-n", NS)
    token = kube.kubectl("create", "token", "intruder", "-n", NS, "--audience", "sts.amazonaws.com").strip()
    assert as_pod(server, tmp_path, irsa["role_arn"], token) == {"code": "AccessDenied", "status": 403}


def test_rotation_tokens_signed_before_and_after_both_work(server, irsa, kube, pod, tmp_path):
    before = create_token(kube, pod)
    kid_before = jwt_parts(before)[0]["kid"]
    p = server.podiam("issuer", "rotate", "--cluster", CLUSTER)
    assert p.returncode == 0, p.stderr
    flags = export_flags(server, kube.export_base / "issuer-2")
    kube.start_apiserver(flags)  # etcd and the pod stay
    after = create_token(kube, pod)
    kid_after = jwt_parts(after)[0]["kid"]
    assert kid_after != kid_before
    kids = {k["kid"] for k in server.jwks(irsa["id"])["keys"]}
    assert {kid_before, kid_after} <= kids
    for name, tok in (("before", before), ("after", after)):
        # the restarted apiserver verifies both too: the export carries every public key
        assert kube.whoami(tok)["username"] == f"system:serviceaccount:{NS}:{SA}", name
        d = tmp_path / name
        d.mkdir()
        out = as_pod(server, d, irsa["role_arn"], tok)
        assert out.get("ok", {}).get("Arn") == f"arn:aws:sts::{ACCOUNT}:assumed-role/{ROLE}/kube-pod", (name, out)


def test_pod_identity_with_a_pod_bound_token(server, kube, pod):
    eks, iam = server.client("eks"), server.client("iam")
    iam.create_user(UserName="kube-node")
    iam.put_user_policy(UserName="kube-node", PolicyName="eks-auth", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "eks-auth:AssumeRoleForPodIdentity", "Resource": "*"}]}))
    k = iam.create_access_key(UserName="kube-node")["AccessKey"]
    node = {"AccessKeyId": k["AccessKeyId"], "SecretAccessKey": k["SecretAccessKey"]}
    iam.create_role(RoleName="kube-pi-role", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": PI_AUD}, "Action": ["sts:AssumeRole", "sts:TagSession"]}]}))
    # The session may read the role only with the session tags of this very pod.
    uid = pod["metadata"]["uid"]
    iam.put_role_policy(RoleName="kube-pi-role", PolicyName="this-pod", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "iam:GetRole", "Resource": "*",
            "Condition": {"StringEquals": {
                "aws:PrincipalTag/kubernetes-pod-name": "checkout-7d9f",
                "aws:PrincipalTag/kubernetes-pod-uid": uid,
                "aws:PrincipalTag/kubernetes-namespace": NS,
                "aws:PrincipalTag/kubernetes-service-account": SA,
                "aws:PrincipalTag/eks-cluster-name": CLUSTER}}}]}))
    a = eks.create_pod_identity_association(clusterName=CLUSTER, namespace=NS, serviceAccount=SA,
                                            roleArn=f"arn:aws:iam::{ACCOUNT}:role/kube-pi-role")["association"]
    token = create_token(kube, pod, audience=PI_AUD)
    assert jwt_parts(token)[1]["kubernetes.io"]["pod"]["uid"] == uid

    r = server.client("eks-auth", node).assume_role_for_pod_identity(clusterName=CLUSTER, token=token)
    assert r["subject"] == {"namespace": NS, "serviceAccount": SA}
    assert r["audience"] == PI_AUD
    assert r["podIdentityAssociation"]["associationId"] == a["associationId"]
    arn = r["assumedRoleUser"]["arn"]
    assert re.fullmatch(rf"arn:aws:sts::{ACCOUNT}:assumed-role/kube-pi-role/eks-{CLUSTER}-checkout-7d9f-[0-9a-f-]{{36}}",
                        arn), arn
    c = r["credentials"]
    session = {"AccessKeyId": c["accessKeyId"], "SecretAccessKey": c["secretAccessKey"], "SessionToken": c["sessionToken"]}
    assert server.client("sts", session).get_caller_identity()["Arn"] == arn
    assert server.client("iam", session).get_role(RoleName="kube-pi-role")["Role"]["RoleName"] == "kube-pi-role"

    # A pod of another name and uid, same service account: its session tags miss the policy.
    other = kube.apply({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "checkout-other", "namespace": NS},
        "spec": {"serviceAccountName": SA, "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]}})
    r2 = server.client("eks-auth", node).assume_role_for_pod_identity(
        clusterName=CLUSTER, token=create_token(kube, other, audience=PI_AUD))
    c2 = r2["credentials"]
    s2 = {"AccessKeyId": c2["accessKeyId"], "SecretAccessKey": c2["secretAccessKey"], "SessionToken": c2["sessionToken"]}
    with pytest.raises(ClientError) as e:
        server.client("iam", s2).get_role(RoleName="kube-pi-role")
    assert e.value.response["Error"]["Code"] == "AccessDenied"

    # An IRSA-audience token of the same pod is not a Pod Identity token.
    with pytest.raises(ClientError) as e:
        server.client("eks-auth", node).assume_role_for_pod_identity(clusterName=CLUSTER, token=create_token(kube, pod))
    assert e.value.response["Error"]["Code"] == "InvalidTokenException"
