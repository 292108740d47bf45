//! Principals: who makes a request ([`Principal`]) and the `Principal`/`NotPrincipal`
//! element that names them ([`PrincipalSpec`]).
//!
//! Matching rules (AWS IAM "Principal" element documentation):
//! * `"*"` and `{"AWS": "*"}` match everyone, including anonymous, federated (web identity)
//!   and service principals (AWS documents the two forms as equivalent);
//! * an account (`"123456789012"` or `arn:aws:iam::123456789012:root`) matches every IAM
//!   principal of that account (root, users, role sessions, federated users);
//! * a user, assumed-role session or federated-user ARN matches that principal exactly
//!   (case-sensitive; the server should canonicalize names to their stored case);
//! * a role ARN (with its path) matches every session of that role, compared with
//!   [`Principal::role_arn`];
//! * `Federated` matches a web-identity principal whose provider (the IAM OIDC provider ARN,
//!   a SAML provider ARN or a well-known name such as `accounts.google.com`) is exactly equal
//!   (case-sensitive);
//! * `Service` matches a service principal, compared ASCII case-insensitively (service
//!   principal names are DNS names);
//! * `CanonicalUser` is validated but never matches: no request principal carries one.
//!
//! `NotPrincipal` is read per effect, from the AWS IAM "NotPrincipal" element documentation
//! (<https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notprincipal.html>).
//! A principal is judged by each identity in its chain (account, role, session; or account,
//! user):
//! * with `Deny`, "the actions specified in the policy statement are explicitly denied to all
//!   principals except the ones specified", and a role session is exempt only if the account,
//!   the role ARN and the session ARN are all listed: the principal is excluded only if
//!   *every* identity of its chain is listed;
//! * with `Allow`, the statement "allows all principals except the one named in the
//!   NotPrincipal element, including anonymous users": a principal is named, and so NOT
//!   granted, as soon as *any* identity of its chain is listed (listing a role ARN withholds
//!   the grant from every session of the role, listing the account from everyone in it). The
//!   whole-chain rule exists so a `Deny` cannot be escaped by listing part of a chain; applied
//!   to `Allow` it would turn the exclusion into a grant for the very principal named.
//!
//! Anonymous requests have no identity to list: they are excluded only by `"*"`.

use crate::PolicyError;
use crate::effect::StatementEffect;
use crate::wildcard::{has_wildcards_or_whitespace, split_arn};

/// The kind of a request principal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PrincipalKind {
    /// The account root user.
    Root,
    /// An IAM user.
    User,
    /// A role session (`arn:aws:sts::ACCT:assumed-role/ROLE/SESSION`).
    AssumedRole,
    /// A federated-user session from `GetFederationToken`.
    FederatedUser,
    /// A web-identity or SAML federated principal (before the role is assumed).
    WebIdentity,
    /// An AWS service principal such as `pods.eks.amazonaws.com`.
    Service,
    /// An unauthenticated request.
    Anonymous,
}

impl PrincipalKind {
    /// True for principals that belong to an AWS account (matched by `"AWS"` entries).
    #[must_use]
    pub fn is_iam(self) -> bool {
        matches!(
            self,
            Self::Root | Self::User | Self::AssumedRole | Self::FederatedUser
        )
    }
}

/// The principal that makes a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// What kind of principal this is.
    pub kind: PrincipalKind,
    /// Its ARN (for a role session the assumed-role ARN; for web identity and service
    /// principals the provider or service name; for anonymous `"anonymous"`).
    pub arn: String,
    /// The 12-digit account the principal belongs to (IAM principals only).
    pub account: Option<String>,
    /// For role sessions: the ARN of the role, including its path.
    pub role_arn: Option<String>,
    /// For web identity: the provider (IAM OIDC provider ARN, SAML provider ARN, or name).
    pub federated: Option<String>,
    /// For service principals: the service principal name.
    pub service: Option<String>,
}

impl Principal {
    fn base(kind: PrincipalKind, arn: String) -> Self {
        Principal {
            kind,
            arn,
            account: None,
            role_arn: None,
            federated: None,
            service: None,
        }
    }

