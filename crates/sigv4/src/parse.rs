//! Phase 1: locating and syntactically parsing a signature, either in the `Authorization`
//! header or in presigned `X-Amz-*` query parameters. Nothing here needs the secret key; the
//! result says which access key to look up.

use std::borrow::Cow;

use crate::canonical::{decode, query_pairs};
use crate::time::{format_iso_basic, parse_iso_basic, parse_rfc1123};
use crate::{ALGORITHM, Error, MAX_PRESIGN_EXPIRES_SECS, MAX_SIGNED_HEADERS, Request};

const TERMINATOR: &str = "aws4_request";

const NEED_CREDENTIAL: &str = "Authorization header requires 'Credential' parameter. ";
const NEED_SIGNATURE: &str = "Authorization header requires 'Signature' parameter. ";
const NEED_SIGNED_HEADERS: &str = "Authorization header requires 'SignedHeaders' parameter. ";
const NEED_DATE: &str =
    "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ";

/// Where the request time came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DateSource {
    /// The `x-amz-date` header.
    AmzDateHeader,
    /// The `date` header (RFC 1123), converted to ISO-8601 basic.
    DateHeader,
    /// The `X-Amz-Date` query parameter of a presigned request.
    Query,
}

/// The credential scope: `YYYYMMDD/region/service/aws4_request`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope<'p> {
    /// `YYYYMMDD`, as sent (checked against the request time by `verify`).
    pub date: &'p str,
    /// The region, e.g. `us-east-1`.
    pub region: &'p str,
    /// The service, e.g. `sts`, `iam`, `eks-auth`.
    pub service: &'p str,
}

/// A syntactically valid signature found in a request, borrowing from it where possible.
///
/// Produced by [`crate::parse`]; consumed by [`crate::verify`] / [`crate::verify_with_key`].
/// `Debug` leaves out the session token and the signature (which makes a presigned URL a
/// bearer token).
#[derive(Clone, PartialEq, Eq)]
pub struct Parsed<'a> {
    pub(crate) access_key_id: Cow<'a, str>,
    pub(crate) scope_date: Cow<'a, str>,
    pub(crate) region: Cow<'a, str>,
    pub(crate) service: Cow<'a, str>,
    pub(crate) signed_headers: Cow<'a, str>,
    pub(crate) signature: Cow<'a, str>,
    pub(crate) amz_date: Cow<'a, str>,
    pub(crate) request_time: i64,
    pub(crate) date_source: DateSource,
    pub(crate) security_token: Option<Cow<'a, str>>,
    /// `Some(X-Amz-Expires)` for presigned requests.
    pub(crate) expires: Option<u32>,
}

impl std::fmt::Debug for Parsed<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parsed")
            .field("access_key_id", &self.access_key_id)
            .field("scope_date", &self.scope_date)
            .field("region", &self.region)
            .field("service", &self.service)
            .field("signed_headers", &self.signed_headers)
            .field("signature", &"...")
            .field("amz_date", &self.amz_date)
            .field("request_time", &self.request_time)
            .field("date_source", &self.date_source)
            .field(
                "security_token",
                &self.security_token.as_ref().map(|_| "..."),
            )
            .field("expires", &self.expires)
            .finish()
    }
}

impl Parsed<'_> {
    /// The access key id from the credential, to look the secret up with.
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// The credential scope.
    pub fn scope(&self) -> Scope<'_> {
        Scope {
            date: &self.scope_date,
            region: &self.region,
            service: &self.service,
        }
    }

    /// The request time in ISO-8601 basic format (`20150830T123600Z`), as used in the string to
    /// sign. When the request time came from an RFC 1123 `Date` header, this is its conversion.
    pub fn amz_date(&self) -> &str {
        &self.amz_date
    }

    /// The request time as Unix seconds.
    pub fn request_time_unix(&self) -> i64 {
        self.request_time
    }

    /// The session token (`x-amz-security-token` header, or `X-Amz-Security-Token` query
    /// parameter), if any. The caller must check it belongs to [`Parsed::access_key_id`].
    pub fn security_token(&self) -> Option<&str> {
        self.security_token.as_deref()
    }

    /// The signed-headers list exactly as sent, `;`-separated (e.g. `host;x-amz-date`).
    pub fn signed_headers(&self) -> &str {
        &self.signed_headers
    }

    /// The signed header names, in the order sent.
    pub fn signed_header_names(&self) -> impl Iterator<Item = &str> {
        self.signed_headers.split(';')
    }

    /// True when `name` (lowercase) is in the signed-headers list.
    pub fn is_signed(&self, name: &str) -> bool {
        self.signed_header_names().any(|h| h == name)
    }

    /// The hex signature as sent.
    pub fn signature(&self) -> &str {
        &self.signature
    }

    /// True for a presigned (query-string) signature.
    pub fn is_presigned(&self) -> bool {
        self.expires.is_some()
    }

    /// `X-Amz-Expires` in seconds, for presigned requests.
    pub fn expires_secs(&self) -> Option<u32> {
        self.expires
    }
}

