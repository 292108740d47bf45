//! Policy variables: `${key}`, `${key, 'default'}` and the escapes `${*}`, `${?}`, `${$}`.
//!
//! Variables exist only in `2012-10-17` documents, and only in `Resource`/`NotResource`
//! and in the values of `String*`, `Arn*` and `Bool` condition operators (the operators
//! the AWS "Condition operators" page marks as supporting policy variables). In `2008-10-17`
//! documents (and a document without `Version`) `${...}` is literal text.
//!
//! Rules implemented:
//! * the key is looked up case-insensitively in the request context; surrounding spaces are
//!   ignored (`${ aws:username }`);
//! * the value replaces the variable *literally*: a `*` or `?` inside a substituted value is
//!   not a wildcard; the same holds for the default text and for the escapes;
//! * a key that is absent, or multivalued, does not resolve; the default (single-quoted
//!   text after a comma: `${aws:PrincipalTag/team, 'none'}`) is used if there is one;
//! * a string containing a variable that does not resolve and has no default matches
//!   nothing (AWS: "If AWS cannot resolve a variable this might cause the entire statement
//!   to be invalid"); see the crate documentation for how this affects negated operators;
//! * a `${` without a closing `}` is literal text; a `${}` with an empty key or a default
//!   that is not single-quoted is rejected when the policy is parsed.

use std::borrow::Cow;

use crate::context::{Context, normalize_key};
use crate::wildcard::Piece;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    /// Source text (its `*`/`?` are wildcards where the operator supports them).
    Wild(String),
    /// Literal text from an escape.
    Verbatim(&'static str),
    /// A variable.
    Var {
        /// Normalized (lowercased) context key.
        key: String,
        default: Option<String>,
    },
}

/// A string that may contain policy variables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Template {
    parts: Vec<Part>,
}

impl Template {
    /// A template that is plain text.
    pub(crate) fn literal(source: &str) -> Template {
        Template {
            parts: vec![Part::Wild(source.to_owned())],
        }
    }

    /// True if [`Template::parse`] would return the text itself as a literal (no `${`, or a
    /// `2008-10-17` document): such a value needs no template at all.
    pub(crate) fn is_literal(source: &str, variables: bool) -> bool {
        !variables || !source.as_bytes().windows(2).any(|pair| pair == b"${")
    }

    /// Parses `source`; with `variables == false` (2008-10-17) the text is literal.
    pub(crate) fn parse(source: &str, variables: bool) -> Result<Template, &'static str> {
        if Self::is_literal(source, variables) {
            return Ok(Self::literal(source));
        }
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut rest = source;
        while let Some((before, after)) = rest.split_once("${") {
            text.push_str(before);
            let Some((inner, tail)) = after.split_once('}') else {
                // Unterminated: literal text.
                text.push_str("${");
                text.push_str(after);
                rest = "";
                break;
            };
            let part = match inner {
                "*" => Part::Verbatim("*"),
                "?" => Part::Verbatim("?"),
                "$" => Part::Verbatim("$"),
                _ => parse_variable(inner)?,
            };
            if !text.is_empty() {
                parts.push(Part::Wild(std::mem::take(&mut text)));
            }
            parts.push(part);
            rest = tail;
        }
        text.push_str(rest);
        if !text.is_empty() || parts.is_empty() {
            parts.push(Part::Wild(text));
        }
        Ok(Template { parts })
    }

    /// True if the template contains a variable (and so depends on the request).
    pub(crate) fn has_variables(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Var { .. }))
    }

    /// The pattern pieces after substituting variables from `ctx`; `None` if a variable
    /// does not resolve and has no default.
    pub(crate) fn pieces<'a>(&'a self, ctx: &'a Context) -> Option<Vec<Piece<'a>>> {
        self.parts
            .iter()
            .map(|part| match part {
                Part::Wild(s) => Some(Piece::Wild(s)),
                Part::Verbatim(s) => Some(Piece::Verbatim(s)),
                Part::Var { key, default } => match ctx.get_normalized(key) {
                    Some([one]) => Some(Piece::Verbatim(one)),
                    _ => default.as_deref().map(Piece::Verbatim),
                },
            })
            .collect()
    }

    /// The text after substitution (for exact comparisons); `None` if unresolvable.
    pub(crate) fn render<'a>(&'a self, ctx: &'a Context) -> Option<Cow<'a, str>> {
        if let [Part::Wild(s)] = self.parts.as_slice() {
            return Some(Cow::Borrowed(s));
        }
        let pieces = self.pieces(ctx)?;
        let mut out = String::new();
        for piece in pieces {
            match piece {
                Piece::Wild(s) | Piece::Verbatim(s) => out.push_str(s),
            }
        }
        Some(Cow::Owned(out))
    }
}