    /// The root user of `account` (ARN `arn:aws:iam::ACCOUNT:root`).
    #[must_use]
    pub fn root(account: impl Into<String>) -> Self {
        let account = account.into();
        Principal {
            account: Some(account.clone()),
            ..Self::base(PrincipalKind::Root, format!("arn:aws:iam::{account}:root"))
        }
    }

    /// An IAM user.
    #[must_use]
    pub fn user(arn: impl Into<String>, account: impl Into<String>) -> Self {
        Principal {
            account: Some(account.into()),
            ..Self::base(PrincipalKind::User, arn.into())
        }
    }

    /// A role session: `session_arn` is the `assumed-role` ARN, `role_arn` the role's ARN
    /// with its path.
    #[must_use]
    pub fn assumed_role(
        session_arn: impl Into<String>,
        role_arn: impl Into<String>,
        account: impl Into<String>,
    ) -> Self {
        Principal {
            account: Some(account.into()),
            role_arn: Some(role_arn.into()),
            ..Self::base(PrincipalKind::AssumedRole, session_arn.into())
        }
    }

    /// A federated-user session (`arn:aws:sts::ACCT:federated-user/NAME`).
    #[must_use]
    pub fn federated_user(arn: impl Into<String>, account: impl Into<String>) -> Self {
        Principal {
            account: Some(account.into()),
            ..Self::base(PrincipalKind::FederatedUser, arn.into())
        }
    }

    /// A web-identity principal authenticated by `provider` (for OIDC: the IAM OIDC
    /// provider ARN).
    #[must_use]
    pub fn web_identity(provider: impl Into<String>) -> Self {
        let provider = provider.into();
        Principal {
            federated: Some(provider.clone()),
            ..Self::base(PrincipalKind::WebIdentity, provider)
        }
    }

    /// A service principal.
    #[must_use]
    pub fn service(name: impl Into<String>) -> Self {
        let name = name.into();
        Principal {
            service: Some(name.clone()),
            ..Self::base(PrincipalKind::Service, name)
        }
    }

    /// An anonymous caller.
    #[must_use]
    pub fn anonymous() -> Self {
        Self::base(PrincipalKind::Anonymous, "anonymous".to_owned())
    }

