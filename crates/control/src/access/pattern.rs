//! Access entries whose principal is a role-name pattern (a podiam extension; EKS refuses
//! them): `arn:aws:iam::111122223333:role/team-*` maps every role of the account whose name
//! matches, now or created later, to one entry. This module holds the rules such a pattern
//! follows, how it matches a signer's role, and which of several patterns wins. It does not
//! read the store.
//!
//! * Only a role's name (the last segment of the ARN) may hold wildcards: `*` (any run of
//!   characters, the empty run included) and `?` (exactly one character), as in IAM policy
//!   ARNs. The account and the path are literal; IAM users, and the node entry types, cannot be
//!   patterns.
//! * A pattern needs a literal prefix: the path (other than `/`) and the name's characters
//!   before the first wildcard. `role/*` and `role/?x` are refused; `role/team/*` and
//!   `role/t*` are not. A pattern is a standing grant: whoever may `iam:CreateRole` a role
//!   whose path and name match (IAM cannot rename a role, so creating one is the way in), and
//!   assume it, holds the entry's access.
//! * Matching is case-sensitive on the stored role's path and name, as IAM matches ARNs in
//!   policies: `team-*` does not match `Team-a`.
//! * IAM Identity Center roles live at `/aws-reserved/sso.amazonaws.com/` (or under
//!   `.../sso.amazonaws.com/REGION/`) with names `AWSReservedSSO_SET_SUFFIX`, the suffix 16
//!   hex characters that change when the permission set is assigned anew. A pattern with that
//!   path matches roles at exactly that path. A pattern without a path whose name starts with
//!   `AWSReservedSSO_` matches its names at `/`, at `/aws-reserved/sso.amazonaws.com/` and one
//!   region segment below it, the form the IAM Identity Center guide gives for the `aws-auth`
//!   ConfigMap (which drops the path); so `role/AWSReservedSSO_Admin_*` covers a permission set
//!   in every region. Exact entries keep the role's full ARN, path included, as EKS takes them.
//! * The most specific pattern wins: the longest literal name prefix, then the longer path
//!   (a pattern naming the SSO path beats the path-less form of equal name prefix). An exact
//!   entry beats every pattern, also one made for an earlier role of the same name: that
//!   token is refused, the pattern does not take over a name an exact entry holds. Two patterns of equal specificity that can match one name are
//!   refused at creation, so at most one pattern is ever the best.
//! * A pattern entry binds to no role id: a role deleted and re-created under a matching name
//!   is matched.
//! * The pattern is the entry's `principalArn`, as given, everywhere: the store key
//!   `CLUSTER/PATTERN` (bound as a SQL parameter, never in a `LIKE`), page tokens (hex), the
//!   URL path segment (clients percent-encode it), and the entry's ARN
//!   (`access-entry/CLUSTER/role/ACCOUNT/team-*/UUID`), where IAM policies see `*` and `?` as
//!   characters: a grant on `team-a`'s entries does not reach it, though a policy's own
//!   wildcard can match it (`team-?` matches `team-*`).

use std::sync::Arc;

use super::params::{Principal, PrincipalKind, principal};
use crate::error::{AwsError, Result};
use crate::model;

/// The name prefix of IAM Identity Center roles.
pub(super) const SSO_NAME_PREFIX: &str = "AWSReservedSSO_";
/// The path of IAM Identity Center roles (region-scoped ones one segment below).
pub(super) const SSO_PATH: &str = "/aws-reserved/sso.amazonaws.com/";

/// How specific a pattern is: higher wins. `(literal name prefix length, path length)`.
pub type Specificity = (usize, usize);

/// The rules a pattern entry's principal follows beyond [`super::params::principal`]: a role,
/// with a literal prefix. `kind` is the entry type.
pub(super) fn check(p: &Principal, arn: &str, kind: &str) -> Result<()> {
    if p.kind != PrincipalKind::Role {
        return Err(AwsError::invalid_parameter(format!(
            "The specified principalArn is invalid: {arn:?} is a pattern, and only role names may be patterns."
        )));
    }
    if kind != "STANDARD" {
        return Err(AwsError::invalid_parameter(format!(
            "The specified principalArn is invalid: {arn:?} is a pattern, and an access entry of type {kind} must name one role."
        )));
    }
    if p.path == "/" && literal_prefix(&p.name).is_empty() {
        return Err(AwsError::invalid_parameter(format!(
            "The specified principalArn is invalid: {arn:?} would match every role of the account; a pattern needs a path or at least one literal character before its first wildcard."
        )));
    }
    Ok(())
}

/// The characters of a name before its first wildcard.
pub(super) fn literal_prefix(name: &str) -> &str {
    name.find(['*', '?'])
        .map_or(name, |i| name.get(..i).unwrap_or_default())
}

/// See [`Specificity`].
pub(super) fn specificity(p: &Principal) -> Specificity {
    (literal_prefix(&p.name).len(), p.path.len())
}

