//! The `Condition` element: operators, typed values and their evaluation.
//!
//! Semantics (AWS IAM "Condition operators" documentation):
//! * several operators in a block, and several keys under one operator, are ANDed;
//!   several values for one key are ORed;
//! * a negated operator (`StringNotEquals`, `StringNotLike`, `NumericNotEquals`,
//!   `DateNotEquals`, `NotIpAddress`, `ArnNotEquals`, `ArnNotLike`, and the `IgnoreCase`
//!   variant) is true when the request value matches *none* of the policy values;
//! * a key absent from the request makes a positive operator false and a negated one true;
//!   `...IfExists` makes an operator without a set qualifier true when the key is absent;
//!   `Null` tests presence;
//! * `ForAllValues:` is true when the key is absent or empty, otherwise every request value
//!   must satisfy the operator against the policy values; `ForAnyValue:` is false when the
//!   key is absent ("for no matching context key or if the key does not exist, the condition
//!   returns false"), otherwise at least one request value must satisfy it. With a negated
//!   operator "satisfy" means "matches none of the policy values". The `IfExists` suffix
//!   changes neither: `ForAllValues:…IfExists` over an absent key is true because
//!   `ForAllValues` is, and `ForAnyValue:…IfExists` over an absent key stays false — an
//!   `Allow` with `ForAnyValue:StringEqualsIfExists` on `aws:TagKeys` does not apply to a
//!   request without tags;
//! * without a set qualifier, an operator compares the request key's value when the key has
//!   one value. When it has two or more, the operator has no documented answer: AWS says
//!   "multivalued context keys require a condition set operator", and decides single- vs
//!   multivalued by "the number of values in the request context, not the number of values
//!   in the policy condition" (IAM User Guide, "Single-valued vs. multivalued context keys");
//!   in practice a bare `StringEquals` on a two-service `aws:CalledVia` does not match. Such a
//!   condition fails closed, according to the statement's effect: in an `Allow` it never
//!   holds (whatever the operator, so no grant rests on it); in a `Deny` a negated operator
//!   always holds and a positive one holds when any request value matches (each the reading
//!   under which the `Deny` applies, so a misused operator cannot lift a `Deny`). One value
//!   is one value however it was set: `aws:TagKeys` with a single key compares normally;
//! * condition keys are case-insensitive; value comparison depends on the operator.
//!
//! Policy values are validated when the policy is parsed: numbers, dates, booleans, base64
//! and CIDR blocks that do not parse are rejected (AWS accepts some of them and then never
//! matches; rejecting is stricter but avoids silently dead statements). Request values that do
//! not parse as the operator's type match no policy value.

use crate::PolicyError;
use crate::context::{Context, normalize_key};
use crate::effect::StatementEffect;
use crate::json::{self, Doc, Json};
use crate::template::Template;
use crate::wildcard::{ArnPattern, Pattern, Piece};

mod operator;
mod values;

pub use operator::{ConditionOperator, OperatorKind, SetQualifier};
use values::{Cidr, decode_base64, parse_bool, parse_date, parse_number, request_ip};

/// A string policy value, precompiled when it contains no variable.
#[derive(Clone, Debug)]
enum TextValue {
    /// Compared as the policy value is written ([`Condition::values`]).
    Raw,
    /// Compared as this text (the value with its `${*}`-style escapes resolved).
    Text(String),
    Like(Pattern),
    Arn(ArnPattern),
    /// Contains variables: resolved per request.
    Template(Template),
}

/// A `Bool` policy value: `true`/`false`, or a value with policy variables that must
/// render to `true`/`false` for the request.
#[derive(Clone, Debug)]
enum BoolValue {
    Const(bool),
    Template(Template),
}

impl BoolValue {
    /// The value for this request; `None` if a variable does not resolve or the rendered
    /// text is not a boolean (such a value matches nothing).
    fn resolve(&self, ctx: &Context) -> Option<bool> {
        match self {
            Self::Const(b) => Some(*b),
            Self::Template(t) => t.render(ctx).and_then(|text| parse_bool(&text)),
        }
    }
}

