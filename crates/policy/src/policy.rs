//! The typed policy AST: parsing with validation, and serialization back to JSON.
//!
//! Validation rules (from the IAM JSON policy grammar and the errors IAM returns):
//! * top level: only `Version`, `Id`, `Statement`; `Statement` is an object or a non-empty
//!   array of objects; `Version` is `2012-10-17` or `2008-10-17` (absent means
//!   `2008-10-17`, where `${...}` is literal text);
//! * statement: only `Sid`, `Effect`, `Principal`, `NotPrincipal`, `Action`, `NotAction`,
//!   `Resource`, `NotResource`, `Condition`; element names and `Effect` values are
//!   case-sensitive; exactly one of `Action`/`NotAction` (non-empty); exactly one of
//!   `Resource`/`NotResource` (non-empty) except in trust policies, where both are
//!   prohibited; `Principal`/`NotPrincipal` prohibited in identity, session and boundary
//!   policies, and exactly one required in resource and trust policies, where trust policies
//!   only accept `Principal` (IAM rejects `NotPrincipal` in a role trust policy);
//! * `Sid`: in IAM policy kinds (everything but [`PolicyKind::Resource`]) only
//!   `[0-9A-Za-z]*`, and non-empty Sids must be unique within the policy. Resource policies
//!   of other services accept any string and duplicates;
//! * actions: `*` or `vendor:name`, vendor `[A-Za-z0-9-]+` without wildcards, name
//!   non-empty without `:` or whitespace (`*`/`?` allowed); matched case-insensitively;
//! * resources: `*` or an ARN-shaped string (`arn:` and at least six `:`-separated fields),
//!   wildcards anywhere; matched case-sensitively, field by field, a `*` ending one of the
//!   first five fields also crossing `:` (see the `wildcard` module);
//! * `Principal`, `Action`, `Resource` values must be JSON strings; condition values may be
//!   strings, numbers or booleans (normalized to strings) or arrays of those;
//! * duplicate keys in any object are rejected.

use std::fmt;

use crate::PolicyError;
use crate::condition::{ConditionBlock, OperatorBlock};
use crate::effect::StatementEffect;
use crate::json::{self, Json};
use crate::principal::PrincipalSpec;

mod parse;
mod pattern;

use parse::parse_statement;
pub use pattern::{ActionPattern, ResourcePattern};

/// What a policy document is attached as; decides which elements are allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PolicyKind {
    /// Identity-based policy (inline or managed, on a user, group or role). No principal.
    Identity,
    /// Resource-based policy of a resource other than a role: `Principal`/`NotPrincipal`
    /// required, `Resource`/`NotResource` required.
    Resource,
    /// Role trust policy (`AssumeRolePolicyDocument`): `Principal` required, `NotPrincipal`
    /// and `Resource`/`NotResource` prohibited.
    Trust,
    /// Session policy passed to `AssumeRole*`/`GetFederationToken`. No principal.
    Session,
    /// Permissions boundary (a managed policy). No principal.
    Boundary,
}

impl PolicyKind {
    fn allows_principal(self) -> bool {
        matches!(self, Self::Resource | Self::Trust)
    }

    /// IAM itself validates these kinds (Sid rules).
    fn is_iam(self) -> bool {
        !matches!(self, Self::Resource)
    }
}

/// The policy language version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    /// `2008-10-17`: no policy variables.
    V2008,
    /// `2012-10-17`: policy variables supported.
    V2012,
}

impl Version {
    /// The `Version` string.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V2008 => "2008-10-17",
            Self::V2012 => "2012-10-17",
        }
    }
}

/// Size limits applied by [`Policy::parse_with_limits`].
///
/// Sizes are counted as AWS counts them: characters, without JSON whitespace outside string
/// literals (see [`crate::policy_size`]). IAM's limits for inline policies are aggregate over
/// all inline policies of a user/group/role; enforcing the aggregate is the caller's job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Limits {
    /// Largest accepted document.
    pub max_bytes: usize,
}

