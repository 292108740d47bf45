//! AWS Signature Version 4 (`AWS4-HMAC-SHA256`): server-side verification of signed requests,
//! in the `Authorization` header form and the presigned query-string form, and client-side
//! signing — wire-compatible with what the AWS SDKs send to STS, IAM and EKS.
//!
//! # Verifying, in two phases
//!
//! 1. [`parse`] finds the signature and parses it syntactically. It needs no secret and returns
//!    `Ok(None)` when the request carries no signature at all (the caller decides whether that
//!    is allowed, e.g. by answering [`Error::MissingAuthentication`]).
//! 2. The caller looks up the secret for [`Parsed::access_key_id`] (and validates any
//!    [`Parsed::security_token`]), then calls [`verify`] — or [`verify_with_key`] with a
//!    [`signing_key`] it cached per access key and [`Parsed::scope`]. Both run [`check`] (scope,
//!    clock, required signed headers) and then recompute the signature and compare it in
//!    constant time.
//!
//! ```
//! use podiam_sigv4::{Expectations, Request, parse, sign, verify};
//!
//! let headers = [("Host", &b"sts.amazonaws.com"[..])];
//! let body = b"Action=GetCallerIdentity&Version=2011-06-15";
//! let unsigned = Request { method: "POST", path: "/", query: "", headers: &headers, body };
//! let added = sign(&unsigned, "AKIDEXAMPLE", "secret", None, "us-east-1", "sts", "20150830T123600Z");
//!
//! // What the server receives:
//! let mut wire: Vec<(&str, &[u8])> = headers.to_vec();
//! wire.extend(added.iter().map(|(n, v)| (n.as_str(), v.as_bytes())));
//! let req = Request { headers: &wire, ..unsigned };
//!
//! let parsed = parse(&req).unwrap().expect("signed");
//! assert_eq!(parsed.access_key_id(), "AKIDEXAMPLE");
//! let expect = Expectations { regions: &["us-east-1"], ..Expectations::new("sts") };
//! verify(&req, &parsed, "secret", &expect, 1_440_938_160).unwrap();
//! assert!(verify(&req, &parsed, "wrong", &expect, 1_440_938_160).is_err());
//! ```
//!
//! # Canonicalization
//!
//! Non-S3 rules, as the SDKs apply them for STS/IAM/EKS (see the `canonical` module source):
//! the raw wire path is normalized (`.`/`..`/empty segments removed) and percent-encoded again
//! (so `%3D` becomes `%253D`); query pairs are decoded (`+` is a space) and re-encoded strictly,
//! then sorted; signed header values are trimmed with inner space runs collapsed, repeated
//! headers joined with `,`. The payload hash is the body's SHA-256 — also for presigned
//! requests, as the SDKs (and the AWS test suite) do for non-S3 services.
//!
//! [`Options`] holds the S3-style and test-suite variants (no path normalization, single path
//! encoding, unsigned session token, `UNSIGNED-PAYLOAD` presigning). They exist to run the
//! whole AWS test suite; a server for STS/IAM/EKS uses [`Options::default`].
//!
//! # Policy decisions
//!
//! * `host` must be signed. `x-amz-date` and `x-amz-security-token`, when sent as headers, must
//!   be signed; so must `date` when it supplies the request time. Other unsigned headers are
//!   ignored — including `x-amz-*` ones, because some SDK versions add `x-amz-user-agent` after
//!   signing.
//! * The request time is `x-amz-date`; if absent, an RFC 1123 `Date` header; if neither, the
//!   request is rejected with `IncompleteSignature` (as AWS does), as is an unparseable date.
//! * Clock skew: header signatures within `max_skew_secs` (300 s) either way are accepted,
//!   inclusive; beyond, `SignatureDoesNotMatch` with AWS's "Signature expired" / "Signature not
//!   yet current" messages. Presigned: at most `max_skew_secs` in the future, and usable until
//!   `X-Amz-Date + X-Amz-Expires` inclusive; after that `AccessDenied` "Request has expired".
//!   `X-Amz-Expires` that is not a non-negative integer, or exceeds 604800, is a malformed
//!   request: `IncompleteSignature`.
//! * `x-amz-content-sha256`, if sent, must equal the body's SHA-256; `UNSIGNED-PAYLOAD` is
//!   accepted only on presigned requests (the body is then not covered by the signature).
//! * An `Authorization` header together with presigned query parameters, or any authentication
//!   element given twice (two `Authorization` / `x-amz-date` / `x-amz-security-token` headers, a
//!   repeated `X-Amz-*` parameter, a repeated `Credential=`), is rejected: `IncompleteSignature`.
//!
//! # Error mapping
//!
//! | Problem | Variant | Code | Status |
//! |---|---|---|---|
//! | no signature at all (caller's choice) | [`Error::MissingAuthentication`] | `MissingAuthenticationToken` | 403 |
//! | missing `Credential`/`SignedHeaders`/`Signature`/date | [`Error::MissingAuthorizationParameters`] | `IncompleteSignature` | 400 |
//! | element without `=` | [`Error::InvalidAuthorizationPair`] | `IncompleteSignature` | 400 |
//! | algorithm not `AWS4-HMAC-SHA256` | [`Error::UnsupportedAlgorithm`] | `IncompleteSignature` | 400 |
//! | credential not 5 elements | [`Error::MalformedCredential`] | `IncompleteSignature` | 400 |
//! | terminator not `aws4_request` | [`Error::InvalidTerminator`] | `IncompleteSignature` | 400 |
//! | presigned parameter missing | [`Error::IncompletePresignedQuery`] | `IncompleteSignature` | 400 |
//! | unparseable date | [`Error::InvalidDate`] | `IncompleteSignature` | 400 |
//! | `X-Amz-Expires` not a number / > 604800 | [`Error::InvalidExpires`] / [`Error::ExpiresTooLarge`] | `IncompleteSignature` | 400 |
//! | more than 64 signed headers | [`Error::TooManySignedHeaders`] | `IncompleteSignature` | 400 |
//! | header and query auth together | [`Error::MultipleAuthMechanisms`] | `IncompleteSignature` | 400 |
//! | auth element repeated / not UTF-8 | [`Error::DuplicateAuthComponent`] / [`Error::NotUtf8`] | `IncompleteSignature` | 400 |
//! | `host` not signed | [`Error::HostNotSigned`] | `SignatureDoesNotMatch` | 403 |
//! | `x-amz-date`/`x-amz-security-token`/`date` not signed | [`Error::HeaderNotSigned`] | `SignatureDoesNotMatch` | 403 |
//! | scope date ≠ request date | [`Error::ScopeDateMismatch`] | `SignatureDoesNotMatch` | 403 |
//! | wrong service | [`Error::WrongService`] | `SignatureDoesNotMatch` | 403 |
//! | wrong region | [`Error::WrongRegion`] | `SignatureDoesNotMatch` | 403 |
//! | too old / too new | [`Error::SignatureExpired`] / [`Error::SignatureNotYetCurrent`] | `SignatureDoesNotMatch` | 403 |
//! | `x-amz-content-sha256` wrong / `UNSIGNED-PAYLOAD` in header form | [`Error::ContentSha256Mismatch`] / [`Error::UnsignedPayloadNotAllowed`] | `SignatureDoesNotMatch` | 403 |
//! | signature differs | [`Error::SignatureMismatch`] | `SignatureDoesNotMatch` | 403 |
//! | presigned request past its expiry | [`Error::RequestExpired`] | `AccessDenied` | 403 |

