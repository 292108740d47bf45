//! AWS query protocol requests: `application/x-www-form-urlencoded` bodies (or query strings)
//! with `Action`, `Version` and members; lists as `Name.member.N`, structures in lists as
//! `Name.member.N.Field`, maps as `Name.entry.N.key` / `.value`.

use std::borrow::Cow;
use std::collections::HashMap;

use podiam_control::AwsError;
use podiam_control::model::Tag;

/// Most parameters a query request may carry; beyond this it is refused before any work.
pub const MAX_PARAMS: usize = 1000;

/// Decoded query parameters.
#[derive(Debug, Default, Clone)]
pub struct Params {
    /// foldhash rather than SipHash: a handful of short names hashed per request, at most
    /// [`MAX_PARAMS`] of them (which bounds what colliding names could cost), randomly
    /// seeded.
    map: HashMap<String, String, foldhash::fast::RandomState>,
}

impl Params {
    /// Decode a form body or query string. Duplicate names: the first wins (as AWS does).
    ///
    /// The same decoding as `form_urlencoded::parse` (split on `&`, empty pieces skipped, name
    /// and value split at the first `=`, `+` is a space, `%XX` a byte, invalid UTF-8 replaced),
    /// but a piece with neither `%` nor `+` (a JWT, most names) is copied as is instead of
    /// being decoded byte by byte: the web identity token is most of an
    /// AssumeRoleWithWebIdentity body.
    pub fn parse(bytes: &[u8]) -> Result<Self, AwsError> {
        let mut map = HashMap::with_capacity_and_hasher(8, foldhash::fast::RandomState::default());
        for (count, (k, v)) in pairs(bytes).enumerate() {
            if count >= MAX_PARAMS {
                return Err(AwsError::validation(format!(
                    "too many request parameters (more than {MAX_PARAMS})"
                )));
            }
            map.entry(decode(k).into_owned())
                .or_insert_with(|| decode(v).into_owned());
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
        let mut key = String::new();
        for i in 1.. {
            match self.get(member_key(&mut key, name, i, "")) {
                Some(v) => out.push(v.to_owned()),
                None => break,
            }
        }
        out
    }

    /// A list of structures: for each `Name.member.N`, the given fields.
    pub fn struct_list(&self, name: &str, field: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut key = String::new();
        for i in 1.. {
            match self.get(member_key(&mut key, name, i, field)) {
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

/// One form-encoded name or value: `+` is a space, `%XX` a byte, then UTF-8 (invalid sequences
/// replaced).
/// The `name=value` pieces of a form body or query string, not decoded: split on `&`, empty
/// pieces skipped, name and value split at the first `=` (a piece without one has an empty
/// value), as `form_urlencoded::parse` splits them.
pub(crate) fn pairs(bytes: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    let mut rest = bytes;
    std::iter::from_fn(move || {
        loop {
            if rest.is_empty() {
                return None;
            }
            let piece = match memchr::memchr(b'&', rest) {
                Some(amp) => {
                    let (piece, tail) = rest.split_at(amp);
                    rest = tail.get(1..).unwrap_or_default();
                    piece
                }
                None => std::mem::take(&mut rest),
            };
            if piece.is_empty() {
                continue;
            }
            return Some(match memchr::memchr(b'=', piece) {
                Some(eq) => (
                    piece.get(..eq).unwrap_or_default(),
                    piece.get(eq + 1..).unwrap_or_default(),
                ),
                None => (piece, &[][..]),
            });
        }
    })
}

/// One name or value of a [`pairs`] piece, decoded as `form_urlencoded` decodes it (`+` is a
/// space, `%XX` a byte, invalid UTF-8 replaced); borrowed when there is nothing to decode.
pub(crate) fn decode(input: &[u8]) -> Cow<'_, str> {
    if memchr::memchr2(b'%', b'+', input).is_none() {
        return String::from_utf8_lossy(input);
    }
    let plus: Vec<u8> = input
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    Cow::Owned(
        percent_encoding::percent_decode(&plus)
            .decode_utf8_lossy()
            .into_owned(),
    )
}

/// `Name.member.N` (or `Name.member.N.Field`) written into `key`, reused across a list's
/// members: these names are looked up on every request that could carry the list (STS's
/// `PolicyArns`), and pushing the pieces costs a fraction of `format!`.
fn member_key<'k>(key: &'k mut String, name: &str, i: usize, field: &str) -> &'k str {
    use std::fmt::Write as _;
    key.clear();
    key.push_str(name);
    key.push_str(".member.");
    if i < 10 {
        key.push(char::from(b'0' + i as u8));
    } else {
        let _ = write!(key, "{i}");
    }
    if !field.is_empty() {
        key.push('.');
        key.push_str(field);
    }
    key
}

/// `RoleName` → `roleName`: a member's name as messages and CloudTrail records spell it.
pub(crate) fn lower_first(s: &str) -> String {
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
    fn long_lists_keep_their_order() {
        let body: String = (1..=12)
            .map(|i| format!("L.member.{i}=v{i}&S.member.{i}.arn=a{i}&"))
            .collect();
        let p = Params::parse(body.as_bytes()).unwrap();
        let want: Vec<String> = (1..=12).map(|i| format!("v{i}")).collect();
        assert_eq!(p.list("L"), want);
        let want: Vec<String> = (1..=12).map(|i| format!("a{i}")).collect();
        assert_eq!(p.struct_list("S", "arn"), want);
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

    /// The decoding is `form_urlencoded::parse`'s, on the fast path (nothing to decode) and off it.
    #[test]
    fn decodes_as_form_urlencoded_does() {
        let inputs: [&[u8]; 16] = [
            b"",
            b"&&&",
            b"a",
            b"a=",
            b"=b",
            b"a=b=c&d",
            b"A=1&&B=2&",
            b"T=eyJh.eyJz-_.sig&R=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fx",
            b"a+b=c+d%20e%2B",
            b"p=%zz%4&q=%",
            b"u=%C3%A9&v=\xc3\xa9",
            b"bad=\xff\xfe&also=%FF",
            b"k%3Dx=v%26w",
            b"sp=a+b&pct=a%2Bb",
            b"x=\xe6\x97\xa5\xe6\x9c\xac",
            b"trail=%e6%97",
        ];
        for input in inputs {
            let p = Params::parse(input).unwrap();
            let mut want = HashMap::with_hasher(foldhash::fast::RandomState::default());
            for (k, v) in form_urlencoded::parse(input) {
                want.entry(k.into_owned()).or_insert_with(|| v.into_owned());
            }
            assert_eq!(p.map, want, "{:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn duplicates_first_wins_and_limits() {
        let p = Params::parse(b"A=1&A=2").unwrap();
        assert_eq!(p.get("A"), Some("1"));
        let many: String = (0..1001).map(|i| format!("p{i}=1&")).collect();
        assert!(Params::parse(many.as_bytes()).is_err());
        let most: String = (0..1000).map(|i| format!("&p{i}=1&")).collect();
        assert_eq!(Params::parse(most.as_bytes()).unwrap().map.len(), 1000);
    }
}
