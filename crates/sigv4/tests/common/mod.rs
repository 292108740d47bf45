//! Helpers shared by the integration tests: an owned HTTP request and a parser for the
//! plain-text request format of the AWS signing test suite.

#![allow(dead_code)]

use aws_lc_rs::hmac;
use podiam_sigv4::{
    Error, Expectations, Options, Request, canonical_request, parse, signing_key, string_to_sign,
    verify,
};

/// An owned request; [`Owned::with`] lends it out as a [`Request`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owned {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Owned {
    pub fn with<R>(&self, f: impl FnOnce(&Request<'_>) -> R) -> R {
        let headers: Vec<(&str, &[u8])> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect();
        f(&Request {
            method: &self.method,
            path: &self.path,
            query: &self.query,
            headers: &headers,
            body: &self.body,
        })
    }

    /// Parses and verifies in one go.
    pub fn verify(&self, secret: &str, expect: &Expectations<'_>, now: i64) -> Result<(), Error> {
        self.with(|req| {
            let parsed = parse(req)?.ok_or(Error::MissingAuthentication)?;
            verify(req, &parsed, secret, expect, now)
        })
    }

    /// The values of all headers named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// Sets (replacing all of the same name) or adds a header.
    pub fn set_header(&mut self, name: &str, value: &[u8]) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.to_owned(), value.to_vec()));
    }

    /// Adds headers returned by the signer, replacing any of the same name.
    pub fn apply(&mut self, added: &[(String, String)]) {
        for (n, v) in added {
            self.set_header(n, v.as_bytes());
        }
    }
}

/// Parses the suite's request format: a request line (`METHOD target [HTTP/1.1]`, where the
/// target may contain spaces), `Name:value` header lines (a line starting with whitespace
/// continues the previous value, unfolded with one space, as RFC 7230 prescribes for obs-fold),
/// an empty line, then the body.
pub fn parse_http(text: &[u8]) -> Owned {
    let text = std::str::from_utf8(text).expect("suite files are UTF-8");
    let (head, body) = match text.find("\n\n") {
        Some(i) => (&text[..i], &text[i + 2..]),
        None => (text.trim_end_matches('\n'), ""),
    };
    let mut lines = head.split('\n');
    let request_line = lines.next().expect("request line");
    let request_line = request_line
        .strip_suffix(" HTTP/1.1")
        .unwrap_or(request_line);
    let (method, target) = request_line.split_once(' ').expect("method and target");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
    for line in lines {
        if line.starts_with(' ') || line.starts_with('\t') {
            let last = headers.last_mut().expect("continuation after a header");
            last.1.push(b' ');
            last.1.extend_from_slice(line.trim().as_bytes());
        } else {
            let (n, v) = line.split_once(':').expect("header line has a colon");
            headers.push((n.to_owned(), v.trim().as_bytes().to_vec()));
        }
    }
    Owned {
        method: method.to_owned(),
        path: path.to_owned(),
        query: query.to_owned(),
        headers,
        body: body.as_bytes().to_vec(),
    }
}

/// Unix seconds of a UTC civil time (independent of the crate's own date code).
pub fn unix(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64) -> i64 {
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((mo + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe - 719_468) * 86_400 + h * 3600 + mi * 60 + s
}

/// Parses `2015-08-30T12:36:00Z` or `20150830T123600Z`.
pub fn unix_of(ts: &str) -> i64 {
    let digits: String = ts.chars().filter(char::is_ascii_digit).collect();
    assert_eq!(digits.len(), 14, "timestamp {ts}");
    let n = |a: usize, b: usize| digits[a..b].parse::<i64>().unwrap();
    unix(n(0, 4), n(4, 6), n(6, 8), n(8, 10), n(10, 12), n(12, 14))
}

/// Replaces the signature (in the `Authorization` header if there is one, else in the query).
pub fn replace_signature(signed: &Owned, new_sig: &str) -> Owned {
    let mut m = signed.clone();
    if let Some(auth) = m.header("authorization") {
        let auth = std::str::from_utf8(auth).unwrap();
        let at = auth.find("Signature=").unwrap() + "Signature=".len();
        let end = auth[at..].find(',').map_or(auth.len(), |e| at + e);
        let new_auth = format!("{}{new_sig}{}", &auth[..at], &auth[end..]);
        m.set_header("Authorization", new_auth.as_bytes());
    } else {
        let at = m.query.find("X-Amz-Signature=").unwrap() + "X-Amz-Signature=".len();
        let end = m.query[at..].find('&').map_or(m.query.len(), |e| at + e);
        m.query = format!("{}{new_sig}{}", &m.query[..at], &m.query[end..]);
    }
    m
}

/// The correct signature for `o` as it stands (whatever its signed-headers list says),
/// computed independently of the crate's verify path except for the canonical request.
pub fn correct_signature(o: &Owned, secret: &str, options: Options) -> String {
    o.with(|req| {
        let parsed = parse(req).unwrap().unwrap();
        let creq = canonical_request(req, &parsed, options).unwrap();
        let sts = string_to_sign(&parsed, &creq);
        let s = parsed.scope();
        let key = signing_key(secret, s.date, s.region, s.service);
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key), sts.as_bytes());
        tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    })
}

/// Re-signs `o` in place after a test changed it, so only the property under test is wrong.
pub fn resign(o: &mut Owned, secret: &str, options: Options) {
    let sig = correct_signature(o, secret, options);
    *o = replace_signature(o, &sig);
}