    /// The identities of the principal's chain (for `NotPrincipal`).
    fn chain(&self) -> [Option<Ident<'_>>; 3] {
        let account = self
            .account
            .as_deref()
            .filter(|_| self.kind.is_iam())
            .map(Ident::Account);
        match self.kind {
            PrincipalKind::Root => [account, None, None],
            PrincipalKind::User | PrincipalKind::FederatedUser => {
                [account, Some(Ident::Arn(&self.arn)), None]
            }
            PrincipalKind::AssumedRole => [
                account,
                self.role_arn.as_deref().map(Ident::Arn),
                Some(Ident::Arn(&self.arn)),
            ],
            PrincipalKind::WebIdentity => {
                [self.federated.as_deref().map(Ident::Federated), None, None]
            }
            PrincipalKind::Service => [self.service.as_deref().map(Ident::Service), None, None],
            PrincipalKind::Anonymous => [None, None, None],
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Ident<'a> {
    Account(&'a str),
    Arn(&'a str),
    Federated(&'a str),
    Service(&'a str),
}

/// How a statement's `Principal` matched the request principal, weakest first.
///
/// The strength decides what a resource-based policy grant is worth on its own (see
/// [`crate::evaluate`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PrincipalMatch {
    /// Through the principal's account: a delegation to that account's identity policies.
    Account,
    /// Through `"*"`, a service or federated provider, or by not being excluded by
    /// `NotPrincipal`.
    Broad,
    /// Through the role ARN of an assumed-role session.
    Role,
    /// The principal's own ARN (IAM user, role session or federated user).
    Exact,
}

/// A principal type key of the `Principal` element.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PrincipalType {
    /// `"AWS"`: accounts, users, roles, sessions.
    Aws,
    /// `"Federated"`: identity providers.
    Federated,
    /// `"Service"`: service principals.
    Service,
    /// `"CanonicalUser"`: S3 canonical user ids.
    CanonicalUser,
}

impl PrincipalType {
    /// The JSON key.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Aws => "AWS",
            Self::Federated => "Federated",
            Self::Service => "Service",
            Self::CanonicalUser => "CanonicalUser",
        }
    }

    pub(crate) fn from_key(key: &str) -> Option<Self> {
        match key {
            "AWS" => Some(Self::Aws),
            "Federated" => Some(Self::Federated),
            "Service" => Some(Self::Service),
            "CanonicalUser" => Some(Self::CanonicalUser),
            _ => None,
        }
    }
}

/// How a principal value matches; the text compared is the value as written
/// ([`PrincipalValue::as_str`]).
#[derive(Clone, Copy, Debug)]
enum IdMatcher {
    Any,
    /// The 12-digit account id starting at this byte offset of the value (the value itself, or
    /// the account field of `arn:...:iam::ACCOUNT:root`).
    Account(usize),
    Arn,
    Federated,
    /// Compared ASCII case-insensitively.
    Service,
    CanonicalUser,
    /// The unique id (`AIDA...`, `AROA...`) IAM writes in place of a user or role ARN once that
    /// entity is deleted: it names no principal that exists, so it matches none.
    UniqueId,
}

/// One validated principal value.
#[derive(Clone, Debug)]
pub struct PrincipalValue {
    raw: String,
    matcher: IdMatcher,
}

impl PartialEq for PrincipalValue {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}

impl Eq for PrincipalValue {}

impl PrincipalValue {
    /// The value as written.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The account id of an `Account` matcher.
    fn account(&self, start: usize) -> &str {
        self.raw
            .get(start..start.saturating_add(12))
            .unwrap_or_default()
    }

    fn strength(&self, p: &Principal) -> Option<PrincipalMatch> {
        let raw = self.raw.as_str();
        match self.matcher {
            IdMatcher::Any => Some(PrincipalMatch::Broad),
            IdMatcher::Account(start) => (p.kind.is_iam()
                && p.account.as_deref() == Some(self.account(start)))
            .then_some(PrincipalMatch::Account),
            IdMatcher::Arn => {
                if p.kind.is_iam() && p.kind != PrincipalKind::Root && p.arn == raw {
                    Some(PrincipalMatch::Exact)
                } else if p.kind == PrincipalKind::AssumedRole && p.role_arn.as_deref() == Some(raw)
                {
                    Some(PrincipalMatch::Role)
                } else {
                    None
                }
            }
            IdMatcher::Federated => (p.kind == PrincipalKind::WebIdentity
                && p.federated.as_deref() == Some(raw))
            .then_some(PrincipalMatch::Broad),
            IdMatcher::Service => (p.kind == PrincipalKind::Service
                && p.service
                    .as_deref()
                    .is_some_and(|x| x.eq_ignore_ascii_case(raw)))
            .then_some(PrincipalMatch::Broad),
            IdMatcher::CanonicalUser | IdMatcher::UniqueId => None,
        }
    }

    fn lists(&self, ident: Ident<'_>) -> bool {
        let raw = self.raw.as_str();
        match (self.matcher, ident) {
            (IdMatcher::Any, _) => true,
            (IdMatcher::Account(start), Ident::Account(b)) => self.account(start) == b,
            (IdMatcher::Arn, Ident::Arn(b)) | (IdMatcher::Federated, Ident::Federated(b)) => {
                raw == b
            }
            (IdMatcher::Service, Ident::Service(b)) => raw.eq_ignore_ascii_case(b),
            _ => false,
        }
    }
}

/// The value of a `Principal` or `NotPrincipal` element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PrincipalSpec {
    /// `"*"`.
    Any,
    /// `{"AWS": ..., "Service": ..., ...}`, keys in document order.
    Map(Vec<(PrincipalType, Vec<PrincipalValue>)>),
}

impl PrincipalSpec {
    /// The strongest way this element matches `p`, if at all.
    #[must_use]
    pub fn matches(&self, p: &Principal) -> Option<PrincipalMatch> {
        match self {
            Self::Any => Some(PrincipalMatch::Broad),
            Self::Map(entries) => entries
                .iter()
                .flat_map(|(_, values)| values)
                .filter_map(|v| v.strength(p))
                .max(),
        }
    }