fn parse_variable(inner: &str) -> Result<Part, &'static str> {
    let (key, default) = match inner.split_once(',') {
        None => (inner.trim(), None),
        Some((key, default)) => {
            let default = default.trim();
            let quoted = default
                .strip_prefix('\'')
                .and_then(|d| d.strip_suffix('\''))
                .ok_or("the default value must be enclosed in single quotes")?;
            (key.trim(), Some(quoted.to_owned()))
        }
    };
    if key.is_empty() {
        return Err("empty variable name");
    }
    if key
        .chars()
        .any(|c| c.is_whitespace() || matches!(c, '$' | '{' | '\''))
    {
        return Err("invalid character in variable name");
    }
    Ok(Part::Var {
        key: normalize_key(key),
        default,
    })
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;

    fn render(src: &str, ctx: &Context) -> Option<String> {
        Template::parse(src, true)
            .unwrap()
            .render(ctx)
            .map(Cow::into_owned)
    }

    #[test]
    fn substitutes_case_insensitive_keys() {
        let ctx = Context::new()
            .with("aws:username", "alice")
            .with("aws:PrincipalTag/Team", "red");
        assert_eq!(
            render("home/${aws:username}/*", &ctx).unwrap(),
            "home/alice/*"
        );
        assert_eq!(render("${AWS:UserName}", &ctx).unwrap(), "alice");
        assert_eq!(
            render("${ aws:principaltag/team }-x", &ctx).unwrap(),
            "red-x"
        );
    }

    #[test]
    fn escapes() {
        let ctx = Context::new();
        assert_eq!(render("a${*}b${?}c${$}d", &ctx).unwrap(), "a*b?c$d");
        let t = Template::parse("a${*}", true).unwrap();
        assert!(!t.has_variables());
        assert_eq!(
            t.pieces(&ctx).unwrap(),
            [Piece::Wild("a"), Piece::Verbatim("*")]
        );
    }

    #[test]
    fn defaults_and_unresolved() {
        let ctx = Context::new().with_multi("multi", ["a", "b"]);
        assert_eq!(render("${aws:username, 'nobody'}", &ctx).unwrap(), "nobody");
        assert_eq!(render("${aws:username,'x y'}", &ctx).unwrap(), "x y");
        assert_eq!(render("${aws:username, ''}!", &ctx).unwrap(), "!");
        assert!(render("${aws:username}", &ctx).is_none());
        assert!(render("${multi}", &ctx).is_none());
        assert_eq!(render("${multi, 'd'}", &ctx).unwrap(), "d");
    }

    #[test]
    fn substituted_values_are_verbatim() {
        let ctx = Context::new().with("k", "a*");
        let t = Template::parse("x/${k}", true).unwrap();
        assert_eq!(
            t.pieces(&ctx).unwrap(),
            [Piece::Wild("x/"), Piece::Verbatim("a*")]
        );
    }

    #[test]
    fn old_version_is_literal() {
        let ctx = Context::new().with("aws:username", "alice");
        let t = Template::parse("home/${aws:username}", false).unwrap();
        assert!(!t.has_variables());
        assert_eq!(t.render(&ctx).unwrap(), "home/${aws:username}");
    }

    #[test]
    fn malformed() {
        assert!(Template::parse("${}", true).is_err());
        assert!(Template::parse("${ }", true).is_err());
        assert!(Template::parse("${a, default}", true).is_err());
        assert!(Template::parse("${a b}", true).is_err());
        // Unterminated is literal text.
        let ctx = Context::new();
        assert_eq!(render("x${aws:username", &ctx).unwrap(), "x${aws:username");
        assert_eq!(render("", &ctx).unwrap(), "");
    }
}
