//! Wildcard patterns, compiled once and matched without backtracking.
//!
//! `*` matches any run of characters (including none) and `?` exactly one character
//! (a Unicode scalar value, not a byte). A pattern is split at its `*`s into segments of
//! fixed character length; the first segment is anchored at the start, the last at the end,
//! and each middle segment is found at its leftmost position. Leftmost placement is optimal
//! because a segment's length is fixed, so the match never needs to backtrack: the cost is
//! `O(|text|)` per segment made of literals (a substring search) and `O(|text| * |segment|)`
//! for segments containing `?`; there is no exponential blow-up.
//!
//! Case-insensitive matching (actions) is done by lowercasing both sides beforehand.
//!
//! [`ArnPattern`] adds the ARN rule: the first five `:`-separated fields (`arn`, partition,
//! service, region, account) are matched separately, so a wildcard never crosses the `:`
//! between them; the sixth field (the resource) may itself contain `:` and `/` and wildcards
//! match across those.

/// A piece of pattern source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Piece<'a> {
    /// Text in which `*` and `?` are wildcards.
    Wild(&'a str),
    /// Text matched literally: values of policy variables and the `${*}`/`${?}`/`${$}` escapes.
    Verbatim(&'a str),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    /// Literal text.
    Lit(String),
    /// This many `?` (each exactly one character).
    Any(usize),
}

/// A run of literals and `?` between two `*`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Seg {
    toks: Vec<Tok>,
}

impl Seg {
    fn push_char(&mut self, c: char) {
        if let Some(Tok::Lit(s)) = self.toks.last_mut() {
            s.push(c);
        } else {
            self.toks.push(Tok::Lit(c.to_string()));
        }
    }

    fn push_any(&mut self) {
        if let Some(Tok::Any(n)) = self.toks.last_mut() {
            *n += 1;
        } else {
            self.toks.push(Tok::Any(1));
        }
    }

    /// Number of characters this segment matches.
    fn char_len(&self) -> usize {
        self.toks
            .iter()
            .map(|t| match t {
                Tok::Lit(s) => s.chars().count(),
                Tok::Any(n) => *n,
            })
            .sum()
    }

    /// Matches the segment at byte offset `at` of `text`; returns the end offset.
    fn match_at(&self, text: &str, at: usize) -> Option<usize> {
        let mut pos = at;
        for tok in &self.toks {
            let rest = text.get(pos..)?;
            match tok {
                Tok::Lit(lit) => {
                    if !rest.starts_with(lit.as_str()) {
                        return None;
                    }
                    pos += lit.len();
                }
                Tok::Any(n) => {
                    let mut chars = rest.chars();
                    for _ in 0..*n {
                        pos += chars.next()?.len_utf8();
                    }
                }
            }
        }
        Some(pos)
    }

    /// Leftmost match that starts at or after `from` and ends at or before `limit`;
    /// returns its end offset.
    fn find(&self, text: &str, from: usize, limit: usize) -> Option<usize> {
        let hay = text.get(..limit)?;
        let mut start = from;
        loop {
            if let Some(Tok::Lit(lit)) = self.toks.first() {
                start += hay.get(start..)?.find(lit.as_str())?;
            }
            if let Some(end) = self.match_at(hay, start) {
                return Some(end);
            }
            start += hay.get(start..)?.chars().next()?.len_utf8();
        }
    }
}

/// A compiled wildcard pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Pattern {
    /// Segments separated by `*`; never empty.
    segs: Vec<Seg>,
    /// Character length of the last segment (cached).
    last_len: usize,
}

