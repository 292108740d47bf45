//! Names and identifiers that cannot hold an invalid value ("parse, don't validate").
//!
//! Each constructor quotes the AWS limit it enforces. Errors are `ValidationError` in the form
//! the AWS query services use ("1 validation error detected: Value 'x' at 'roleSessionName' failed
//! to satisfy constraint: ...").

use std::fmt;

use crate::error::AwsError;
use crate::model;

/// The `1 validation error detected` message AWS uses for modeled constraint violations.
pub fn constraint(value: &str, member: &str, constraint: &str) -> AwsError {
    let shown: String = value.chars().take(64).collect();
    AwsError::validation(format!(
        "1 validation error detected: Value '{shown}' at '{member}' failed to satisfy constraint: {constraint}"
    ))
}

fn length(value: &str, member: &str, min: usize, max: usize) -> Result<(), AwsError> {
    let n = value.chars().count();
    if n < min {
        return Err(constraint(
            value,
            member,
            &format!("Member must have length greater than or equal to {min}"),
        ));
    }
    if n > max {
        return Err(constraint(
            value,
            member,
            &format!("Member must have length less than or equal to {max}"),
        ));
    }
    Ok(())
}

/// `[\w+=,.@-]` — the character class of role, user and session names.
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '=' | ',' | '.' | '@' | '-')
}

/// A 12-digit AWS account id.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(String);

impl AccountId {
    /// Parse; exactly 12 ASCII digits.
    pub fn parse(s: &str) -> Option<Self> {
        (s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())).then(|| Self(s.to_owned()))
    }
    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Validate an IAM entity name (role/user): 1-`max` chars of `[\w+=,.@-]` (CreateRole: 1-64, CreateUser: 1-64).
pub fn entity_name(s: &str, member: &str, max: usize) -> Result<(), AwsError> {
    length(s, member, 1, max)?;
    if !s.chars().all(is_name_char) {
        return Err(constraint(
            s,
            member,
            "Member must satisfy regular expression pattern: [\\w+=,.@-]+",
        ));
    }
    Ok(())
}

/// Validate a policy name: 1-128 chars of `[\w+=,.@-]`.
pub fn policy_name(s: &str, member: &str) -> Result<(), AwsError> {
    entity_name(s, member, 128)
}

/// Validate RoleSessionName: 2-64 chars of `[\w+=,.@-]*` (STS AssumeRole*).
pub fn role_session_name(s: &str) -> Result<(), AwsError> {
    length(s, "roleSessionName", 2, 64)?;
    if !s.chars().all(is_name_char) {
        return Err(constraint(
            s,
            "roleSessionName",
            "Member must satisfy regular expression pattern: [\\w+=,.@-]*",
        ));
    }
    Ok(())
}

/// Validate an IAM path: `/` or `/…/` of printable ASCII `!`..`~`, at most 512 characters.
pub fn iam_path(s: &str) -> Result<(), AwsError> {
    length(s, "path", 1, 512)?;
    let ok = s == "/"
        || (s.len() >= 3
            && s.starts_with('/')
            && s.ends_with('/')
            && s.bytes().all(|b| (0x21..=0x7e).contains(&b)));
    if !ok {
        return Err(constraint(
            s,
            "path",
            "Member must satisfy regular expression pattern: (\\u002F)|(\\u002F[\\u0021-\\u007E]+\\u002F)",
        ));
    }
    Ok(())
}

/// Refuse a role that only AWS creates: a path under `/aws-reserved/` (IAM Identity Center's
/// roles) or `/aws-service-role/` (service-linked roles), or a name starting `AWSReservedSSO_`.
/// AWS makes these and nobody else can; podiam has no service that does (the account root
/// stands in for it), and an access-entry pattern for IAM Identity Center roles must not be
/// satisfiable by whoever may create roles.
pub fn unreserved_role(path: &str, name: &str) -> Result<(), AwsError> {
    let lower = path.to_ascii_lowercase();
    for reserved in ["/aws-reserved/", "/aws-service-role/"] {
        if lower.starts_with(reserved) {
            return Err(AwsError::invalid_input(format!(
                "The path {reserved} is reserved for roles that AWS creates."
            )));
        }
    }
    if name
        .get(..15)
        .is_some_and(|p| p.eq_ignore_ascii_case("AWSReservedSSO_"))
    {
        return Err(AwsError::invalid_input(
            "Role names starting with AWSReservedSSO_ are reserved for IAM Identity Center.",
        ));
    }
    Ok(())
}

/// Validate a tag key (1-128) and value (0-256) of `[\p{L}\p{Z}\p{N}_.:/=+\-@]`.
pub fn tag(key: &str, value: &str) -> Result<(), AwsError> {
    let ok_char = |c: char| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c);
    length(key, "tags.member.key", 1, 128)?;
    length(value, "tags.member.value", 0, 256)?;
    if !key.chars().all(ok_char) {
        return Err(constraint(
            key,
            "tags.member.key",
            "Member must satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]+",
        ));
    }
    if !value.chars().all(ok_char) {
        return Err(constraint(
            value,
            "tags.member.value",
            "Member must satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*",
        ));
    }
    Ok(())
}

