//! A minimal JSON tree for policy parsing and a small writer for [`crate::Policy::to_json`].
//!
//! Objects keep their keys in document order *including duplicates*, so the policy parser
//! can reject duplicate keys as AWS does (serde_json's own `Value` keeps the last one).
//! Numbers are kept as text: AWS treats numeric and boolean policy values as strings.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::PolicyError;

/// A parsed JSON value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    /// A number rendered as text (integers exactly; floats in shortest round-trip form).
    Number(String),
    String(String),
    Array(Vec<Json>),
    /// Entries in document order; duplicates are kept.
    Object(Vec<(String, Json)>),
}

impl Json {
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
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Json, E> {
        Ok(Json::Number(v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Json, E> {
        Ok(Json::Number(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Json, E> {
        let text = serde_json::Number::from_f64(v).map_or_else(|| v.to_string(), |n| n.to_string());
        Ok(Json::Number(text))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Json, E> {
        Ok(Json::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Json, E> {
        Ok(Json::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Json>()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut entries = Vec::new();
        while let Some((key, value)) = map.next_entry::<String, Json>()? {
            entries.push((key, value));
        }
        Ok(Json::Object(entries))
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

/// Parses `text` as one JSON value (trailing garbage is an error).
pub(crate) fn parse(text: &str) -> Result<Json, PolicyError> {
    serde_json::from_str::<Json>(text).map_err(|e| PolicyError::Syntax(e.to_string()))
}

/// Length of `text` as AWS counts it for policy quotas: characters, not counting JSON
/// whitespace outside string literals.
#[must_use]
pub fn policy_size(text: &str) -> usize {
    let mut count = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for c in text.chars() {
        if in_string {
            count += 1;
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            count += 1;
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            count += 1;
        }
    }
    count
}

/// Rejects duplicate keys in `entries`.
pub(crate) fn check_duplicates(
    entries: &[(String, Json)],
    location: &str,
) -> Result<(), PolicyError> {
    for (i, (key, _)) in entries.iter().enumerate() {
        if entries.iter().take(i).any(|(earlier, _)| earlier == key) {
            return Err(PolicyError::DuplicateKey {
                key: key.clone(),
                location: location.to_owned(),
            });
        }
    }
    Ok(())
}

/// Looks up `key` in `entries` (call [`check_duplicates`] first).
pub(crate) fn get<'a>(entries: &'a [(String, Json)], key: &str) -> Option<&'a Json> {
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
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;

    #[test]
    fn keeps_duplicates_and_order() {
        let v = parse(r#"{"b":1,"a":2,"b":3}"#).unwrap();
        let Json::Object(entries) = v else {
            panic!("not an object")
        };
        let keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["b", "a", "b"]);
        assert!(check_duplicates(&entries, "policy").is_err());
    }

    #[test]
    fn numbers_become_text() {
        assert_eq!(parse("3600").unwrap(), Json::Number("3600".into()));
        assert_eq!(parse("-7").unwrap(), Json::Number("-7".into()));
        assert_eq!(parse("1.5").unwrap(), Json::Number("1.5".into()));
    }

    #[test]
    fn rejects_trailing_garbage_and_bad_json() {
        assert!(matches!(parse("{} x"), Err(PolicyError::Syntax(_))));
        assert!(matches!(parse("{"), Err(PolicyError::Syntax(_))));
        assert!(matches!(parse(""), Err(PolicyError::Syntax(_))));
    }

    #[test]
    fn size_ignores_whitespace_outside_strings_only() {
        assert_eq!(policy_size("{ \"a b\" : 1 }\n"), 9);
        assert_eq!(policy_size(r#"{"a\" ":1}"#), 10);
    }

    #[test]
    fn writes_escaped_strings() {
        let mut out = String::new();
        write_str(&mut out, "a\"b\\c\n\u{1}");
        assert_eq!(out, r#""a\"b\\c\n\u0001""#);
        let back: String = serde_json::from_str(&out).unwrap();
        assert_eq!(back, "a\"b\\c\n\u{1}");
    }
}
