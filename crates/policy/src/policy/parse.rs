//! Parsing and validation of one statement (the rules listed in the parent module).

use super::{
    ActionClause, ActionPattern, PolicyKind, PrincipalClause, ResourceClause, ResourcePattern,
    Statement,
};
use crate::PolicyError;
use crate::condition::ConditionBlock;
use crate::effect::StatementEffect;
use crate::json::{self, Doc, Entry, Json};
use crate::principal::PrincipalSpec;

/// The elements a statement may have.
const STATEMENT_ELEMENTS: [&str; 9] = [
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
];

/// The value of `Action`/`NotAction`/`Resource`/`NotResource`: a string or an array of
/// strings (validated).
enum StringList<'v, 'a> {
    One(&'v str),
    Many(&'v [Json<'a>]),
}

impl StringList<'_, '_> {
    fn len(&self) -> usize {
        match self {
            Self::One(_) => 1,
            Self::Many(items) => items.len(),
        }
    }

    fn iter(&self) -> impl Iterator<Item = &str> {
        let (one, many) = match self {
            Self::One(s) => (Some(*s), None),
            Self::Many(items) => (None, Some(items.iter().filter_map(Json::as_str))),
        };
        one.into_iter().chain(many.into_iter().flatten())
    }

    /// Parses every entry with `f`.
    fn map<T>(&self, f: impl Fn(&str) -> Result<T, PolicyError>) -> Result<Vec<T>, PolicyError> {
        let mut out = Vec::with_capacity(self.len());
        for s in self.iter() {
            out.push(f(s)?);
        }
        Ok(out)
    }
}

/// A string or a (possibly empty) array of strings; `element` names it in the error.
fn string_list<'v, 'a>(
    doc: &'v Doc<'a>,
    value: &'v Json<'a>,
    element: impl FnOnce() -> String,
) -> Result<StringList<'v, 'a>, PolicyError> {
    if let Json::String(s) = value {
        return Ok(StringList::One(s));
    }
    match doc.array(value) {
        Some(items) if items.iter().all(|item| matches!(item, Json::String(_))) => {
            Ok(StringList::Many(items))
        }
        _ => Err(PolicyError::WrongType {
            element: element(),
            expected: "a string or an array of strings",
        }),
    }
}

/// Returns at most one of two mutually exclusive elements.
fn exclusive<'v, 'a>(
    entries: &'v [Entry<'a>],
    statement: usize,
    first: &'static str,
    second: &'static str,
) -> Result<Option<(&'static str, &'v Json<'a>)>, PolicyError> {
    match (json::get(entries, first), json::get(entries, second)) {
        (Some(_), Some(_)) => Err(PolicyError::Conflicting {
            statement,
            first,
            second,
        }),
        (Some(v), None) => Ok(Some((first, v))),
        (None, Some(v)) => Ok(Some((second, v))),
        (None, None) => Ok(None),
    }
}

pub(super) fn parse_statement(
    doc: &Doc<'_>,
    value: &Json<'_>,
    index: usize,
    kind: PolicyKind,
    variables: bool,
) -> Result<Statement, PolicyError> {
    // The location is only rendered for errors.
    let location = || format!("statement {index}");
    let Some(entries) = doc.object(value) else {
        return Err(PolicyError::WrongType {
            element: location(),
            expected: "an object",
        });
    };
    json::check_duplicates(entries, location)?;
    if let Some((unknown, _)) = entries
        .iter()
        .find(|(k, _)| !STATEMENT_ELEMENTS.contains(&k.as_ref()))
    {
        return Err(PolicyError::UnknownElement {
            element: unknown.to_string(),
            location: location(),
        });
    }

    let sid = match json::get(entries, "Sid") {
        None => None,
        Some(Json::String(s)) => {
            if kind.is_iam() && !s.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(PolicyError::InvalidSid(s.to_string()));
            }
            Some(s.to_string())
        }
        Some(_) => {
            return Err(PolicyError::WrongType {
                element: format!("Sid of {}", location()),
                expected: "a string",
            });
        }
    };

    let effect = match json::get(entries, "Effect") {
        None => return Err(PolicyError::MissingEffect(index)),
        Some(Json::String(s)) if s == "Allow" => StatementEffect::Allow,
        Some(Json::String(s)) if s == "Deny" => StatementEffect::Deny,
        Some(Json::String(s)) => return Err(PolicyError::InvalidEffect(s.to_string())),
        Some(_) => {
            return Err(PolicyError::WrongType {
                element: format!("Effect of {}", location()),
                expected: "a string",
            });
        }
    };

    let principal = match exclusive(entries, index, "Principal", "NotPrincipal")? {
        Some(_) if !kind.allows_principal() => return Err(PolicyError::PrincipalNotAllowed),
        // IAM rejects NotPrincipal in a role trust policy (MalformedPolicyDocument).
        Some(("NotPrincipal", _)) if kind == PolicyKind::Trust => {
            return Err(PolicyError::NotPrincipalNotAllowed);
        }
        Some((name, v)) => {
            let spec = PrincipalSpec::from_json(doc, v, name)?;
            Some(if name == "Principal" {
                PrincipalClause::Principal(spec)
            } else {
                PrincipalClause::NotPrincipal(spec)
            })
        }
        None if kind.allows_principal() => return Err(PolicyError::MissingPrincipal(index)),
        None => None,
    };

    let action = match exclusive(entries, index, "Action", "NotAction")? {
        None => return Err(PolicyError::MissingActions(index)),
        Some((name, v)) => {
            let list = string_list(doc, v, || format!("{name} of {}", location()))?;
            if list.len() == 0 {
                return Err(PolicyError::MissingActions(index));
            }
            let patterns = list.map(ActionPattern::parse)?;
            if name == "Action" {
                ActionClause::Action(patterns)
            } else {
                ActionClause::NotAction(patterns)
            }
        }
    };

    let resource = match exclusive(entries, index, "Resource", "NotResource")? {
        Some((name, _)) if kind == PolicyKind::Trust => {
            return Err(PolicyError::ResourceNotAllowed(name));
        }
        None if kind == PolicyKind::Trust => None,
        None => return Err(PolicyError::MissingResources(index)),
        Some((name, v)) => {
            let list = string_list(doc, v, || format!("{name} of {}", location()))?;
            if list.len() == 0 {
                return Err(PolicyError::MissingResources(index));
            }
            let patterns = list.map(|r| ResourcePattern::parse(r, variables))?;
            Some(if name == "Resource" {
                ResourceClause::Resource(patterns)
            } else {
                ResourceClause::NotResource(patterns)
            })
        }
    };

    let condition = json::get(entries, "Condition")
        .map(|c| ConditionBlock::from_json(doc, c, index, variables))
        .transpose()?;

    Ok(Statement {
        sid,
        effect,
        principal,
        action,
        resource,
        condition,
    })
}
