//! `aws eks get-token` authentication: podiam verifies a `k8s-aws-v1.` token itself, as the STS
//! the token's presigned GetCallerIdentity URL is addressed to, and maps the caller to a
//! Kubernetes identity through the cluster's access entries — what EKS's authenticator answers
//! the API server's TokenReview with.
//!
//! A token is `k8s-aws-v1.` followed by the unpadded base64url of a presigned URL
//! `http(s)://<host>/?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-...` whose signed headers
//! are `host` and `x-k8s-aws-id` (the cluster name). It is accepted when:
//!
//! * it parses strictly: one URL of printable ASCII, no user info or fragment, path `/`, only the
//!   query parameters a presigned GetCallerIdentity carries, each once, `X-Amz-Expires` in
//!   0..=900 (what the authenticator accepts; its value is otherwise ignored, as STS ignores it);
//! * the host is one of podiam's STS endpoints ([`crate::Config::token_sts_hosts`]);
//! * `x-k8s-aws-id` is signed, and the signature verifies with the cluster name of the review
//!   as that header's value (a token for another cluster fails here);
//! * `X-Amz-Date` is at most 15 minutes old and at most 5 minutes ahead;
//! * the signer passes every check GetCallerIdentity applies (the same authentication path:
//!   active access key of an existing user, live session of an existing role with the same
//!   unique id), plus the role's `revoked_before` cut-off; IAM policies are not consulted, as
//!   STS does not consult them for GetCallerIdentity;
//! * the cluster exists (in the signer's account), and maps the signer by its authentication
//!   mode: `API`: an access entry for the signer's IAM role or user — the stored principal,
//!   path included, and the same unique id the entry was made for; `CONFIG_MAP`: the cluster's
//!   aws-auth ConfigMap (`configmap`); `API_AND_CONFIG_MAP`: the access entry if the principal
//!   has one (it wins, as on EKS), else the ConfigMap.
//!
//! An account root has no access entry (EKS refuses entries for it), so a root token is refused;
//! the ConfigMap never maps a root either.
//! Every refusal carries a reason for the server log; callers get one generic answer.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;

use super::params::{MODE_API_AND_CONFIG_MAP, MODE_CONFIG_MAP};
use crate::Control;
use crate::auth::{Caller, SigningScope};
use crate::authz::Target;
use crate::model;
use crate::state::access_entry_id;

/// The token prefix `aws eks get-token` and aws-iam-authenticator write.
pub const TOKEN_PREFIX: &str = "k8s-aws-v1.";
/// The longest token accepted, in characters: a presigned URL with a session token is about
/// 2-3 KB; anything far beyond is refused before decoding.
pub const MAX_TOKEN_CHARS: usize = 8192;
/// How long after its `X-Amz-Date` a token is accepted (STS: 15 minutes).
pub const TOKEN_VALIDITY_SECS: i64 = 900;
/// How far ahead of the server clock `X-Amz-Date` may be.
pub const TOKEN_MAX_FUTURE_SECS: i64 = 300;
/// The signed header carrying the cluster name.
pub const CLUSTER_ID_HEADER: &str = "x-k8s-aws-id";

/// The query parameters a presigned GetCallerIdentity URL may carry.
const ALLOWED_PARAMS: [&str; 9] = [
    "Action",
    "Version",
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Security-Token",
    "X-Amz-Signature",
];

/// A refused token: the reason is for the server log only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRefused {
    reason: String,
}

impl TokenRefused {
    pub(super) fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
        }
    }
    /// Why, for the log (never the caller).
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl std::fmt::Display for TokenRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

/// The one error text a refused token gets on the wire.
pub const REFUSED: &str = "the token was not accepted";

type Refusal<T> = std::result::Result<T, TokenRefused>;

/// A token's presigned URL, checked for shape: the pieces SigV4 verification needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresignedUrl {
    /// The authority (host and optional port) as written: the signed `host` header's value.
    pub host: String,
    /// The raw query string.
    pub query: String,
}

/// Decode and check a token's shape (no secret, no clock). `accepted_hosts` are compared
/// without regard to ASCII case.
pub fn parse_token(token: &str, accepted_hosts: &[String]) -> Refusal<PresignedUrl> {
    if token.len() > MAX_TOKEN_CHARS {
        return Err(TokenRefused::new("token too long"));
    }
    let encoded = token
        .strip_prefix(TOKEN_PREFIX)
        .ok_or_else(|| TokenRefused::new("not a k8s-aws-v1 token"))?;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| TokenRefused::new("token is not unpadded base64url"))?;
    let url = String::from_utf8(raw).map_err(|_| TokenRefused::new("token URL is not UTF-8"))?;
    if !url.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(TokenRefused::new(
            "token URL holds spaces, controls or non-ASCII",
        ));
    }
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| TokenRefused::new("token URL is not http(s)"))?;
    if rest.contains('#') {
        return Err(TokenRefused::new("token URL has a fragment"));
    }
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (host, rest) = rest.split_at(end);
    if host.is_empty() || host.contains('@') {
        return Err(TokenRefused::new("token URL has no host, or user info"));
    }
    if !accepted_hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
        return Err(TokenRefused::new(format!(
            "token URL host {:?} is not one of the accepted STS hosts",
            clip(host)
        )));
    }
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path != "/" {
        return Err(TokenRefused::new("token URL path is not /"));
    }
    check_query(query)?;
    Ok(PresignedUrl {
        host: host.to_owned(),
        query: query.to_owned(),
    })
}

