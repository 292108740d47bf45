//! Username templates: the one parser behind both the check at Create/UpdateAccessEntry and the
//! rendering at token review, so what is accepted is exactly what renders.
//!
//! A template is literal text and placeholders `{{NAME}}`: `{{SessionName}}`,
//! `{{SessionNameRaw}}`, `{{AccountID}}`, `{{AccessKeyID}}` (EKS's), `{{EC2PrivateDNSName}}`
//! (node types only), and two podiam extensions: `{{RoleName}}` (the signer's role; what the
//! default username of a pattern entry uses) and `{{SessionTag:KEY}}` (the value of the
//! session's tag `KEY`, keys compared without regard to case as IAM compares them). A `{{`
//! without its `}}`, a stray `}}`, an unknown name and an empty or malformed tag key are refused.
//! Rendering is one pass: a value filled in is never scanned for placeholders again.

/// One piece of a parsed template.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Part<'a> {
    Text(&'a str),
    SessionName,
    SessionNameRaw,
    AccountId,
    AccessKeyId,
    Ec2PrivateDnsName,
    RoleName,
    SessionTag(&'a str),
}

/// The placeholders a chosen (`STANDARD`) username may hold, for messages.
pub(super) const CHOSEN: &str = "{{SessionName}}, {{SessionNameRaw}}, {{AccountID}}, {{AccessKeyID}}, {{RoleName}} and {{SessionTag:KEY}}";

/// Whether every value chosen by someone other than the entry's writer stands right after
/// literal text ending in `:` or `/`: a session tag (whoever may tag the session picks it) and
/// a role name (whoever may create a role a pattern entry maps picks it). Neither value can hold
/// `:` or `/` (see `super::authn`), so the literal marks off a namespace of the writer's own and
/// the value cannot make the name another principal's.
pub(super) fn delimited(parts: &[Part<'_>]) -> bool {
    parts.iter().enumerate().all(|(i, p)| match p {
        Part::SessionTag(_) | Part::RoleName => i
            .checked_sub(1)
            .and_then(|j| parts.get(j))
            .is_some_and(|prev| matches!(prev, Part::Text(t) if t.ends_with([':', '/']))),
        _ => true,
    })
}

/// The placeholders an `aws-auth` ConfigMap may use: aws-iam-authenticator's, no extension.
pub(super) fn authenticator_only(parts: &[Part<'_>]) -> bool {
    !parts
        .iter()
        .any(|p| matches!(p, Part::SessionTag(_) | Part::RoleName))
}

/// Split a template into its parts, or say what is wrong with it.
pub(super) fn parse(t: &str) -> Result<Vec<Part<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = t;
    while !rest.is_empty() {
        let Some(mut open) = rest.find("{{") else {
            if rest.contains("}}") {
                return Err("it has }} without {{".into());
            }
            out.push(Part::Text(rest));
            break;
        };
        // `{{{SessionName}}` is a `{` and a placeholder (as the earlier check read it).
        while rest.get(open + 2..).is_some_and(|r| r.starts_with('{')) {
            open += 1;
        }
        let (text, after) = rest.split_at(open);
        if text.contains("}}") {
            return Err("it has }} without {{".into());
        }
        if !text.is_empty() {
            out.push(Part::Text(text));
        }
        let inner_and_rest = after.get(2..).unwrap_or_default();
        let close = inner_and_rest
            .find("}}")
            .ok_or_else(|| "it has {{ without }}".to_owned())?;
        let (inner, tail) = inner_and_rest.split_at(close);
        out.push(placeholder(inner)?);
        rest = tail.get(2..).unwrap_or_default();
    }
    Ok(out)
}

fn placeholder(inner: &str) -> Result<Part<'_>, String> {
    Ok(match inner {
        "SessionName" => Part::SessionName,
        "SessionNameRaw" => Part::SessionNameRaw,
        "AccountID" => Part::AccountId,
        "AccessKeyID" => Part::AccessKeyId,
        "EC2PrivateDNSName" => Part::Ec2PrivateDnsName,
        "RoleName" => Part::RoleName,
        _ => match inner.strip_prefix("SessionTag:") {
            Some(key) if crate::names::tag(key, "").is_ok() => Part::SessionTag(key),
            Some(key) => {
                return Err(format!(
                    "{{{{SessionTag:{key}}}}} does not name a tag key (1-128 letters, digits, spaces and _.:/=+-@)"
                ));
            }
            None => {
                return Err(format!(
                    "{{{{{inner}}}}} is not a template: the templates are {CHOSEN}"
                ));
            }
        },
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parts() {
        assert_eq!(
            parse("{{{SessionName}}}:{{SessionTag:a:b}}").unwrap(),
            [
                Part::Text("{"),
                Part::SessionName,
                Part::Text("}:"),
                Part::SessionTag("a:b"),
            ]
        );
        assert_eq!(parse("plain").unwrap(), [Part::Text("plain")]);
        assert!(parse("{{a{{SessionName}}").is_err());
        assert!(parse("{{SessionTag:a}b}}").is_err());
        assert!(parse("{{SessionName}}}}").is_err());
    }
}