/// Finds and parses the request's signature. See the crate docs.
///
/// Returns `Ok(None)` when the request has neither an `Authorization` header nor any presigned
/// query parameter (`X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Signature`,
/// `X-Amz-SignedHeaders`).
pub fn parse<'a>(req: &Request<'a>) -> Result<Option<Parsed<'a>>, Error> {
    let authorization = single_header(req, "authorization", "Authorization")?;
    let presigned = query_pairs(req.query).any(|(k, _)| {
        matches!(
            &*decode(k.as_bytes(), true),
            b"X-Amz-Algorithm" | b"X-Amz-Credential" | b"X-Amz-Signature" | b"X-Amz-SignedHeaders"
        )
    });
    match (authorization, presigned) {
        (Some(_), true) => Err(Error::MultipleAuthMechanisms),
        (Some(value), false) => parse_header(req, value).map(Some),
        (None, true) => parse_query(req).map(Some),
        (None, false) => Ok(None),
    }
}

/// The value of the only header named `name`; an error when there are several.
pub(crate) fn single_header<'a>(
    req: &Request<'a>,
    name: &str,
    display: &'static str,
) -> Result<Option<&'a [u8]>, Error> {
    let mut found = None;
    for &(n, v) in req.headers {
        if n.eq_ignore_ascii_case(name) {
            if found.is_some() {
                return Err(Error::DuplicateAuthComponent { name: display });
            }
            found = Some(v);
        }
    }
    Ok(found)
}

fn utf8<'a>(bytes: &'a [u8], name: &'static str) -> Result<&'a str, Error> {
    std::str::from_utf8(bytes).map_err(|_| Error::NotUtf8 { name })
}

fn cow_utf8<'a>(bytes: Cow<'a, [u8]>, name: &'static str) -> Result<Cow<'a, str>, Error> {
    match bytes {
        Cow::Borrowed(b) => utf8(b, name).map(Cow::Borrowed),
        Cow::Owned(v) => String::from_utf8(v)
            .map(Cow::Owned)
            .map_err(|_| Error::NotUtf8 { name }),
    }
}

struct Credential<'a> {
    access_key_id: Cow<'a, str>,
    date: Cow<'a, str>,
    region: Cow<'a, str>,
    service: Cow<'a, str>,
}

fn split_credential(s: &str) -> Option<[&str; 5]> {
    let mut it = s.split('/');
    let parts = [it.next()?, it.next()?, it.next()?, it.next()?, it.next()?];
    if it.next().is_some() || parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    Some(parts)
}