impl Pattern {
    /// Compiles a pattern from pieces.
    pub(crate) fn compile(pieces: &[Piece<'_>]) -> Pattern {
        let mut segs = Vec::new();
        let mut cur = Seg::default();
        for piece in pieces {
            match piece {
                Piece::Wild(s) => {
                    for c in s.chars() {
                        match c {
                            '*' => segs.push(std::mem::take(&mut cur)),
                            '?' => cur.push_any(),
                            c => cur.push_char(c),
                        }
                    }
                }
                Piece::Verbatim(s) => s.chars().for_each(|c| cur.push_char(c)),
            }
        }
        let last_len = cur.char_len();
        segs.push(cur);
        Pattern { segs, last_len }
    }

    /// Compiles a pattern whose `*` and `?` are all wildcards.
    pub(crate) fn new(source: &str) -> Pattern {
        Self::compile(&[Piece::Wild(source)])
    }

    /// True if the pattern is only `*`s (and so matches every string).
    pub(crate) fn matches_everything(&self) -> bool {
        self.segs.len() >= 2 && self.segs.iter().all(|s| s.toks.is_empty())
    }

    /// Does the whole of `text` match?
    pub(crate) fn is_match(&self, text: &str) -> bool {
        match self.segs.as_slice() {
            [] => text.is_empty(),
            [only] => only.match_at(text, 0) == Some(text.len()),
            [first, middle @ .., last] => {
                let Some(mut pos) = first.match_at(text, 0) else {
                    return false;
                };
                let Some(tail) = start_of_last_chars(text, self.last_len) else {
                    return false;
                };
                if tail < pos || last.match_at(text, tail) != Some(text.len()) {
                    return false;
                }
                for seg in middle {
                    match seg.find(text, pos, tail) {
                        Some(end) => pos = end,
                        None => return false,
                    }
                }
                true
            }
        }
    }
}

/// Byte offset where the last `n` characters of `text` begin.
fn start_of_last_chars(text: &str, n: usize) -> Option<usize> {
    match n.checked_sub(1) {
        None => Some(text.len()),
        Some(k) => text.char_indices().rev().nth(k).map(|(i, _)| i),
    }
}

/// Splits `value` into the six ARN fields (the sixth keeps any further `:`).
pub(crate) fn split_arn(value: &str) -> Option<[&str; 6]> {
    let mut it = value.splitn(6, ':');
    Some([
        it.next()?,
        it.next()?,
        it.next()?,
        it.next()?,
        it.next()?,
        it.next()?,
    ])
}

/// Splits pattern pieces at the first five `:` into ARN fields.
fn split_pieces<'a>(pieces: &[Piece<'a>]) -> Vec<Vec<Piece<'a>>> {
    let mut fields: Vec<Vec<Piece<'a>>> = vec![Vec::new()];
    for piece in pieces {
        let (mut rest, wild) = match *piece {
            Piece::Wild(s) => (s, true),
            Piece::Verbatim(s) => (s, false),
        };
        let make = |s: &'a str| {
            if wild {
                Piece::Wild(s)
            } else {
                Piece::Verbatim(s)
            }
        };
        while fields.len() < 6 {
            let Some((head, tail)) = rest.split_once(':') else {
                break;
            };
            if let Some(last) = fields.last_mut() {
                last.push(make(head));
            }
            fields.push(Vec::new());
            rest = tail;
        }
        if let Some(last) = fields.last_mut() {
            last.push(make(rest));
        }
    }
    fields
}

/// A compiled ARN pattern (used for `Resource`/`NotResource` and the `Arn*` operators).
///
/// Rules:
/// * a pattern made only of `*` matches every value;
/// * if both pattern and value have six ARN fields, each of the first five fields is matched
///   separately and the sixth (resource) field is matched as a whole;
/// * an ARN-shaped value never matches a pattern with fewer than six fields (other than `*`);
/// * a value that is not ARN-shaped is matched against the whole pattern as plain text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ArnPattern {
    whole: Pattern,
    fields: Option<Vec<Pattern>>,
}

