//! Errors, each mapping to the AWS error code and HTTP status that AWS query services
//! (STS, IAM) return for the same problem.
//!
//! `Display` yields the message AWS puts in `<Message>`, verbatim where AWS's wording is known,
//! so the server can copy it straight into its error response. That is why these messages are
//! capitalized sentences rather than the usual lowercase Rust style; any user input they quote
//! is quoted with `'...'`.

/// Why a request's signature was rejected. See [`Error::code`] and [`Error::status`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request carried no signature at all. [`crate::parse`] never returns this (it returns
    /// `Ok(None)`); it exists so callers that require authentication can report it uniformly.
    #[error("Request is missing Authentication Token")]
    MissingAuthentication,

    /// The `Authorization` header lacks `Credential`, `SignedHeaders` or `Signature`, or the
    /// request has neither `X-Amz-Date` nor `Date`. Each entry of `missing` is one AWS sentence.
    #[error("{}Authorization={authorization}", missing.concat())]
    MissingAuthorizationParameters {
        /// The AWS sentences, e.g. "Authorization header requires 'Credential' parameter. ".
        missing: Vec<&'static str>,
        /// The `Authorization` header value as received.
        authorization: String,
    },

    /// A comma-separated element of the `Authorization` header is not `key=value`.
    #[error(
        "'{pair}' not a valid key=value pair (missing equal-sign) in Authorization header: '{authorization}'."
    )]
    InvalidAuthorizationPair {
        /// The offending element.
        pair: String,
        /// The `Authorization` header value as received.
        authorization: String,
    },

    /// The algorithm is not `AWS4-HMAC-SHA256` (e.g. SigV2, SigV4a or a non-AWS scheme).
    #[error("Unsupported AWS 'algorithm': '{algorithm}'.")]
    UnsupportedAlgorithm {
        /// The algorithm (or scheme) given.
        algorithm: String,
    },

    /// The credential is not `AKID/YYYYMMDD/region/service/aws4_request` with five non-empty
    /// elements.
    #[error(
        "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{credential}'"
    )]
    MalformedCredential {
        /// The credential as received (decoded).
        credential: String,
    },

    /// The credential scope does not end in `aws4_request`.
    #[error(
        "Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'."
    )]
    InvalidTerminator {
        /// The terminator given.
        terminator: String,
    },

    /// A presigned query lacks one of the required `X-Amz-*` parameters.
    #[error(
        "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters."
    )]
    IncompletePresignedQuery,

    /// `X-Amz-Date` (or the `Date` fallback) is not a valid date.
    #[error(
        "Date must be in ISO-8601 'basic format'. Got '{date}'. See http://en.wikipedia.org/wiki/ISO_8601"
    )]
    InvalidDate {
        /// The date value as received.
        date: String,
    },

    /// `X-Amz-Expires` is not a non-negative integer.
    #[error("X-Amz-Expires should be a number, got '{value}'.")]
    InvalidExpires {
        /// The value as received.
        value: String,
    },

    /// `X-Amz-Expires` exceeds one week.
    #[error("X-Amz-Expires must be less than a week (in seconds) that is 604800")]
    ExpiresTooLarge,

    /// The signed-headers list is implausibly long (a bound on canonicalization work).
    #[error("SignedHeaders lists {count} headers; at most {max} are allowed.", max = crate::MAX_SIGNED_HEADERS)]
    TooManySignedHeaders {
        /// How many were listed.
        count: usize,
    },

    /// Both an `Authorization` header and presigned query parameters are present.
    #[error(
        "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be specified"
    )]
    MultipleAuthMechanisms,

    /// An authentication element appears more than once (e.g. two `Authorization` headers, two
    /// `X-Amz-Date` headers, `Credential` twice in the header).
    #[error("Found more than one '{name}' in the request.")]
    DuplicateAuthComponent {
        /// The element's name.
        name: &'static str,
    },

    /// An authentication element is not valid UTF-8.
    #[error("'{name}' must be valid UTF-8.")]
    NotUtf8 {
        /// The element's name.
        name: &'static str,
    },

    /// `host` is not among the signed headers.
    #[error("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")]
    HostNotSigned,

    /// A header that must be signed when present (`x-amz-date`, `x-amz-security-token`, or
    /// `date` when it supplies the request time) was sent but not signed.
    #[error("'{header}' must be a 'SignedHeader' in the AWS Authorization.")]
    HeaderNotSigned {
        /// The header name, lowercase.
        header: &'static str,
    },

    /// The credential scope's date is not the date part of the request time.
    #[error(
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{scope_date}' != '{date}', from '{amz_date}'."
    )]
    ScopeDateMismatch {
        /// The scope's date.
        scope_date: String,
        /// The first eight characters of the request time.
        date: String,
        /// The request time.
        amz_date: String,
    },

    /// The credential scope names another service.
    #[error("Credential should be scoped to correct service: '{expected}'. ")]
    WrongService {
        /// The service this endpoint expects.
        expected: String,
    },

    /// The credential scope names a region this endpoint does not serve.
    #[error("Credential should be scoped to a valid region. ")]
    WrongRegion,

    /// The request time is earlier than `now - max_skew`.
    #[error("Signature expired: {amz_date} is now earlier than {earliest} ({now} - {skew}.)")]
    SignatureExpired {
        /// The request time.
        amz_date: String,
        /// `now - max_skew`, ISO-8601 basic.
        earliest: String,
        /// The server's time, ISO-8601 basic.
        now: String,
        /// The allowed skew, e.g. "5 min".
        skew: String,
    },

    /// The request time is later than `now + max_skew`.
    #[error("Signature not yet current: {amz_date} is still later than {latest} ({now} + {skew}.)")]
    SignatureNotYetCurrent {
        /// The request time.
        amz_date: String,
        /// `now + max_skew`, ISO-8601 basic.
        latest: String,
        /// The server's time, ISO-8601 basic.
        now: String,
        /// The allowed skew, e.g. "5 min".
        skew: String,
    },

    /// The `x-amz-content-sha256` header is not the SHA-256 of the body.
    #[error("The provided 'x-amz-content-sha256' header does not match what was computed.")]
    ContentSha256Mismatch,

    /// `x-amz-content-sha256: UNSIGNED-PAYLOAD` on a request signed in the `Authorization`
    /// header (accepted only on presigned requests).
    #[error("'UNSIGNED-PAYLOAD' is only allowed for presigned requests.")]
    UnsignedPayloadNotAllowed,

    /// The recomputed signature differs from the one sent.
    #[error(
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
    )]
    SignatureMismatch,

    /// A presigned request used after `X-Amz-Date + X-Amz-Expires`.
    #[error("Request has expired")]
    RequestExpired,
}