#[derive(Clone, Debug)]
enum Typed {
    Text(Vec<TextValue>),
    Number(Vec<f64>),
    /// Epoch milliseconds.
    Date(Vec<i64>),
    Bool(Vec<BoolValue>),
    Binary(Vec<Vec<u8>>),
    Ip(Vec<Cidr>),
    /// `true` = the key must be absent.
    Null(Vec<bool>),
}

/// One key of an operator block with its values.
#[derive(Clone, Debug)]
pub struct Condition {
    key: String,
    key_norm: String,
    values: Vec<String>,
    typed: Typed,
}

impl PartialEq for Condition {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key && self.values == other.values
    }
}

impl Eq for Condition {}

impl Condition {
    /// The condition key as written.
    #[must_use]
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The policy values (numbers and booleans normalized to strings).
    #[must_use]
    pub fn values(&self) -> &[String] {
        &self.values
    }
}

/// All keys under one operator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperatorBlock {
    operator: ConditionOperator,
    conditions: Vec<Condition>,
}

impl OperatorBlock {
    /// The operator.
    #[must_use]
    pub fn operator(&self) -> ConditionOperator {
        self.operator
    }

    /// The keys and values.
    #[must_use]
    pub fn conditions(&self) -> &[Condition] {
        &self.conditions
    }
}

/// Whether `key` normalizes to `normalized`, without allocating for an ASCII `key`. (An ASCII
/// key normalizes to its ASCII lowercase, which equals `normalized` exactly when the two are
/// equal ignoring ASCII case, `normalized` being lowercase already.)
fn same_key(normalized: &str, key: &str) -> bool {
    if key.is_ascii() {
        normalized.eq_ignore_ascii_case(key)
    } else {
        normalized == normalize_key(key)
    }
}

/// A statement's `Condition` element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConditionBlock {
    blocks: Vec<OperatorBlock>,
}

impl ConditionBlock {
    /// The operators in document order.
    #[must_use]
    pub fn operators(&self) -> &[OperatorBlock] {
        &self.blocks
    }

    /// Parses a `Condition` element. `variables` is true for `2012-10-17` documents.
    pub(crate) fn from_json(
        doc: &Doc<'_>,
        value: &Json<'_>,
        statement: usize,
        variables: bool,
    ) -> Result<Self, PolicyError> {
        // Locations are only rendered for errors.
        let location = || format!("Condition of statement {statement}");
        let Some(entries) = doc.object(value) else {
            return Err(PolicyError::WrongType {
                element: location(),
                expected: "an object",
            });
        };
        json::check_duplicates(entries, location)?;
        let mut blocks = Vec::with_capacity(entries.len());
        for (name, body) in entries {
            let operator = ConditionOperator::parse(name)
                .ok_or_else(|| PolicyError::InvalidConditionOperator(name.to_string()))?;
            let block_location = || format!("{name} in {}", location());
            let Some(keys) = doc.object(body) else {
                return Err(PolicyError::WrongType {
                    element: block_location(),
                    expected: "an object",
                });
            };
            json::check_duplicates(keys, block_location)?;
            let mut conditions = Vec::with_capacity(keys.len());
            for (key, raw) in keys {
                if !key
                    .split_once(':')
                    .is_some_and(|(vendor, name)| !vendor.is_empty() && !name.is_empty())
                {
                    return Err(PolicyError::InvalidConditionKey(key.to_string()));
                }
                let values =
                    condition_values(doc, raw, || format!("\"{key}\" in {}", block_location()))?;
                let typed = typed_values(operator, name, key, &values, variables)?;
                conditions.push(Condition {
                    key: key.to_string(),
                    key_norm: normalize_key(key),
                    values,
                    typed,
                });
            }
            blocks.push(OperatorBlock {
                operator,
                conditions,
            });
        }
        Ok(ConditionBlock { blocks })
    }

