//! Canonical request construction (written by hand, byte-exact):
//!
//! ```text
//! METHOD\n
//! canonical URI\n
//! canonical query string\n
//! canonical headers (one "name:value\n" per signed header)\n
//! signed headers\n
//! payload hash
//! ```
//!
//! * URI: the raw path (still percent-encoded as on the wire) is normalized per RFC 3986 5.2.4
//!   (`.`/`..` segments removed; a path ending in `/`, `/.` or `/..` keeps a trailing `/`) with
//!   empty segments collapsed as AWS requires, and every byte outside the RFC 3986
//!   unreserved set (`A-Z a-z 0-9 - _ . ~`) and `/` is percent-encoded *again* — so `%3D` on the
//!   wire becomes `%253D`, as every AWS SDK does for non-S3 services.
//! * Query: pairs split on `&` (empty pairs skipped, a pair without `=` has an empty value),
//!   key and value percent-decoded (`+` decodes to a space, form-style, like the Go and Rust
//!   SDKs and like the server's own query parser) and re-encoded strictly (space → `%20`), then
//!   sorted by encoded key, then encoded value.
//! * Headers: for each name in the signed-headers list, all request headers with that name
//!   (case-insensitive), in the order received, each value trimmed of spaces/tabs with inner
//!   runs of spaces collapsed to one, joined with `,`.

use std::borrow::Cow;

use crate::Options;

/// Everything the canonical request depends on besides the raw request.
pub(crate) struct Canon<'r> {
    pub(crate) method: &'r str,
    pub(crate) path: &'r str,
    pub(crate) query: &'r str,
    pub(crate) headers: &'r [(&'r str, &'r [u8])],
    pub(crate) signed_headers: &'r str,
    pub(crate) payload_hash: &'r [u8],
    /// Leave `X-Amz-Signature` out of the canonical query (presigned verification).
    pub(crate) exclude_signature: bool,
    /// Leave `X-Amz-Security-Token` out of the canonical query (unsigned-token compatibility).
    pub(crate) exclude_token: bool,
    pub(crate) options: Options,
}

/// True for the RFC 3986 unreserved characters, the only bytes AWS leaves unencoded.
pub(crate) const fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

const fn hex_upper(n: u8) -> u8 {
    if n < 10 { b'0' + n } else { b'A' + (n - 10) }
}

const fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-encodes `input` into `out`, leaving unreserved bytes (and `/` when `keep_slash`).
pub(crate) fn encode_into(out: &mut Vec<u8>, input: &[u8], keep_slash: bool) {
    for &b in input {
        if is_unreserved(b) || (keep_slash && b == b'/') {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', hex_upper(b >> 4), hex_upper(b & 0x0f)]);
        }
    }
}

/// Percent-encodes a string strictly (used when building presigned query strings).
pub(crate) fn encode_str(input: &str) -> String {
    let mut out = Vec::with_capacity(input.len() + 8);
    encode_into(&mut out, input.as_bytes(), false);
    // Only ASCII was pushed.
    String::from_utf8(out).unwrap_or_default()
}

/// The byte of a `%XY` escape whose `%` was just consumed, and the rest after it.
fn escape(tail: &[u8]) -> Option<(u8, &[u8])> {
    let [h, l, after @ ..] = tail else {
        return None;
    };
    Some(((hex_value(*h)? << 4) | hex_value(*l)?, after))
}

/// Percent-decodes `input`. Invalid escapes are kept literally. With `plus_as_space`, `+`
/// decodes to a space (form encoding, used for query strings).
pub(crate) fn decode(input: &[u8], plus_as_space: bool) -> Cow<'_, [u8]> {
    if !input
        .iter()
        .any(|&b| b == b'%' || (plus_as_space && b == b'+'))
    {
        return Cow::Borrowed(input);
    }
    let mut out = Vec::with_capacity(input.len());
    let mut rest = input;
    while let [first, tail @ ..] = rest {
        match *first {
            b'%' => {
                if let Some((byte, after)) = escape(tail) {
                    out.push(byte);
                    rest = after;
                    continue;
                }
                out.push(b'%');
            }
            b'+' if plus_as_space => out.push(b' '),
            other => out.push(other),
        }
        rest = tail;
    }
    Cow::Owned(out)
}

