//! Phase 2: policy checks (scope, clock skew, expiry, which headers must be signed) and the
//! cryptographic check (recompute the signature, compare in constant time).

use aws_lc_rs::{constant_time, digest, hmac};

use crate::canonical::{Canon, capacity_hint, write_canonical_request};
use crate::parse::{DateSource, Parsed, Scope, single_header};
use crate::time::format_iso_basic;
use crate::{ALGORITHM, Error, Options, Request, UNSIGNED_PAYLOAD};

/// The default tolerated clock skew between client and server, in seconds (AWS uses 5 min).
pub const DEFAULT_MAX_SKEW_SECS: i64 = 300;

/// What the verifying endpoint expects of a signature.
#[derive(Debug, Clone, Copy)]
pub struct Expectations<'a> {
    /// The service name the credential scope must carry (e.g. `sts`, `iam`, `eks-auth`).
    pub service: &'a str,
    /// The regions accepted in the credential scope; empty accepts any region.
    pub regions: &'a [&'a str],
    /// The tolerated clock skew in seconds, both directions ([`DEFAULT_MAX_SKEW_SECS`]).
    /// A request exactly `max_skew_secs` away is accepted; one second more is rejected.
    pub max_skew_secs: i64,
    /// Canonicalization compatibility knobs; a server uses [`Options::default`].
    pub options: Options,
    /// How long a presigned request stays usable after its request time, in seconds, when the
    /// verifying service fixes that itself instead of honouring `X-Amz-Expires` (`None`: the
    /// URL's `X-Amz-Expires`). STS answers a presigned GetCallerIdentity for 15 minutes
    /// whatever `X-Amz-Expires` says, and EKS tokens are minted with `X-Amz-Expires=60`.
    pub presigned_validity_secs: Option<i64>,
}

impl<'a> Expectations<'a> {
    /// Expect `service`, any region, 300 s skew, default options.
    pub const fn new(service: &'a str) -> Self {
        Self {
            service,
            regions: &[],
            max_skew_secs: DEFAULT_MAX_SKEW_SECS,
            options: Options::DEFAULT,
            presigned_validity_secs: None,
        }
    }
}

/// A signing key derived for one `(secret, date, region, service)`; see [`signing_key`].
pub type SigningKey = [u8; 32];

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    hmac::sign(&key, data)
        .as_ref()
        .try_into()
        .unwrap_or_default()
}

/// Derives the SigV4 signing key: HMAC chain `"AWS4"+secret` → date → region → service →
/// `aws4_request`. It is valid for every request of that access key within the same scope, so
/// a caller may cache it (keyed by access key id and [`Parsed::scope`]) and use
/// [`verify_with_key`].
pub fn signing_key(secret_access_key: &str, date: &str, region: &str, service: &str) -> SigningKey {
    let mut k = Vec::with_capacity(4 + secret_access_key.len());
    k.extend_from_slice(b"AWS4");
    k.extend_from_slice(secret_access_key.as_bytes());
    let k = hmac_sha256(&k, date.as_bytes());
    let k = hmac_sha256(&k, region.as_bytes());
    let k = hmac_sha256(&k, service.as_bytes());
    hmac_sha256(&k, b"aws4_request")
}

/// Lowercase hex of a 32-byte digest.
pub(crate) fn hex32(bytes: &[u8]) -> [u8; 64] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 64];
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        if let [h, l] = pair {
            *h = HEX.get(usize::from(b >> 4)).copied().unwrap_or(b'0');
            *l = HEX.get(usize::from(b & 0x0f)).copied().unwrap_or(b'0');
        }
    }
    out
}

/// Lowercase hex SHA-256 of `data`.
pub(crate) fn sha256_hex(data: &[u8]) -> [u8; 64] {
    hex32(digest::digest(&digest::SHA256, data).as_ref())
}

/// Builds the string to sign for a canonical request.
pub(crate) fn build_string_to_sign(amz_date: &str, scope: Scope<'_>, canonical: &[u8]) -> Vec<u8> {
    let mut sts = Vec::with_capacity(
        ALGORITHM.len() + amz_date.len() + scope.region.len() + scope.service.len() + 112,
    );
    sts.extend_from_slice(ALGORITHM.as_bytes());
    sts.push(b'\n');
    sts.extend_from_slice(amz_date.as_bytes());
    sts.push(b'\n');
    sts.extend_from_slice(scope.date.as_bytes());
    sts.push(b'/');
    sts.extend_from_slice(scope.region.as_bytes());
    sts.push(b'/');
    sts.extend_from_slice(scope.service.as_bytes());
    sts.extend_from_slice(b"/aws4_request\n");
    sts.extend_from_slice(&sha256_hex(canonical));
    sts
}

