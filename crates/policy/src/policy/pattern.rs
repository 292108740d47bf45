//! The compiled entries of `Action`/`NotAction` and `Resource`/`NotResource`.

use crate::PolicyError;
use crate::context::Context;
use crate::template::Template;
use crate::wildcard::{ArnPattern, Pattern, Piece, has_whitespace, has_wildcards};

/// One entry of `Action`/`NotAction`, compiled lowercase.
#[derive(Clone, Debug)]
pub struct ActionPattern {
    raw: String,
    pattern: Pattern,
}

impl PartialEq for ActionPattern {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}

impl Eq for ActionPattern {}

impl ActionPattern {
    /// The action as written.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Case-insensitive match against an action such as `sts:AssumeRole`.
    #[must_use]
    pub fn matches(&self, action: &str) -> bool {
        self.pattern.is_match(&action.to_ascii_lowercase())
    }

    /// Match against an already ASCII-lowercased action.
    pub(crate) fn matches_lowercase(&self, action: &str) -> bool {
        self.pattern.is_match(action)
    }

    pub(super) fn parse(s: &str) -> Result<ActionPattern, PolicyError> {
        let invalid = |reason| PolicyError::InvalidAction {
            action: s.to_owned(),
            reason,
        };
        if s != "*" {
            let (vendor, name) = s.split_once(':').ok_or_else(|| {
                invalid(
                    "actions/conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.",
                )
            })?;
            if vendor.is_empty()
                || !vendor
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                return Err(invalid(
                    "the vendor must be letters, digits and '-' without wildcards",
                ));
            }
            if name.is_empty() || name.contains(':') || has_whitespace(name) {
                return Err(invalid(
                    "the action name must be non-empty, without ':' or whitespace",
                ));
            }
        }
        Ok(ActionPattern {
            raw: s.to_owned(),
            pattern: Pattern::new_owned(s.to_ascii_lowercase()),
        })
    }
}

/// One entry of `Resource`/`NotResource`, compiled unless it contains policy variables.
#[derive(Clone, Debug)]
pub struct ResourcePattern {
    raw: String,
    matcher: ResourceMatcher,
}

#[derive(Clone, Debug)]
enum ResourceMatcher {
    /// No wildcard and no variable: the resource must equal the pattern as written.
    Exact,
    /// Compiled once.
    Fixed(ArnPattern),
    /// Contains variables: compiled per request.
    Template(Template),
}

impl PartialEq for ResourcePattern {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}

impl Eq for ResourcePattern {}

impl ResourcePattern {
    /// The resource as written.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// True if the pattern contains policy variables.
    #[must_use]
    pub fn has_variables(&self) -> bool {
        matches!(self.matcher, ResourceMatcher::Template(_))
    }

    /// Does `resource` match, with variables resolved from `ctx`? A pattern whose variable
    /// does not resolve matches nothing.
    #[must_use]
    pub fn matches(&self, resource: &str, ctx: &Context) -> bool {
        match &self.matcher {
            ResourceMatcher::Exact => resource == self.raw,
            ResourceMatcher::Fixed(p) => p.is_match(resource),
            ResourceMatcher::Template(template) => template
                .pieces(ctx)
                .is_some_and(|pieces| ArnPattern::compile_resource(&pieces).is_match(resource)),
        }
    }

    pub(super) fn parse(s: &str, variables: bool) -> Result<ResourcePattern, PolicyError> {
        if s != "*" && !(s.starts_with("arn:") && s.bytes().filter(|&b| b == b':').count() >= 5) {
            return Err(PolicyError::InvalidResource(s.to_owned()));
        }
        let matcher = if Template::is_literal(s, variables) {
            if has_wildcards(s) {
                ResourceMatcher::Fixed(ArnPattern::compile_resource(&[Piece::Wild(s)]))
            } else {
                ResourceMatcher::Exact
            }
        } else {
            let template =
                Template::parse(s, variables).map_err(|reason| PolicyError::InvalidVariable {
                    value: s.to_owned(),
                    reason,
                })?;
            if template.has_variables() {
                ResourceMatcher::Template(template)
            } else {
                ResourceMatcher::Fixed(ArnPattern::compile_resource(
                    &template.pieces(&Context::new()).unwrap_or_default(),
                ))
            }
        };
        Ok(ResourcePattern {
            raw: s.to_owned(),
            matcher,
        })
    }
}