    /// Appends the JSON form to `out`.
    pub(crate) fn write_json(&self, out: &mut String) {
        out.push('{');
        for (i, block) in self.blocks.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            json::write_str(out, &block.operator.to_string());
            out.push_str(":{");
            for (j, c) in block.conditions.iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                json::write_str(out, &c.key);
                out.push(':');
                json::write_str_or_list(out, c.values.iter().map(String::as_str));
            }
            out.push('}');
        }
        out.push('}');
    }

    /// Evaluates the block (all operators and keys ANDed) for a statement with `effect` (which
    /// decides the fail-closed answer for an operator without a set qualifier on a key with
    /// several values; see the module documentation). Keys the conditions needed but the
    /// request lacks are appended to `missing`.
    pub(crate) fn evaluate(
        &self,
        ctx: &Context,
        effect: StatementEffect,
        missing: &mut Vec<String>,
    ) -> bool {
        self.blocks.iter().all(|b| {
            b.conditions
                .iter()
                .all(|c| c.evaluate(b.operator, ctx, effect, missing))
        })
    }
}

/// Converts a condition value (string, number, boolean, or an array of those) to strings.
fn condition_values(
    doc: &Doc<'_>,
    raw: &Json<'_>,
    location: impl FnOnce() -> String,
) -> Result<Vec<String>, PolicyError> {
    fn scalar(v: &Json<'_>) -> Option<String> {
        match v {
            Json::String(s) => Some(s.to_string()),
            Json::Number(s) => Some(s.clone()),
            Json::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
    let wrong = || PolicyError::WrongType {
        element: location(),
        expected: "a string, number, boolean, or an array of those",
    };
    match doc.array(raw) {
        Some(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                match scalar(item) {
                    Some(s) => out.push(s),
                    None => return Err(wrong()),
                }
            }
            Ok(out)
        }
        None => scalar(raw).map(|s| vec![s]).ok_or_else(wrong),
    }
}

fn typed_values(
    op: ConditionOperator,
    name: &str,
    key: &str,
    values: &[String],
    variables: bool,
) -> Result<Typed, PolicyError> {
    use OperatorKind::*;
    let invalid = |value: &str, reason: &'static str| PolicyError::InvalidConditionValue {
        operator: name.to_owned(),
        key: key.to_owned(),
        value: value.to_owned(),
        reason,
    };
    fn each<T>(
        values: &[String],
        f: impl Fn(&str) -> Result<T, PolicyError>,
    ) -> Result<Vec<T>, PolicyError> {
        values.iter().map(|v| f(v)).collect()
    }
    Ok(match op.kind {
        StringEquals
        | StringNotEquals
        | StringEqualsIgnoreCase
        | StringNotEqualsIgnoreCase
        | StringLike
        | StringNotLike
        | ArnEquals
        | ArnLike
        | ArnNotEquals
        | ArnNotLike => Typed::Text(each(values, |v| {
            let compile = |pieces: &[Piece<'_>]| match op.kind {
                StringLike | StringNotLike => TextValue::Like(Pattern::compile(pieces)),
                ArnEquals | ArnLike | ArnNotEquals | ArnNotLike => {
                    TextValue::Arn(ArnPattern::compile(pieces))
                }
                _ => TextValue::Text(pieces.iter().map(|p| p.text()).collect()),
            };
            if Template::is_literal(v, variables) {
                return Ok(match op.kind {
                    StringLike | StringNotLike | ArnEquals | ArnLike | ArnNotEquals
                    | ArnNotLike => compile(&[Piece::Wild(v)]),
                    _ => TextValue::Raw,
                });
            }
            let template =
                Template::parse(v, variables).map_err(|reason| PolicyError::InvalidVariable {
                    value: v.to_owned(),
                    reason,
                })?;
            Ok(if template.has_variables() {
                TextValue::Template(template)
            } else {
                compile(&template.pieces(&Context::new()).unwrap_or_default())
            })
        })?),
        NumericEquals
        | NumericNotEquals
        | NumericLessThan
        | NumericLessThanEquals
        | NumericGreaterThan
        | NumericGreaterThanEquals => Typed::Number(each(values, |v| {
            parse_number(v).ok_or_else(|| invalid(v, "not a number"))
        })?),
        DateEquals
        | DateNotEquals
        | DateLessThan
        | DateLessThanEquals
        | DateGreaterThan
        | DateGreaterThanEquals => Typed::Date(each(values, |v| {
            parse_date(v).ok_or_else(|| invalid(v, "not an ISO 8601 date or epoch seconds"))
        })?),
        // AWS lists policy variables as supported for the Boolean operator
        // (`"Bool": {"aws:SecureTransport": "${aws:PrincipalTag/https}"}`): such a value is
        // substituted per request and then compared as a boolean.
        Bool => Typed::Bool(each(values, |v| {
            let not_bool = || invalid(v, "not true or false");
            if Template::is_literal(v, variables) {
                return parse_bool(v).map(BoolValue::Const).ok_or_else(not_bool);
            }
            let template =
                Template::parse(v, variables).map_err(|reason| PolicyError::InvalidVariable {
                    value: v.to_owned(),
                    reason,
                })?;
            if template.has_variables() {
                Ok(BoolValue::Template(template))
            } else {
                // Only escapes: the text is fixed and must be a boolean now.
                let empty = Context::new();
                let text = template.render(&empty).unwrap_or_default();
                parse_bool(&text).map(BoolValue::Const).ok_or_else(not_bool)
            }
        })?),
        Null => Typed::Null(each(values, |v| {
            parse_bool(v).ok_or_else(|| invalid(v, "not true or false"))
        })?),
        BinaryEquals => Typed::Binary(each(values, |v| {
            decode_base64(v).ok_or_else(|| invalid(v, "not base64"))
        })?),
        IpAddress | NotIpAddress => Typed::Ip(each(values, |v| {
            Cidr::parse(v).ok_or_else(|| invalid(v, "not an IP address or CIDR block"))
        })?),
    })
}