    /// For `NotPrincipal` in a statement with `effect`: is `p` excluded from the statement?
    ///
    /// `Deny`: only if *every* identity of its chain is listed (so a role session stays denied
    /// unless its account, role ARN and session ARN are all listed). `Allow`: as soon as *any*
    /// identity of its chain is listed (so the named principal is never granted). See the
    /// module documentation for the AWS text behind both.
    #[must_use]
    pub fn excludes(&self, p: &Principal, effect: StatementEffect) -> bool {
        let Self::Map(entries) = self else {
            return true;
        };
        let values = || entries.iter().flat_map(|(_, values)| values);
        if values().any(|v| matches!(v.matcher, IdMatcher::Any)) {
            return true;
        }
        let chain = p.chain();
        let mut identities = chain.iter().flatten().peekable();
        if identities.peek().is_none() {
            return false;
        }
        let listed = |ident: &Ident<'_>| values().any(|v| v.lists(*ident));
        match effect {
            StatementEffect::Deny => identities.all(listed),
            StatementEffect::Allow => identities.any(listed),
        }
    }

    /// Parses the JSON value of a `Principal`/`NotPrincipal` element.
    pub(crate) fn from_json(
        doc: &crate::json::Doc<'_>,
        json: &crate::json::Json<'_>,
        element: &str,
    ) -> Result<PrincipalSpec, PolicyError> {
        use crate::json::Json;
        match json {
            Json::String(s) if s == "*" => Ok(Self::Any),
            Json::String(s) => Err(PolicyError::InvalidPrincipal {
                kind: element.to_owned(),
                value: s.to_string(),
            }),
            Json::Object(_) => {
                let entries = doc.object(json).unwrap_or_default();
                crate::json::check_duplicates(entries, || element.to_owned())?;
                if entries.is_empty() {
                    return Err(PolicyError::InvalidPrincipal {
                        kind: element.to_owned(),
                        value: "{}".to_owned(),
                    });
                }
                let mut out = Vec::with_capacity(entries.len());
                for (key, value) in entries {
                    let invalid = |value: String| PolicyError::InvalidPrincipal {
                        kind: key.to_string(),
                        value,
                    };
                    let Some(ptype) = PrincipalType::from_key(key) else {
                        return Err(invalid(value_text(value)));
                    };
                    let items = match value {
                        Json::String(_) => std::slice::from_ref(value),
                        Json::Array(_) => {
                            let items = doc.array(value).unwrap_or_default();
                            if let Some(other) =
                                items.iter().find(|i| !matches!(i, Json::String(_)))
                            {
                                return Err(invalid(value_text(other)));
                            }
                            items
                        }
                        other => return Err(invalid(value_text(other))),
                    };
                    if items.is_empty() {
                        return Err(invalid("[]".to_owned()));
                    }
                    let mut values = Vec::with_capacity(items.len());
                    for s in items.iter().filter_map(Json::as_str) {
                        let matcher = parse_value(ptype, s).ok_or_else(|| invalid(s.to_owned()))?;
                        values.push(PrincipalValue {
                            raw: s.to_owned(),
                            matcher,
                        });
                    }
                    out.push((ptype, values));
                }
                Ok(Self::Map(out))
            }
            _ => Err(PolicyError::WrongType {
                element: element.to_owned(),
                expected: "\"*\" or an object",
            }),
        }
    }