fn parse_credential(credential: Cow<'_, str>) -> Result<Credential<'_>, Error> {
    let malformed = || Error::MalformedCredential {
        credential: credential.to_string(),
    };
    let [_, _, _, _, terminator] = split_credential(&credential).ok_or_else(malformed)?;
    if terminator != TERMINATOR {
        return Err(Error::InvalidTerminator {
            terminator: terminator.to_owned(),
        });
    }
    Ok(match credential {
        Cow::Borrowed(s) => {
            let [a, d, r, s, _] = split_credential(s).ok_or_else(malformed)?;
            Credential {
                access_key_id: Cow::Borrowed(a),
                date: Cow::Borrowed(d),
                region: Cow::Borrowed(r),
                service: Cow::Borrowed(s),
            }
        }
        Cow::Owned(ref owned) => {
            let [a, d, r, s, _] = split_credential(owned).ok_or_else(malformed)?;
            Credential {
                access_key_id: Cow::Owned(a.to_owned()),
                date: Cow::Owned(d.to_owned()),
                region: Cow::Owned(r.to_owned()),
                service: Cow::Owned(s.to_owned()),
            }
        }
    })
}

fn parse_header<'a>(req: &Request<'a>, value: &'a [u8]) -> Result<Parsed<'a>, Error> {
    let text = utf8(value, "Authorization")?.trim();
    let (algorithm, rest) = text.split_once(' ').unwrap_or((text, ""));
    if algorithm != ALGORITHM {
        return Err(Error::UnsupportedAlgorithm {
            algorithm: algorithm.to_owned(),
        });
    }
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for element in rest.split(',') {
        let element = element.trim();
        if element.is_empty() {
            continue;
        }
        let Some((key, val)) = element.split_once('=') else {
            return Err(Error::InvalidAuthorizationPair {
                pair: element.to_owned(),
                authorization: text.to_owned(),
            });
        };
        let (slot, name) = match key.trim() {
            "Credential" => (&mut credential, "Credential"),
            "SignedHeaders" => (&mut signed_headers, "SignedHeaders"),
            "Signature" => (&mut signature, "Signature"),
            _ => continue,
        };
        if slot.replace(val.trim()).is_some() {
            return Err(Error::DuplicateAuthComponent { name });
        }
    }

    let date = header_date(req)?;
    let mut missing = Vec::new();
    if credential.is_none() {
        missing.push(NEED_CREDENTIAL);
    }
    if signature.is_none() {
        missing.push(NEED_SIGNATURE);
    }
    if signed_headers.is_none() {
        missing.push(NEED_SIGNED_HEADERS);
    }
    if date.is_none() {
        missing.push(NEED_DATE);
    }
    let (Some(credential), Some(signed_headers), Some(signature), Some((amz_date, time, source))) =
        (credential, signed_headers, signature, date)
    else {
        return Err(Error::MissingAuthorizationParameters {
            missing,
            authorization: text.to_owned(),
        });
    };
    let cred = parse_credential(Cow::Borrowed(credential))?;
    check_signed_headers(signed_headers)?;

    let header_token = single_header(req, "x-amz-security-token", "X-Amz-Security-Token")?
        .map(|t| utf8(t, "X-Amz-Security-Token"))
        .transpose()?;
    let query_token = query_param(req.query, b"X-Amz-Security-Token")?;
    let security_token = match (header_token, query_token) {
        (Some(_), Some(_)) => {
            return Err(Error::DuplicateAuthComponent {
                name: "X-Amz-Security-Token",
            });
        }
        (Some(h), None) => Some(Cow::Borrowed(h)),
        (None, q) => q,
    };

    Ok(Parsed {
        access_key_id: cred.access_key_id,
        scope_date: cred.date,
        region: cred.region,
        service: cred.service,
        signed_headers: Cow::Borrowed(signed_headers),
        signature: Cow::Borrowed(signature),
        amz_date,
        request_time: time,
        date_source: source,
        security_token,
        expires: None,
    })
}

/// The request time of a header-signed request: `x-amz-date`, else `date` (RFC 1123).
type HeaderDate<'a> = (Cow<'a, str>, i64, DateSource);

fn header_date<'a>(req: &Request<'a>) -> Result<Option<HeaderDate<'a>>, Error> {
    if let Some(v) = single_header(req, "x-amz-date", "X-Amz-Date")? {
        let s = utf8(v, "X-Amz-Date")?;
        let t = parse_iso_basic(s).ok_or_else(|| Error::InvalidDate { date: s.to_owned() })?;
        return Ok(Some((Cow::Borrowed(s), t, DateSource::AmzDateHeader)));
    }
    if let Some(v) = single_header(req, "date", "Date")? {
        let s = utf8(v, "Date")?;
        let t = parse_rfc1123(s).ok_or_else(|| Error::InvalidDate { date: s.to_owned() })?;
        return Ok(Some((
            Cow::Owned(format_iso_basic(t)),
            t,
            DateSource::DateHeader,
        )));
    }
    Ok(None)
}

/// The decoded value of the only query parameter named `key`; an error when repeated.
fn query_param<'a>(query: &'a str, key: &'static [u8]) -> Result<Option<Cow<'a, str>>, Error> {
    let name = std::str::from_utf8(key).unwrap_or("query parameter");
    let mut found = None;
    for (k, v) in query_pairs(query) {
        if *decode(k.as_bytes(), true) == *key {
            if found.is_some() {
                return Err(Error::DuplicateAuthComponent { name });
            }
            found = Some(v);
        }
    }
    found
        .map(|v| cow_utf8(decode(v.as_bytes(), true), name))
        .transpose()
}

