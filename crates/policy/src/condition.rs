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

use std::fmt;
use std::net::IpAddr;

use crate::PolicyError;
use crate::context::{Context, normalize_key};
use crate::effect::StatementEffect;
use crate::json::{self, Doc, Json};
use crate::template::Template;
use crate::wildcard::{ArnPattern, Pattern, Piece};

/// A condition operator without its `IfExists` suffix and set qualifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)] // The variant names are the AWS operator names.
pub enum OperatorKind {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    NumericEquals,
    NumericNotEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateNotEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    BinaryEquals,
    IpAddress,
    NotIpAddress,
    ArnEquals,
    ArnLike,
    ArnNotEquals,
    ArnNotLike,
    Null,
}

const KINDS: [OperatorKind; 27] = {
    use OperatorKind::*;
    [
        StringEquals,
        StringNotEquals,
        StringEqualsIgnoreCase,
        StringNotEqualsIgnoreCase,
        StringLike,
        StringNotLike,
        NumericEquals,
        NumericNotEquals,
        NumericLessThan,
        NumericLessThanEquals,
        NumericGreaterThan,
        NumericGreaterThanEquals,
        DateEquals,
        DateNotEquals,
        DateLessThan,
        DateLessThanEquals,
        DateGreaterThan,
        DateGreaterThanEquals,
        Bool,
        BinaryEquals,
        IpAddress,
        NotIpAddress,
        ArnEquals,
        ArnLike,
        ArnNotEquals,
        ArnNotLike,
        Null,
    ]
};

impl OperatorKind {
    /// Every operator.
    pub const ALL: [OperatorKind; 27] = KINDS;

    /// The AWS name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        use OperatorKind::*;
        match self {
            StringEquals => "StringEquals",
            StringNotEquals => "StringNotEquals",
            StringEqualsIgnoreCase => "StringEqualsIgnoreCase",
            StringNotEqualsIgnoreCase => "StringNotEqualsIgnoreCase",
            StringLike => "StringLike",
            StringNotLike => "StringNotLike",
            NumericEquals => "NumericEquals",
            NumericNotEquals => "NumericNotEquals",
            NumericLessThan => "NumericLessThan",
            NumericLessThanEquals => "NumericLessThanEquals",
            NumericGreaterThan => "NumericGreaterThan",
            NumericGreaterThanEquals => "NumericGreaterThanEquals",
            DateEquals => "DateEquals",
            DateNotEquals => "DateNotEquals",
            DateLessThan => "DateLessThan",
            DateLessThanEquals => "DateLessThanEquals",
            DateGreaterThan => "DateGreaterThan",
            DateGreaterThanEquals => "DateGreaterThanEquals",
            Bool => "Bool",
            BinaryEquals => "BinaryEquals",
            IpAddress => "IpAddress",
            NotIpAddress => "NotIpAddress",
            ArnEquals => "ArnEquals",
            ArnLike => "ArnLike",
            ArnNotEquals => "ArnNotEquals",
            ArnNotLike => "ArnNotLike",
            Null => "Null",
        }
    }

    /// True for the operators that mean "matches none of the values".
    #[must_use]
    pub fn is_negated(self) -> bool {
        use OperatorKind::*;
        matches!(
            self,
            StringNotEquals
                | StringNotEqualsIgnoreCase
                | StringNotLike
                | NumericNotEquals
                | DateNotEquals
                | NotIpAddress
                | ArnNotEquals
                | ArnNotLike
        )
    }

    /// True for the operators whose values may contain policy variables (`String*`, `Arn*`,
    /// `Bool`), as the AWS "Condition operators" page lists them.
    #[must_use]
    pub fn supports_variables(self) -> bool {
        use OperatorKind::*;
        matches!(
            self,
            Bool | StringEquals
                | StringNotEquals
                | StringEqualsIgnoreCase
                | StringNotEqualsIgnoreCase
                | StringLike
                | StringNotLike
                | ArnEquals
                | ArnLike
                | ArnNotEquals
                | ArnNotLike
        )
    }

    fn from_name(name: &str) -> Option<Self> {
        KINDS.into_iter().find(|k| k.as_str() == name)
    }
}

/// `ForAllValues:` / `ForAnyValue:`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SetQualifier {
    /// Every request value must satisfy the operator (vacuously true for no values).
    ForAllValues,
    /// At least one request value must satisfy the operator.
    ForAnyValue,
}

