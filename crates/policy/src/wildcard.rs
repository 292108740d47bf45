//! Wildcard patterns, compiled once and matched without backtracking.
//!
//! `*` matches any run of characters (including none) and `?` exactly one character
//! (a Unicode scalar value, not a byte). A pattern is split at its `*`s into runs of fixed
//! character length; the first run is anchored at the start, the last at the end, and each
//! middle run is found at its leftmost position. Leftmost placement is optimal because a
//! run's length is fixed, so the match never needs to backtrack: the cost is `O(|text|)` per
//! run made of literals (a substring search) and `O(|text| * |run|)` for runs containing
//! `?`; there is no exponential blow-up.
//!
//! A compiled pattern is one text buffer (its literal characters) and one list of
//! instructions that point into it; a pattern without wildcards is only the buffer and is
//! matched by string equality.
//!
//! Case-insensitive matching (actions) is done by lowercasing both sides beforehand.
//!
//! [`ArnPattern`] adds the ARN rules. The first five `:`-separated fields (`arn`, partition,
//! service, region, account) are matched separately, so a wildcard does not cross the `:`
//! between them; the sixth field (the resource) may itself contain `:` and `/` and wildcards
//! match across those. This is how the `Arn*` condition operators compare ("each of the six
//! colon-delimited components of the ARN is checked separately"). `Resource`/`NotResource`
//! patterns ([`ArnPattern::compile_resource`]) follow the IAM `Resource` element rule
//! instead: "if the `*` wildcard is the last character of a resource ARN segment, it can
//! expand to match beyond the colon boundaries", so a field that *ends* with a wildcard `*`
//! may swallow the rest of its value field and any number of following `:`-separated fields
//! (`arn:aws:logs:*:log-group:/aws/lambda/*` matches
//! `arn:aws:logs:us-east-1:111122223333:log-group:/aws/lambda/fn`). A `*` or `?` elsewhere in
//! one of the first five fields still stays inside its field.

/// A piece of pattern source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Piece<'a> {
    /// Text in which `*` and `?` are wildcards.
    Wild(&'a str),
    /// Text matched literally: values of policy variables and the `${*}`/`${?}`/`${$}` escapes.
    Verbatim(&'a str),
}

impl<'a> Piece<'a> {
    pub(crate) fn text(self) -> &'a str {
        match self {
            Self::Wild(s) | Self::Verbatim(s) => s,
        }
    }

    fn has_wildcards(self) -> bool {
        matches!(self, Self::Wild(s) if has_wildcards(s))
    }
}

/// Does `s` contain `*` or `?`?
pub(crate) fn has_wildcards(s: &str) -> bool {
    s.bytes().any(|b| b == b'*' || b == b'?')
}

/// Does `s` contain `*`, `?` or a character for which [`char::is_whitespace`] is true?
pub(crate) fn has_wildcards_or_whitespace(s: &str) -> bool {
    s.bytes()
        .any(|b| matches!(b, b'*' | b'?' | b' ' | b'\t'..=b'\r'))
        || (!s.is_ascii() && s.chars().any(char::is_whitespace))
}

/// Does `s` contain a character for which [`char::is_whitespace`] is true?
pub(crate) fn has_whitespace(s: &str) -> bool {
    s.bytes().any(|b| matches!(b, b' ' | b'\t'..=b'\r'))
        || (!s.is_ascii() && s.chars().any(char::is_whitespace))
}

/// One instruction of a compiled pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    /// Literal text `buf[start..end]`, `chars` characters long.
    Lit {
        start: usize,
        end: usize,
        chars: usize,
    },
    /// This many `?` (each exactly one character).
    Any(usize),
    /// `*`: any run of characters.
    Star,
    /// The `:` that ends one of the first five fields of an ARN pattern (a literal `:` when
    /// the pattern is matched as a whole).
    Sep,
}

impl Op {
    /// Number of characters the instruction matches (`Star`: none of its own).
    fn chars(self) -> usize {
        match self {
            Self::Lit { chars, .. } => chars,
            Self::Any(n) => n,
            Self::Sep => 1,
            Self::Star => 0,
        }
    }
}