fn note_missing(missing: &mut Vec<String>, key: &str) {
    if !missing.iter().any(|k| k.eq_ignore_ascii_case(key)) {
        missing.push(key.to_owned());
    }
}

impl Condition {
    /// Whether evaluating this condition may read the context key `key` (any spelling): its
    /// own key, or any key at all when a value holds policy variables.
    pub(crate) fn may_read(&self, key: &str) -> bool {
        let templated = match &self.typed {
            Typed::Text(values) => values.iter().any(|v| matches!(v, TextValue::Template(_))),
            Typed::Bool(values) => values.iter().any(|v| matches!(v, BoolValue::Template(_))),
            Typed::Number(_)
            | Typed::Date(_)
            | Typed::Binary(_)
            | Typed::Ip(_)
            | Typed::Null(_) => false,
        };
        templated || same_key(&self.key_norm, key)
    }

    /// Evaluates this key under `op` in a statement with `effect`.
    fn evaluate(
        &self,
        op: ConditionOperator,
        ctx: &Context,
        effect: StatementEffect,
        missing: &mut Vec<String>,
    ) -> bool {
        let request = ctx.get_normalized(&self.key_norm);
        if let Typed::Null(wants_absent) = &self.typed {
            // Absence is what `Null` tests, so it is not reported as missing.
            return wants_absent
                .iter()
                .any(|&absent| absent != request.is_some());
        }
        if request.is_none() {
            note_missing(missing, &self.key);
        }
        let negated = op.kind.is_negated();
        match (op.qualifier, request) {
            // `IfExists` only speaks for the operator on its own: the set qualifiers define
            // the absent key themselves (ForAllValues: true, ForAnyValue: false).
            (None, None) if op.if_exists => true,
            (None, None) => negated,
            (Some(SetQualifier::ForAllValues), None) => true,
            (Some(SetQualifier::ForAnyValue), None) => false,
            (None, Some([value])) => self.matches_any(op.kind, value, ctx) != negated,
            // Several values without a set qualifier: fail closed (module documentation).
            (None, Some(values)) => match effect {
                StatementEffect::Allow => false,
                StatementEffect::Deny => {
                    negated || values.iter().any(|v| self.matches_any(op.kind, v, ctx))
                }
            },
            (Some(SetQualifier::ForAllValues), Some(values)) => values
                .iter()
                .all(|v| self.matches_any(op.kind, v, ctx) != negated),
            (Some(SetQualifier::ForAnyValue), Some(values)) => values
                .iter()
                .any(|v| self.matches_any(op.kind, v, ctx) != negated),
        }
    }

