//! A minimal JSON tree for policy parsing and a small writer for [`crate::Policy::to_json`].
//!
//! Objects keep their keys in document order *including duplicates*, so the policy parser
//! can reject duplicate keys as AWS does (serde_json's own `Value` keeps the last one).
//! Numbers are kept as text: AWS treats numeric and boolean policy values as strings.
//!
//! The tree is built for speed: strings and keys borrow from the document unless they contain
//! escapes, so building it allocates one vector per array and object and little else. (One
//! arena for all containers was tried: its large blocks make glibc's allocator slower than
//! many small vectors.)

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::PolicyError;

/// A parsed JSON value, borrowing from the document text. Read arrays and objects with
/// [`Doc::array`] and [`Doc::object`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json<'a> {
    Null,
    Bool(bool),
    /// A number rendered as text (integers exactly; floats in shortest round-trip form).
    Number(String),
    String(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    /// Entries in document order, duplicates kept.
    Object(Vec<Entry<'a>>),
}

/// An object entry.
pub(crate) type Entry<'a> = (Cow<'a, str>, Json<'a>);

impl Json<'_> {
    /// Name of the JSON type, for error messages.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Bool(_) => "a boolean",
            Self::Number(_) => "a number",
            Self::String(_) => "a string",
            Self::Array(_) => "an array",
            Self::Object(_) => "an object",
        }
    }

    /// The string value, if this is a string.
    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }
}

/// A parsed document.
#[derive(Debug, PartialEq)]
pub(crate) struct Doc<'a> {
    root: Json<'a>,
}

impl<'a> Doc<'a> {
    /// The top-level value.
    pub(crate) fn root(&self) -> &Json<'a> {
        &self.root
    }

    /// The elements of `value` if it is an array.
    pub(crate) fn array<'v>(&self, value: &'v Json<'a>) -> Option<&'v [Json<'a>]> {
        match value {
            Json::Array(items) => Some(items),
            _ => None,
        }
    }

    /// The entries of `value` if it is an object.
    pub(crate) fn object<'v>(&self, value: &'v Json<'a>) -> Option<&'v [Entry<'a>]> {
        match value {
            Json::Object(entries) => Some(entries),
            _ => None,
        }
    }
}

/// serde_json's view of one value.
struct ValueSeed;