impl Error {
    /// Which of the four kinds of rejection this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::MissingAuthentication => ErrorKind::MissingAuthenticationToken,
            Self::MissingAuthorizationParameters { .. }
            | Self::InvalidAuthorizationPair { .. }
            | Self::UnsupportedAlgorithm { .. }
            | Self::MalformedCredential { .. }
            | Self::InvalidTerminator { .. }
            | Self::IncompletePresignedQuery
            | Self::InvalidDate { .. }
            | Self::InvalidExpires { .. }
            | Self::ExpiresTooLarge
            | Self::TooManySignedHeaders { .. }
            | Self::MultipleAuthMechanisms
            | Self::DuplicateAuthComponent { .. }
            | Self::NotUtf8 { .. } => ErrorKind::IncompleteSignature,
            Self::HostNotSigned
            | Self::HeaderNotSigned { .. }
            | Self::ScopeDateMismatch { .. }
            | Self::WrongService { .. }
            | Self::WrongRegion
            | Self::SignatureExpired { .. }
            | Self::SignatureNotYetCurrent { .. }
            | Self::ContentSha256Mismatch
            | Self::UnsignedPayloadNotAllowed
            | Self::SignatureMismatch => ErrorKind::SignatureDoesNotMatch,
            Self::RequestExpired => ErrorKind::AccessDenied,
        }
    }

    /// The AWS error code (`<Code>` in the query-protocol error response).
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }

    /// The HTTP status AWS answers with.
    pub fn status(&self) -> u16 {
        match self.kind() {
            ErrorKind::IncompleteSignature => 400,
            _ => 403,
        }
    }
}

/// The kinds of rejection, one per AWS error code; a server maps them to its own error type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// `MissingAuthenticationToken` (403).
    MissingAuthenticationToken,
    /// `IncompleteSignature` (400): the signature's parts are malformed or missing.
    IncompleteSignature,
    /// `SignatureDoesNotMatch` (403): wrong key, scope, time window or signed content.
    SignatureDoesNotMatch,
    /// `AccessDenied` (403): a presigned request past its expiry.
    AccessDenied,
}

impl ErrorKind {
    /// The AWS error code of the query protocol.
    pub fn code(self) -> &'static str {
        match self {
            Self::MissingAuthenticationToken => "MissingAuthenticationToken",
            Self::IncompleteSignature => "IncompleteSignature",
            Self::SignatureDoesNotMatch => "SignatureDoesNotMatch",
            Self::AccessDenied => "AccessDenied",
        }
    }
}
