"""kubectl as an IAM principal, against a real kube-apiserver that asks podiam who the caller is and
what it may do.

podiam serves HTTPS with a CA the test makes; a cluster is created in podiam in API mode with access
entries and access policies; `podiam cluster webhook-config` writes the two webhook kubeconfigs
and prints the kube-apiserver flags; a real control plane (scripts/kube.sh: etcd and
kube-apiserver) starts with them. kubectl then runs with the exec credential plugin `aws eks
get-token` (the real AWS CLI, its STS endpoint pointed at podiam): `kubectl auth whoami` shows the
mapped user, a view policy scoped to team-a reads team-a and nothing in team-b, an edit policy at
cluster scope writes but does not touch RBAC, and a principal without an access entry gets 401.

Without the binaries or an apiserver that starts, the module skips (fails under CI=true)."""

from __future__ import annotations

import base64
import json
import os
import subprocess

import pytest

from kube_e2e import ControlPlane, KubeUnavailable, kube_bin
from podiam_e2e import ACCOUNT, AWS_CLI, REGION, Podiam, clean_env, make_ca_and_leaf, principal_trust, require

CLUSTER = "kube-access"
VIEW = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy"
EDIT = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy"


def user_arn(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:user/{name}"


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    return make_ca_and_leaf(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def podiam(tmp_path_factory, tls, request):
    ca, cert, key = tls
    s = Podiam(tmp_path_factory.mktemp("access") / "data",
               extra_args=["--tls-cert", str(cert), "--tls-key", str(key)]).start()
    yield s
    if request.session.testsfailed:
        print(f"\n--- podiam log (tail) ---\n{s.log()[-4000:]}")
    assert s.stop() == 0


def root_env(podiam, ca) -> dict:
    env = podiam.env
    env["AWS_CA_BUNDLE"] = str(ca)
    return env


def aws(podiam, ca, *args, env=None):
    e = env or root_env(podiam, ca)
    p = subprocess.run([AWS_CLI, *args, "--output", "json"], env=e, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, (args, p.stderr)
    return json.loads(p.stdout) if p.stdout.strip() else {}


def keys_env(podiam, ca, k: dict) -> dict:
    env = clean_env(AWS_ACCESS_KEY_ID=k["AccessKeyId"], AWS_SECRET_ACCESS_KEY=k["SecretAccessKey"],
                    AWS_ENDPOINT_URL=podiam.endpoint, AWS_REGION=REGION, AWS_DEFAULT_REGION=REGION,
                    AWS_CA_BUNDLE=str(ca), AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    if k.get("SessionToken"):
        env["AWS_SESSION_TOKEN"] = k["SessionToken"]
    return env


@pytest.fixture(scope="module")
def principals(podiam, tls):
    """alice: view in team-a; ops (a role): edit at cluster scope; nobody: no access entry."""
    ca = tls[0]
    aws(podiam, ca, "eks", "create-cluster", "--name", CLUSTER, "--role-arn", f"arn:aws:iam::{ACCOUNT}:role/eks",
        "--resources-vpc-config", "subnetIds=subnet-1", "--access-config", "authenticationMode=API")
    keys = {}
    for name in ("alice", "nobody", "assumer"):
        aws(podiam, ca, "iam", "create-user", "--user-name", name)
        keys[name] = aws(podiam, ca, "iam", "create-access-key", "--user-name", name)["AccessKey"]
    aws(podiam, ca, "iam", "put-user-policy", "--user-name", "assumer", "--policy-name", "assume",
        "--policy-document", json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]}))
    ops = aws(podiam, ca, "iam", "create-role", "--role-name", "ops", "--assume-role-policy-document",
              principal_trust({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}))["Role"]["Arn"]
    aws(podiam, ca, "eks", "create-access-entry", "--cluster-name", CLUSTER, "--principal-arn", user_arn("alice"))
    aws(podiam, ca, "eks", "associate-access-policy", "--cluster-name", CLUSTER, "--principal-arn", user_arn("alice"),
        "--policy-arn", VIEW, "--access-scope", "type=namespace,namespaces=team-a")
    aws(podiam, ca, "eks", "create-access-entry", "--cluster-name", CLUSTER, "--principal-arn", ops,
        "--kubernetes-groups", "ops-team")
    aws(podiam, ca, "eks", "associate-access-policy", "--cluster-name", CLUSTER, "--principal-arn", ops,
        "--policy-arn", EDIT, "--access-scope", "type=cluster")
    session = aws(podiam, ca, "sts", "assume-role", "--role-arn", ops, "--role-session-name", "jane@example.com",
                  env=keys_env(podiam, ca, keys["assumer"]))["Credentials"]
    keys["ops"] = session
    # A pattern entry (podiam's extension) made before the role it maps exists.
    pattern = f"arn:aws:iam::{ACCOUNT}:role/dev-*"
    aws(podiam, ca, "eks", "create-access-entry", "--cluster-name", CLUSTER, "--principal-arn", pattern)
    aws(podiam, ca, "eks", "associate-access-policy", "--cluster-name", CLUSTER, "--principal-arn", pattern,
        "--policy-arn", VIEW, "--access-scope", "type=cluster")
    dev = aws(podiam, ca, "iam", "create-role", "--role-name", "dev-7", "--assume-role-policy-document",
              principal_trust({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}))["Role"]["Arn"]
    keys["dev"] = aws(podiam, ca, "sts", "assume-role", "--role-arn", dev, "--role-session-name", "dev-session",
                      env=keys_env(podiam, ca, keys["assumer"]))["Credentials"]
    return keys


@pytest.fixture(scope="module")
def webhook_flags(podiam, tls, principals, tmp_path_factory):
    out = tmp_path_factory.mktemp("webhooks")
    env = root_env(podiam, tls[0])
    p = subprocess.run([os.environ.get("PODIAM_BIN", "podiam"), "cluster", "webhook-config", "--cluster", CLUSTER,
                        "--out-dir", str(out)], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return out, p.stdout.split()


@pytest.fixture(scope="module")
def kube(webhook_flags, tmp_path_factory, request):
    try:
        bin_dir = kube_bin()
    except KubeUnavailable as e:
        require(False, f"the Kubernetes control plane is unavailable: {e}")
    cp = ControlPlane(tmp_path_factory.mktemp("kube") / "cp", bin_dir)
    try:
        cp.start(webhook_flags[1])
    except KubeUnavailable as e:
        cp.stop()
        require(False, f"the Kubernetes control plane is unavailable: {e}")
    for ns in ("team-a", "team-b"):
        cp.kubectl("create", "namespace", ns)
        cp.kubectl("create", "configmap", "settings", "-n", ns, "--from-literal=k=v")
    yield cp
    if request.session.testsfailed:
        print(f"\n--- kube-apiserver log (tail) ---\n{cp.log('kube-apiserver')[-4000:]}")
    cp.stop()


@pytest.fixture(scope="module")
def as_principal(podiam, tls, principals, kube, tmp_path_factory):
    """kubectl for a principal: a kubeconfig whose user runs `aws eks get-token` (the exec plugin),
    with only that principal's credentials in its environment."""
    d = tmp_path_factory.mktemp("users")

    def run(who: str, *args: str) -> subprocess.CompletedProcess:
        cfg = d / f"{who}.kubeconfig"
        if not cfg.exists():
            cfg.write_text(json.dumps({
                "apiVersion": "v1", "kind": "Config",
                "clusters": [{"name": CLUSTER, "cluster": {"server": kube.url,
                                                            "certificate-authority": str(kube.pki / "ca.crt")}}],
                "users": [{"name": who, "user": {"exec": {
                    "apiVersion": "client.authentication.k8s.io/v1beta1", "command": AWS_CLI,
                    "args": ["eks", "get-token", "--cluster-name", CLUSTER, "--output", "json"],
                    "interactiveMode": "Never"}}}],
                "contexts": [{"name": who, "context": {"cluster": CLUSTER, "user": who}}],
                "current-context": who}))
        env = keys_env(podiam, tls[0], principals[who])
        env["AWS_ENDPOINT_URL_STS"] = podiam.endpoint
        return subprocess.run([str(kube.bin / "kubectl"), "--kubeconfig", str(cfg), *args], env=env,
                              capture_output=True, text=True, timeout=60)
    return run


def ok(p: subprocess.CompletedProcess) -> str:
    assert p.returncode == 0, p.stderr
    return p.stdout


def forbidden(p: subprocess.CompletedProcess) -> None:
    assert p.returncode != 0, p.stdout
    assert "Forbidden" in p.stderr or "forbidden" in p.stderr, p.stderr


# ---- the configuration podiam writes


def test_webhook_config_writes_kubeconfigs_for_the_pinned_cluster_route(webhook_flags, podiam, tls):
    out, flags = webhook_flags
    assert flags == [
        f"--authentication-token-webhook-config-file={out / 'authn-webhook.kubeconfig'}",
        "--authentication-token-webhook-version=v1",
        f"--authorization-webhook-config-file={out / 'authz-webhook.kubeconfig'}",
        "--authorization-webhook-version=v1",
        "--authorization-webhook-cache-authorized-ttl=30s",
        "--authorization-mode=Node,RBAC,Webhook",
    ]
    for name, verb in (("authn-webhook.kubeconfig", "authenticate"), ("authz-webhook.kubeconfig", "authorize")):
        cfg = json.loads((out / name).read_text())
        cluster = cfg["clusters"][0]["cluster"]
        assert cluster["server"] == f"{podiam.endpoint}/podiam/clusters/{ACCOUNT}/{CLUSTER}/{verb}"
        assert base64.b64decode(cluster["certificate-authority-data"]) == tls[0].read_bytes()
        assert cfg["current-context"] == cfg["contexts"][0]["name"]


def test_webhook_config_refuses_an_unknown_cluster_and_plain_http(podiam, tls, tmp_path):
    env = root_env(podiam, tls[0])
    bin_ = os.environ.get("PODIAM_BIN", "podiam")
    p = subprocess.run([bin_, "cluster", "webhook-config", "--cluster", "no-such", "--out-dir", str(tmp_path / "x")],
                       env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and "404" in p.stderr, p.stderr
    assert not (tmp_path / "x").exists()
    p = subprocess.run([bin_, "cluster", "webhook-config", "--cluster", CLUSTER, "--out-dir", str(tmp_path / "y"),
                        "--server", "http://127.0.0.1:1"], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and "HTTPS" in p.stderr, p.stderr
    assert not (tmp_path / "y").exists()


# ---- authentication


def test_whoami_shows_the_user_the_access_entry_maps(as_principal):
    me = json.loads(ok(as_principal("alice", "auth", "whoami", "-o", "json")))["status"]["userInfo"]
    assert me["username"] == user_arn("alice")
    assert "system:authenticated" in me["groups"]
    assert me["uid"].startswith(f"aws-iam-authenticator:{ACCOUNT}:AIDA")
    assert me["extra"]["arn"] == [user_arn("alice")]
    assert me["extra"]["podiam.io/access-entry"] == [user_arn("alice")]


def test_whoami_of_a_role_session_names_the_session(as_principal):
    me = json.loads(ok(as_principal("ops", "auth", "whoami", "-o", "json")))["status"]["userInfo"]
    assert me["username"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/ops/jane-example.com"
    assert "ops-team" in me["groups"]
    assert me["extra"]["sessionName"] == ["jane@example.com"]


def test_a_principal_without_an_access_entry_is_unauthorized(as_principal):
    p = as_principal("nobody", "get", "pods", "-n", "team-a")
    assert p.returncode != 0
    assert "Unauthorized" in p.stderr or "logged in" in p.stderr, p.stderr


# ---- authorization


def test_view_in_team_a_reads_team_a(as_principal):
    out = json.loads(ok(as_principal("alice", "get", "configmaps", "-n", "team-a", "-o", "json")))
    assert "settings" in {i["metadata"]["name"] for i in out["items"]}
    ok(as_principal("alice", "get", "pods", "-n", "team-a"))
    assert "k" in json.loads(ok(as_principal("alice", "get", "configmap", "settings", "-n", "team-a", "-o", "json")))["data"]


def test_view_in_team_a_reads_nothing_in_team_b_and_writes_nothing(as_principal):
    forbidden(as_principal("alice", "get", "pods", "-n", "team-b"))
    forbidden(as_principal("alice", "get", "configmaps", "-A"))
    forbidden(as_principal("alice", "create", "configmap", "new", "-n", "team-a", "--from-literal=a=b"))
    forbidden(as_principal("alice", "get", "secrets", "-n", "team-a"))
    forbidden(as_principal("alice", "get", "nodes"))


@pytest.mark.parametrize("verb,resource,ns,want", [
    ("get", "pods", "team-a", "yes"), ("list", "configmaps", "team-a", "yes"), ("watch", "deployments.apps", "team-a", "yes"),
    ("get", "pods", "team-b", "no"), ("delete", "pods", "team-a", "no"), ("get", "secrets", "team-a", "no"),
    ("create", "rolebindings.rbac.authorization.k8s.io", "team-a", "no"),
])
def test_can_i_matches_the_view_policy(as_principal, verb, resource, ns, want):
    p = as_principal("alice", "auth", "can-i", verb, resource, "-n", ns)
    assert p.stdout.strip() == want, (p.stdout, p.stderr)


def test_edit_at_cluster_scope_writes_everywhere_but_not_rbac(as_principal):
    ok(as_principal("ops", "create", "configmap", "from-ops", "-n", "team-b", "--from-literal=a=b"))
    ok(as_principal("ops", "get", "secrets", "-n", "team-a"))
    ok(as_principal("ops", "get", "configmaps", "-A"))
    forbidden(as_principal("ops", "create", "rolebinding", "x", "-n", "team-a", "--clusterrole=view", "--user=u"))
    forbidden(as_principal("ops", "delete", "namespace", "team-b"))


def test_a_pattern_entry_maps_and_grants_a_role_made_after_it(as_principal):
    me = json.loads(ok(as_principal("dev", "auth", "whoami", "-o", "json")))["status"]["userInfo"]
    assert me["username"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/dev-7/dev-session"
    assert me["extra"]["podiam.io/access-entry"] == [f"arn:aws:iam::{ACCOUNT}:role/dev-*"]
    ok(as_principal("dev", "get", "configmaps", "-A"))
    forbidden(as_principal("dev", "create", "configmap", "x", "-n", "team-a", "--from-literal=a=b"))


def test_can_i_list_shows_what_rbac_lists(as_principal):
    # kube-apiserver's webhook authorizer cannot enumerate rules (SelfSubjectRulesReview asks
    # each authorizer; a webhook answers "incomplete"), so --list shows RBAC's rules only;
    # single can-i questions go through podiam (above).
    p = as_principal("alice", "auth", "can-i", "--list", "-n", "team-a")
    assert p.returncode == 0, p.stderr
    assert "selfsubjectaccessreviews.authorization.k8s.io" in p.stdout, p.stdout


def test_a_review_naming_alice_without_her_binding_grants_nothing(kube, as_principal):
    """A SubjectAccessReview (as any authorizer-chain member would see) for alice's username and uid
    but without podiam's binding, or with her binding for another user, is not allowed."""
    me = json.loads(ok(as_principal("alice", "auth", "whoami", "-o", "json")))["status"]["userInfo"]
    attrs = {"namespace": "team-a", "verb": "get", "resource": "pods"}

    def sar(user: dict) -> dict:
        return kube.apply({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                           "spec": {"resourceAttributes": attrs, **user}})["status"]

    full = {"user": me["username"], "uid": me["uid"], "groups": me["groups"], "extra": me["extra"]}
    assert sar(full)["allowed"] is True
    assert sar({k: v for k, v in full.items() if k != "extra"})["allowed"] is False
    assert sar({**full, "user": user_arn("mallory")})["allowed"] is False
    assert sar({**full, "extra": {**me["extra"], "podiam.io/access-entry": [user_arn("nobody")]}})["allowed"] is False


# ---- podiam access explain


def explain(podiam, ca, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([os.environ.get("PODIAM_BIN", "podiam"), "access", "explain", "--cluster", CLUSTER, *args],
                          env=env or root_env(podiam, ca), capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("verb,resource,ns,want", [
    ("get", "pods", "team-a", "yes"), ("watch", "deployments.apps", "team-a", "yes"), ("get", "pods/log", "team-a", "yes"),
    ("get", "pods", "team-b", "no"), ("delete", "pods", "team-a", "no"), ("get", "secrets", "team-a", "no"),
])
def test_explain_agrees_with_the_api_server(podiam, tls, as_principal, verb, resource, ns, want):
    p = explain(podiam, tls[0], "--principal", user_arn("alice"), "--verb", verb, "--resource", resource, "-n", ns)
    assert p.returncode == (0 if want == "yes" else 3), (p.stdout, p.stderr)
    assert as_principal("alice", "auth", "can-i", verb, resource, "-n", ns).stdout.strip() == want
    assert f"access entry {user_arn('alice')} (STANDARD)" in p.stdout
    if want == "yes":
        assert "AmazonEKSViewPolicy (namespaces team-a): ALLOWS" in p.stdout, p.stdout
    elif ns == "team-b":
        assert "outside the policy's scope" in p.stdout, p.stdout
    else:
        assert "no rule of view allows the request" in p.stdout, p.stdout


def test_explain_names_the_missing_entry_and_the_missing_rule(podiam, tls, principals):
    ca = tls[0]
    p = explain(podiam, ca, "--principal", user_arn("nobody"), "--verb", "get", "--resource", "pods", "-n", "team-a")
    assert p.returncode == 3 and "has no access entry" in p.stdout, (p.stdout, p.stderr)
    ops = f"arn:aws:iam::{ACCOUNT}:role/ops"
    p = explain(podiam, ca, "--principal", ops, "--verb", "create", "--resource", "rolebindings.rbac.authorization.k8s.io",
                "-n", "team-a")
    assert p.returncode == 3 and "AmazonEKSEditPolicy (cluster scope): no rule of edit" in p.stdout, p.stdout
    assert "groups [ops-team]" in p.stdout, p.stdout
    p = explain(podiam, ca, "--principal", ops, "--verb", "create", "--resource", "configmaps", "-n", "team-b")
    assert p.returncode == 0, p.stdout
    p = explain(podiam, ca, "--principal", user_arn("alice"), "--verb", "get", "--non-resource-url", "/healthz")
    assert p.returncode == 3 and "outside the policy's scope" in p.stdout, p.stdout


def test_explain_needs_a_request_and_eks_read_permissions(podiam, tls, principals):
    ca = tls[0]
    p = explain(podiam, ca, "--principal", user_arn("alice"), "--verb", "get")
    assert p.returncode not in (0, 3) and "--resource or --non-resource-url" in p.stderr, p.stderr
    # alice has no IAM permissions: the EKS reads explain makes are refused.
    p = explain(podiam, ca, "--principal", user_arn("alice"), "--verb", "get", "--resource", "pods", "-n", "team-a",
                env=keys_env(podiam, ca, principals["alice"]))
    assert p.returncode not in (0, 3), (p.stdout, p.stderr)
    assert "AccessDenied" in p.stderr or "not authorized" in p.stderr, p.stderr


def test_explain_finds_the_pattern_entry_that_maps_a_role(podiam, tls, principals):
    ca = tls[0]
    dev = f"arn:aws:iam::{ACCOUNT}:role/dev-7"
    p = explain(podiam, ca, "--principal", dev, "--verb", "list", "--resource", "configmaps")
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert f"mapped by the pattern entry arn:aws:iam::{ACCOUNT}:role/dev-*" in p.stdout, p.stdout
    p = explain(podiam, ca, "--principal", dev, "--verb", "delete", "--resource", "configmaps", "-n", "team-a")
    assert p.returncode == 3 and "no rule of view" in p.stdout, p.stdout
    # A role name the pattern does not match.
    p = explain(podiam, ca, "--principal", f"arn:aws:iam::{ACCOUNT}:role/devops", "--verb", "get", "--resource", "pods")
    assert p.returncode == 3 and "has no access entry" in p.stdout, p.stdout