    /// Does the request value `v` match at least one policy value, under the positive form
    /// of `kind`?
    fn matches_any(&self, kind: OperatorKind, v: &str, ctx: &Context) -> bool {
        use OperatorKind::*;
        match &self.typed {
            Typed::Text(values) => self
                .values
                .iter()
                .zip(values)
                .any(|(raw, tv)| text_matches(kind, tv, raw, v, ctx)),
            Typed::Number(ps) => {
                parse_number(v).is_some_and(|x| ps.iter().any(|p| compare(kind, x, *p)))
            }
            Typed::Date(ps) => {
                parse_date(v).is_some_and(|x| ps.iter().any(|p| compare(kind, x, *p)))
            }
            Typed::Bool(ps) => {
                parse_bool(v).is_some_and(|b| ps.iter().any(|p| p.resolve(ctx) == Some(b)))
            }
            Typed::Binary(ps) => decode_base64(v).is_some_and(|b| ps.contains(&b)),
            Typed::Ip(cidrs) => {
                request_ip(v).is_some_and(|ip| cidrs.iter().any(|c| c.contains(ip)))
            }
            Typed::Null(_) => {
                debug_assert!(kind == Null);
                false
            }
        }
    }
}

/// Request value `v` against the policy value `raw` (compiled as `tv`).
fn text_matches(kind: OperatorKind, tv: &TextValue, raw: &str, v: &str, ctx: &Context) -> bool {
    use OperatorKind::*;
    let ignore_case = matches!(kind, StringEqualsIgnoreCase | StringNotEqualsIgnoreCase);
    match tv {
        TextValue::Raw if ignore_case => eq_ignore_case(raw, v),
        TextValue::Raw => raw == v,
        TextValue::Text(t) if ignore_case => eq_ignore_case(t, v),
        TextValue::Text(t) => t == v,
        TextValue::Like(p) => p.is_match(v),
        TextValue::Arn(p) => p.is_match(v),
        TextValue::Template(template) => match kind {
            StringLike | StringNotLike => template
                .pieces(ctx)
                .is_some_and(|p| Pattern::compile(&p).is_match(v)),
            ArnEquals | ArnLike | ArnNotEquals | ArnNotLike => template
                .pieces(ctx)
                .is_some_and(|p| ArnPattern::compile(&p).is_match(v)),
            _ if ignore_case => template.render(ctx).is_some_and(|t| eq_ignore_case(&t, v)),
            _ => template.render(ctx).is_some_and(|t| t == v),
        },
    }
}

/// Unicode case-insensitive equality without allocating.
fn eq_ignore_case(a: &str, b: &str) -> bool {
    a.chars()
        .flat_map(char::to_lowercase)
        .eq(b.chars().flat_map(char::to_lowercase))
}

/// Request value `x` against policy value `p`.
fn compare<T: PartialOrd>(kind: OperatorKind, x: T, p: T) -> bool {
    use OperatorKind::*;
    match kind {
        NumericEquals | NumericNotEquals | DateEquals | DateNotEquals => x == p,
        NumericLessThan | DateLessThan => x < p,
        NumericLessThanEquals | DateLessThanEquals => x <= p,
        NumericGreaterThan | DateGreaterThan => x > p,
        NumericGreaterThanEquals | DateGreaterThanEquals => x >= p,
        _ => false,
    }
}

#[cfg(test)]
mod tests;