impl Limits {
    /// Inline policies of a role (aggregate): 10,240.
    pub const INLINE_ROLE: Limits = Limits { max_bytes: 10_240 };
    /// Inline policies of a user (aggregate): 2,048.
    pub const INLINE_USER: Limits = Limits { max_bytes: 2_048 };
    /// Inline policies of a group (aggregate): 5,120.
    pub const INLINE_GROUP: Limits = Limits { max_bytes: 5_120 };
    /// A managed policy (also used as permissions boundary): 6,144.
    pub const MANAGED: Limits = Limits { max_bytes: 6_144 };
    /// A role trust policy (default quota): 2,048.
    pub const TRUST: Limits = Limits { max_bytes: 2_048 };
    /// An inline session policy: 2,048.
    pub const SESSION: Limits = Limits { max_bytes: 2_048 };
    /// A resource-based policy (S3 bucket policies allow 20 KB): 20,480.
    pub const RESOURCE: Limits = Limits { max_bytes: 20_480 };

    /// The default for a kind: identity → [`Limits::INLINE_ROLE`] (the most permissive identity
    /// limit; pass [`Limits::MANAGED`] for managed policies), boundary →
    /// [`Limits::MANAGED`], trust → [`Limits::TRUST`], session → [`Limits::SESSION`],
    /// resource → [`Limits::RESOURCE`].
    #[must_use]
    pub fn for_kind(kind: PolicyKind) -> Limits {
        match kind {
            PolicyKind::Identity => Self::INLINE_ROLE,
            PolicyKind::Boundary => Self::MANAGED,
            PolicyKind::Trust => Self::TRUST,
            PolicyKind::Session => Self::SESSION,
            PolicyKind::Resource => Self::RESOURCE,
        }
    }
}

/// `Action` or `NotAction`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActionClause {
    /// Applies to the listed actions.
    Action(Vec<ActionPattern>),
    /// Applies to every action except the listed ones.
    NotAction(Vec<ActionPattern>),
}

/// `Resource` or `NotResource`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResourceClause {
    /// Applies to the listed resources.
    Resource(Vec<ResourcePattern>),
    /// Applies to every resource except the listed ones.
    NotResource(Vec<ResourcePattern>),
}

/// `Principal` or `NotPrincipal`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PrincipalClause {
    /// Applies to the listed principals.
    Principal(PrincipalSpec),
    /// Applies to every principal except the listed ones.
    NotPrincipal(PrincipalSpec),
}

/// One statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    sid: Option<String>,
    effect: StatementEffect,
    principal: Option<PrincipalClause>,
    action: ActionClause,
    resource: Option<ResourceClause>,
    condition: Option<ConditionBlock>,
}

impl Statement {
    /// The `Sid`, if present.
    #[must_use]
    pub fn sid(&self) -> Option<&str> {
        self.sid.as_deref()
    }

    /// `Allow` or `Deny`.
    #[must_use]
    pub fn effect(&self) -> StatementEffect {
        self.effect
    }

    /// `Principal`/`NotPrincipal` (resource and trust policies).
    #[must_use]
    pub fn principal(&self) -> Option<&PrincipalClause> {
        self.principal.as_ref()
    }

    /// `Action`/`NotAction`.
    #[must_use]
    pub fn action(&self) -> &ActionClause {
        &self.action
    }

    /// `Resource`/`NotResource` (absent in trust policies).
    #[must_use]
    pub fn resource(&self) -> Option<&ResourceClause> {
        self.resource.as_ref()
    }

    /// `Condition`, if present.
    #[must_use]
    pub fn condition(&self) -> Option<&ConditionBlock> {
        self.condition.as_ref()
    }