/// The query of a presigned GetCallerIdentity, and nothing else.
fn check_query(query: &str) -> Refusal<()> {
    let mut seen = [false; ALLOWED_PARAMS.len()];
    let mut action = None;
    let mut version = None;
    let mut expires = None;
    let mut signed_headers = None;
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = decode(k)?;
        let v = decode(v)?;
        let i = ALLOWED_PARAMS.iter().position(|p| *p == k).ok_or_else(|| {
            TokenRefused::new(format!("token URL has query parameter {:?}", clip(&k)))
        })?;
        match seen.get_mut(i) {
            Some(s) if !*s => *s = true,
            _ => {
                return Err(TokenRefused::new(format!(
                    "token URL repeats query parameter {k}"
                )));
            }
        }
        match k.as_str() {
            "Action" => action = Some(v),
            "Version" => version = Some(v),
            "X-Amz-Expires" => expires = Some(v),
            "X-Amz-SignedHeaders" => signed_headers = Some(v),
            _ => {}
        }
    }
    if action.as_deref() != Some("GetCallerIdentity") {
        return Err(TokenRefused::new(
            "token URL action is not GetCallerIdentity",
        ));
    }
    if version.as_deref() != Some("2011-06-15") {
        return Err(TokenRefused::new("token URL version is not 2011-06-15"));
    }
    match expires.as_deref().map(str::parse::<u32>) {
        Some(Ok(0..=900)) => {}
        _ => {
            return Err(TokenRefused::new(
                "token URL X-Amz-Expires is missing or not in 0..=900",
            ));
        }
    }
    let signed = signed_headers.unwrap_or_default();
    let mut names: Vec<&str> = signed.split(';').collect();
    if !names.contains(&CLUSTER_ID_HEADER) {
        return Err(TokenRefused::new("x-k8s-aws-id is not a signed header"));
    }
    names.sort_unstable();
    if names != ["host", CLUSTER_ID_HEADER] {
        return Err(TokenRefused::new(
            "token URL signs headers other than host and x-k8s-aws-id",
        ));
    }
    Ok(())
}

fn decode(s: &str) -> Refusal<String> {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| TokenRefused::new("token URL query is not UTF-8"))
}

/// At most 64 characters of an attacker-chosen string, for a log line.
fn clip(s: &str) -> String {
    s.chars().take(64).collect()
}

/// The cluster a review is for: its name, and the account when the route names one.
#[derive(Clone, Copy, Debug)]
pub struct ClusterRoute<'a> {
    /// The account of the cluster, if the route pins it. Without it the name must be unique
    /// across the accounts podiam serves, or the review is refused: a principal of another
    /// account must never authenticate through its own account's cluster of the same name.
    pub account: Option<&'a str>,
    /// The cluster name: the value the token's `x-k8s-aws-id` must carry.
    pub name: &'a str,
}

/// The Kubernetes identity of an accepted token (TokenReview's `status.user`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KubeUser {
    /// `username`.
    pub username: String,
    /// `uid`: `aws-iam-authenticator:<account>:<principal unique id>`.
    pub uid: String,
    /// `groups`.
    pub groups: Vec<String>,
    /// `extra`: `arn`, `canonicalArn`, `sessionName`, `accessKeyId`, `principalId`.
    pub extra: BTreeMap<String, Vec<String>>,
    /// Which records mapped the signer. Only access entries carry access policies: a user
    /// mapped by the aws-auth ConfigMap gets its permissions from the cluster's RBAC alone.
    pub mapped_by: MappedBy,
}

/// The records that mapped a token's signer to its Kubernetes identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MappedBy {
    /// An EKS access entry.
    AccessEntry,
    /// The cluster's aws-auth ConfigMap.
    ConfigMap,
}

/// The verified signer of a token, resolved to its lasting principal.
pub(super) struct Signer {
    /// The IAM role or user as stored (path and case).
    pub principal_arn: String,
    /// Its unique id.
    pub principal_id: String,
    /// The session name (empty for a user).
    pub session_name: String,
    /// The caller's ARN (a session's assumed-role ARN).
    pub arn: String,
    /// As aws-iam-authenticator canonicalizes it: a session's role without its path.
    pub canonical_arn: String,
}

