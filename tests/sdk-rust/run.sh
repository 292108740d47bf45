#!/usr/bin/env bash
# End-to-end checks of podiam with the unmodified aws-sdk-rust (the `podiam-sdk-e2e` binary).
#
# Starts `podiam serve` on a free port with a fresh data directory, sets up an EKS cluster, its
# OIDC provider, roles and a user with the AWS CLI, then runs the Rust client's scenarios:
#   web-identity  the SDK's default credential chain with AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE
#   static        SigV4 with long-term keys, and with temporary keys plus a session token
#   assume-role   AssumeRole (session tags, ExternalId), then a client on the returned credentials
#
# Environment: PODIAM_BIN (default target/debug/podiam), SDK_E2E_BIN (default
# target/debug/podiam-sdk-e2e), AWS_CLI (default aws); paths are relative to the repository root.
# KEEP_TMP=1 keeps the temporary directory (data dir, tokens, last scenario output).
# Prints `ok - ...` / `not ok - ...` per check and ends with `N passed, M failed`.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
PODIAM_BIN=${PODIAM_BIN:-target/debug/podiam}
SDK_E2E_BIN=${SDK_E2E_BIN:-target/debug/podiam-sdk-e2e}
AWS_CLI=${AWS_CLI:-aws}
# Absolute paths: the scenarios run from other directories and with an empty environment.
abs() { case $1 in /*) printf '%s\n' "$1" ;; */*) printf '%s\n' "$root/$1" ;; *) command -v "$1" ;; esac; }
PODIAM_BIN=$(abs "$PODIAM_BIN")
SDK_E2E_BIN=$(abs "$SDK_E2E_BIN")
AWS_CLI=$(abs "$AWS_CLI") || { echo "AWS CLI ${AWS_CLI} not found" >&2; exit 1; }
for b in "$PODIAM_BIN" "$SDK_E2E_BIN" "$AWS_CLI"; do
  [[ -x $b ]] || { echo "not executable: $b" >&2; exit 1; }
done

ACCT=111122223333
tmp=$(mktemp -d "${TMPDIR:-/tmp}/podiam-sdk-rust.XXXXXX")
data="$tmp/data"
home="$tmp/home"
mkdir -p "$home"
server_pid=""

