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

mod arn;

pub(crate) use arn::{ArnPattern, split_arn};

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

#[cfg(test)]
mod tests;
