//! Who is calling: the caller and the facts of its request.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use podiam_policy as policy;

use crate::model;
use crate::session::SessionClaims;

/// Facts about the transport of a request, supplied by the server.
#[derive(Clone, Debug, Default)]
pub struct RequestMeta {
    /// The peer address.
    pub source_ip: Option<IpAddr>,
    /// `true` when the request arrived over TLS.
    pub secure_transport: bool,
    /// The request id, for messages and logs.
    pub request_id: String,
    /// What the services learn of the request, for its audit event (nothing is kept when
    /// auditing is off).
    pub audit: crate::audit::FactsSlot,
}

/// An authenticated principal.
#[derive(Clone, Debug)]
pub enum Caller {
    /// An account's root.
    Root {
        /// Account id.
        account: String,
    },
    /// An IAM user.
    User {
        /// Account id.
        account: String,
        /// The user record.
        user: Arc<model::User>,
    },
    /// A role session.
    Session(Arc<SessionClaims>),
}

impl Caller {
    /// The caller's account.
    pub fn account(&self) -> &str {
        match self {
            Caller::Root { account } | Caller::User { account, .. } => account,
            Caller::Session(c) => &c.account,
        }
    }
    /// The caller's ARN, as GetCallerIdentity reports it.
    pub fn arn(&self) -> String {
        match self {
            Caller::Root { account } => format!("arn:aws:iam::{account}:root"),
            Caller::User { account, user } => {
                format!("arn:aws:iam::{account}:user{}{}", user.path, user.name)
            }
            Caller::Session(c) => c.arn(),
        }
    }
    /// The caller's unique id, as GetCallerIdentity reports it.
    pub fn user_id(&self) -> String {
        match self {
            Caller::Root { account } => account.clone(),
            Caller::User { user, .. } => user.id.clone(),
            Caller::Session(c) => c.user_id(),
        }
    }
    /// `aws:PrincipalType`.
    pub fn principal_type(&self) -> &'static str {
        match self {
            Caller::Root { .. } => "Account",
            Caller::User { .. } => "User",
            Caller::Session(_) => "AssumedRole",
        }
    }
    /// The tags of the principal (`aws:PrincipalTag/*`): a user's tags, or a session's tags
    /// over its role's tags.
    pub fn principal_tags(&self, role: Option<&model::Role>) -> BTreeMap<String, String> {
        let mut tags = BTreeMap::new();
        match self {
            Caller::Root { .. } => {}
            Caller::User { user, .. } => {
                for t in &user.tags {
                    tags.insert(t.key.clone(), t.value.clone());
                }
            }
            Caller::Session(c) => {
                if let Some(r) = role {
                    for t in &r.tags {
                        tags.insert(t.key.clone(), t.value.clone());
                    }
                }
                // Session tags override role tags of the same key (folded as the engine folds).
                for (k, v) in &c.tags {
                    let folded = policy::fold_key(k);
                    tags.retain(|old, _| policy::fold_key(old) != folded);
                    tags.insert(k.clone(), v.clone());
                }
            }
        }
        tags
    }
}

/// The signing service name and the regions accepted for it.
#[derive(Clone, Copy, Debug)]
pub struct SigningScope<'a> {
    /// `sts`, `iam`, `eks`, `eks-auth`.
    pub service: &'a str,
}

/// `YYYY-MM-DDTHH:MM:SSZ`.
pub fn iso8601(unix: i64) -> String {
    let t =
        time::OffsetDateTime::from_unix_timestamp(unix).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    t.format(&f).unwrap_or_default()
}