/// Builds the instruction list of a pattern that has wildcards.
struct Builder {
    buf: String,
    ops: Vec<Op>,
    /// Start of the literal text not yet turned into a `Lit`.
    pending: usize,
    /// How many `:` still become `Sep` (ARN patterns: the first five).
    seps_left: usize,
    /// Instruction index of each `Sep`, in order.
    seps: [usize; 5],
    seps_found: usize,
}

impl Builder {
    fn new(capacity: usize, seps_left: usize) -> Self {
        Builder {
            buf: String::with_capacity(capacity),
            ops: Vec::with_capacity(16),
            pending: 0,
            seps_left,
            seps: [0; 5],
            seps_found: 0,
        }
    }

    fn flush(&mut self) {
        let end = self.buf.len();
        if end > self.pending {
            let chars = self
                .buf
                .get(self.pending..)
                .map_or(0, |s| s.chars().count());
            self.ops.push(Op::Lit {
                start: self.pending,
                end,
                chars,
            });
        }
        self.pending = end;
    }

    /// Literal text (field separators still split it).
    fn literal(&mut self, mut text: &str) {
        while self.seps_left > 0 {
            let Some(at) = text.bytes().position(|b| b == b':') else {
                break;
            };
            let (head, tail) = (
                text.get(..at).unwrap_or_default(),
                text.get(at + 1..).unwrap_or_default(),
            );
            self.buf.push_str(head);
            self.flush();
            if let Some(slot) = self.seps.get_mut(self.seps_found) {
                *slot = self.ops.len();
            }
            self.seps_found += 1;
            self.seps_left -= 1;
            self.ops.push(Op::Sep);
            text = tail;
        }
        self.buf.push_str(text);
    }

    /// Text in which `*` and `?` are wildcards.
    fn wild(&mut self, mut text: &str) {
        while let Some(at) = text.bytes().position(|b| b == b'*' || b == b'?') {
            let (head, tail) = text.split_at(at);
            self.literal(head);
            self.flush();
            let mut chars = tail.chars();
            match chars.next() {
                Some('*') => {
                    if self.ops.last() != Some(&Op::Star) {
                        self.ops.push(Op::Star);
                    }
                }
                _ => match self.ops.last_mut() {
                    Some(Op::Any(n)) => *n += 1,
                    _ => self.ops.push(Op::Any(1)),
                },
            }
            text = chars.as_str();
        }
        self.literal(text);
    }

    fn finish(mut self) -> (Pattern, Option<[usize; 5]>) {
        self.flush();
        let seps = (self.seps_found == 5).then_some(self.seps);
        (
            Pattern {
                buf: self.buf,
                ops: self.ops,
            },
            seps,
        )
    }
}

/// A compiled wildcard pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Pattern {
    /// The literal characters of the pattern.
    buf: String,
    /// The instructions; empty for a pattern without wildcards (matched by equality with
    /// `buf`).
    ops: Vec<Op>,
}