/// Lowercase hex signature of a string to sign.
pub(crate) fn sign_string(key: &SigningKey, string_to_sign: &[u8]) -> [u8; 64] {
    hex32(&hmac_sha256(key, string_to_sign))
}

/// The payload hash that goes into the canonical request.
enum Payload {
    Hash([u8; 64]),
    Unsigned,
}

impl Payload {
    fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Hash(h) => h,
            Self::Unsigned => UNSIGNED_PAYLOAD.as_bytes(),
        }
    }
}

fn payload_hash(
    req: &Request<'_>,
    parsed: &Parsed<'_>,
    options: Options,
) -> Result<Payload, Error> {
    let body = sha256_hex(req.body);
    // An unsigned payload is accepted only on a presigned request with no body: every byte a
    // service acts on is covered by the signature, so a presigned URL cannot carry a body
    // (say, other query-protocol parameters) that its signer never saw.
    let unsigned_ok = parsed.is_presigned() && req.body.is_empty();
    match single_header(req, "x-amz-content-sha256", "X-Amz-Content-Sha256")? {
        Some(v) if v == UNSIGNED_PAYLOAD.as_bytes() => {
            if unsigned_ok {
                Ok(Payload::Unsigned)
            } else {
                Err(Error::UnsignedPayloadNotAllowed)
            }
        }
        Some(v) if v == body.as_slice() => Ok(Payload::Hash(body)),
        Some(_) => Err(Error::ContentSha256Mismatch),
        None if unsigned_ok && options.presigned_unsigned_payload => Ok(Payload::Unsigned),
        None => Ok(Payload::Hash(body)),
    }
}

fn canon<'r>(
    req: &'r Request<'r>,
    parsed: &'r Parsed<'_>,
    payload: &'r [u8],
    options: Options,
) -> Canon<'r> {
    Canon {
        method: req.method,
        path: req.path,
        query: req.query,
        headers: req.headers,
        signed_headers: parsed.signed_headers(),
        payload_hash: payload,
        exclude_signature: parsed.is_presigned(),
        exclude_token: parsed.is_presigned() && options.unsigned_session_token,
        options,
    }
}

/// The canonical request the verifier computes for `req` (for diagnostics and tests).
///
/// Fails only where [`verify`] would fail on the payload hash (`x-amz-content-sha256` checks).
pub fn canonical_request(
    req: &Request<'_>,
    parsed: &Parsed<'_>,
    options: Options,
) -> Result<Vec<u8>, Error> {
    let payload = payload_hash(req, parsed, options)?;
    let c = canon(req, parsed, payload.as_bytes(), options);
    let mut out = Vec::with_capacity(capacity_hint(&c));
    write_canonical_request(&mut out, &c);
    Ok(out)
}

/// The string to sign for `parsed` and a canonical request (for diagnostics and tests).
pub fn string_to_sign(parsed: &Parsed<'_>, canonical_request: &[u8]) -> String {
    let sts = build_string_to_sign(parsed.amz_date(), parsed.scope(), canonical_request);
    String::from_utf8_lossy(&sts).into_owned()
}

fn has_header(req: &Request<'_>, name: &str) -> bool {
    req.headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case(name))
}

fn skew_text(secs: i64) -> String {
    if secs % 60 == 0 {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} sec")
    }
}

