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
//! * the cluster exists (in the signer's account), is not in `CONFIG_MAP` mode, and has an
//!   access entry for the signer's IAM role or user — the stored principal, path included, and
//!   the same unique id the entry was made for — or, for a role with no such entry, a pattern
//!   entry that matches it (the most specific; see `super::pattern`);
//! * the entry's username renders in full: every template it holds has a value for this
//!   signer (a session tag, a role), and a `STANDARD` entry's name has no reserved prefix.
//!
//! [`KubeUser::entry_principal_arn`] names the entry that mapped the signer (the pattern, for a
//! pattern entry), for the authorizer; it is not part of the TokenReview answer.
//!
//! An account root has no access entry (EKS refuses entries for it), so a root token is refused.
//! Every refusal carries a reason for the server log; callers get one generic answer.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;

use super::params::{MODE_CONFIG_MAP, reserved_prefix};
use super::pattern;
use super::template::{self, Part};
use crate::Control;
use crate::auth::{Caller, SigningScope};
use crate::authz::Target;
use crate::model;
use crate::state::{access_entries_of, access_entry_id};

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
    fn new(reason: impl Into<String>) -> Self {
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
    /// See [`KubeUser::entry_principal_arn`].
    pub(crate) entry_principal_arn: String,
}

impl KubeUser {
    /// The stored `principalArn` of the access entry that mapped the signer: the pattern itself
    /// when a pattern entry did. Not part of the TokenReview answer.
    pub fn entry_principal_arn(&self) -> &str {
        &self.entry_principal_arn
    }
}

/// The facts templates are filled from.
struct Identity<'a> {
    account: &'a str,
    session_name: &'a str,
    access_key_id: &'a str,
    /// The signer's role; `None` for an IAM user.
    role_name: Option<&'a str>,
    /// The session's tags; `None` for an IAM user (who has no session).
    tags: Option<&'a BTreeMap<String, String>>,
}

/// Fill a username's templates (see [`super::template`]): `{{AccountID}}`, `{{SessionName}}`
/// (with `@` turned into `-`, as EKS does), `{{SessionNameRaw}}`, `{{AccessKeyID}}`,
/// `{{RoleName}}`, `{{SessionTag:KEY}}`. `{{EC2PrivateDNSName}}` needs the EC2 API, which
/// podiam does not have: such a username is refused. So is one whose template needs what the
/// signer lacks (a role or a session tag, or a tag with an empty value): never an empty or
/// partial name. For a `STANDARD` entry (`standard`), a rendered name with a reserved prefix
/// (`system:` ...) is refused too: a session name or tag value must not smuggle one in.
fn render(template: &str, id: &Identity<'_>, standard: bool) -> Refusal<String> {
    let parts = template::parse(template).map_err(|why| {
        TokenRefused::new(format!(
            "the entry's username is not a valid template: {why}"
        ))
    })?;
    let sanitized = id.session_name.replace('@', "-");
    let mut out = String::new();
    for part in parts {
        match part {
            Part::Text(t) => out.push_str(t),
            Part::AccountId => out.push_str(id.account),
            Part::SessionNameRaw => out.push_str(id.session_name),
            Part::SessionName => out.push_str(&sanitized),
            Part::AccessKeyId => out.push_str(id.access_key_id),
            Part::Ec2PrivateDnsName => {
                return Err(TokenRefused::new(
                    "the entry's username needs {{EC2PrivateDNSName}}, which podiam cannot resolve",
                ));
            }
            Part::RoleName => out.push_str(id.role_name.ok_or_else(|| {
                TokenRefused::new(
                    "the entry's username needs {{RoleName}}, and the signer is an IAM user",
                )
            })?),
            Part::SessionTag(key) => out.push_str(session_tag(id, key)?),
        }
    }
    if out.is_empty() {
        return Err(TokenRefused::new("the entry's username renders empty"));
    }
    if out.chars().any(char::is_control) {
        return Err(TokenRefused::new(
            "the entry's username renders with a control character",
        ));
    }
    if standard && let Some(p) = reserved_prefix(&out) {
        return Err(TokenRefused::new(format!(
            "the entry's username renders as {:?}, which starts with the reserved prefix {p}",
            clip(&out)
        )));
    }
    Ok(out)
}

/// The cluster a review on `route` is for, when the user is of `account`: the route's account
/// must be the user's; a route without an account resolves only a name no other account uses.
pub(super) fn route_cluster(
    t: &crate::state::Tables,
    route: ClusterRoute<'_>,
    account: &str,
) -> Refusal<Arc<model::Cluster>> {
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
    cluster.ok_or_else(|| TokenRefused::new("no such cluster"))
}

