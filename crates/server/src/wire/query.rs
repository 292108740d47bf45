//! AWS query protocol requests: `application/x-www-form-urlencoded` bodies (or query strings)
//! with `Action`, `Version` and members; lists as `Name.member.N`, structures in lists as
//! `Name.member.N.Field`, maps as `Name.entry.N.key` / `.value`.

use std::collections::HashMap;

use podiam_control::AwsError;
use podiam_control::model::Tag;

/// Most parameters a query request may carry; beyond this it is refused before any work.
pub const MAX_PARAMS: usize = 1000;

/// Decoded query parameters.
#[derive(Debug, Default, Clone)]
pub struct Params {
    map: HashMap<String, String>,
}

impl Params {
    /// Decode a form body or query string. Duplicate names: the first wins (as AWS does).
    pub fn parse(bytes: &[u8]) -> Result<Self, AwsError> {
        let mut map = HashMap::new();
        for (i, (k, v)) in form_urlencoded::parse(bytes).enumerate() {
            if i >= MAX_PARAMS {
                return Err(AwsError::validation(format!(
                    "too many request parameters (more than {MAX_PARAMS})"
                )));
            }
            map.entry(k.into_owned()).or_insert_with(|| v.into_owned());
        }
        Ok(Self { map })
    }

    /// A parameter, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.map.get(name).map(String::as_str)
    }

    /// A required parameter; absent → `MissingParameter`... AWS answers `ValidationError` for
    /// modeled required members, which is what SDK users see.
    pub fn required(&self, name: &str) -> Result<&str, AwsError> {
        self.get(name).ok_or_else(|| {
            let member = lower_first(name);
            AwsError::validation(format!("1 validation error detected: Value null at '{member}' failed to satisfy constraint: Member must not be null"))
        })
    }

    /// Whether any parameter name starts with `prefix`.
    pub fn has_prefix(&self, prefix: &str) -> bool {
        self.map.keys().any(|k| k.starts_with(prefix))
    }

    /// How many members the list (or map) `name` has: `Name.member.N` (or `Name.entry.N`), or a
    /// structure's fields `Name.member.N.Field`, counted contiguously from 1.
    pub fn member_count(&self, name: &str) -> usize {
        let mut n = 0;
        for i in 1.. {
            let found = ["member", "entry"].iter().any(|kind| {
                let item = format!("{name}.{kind}.{i}");
                self.map.contains_key(&item) || self.has_prefix(&format!("{item}."))
            });
            if !found {
                break;
            }
            n = i;
        }
        n
    }

    /// An owned optional string.
    pub fn opt(&self, name: &str) -> Option<String> {
        self.get(name).map(str::to_owned)
    }

    /// An optional integer.
    pub fn int(&self, name: &str) -> Result<Option<i64>, AwsError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => v.trim().parse::<i64>().map(Some).map_err(|_| {
                AwsError::validation(format!(
                    "value {v:?} for parameter {name} is not a valid integer"
                ))
            }),
        }
    }

    /// An optional boolean (`true`/`false`).
    pub fn bool(&self, name: &str) -> Result<Option<bool>, AwsError> {
        match self.get(name) {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(v) => Err(AwsError::validation(format!(
                "value {v:?} for parameter {name} is not a valid boolean"
            ))),
        }
    }

    /// A list `Name.member.1..N` of strings. Numbering must be contiguous from 1.
    pub fn list(&self, name: &str) -> Vec<String> {
        let mut out = Vec::new();
        for i in 1.. {
            match self.get(&format!("{name}.member.{i}")) {
                Some(v) => out.push(v.to_owned()),
                None => break,
            }
        }
        out
    }

    /// A list of structures: for each `Name.member.N`, the given fields.
    pub fn struct_list(&self, name: &str, field: &str) -> Vec<String> {
        let mut out = Vec::new();
        for i in 1.. {
            match self.get(&format!("{name}.member.{i}.{field}")) {
                Some(v) => out.push(v.to_owned()),
                None => break,
            }
        }
        out
    }

    /// `Tags.member.N.Key` / `.Value`.
    pub fn tags(&self, name: &str) -> Result<Vec<Tag>, AwsError> {
        let mut out = Vec::new();
        for i in 1.. {
            let k = self.get(&format!("{name}.member.{i}.Key"));
            let v = self.get(&format!("{name}.member.{i}.Value"));
            match (k, v) {
                (None, None) => break,
                (Some(k), v) => out.push(Tag {
                    key: k.to_owned(),
                    value: v.unwrap_or_default().to_owned(),
                }),
                (None, Some(_)) => {
                    return Err(AwsError::validation(format!(
                        "1 validation error detected: Value null at '{}.{i}.member.key' failed to satisfy constraint: Member must not be null",
                        lower_first(name)
                    )));
                }
            }
        }
        Ok(out)
    }
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn lists_structs_and_tags() {
        let p = Params::parse(b"Action=X&ClientIDList.member.1=a&ClientIDList.member.2=b%20c&Tags.member.1.Key=k&Tags.member.1.Value=v&PolicyArns.member.1.arn=arn1").unwrap();
        assert_eq!(p.list("ClientIDList"), vec!["a", "b c"]);
        assert_eq!(p.struct_list("PolicyArns", "arn"), vec!["arn1"]);
        let t = p.tags("Tags").unwrap();
        assert_eq!((t[0].key.as_str(), t[0].value.as_str()), ("k", "v"));
        assert!(p.list("Missing").is_empty());
    }

    #[test]
    fn gaps_and_bad_values() {
        let p = Params::parse(b"L.member.2=x&N=abc&B=yes&Tags.member.1.Value=v").unwrap();
        assert!(p.list("L").is_empty(), "a list starts at member 1");
        assert_eq!(
            p.int("N").unwrap_err().code,
            podiam_control::ErrorCode::ValidationError
        );
        assert_eq!(
            p.bool("B").unwrap_err().code,
            podiam_control::ErrorCode::ValidationError
        );
        assert_eq!(
            p.tags("Tags").unwrap_err().code,
            podiam_control::ErrorCode::ValidationError
        );
        assert_eq!(
            p.required("RoleName").unwrap_err().code,
            podiam_control::ErrorCode::ValidationError
        );
    }

    #[test]
    fn duplicates_first_wins_and_limits() {
        let p = Params::parse(b"A=1&A=2").unwrap();
        assert_eq!(p.get("A"), Some("1"));
        let many: String = (0..1001).map(|i| format!("p{i}=1&")).collect();
        assert!(Params::parse(many.as_bytes()).is_err());
    }
}