    fn write_json(&self, out: &mut String) {
        out.push('{');
        if let Some(sid) = &self.sid {
            out.push_str("\"Sid\":");
            json::write_str(out, sid);
            out.push(',');
        }
        out.push_str("\"Effect\":");
        json::write_str(out, self.effect.as_str());
        match &self.principal {
            Some(PrincipalClause::Principal(p)) => {
                out.push_str(",\"Principal\":");
                p.write_json(out);
            }
            Some(PrincipalClause::NotPrincipal(p)) => {
                out.push_str(",\"NotPrincipal\":");
                p.write_json(out);
            }
            None => {}
        }
        let (name, actions) = match &self.action {
            ActionClause::Action(a) => ("Action", a),
            ActionClause::NotAction(a) => ("NotAction", a),
        };
        out.push_str(",\"");
        out.push_str(name);
        out.push_str("\":");
        json::write_str_or_list(out, actions.iter().map(ActionPattern::as_str));
        if let Some(resource) = &self.resource {
            let (name, resources) = match resource {
                ResourceClause::Resource(r) => ("Resource", r),
                ResourceClause::NotResource(r) => ("NotResource", r),
            };
            out.push_str(",\"");
            out.push_str(name);
            out.push_str("\":");
            json::write_str_or_list(out, resources.iter().map(ResourcePattern::as_str));
        }
        if let Some(condition) = &self.condition {
            out.push_str(",\"Condition\":");
            condition.write_json(out);
        }
        out.push('}');
    }
}

/// A parsed, validated policy document.
///
/// Equality compares the document (kind, version, id, statements), not the label.
#[derive(Clone, Debug)]
pub struct Policy {
    kind: PolicyKind,
    label: String,
    version: Option<Version>,
    id: Option<String>,
    statements: Vec<Statement>,
}

impl PartialEq for Policy {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind
            && self.version == other.version
            && self.id == other.id
            && self.statements == other.statements
    }
}

impl Eq for Policy {}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_json())
    }
}

const TOP_LEVEL: [&str; 3] = ["Version", "Id", "Statement"];

impl Policy {
    /// Parses and validates `json` as a policy of `kind`, with the default size limit for
    /// the kind ([`Limits::for_kind`]).
    ///
    /// # Errors
    /// A [`PolicyError`] describing the first problem found.
    pub fn parse(json: &str, kind: PolicyKind) -> Result<Policy, PolicyError> {
        Self::parse_with_limits(json, kind, Limits::for_kind(kind))
    }

    /// Parses and validates `json` with explicit limits.
    ///
    /// # Errors
    /// A [`PolicyError`] describing the first problem found.
    pub fn parse_with_limits(
        text: &str,
        kind: PolicyKind,
        limits: Limits,
    ) -> Result<Policy, PolicyError> {
        // The fast JSON parser measures the size as it goes; documents it leaves to serde_json
        // are measured first, so that an oversized document is reported as such even when it
        // is also malformed.
        let (doc, size) = match json::parse_fast(text) {
            Some((doc, size)) => (Some(doc), size),
            None => (None, json::policy_size(text)),
        };
        if size > limits.max_bytes {
            return Err(PolicyError::TooLarge {
                actual: size,
                max: limits.max_bytes,
            });
        }
        let doc = match doc {
            Some(doc) => doc,
            None => json::parse_serde(text)?,
        };
        let Some(top) = doc.object(doc.root()) else {
            return Err(PolicyError::WrongType {
                element: "the policy document".into(),
                expected: "a JSON object",
            });
        };
        json::check_duplicates(top, || "policy".into())?;
        if let Some((unknown, _)) = top.iter().find(|(k, _)| !TOP_LEVEL.contains(&k.as_ref())) {
            return Err(PolicyError::UnknownElement {
                element: unknown.to_string(),
                location: "policy".into(),
            });
        }
        let version = match json::get(top, "Version") {
            None => None,
            Some(Json::String(v)) if v == "2012-10-17" => Some(Version::V2012),
            Some(Json::String(v)) if v == "2008-10-17" => Some(Version::V2008),
            Some(Json::String(v)) => return Err(PolicyError::InvalidVersion(v.to_string())),
            Some(_) => {
                return Err(PolicyError::WrongType {
                    element: "Version".into(),
                    expected: "a string",
                });
            }
        };
        let id = match json::get(top, "Id") {
            None => None,
            Some(Json::String(s)) => Some(s.to_string()),
            Some(_) => {
                return Err(PolicyError::WrongType {
                    element: "Id".into(),
                    expected: "a string",
                });
            }
        };
        let variables = version == Some(Version::V2012);
        let statements = match json::get(top, "Statement") {
            None => return Err(PolicyError::MissingStatement),
            Some(single @ Json::Object(_)) => {
                vec![parse_statement(&doc, single, 0, kind, variables)?]
            }
            Some(array @ Json::Array(_)) => {
                let items = doc.array(array).unwrap_or_default();
                if items.is_empty() {
                    return Err(PolicyError::EmptyStatement);
                }
                let mut statements = Vec::with_capacity(items.len());
                for (i, s) in items.iter().enumerate() {
                    statements.push(parse_statement(&doc, s, i, kind, variables)?);
                }
                statements
            }
            Some(_) => {
                return Err(PolicyError::WrongType {
                    element: "Statement".into(),
                    expected: "an object or an array of objects",
                });
            }
        };
        if kind.is_iam() {
            for (i, stmt) in statements.iter().enumerate() {
                let Some(sid) = stmt.sid.as_deref().filter(|s| !s.is_empty()) else {
                    continue;
                };
                if statements
                    .iter()
                    .take(i)
                    .any(|s| s.sid.as_deref() == Some(sid))
                {
                    return Err(PolicyError::DuplicateSid(sid.to_owned()));
                }
            }
        }
        Ok(Policy {
            kind,
            label: String::new(),
            version,
            id,
            statements,
        })
    }