impl Pattern {
    /// Compiles a pattern from pieces.
    pub(crate) fn compile(pieces: &[Piece<'_>]) -> Pattern {
        Self::build(pieces, 0).0
    }

    /// Compiles `pieces`, turning the first `seps` `:` into field separators; also returns
    /// the instruction index of the five separators when there are five.
    fn build(pieces: &[Piece<'_>], seps: usize) -> (Pattern, Option<[usize; 5]>) {
        let capacity = pieces.iter().map(|p| p.text().len()).sum();
        if !pieces.iter().any(|p| p.has_wildcards()) {
            let mut buf = String::with_capacity(capacity);
            for piece in pieces {
                buf.push_str(piece.text());
            }
            return (
                Pattern {
                    buf,
                    ops: Vec::new(),
                },
                None,
            );
        }
        let mut b = Builder::new(capacity, seps);
        for piece in pieces {
            match *piece {
                Piece::Wild(s) => b.wild(s),
                Piece::Verbatim(s) => b.literal(s),
            }
        }
        b.finish()
    }

    /// Compiles a pattern whose `*` and `?` are all wildcards.
    pub(crate) fn new(source: &str) -> Pattern {
        Self::compile(&[Piece::Wild(source)])
    }

    /// Like [`Pattern::new`], reusing `source` as the buffer when it has no wildcard.
    pub(crate) fn new_owned(source: String) -> Pattern {
        if has_wildcards(&source) {
            Self::new(&source)
        } else {
            Pattern {
                buf: source,
                ops: Vec::new(),
            }
        }
    }

    /// True if the pattern is only `*`s (and so matches every string).
    pub(crate) fn matches_everything(&self) -> bool {
        !self.ops.is_empty() && self.ops.iter().all(|op| *op == Op::Star)
    }

    /// Does the whole of `text` match?
    pub(crate) fn is_match(&self, text: &str) -> bool {
        if self.ops.is_empty() {
            text == self.buf
        } else {
            glob(&self.ops, &self.buf, text)
        }
    }

    /// The instructions `range` (a field of an ARN pattern).
    fn ops_in(&self, start: usize, end: Option<usize>) -> &[Op] {
        match end {
            Some(end) => self.ops.get(start..end),
            None => self.ops.get(start..),
        }
        .unwrap_or_default()
    }
}

/// The literal text an instruction matches, if it is literal.
fn literal_of(op: Op, buf: &str) -> Option<&str> {
    match op {
        Op::Lit { start, end, .. } => buf.get(start..end),
        Op::Sep => Some(":"),
        Op::Any(_) | Op::Star => None,
    }
}

/// Matches a run of instructions without `Star` at byte offset `at` of `text`; returns the
/// end offset.
fn match_run(run: &[Op], buf: &str, text: &str, at: usize) -> Option<usize> {
    let mut pos = at;
    for &op in run {
        let rest = text.get(pos..)?;
        match op {
            Op::Any(n) => {
                let mut chars = rest.chars();
                for _ in 0..n {
                    pos += chars.next()?.len_utf8();
                }
            }
            Op::Star => return None,
            lit => {
                let lit = literal_of(lit, buf)?;
                if !rest.starts_with(lit) {
                    return None;
                }
                pos += lit.len();
            }
        }
    }
    Some(pos)
}

/// Leftmost match of `run` that starts at or after `from` and ends at or before `limit`;
/// returns its end offset.
fn find_run(run: &[Op], buf: &str, text: &str, from: usize, limit: usize) -> Option<usize> {
    let hay = text.get(..limit)?;
    let first = run.first().and_then(|op| literal_of(*op, buf));
    let mut start = from;
    loop {
        if let Some(lit) = first {
            start += hay.get(start..)?.find(lit)?;
        }
        if let Some(end) = match_run(run, buf, hay, start) {
            return Some(end);
        }
        start += hay.get(start..)?.chars().next()?.len_utf8();
    }
}

/// Byte offset where the last `n` characters of `text` begin.
fn start_of_last_chars(text: &str, n: usize) -> Option<usize> {
    match n.checked_sub(1) {
        None => Some(text.len()),
        Some(k) => text.char_indices().rev().nth(k).map(|(i, _)| i),
    }
}

/// Does the whole of `text` match the instructions `ops`?
fn glob(ops: &[Op], buf: &str, text: &str) -> bool {
    let (Some(first_star), Some(last_star)) = (
        ops.iter().position(|op| *op == Op::Star),
        ops.iter().rposition(|op| *op == Op::Star),
    ) else {
        return match_run(ops, buf, text, 0) == Some(text.len());
    };
    let head = ops.get(..first_star).unwrap_or_default();
    let tail_run = ops.get(last_star + 1..).unwrap_or_default();
    let Some(mut pos) = match_run(head, buf, text, 0) else {
        return false;
    };
    let tail_chars = tail_run.iter().map(|op| op.chars()).sum();
    let Some(tail) = start_of_last_chars(text, tail_chars) else {
        return false;
    };
    if tail < pos || match_run(tail_run, buf, text, tail) != Some(text.len()) {
        return false;
    }
    let middle = ops.get(first_star + 1..last_star).unwrap_or_default();
    for run in middle.split(|op| *op == Op::Star) {
        if run.is_empty() {
            continue;
        }
        match find_run(run, buf, text, pos, tail) {
            Some(end) => pos = end,
            None => return false,
        }
    }
    true
}

/// Splits `value` into the six ARN fields (the sixth keeps any further `:`).
pub(crate) fn split_arn(value: &str) -> Option<[&str; 6]> {
    let mut cuts = [0usize; 5];
    let mut found = 0usize;
    for (i, b) in value.bytes().enumerate() {
        if b == b':' {
            if let Some(cut) = cuts.get_mut(found) {
                *cut = i;
            }
            found += 1;
            if found == 5 {
                break;
            }
        }
    }
    if found < 5 {
        return None;
    }
    let [a, b, c, d, e] = cuts;
    Some([
        value.get(..a)?,
        value.get(a + 1..b)?,
        value.get(b + 1..c)?,
        value.get(c + 1..d)?,
        value.get(d + 1..e)?,
        value.get(e + 1..)?,
    ])
}

/// A compiled ARN pattern (used for `Resource`/`NotResource` and the `Arn*` operators).
///
/// Rules:
/// * a pattern made only of `*` matches every value;
/// * if both pattern and value have six ARN fields, each of the first five fields is matched
///   separately and the sixth (resource) field is matched as a whole; for resource patterns
///   a field ending with a wildcard `*` may also cross the `:` that follow it (see the
///   module documentation);
/// * an ARN-shaped value never matches a pattern with fewer than six fields (other than `*`);
/// * a value that is not ARN-shaped is matched against the whole pattern as plain text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ArnPattern {
    /// The whole pattern (in [`ArnShape::Fields`], its first five `:` are `Sep`s).
    pattern: Pattern,
    shape: ArnShape,
}

/// Where an ARN pattern's wildcards are, which decides how it is matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ArnShape {
    /// Fewer than six fields: matches no ARN-shaped value; other values as text.
    Short,
    /// Six fields, wildcards only in the resource field: the first five fields are literal
    /// (with their `:`), so matching the whole text is matching field by field.
    Whole,
    /// Six fields with wildcards in the first five: matched field by field.
    Fields {
        /// Instruction index of the five field separators.
        seps: [usize; 5],
        /// Bit `i` set: field `i` ends with a `*` that may cross `:` (resource patterns).
        crossing: u8,
    },
}