impl<'de> DeserializeSeed<'de> for ValueSeed {
    type Value = Json<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed {
    type Value = Json<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Json<'de>, E> {
        Ok(Json::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Json<'de>, E> {
        Ok(Json::Number(v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Json<'de>, E> {
        Ok(Json::Number(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Json<'de>, E> {
        let text = serde_json::Number::from_f64(v).map_or_else(|| v.to_string(), |n| n.to_string());
        Ok(Json::Number(text))
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Owned(v)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json<'de>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(4));
        while let Some(item) = seq.next_element_seed(ValueSeed)? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json<'de>, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(6));
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let value = map.next_value_seed(ValueSeed)?;
            entries.push((key, value));
        }
        Ok(Json::Object(entries))
    }
}

/// An object key, borrowed from the document when it has no escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

/// Parses `text` as one JSON value (trailing garbage is an error), as
/// [`crate::Policy::parse`] does.
///
/// A small parser ([`parse_fast`]) handles well-formed documents; anything it does not accept
/// (malformed or unusual input: invalid escapes, deep nesting, ...) goes through serde_json
/// ([`parse_serde`]), whose result (and error message) is then the answer. The fast parser only
/// accepts documents that serde_json accepts, and builds the same tree (tested against it).
#[cfg(test)]
pub(crate) fn parse(text: &str) -> Result<Doc<'_>, PolicyError> {
    match parse_fast(text) {
        Some((doc, _)) => Ok(doc),
        None => parse_serde(text),
    }
}

/// serde_json's parse of `text` (what `serde_json::from_str` does).
pub(crate) fn parse_serde(text: &str) -> Result<Doc<'_>, PolicyError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let root = ValueSeed
        .deserialize(&mut de)
        .and_then(|root| de.end().map(|()| root))
        .map_err(|e| PolicyError::Syntax(e.to_string()))?;
    Ok(Doc { root })
}

/// The fast parser's promise: when it accepts `text`, serde_json accepts it with the same
/// tree, and the size it measured is [`policy_size`].
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn fast_path_agrees(text: &str) -> bool {
    match parse_fast(text) {
        None => true,
        Some((doc, size)) => {
            parse_serde(text).is_ok_and(|slow| slow == doc) && size == policy_size(text)
        }
    }
}

/// Nesting deeper than this is left to serde_json (which allows 128 levels).
const FAST_MAX_DEPTH: usize = 100;

/// The fast path of parsing: `None` means "not handled here", not "invalid". Also returns the
/// document's [`policy_size`] (every character but the whitespace between tokens, which in
/// valid JSON is exactly the whitespace outside strings).
pub(crate) fn parse_fast(text: &str) -> Option<(Doc<'_>, usize)> {
    let mut p = FastParser {
        text,
        bytes: text.as_bytes(),
        pos: 0,
        depth: 0,
        whitespace: 0,
    };
    let root = p.value()?;
    p.skip_ws();
    if p.pos != p.bytes.len() {
        return None;
    }
    let size = text.chars().count() - p.whitespace;
    Some((Doc { root }, size))
}

struct FastParser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    depth: usize,
    /// Whitespace bytes skipped between tokens.
    whitespace: usize,
}

impl<'a> FastParser<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
            self.whitespace += 1;
        }
    }

    fn value(&mut self) -> Option<Json<'a>> {
        self.skip_ws();
        match self.peek()? {
            b'{' => self.object(),
            b'[' => self.array(),
            b'"' => self.string().map(Json::String),
            b't' => self.keyword("true", Json::Bool(true)),
            b'f' => self.keyword("false", Json::Bool(false)),
            b'n' => self.keyword("null", Json::Null),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    fn keyword(&mut self, word: &str, value: Json<'a>) -> Option<Json<'a>> {
        let end = self.pos + word.len();
        (self.bytes.get(self.pos..end)? == word.as_bytes()).then(|| {
            self.pos = end;
            value
        })
    }

    /// Numbers are rare in policies: the token is handed to serde_json, so its value and text
    /// are exactly what the full parse would give.
    fn number(&mut self) -> Option<Json<'a>> {
        let start = self.pos;
        while let Some(b'0'..=b'9' | b'+' | b'-' | b'.' | b'e' | b'E') = self.peek() {
            self.pos += 1;
        }
        match parse_serde(self.text.get(start..self.pos)?).ok()?.root {
            number @ Json::Number(_) => Some(number),
            _ => None,
        }
    }

    fn string(&mut self) -> Option<Cow<'a, str>> {
        let start = self.pos + 1;
        let at = find_byte(
            self.bytes,
            start,
            |v| has_byte(v, b'"') | has_byte(v, b'\\') | has_less(v, 0x20),
            |b| b == b'"' || b == b'\\' || b < 0x20,
        )?;
        match self.bytes.get(at)? {
            b'"' => {
                let s = self.text.get(start..at)?;
                self.pos = at + 1;
                Some(Cow::Borrowed(s))
            }
            b'\\' => {
                // Find the closing quote, then let serde_json decode the escapes.
                let mut i = at;
                loop {
                    match *self.bytes.get(i)? {
                        b'\\' => i += 2,
                        b'"' => break,
                        b if b < 0x20 => return None,
                        _ => i += 1,
                    }
                }
                let decoded: String = serde_json::from_str(self.text.get(self.pos..=i)?).ok()?;
                self.pos = i + 1;
                Some(Cow::Owned(decoded))
            }
            _ => None,
        }
    }

    fn enter(&mut self) -> Option<()> {
        self.depth += 1;
        self.pos += 1;
        (self.depth <= FAST_MAX_DEPTH).then_some(())
    }

    fn object(&mut self) -> Option<Json<'a>> {
        self.enter()?;
        let mut entries = Vec::with_capacity(6);
        self.skip_ws();
        if self.peek()? == b'}' {
            self.pos += 1;
        } else {
            loop {
                self.skip_ws();
                if self.peek()? != b'"' {
                    return None;
                }
                let key = self.string()?;
                self.skip_ws();
                if self.peek()? != b':' {
                    return None;
                }
                self.pos += 1;
                let value = self.value()?;
                entries.push((key, value));
                self.skip_ws();
                match self.peek()? {
                    b',' => self.pos += 1,
                    b'}' => {
                        self.pos += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        self.depth -= 1;
        Some(Json::Object(entries))
    }

    fn array(&mut self) -> Option<Json<'a>> {
        self.enter()?;
        let mut items = Vec::with_capacity(4);
        self.skip_ws();
        if self.peek()? == b']' {
            self.pos += 1;
        } else {
            loop {
                items.push(self.value()?);
                self.skip_ws();
                match self.peek()? {
                    b',' => self.pos += 1,
                    b']' => {
                        self.pos += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        self.depth -= 1;
        Some(Json::Array(items))
    }
}

/// Length of `text` as AWS counts it for policy quotas: characters, not counting JSON
/// whitespace outside string literals.
#[must_use]
pub fn policy_size(text: &str) -> usize {
    // Every character counts except JSON whitespace outside string literals, which is ASCII.
    let bytes = text.as_bytes();
    let mut whitespace = 0usize;
    let mut i = 0usize;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'"' => i = string_end(bytes, i + 1),
            b' ' | b'\t' | b'\n' | b'\r' => {
                whitespace += 1;
                i += 1;
            }
            _ => i += 1,
        }
    }
    text.chars().count() - whitespace
}

/// The offset just past the string literal whose contents start at `i` (after its closing
/// `"`), or the end of `bytes` if it is not closed. Escaped characters are skipped.
fn string_end(bytes: &[u8], mut i: usize) -> usize {
    loop {
        match find_byte(
            bytes,
            i,
            |v| has_byte(v, b'"') | has_byte(v, b'\\'),
            |b| b == b'"' || b == b'\\',
        ) {
            None => return bytes.len(),
            // A multi-byte character's other bytes can be neither `"` nor `\\`, so skipping
            // one byte after the backslash is enough.
            Some(at) if bytes.get(at) == Some(&b'\\') => i = at + 2,
            Some(at) => return at + 1,
        }
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// High bit set in each byte of `v` that is below `n` (`n` <= 128). The lowest flagged byte
/// is always a true match (a false positive can only follow a true one).
fn has_less(v: u64, n: u8) -> u64 {
    v.wrapping_sub(ONES * u64::from(n)) & !v & HIGHS
}

/// High bit set in each byte of `v` equal to `b` (same caveat as [`has_less`]).
fn has_byte(v: u64, b: u8) -> u64 {
    has_less(v ^ (ONES * u64::from(b)), 1)
}

/// The first offset at or after `from` whose byte satisfies `one`; `word` flags candidate
/// bytes eight at a time (see [`has_less`]).
fn find_byte(
    bytes: &[u8],
    from: usize,
    word: impl Fn(u64) -> u64,
    one: impl Fn(u8) -> bool,
) -> Option<usize> {
    let rest = bytes.get(from..)?;
    let mut chunks = rest.chunks_exact(8);
    let mut offset = from;
    for chunk in &mut chunks {
        let mut lanes = [0u8; 8];
        lanes.copy_from_slice(chunk);
        let mask = word(u64::from_le_bytes(lanes));
        if mask != 0 {
            return Some(offset + (mask.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| one(b))
        .map(|at| offset + at)
}

/// The first key of `entries` that repeats an earlier one, if any.
pub(crate) fn duplicate_key<'e>(entries: &'e [Entry<'_>]) -> Option<&'e str> {
    entries.iter().enumerate().find_map(|(i, (key, _))| {
        entries
            .iter()
            .take(i)
            .any(|(earlier, _)| earlier == key)
            .then_some(key.as_ref())
    })
}

/// Rejects duplicate keys in `entries`; `location` is only called on error.
pub(crate) fn check_duplicates(
    entries: &[Entry<'_>],
    location: impl FnOnce() -> String,
) -> Result<(), PolicyError> {
    match duplicate_key(entries) {
        None => Ok(()),
        Some(key) => Err(PolicyError::DuplicateKey {
            key: key.to_owned(),
            location: location(),
        }),
    }
}

/// Looks up `key` in `entries` (call [`check_duplicates`] first).
pub(crate) fn get<'a, 'b>(
    entries: &'a [(Cow<'b, str>, Json<'b>)],
    key: &str,
) -> Option<&'a Json<'b>> {
    entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// Appends `s` to `out` as a JSON string literal.
pub(crate) fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let v = u32::from(c) as usize;
                out.push_str("\\u00");
                for nibble in [v >> 4, v & 0xf] {
                    if let Some(&h) = HEX.get(nibble) {
                        out.push(char::from(h));
                    }
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends a list of strings: a plain string when there is exactly one, else an array.
pub(crate) fn write_str_or_list<'a, I>(out: &mut String, items: I)
where
    I: IntoIterator<Item = &'a str>,
    I::IntoIter: ExactSizeIterator,
{
    let items = items.into_iter();
    if items.len() == 1 {
        for item in items {
            write_str(out, item);
        }
        return;
    }
    out.push('[');
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(out, item);
    }
    out.push(']');
}

#[cfg(test)]
mod tests;