/// Validate a role description: at most 1000 characters of
/// `[\u0009\u000A\u000D\u0020-\u007E\u00A1-\u00FF]*` (IAM's `roleDescriptionType`).
pub fn role_description(s: &str) -> Result<(), AwsError> {
    length(s, "description", 0, 1000)?;
    let ok = |c: char| matches!(c, '\u{9}' | '\u{a}' | '\u{d}' | '\u{20}'..='\u{7e}' | '\u{a1}'..='\u{ff}');
    if !s.chars().all(ok) {
        return Err(constraint(
            s,
            "description",
            "Member must satisfy regular expression pattern: [\\u0009\\u000A\\u000D\\u0020-\\u007E\\u00A1-\\u00FF]*",
        ));
    }
    Ok(())
}

/// Validate a length-bounded string parameter.
pub fn bounded(s: &str, member: &str, min: usize, max: usize) -> Result<(), AwsError> {
    length(s, member, min, max)
}

/// A parsed ARN: `arn:partition:service:region:account:resource`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arn<'a> {
    /// e.g. `aws`.
    pub partition: &'a str,
    /// e.g. `iam`.
    pub service: &'a str,
    /// Region, empty for IAM.
    pub region: &'a str,
    /// Account id, possibly empty.
    pub account: &'a str,
    /// Everything after the fifth colon.
    pub resource: &'a str,
}

impl<'a> Arn<'a> {
    /// Split an ARN into its six parts; `None` when it is not an ARN of the installation's
    /// partition ([`crate::authz::PARTITION`]): an ARN spelled `arn:aws-cn:...` names nothing
    /// podiam holds, so no lookup or authorization ever sees one.
    pub fn parse(s: &'a str) -> Option<Self> {
        let mut it = s.splitn(6, ':');
        let (
            Some("arn"),
            Some(partition),
            Some(service),
            Some(region),
            Some(account),
            Some(resource),
        ) = (
            it.next(),
            it.next(),
            it.next(),
            it.next(),
            it.next(),
            it.next(),
        )
        else {
            return None;
        };
        if partition != crate::authz::PARTITION || service.is_empty() || resource.is_empty() {
            return None;
        }
        Some(Self {
            partition,
            service,
            region,
            account,
            resource,
        })
    }
}

/// A role ARN `arn:aws:iam::ACCOUNT:role/PATH/NAME`, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleArn {
    /// The owning account.
    pub account: AccountId,
    /// Role path (`/` when none).
    pub path: String,
    /// Role name.
    pub name: String,
}

impl RoleArn {
    /// Parse a role ARN. `None` when malformed.
    pub fn parse(s: &str) -> Option<Self> {
        let arn = Arn::parse(s)?;
        if arn.service != "iam" || !arn.region.is_empty() {
            return None;
        }
        let account = AccountId::parse(arn.account)?;
        let rest = arn.resource.strip_prefix("role/")?;
        let (path, name) = match rest.rfind('/') {
            Some(i) => (
                format!("/{}", rest.get(..=i)?),
                rest.get(i + 1..)?.to_owned(),
            ),
            None => ("/".to_owned(), rest.to_owned()),
        };
        if entity_name(&name, "roleArn", 64).is_err() {
            return None;
        }
        Some(Self {
            account,
            path,
            name,
        })
    }
}

/// A 20-character IAM unique id with the given 4-letter prefix (AROA, AIDA, ANPA, ...).
pub fn unique_id(prefix: &str) -> String {
    use rand::Rng;
    const ALPHA: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut rng = rand::rng();
    let mut s = String::with_capacity(21);
    s.push_str(prefix);
    for _ in 0..17 {
        let i = rng.random_range(0..ALPHA.len());
        s.push(char::from(ALPHA.get(i).copied().unwrap_or(b'A')));
    }
    s
}

const B32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// An access key id: `AKIA`/`ASIA` + 16 base32 characters, the first eight of which encode the
/// owning account (40 bits) and the last eight are random — so, as in AWS, the account of any
/// well-formed key id can be told without a lookup ([`account_of_access_key`]).
pub fn access_key_id(prefix: &str, account: &str) -> String {
    use rand::Rng;
    let n: u64 = account.parse().unwrap_or(0);
    let mut rng = rand::rng();
    let r: u64 = rng.random_range(0..(1u64 << 40));
    let mut s = String::with_capacity(20);
    s.push_str(prefix);
    for v in [n, r] {
        for i in (0..8).rev() {
            let idx = usize::try_from((v >> (i * 5)) & 31).unwrap_or(0);
            s.push(char::from(B32.get(idx).copied().unwrap_or(b'A')));
        }
    }
    s
}

