//! JWT/JWS verification and signing for podiam: the exact checks AWS STS applies to
//! Kubernetes projected service-account tokens (`AssumeRoleWithWebIdentity`), JWK sets, and the
//! signing keys of the OIDC issuers podiam hosts.
//!
//! # Verifying (STS path)
//!
//! ```no_run
//! # fn demo(raw: &str, jwks_bytes: &[u8], now: i64) -> Result<(), Box<dyn std::error::Error>> {
//! use podiam_jose::{JwkSet, UnverifiedToken, Validation, verify};
//!
//! // Phase 1: bounded split + decode, no trust.
//! let token = UnverifiedToken::parse(raw)?;
//! let issuer = token.issuer().ok_or("no iss")?;           // pick the provider by issuer
//! // Parse the issuer's JWKS once when fetched; reuse the JwkSet for every request.
//! let keys = JwkSet::from_json(jwks_bytes)?;
//! let audiences = vec!["sts.amazonaws.com".to_owned()];
//! // Phase 2: algorithm allow-list, key selection, signature, then claims.
//! let claims = verify(&token, &keys, &Validation::new(issuer, &audiences, now))?;
//! # let _ = claims; Ok(()) }
//! ```
//!
//! On [`JwtError::UnknownKid`] the caller may refetch the JWKS once and retry; map
//! [`JwtError::Expired`] to `ExpiredTokenException` and everything else to
//! `InvalidIdentityToken`.
//!
//! # Security decisions
//!
//! - **The verifier picks the algorithm.** Only RS256/RS384/RS512/ES256/ES384/ES512 are
//!   accepted (exact, case-sensitive match); `none` in any spelling, `HS*`, `PS*`, `EdDSA` and
//!   unknown values are [`JwtError::UnsupportedAlgorithm`]. The header `alg` must also fit the
//!   selected key: RSA keys only RS*, P-256 only ES256, P-384 only ES384, P-521 only ES512, and
//!   a JWK `alg` member pins the one algorithm that key may verify.
//! - **Keys only come from the caller's [`JwkSet`].** Header `jwk`, `jku`, `x5u`, `x5c`,
//!   `x5t` are ignored; a header `crit` is rejected.
//! - **Key selection.** A header `kid` selects keys with exactly that `kid` (none → `UnknownKid`;
//!   only incompatible ones → [`JwtError::IncompatibleKey`]). Without a `kid`, every key of the
//!   set compatible with `alg` is tried in document order, as AWS STS does (at most
//!   [`MAX_JWKS_KEYS`] verifications; usually one).
//! - **ECDSA** signatures must be exactly `2 * coordinate` bytes (`r || s`) with
//!   `0 < r, s < n`, checked explicitly before aws-lc (CVE-2022-21449 "psychic signatures").
//!   RSA signatures must be exactly the modulus length.
//! - **Strict encoding.** Token segments must be canonical unpadded base64url; header and claims
//!   must be JSON objects, at most [`MAX_JSON_DEPTH`] deep, without duplicate member names (so
//!   `{"iss":"a","iss":"b"}` cannot be read two ways).
//! - **Claims** follow the rules documented on [`verify`]: exact `iss`; `aud` string or
//!   non-empty string array containing an accepted audience; `sub` required by default; `exp`
//!   and `iat` mandatory integer JSON numbers (strings and floats such as `123.0` are
//!   [`JwtError::InvalidClaim`], not "absent"); `nbf` optional; all time checks with
//!   [`Validation::leeway_secs`] (300 s by default, the AWS allowance), boundaries inclusive.
//!
//! # Signing (hosted issuers)
//!
//! [`SigningKey`] generates or imports RSA-2048 / P-256 keys, exports PKCS#8 and PKIX PEM in
//! the forms kube-apiserver accepts, computes the kube-apiserver `kid`
//! (`base64url(sha256(PKIX DER))`), and signs tokens with header `{"alg","kid"}`;
//! [`jwks_json`] publishes a JWK set.

mod alg;
mod b64;
mod error;
mod json;
mod jwk;
pub mod pem;
mod sign;
mod token;
mod verify;

pub use alg::{Algorithm, Curve};
pub use error::{JwkError, JwtError, KeyError};
pub use jwk::{Jwk, JwkSet, KeyType, SkippedKey};
pub use sign::{KeyAlgorithm, SigningKey, jwks_json};
pub use token::{Header, UnverifiedToken};
pub use verify::{Validation, VerifiedClaims, verify};

/// Longest accepted compact token, in bytes (= characters: valid tokens are ASCII).
pub const MAX_TOKEN_LEN: usize = 20_000;
/// Deepest accepted JSON nesting (objects + arrays, the top-level object counting as 1) in a
/// token header, token claims or JWK set.
pub const MAX_JSON_DEPTH: usize = 32;
/// Largest accepted decoded token header, in bytes.
pub const MAX_HEADER_LEN: usize = 4096;
/// Largest accepted decoded signature, in bytes (an RSA-8192 signature).
pub const MAX_SIGNATURE_LEN: usize = 1024;
/// Largest accepted JWK set document, in bytes.
pub const MAX_JWKS_LEN: usize = 256 * 1024;
/// Most entries accepted in a JWK set's `keys` array.
pub const MAX_JWKS_KEYS: usize = 100;
