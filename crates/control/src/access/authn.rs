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
//!   path included, and the same unique id the entry was made for — or, for a role with no such
//!   entry, a pattern entry that matches it (the most specific; see `super::pattern`);
//!   `CONFIG_MAP`: the cluster's aws-auth ConfigMap (`configmap`); `API_AND_CONFIG_MAP`: the
//!   access entry if the principal has one (it wins, as on EKS), else the ConfigMap;
//! * the username renders in full: every template it holds has a value for this signer (a
//!   session tag, a role), and an access entry of type `STANDARD` gives no reserved prefix.
//!
//! [`KubeUser::entry_principal_arn`] names the entry that mapped the signer (the pattern, for a
//! pattern entry), for the authorizer; it is not part of the TokenReview answer.
//!
//! An account root has no access entry (EKS refuses entries for it), so a root token is refused;
//! the ConfigMap never maps a root either.
//! Every refusal carries a reason for the server log; callers get one generic answer.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::params::{MODE_API_AND_CONFIG_MAP, MODE_CONFIG_MAP, reserved_prefix};
use super::pattern;
use super::template::{self, Part};
pub use super::token::{
    CLUSTER_ID_HEADER, MAX_TOKEN_CHARS, PresignedUrl, REFUSED, TOKEN_PREFIX, TOKEN_VALIDITY_SECS,
    TokenRefused, parse_token,
};
use super::token::{Refusal, TOKEN_MAX_FUTURE_SECS, clip};
use crate::Control;
use crate::auth::{Caller, SigningScope};
use crate::authz::Target;
use crate::model;
use crate::state::{access_entries_of, access_entry_id};

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
    /// Which records mapped the signer. Only access entries carry access policies: a user
    /// mapped by the aws-auth ConfigMap gets its permissions from the cluster's RBAC alone.
    pub mapped_by: MappedBy,
}

impl KubeUser {
    /// The stored `principalArn` of the access entry that mapped the signer: the pattern itself
    /// when a pattern entry did; empty when the ConfigMap did. Not part of the TokenReview
    /// answer.
    pub fn entry_principal_arn(&self) -> &str {
        &self.entry_principal_arn
    }
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
    /// The signer's role (`None` for a user).
    pub role: Option<Arc<model::Role>>,
    /// The session's tags (`None` for a user, who has no session).
    pub tags: Option<BTreeMap<String, String>>,
}

impl Signer {
    /// Fill a username or group's templates, by the rules of `source`.
    pub(super) fn render(
        &self,
        template: &str,
        account: &str,
        access_key_id: &str,
        source: TemplateSource,
    ) -> Refusal<String> {
        render(
            template,
            &Identity {
                account,
                session_name: &self.session_name,
                access_key_id,
                role_name: self.role.as_ref().map(|r| r.name.as_str()),
                tags: self.tags.as_ref(),
            },
            source,
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
            entry_principal_arn: String::new(),
        }
    }
}

/// Whose template is rendered, which decides the rules it is held to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum TemplateSource {
    /// An access entry of type `STANDARD`: podiam's placeholders, the delimiting rule of
    /// `template::delimited`, and no reserved prefix in the result.
    StandardEntry,
    /// A node-type entry: its fixed username.
    NodeEntry,
    /// An `aws-auth` ConfigMap mapping: aws-iam-authenticator's placeholders only.
    ConfigMap,
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
fn render(template: &str, id: &Identity<'_>, source: TemplateSource) -> Refusal<String> {
    let parts = template::parse(template).map_err(|why| {
        TokenRefused::new(format!(
            "the entry's username is not a valid template: {why}"
        ))
    })?;
    // The write-time rules again, for what was stored before they held.
    match source {
        TemplateSource::StandardEntry if !template::delimited(&parts) => {
            return Err(TokenRefused::new(
                "the entry's username has {{SessionTag:...}} or {{RoleName}} not after literal text ending in : or /",
            ));
        }
        TemplateSource::ConfigMap if !template::authenticator_only(&parts) => {
            return Err(TokenRefused::new(
                "the aws-auth mapping uses a template aws-iam-authenticator does not have",
            ));
        }
        _ => {}
    }
    let standard = source == TemplateSource::StandardEntry;
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
    // Whoever may tag a session chooses the value: keep it to a session name's characters, so
    // it cannot spell another principal's ARN-shaped username (`:` and `/`) or anything else.
    if !value.bytes().all(session_name_byte) {
        return Err(TokenRefused::new(format!(
            "session tag {:?} holds characters a username template does not take (only letters, digits and +=,.@_-)",
            clip(key)
        )));
    }
    Ok(value)
}

/// A byte of a role session name (`[\w+=,.@-]`).
fn session_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b)
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
        let cluster = route_cluster(&t, route, account)?;
        let mode = cluster.access_config.authentication_mode.as_str();
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
                    role: None,
                    tags: None,
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
                    tags: Some(s.tags.clone()),
                    role: Some(role),
                }
            }
        };
        if mode == MODE_CONFIG_MAP {
            drop(t);
            return self.map_by_configmap(account, &cluster.name, &signer, access_key_id);
        }
        // The exact entry wins; a role without one may match a pattern entry (`pattern`).
        let entry = match t.access_entries.get(&(
            account.to_owned(),
            access_entry_id(&cluster.name, &signer.principal_arn),
        )) {
            Some(e) => Some(Arc::clone(&e.value)),
            None => match &signer.role {
                Some(r) => {
                    let entries =
                        access_entries_of(&t.access_entries, account, &cluster.name, None);
                    pattern::best(entries.map(|e| &e.value), account, &r.path, &r.name)
                        .map_err(|_tie| {
                            TokenRefused::new(
                                "two pattern entries of equal specificity match the role: delete one",
                            )
                        })?
                        .map(Arc::clone)
                }
                None => None,
            },
        };
        drop(t);
        // An entry wins; the ConfigMap applies only to a principal without one.
        let entry: Arc<model::AccessEntry> = match entry {
            Some(e) => e,
            None if mode == MODE_API_AND_CONFIG_MAP => {
                return self.map_by_configmap(account, &cluster.name, &signer, access_key_id);
            }
            None => {
                return Err(TokenRefused::new(
                    "the principal has no access entry in the cluster",
                ));
            }
        };
        if entry
            .principal_id
            .as_deref()
            .is_some_and(|id| *id != signer.principal_id)
        {
            return Err(TokenRefused::new(
                "the access entry was made for an earlier principal of the same ARN",
            ));
        }
        let source = if entry.kind == "STANDARD" {
            TemplateSource::StandardEntry
        } else {
            TemplateSource::NodeEntry
        };
        let username = signer.render(&entry.username, account, access_key_id, source)?;
        let mut user = signer.kube_user(
            account,
            access_key_id,
            username,
            entry.kubernetes_groups.clone(),
            MappedBy::AccessEntry,
        );
        // What the authorization webhook needs to grant this entry's policies to this user.
        let binding = self.access_binding(account, &entry, &user.username, &user.uid);
        user.extra.insert(
            super::kubeauthz::ENTRY_EXTRA.to_owned(),
            vec![entry.principal_arn.clone()],
        );
        user.extra
            .insert(super::kubeauthz::BINDING_EXTRA.to_owned(), vec![binding]);
        user.entry_principal_arn.clone_from(&entry.principal_arn);
        Ok(user)
    }
}