/// A full condition operator such as `ForAnyValue:StringLikeIfExists`.
///
/// Operator names are case-sensitive. `Null` takes neither `IfExists` nor a set qualifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConditionOperator {
    /// The base operator.
    pub kind: OperatorKind,
    /// `...IfExists`: true when the key is absent.
    pub if_exists: bool,
    /// `ForAllValues:` / `ForAnyValue:`.
    pub qualifier: Option<SetQualifier>,
}

impl ConditionOperator {
    /// Parses an operator name; `None` if it is not a valid operator.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        let (qualifier, rest) = if let Some(rest) = name.strip_prefix("ForAllValues:") {
            (Some(SetQualifier::ForAllValues), rest)
        } else if let Some(rest) = name.strip_prefix("ForAnyValue:") {
            (Some(SetQualifier::ForAnyValue), rest)
        } else {
            (None, name)
        };
        let (if_exists, base) = match rest.strip_suffix("IfExists") {
            Some(base) => (true, base),
            None => (false, rest),
        };
        let kind = OperatorKind::from_name(base)?;
        if kind == OperatorKind::Null && (if_exists || qualifier.is_some()) {
            return None;
        }
        Some(ConditionOperator {
            kind,
            if_exists,
            qualifier,
        })
    }
}

impl fmt::Display for ConditionOperator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.qualifier {
            Some(SetQualifier::ForAllValues) => f.write_str("ForAllValues:")?,
            Some(SetQualifier::ForAnyValue) => f.write_str("ForAnyValue:")?,
            None => {}
        }
        f.write_str(self.kind.as_str())?;
        if self.if_exists {
            f.write_str("IfExists")?;
        }
        Ok(())
    }
}

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

/// `true`/`false`, ASCII case-insensitive.
pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// A decimal number: `[+-]digits[.digits][e[+-]digits]` (integers and floats; no `inf`/`NaN`).
pub(crate) fn parse_number(s: &str) -> Option<f64> {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (mantissa, exponent) = match body.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e)),
        None => (body, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = digits(int) && digits(frac) && !(int.is_empty() && frac.is_empty());
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    if !(mantissa_ok && exponent_ok) {
        return None;
    }
    s.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// A date: epoch seconds (`1700000000`, `1700000000.5`) or ISO 8601 (`2024-01-31`,
/// `2024-01-31T12:00Z`, `2024-01-31T12:00:00.123+02:00`, `20240131T120000Z`). Returns
/// epoch milliseconds. A time without a zone is UTC. An 8-digit string is epoch seconds.
pub(crate) fn parse_date(s: &str) -> Option<i64> {
    parse_epoch(s).or_else(|| parse_iso8601(s))
}

fn parse_epoch(s: &str) -> Option<i64> {
    let (negative, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if int.is_empty()
        || int.len() > 15
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let secs: i64 = int.parse().ok()?;
    let millis = frac_millis(frac)?;
    let total = secs.checked_mul(1000)?.checked_add(millis)?;
    Some(if negative { -total } else { total })
}

/// The first three digits of a fraction as milliseconds.
fn frac_millis(frac: &str) -> Option<i64> {
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut ms = 0i64;
    let mut digits = frac.bytes();
    for _ in 0..3 {
        ms = ms * 10 + i64::from(digits.next().map_or(0, |b| b - b'0'));
    }
    Some(ms)
}

struct Cursor<'a> {
    rest: &'a [u8],
}

impl Cursor<'_> {
    fn digits(&mut self, n: usize) -> Option<i64> {
        let (head, tail) = self.rest.split_at_checked(n)?;
        if !head.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.rest = tail;
        Some(
            head.iter()
                .fold(0i64, |acc, b| acc * 10 + i64::from(b - b'0')),
        )
    }

    fn eat(&mut self, c: u8) -> bool {
        match self.rest.split_first() {
            Some((&first, tail)) if first == c => {
                self.rest = tail;
                true
            }
            _ => false,
        }
    }

    fn eat_any(&mut self, cs: &[u8]) -> Option<u8> {
        let (&first, tail) = self.rest.split_first()?;
        if cs.contains(&first) {
            self.rest = tail;
            Some(first)
        } else {
            None
        }
    }
}

