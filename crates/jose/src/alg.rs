//! The verifier's algorithm allow-list and elliptic-curve parameters.
//!
//! Only these JWS `alg` values are ever accepted: `RS256`, `RS384`, `RS512` (RSASSA-PKCS1-v1_5),
//! `ES256`, `ES384`, `ES512` (ECDSA, fixed-width `r || s`). Matching is exact and
//! case-sensitive, so `none`/`None`/`NONE`, every `HS*` (HMAC — the "public key as HMAC secret"
//! confusion attack), every `PS*` (RSA-PSS, not supported), `EdDSA` and anything unknown are
//! rejected before any key is looked at.

use std::fmt;

use aws_lc_rs::signature::{self, EcdsaVerificationAlgorithm, RsaParameters};

/// A JWS signature algorithm on the allow-list.
///
/// [`Algorithm::from_name`] is the allow-list: exact, case-sensitive `RS256`, `RS384`, `RS512`,
/// `ES256`, `ES384`, `ES512`. Everything else (`none` in any case, `HS*`, `PS*`, `EdDSA`, ...)
/// is refused before any key is consulted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    Rs384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    Rs512,
    /// ECDSA on P-256 with SHA-256.
    Es256,
    /// ECDSA on P-384 with SHA-384.
    Es384,
    /// ECDSA on P-521 with SHA-512.
    Es512,
}

impl Algorithm {
    /// Every supported algorithm.
    pub const ALL: [Algorithm; 6] = [
        Algorithm::Rs256,
        Algorithm::Rs384,
        Algorithm::Rs512,
        Algorithm::Es256,
        Algorithm::Es384,
        Algorithm::Es512,
    ];

    /// Looks up a JWS `alg` name; exact, case-sensitive. `None` for anything not allowed.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "RS256" => Some(Algorithm::Rs256),
            "RS384" => Some(Algorithm::Rs384),
            "RS512" => Some(Algorithm::Rs512),
            "ES256" => Some(Algorithm::Es256),
            "ES384" => Some(Algorithm::Es384),
            "ES512" => Some(Algorithm::Es512),
            _ => None,
        }
    }

    /// The JWS `alg` name.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Rs256 => "RS256",
            Algorithm::Rs384 => "RS384",
            Algorithm::Rs512 => "RS512",
            Algorithm::Es256 => "ES256",
            Algorithm::Es384 => "ES384",
            Algorithm::Es512 => "ES512",
        }
    }

    /// The curve an ECDSA algorithm is bound to (`None` for RSA algorithms).
    pub fn curve(self) -> Option<Curve> {
        match self {
            Algorithm::Es256 => Some(Curve::P256),
            Algorithm::Es384 => Some(Curve::P384),
            Algorithm::Es512 => Some(Curve::P521),
            Algorithm::Rs256 | Algorithm::Rs384 | Algorithm::Rs512 => None,
        }
    }

    /// Whether this is an RSA algorithm.
    pub fn is_rsa(self) -> bool {
        self.curve().is_none()
    }

    /// aws-lc parameters for RSA algorithms (2048..=8192-bit moduli enforced by aws-lc too).
    pub(crate) fn rsa_params(self) -> Option<&'static RsaParameters> {
        match self {
            Algorithm::Rs256 => Some(&signature::RSA_PKCS1_2048_8192_SHA256),
            Algorithm::Rs384 => Some(&signature::RSA_PKCS1_2048_8192_SHA384),
            Algorithm::Rs512 => Some(&signature::RSA_PKCS1_2048_8192_SHA512),
            Algorithm::Es256 | Algorithm::Es384 | Algorithm::Es512 => None,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A NIST curve usable in an EC JWK.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Curve {
    /// `P-256` (secp256r1), used with ES256.
    P256,
    /// `P-384` (secp384r1), used with ES384.
    P384,
    /// `P-521` (secp521r1), used with ES512.
    P521,
}

impl Curve {
    /// Looks up a JWK `crv` name; exact, case-sensitive.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "P-256" => Some(Curve::P256),
            "P-384" => Some(Curve::P384),
            "P-521" => Some(Curve::P521),
            _ => None,
        }
    }

    /// The JWK `crv` name.
    pub fn name(self) -> &'static str {
        match self {
            Curve::P256 => "P-256",
            Curve::P384 => "P-384",
            Curve::P521 => "P-521",
        }
    }

    /// The only algorithm a key on this curve may be used with.
    pub fn algorithm(self) -> Algorithm {
        match self {
            Curve::P256 => Algorithm::Es256,
            Curve::P384 => Algorithm::Es384,
            Curve::P521 => Algorithm::Es512,
        }
    }

    /// Length in bytes of a field element / scalar: JWK `x`/`y` have exactly this length and a
    /// JWS signature is exactly twice this length (`r || s`).
    pub fn coordinate_len(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
            Curve::P521 => 66,
        }
    }

    /// Big-endian group order `n`, `coordinate_len()` bytes long.
    pub(crate) fn order(self) -> &'static [u8] {
        match self {
            Curve::P256 => &P256_ORDER,
            Curve::P384 => &P384_ORDER,
            Curve::P521 => &P521_ORDER,
        }
    }

    pub(crate) fn verification_alg(self) -> &'static EcdsaVerificationAlgorithm {
        match self {
            Curve::P256 => &signature::ECDSA_P256_SHA256_FIXED,
            Curve::P384 => &signature::ECDSA_P384_SHA384_FIXED,
            Curve::P521 => &signature::ECDSA_P521_SHA512_FIXED,
        }
    }
}