/// The account encoded in an access key id made by [`access_key_id`].
pub fn account_of_access_key(akid: &str) -> Option<String> {
    if akid.len() != 20 || !(akid.starts_with("AKIA") || akid.starts_with("ASIA")) {
        return None;
    }
    let mut n: u64 = 0;
    for c in akid.get(4..12)?.bytes() {
        let v = B32.iter().position(|b| *b == c)?;
        n = (n << 5) | u64::try_from(v).ok()?;
    }
    (n < 1_000_000_000_000).then(|| format!("{n:012}"))
}

/// `arn:aws:iam::ACCOUNT:role/PATH/NAME`.
pub fn role_arn(account: &str, role: &model::Role) -> String {
    format!("arn:aws:iam::{account}:role{}{}", role.path, role.name)
}

/// `arn:aws:iam::ACCOUNT:user/PATH/NAME`.
pub fn user_arn(account: &str, user: &model::User) -> String {
    format!("arn:aws:iam::{account}:user{}{}", user.path, user.name)
}

/// `arn:aws:iam::ACCOUNT:policy/PATH/NAME`.
pub fn policy_arn(account: &str, p: &model::ManagedPolicy) -> String {
    format!("arn:aws:iam::{account}:policy{}{}", p.path, p.name)
}

/// `arn:aws:iam::ACCOUNT:oidc-provider/HOST/PATH`.
pub fn provider_arn(account: &str, url_key: &str) -> String {
    format!("arn:aws:iam::{account}:oidc-provider/{url_key}")
}

/// The account id encoded in an access key id is not derivable in podiam; access keys are looked up.
#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn role_arn_with_and_without_path() {
        let a = RoleArn::parse("arn:aws:iam::111122223333:role/app/team/my-role").unwrap();
        assert_eq!(
            (a.account.as_str(), a.path.as_str(), a.name.as_str()),
            ("111122223333", "/app/team/", "my-role")
        );
        let b = RoleArn::parse("arn:aws:iam::111122223333:role/r").unwrap();
        assert_eq!((b.path.as_str(), b.name.as_str()), ("/", "r"));
        for other in [
            "arn:aws-cn:iam::111122223333:role/r",
            "arn:aws-us-gov:iam::111122223333:role/r",
            "arn:AWS:iam::111122223333:role/r",
            "arn::iam::111122223333:role/r",
        ] {
            assert!(RoleArn::parse(other).is_none(), "{other}");
            assert!(Arn::parse(other).is_none(), "{other}");
        }
    }

    #[test]
    fn role_arn_rejects_malformed() {
        for bad in [
            "",
            "arn:aws:iam::11112222333:role/r",
            "arn:aws:iam::111122223333:user/r",
            "arn:aws:sts::111122223333:role/r",
            "arn:aws:iam:us-east-1:111122223333:role/r",
            "arn:aws:iam::111122223333:role/",
            "arn:aws:iam::111122223333:role/a b",
            "arn:aws:iam::111122223333",
        ] {
            assert!(RoleArn::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn session_name_rules() {
        assert!(role_session_name("ab").is_ok());
        assert!(role_session_name(&"a".repeat(64)).is_ok());
        assert_eq!(
            role_session_name("a").unwrap_err().code,
            crate::error::ErrorCode::ValidationError
        );
        assert!(role_session_name(&"a".repeat(65)).is_err());
        assert!(role_session_name("has space").is_err());
        assert!(role_session_name("slash/no").is_err());
    }

    #[test]
    fn paths_and_tags() {
        assert!(iam_path("/").is_ok());
        assert!(iam_path("/a/b/").is_ok());
        assert!(iam_path("a/").is_err());
        assert!(iam_path("/a").is_err());
        assert!(iam_path("//").is_err());
        assert!(iam_path("/a b/").is_err());
        assert!(tag("team", "a b:c").is_ok());
        assert!(tag("", "v").is_err());
        assert!(tag("k", &"v".repeat(257)).is_err());
        assert!(tag("k!", "v").is_err());
    }

    #[test]
    fn ids_have_prefix_and_length() {
        let r = unique_id("AROA");
        assert_eq!(r.len(), 21);
        assert!(r.starts_with("AROA"));
        let k = access_key_id("AKIA", "111122223333");
        assert_eq!(k.len(), 20);
        assert_eq!(account_of_access_key(&k).as_deref(), Some("111122223333"));
        let k = access_key_id("ASIA", "000000000001");
        assert_eq!(account_of_access_key(&k).as_deref(), Some("000000000001"));
        assert_eq!(account_of_access_key("AKIAIOSFODNN7EXAMPL"), None);
        assert_eq!(account_of_access_key("XKIAAAAAAAAAAAAAAAAA"), None);
    }
}