/// Splits a raw query string into raw `(key, value)` pairs, skipping empty pairs.
pub(crate) fn query_pairs(query: &str) -> impl Iterator<Item = (&str, &str)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
}

/// Writes the canonical URI for `path`.
pub(crate) fn write_canonical_uri(out: &mut Vec<u8>, path: &str, options: Options) {
    let path = if path.is_empty() { "/" } else { path };
    if !options.normalize_path {
        if options.double_encode_path {
            encode_into(out, path.as_bytes(), true);
        } else {
            for (i, seg) in path.split('/').enumerate() {
                if i > 0 {
                    out.push(b'/');
                }
                encode_into(out, &decode(seg.as_bytes(), false), false);
            }
        }
        return;
    }
    let start = out.len();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                // Pop the last written segment, if any.
                let written = out.get(start..).unwrap_or_default();
                let cut = written.iter().rposition(|&b| b == b'/').unwrap_or(0);
                out.truncate(start + cut);
            }
            _ => {
                out.push(b'/');
                if options.double_encode_path {
                    encode_into(out, seg.as_bytes(), false);
                } else {
                    encode_into(out, &decode(seg.as_bytes(), false), false);
                }
            }
        }
    }
    // RFC 3986 5.2.4: a path ending in "/", "/." or "/.." keeps a trailing slash.
    let trailing = path.ends_with('/') || path.ends_with("/.") || path.ends_with("/..");
    if out.len() == start || trailing {
        out.push(b'/');
    }
}

/// Writes the canonical query string.
pub(crate) fn write_canonical_query(
    out: &mut Vec<u8>,
    query: &str,
    exclude_signature: bool,
    exclude_token: bool,
) {
    if query.is_empty() {
        return;
    }
    // All encoded keys and values live in one buffer; `pairs` holds (key_start, key_end,
    // value_end) offsets into it.
    let mut buf: Vec<u8> = Vec::with_capacity(query.len() + 16);
    let mut pairs: Vec<(usize, usize, usize)> = Vec::new();
    for (k, v) in query_pairs(query) {
        let key = decode(k.as_bytes(), true);
        if (exclude_signature && *key == *b"X-Amz-Signature")
            || (exclude_token && *key == *b"X-Amz-Security-Token")
        {
            continue;
        }
        let ks = buf.len();
        encode_into(&mut buf, &key, false);
        let ke = buf.len();
        encode_into(&mut buf, &decode(v.as_bytes(), true), false);
        pairs.push((ks, ke, buf.len()));
    }
    let slice = |a: usize, b: usize| buf.get(a..b).unwrap_or_default();
    pairs.sort_unstable_by(|x, y| {
        slice(x.0, x.1)
            .cmp(slice(y.0, y.1))
            .then_with(|| slice(x.1, x.2).cmp(slice(y.1, y.2)))
    });
    for (i, &(ks, ke, ve)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(b'&');
        }
        out.extend_from_slice(slice(ks, ke));
        out.push(b'=');
        out.extend_from_slice(slice(ke, ve));
    }
}

/// Writes one header value trimmed, with inner runs of spaces collapsed.
fn write_header_value(out: &mut Vec<u8>, value: &[u8]) {
    let is_ws = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value.iter().position(|b| !is_ws(b)).unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !is_ws(b))
        .map_or(start, |e| e + 1);
    let mut prev_space = false;
    for &b in value.get(start..end).unwrap_or_default() {
        if b == b' ' {
            if !prev_space {
                out.push(b' ');
            }
            prev_space = true;
        } else {
            out.push(b);
            prev_space = false;
        }
    }
}

/// Writes the full canonical request into `out`.
pub(crate) fn write_canonical_request(out: &mut Vec<u8>, c: &Canon<'_>) {
    out.extend_from_slice(c.method.as_bytes());
    out.push(b'\n');
    write_canonical_uri(out, c.path, c.options);
    out.push(b'\n');
    write_canonical_query(out, c.query, c.exclude_signature, c.exclude_token);
    out.push(b'\n');
    for name in c.signed_headers.split(';') {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        let mut first = true;
        for (_, value) in c
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            if !first {
                out.push(b',');
            }
            first = false;
            write_header_value(out, value);
        }
        out.push(b'\n');
    }
    out.push(b'\n');
    out.extend_from_slice(c.signed_headers.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(c.payload_hash);
}