impl Signer {
    /// Fill a username or group's templates.
    pub(super) fn render(
        &self,
        template: &str,
        account: &str,
        access_key_id: &str,
    ) -> Refusal<String> {
        render(
            template,
            &Identity {
                account,
                session_name: &self.session_name,
                access_key_id,
            },
        )
    }

    /// The Kubernetes identity: uid and `extra` as for every mapping.
    pub(super) fn kube_user(
        &self,
        account: &str,
        access_key_id: &str,
        username: String,
        groups: Vec<String>,
        mapped_by: MappedBy,
    ) -> KubeUser {
        let mut extra = BTreeMap::new();
        extra.insert("arn".to_owned(), vec![self.arn.clone()]);
        extra.insert("canonicalArn".to_owned(), vec![self.canonical_arn.clone()]);
        extra.insert("sessionName".to_owned(), vec![self.session_name.clone()]);
        extra.insert("accessKeyId".to_owned(), vec![access_key_id.to_owned()]);
        extra.insert("principalId".to_owned(), vec![self.principal_id.clone()]);
        KubeUser {
            username,
            uid: format!("aws-iam-authenticator:{account}:{}", self.principal_id),
            groups,
            extra,
            mapped_by,
        }
    }
}

/// The facts templates are filled from.
struct Identity<'a> {
    account: &'a str,
    session_name: &'a str,
    access_key_id: &'a str,
}

/// Fill a username's templates: `{{AccountID}}`, `{{SessionName}}` (with `@` turned into `-`,
/// as EKS does), `{{SessionNameRaw}}`, `{{AccessKeyID}}`. `{{EC2PrivateDNSName}}` needs the EC2
/// API, which podiam does not have: such a username is refused.
fn render(template: &str, id: &Identity<'_>) -> Refusal<String> {
    if template.contains("{{EC2PrivateDNSName}}") {
        return Err(TokenRefused::new(
            "the entry's username needs {{EC2PrivateDNSName}}, which podiam cannot resolve",
        ));
    }
    let sanitized = id.session_name.replace('@', "-");
    let out = template
        .replace("{{AccountID}}", id.account)
        .replace("{{SessionNameRaw}}", id.session_name)
        .replace("{{SessionName}}", &sanitized)
        .replace("{{AccessKeyID}}", id.access_key_id);
    if out.is_empty() {
        return Err(TokenRefused::new("the entry's username renders empty"));
    }
    Ok(out)
}

impl Control {
    /// Verify an EKS token for a cluster and map its signer through the cluster's access
    /// entries. See the module documentation for every check.
    pub fn review_eks_token(&self, route: ClusterRoute<'_>, token: &str) -> Refusal<KubeUser> {
        crate::eks::cluster_name(route.name)
            .map_err(|_| TokenRefused::new("the route's cluster name is invalid"))?;
        let url = parse_token(token, &self.config.token_sts_hosts)?;
        let headers: [(&str, &[u8]); 2] = [
            ("host", url.host.as_bytes()),
            (CLUSTER_ID_HEADER, route.name.as_bytes()),
        ];
        let req = podiam_sigv4::Request {
            method: "GET",
            path: "/",
            query: &url.query,
            headers: &headers,
            body: b"",
        };
        let parsed = match podiam_sigv4::parse(&req) {
            Ok(Some(p)) if p.is_presigned() => p,
            Ok(_) => return Err(TokenRefused::new("token URL is not presigned")),
            Err(e) => return Err(TokenRefused::new(format!("token URL: {e}"))),
        };
        let now = self.now();
        let t = parsed.request_time_unix();
        if now.saturating_sub(t) > TOKEN_VALIDITY_SECS {
            return Err(TokenRefused::new(
                "token expired: signed over 15 minutes ago",
            ));
        }
        if t.saturating_sub(now) > TOKEN_MAX_FUTURE_SECS {
            return Err(TokenRefused::new("token signed in the future"));
        }
        let access_key_id = parsed.access_key_id().to_owned();
        let caller = match self.authenticate_signed(
            &req,
            SigningScope { service: "sts" },
            Some(TOKEN_VALIDITY_SECS),
        ) {
            Ok(Some(c)) => c,
            Ok(None) => return Err(TokenRefused::new("token URL is not signed")),
            Err(e) => {
                return Err(TokenRefused::new(format!(
                    "signature refused ({}): {} (a token for another cluster fails here too)",
                    e.code, e.message
                )));
            }
        };
        self.map_to_kube(route, &caller, &access_key_id)
    }