/// The shape of the pattern made of `pieces`, before compiling it.
fn arn_shape(pieces: &[Piece<'_>]) -> ArnShape {
    let mut colons = 0usize;
    let mut early_wildcard = false;
    for piece in pieces {
        let wild = matches!(piece, Piece::Wild(_));
        for b in piece.text().bytes() {
            if b == b':' {
                colons += 1;
                if colons == 5 {
                    return if early_wildcard {
                        ArnShape::Fields {
                            seps: [0; 5],
                            crossing: 0,
                        }
                    } else {
                        ArnShape::Whole
                    };
                }
            } else if wild && (b == b'*' || b == b'?') {
                early_wildcard = true;
            }
        }
    }
    ArnShape::Short
}

impl ArnPattern {
    /// Compiles an ARN pattern for the `Arn*` condition operators: wildcards never cross the
    /// first five `:`.
    pub(crate) fn compile(pieces: &[Piece<'_>]) -> ArnPattern {
        match arn_shape(pieces) {
            ArnShape::Fields { .. } => match Pattern::build(pieces, 5) {
                (pattern, Some(seps)) => ArnPattern {
                    pattern,
                    shape: ArnShape::Fields { seps, crossing: 0 },
                },
                // Not reached: a pattern with five `:` and a wildcard has five separators.
                (pattern, None) => ArnPattern {
                    pattern,
                    shape: ArnShape::Short,
                },
            },
            shape => ArnPattern {
                pattern: Pattern::compile(pieces),
                shape,
            },
        }
    }

    /// Compiles a `Resource`/`NotResource` pattern: a `*` that ends one of the first five
    /// fields may expand beyond the `:` boundaries.
    pub(crate) fn compile_resource(pieces: &[Piece<'_>]) -> ArnPattern {
        let mut p = Self::compile(pieces);
        if let ArnShape::Fields { seps, crossing } = &mut p.shape {
            for (i, &sep) in seps.iter().enumerate() {
                let ends_with_star = sep
                    .checked_sub(1)
                    .and_then(|k| p.pattern.ops.get(k))
                    .is_some_and(|op| *op == Op::Star);
                if ends_with_star {
                    *crossing |= 1 << i;
                }
            }
        }
        p
    }

    /// Compiles an ARN pattern whose `*` and `?` are all wildcards.
    #[cfg(test)]
    pub(crate) fn new(source: &str) -> ArnPattern {
        Self::compile(&[Piece::Wild(source)])
    }

    /// Compiles a resource pattern whose `*` and `?` are all wildcards.
    #[cfg(test)]
    pub(crate) fn new_resource(source: &str) -> ArnPattern {
        Self::compile_resource(&[Piece::Wild(source)])
    }

    /// The instructions of field `i` (0..=5).
    fn field(&self, seps: &[usize; 5], i: usize) -> &[Op] {
        let start = match i.checked_sub(1) {
            None => 0,
            Some(k) => seps.get(k).map_or(usize::MAX, |s| s + 1),
        };
        self.pattern.ops_in(start, seps.get(i).copied())
    }

    /// Does `value` match?
    pub(crate) fn is_match(&self, value: &str) -> bool {
        if self.pattern.ops.is_empty() {
            // No wildcard: matching field by field is string equality, and so is matching a
            // non-ARN value as text; a pattern and a value with different numbers of fields
            // are never equal.
            return value == self.pattern.buf;
        }
        if self.pattern.matches_everything() {
            return true;
        }
        let whole = || glob(&self.pattern.ops, &self.pattern.buf, value);
        match self.shape {
            // A non-ARN value cannot match either: the pattern's five literal `:` come before
            // its first wildcard.
            ArnShape::Whole => whole(),
            ArnShape::Short => split_arn(value).is_none() && whole(),
            ArnShape::Fields { seps, crossing } => match split_arn(value) {
                None => whole(),
                Some(values) if crossing == 0 => values
                    .iter()
                    .enumerate()
                    .all(|(i, v)| glob(self.field(&seps, i), &self.pattern.buf, v)),
                Some(_) => self.crossing_match(&seps, crossing, value),
            },
        }
    }

    /// Field-wise matching where the fields flagged in `crossing` may swallow whole `:`-separated
    /// fields of the value after their own. Dynamic programming over (pattern field, value
    /// field where it starts): `O(fields of the value)` glob matches, whatever the input.
    fn crossing_match(&self, seps: &[usize; 5], crossing: u8, value: &str) -> bool {
        let mut starts: Vec<usize> = Vec::with_capacity(8);
        starts.push(0);
        starts.extend(value.match_indices(':').map(|(i, _)| i + 1));
        let n = starts.len();
        let segment = |j: usize| -> &str {
            let start = starts.get(j).copied().unwrap_or(value.len());
            let end = starts
                .get(j + 1)
                .map_or(value.len(), |next| next.saturating_sub(1));
            value.get(start..end).unwrap_or_default()
        };
        let buf = &self.pattern.buf;
        // reach[j]: the current pattern field can start at value field j.
        let mut reach = vec![false; n];
        let mut next = vec![false; n];
        if let Some(first) = reach.first_mut() {
            *first = true;
        }
        for i in 0..5 {
            let ops = self.field(seps, i);
            let crossing = crossing & (1 << i) != 0;
            next.iter_mut().for_each(|r| *r = false);
            for j in 0..n {
                if !reach.get(j).copied().unwrap_or(false) || !glob(ops, buf, segment(j)) {
                    continue;
                }
                if crossing {
                    // The trailing `*` swallows the rest of field j and any number of whole
                    // fields after it: every later field can start the next pattern field.
                    next.iter_mut().skip(j + 1).for_each(|r| *r = true);
                    break;
                }
                if let Some(r) = next.get_mut(j + 1) {
                    *r = true;
                }
            }
            std::mem::swap(&mut reach, &mut next);
        }
        let resource = self.field(seps, 5);
        (0..n).any(|j| {
            reach.get(j).copied().unwrap_or(false)
                && starts
                    .get(j)
                    .and_then(|&s| value.get(s..))
                    .is_some_and(|rest| glob(resource, buf, rest))
        })
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

    fn res(p: &str, v: &str) -> bool {
        ArnPattern::new_resource(p).is_match(v)
    }

    #[test]
    fn resource_star_ending_a_field_crosses_colons() {
        let log = "arn:aws:logs:us-east-1:111122223333:log-group:/aws/lambda/fn";
        // The IAM User Guide's rule; the Arn* operators keep the fields apart.
        assert!(res("arn:aws:logs:*:log-group:/aws/lambda/*", log));
        assert!(!arn("arn:aws:logs:*:log-group:/aws/lambda/*", log));
        assert!(res("arn:aws:logs:us-*:log-group:/aws/lambda/*", log));
        assert!(!res("arn:aws:logs:eu-*:log-group:/aws/lambda/*", log));
        assert!(!res("arn:aws:logs:*:log-group:/aws/lambda/x*", log));
        // A `*` inside a field, a `?` and a literal `*` from `${*}` stay inside the field.
        assert!(!res("arn:aws:logs:u*1:log-group:/aws/lambda/*", log));
        assert!(res(
            "arn:aws:logs:u*1:111122223333:log-group:/aws/lambda/*",
            log
        ));
        assert!(!res("arn:aws:logs:?:log-group:/aws/lambda/*", log));
        let verbatim = ArnPattern::compile_resource(&[
            Piece::Wild("arn:aws:logs:"),
            Piece::Verbatim("*"),
            Piece::Wild(":log-group:/aws/lambda/*"),
        ]);
        assert!(!verbatim.is_match(log));
        // Unchanged cases: fixed fields, a star alone in its field, the resource field.
        assert!(res(
            "arn:aws:ec2:*:*:instance/*",
            "arn:aws:ec2:us-east-1:1:instance/i-1"
        ));
        assert!(!res(
            "arn:aws:ec2:us-east-1:*:instance/*",
            "arn:aws:ec2:us-west-2:1:instance/i-1"
        ));
        assert!(res("arn:aws:iam::*:role/x", "arn:aws:iam::1:role/x"));
        assert!(res("arn:aws:iam::*:role/x", "arn:aws:iam::1:a:role/x"));
        assert!(!res("arn:aws:iam::*:role/x", "arn:aws:iam::1:role/y"));
        assert!(res("arn:aws:s3:::b/*", "arn:aws:s3:::b/a:b"));
        assert!(!res("arn:aws:s3:::b", "arn:aws:s3:::b:c"));
        assert!(res("*", "anything"));
    }

    #[test]
    fn resource_crossing_is_linear_on_many_fields() {
        let value = format!("arn:aws:s3:{}:x", "a:".repeat(5_000));
        let start = std::time::Instant::now();
        assert!(!res("arn:*:*:*:*:y", &value));
        assert!(res("arn:*:*:*:*:x", &value));
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
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

    /// The `Resource` rule by regex: in the first five fields a `*` that is the field's last
    /// character matches anything (also `:`); other wildcards there cannot match `:`.
    fn resource_oracle(pattern: &str, value: &str) -> bool {
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
                        let body = f.strip_suffix('*');
                        re.push_str(&translate(body.unwrap_or(f), "[^:]*", "[^:]"));
                        if body.is_some() {
                            re.push_str(".*");
                        }
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
        fn resource_matcher_agrees_with_regex(
            pattern in arn_like_strategy(vec!['a', 'b', '/', '*', '?']),
            value in arn_like_strategy(vec!['a', 'b', '/']),
        ) {
            prop_assert_eq!(ArnPattern::new_resource(&pattern).is_match(&value), resource_oracle(&pattern, &value), "{:?} {:?}", pattern, value);
        }

        #[test]
        fn resource_matcher_agrees_with_regex_on_free_text(pattern in pattern_strategy(), value in text_strategy()) {
            prop_assert_eq!(ArnPattern::new_resource(&pattern).is_match(&value), resource_oracle(&pattern, &value), "{:?} {:?}", pattern, value);
        }

        #[test]
        fn arn_matcher_agrees_with_regex_on_free_text(pattern in pattern_strategy(), value in text_strategy()) {
            prop_assert_eq!(ArnPattern::new(&pattern).is_match(&value), arn_oracle(&pattern, &value), "{:?} {:?}", pattern, value);
        }
    }
}