/// The value of the session tag `key` (compared as IAM compares tag keys: without regard to
/// case), neither missing nor empty.
fn session_tag<'a>(id: &Identity<'a>, key: &str) -> Refusal<&'a str> {
    let tags = id.tags.ok_or_else(|| {
        TokenRefused::new(format!(
            "the entry's username needs session tag {:?}, and the signer is an IAM user (no session tags)",
            clip(key)
        ))
    })?;
    let folded = podiam_policy::fold_key(key);
    let value = tags
        .iter()
        .find(|(k, _)| podiam_policy::fold_key(k) == folded)
        .map(|(_, v)| v.as_str())
        .ok_or_else(|| {
            TokenRefused::new(format!(
                "the entry's username needs session tag {:?}, which the session does not carry",
                clip(key)
            ))
        })?;
    if value.is_empty() {
        return Err(TokenRefused::new(format!(
            "the entry's username needs session tag {:?}, whose value is empty",
            clip(key)
        )));
    }
    Ok(value)
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

    /// The access-entry mapping of an authenticated signer.
    fn map_to_kube(
        &self,
        route: ClusterRoute<'_>,
        caller: &Caller,
        access_key_id: &str,
    ) -> Refusal<KubeUser> {
        let account = caller.account();
        let t = self.db.read();
        let cluster = route_cluster(&t, route, account)?;
        if cluster.access_config.authentication_mode == MODE_CONFIG_MAP {
            return Err(TokenRefused::new(
                "the cluster is in CONFIG_MAP mode: its access entries are off",
            ));
        }
        // The lasting principal behind the signer, as stored (path and case), and its id.
        let (principal_arn, principal_id, session_name, arn, canonical_arn, role) = match caller {
            Caller::Root { .. } => {
                return Err(TokenRefused::new("an account root has no access entry"));
            }
            Caller::User { user, .. } => {
                let arn = Target::user(account, user).arn().to_owned();
                (
                    arn.clone(),
                    user.id.clone(),
                    String::new(),
                    arn.clone(),
                    arn,
                    None,
                )
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
                (
                    Target::role(account, &role).arn().to_owned(),
                    role.id.clone(),
                    s.session_name.clone(),
                    caller.arn(),
                    // As the authenticator canonicalizes a session's ARN: the role, no path.
                    format!("arn:aws:iam::{account}:role/{}", role.name),
                    Some(role),
                )
            }
        };
        let no_entry = || TokenRefused::new("the principal has no access entry in the cluster");
        // The exact entry wins; a role without one may match a pattern entry (`pattern`).
        let entry: Arc<model::AccessEntry> = match t.access_entries.get(&(
            account.to_owned(),
            access_entry_id(&cluster.name, &principal_arn),
        )) {
            Some(e) => Arc::clone(&e.value),
            None => {
                let r = role.as_ref().ok_or_else(no_entry)?;
                let entries = access_entries_of(&t.access_entries, account, &cluster.name, None);
                pattern::best(entries.map(|e| &e.value), account, &r.path, &r.name)
                    .map_err(|()| {
                        TokenRefused::new(
                            "two pattern entries of equal specificity match the role: delete one",
                        )
                    })?
                    .map(Arc::clone)
                    .ok_or_else(no_entry)?
            }
        };
        drop(t);
        if entry
            .principal_id
            .as_deref()
            .is_some_and(|id| id != principal_id)
        {
            return Err(TokenRefused::new(
                "the access entry was made for an earlier principal of the same ARN",
            ));
        }
        let tags = match caller {
            Caller::Session(s) => Some(&s.tags),
            _ => None,
        };
        let username = render(
            &entry.username,
            &Identity {
                account,
                session_name: &session_name,
                access_key_id,
                role_name: role.as_ref().map(|r| r.name.as_str()),
                tags,
            },
            entry.kind == "STANDARD",
        )?;
        let mut extra = BTreeMap::new();
        extra.insert("arn".to_owned(), vec![arn]);
        extra.insert("canonicalArn".to_owned(), vec![canonical_arn]);
        extra.insert("sessionName".to_owned(), vec![session_name]);
        extra.insert("accessKeyId".to_owned(), vec![access_key_id.to_owned()]);
        extra.insert("principalId".to_owned(), vec![principal_id.clone()]);
        let uid = format!("aws-iam-authenticator:{account}:{principal_id}");
        extra.insert(
            super::kubeauthz::ENTRY_EXTRA.to_owned(),
            vec![entry.principal_arn.clone()],
        );
        extra.insert(
            super::kubeauthz::BINDING_EXTRA.to_owned(),
            vec![self.access_binding(account, &entry, &username, &uid)],
        );
        Ok(KubeUser {
            username,
            uid,
            groups: entry.kubernetes_groups.clone(),
            extra,
            entry_principal_arn: entry.principal_arn.clone(),
        })
    }
}