cleanup() {
  local rc=$?
  if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [[ $rc -ne 0 && -s $tmp/server.log ]]; then
    echo "--- podiam server log (tail)" >&2
    tail -n 40 "$tmp/server.log" >&2 || true
  fi
  [[ -n ${KEEP_TMP:-} ]] && echo "kept $tmp" >&2 || rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok - $*"; }
not_ok() { failed=$((failed + 1)); echo "not ok - $*"; }
# Indent a captured output under a failed check.
show() { [[ -s $1 ]] && sed 's/^/    # /' "$1" || true; }

# --- server ------------------------------------------------------------------------------------
# Listen on port 0 and read the bound address from the server's banner: no race for the port.
: >"$tmp/server.log"
"$PODIAM_BIN" serve --listen 127.0.0.1:0 --data-dir "$data" --account-id "$ACCT" >"$tmp/server.log" 2>&1 &
server_pid=$!
url=""
ready=""
for _ in $(seq 1 200); do # 20 s
  kill -0 "$server_pid" 2>/dev/null || break
  if [[ -z $url ]]; then
    url=$(sed -n 's/^podiam serving on \(http:\/\/[^ ]*\).*/\1/p' "$tmp/server.log" | head -n 1) || true
  fi
  if [[ -n $url ]] && [[ $(curl -s -o /dev/null -w '%{http_code}' "$url/readyz" || true) == 200 ]]; then
    ready=1
    break
  fi
  sleep 0.1
done
if [[ -z $ready ]]; then
  not_ok "podiam serve is ready (GET /readyz == 200 within 20 s)"
  echo "0 passed, 1 failed"
  exit 1
fi
ok "podiam serve is ready at $url"

export AWS_CONFIG_FILE="$data/config" AWS_SHARED_CREDENTIALS_FILE="$data/credentials" AWS_PROFILE=podiam
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_ENDPOINT_URL AWS_DEFAULT_PROFILE \
  AWS_ROLE_ARN AWS_WEB_IDENTITY_TOKEN_FILE AWS_ROLE_SESSION_NAME AWS_REGION AWS_DEFAULT_REGION || true
# The AWS CLI with the podiam profile; also pass the endpoint explicitly in case the CLI
# predates `endpoint_url` in the config file.
awscli() { "$AWS_CLI" --endpoint-url "$url" --region us-east-1 "$@"; }

# Run the Rust client with nothing but the given environment; stdout to $tmp/out, stderr to
# $tmp/err; returns its exit status.
scenario() {
  local name=$1
  shift
  (cd "$home" && env -i PATH="$PATH" HOME="$home" "$@" "$SDK_E2E_BIN" "$name") >"$tmp/out" 2>"$tmp/err"
}
# Check the last scenario succeeded and printed an ARN line matching the regex.
expect_arn() {
  local what=$1 re=$2 rc=$3
  if [[ $rc -eq 0 ]] && grep -Eq "$re" "$tmp/out"; then
    ok "$what: $(grep '^ARN=' "$tmp/out")"
  else
    not_ok "$what (exit $rc, want $re)"
    show "$tmp/out"
    show "$tmp/err"
  fi
}
# Check the last scenario failed and its stderr mentions the pattern.
expect_fail() {
  local what=$1 pat=$2 rc=$3
  if [[ $rc -ne 0 ]] && grep -q "$pat" "$tmp/err"; then
    ok "$what ($(grep -o "$pat" "$tmp/err" | head -n 1))"
  else
    not_ok "$what (exit $rc, want a failure mentioning $pat)"
    show "$tmp/out"
    show "$tmp/err"
  fi
}
# Run a setup step; on failure, report it and stop.
setup() {
  local what=$1
  shift
  if "$@" >"$tmp/setup.out" 2>"$tmp/setup.err"; then
    ok "setup: $what"
  else
    not_ok "setup: $what"
    show "$tmp/setup.out"
    show "$tmp/setup.err"
    echo "$passed passed, $failed failed"
    exit 1
  fi
}

# --- web identity (IRSA) -----------------------------------------------------------------------
setup "create EKS cluster demo" \
  awscli eks create-cluster --name demo --role-arn "arn:aws:iam::$ACCT:role/eks" --resources-vpc-config subnetIds=subnet-1
issuer=$(awscli eks describe-cluster --name demo --query cluster.identity.oidc.issuer --output text) || true
hostpath=${issuer#https://}
if [[ $issuer == https://* && -n $hostpath ]]; then
  ok "cluster issuer $issuer"
else
  not_ok "cluster issuer is an https URL (got '$issuer')"
  echo "$passed passed, $failed failed"
  exit 1
fi
provider_arn="arn:aws:iam::$ACCT:oidc-provider/$hostpath"
setup "create OIDC provider $provider_arn" \
  awscli iam create-open-id-connect-provider --url "$issuer" --client-id-list sts.amazonaws.com

cat >"$tmp/irsa-trust.json" <<EOF
{
  "Version": "2012-10-17",
  "Statement": [{
    "Effect": "Allow",
    "Principal": {"Federated": "$provider_arn"},
    "Action": "sts:AssumeRoleWithWebIdentity",
    "Condition": {"StringEquals": {
      "$hostpath:sub": "system:serviceaccount:default:rust-sa",
      "$hostpath:aud": "sts.amazonaws.com"
    }}
  }]
}
EOF
setup "create role rust-irsa" \
  awscli iam create-role --role-name rust-irsa --assume-role-policy-document "file://$tmp/irsa-trust.json"

# The token file keeps the trailing newline `podiam token` prints.
setup "mint a token for default:rust-sa" \
  sh -c '"$1" token --cluster demo --namespace default --service-account rust-sa >"$2"' _ "$PODIAM_BIN" "$tmp/token"
setup "mint a token for default:other-sa" \
  sh -c '"$1" token --cluster demo --namespace default --service-account other-sa >"$2"' _ "$PODIAM_BIN" "$tmp/token-other"

rc=0
scenario web-identity AWS_ROLE_ARN="arn:aws:iam::$ACCT:role/rust-irsa" AWS_WEB_IDENTITY_TOKEN_FILE="$tmp/token" \
  AWS_ENDPOINT_URL_STS="$url" AWS_REGION=us-east-1 || rc=$?
expect_arn "web-identity: default chain assumes rust-irsa" \
  "^ARN=arn:aws:sts::$ACCT:assumed-role/rust-irsa/web-identity-token-[0-9]+$" "$rc"

rc=0
scenario web-identity AWS_ROLE_ARN="arn:aws:iam::$ACCT:role/rust-irsa" AWS_WEB_IDENTITY_TOKEN_FILE="$tmp/token" \
  AWS_ROLE_SESSION_NAME=my-pod AWS_ENDPOINT_URL="$url" AWS_REGION=us-east-1 || rc=$?
expect_arn "web-identity: AWS_ROLE_SESSION_NAME and AWS_ENDPOINT_URL are honoured" \
  "^ARN=arn:aws:sts::$ACCT:assumed-role/rust-irsa/my-pod$" "$rc"

rc=0
scenario web-identity AWS_ROLE_ARN="arn:aws:iam::$ACCT:role/rust-irsa" AWS_WEB_IDENTITY_TOKEN_FILE="$tmp/token-other" \
  AWS_ENDPOINT_URL_STS="$url" AWS_REGION=us-east-1 || rc=$?
expect_fail "web-identity: a token for default:other-sa is denied" AccessDenied "$rc"

# --- static credentials ------------------------------------------------------------------------
root_ak=$("$AWS_CLI" configure get aws_access_key_id --profile podiam) || true
root_sk=$("$AWS_CLI" configure get aws_secret_access_key --profile podiam) || true
rc=0
scenario static AWS_ACCESS_KEY_ID="$root_ak" AWS_SECRET_ACCESS_KEY="$root_sk" \
  AWS_ENDPOINT_URL="$url" AWS_REGION=us-east-1 || rc=$?
expect_arn "static: root access key" "^ARN=arn:aws:iam::$ACCT:root$" "$rc"

rc=0
scenario static AWS_ACCESS_KEY_ID="$root_ak" AWS_SECRET_ACCESS_KEY="${root_sk}x" \
  AWS_ENDPOINT_URL="$url" AWS_REGION=us-east-1 || rc=$?
expect_fail "static: a wrong secret key is rejected" SignatureDoesNotMatch "$rc"

# --- assume role -------------------------------------------------------------------------------
setup "create user rust-user" awscli iam create-user --user-name rust-user
read -r user_ak user_sk < <(awscli iam create-access-key --user-name rust-user \
  --query 'AccessKey.[AccessKeyId,SecretAccessKey]' --output text) || true
if [[ -n ${user_ak:-} && -n ${user_sk:-} ]]; then ok "setup: access key for rust-user"; else
  not_ok "setup: access key for rust-user"
  echo "$passed passed, $failed failed"
  exit 1
fi
cat >"$tmp/target-trust.json" <<EOF
{
  "Version": "2012-10-17",
  "Statement": [{
    "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::$ACCT:user/rust-user"},
    "Action": ["sts:AssumeRole", "sts:TagSession"]
  }]
}
EOF
setup "create role rust-target" \
  awscli iam create-role --role-name rust-target --assume-role-policy-document "file://$tmp/target-trust.json"
cat >"$tmp/user-policy.json" <<EOF
{
  "Version": "2012-10-17",
  "Statement": [{
    "Effect": "Allow",
    "Action": ["sts:AssumeRole", "sts:TagSession"],
    "Resource": "arn:aws:iam::$ACCT:role/rust-target"
  }]
}
EOF
setup "allow rust-user to assume rust-target" \
  awscli iam put-user-policy --user-name rust-user --policy-name assume-rust-target --policy-document "file://$tmp/user-policy.json"

rc=0
scenario assume-role AWS_ACCESS_KEY_ID="$user_ak" AWS_SECRET_ACCESS_KEY="$user_sk" \
  AWS_ENDPOINT_URL="$url" AWS_REGION=us-east-1 PODIAM_E2E_ROLE_ARN="arn:aws:iam::$ACCT:role/rust-target" || rc=$?
expect_arn "assume-role: rust-user assumes rust-target with a session tag" \
  "^ARN=arn:aws:sts::$ACCT:assumed-role/rust-target/rust-sdk$" "$rc"

# A role whose trust requires an ExternalId.
cat >"$tmp/extid-trust.json" <<EOF
{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Principal": {"AWS": "arn:aws:iam::$ACCT:user/rust-user"},
      "Action": "sts:AssumeRole",
      "Condition": {"StringEquals": {"sts:ExternalId": "rust-ext-42"}}
    },
    {
      "Effect": "Allow",
      "Principal": {"AWS": "arn:aws:iam::$ACCT:user/rust-user"},
      "Action": "sts:TagSession"
    }
  ]
}
EOF
setup "create role rust-extid (trust requires sts:ExternalId)" \
  awscli iam create-role --role-name rust-extid --assume-role-policy-document "file://$tmp/extid-trust.json"
sed "s/role\/rust-target/role\/rust-extid/" "$tmp/user-policy.json" >"$tmp/user-policy-extid.json"
setup "allow rust-user to assume rust-extid" \
  awscli iam put-user-policy --user-name rust-user --policy-name assume-rust-extid --policy-document "file://$tmp/user-policy-extid.json"

rc=0
scenario assume-role AWS_ACCESS_KEY_ID="$user_ak" AWS_SECRET_ACCESS_KEY="$user_sk" AWS_ENDPOINT_URL="$url" \
  AWS_REGION=us-east-1 PODIAM_E2E_ROLE_ARN="arn:aws:iam::$ACCT:role/rust-extid" PODIAM_E2E_EXTERNAL_ID=rust-ext-42 || rc=$?
expect_arn "assume-role: with the required ExternalId" \
  "^ARN=arn:aws:sts::$ACCT:assumed-role/rust-extid/rust-sdk$" "$rc"

rc=0
scenario assume-role AWS_ACCESS_KEY_ID="$user_ak" AWS_SECRET_ACCESS_KEY="$user_sk" AWS_ENDPOINT_URL="$url" \
  AWS_REGION=us-east-1 PODIAM_E2E_ROLE_ARN="arn:aws:iam::$ACCT:role/rust-extid" PODIAM_E2E_EXTERNAL_ID=wrong || rc=$?
expect_fail "assume-role: a wrong ExternalId is denied" AccessDenied "$rc"

# Temporary credentials (with a session token) from the AWS CLI, used by the Rust SDK.
read -r tmp_ak tmp_sk tmp_st < <(AWS_ACCESS_KEY_ID="$user_ak" AWS_SECRET_ACCESS_KEY="$user_sk" \
  "$AWS_CLI" --endpoint-url "$url" --region us-east-1 sts assume-role \
  --role-arn "arn:aws:iam::$ACCT:role/rust-target" --role-session-name cli-session \
  --query 'Credentials.[AccessKeyId,SecretAccessKey,SessionToken]' --output text) || true
if [[ -n ${tmp_st:-} ]]; then
  rc=0
  scenario static AWS_ACCESS_KEY_ID="$tmp_ak" AWS_SECRET_ACCESS_KEY="$tmp_sk" AWS_SESSION_TOKEN="$tmp_st" \
    AWS_ENDPOINT_URL="$url" AWS_REGION=us-east-1 || rc=$?
  expect_arn "static: temporary credentials with a session token" \
    "^ARN=arn:aws:sts::$ACCT:assumed-role/rust-target/cli-session$" "$rc"
  rc=0
  scenario static AWS_ACCESS_KEY_ID="$tmp_ak" AWS_SECRET_ACCESS_KEY="$tmp_sk" \
    AWS_ENDPOINT_URL="$url" AWS_REGION=us-east-1 || rc=$?
  expect_fail "static: temporary credentials without their session token are rejected" "InvalidClientTokenId\|SignatureDoesNotMatch\|AccessDenied\|UnrecognizedClient" "$rc"
else
  not_ok "setup: temporary credentials from aws sts assume-role"
fi

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