fn parse_iso8601(s: &str) -> Option<i64> {
    let mut c = Cursor { rest: s.as_bytes() };
    let year = c.digits(4)?;
    let extended = c.eat(b'-');
    let month = c.digits(2)?;
    if extended && !c.eat(b'-') {
        return None;
    }
    let day = c.digits(2)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let mut seconds = 0i64;
    let mut millis = 0i64;
    if c.eat_any(b"Tt").is_some() {
        let hour = c.digits(2)?;
        let colon = c.eat(b':');
        let minute = c.digits(2)?;
        let mut second = 0;
        let more = if colon {
            c.eat(b':')
        } else {
            c.rest.first().is_some_and(u8::is_ascii_digit)
        };
        if more {
            second = c.digits(2)?;
            if c.eat_any(b".,").is_some() {
                let len = c.rest.iter().take_while(|b| b.is_ascii_digit()).count();
                let (frac, tail) = c.rest.split_at_checked(len)?;
                if frac.is_empty() {
                    return None;
                }
                millis = frac_millis(std::str::from_utf8(frac).ok()?)?;
                c.rest = tail;
            }
        }
        if hour > 23 || minute > 59 || second > 60 {
            return None;
        }
        seconds = hour * 3600 + minute * 60 + second;
        match c.eat_any(b"Zz+-") {
            None | Some(b'Z' | b'z') => {}
            Some(sign) => {
                let oh = c.digits(2)?;
                let om = if c.rest.is_empty() {
                    0
                } else {
                    c.eat(b':');
                    c.digits(2)?
                };
                if oh > 23 || om > 59 {
                    return None;
                }
                let offset = oh * 3600 + om * 60;
                seconds += if sign == b'+' { -offset } else { offset };
            }
        }
    } else if !extended {
        // A bare basic-format date (YYYYMMDD) is read as epoch seconds by parse_epoch.
        return None;
    }
    if !c.rest.is_empty() {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some((days * 86_400 + seconds) * 1000 + millis)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Standard base64 (RFC 4648 alphabet; `=` padding optional; canonical encodings only).
pub(crate) fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let body = s
        .strip_suffix("==")
        .or_else(|| s.strip_suffix('='))
        .unwrap_or(s);
    if body.len() != s.len() && s.len() & 3 != 0 {
        return None;
    }
    if body.len() & 3 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0u32;
    for b in body.bytes() {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    // Canonical encodings only: the unused low bits of the last character must be zero.
    if acc & ((1 << bits) - 1) != 0 {
        return None;
    }
    Some(out)
}

/// An IPv4 or IPv6 network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// `a.b.c.d`, `a.b.c.d/n`, `x::y`, `x::y/n`. Host bits are cleared.
    fn parse(s: &str) -> Option<Cidr> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => {
                if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                (a, Some(p.parse::<u8>().ok()?))
            }
            None => (s, None),
        };
        let ip: IpAddr = addr.parse().ok()?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return None;
        }
        let network = match ip {
            IpAddr::V4(v4) => IpAddr::V4((u32::from(v4) & mask32(prefix)).into()),
            IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & mask128(prefix)).into()),
        };
        Some(Cidr { network, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                u32::from(ip) & mask32(self.prefix) == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                u128::from(ip) & mask128(self.prefix) == u128::from(net)
            }
            _ => false,
        }
    }
}

fn mask32(prefix: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(prefix.min(32)))
        .unwrap_or(0)
}

fn mask128(prefix: u8) -> u128 {
    u128::MAX
        .checked_shl(128 - u32::from(prefix.min(128)))
        .unwrap_or(0)
}