/// Whether pattern `p` matches the role at `path` named `name` (both as stored).
pub(super) fn matches(p: &Principal, path: &str, name: &str) -> bool {
    // A path-less IAM Identity Center pattern matches only roles at Identity Center's paths
    // (which IAM reserves: see `names::unreserved_role`), never a role at `/`.
    let path_ok = if p.path == "/" && p.name.starts_with(SSO_NAME_PREFIX) {
        is_sso_path(path)
    } else {
        p.path == path
    };
    path_ok && glob(p.name.as_bytes(), name.as_bytes())
}

/// The pattern entry of `entries` (one cluster's) that maps the role at `path` named `name` in
/// `account`: the most specific that matches. `Err` when two of equal specificity match (the
/// check at creation prevents it; entries written around it are refused, never guessed).
pub(super) fn best<'a>(
    entries: impl Iterator<Item = &'a Arc<model::AccessEntry>>,
    account: &str,
    path: &str,
    name: &str,
) -> std::result::Result<Option<&'a Arc<model::AccessEntry>>, Tie> {
    most_specific(entries.filter_map(|e| {
        if !e.principal_arn.contains(['*', '?']) {
            return None;
        }
        let p = principal(&e.principal_arn).ok()?;
        (p.pattern
            && p.kind == PrincipalKind::Role
            && p.account == account
            && matches(&p, path, name))
        .then(|| (specificity(&p), e))
    }))
}

/// Two pattern entries of the same specificity both match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tie;

/// The candidate of the highest specificity; [`Tie`] when two share it (a tie is refused, never
/// guessed). What token review and `podiam access explain` both pick an entry by.
pub fn most_specific<T>(
    candidates: impl Iterator<Item = (Specificity, T)>,
) -> std::result::Result<Option<T>, Tie> {
    let mut best: Option<(Specificity, T)> = None;
    let mut tied = false;
    for (s, c) in candidates {
        match &best {
            Some((b, _)) if *b > s => {}
            Some((b, _)) if *b == s => tied = true,
            _ => {
                best = Some((s, c));
                tied = false;
            }
        }
    }
    if tied {
        Err(Tie)
    } else {
        Ok(best.map(|(_, c)| c))
    }
}

/// Whether `a` and `b`, two patterns of one cluster, may not both exist: equal specificity and
/// a role both would match.
pub(super) fn conflict(a: &Principal, b: &Principal) -> bool {
    a.kind == b.kind
        && a.account == b.account
        && specificity(a) == specificity(b)
        && a.path == b.path
        && intersect(a.name.as_bytes(), b.name.as_bytes())
}

/// `/aws-reserved/sso.amazonaws.com/` or one segment below it.
fn is_sso_path(path: &str) -> bool {
    match path.strip_prefix(SSO_PATH) {
        Some("") => true,
        Some(rest) => rest
            .strip_suffix('/')
            .is_some_and(|region| !region.is_empty() && !region.contains('/')),
        None => false,
    }
}

/// Glob match of a role name: `*` any run, `?` one character (role names are ASCII).
fn glob(p: &[u8], s: &[u8]) -> bool {
    // Iterative with one backtrack point: linear in practice, no recursion on input.
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while j < s.len() {
        match p.get(i) {
            Some(b'*') => {
                star = Some((i, j));
                i += 1;
            }
            Some(&c) if c == b'?' || Some(&c) == s.get(j) => {
                i += 1;
                j += 1;
            }
            _ => match star {
                Some((si, sj)) => {
                    i = si + 1;
                    j = sj + 1;
                    star = Some((si, sj + 1));
                }
                None => return false,
            },
        }
    }
    p.get(i..)
        .is_some_and(|rest| rest.iter().all(|&c| c == b'*'))
}

/// Whether some name matches both glob patterns. Dynamic programming over positions: `ok[i][j]`
/// says the suffixes `a[i..]` and `b[j..]` can produce a common string.
fn intersect(a: &[u8], b: &[u8]) -> bool {
    let (n, m) = (a.len(), b.len());
    let mut ok = vec![vec![false; m + 1]; n + 1];
    for i in (0..=n).rev() {
        for j in (0..=m).rev() {
            let at = |ok: &Vec<Vec<bool>>, x: usize, y: usize| {
                ok.get(x).and_then(|r| r.get(y)).copied().unwrap_or(false)
            };
            let v = match (a.get(i), b.get(j)) {
                (None, None) => true,
                // A star may produce nothing, or absorb one more character of the other side.
                (Some(b'*'), other) => at(&ok, i + 1, j) || (other.is_some() && at(&ok, i, j + 1)),
                (other, Some(b'*')) => at(&ok, i, j + 1) || (other.is_some() && at(&ok, i + 1, j)),
                (Some(&x), Some(&y)) => (x == y || x == b'?' || y == b'?') && at(&ok, i + 1, j + 1),
                _ => false,
            };
            if let Some(cell) = ok.get_mut(i).and_then(|r| r.get_mut(j)) {
                *cell = v;
            }
        }
    }
    ok.first().and_then(|r| r.first()).copied().unwrap_or(false)
}