/// All checks that need no secret: signed-header requirements, credential scope against
/// `expect`, and request time against `now_unix_secs`. [`verify`] runs it first; a caller may
/// also run it before looking the secret up.
///
/// * `host` must be signed.
/// * `x-amz-date` and `x-amz-security-token`, when sent as headers, must be signed (the latter
///   unless [`Options::unsigned_session_token`]); `date` must be signed when it supplies the
///   request time. Other unsigned headers, including other `x-amz-*` ones such as
///   `x-amz-user-agent` that some SDK versions add after signing, are allowed (and ignored).
/// * The scope's date must equal the first 8 characters of the request time; the scope's
///   service must equal `expect.service`; its region must be in `expect.regions` unless empty.
/// * Header signatures: `|now - request time| <= max_skew_secs`. Presigned: request time must not
///   be more than `max_skew_secs` in the future, and `now <= request time + X-Amz-Expires` (or
///   [`Expectations::presigned_validity_secs`] when set).
pub fn check(
    req: &Request<'_>,
    parsed: &Parsed<'_>,
    expect: &Expectations<'_>,
    now_unix_secs: i64,
) -> Result<(), Error> {
    if !parsed.is_signed("host") {
        return Err(Error::HostNotSigned);
    }
    if has_header(req, "x-amz-date") && !parsed.is_signed("x-amz-date") {
        return Err(Error::HeaderNotSigned {
            header: "x-amz-date",
        });
    }
    if parsed.date_source == DateSource::DateHeader && !parsed.is_signed("date") {
        return Err(Error::HeaderNotSigned { header: "date" });
    }
    if !expect.options.unsigned_session_token
        && has_header(req, "x-amz-security-token")
        && !parsed.is_signed("x-amz-security-token")
    {
        return Err(Error::HeaderNotSigned {
            header: "x-amz-security-token",
        });
    }

    let scope = parsed.scope();
    let amz_date = parsed.amz_date();
    let date = amz_date.get(..8).unwrap_or(amz_date);
    if scope.date != date {
        return Err(Error::ScopeDateMismatch {
            scope_date: scope.date.to_owned(),
            date: date.to_owned(),
            amz_date: amz_date.to_owned(),
        });
    }
    if scope.service != expect.service {
        return Err(Error::WrongService {
            expected: expect.service.to_owned(),
        });
    }
    if !expect.regions.is_empty() && !expect.regions.contains(&scope.region) {
        return Err(Error::WrongRegion);
    }

    let t = parsed.request_time_unix();
    let skew = expect.max_skew_secs.max(0);
    let latest = now_unix_secs.saturating_add(skew);
    if t > latest {
        return Err(Error::SignatureNotYetCurrent {
            amz_date: amz_date.to_owned(),
            latest: format_iso_basic(latest),
            now: format_iso_basic(now_unix_secs),
            skew: skew_text(skew),
        });
    }
    match parsed.expires_secs() {
        None => {
            let earliest = now_unix_secs.saturating_sub(skew);
            if t < earliest {
                return Err(Error::SignatureExpired {
                    amz_date: amz_date.to_owned(),
                    earliest: format_iso_basic(earliest),
                    now: format_iso_basic(now_unix_secs),
                    skew: skew_text(skew),
                });
            }
        }
        Some(expires) => {
            let valid = expect
                .presigned_validity_secs
                .unwrap_or_else(|| i64::from(expires));
            if now_unix_secs > t.saturating_add(valid) {
                return Err(Error::RequestExpired);
            }
        }
    }
    Ok(())
}

/// Verifies a parsed signature: [`check`], then derives the signing key from
/// `secret_access_key` and [`Parsed::scope`], recomputes the signature and compares it in
/// constant time.
pub fn verify(
    req: &Request<'_>,
    parsed: &Parsed<'_>,
    secret_access_key: &str,
    expect: &Expectations<'_>,
    now_unix_secs: i64,
) -> Result<(), Error> {
    check(req, parsed, expect, now_unix_secs)?;
    let scope = parsed.scope();
    let key = signing_key(secret_access_key, scope.date, scope.region, scope.service);
    verify_signature(req, parsed, &key, expect.options)
}

/// Like [`verify`] with a signing key the caller derived (and possibly cached) with
/// [`signing_key`] for this access key and `parsed.scope()`.
pub fn verify_with_key(
    req: &Request<'_>,
    parsed: &Parsed<'_>,
    key: &SigningKey,
    expect: &Expectations<'_>,
    now_unix_secs: i64,
) -> Result<(), Error> {
    check(req, parsed, expect, now_unix_secs)?;
    verify_signature(req, parsed, key, expect.options)
}

fn verify_signature(
    req: &Request<'_>,
    parsed: &Parsed<'_>,
    key: &SigningKey,
    options: Options,
) -> Result<(), Error> {
    let creq = canonical_request(req, parsed, options)?;
    let sts = build_string_to_sign(parsed.amz_date(), parsed.scope(), &creq);
    let computed = sign_string(key, &sts);
    constant_time::verify_slices_are_equal(&computed, parsed.signature().as_bytes())
        .map_err(|_| Error::SignatureMismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signing_key_matches_aws_documentation_example() {
        // From the AWS SigV4 documentation ("Examples of how to derive a signing key").
        let key = signing_key(
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "20120215",
            "us-east-1",
            "iam",
        );
        assert_eq!(
            &hex32(&key),
            b"f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
        );
    }

    #[test]
    fn empty_body_hash() {
        assert_eq!(
            &sha256_hex(b""),
            b"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