/// A rough capacity for the canonical request buffer, to avoid regrowth.
pub(crate) fn capacity_hint(c: &Canon<'_>) -> usize {
    let headers: usize = c.headers.iter().map(|(n, v)| n.len() + v.len() + 2).sum();
    64 + c.method.len()
        + c.path.len() * 3
        + c.query.len() * 3
        + headers
        + 2 * c.signed_headers.len()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn uri(path: &str, normalize: bool, double: bool) -> String {
        let mut out = Vec::new();
        let options = Options {
            normalize_path: normalize,
            double_encode_path: double,
            ..Options::default()
        };
        write_canonical_uri(&mut out, path, options);
        String::from_utf8(out).unwrap()
    }

    fn query(q: &str) -> String {
        let mut out = Vec::new();
        write_canonical_query(&mut out, q, true, false);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn uri_normalization() {
        for (input, want) in [
            ("", "/"),
            ("/", "/"),
            ("//", "/"),
            ("/./", "/"),
            ("/example/..", "/"),
            ("/a/b/..", "/a/"),
            ("/a/b/.", "/a/b/"),
            ("/a/b/../", "/a/"),
            ("/a/b/../c", "/a/c"),
            ("/a/.b/..c", "/a/.b/..c"),
            ("/../..", "/"),
            ("//example//", "/example/"),
            ("/./example", "/example"),
            ("/example1/example2/../..", "/"),
            ("/a%3Db", "/a%253Db"),
            ("/example space/", "/example%20space/"),
            (
                "/clusters/x/assume-role-for-pod-identity",
                "/clusters/x/assume-role-for-pod-identity",
            ),
            ("/%2E%2E/x", "/%252E%252E/x"),
        ] {
            assert_eq!(uri(input, true, true), want, "{input:?}");
        }
    }

    #[test]
    fn uri_without_normalization_or_double_encoding() {
        assert_eq!(uri("//example//", false, true), "//example//");
        assert_eq!(uri("/./a%3D", false, true), "/./a%253D");
        assert_eq!(uri("/a%3D%2fb", false, false), "/a%3D%2Fb");
        assert_eq!(uri("/x/../a%3d", true, false), "/a%3D");
    }

    #[test]
    fn query_canonicalization() {
        assert_eq!(query(""), "");
        assert_eq!(query("b=2&a=1"), "a=1&b=2");
        assert_eq!(query("Param-3=3&Param=2"), "Param=2&Param-3=3");
        assert_eq!(query("a=2&a=1"), "a=1&a=2");
        assert_eq!(query("key"), "key=");
        assert_eq!(query("a=b+c&d=e%20f&g=%2B"), "a=b%20c&d=e%20f&g=%2B");
        assert_eq!(query("x=%e1%88%b4"), "x=%E1%88%B4");
        assert_eq!(query("x=%zz&&y=1&"), "x=%25zz&y=1");
        assert_eq!(query("X-Amz-Signature=abc&a=1"), "a=1");
        assert_eq!(query("X%2DAmz-Signature=abc&a=1"), "a=1");
        assert_eq!(query("a=/;:@"), "a=%2F%3B%3A%40");
    }

    #[test]
    fn decode_keeps_invalid_escapes() {
        assert_eq!(&*decode(b"%", true), b"%");
        assert_eq!(&*decode(b"%4", true), b"%4");
        assert_eq!(&*decode(b"%41%4g+", true), b"A%4g ");
        assert_eq!(&*decode(b"%41+", false), b"A+");
    }

    #[test]
    fn header_values() {
        let mut out = Vec::new();
        write_header_value(&mut out, b"  a   b \t c  ");
        assert_eq!(out, b"a b \t c");
        out.clear();
        write_header_value(&mut out, b"   ");
        assert_eq!(out, b"");
    }
}
