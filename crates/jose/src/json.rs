//! Bounded, strict JSON parsing for token headers, claims and JWK sets.
//!
//! A single serde pass builds a [`serde_json::Value`] while enforcing:
//! - nesting depth (objects + arrays) of at most `max_depth` containers, the top level counting
//!   as one;
//! - no duplicate member names in any object (RFC 7515 §5.2 allows rejecting them; accepting
//!   "last one wins" invites parser-differential attacks such as two `iss` members);
//! - the top-level value is an object.
//!
//! Error messages never include input text except short, escaped member names.

use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::error::snippet;

/// Parses `bytes` as a JSON object under the limits described in the module docs.
pub(crate) fn parse_object(bytes: &[u8], max_depth: usize) -> Result<Map<String, Value>, String> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = ValueSeed {
        depth_left: max_depth,
    }
    .deserialize(&mut de)
    .map_err(describe)?;
    de.end().map_err(describe)?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err("json is not an object".to_owned()),
    }
}

fn describe(e: serde_json::Error) -> String {
    use serde_json::error::Category;
    match e.classify() {
        // Data errors only come from our own visitors (custom messages without input text).
        Category::Data => e.to_string(),
        Category::Syntax | Category::Io => {
            format!("invalid json at line {} column {}", e.line(), e.column())
        }
        Category::Eof => "truncated json".to_owned(),
    }
}

#[derive(Clone, Copy)]
struct ValueSeed {
    /// How many more containers may be opened, including one at this position.
    depth_left: usize,
}

impl<'de> DeserializeSeed<'de> for ValueSeed {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor {
            depth_left: self.depth_left,
        })
    }
}

struct ValueVisitor {
    depth_left: usize,
}

impl ValueVisitor {
    fn child<E: de::Error>(&self) -> Result<ValueSeed, E> {
        self.depth_left
            .checked_sub(1)
            .map(|depth_left| ValueSeed { depth_left })
            .ok_or_else(|| E::custom("json nesting is too deep"))
    }
}

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any json value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("json number is not finite"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let seed = self.child()?;
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(16));
        while let Some(v) = seq.next_element_seed(seed)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let seed = self.child()?;
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            // One search of the map per member: the vacant slot is filled once the value is read.
            let slot = match out.entry(key) {
                serde_json::map::Entry::Vacant(slot) => slot,
                serde_json::map::Entry::Occupied(taken) => {
                    return Err(de::Error::custom(format_args!(
                        "duplicate json member {:?}",
                        snippet(taken.key())
                    )));
                }
            };
            slot.insert(map.next_value_seed(seed)?);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> String {
        // depth containers in total, top-level object included.
        let mut s = String::new();
        s.push_str("{\"a\":");
        for _ in 1..depth {
            s.push('[');
        }
        s.push('1');
        for _ in 1..depth {
            s.push(']');
        }
        s.push('}');
        s
    }

    #[test]
    fn depth_limit_is_exact() {
        assert!(parse_object(nested(32).as_bytes(), 32).is_ok());
        let err = parse_object(nested(33).as_bytes(), 32).unwrap_err();
        assert!(err.contains("too deep"), "{err}");
        // Far deeper than serde_json's own recursion limit: still our error, no stack issue.
        let err = parse_object(nested(5000).as_bytes(), 32).unwrap_err();
        assert!(err.contains("too deep"), "{err}");
    }

    #[test]
    fn rejects_duplicates_at_any_level() {
        let err = parse_object(br#"{"iss":"a","iss":"b"}"#, 32).unwrap_err();
        assert!(err.contains("duplicate json member \"iss\""), "{err}");
        assert!(parse_object(br#"{"x":{"k":1,"k":2}}"#, 32).is_err());
        assert!(parse_object(br#"{"x":[{"k":1,"k":2}]}"#, 32).is_err());
        assert!(parse_object(br#"{"x":{"k":1},"y":{"k":2}}"#, 32).is_ok());
    }

    #[test]
    fn rejects_non_objects_and_trailing_data() {
        for bad in [
            &b"[]"[..],
            b"1",
            b"\"s\"",
            b"null",
            b"{} x",
            b"{}{}",
            b"",
            b"{",
            b"{\"a\":1,}",
        ] {
            assert!(
                parse_object(bad, 32).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(parse_object(b" {}\r\n", 32).is_ok());
    }

    #[test]
    fn errors_do_not_echo_values() {
        let secret = "s3cr3t-value-that-must-not-leak";
        let doc = format!("{{\"a\":\"{secret}\" x}}");
        let err = parse_object(doc.as_bytes(), 32).unwrap_err();
        assert!(!err.contains(secret), "{err}");
        let doc = format!("[\"{secret}\"]");
        let err = parse_object(doc.as_bytes(), 32).unwrap_err();
        assert!(!err.contains(secret), "{err}");
    }

    #[test]
    fn numbers_keep_their_kind() {
        let m = parse_object(br#"{"i":-5,"u":18446744073709551615,"f":1.5,"e":1e3}"#, 32).unwrap();
        assert_eq!(m.get("i").and_then(Value::as_i64), Some(-5));
        assert!(m.get("u").is_some_and(Value::is_u64));
        assert!(m.get("f").is_some_and(Value::is_f64));
        assert!(m.get("e").is_some_and(Value::is_f64));
    }
}