mod canonical;
mod error;
mod parse;
mod sign;
mod time;
mod verify;

pub use error::{Error, ErrorKind};
pub use parse::{Parsed, Scope, parse};
pub use sign::{SigningParams, sign};
pub use verify::{
    DEFAULT_MAX_SKEW_SECS, Expectations, SigningKey, canonical_request, check, signing_key,
    string_to_sign, verify, verify_with_key,
};

/// The only supported algorithm.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// The payload-hash placeholder for an unsigned body.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// The most entries accepted in a signed-headers list (SDKs sign about a dozen). Bounds the
/// canonicalization work an unauthenticated request can cause.
pub const MAX_SIGNED_HEADERS: usize = 64;

/// The largest accepted `X-Amz-Expires` (one week).
pub const MAX_PRESIGN_EXPIRES_SECS: u32 = 604_800;

/// A request as received by the server, before any decoding.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The method, e.g. `POST` (used verbatim).
    pub method: &'a str,
    /// The raw path exactly as on the wire (still percent-encoded), e.g.
    /// `/clusters/x/assume-role-for-pod-identity`.
    pub path: &'a str,
    /// The raw query string without `?`; may be empty.
    pub query: &'a str,
    /// Header names as received (any case) and raw values; duplicates allowed, order kept.
    pub headers: &'a [(&'a str, &'a [u8])],
    /// The body.
    pub body: &'a [u8],
}

/// Canonicalization variants. [`Options::default`] is the behaviour of the AWS SDKs for
/// non-S3 services and the only one a podiam server uses; the others exist for the AWS test
/// suite (its `normalize: false` and `omit_session_token: true` cases) and S3-style clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Remove `.`/`..` and empty path segments (default `true`; S3: `false`).
    pub normalize_path: bool,
    /// Percent-encode the already-encoded wire path again (default `true`). When `false`
    /// (S3), each segment is decoded and encoded once.
    pub double_encode_path: bool,
    /// The session token is added after signing and not covered by the signature: an unsigned
    /// `x-amz-security-token` header is allowed and `X-Amz-Security-Token` is left out of the
    /// canonical query (default `false`).
    pub unsigned_session_token: bool,
    /// Presigned requests without `x-amz-content-sha256` use `UNSIGNED-PAYLOAD` instead of the
    /// body's hash (default `false`; S3: `true`).
    pub presigned_unsigned_payload: bool,
}

impl Options {
    /// The default options, usable in `const` contexts.
    pub const DEFAULT: Self = Self {
        normalize_path: true,
        double_encode_path: true,
        unsigned_session_token: false,
        presigned_unsigned_payload: false,
    };
}

impl Default for Options {
    fn default() -> Self {
        Self::DEFAULT
    }
}
