//! Base64 helpers.
//!
//! JWS segments are decoded strictly (RFC 7515 §2: base64url, no padding): padding, characters
//! outside the url-safe alphabet, whitespace and non-canonical trailing bits are all rejected,
//! so every accepted token has exactly one textual form. JWK members (issuer-controlled,
//! fetched over TLS) are decoded tolerantly: optional `=` padding and non-canonical trailing
//! bits are accepted, the url-safe alphabet is still required.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

const TOLERANT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Strict base64url (no padding, canonical) decoding of a JWS segment.
pub(crate) fn decode_segment(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s).ok()
}

/// Tolerant base64url decoding of a JWK member.
pub(crate) fn decode_jwk_member(s: &str) -> Option<Vec<u8>> {
    TOLERANT.decode(s).ok()
}

/// base64url without padding.
pub(crate) fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_rejects_padding_whitespace_alphabet_and_trailing_bits() {
        assert_eq!(decode_segment("YQ").as_deref(), Some(&b"a"[..]));
        assert_eq!(decode_segment("YQ=="), None);
        assert_eq!(decode_segment("YQ="), None);
        assert_eq!(decode_segment("Y Q"), None);
        assert_eq!(decode_segment("Y+/"), None);
        // "YR" decodes to 'a' with non-zero trailing bits: non-canonical.
        assert_eq!(decode_segment("YR"), None);
        // A single leftover character can never be valid.
        assert_eq!(decode_segment("YWJjZ"), None);
    }

    #[test]
    fn tolerant_accepts_padding_and_trailing_bits_but_not_std_alphabet() {
        assert_eq!(decode_jwk_member("YQ==").as_deref(), Some(&b"a"[..]));
        assert_eq!(decode_jwk_member("YR").as_deref(), Some(&b"a"[..]));
        assert_eq!(decode_jwk_member("+/8"), None);
    }
}