/// How specifically the pattern entry `pattern_arn` maps the role `role_arn` (both ARNs as
/// stored), if it does: what `podiam access explain` ranks candidate entries by, as token
/// review does. `None` when either is not what it should be or they do not match.
pub fn pattern_match(pattern_arn: &str, role_arn: &str) -> Option<Specificity> {
    let p = principal(pattern_arn).ok()?;
    let r = principal(role_arn).ok()?;
    (p.pattern
        && !r.pattern
        && p.kind == PrincipalKind::Role
        && r.kind == PrincipalKind::Role
        && p.account == r.account
        && matches(&p, &r.path, &r.name))
    .then(|| specificity(&p))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn the_most_specific_wins_and_a_tie_at_the_top_is_refused() {
        let pick = |c: &[((usize, usize), &'static str)]| most_specific(c.iter().copied());
        assert_eq!(pick(&[]), Ok(None));
        assert_eq!(
            pick(&[((1, 1), "a"), ((3, 1), "b"), ((2, 9), "c")]),
            Ok(Some("b"))
        );
        assert_eq!(pick(&[((3, 1), "a"), ((3, 2), "b")]), Ok(Some("b")));
        assert_eq!(pick(&[((3, 1), "a"), ((3, 1), "b")]), Err(Tie));
        // A tie below the winner does not matter; one at the top does, in any order.
        assert_eq!(
            pick(&[((1, 1), "a"), ((1, 1), "b"), ((2, 1), "c")]),
            Ok(Some("c"))
        );
        assert_eq!(
            pick(&[((2, 1), "c"), ((1, 1), "a"), ((2, 1), "b")]),
            Err(Tie)
        );
    }

    /// The glob as a regex: `*` is `.*`, `?` is `.`, the rest literal.
    fn oracle(p: &str, s: &str) -> bool {
        let re: String = p
            .chars()
            .map(|c| match c {
                '*' => ".*".to_owned(),
                '?' => ".".to_owned(),
                c => regex_lite::escape(&c.to_string()),
            })
            .collect();
        regex_lite::Regex::new(&format!("^(?s:{re})$"))
            .unwrap()
            .is_match(s)
    }

    /// Every string over `a`, `b` up to `max` characters.
    fn strings(max: usize) -> Vec<String> {
        let mut all = vec![String::new()];
        let mut last = vec![String::new()];
        for _ in 0..max {
            last = last
                .iter()
                .flat_map(|s| [format!("{s}a"), format!("{s}b")])
                .collect();
            all.extend(last.iter().cloned());
        }
        all
    }

    fn glob_strategy(max: usize) -> impl Strategy<Value = String> {
        proptest::collection::vec(prop::sample::select(vec!['a', 'b', '*', '?']), 0..max)
            .prop_map(|cs| cs.into_iter().collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn glob_agrees_with_regex(
            p in glob_strategy(8),
            s in proptest::collection::vec(prop::sample::select(vec!['a', 'b']), 0..10)
                .prop_map(|cs| cs.into_iter().collect::<String>()),
        ) {
            prop_assert_eq!(glob(p.as_bytes(), s.as_bytes()), oracle(&p, &s), "{:?} {:?}", p, s);
        }

        /// A common string, when there is one, is at most as long as the two patterns together
        /// (each character of it consumes a character of one of them), and a pattern's `?` can
        /// be taken as `a` or `b`: so trying every such string over `a`, `b` decides.
        #[test]
        fn intersection_agrees_with_brute_force(a in glob_strategy(5), b in glob_strategy(5)) {
            let witness = strings(a.len() + b.len())
                .into_iter()
                .any(|s| glob(a.as_bytes(), s.as_bytes()) && glob(b.as_bytes(), s.as_bytes()));
            prop_assert_eq!(intersect(a.as_bytes(), b.as_bytes()), witness, "{:?} {:?}", a, b);
        }
    }

    #[test]
    fn glob_and_intersection() {
        assert!(glob(b"team-*", b"team-"));
        assert!(glob(b"team-*", b"team-a"));
        assert!(!glob(b"team-*", b"Team-a"));
        assert!(glob(b"t?am-*x", b"team-abx"));
        assert!(!glob(b"t?am", b"tam"));
        assert!(!glob(b"a*b", b"ab-"));
        assert!(glob(b"a*b*c", b"aXbYbc"));
        for (a, b, want) in [
            ("team-*", "team-*", true),
            ("team-*", "team-a*", true),
            ("team-a*", "team-b*", false),
            ("te*-x", "te*-y", false),
            ("te*x", "te*y*", true),
            ("a?c", "ab*", true),
            ("a?c", "abcd*", false),
            ("dev*", "devops", true),
            ("*x", "y*", true),
        ] {
            assert_eq!(intersect(a.as_bytes(), b.as_bytes()), want, "{a} ∩ {b}");
            assert_eq!(intersect(b.as_bytes(), a.as_bytes()), want, "{b} ∩ {a}");
        }
        assert!(is_sso_path("/aws-reserved/sso.amazonaws.com/"));
        assert!(is_sso_path("/aws-reserved/sso.amazonaws.com/eu-west-2/"));
        assert!(!is_sso_path("/aws-reserved/sso.amazonaws.com/a/b/"));
        assert!(!is_sso_path("/team/"));
    }
}