    /// Appends the JSON form to `out`.
    pub(crate) fn write_json(&self, out: &mut String) {
        match self {
            Self::Any => crate::json::write_str(out, "*"),
            Self::Map(entries) => {
                out.push('{');
                for (i, (ptype, values)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    crate::json::write_str(out, ptype.as_str());
                    out.push(':');
                    crate::json::write_str_or_list(out, values.iter().map(PrincipalValue::as_str));
                }
                out.push('}');
            }
        }
    }
}

fn value_text(json: &crate::json::Json<'_>) -> String {
    use crate::json::Json;
    match json {
        Json::String(s) => s.to_string(),
        Json::Number(s) => s.clone(),
        Json::Bool(b) => b.to_string(),
        other => other.type_name().to_owned(),
    }
}

/// `^[0-9]{12}$`
pub(crate) fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// `aws`, `aws-cn`, `aws-us-gov`, `aws-iso-b`, ...
fn is_partition(s: &str) -> bool {
    s.strip_prefix("aws").is_some_and(|rest| {
        rest.is_empty()
            || rest.strip_prefix('-').is_some_and(|r| {
                !r.is_empty()
                    && r.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            })
    })
}

/// An IAM-style `path/name` (at least a name, no empty last component, no whitespace).
fn is_path_name(s: &str) -> bool {
    !s.is_empty() && !s.ends_with('/') && !s.starts_with('/') && !s.chars().any(char::is_whitespace)
}

/// A DNS-like name: `[A-Za-z0-9.-]+` with at least one dot.
fn is_dns_name(s: &str) -> bool {
    s.contains('.')
        && !s.starts_with('.')
        && !s.ends_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
}

/// An IAM unique id of a user or role: `AIDA`/`AROA` and 17 characters of `[A-Z2-7]`.
fn is_unique_id(s: &str) -> bool {
    (s.starts_with("AIDA") || s.starts_with("AROA"))
        && s.len() == 21
        && s.bytes()
            .skip(4)
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
}

/// Splits an IAM/STS ARN without wildcards: returns (service, account, resource).
fn iam_arn(s: &str) -> Option<(&str, &str, &str)> {
    if has_wildcards_or_whitespace(s) {
        return None;
    }
    let [arn, partition, service, region, account, resource] = split_arn(s)?;
    (arn == "arn" && is_partition(partition) && region.is_empty() && is_account_id(account))
        .then_some((service, account, resource))
}

fn parse_value(ptype: PrincipalType, s: &str) -> Option<IdMatcher> {
    match ptype {
        PrincipalType::Aws => {
            if s == "*" {
                return Some(IdMatcher::Any);
            }
            if is_account_id(s) {
                return Some(IdMatcher::Account(0));
            }
            if is_unique_id(s) {
                return Some(IdMatcher::UniqueId);
            }
            let (service, account, resource) = iam_arn(s)?;
            let valid = match service {
                "iam" if resource == "root" => {
                    // The account is the fifth field: it starts after the fourth ':'.
                    let start = s.match_indices(':').nth(3).map(|(i, _)| i + 1)?;
                    return (s.get(start..start + account.len()) == Some(account))
                        .then_some(IdMatcher::Account(start));
                }
                "iam" => ["user/", "role/"]
                    .iter()
                    .any(|p| resource.strip_prefix(p).is_some_and(is_path_name)),
                "sts" => {
                    if let Some(rest) = resource.strip_prefix("assumed-role/") {
                        matches!(rest.split_once('/'), Some((role, session)) if !role.is_empty() && !session.is_empty() && !session.contains('/'))
                    } else {
                        resource
                            .strip_prefix("federated-user/")
                            .is_some_and(|n| !n.is_empty() && !n.contains('/'))
                    }
                }
                _ => false,
            };
            valid.then_some(IdMatcher::Arn)
        }
        PrincipalType::Federated => {
            let valid = if s.starts_with("arn:") {
                iam_arn(s).is_some_and(|(service, _, resource)| {
                    service == "iam"
                        && ["oidc-provider/", "saml-provider/"]
                            .iter()
                            .any(|p| resource.strip_prefix(p).is_some_and(|r| !r.is_empty()))
                })
            } else {
                is_dns_name(s)
            };
            valid.then_some(IdMatcher::Federated)
        }
        PrincipalType::Service => is_dns_name(s).then_some(IdMatcher::Service),
        PrincipalType::CanonicalUser => (s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
            .then_some(IdMatcher::CanonicalUser),
    }
}

#[cfg(test)]
mod tests;