/// A request IP; IPv4-mapped IPv6 addresses are treated as IPv4.
fn request_ip(s: &str) -> Option<IpAddr> {
    match s.parse::<IpAddr>().ok()? {
        IpAddr::V6(v6) => Some(v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)),
        v4 => Some(v4),
    }
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

    #[test]
    fn operator_names() {
        for kind in OperatorKind::ALL {
            let op = ConditionOperator::parse(kind.as_str()).unwrap();
            assert_eq!(op.to_string(), kind.as_str());
        }
        let op = ConditionOperator::parse("ForAnyValue:StringLikeIfExists").unwrap();
        assert_eq!(op.kind, OperatorKind::StringLike);
        assert!(op.if_exists);
        assert_eq!(op.qualifier, Some(SetQualifier::ForAnyValue));
        assert_eq!(op.to_string(), "ForAnyValue:StringLikeIfExists");
        for bad in [
            "stringequals",
            "StringEqual",
            "NullIfExists",
            "ForAllValues:Null",
            "ForAllValues:",
            "ForSomeValues:StringEquals",
            "IfExists",
            "StringEqualsIfExistsIfExists",
            "",
        ] {
            assert!(ConditionOperator::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_number("10"), Some(10.0));
        assert_eq!(parse_number("-1.5"), Some(-1.5));
        assert_eq!(parse_number("+3"), Some(3.0));
        assert_eq!(parse_number(".5"), Some(0.5));
        assert_eq!(parse_number("1e3"), Some(1000.0));
        for bad in [
            "", "-", ".", "inf", "NaN", "infinity", "1e", "1.2.3", "0x10", " 1", "1 ", "1e999",
        ] {
            assert_eq!(parse_number(bad), None, "{bad}");
        }
    }

    #[test]
    fn dates() {
        let day = 19_723i64 * 86_400_000; // 2024-01-01
        assert_eq!(parse_date("2024-01-01"), Some(day));
        assert_eq!(parse_date("2024-01-01T00:00:00Z"), Some(day));
        assert_eq!(parse_date("2024-01-01T00:00Z"), Some(day));
        assert_eq!(parse_date("2024-01-01T00:00:00.250Z"), Some(day + 250));
        assert_eq!(parse_date("2024-01-01T02:00:00+02:00"), Some(day));
        assert_eq!(parse_date("2023-12-31T19:00:00-0500"), Some(day));
        assert_eq!(parse_date("20240101T000000Z"), Some(day));
        assert_eq!(parse_date("2024-01-01T00:00:00"), Some(day));
        assert_eq!(parse_date("1704067200"), Some(day));
        assert_eq!(parse_date("1704067200.5"), Some(day + 500));
        assert_eq!(parse_date("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_date("2000-02-29"), Some(11_016 * 86_400_000));
        assert_eq!(parse_date("1969-12-31T23:59:59Z"), Some(-1000));
        for bad in [
            "",
            "2024-13-01",
            "2023-02-29",
            "1900-02-29",
            "2024-01-32",
            "2024-01-01T24:00:00Z",
            "2024-01-01T00:60Z",
            "2024-01-01T",
            "2024-01-01X",
            "2024-01-01T00:00:00.Z",
            "2024/01/01",
            "yesterday",
            "1.2.3",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn base64() {
        assert_eq!(decode_base64("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(decode_base64("aGVsbG8").unwrap(), b"hello");
        assert_eq!(decode_base64("aGk=").unwrap(), b"hi");
        assert_eq!(decode_base64("").unwrap(), b"");
        assert_eq!(decode_base64("QUJD").unwrap(), b"ABC");
        assert!(decode_base64("a").is_none());
        assert!(decode_base64("aGVsbG8*").is_none());
        assert!(decode_base64("aGk==").is_none());
        assert!(decode_base64("aGVsbG9=").is_none(), "non-zero padding bits");
    }

    #[test]
    fn cidrs() {
        let c = Cidr::parse("10.1.2.3/8").unwrap();
        assert!(c.contains("10.200.0.1".parse().unwrap()));
        assert!(!c.contains("11.0.0.1".parse().unwrap()));
        let host = Cidr::parse("192.0.2.7").unwrap();
        assert!(host.contains("192.0.2.7".parse().unwrap()));
        assert!(!host.contains("192.0.2.8".parse().unwrap()));
        let all = Cidr::parse("0.0.0.0/0").unwrap();
        assert!(all.contains("255.255.255.255".parse().unwrap()));
        let v6 = Cidr::parse("2001:DB8:1234:5678::/64").unwrap();
        assert!(v6.contains("2001:db8:1234:5678:ffff::1".parse().unwrap()));
        assert!(!v6.contains("2001:db8:1234:5679::1".parse().unwrap()));
        assert!(!v6.contains("10.0.0.1".parse().unwrap()));
        assert!(
            Cidr::parse("::/0")
                .unwrap()
                .contains("::1".parse().unwrap())
        );
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "10.0.0/8",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "host",
            "10.0.0.0/8/8",
        ] {
            assert!(Cidr::parse(bad).is_none(), "{bad}");
        }
        assert_eq!(
            request_ip("::ffff:10.0.0.1"),
            Some("10.0.0.1".parse().unwrap())
        );
    }

    #[test]
    fn case_insensitive_eq() {
        assert!(eq_ignore_case("ÄBC", "äbc"));
        assert!(!eq_ignore_case("abc", "abd"));
        assert!(!eq_ignore_case("abc", "ab"));
    }
}