/// Checks a fixed-width JWS ECDSA signature's shape: exactly `2 * coordinate_len` bytes and
/// both `r` and `s` in `[1, n-1]`. aws-lc performs the same range check; this explicit check is
/// defence in depth against the "psychic signatures" class of bugs (CVE-2022-21449, where
/// `r = s = 0` verified for every message and key).
pub(crate) fn ecdsa_signature_well_formed(curve: Curve, sig: &[u8]) -> bool {
    let len = curve.coordinate_len();
    if sig.len() != 2 * len {
        return false;
    }
    let (r, s) = sig.split_at(len);
    scalar_in_range(r, curve.order()) && scalar_in_range(s, curve.order())
}

/// `0 < x < n` for equal-length big-endian byte strings.
fn scalar_in_range(x: &[u8], n: &[u8]) -> bool {
    x.len() == n.len() && x.iter().any(|&b| b != 0) && x < n
}

const P256_ORDER: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];
const P384_ORDER: [u8; 48] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xc7, 0x63, 0x4d, 0x81, 0xf4, 0x37, 0x2d, 0xdf,
    0x58, 0x1a, 0x0d, 0xb2, 0x48, 0xb0, 0xa7, 0x7a, 0xec, 0xec, 0x19, 0x6a, 0xcc, 0xc5, 0x29, 0x73,
];
const P521_ORDER: [u8; 66] = [
    0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xfa, 0x51, 0x86, 0x87, 0x83, 0xbf, 0x2f, 0x96, 0x6b, 0x7f, 0xcc, 0x01, 0x48, 0xf7, 0x09,
    0xa5, 0xd0, 0x3b, 0xb5, 0xc9, 0xb8, 0x89, 0x9c, 0x47, 0xae, 0xbb, 0x6f, 0xb7, 0x1e, 0x91, 0x38,
    0x64, 0x09,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_case_sensitive() {
        for alg in Algorithm::ALL {
            assert_eq!(Algorithm::from_name(alg.name()), Some(alg));
            assert_eq!(alg.to_string(), alg.name());
        }
        for bad in [
            "none", "None", "NONE", "nOnE", "", "HS256", "HS384", "HS512", "PS256", "PS384",
            "PS512", "EdDSA", "rs256", "Rs256", "RS256 ", " RS256", "RS256\0", "ES256K", "RS1",
        ] {
            assert_eq!(Algorithm::from_name(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn curves_bind_algorithms() {
        for c in [Curve::P256, Curve::P384, Curve::P521] {
            assert_eq!(Curve::from_name(c.name()), Some(c));
            assert_eq!(c.algorithm().curve(), Some(c));
            assert_eq!(c.order().len(), c.coordinate_len());
        }
        assert_eq!(Curve::from_name("p-256"), None);
        assert_eq!(Curve::from_name("secp256k1"), None);
        assert!(Algorithm::Rs256.is_rsa() && !Algorithm::Es256.is_rsa());
    }

    #[test]
    fn psychic_signature_shapes_are_rejected() {
        for c in [Curve::P256, Curve::P384, Curve::P521] {
            let len = c.coordinate_len();
            let one = {
                let mut v = vec![0u8; len];
                if let Some(last) = v.last_mut() {
                    *last = 1;
                }
                v
            };
            let n = c.order().to_vec();
            let zero = vec![0u8; len];
            let ok = [one.clone(), one.clone()].concat();
            assert!(ecdsa_signature_well_formed(c, &ok));
            // r = s = 0 (CVE-2022-21449).
            assert!(!ecdsa_signature_well_formed(
                c,
                &[zero.clone(), zero.clone()].concat()
            ));
            assert!(!ecdsa_signature_well_formed(
                c,
                &[zero.clone(), one.clone()].concat()
            ));
            assert!(!ecdsa_signature_well_formed(
                c,
                &[one.clone(), zero.clone()].concat()
            ));
            // r or s = n, or above n.
            assert!(!ecdsa_signature_well_formed(
                c,
                &[n.clone(), one.clone()].concat()
            ));
            assert!(!ecdsa_signature_well_formed(
                c,
                &[one.clone(), n.clone()].concat()
            ));
            let ff = vec![0xffu8; len];
            assert!(!ecdsa_signature_well_formed(c, &[one.clone(), ff].concat()));
            // n - 1 is the largest valid scalar.
            let mut n_minus_1 = n.clone();
            if let Some(last) = n_minus_1.last_mut() {
                *last -= 1;
            }
            assert!(ecdsa_signature_well_formed(
                c,
                &[n_minus_1.clone(), n_minus_1].concat()
            ));
            // Wrong lengths.
            assert!(!ecdsa_signature_well_formed(c, &ok[1..]));
            assert!(!ecdsa_signature_well_formed(
                c,
                &[ok.clone(), vec![1]].concat()
            ));
            assert!(!ecdsa_signature_well_formed(c, &[]));
        }
    }
}