impl ArnPattern {
    /// Compiles an ARN pattern from pieces.
    pub(crate) fn compile(pieces: &[Piece<'_>]) -> ArnPattern {
        let whole = Pattern::compile(pieces);
        let split = split_pieces(pieces);
        let fields =
            (split.len() == 6).then(|| split.iter().map(|f| Pattern::compile(f)).collect());
        ArnPattern { whole, fields }
    }

    /// Compiles an ARN pattern whose `*` and `?` are all wildcards.
    #[cfg(test)]
    pub(crate) fn new(source: &str) -> ArnPattern {
        Self::compile(&[Piece::Wild(source)])
    }

    /// Does `value` match?
    pub(crate) fn is_match(&self, value: &str) -> bool {
        if self.whole.matches_everything() {
            return true;
        }
        match (&self.fields, split_arn(value)) {
            (Some(patterns), Some(values)) => {
                patterns.iter().zip(values).all(|(p, v)| p.is_match(v))
            }
            (None, Some(_)) => false,
            (_, None) => self.whole.is_match(value),
        }
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

    fn m(p: &str, t: &str) -> bool {
        Pattern::new(p).is_match(t)
    }

    #[test]
    fn literal_and_wildcards() {
        assert!(m("abc", "abc"));
        assert!(!m("abc", "abcd"));
        assert!(!m("abc", "ab"));
        assert!(m("", ""));
        assert!(!m("", "a"));
        assert!(m("*", ""));
        assert!(m("*", "anything"));
        assert!(m("a*", "a"));
        assert!(m("a*c", "abbbc"));
        assert!(!m("a*c", "abbbd"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "ac"));
        assert!(!m("a?c", "abbc"));
        assert!(m("*a*b*c*", "xxaxxbxxcxx"));
        assert!(!m("*a*b*c*", "xxcxxbxxaxx"));
        assert!(m("a*a", "aa"));
        assert!(!m("a*a", "a"));
        assert!(m("?*?", "ab"));
        assert!(!m("?*?", "a"));
        assert!(m("*?b", "ab"));
    }

    #[test]
    fn question_mark_is_one_character_not_one_byte() {
        assert!(m("caf?", "café"));
        assert!(m("?", "é"));
        assert!(!m("??", "é"));
        assert!(m("*é", "aé"));
    }

    #[test]
    fn verbatim_pieces_are_literal() {
        let p = Pattern::compile(&[Piece::Wild("a"), Piece::Verbatim("*"), Piece::Wild("*")]);
        assert!(p.is_match("a*xyz"));
        assert!(!p.is_match("abxyz"));
        let q = Pattern::compile(&[Piece::Verbatim("?")]);
        assert!(q.is_match("?"));
        assert!(!q.is_match("x"));
    }

    #[test]
    fn pathological_patterns_are_fast() {
        let text = "a".repeat(20_000);
        let pattern = format!("{}b", "*a".repeat(200));
        let start = std::time::Instant::now();
        assert!(!m(&pattern, &text));
        assert!(m(&"*a".repeat(200), &text));
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn helpers() {
        assert!(Pattern::new("**").matches_everything());
        assert!(Pattern::new("*").matches_everything());
        assert!(!Pattern::new("*a").matches_everything());
        assert!(!Pattern::new("").matches_everything());
    }

    fn arn(p: &str, v: &str) -> bool {
        ArnPattern::new(p).is_match(v)
    }

    #[test]
    fn arn_fields_are_matched_separately() {
        assert!(arn("arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket/a/b:c"));
        assert!(arn(
            "arn:aws:iam::*:role/*",
            "arn:aws:iam::123456789012:role/x"
        ));
        // A wildcard in the account field does not swallow the resource field's leading part.
        assert!(!arn("arn:aws:iam::*", "arn:aws:iam::123456789012:role/x"));
        // A wildcard in the service field cannot cross into region/account.
        assert!(!arn("arn:aws:*:role/x", "arn:aws:iam::1:role/x"));
        assert!(arn("arn:aws:*:*:*:role/x", "arn:aws:iam::1:role/x"));
        assert!(arn("arn:*:iam::1:role/x", "arn:aws-cn:iam::1:role/x"));
        assert!(!arn("arn:aws:iam::1:role/X", "arn:aws:iam::1:role/x"));
        assert!(arn(
            "arn:aws:iam::1:role/a:b*",
            "arn:aws:iam::1:role/a:bc:d"
        ));
        assert!(arn(
            "arn:aws:ec2:us-east-?:1:instance/*",
            "arn:aws:ec2:us-east-1:1:instance/i-1"
        ));
        assert!(!arn(
            "arn:aws:ec2:us-east-?:1:instance/*",
            "arn:aws:ec2:us-east-10:1:instance/i-1"
        ));
    }

    #[test]
    fn arn_star_and_non_arn_values() {
        assert!(arn("*", "arn:aws:s3:::b"));
        assert!(arn("*", "not an arn"));
        assert!(arn("**", ""));
        assert!(!arn("arn:aws:s3:::*", "*"));
        assert!(arn("foo*", "foobar"));
        assert!(!arn("arn:aws:s3:::b", "arn:aws:s3::"));
    }

    // ------------------------------------------------------------ regex oracle

    use proptest::prelude::*;

    fn translate(pattern: &str, any_run: &str, any_one: &str) -> String {
        let mut re = String::new();
        for c in pattern.chars() {
            match c {
                '*' => re.push_str(any_run),
                '?' => re.push_str(any_one),
                c => re.push_str(&regex_lite::escape(&c.to_string())),
            }
        }
        re
    }

    fn oracle(pattern: &str, text: &str) -> bool {
        let re = format!("(?s)^{}$", translate(pattern, ".*", "."));
        regex_lite::Regex::new(&re).unwrap().is_match(text)
    }

    /// ARN rule by regex: the first five fields' wildcards cannot match ':'.
    fn arn_oracle(pattern: &str, value: &str) -> bool {
        if !pattern.is_empty() && pattern.chars().all(|c| c == '*') {
            return true;
        }
        let value_is_arn = value.matches(':').count() >= 5;
        let fields: Vec<&str> = pattern.splitn(6, ':').collect();
        match (fields.len() == 6, value_is_arn) {
            (true, true) => {
                let mut re = String::from("(?s)^");
                for (i, f) in fields.iter().enumerate() {
                    if i > 0 {
                        re.push(':');
                    }
                    if i < 5 {
                        re.push_str(&translate(f, "[^:]*", "[^:]"));
                    } else {
                        re.push_str(&translate(f, ".*", "."));
                    }
                }
                re.push('$');
                regex_lite::Regex::new(&re).unwrap().is_match(value)
            }
            (false, true) => false,
            (_, false) => oracle(pattern, value),
        }
    }

    fn pattern_strategy() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop::sample::select(vec!['a', 'b', ':', '/', '*', '?', 'é']),
            0..12,
        )
        .prop_map(|cs| cs.into_iter().collect())
    }

    fn text_strategy() -> impl Strategy<Value = String> {
        proptest::collection::vec(prop::sample::select(vec!['a', 'b', ':', '/', 'é']), 0..16)
            .prop_map(|cs| cs.into_iter().collect())
    }

    fn arn_like_strategy(alphabet: Vec<char>) -> impl Strategy<Value = String> {
        proptest::collection::vec(
            proptest::collection::vec(prop::sample::select(alphabet), 0..4)
                .prop_map(|cs| cs.into_iter().collect::<String>()),
            4..9,
        )
        .prop_map(|fields| fields.join(":"))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        #[test]
        fn matcher_agrees_with_regex(pattern in pattern_strategy(), text in text_strategy()) {
            prop_assert_eq!(Pattern::new(&pattern).is_match(&text), oracle(&pattern, &text), "{:?} {:?}", pattern, text);
        }

        #[test]
        fn matcher_agrees_with_regex_on_matching_texts(pattern in pattern_strategy(), fill in text_strategy()) {
            // Build a text that matches by construction, to exercise the positive side.
            let mut text = String::new();
            let mut fillers = fill.chars().cycle();
            for c in pattern.chars() {
                match c {
                    '*' => { for _ in 0..(fill.len() % 3) { text.extend(fillers.next()); } }
                    '?' => text.push(fillers.next().unwrap_or('x')),
                    c => text.push(c),
                }
            }
            prop_assert!(oracle(&pattern, &text));
            prop_assert!(Pattern::new(&pattern).is_match(&text), "{:?} {:?}", pattern, text);
        }

        #[test]
        fn arn_matcher_agrees_with_regex(
            pattern in arn_like_strategy(vec!['a', 'b', '/', '*', '?']),
            value in arn_like_strategy(vec!['a', 'b', '/']),
        ) {
            prop_assert_eq!(ArnPattern::new(&pattern).is_match(&value), arn_oracle(&pattern, &value), "{:?} {:?}", pattern, value);
        }

        #[test]
        fn arn_matcher_agrees_with_regex_on_free_text(pattern in pattern_strategy(), value in text_strategy()) {
            prop_assert_eq!(ArnPattern::new(&pattern).is_match(&value), arn_oracle(&pattern, &value), "{:?} {:?}", pattern, value);
        }
    }
}