    /// The kind the policy was parsed as.
    #[must_use]
    pub fn kind(&self) -> PolicyKind {
        self.kind
    }

    /// The caller-supplied label used in decisions and explanations ("trust policy of role
    /// X", a policy ARN, ...). Empty unless set.
    #[must_use]
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Sets the label (builder form).
    #[must_use]
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    /// Sets the label.
    pub fn set_label(&mut self, label: impl Into<String>) {
        self.label = label.into();
    }

    /// The effective version (`2008-10-17` when `Version` is absent).
    #[must_use]
    pub fn version(&self) -> Version {
        self.version.unwrap_or(Version::V2008)
    }

    /// The `Version` element as written, if present.
    #[must_use]
    pub fn declared_version(&self) -> Option<Version> {
        self.version
    }

    /// The `Id` element.
    #[must_use]
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The statements in document order.
    #[must_use]
    pub fn statements(&self) -> &[Statement] {
        &self.statements
    }

    /// Whether evaluating this policy may read the request context key `key`
    /// (case-insensitive): a condition on that key, or a policy variable anywhere (a
    /// `Resource` or a condition value), which may name any key. A caller that builds a context
    /// for this policy alone may leave out every key for which this is false: the decision,
    /// missing keys included, is the same (the engine reads the context nowhere else).
    #[must_use]
    pub fn may_read_context_key(&self, key: &str) -> bool {
        self.statements.iter().any(|s| {
            let templated_resource = match &s.resource {
                Some(ResourceClause::Resource(ps) | ResourceClause::NotResource(ps)) => {
                    ps.iter().any(ResourcePattern::has_variables)
                }
                None => false,
            };
            templated_resource
                || s.condition.as_ref().is_some_and(|c| {
                    c.operators()
                        .iter()
                        .flat_map(OperatorBlock::conditions)
                        .any(|cond| cond.may_read(key))
                })
        })
    }

    /// Serializes the policy to compact JSON that parses back (as the same kind) to an equal
    /// policy. Single-element lists are written as plain strings; numbers and booleans in
    /// conditions are written as strings.
    #[must_use]
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(256);
        out.push('{');
        if let Some(v) = self.version {
            out.push_str("\"Version\":");
            json::write_str(&mut out, v.as_str());
            out.push(',');
        }
        if let Some(id) = &self.id {
            out.push_str("\"Id\":");
            json::write_str(&mut out, id);
            out.push(',');
        }
        out.push_str("\"Statement\":[");
        for (i, stmt) in self.statements.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            stmt.write_json(&mut out);
        }
        out.push_str("]}");
        out
    }
}