    /// The mapping of an authenticated signer: by access entry, or by the aws-auth ConfigMap
    /// as the cluster's authentication mode says.
    fn map_to_kube(
        &self,
        route: ClusterRoute<'_>,
        caller: &Caller,
        access_key_id: &str,
    ) -> Refusal<KubeUser> {
        let account = caller.account();
        let t = self.db.read();
        let cluster = match route.account {
            Some(a) => {
                if a != account {
                    return Err(TokenRefused::new(
                        "the signer is not in the cluster's account",
                    ));
                }
                t.clusters
                    .get(&(a.to_owned(), route.name.to_owned()))
                    .map(|e| Arc::clone(&e.value))
            }
            None => {
                let mut named = t
                    .clusters
                    .iter()
                    .filter(|((_, name), _)| name == route.name);
                match (named.next(), named.next()) {
                    (Some(((a, _), e)), None) if a == account => Some(Arc::clone(&e.value)),
                    (Some(_), None) => {
                        return Err(TokenRefused::new(
                            "the signer is not in the cluster's account",
                        ));
                    }
                    (Some(_), Some(_)) => {
                        return Err(TokenRefused::new(
                            "several accounts have a cluster of this name: use the route that names the account",
                        ));
                    }
                    (None, _) => None,
                }
            }
        };
        let cluster = cluster.ok_or_else(|| TokenRefused::new("no such cluster"))?;
        let mode = cluster.access_config.authentication_mode.as_str();
        let name_unique = t
            .clusters
            .keys()
            .filter(|(_, n)| *n == cluster.name)
            .count()
            == 1;
        // The lasting principal behind the signer, as stored (path and case), and its id.
        let signer = match caller {
            Caller::Root { .. } => {
                return Err(TokenRefused::new("an account root has no access entry"));
            }
            Caller::User { user, .. } => {
                let arn = Target::user(account, user).arn().to_owned();
                Signer {
                    principal_arn: arn.clone(),
                    principal_id: user.id.clone(),
                    session_name: String::new(),
                    arn: arn.clone(),
                    canonical_arn: arn,
                }
            }
            Caller::Session(s) => {
                let role = t
                    .roles
                    .get(&(account.to_owned(), s.role_name.to_lowercase()))
                    .map(|e| Arc::clone(&e.value))
                    .filter(|r| r.id == s.role_id)
                    .ok_or_else(|| TokenRefused::new("the session's role is gone"))?;
                if role.revoked_before.is_some_and(|cut| s.issued < cut) {
                    return Err(TokenRefused::new("the session was revoked"));
                }
                Signer {
                    principal_arn: Target::role(account, &role).arn().to_owned(),
                    principal_id: role.id.clone(),
                    session_name: s.session_name.clone(),
                    arn: caller.arn(),
                    // As the authenticator canonicalizes a session's ARN: the role, no path.
                    canonical_arn: format!("arn:aws:iam::{account}:role/{}", role.name),
                }
            }
        };
        if mode == MODE_CONFIG_MAP {
            drop(t);
            return self.map_by_configmap(
                account,
                &cluster.name,
                name_unique,
                &signer,
                access_key_id,
            );
        }
        let entry = t
            .access_entries
            .get(&(
                account.to_owned(),
                access_entry_id(&cluster.name, &signer.principal_arn),
            ))
            .map(|e| Arc::clone(&e.value));
        drop(t);
        // An entry wins; the ConfigMap applies only to a principal without one.
        let entry: Arc<model::AccessEntry> = match entry {
            Some(e) => e,
            None if mode == MODE_API_AND_CONFIG_MAP => {
                return self.map_by_configmap(
                    account,
                    &cluster.name,
                    name_unique,
                    &signer,
                    access_key_id,
                );
            }
            None => {
                return Err(TokenRefused::new(
                    "the principal has no access entry in the cluster",
                ));
            }
        };
        let Signer {
            principal_id,
            session_name,
            arn,
            canonical_arn,
            ..
        } = signer;
        if entry
            .principal_id
            .as_deref()
            .is_some_and(|id| id != principal_id)
        {
            return Err(TokenRefused::new(
                "the access entry was made for an earlier principal of the same ARN",
            ));
        }
        let username = render(
            &entry.username,
            &Identity {
                account,
                session_name: &session_name,
                access_key_id,
            },
        )?;
        let mut extra = BTreeMap::new();
        extra.insert("arn".to_owned(), vec![arn]);
        extra.insert("canonicalArn".to_owned(), vec![canonical_arn]);
        extra.insert("sessionName".to_owned(), vec![session_name]);
        extra.insert("accessKeyId".to_owned(), vec![access_key_id.to_owned()]);
        extra.insert("principalId".to_owned(), vec![principal_id.clone()]);
        Ok(KubeUser {
            username,
            uid: format!("aws-iam-authenticator:{account}:{principal_id}"),
            groups: entry.kubernetes_groups.clone(),
            extra,
            mapped_by: MappedBy::AccessEntry,
        })
    }
}