fn parse_query<'a>(req: &Request<'a>) -> Result<Parsed<'a>, Error> {
    let mut algorithm = None;
    let mut credential = None;
    let mut date = None;
    let mut expires = None;
    let mut signed_headers = None;
    let mut signature = None;
    let mut token = None;
    for (k, v) in query_pairs(req.query) {
        let (slot, name) = match &*decode(k.as_bytes(), true) {
            b"X-Amz-Algorithm" => (&mut algorithm, "X-Amz-Algorithm"),
            b"X-Amz-Credential" => (&mut credential, "X-Amz-Credential"),
            b"X-Amz-Date" => (&mut date, "X-Amz-Date"),
            b"X-Amz-Expires" => (&mut expires, "X-Amz-Expires"),
            b"X-Amz-SignedHeaders" => (&mut signed_headers, "X-Amz-SignedHeaders"),
            b"X-Amz-Signature" => (&mut signature, "X-Amz-Signature"),
            b"X-Amz-Security-Token" => (&mut token, "X-Amz-Security-Token"),
            _ => continue,
        };
        let value = cow_utf8(decode(v.as_bytes(), true), name)?;
        if slot.replace(value).is_some() {
            return Err(Error::DuplicateAuthComponent { name });
        }
    }
    let (
        Some(algorithm),
        Some(credential),
        Some(date),
        Some(expires),
        Some(signed_headers),
        Some(signature),
    ) = (
        algorithm,
        credential,
        date,
        expires,
        signed_headers,
        signature,
    )
    else {
        return Err(Error::IncompletePresignedQuery);
    };
    if algorithm != ALGORITHM {
        return Err(Error::UnsupportedAlgorithm {
            algorithm: algorithm.into_owned(),
        });
    }
    let cred = parse_credential(credential)?;
    check_signed_headers(&signed_headers)?;
    let time = parse_iso_basic(&date).ok_or_else(|| Error::InvalidDate {
        date: date.to_string(),
    })?;
    let expires = parse_expires(&expires)?;
    let header_token = single_header(req, "x-amz-security-token", "X-Amz-Security-Token")?;
    let token = match (token, header_token) {
        (Some(_), Some(_)) => {
            return Err(Error::DuplicateAuthComponent {
                name: "X-Amz-Security-Token",
            });
        }
        (None, Some(h)) => Some(Cow::Borrowed(utf8(h, "X-Amz-Security-Token")?)),
        (q, None) => q,
    };
    Ok(Parsed {
        access_key_id: cred.access_key_id,
        scope_date: cred.date,
        region: cred.region,
        service: cred.service,
        signed_headers,
        signature,
        amz_date: date,
        request_time: time,
        date_source: DateSource::Query,
        security_token: token,
        expires: Some(expires),
    })
}

fn check_signed_headers(list: &str) -> Result<(), Error> {
    let count = list.split(';').count();
    if count > MAX_SIGNED_HEADERS {
        return Err(Error::TooManySignedHeaders { count });
    }
    Ok(())
}

fn parse_expires(value: &str) -> Result<u32, Error> {
    let invalid = || Error::InvalidExpires {
        value: value.to_owned(),
    };
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    // All digits: the only possible parse failure is overflow, which is "too large".
    let n: u64 = value.parse().unwrap_or(u64::MAX);
    if n > u64::from(MAX_PRESIGN_EXPIRES_SECS) {
        return Err(Error::ExpiresTooLarge);
    }
    u32::try_from(n).map_err(|_| Error::ExpiresTooLarge)
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )]
    use super::*;

    #[test]
    fn parsed_debug_leaves_the_session_token_and_signature_out() {
        let auth = b"AWS4-HMAC-SHA256 Credential=ASIAEXAMPLEEXAMPLE01/20260101/us-east-1/sts/aws4_request, \
            SignedHeaders=host;x-amz-date;x-amz-security-token, \
            Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        let headers: [(&str, &[u8]); 4] = [
            ("host", b"podiam.test"),
            ("x-amz-date", b"20260101T000000Z"),
            (
                "x-amz-security-token",
                b"IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKEN",
            ),
            ("authorization", auth),
        ];
        let req = Request {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            body: b"",
        };
        let parsed = parse(&req).unwrap().unwrap();
        let shown = format!("{parsed:?} {parsed:#?}");
        assert!(!shown.contains("IQoJb3JpZ2lu"), "{shown}");
        assert!(!shown.contains("0123456789abcdef"), "{shown}");
        assert!(shown.contains("ASIAEXAMPLEEXAMPLE01"), "{shown}");
    }
}
