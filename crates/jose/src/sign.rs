//! The signing side: keys for the OIDC issuers podiam hosts (like EKS does for clusters).
//!
//! A [`SigningKey`] is an RSA-2048 (RS256) or P-256 (ES256) private key. It exports
//! - PKCS#8 DER / `PRIVATE KEY` PEM, accepted by kube-apiserver's
//!   `--service-account-signing-key-file`;
//! - PKIX `PUBLIC KEY` PEM for `--service-account-key-file`;
//! - its `kid`, computed exactly like kube-apiserver: base64url (no padding) of SHA-256 over the
//!   PKIX (`SubjectPublicKeyInfo`) DER of the public key;
//! - its public JWK, and (with [`jwks_json`]) a JWK set in kube-apiserver's member order.
//!
//! Tokens it signs carry the header `{"alg":..,"kid":..}` (no `typ`, like kube-apiserver).

use std::fmt;

use aws_lc_rs::digest;
use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _, RSA_PKCS1_SHA256, RsaKeyPair,
};
use serde_json::{Map, Value};

use crate::alg::Algorithm;
use crate::error::KeyError;
use crate::{b64, pem};

/// Algorithms podiam signs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    /// RSA-2048 (generated; imported keys may be 2048..=8192 bits), RSASSA-PKCS1-v1_5 SHA-256.
    Rs256,
    /// P-256 ECDSA with SHA-256.
    Es256,
}

impl KeyAlgorithm {
    /// The JWS algorithm of signatures made with this key type.
    pub fn algorithm(self) -> Algorithm {
        match self {
            KeyAlgorithm::Rs256 => Algorithm::Rs256,
            KeyAlgorithm::Es256 => Algorithm::Es256,
        }
    }

    /// The JWS `alg` name.
    pub fn name(self) -> &'static str {
        self.algorithm().name()
    }
}

/// Private key bytes, zeroed (best effort) on drop.
struct SecretBytes(Box<[u8]>);

impl Drop for SecretBytes {
    fn drop(&mut self) {
        for b in self.0.iter_mut() {
            *b = 0;
        }
        std::hint::black_box(&self.0);
    }
}

enum Inner {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
}

enum PublicParams {
    Rsa { n: String, e: String },
    Ec { x: String, y: String },
}

/// A private signing key of a hosted OIDC issuer.
///
/// `Debug` prints `SigningKey { kid: "..", alg: .., .. }` and never key material.
pub struct SigningKey {
    alg: KeyAlgorithm,
    kid: String,
    inner: Inner,
    pkcs8: SecretBytes,
    spki: Vec<u8>,
    public: PublicParams,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

fn rejected(what: &str, e: impl fmt::Display) -> KeyError {
    KeyError::InvalidKey(format!("{what}: {e}"))
}

impl SigningKey {
    /// Generates a new key: RSA-2048 for [`KeyAlgorithm::Rs256`], P-256 for
    /// [`KeyAlgorithm::Es256`].
    pub fn generate(alg: KeyAlgorithm) -> Result<Self, KeyError> {
        let pkcs8 = match alg {
            KeyAlgorithm::Rs256 => {
                let kp = RsaKeyPair::generate(KeySize::Rsa2048)?;
                let der: Pkcs8V1Der<'static> = kp.as_der()?;
                SecretBytes(der.as_ref().into())
            }
            KeyAlgorithm::Es256 => {
                let kp = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)?;
                SecretBytes(kp.to_pkcs8v1()?.as_ref().into())
            }
        };
        Self::from_pkcs8_der(alg, &pkcs8.0)
    }

    /// Imports an unencrypted PKCS#8 (`PrivateKeyInfo`) DER private key of the given type.
    /// RSA keys must be 2048..=8192 bits; EC keys must be on P-256.
    pub fn from_pkcs8_der(alg: KeyAlgorithm, der: &[u8]) -> Result<Self, KeyError> {
        match alg {
            KeyAlgorithm::Rs256 => {
                let kp = RsaKeyPair::from_pkcs8(der)
                    .map_err(|e| rejected("not an rsa pkcs#8 private key", e))?;
                Self::from_rsa(kp)
            }
            KeyAlgorithm::Es256 => {
                let kp = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
                    .map_err(|e| rejected("not a p-256 pkcs#8 private key", e))?;
                Self::from_ec(kp)
            }
        }
    }

    /// Imports a PEM private key, detecting its type: `PRIVATE KEY` (PKCS#8, RSA or P-256),
    /// `RSA PRIVATE KEY` (PKCS#1, as kubeadm writes `sa.key`) or `EC PRIVATE KEY` (SEC 1,
    /// P-256). Encrypted PEM is not supported.
    pub fn from_pem(pem_text: &str) -> Result<Self, KeyError> {
        if let Ok(der) = pem::decode(pem::PRIVATE_KEY_LABEL, pem_text) {
            let der = SecretBytes(der.into());
            return Self::from_pkcs8_der(KeyAlgorithm::Rs256, &der.0)
                .or_else(|_| Self::from_pkcs8_der(KeyAlgorithm::Es256, &der.0))
                .map_err(|_| {
                    KeyError::InvalidKey(
                        "pkcs#8 key is neither rsa (2048..=8192 bits) nor p-256".to_owned(),
                    )
                });
        }
        if let Ok(der) = pem::decode("RSA PRIVATE KEY", pem_text) {
            let der = SecretBytes(der.into());
            let kp = RsaKeyPair::from_der(&der.0)
                .map_err(|e| rejected("not a pkcs#1 rsa private key", e))?;
            return Self::from_rsa(kp);
        }
        if let Ok(der) = pem::decode("EC PRIVATE KEY", pem_text) {
            let der = SecretBytes(der.into());
            let kp = EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_FIXED_SIGNING, &der.0)
                .map_err(|e| rejected("not a p-256 sec1 private key", e))?;
            return Self::from_ec(kp);
        }
        Err(KeyError::Pem(
            "no PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block".to_owned(),
        ))
    }

    fn from_rsa(kp: RsaKeyPair) -> Result<Self, KeyError> {
        let public = kp.public_key();
        let n = public.modulus().big_endian_without_leading_zero();
        let e = public.exponent().big_endian_without_leading_zero();
        let bits = n.len().saturating_mul(8);
        let top_zero_bits = n.first().map_or(8, |b| b.leading_zeros() as usize);
        let bits = bits.saturating_sub(top_zero_bits);
        if !(2048..=8192).contains(&bits) {
            return Err(KeyError::InvalidKey(format!(
                "rsa key has {bits} bits; 2048 to 8192 are accepted"
            )));
        }
        let spki = public.as_der()?.as_ref().to_vec();
        let params = PublicParams::Rsa {
            n: b64::encode(n),
            e: b64::encode(e),
        };
        let pkcs8: Pkcs8V1Der<'static> = kp.as_der()?;
        Ok(Self::assemble(
            KeyAlgorithm::Rs256,
            Inner::Rsa(kp),
            SecretBytes(pkcs8.as_ref().into()),
            spki,
            params,
        ))
    }

    fn from_ec(kp: EcdsaKeyPair) -> Result<Self, KeyError> {
        let point = kp.public_key().as_ref();
        let (Some(0x04), Some(x), Some(y), 65) = (
            point.first(),
            point.get(1..33),
            point.get(33..65),
            point.len(),
        ) else {
            return Err(KeyError::InvalidKey(
                "unexpected p-256 public point encoding".to_owned(),
            ));
        };
        let params = PublicParams::Ec {
            x: b64::encode(x),
            y: b64::encode(y),
        };
        let spki = kp.public_key().as_der()?.as_ref().to_vec();
        let pkcs8 = SecretBytes(kp.to_pkcs8v1()?.as_ref().into());
        Ok(Self::assemble(
            KeyAlgorithm::Es256,
            Inner::Ec(kp),
            pkcs8,
            spki,
            params,
        ))
    }

    fn assemble(
        alg: KeyAlgorithm,
        inner: Inner,
        pkcs8: SecretBytes,
        spki: Vec<u8>,
        public: PublicParams,
    ) -> Self {
        let kid = b64::encode(digest::digest(&digest::SHA256, &spki).as_ref());
        SigningKey {
            alg,
            kid,
            inner,
            pkcs8,
            spki,
            public,
        }
    }

    /// The key type / signature algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.alg
    }

    /// The key id: base64url (no padding) of SHA-256 over the PKIX public key DER — the
    /// kube-apiserver algorithm, so tokens kube-apiserver signs with this key carry this `kid`.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The private key as PKCS#8 v1 DER. The caller owns (and should wipe) the copy.
    pub fn to_pkcs8_der(&self) -> Vec<u8> {
        self.pkcs8.0.to_vec()
    }

    /// The private key as a `-----BEGIN PRIVATE KEY-----` PKCS#8 PEM.
    pub fn private_key_pem(&self) -> String {
        pem::encode(pem::PRIVATE_KEY_LABEL, &self.pkcs8.0)
    }

    /// The public key as PKIX (`SubjectPublicKeyInfo`) DER.
    pub fn public_key_der(&self) -> &[u8] {
        &self.spki
    }

    /// The public key as a `-----BEGIN PUBLIC KEY-----` PKIX PEM.
    pub fn public_key_pem(&self) -> String {
        pem::encode(pem::PUBLIC_KEY_LABEL, &self.spki)
    }

    /// The public JWK: `{"use":"sig","kty":"RSA","kid","alg":"RS256","n","e"}` or
    /// `{"use":"sig","kty":"EC","kid","crv":"P-256","alg":"ES256","x","y"}`.
    pub fn public_jwk(&self) -> Value {
        let mut m = Map::new();
        let mut put = |k: &str, v: &str| {
            m.insert(k.to_owned(), Value::String(v.to_owned()));
        };
        put("use", "sig");
        match &self.public {
            PublicParams::Rsa { n, e } => {
                put("kty", "RSA");
                put("kid", &self.kid);
                put("alg", self.alg.name());
                put("n", n);
                put("e", e);
            }
            PublicParams::Ec { x, y } => {
                put("kty", "EC");
                put("kid", &self.kid);
                put("crv", "P-256");
                put("alg", self.alg.name());
                put("x", x);
                put("y", y);
            }
        }
        Value::Object(m)
    }

    /// Appends the public JWK in kube-apiserver's member order.
    fn write_jwk(&self, out: &mut String) {
        let mut first = true;
        let mut put = |k: &str, v: &str| {
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str(&Value::String(k.to_owned()).to_string());
            out.push(':');
            out.push_str(&Value::String(v.to_owned()).to_string());
        };
        put("use", "sig");
        match &self.public {
            PublicParams::Rsa { n, e } => {
                put("kty", "RSA");
                put("kid", &self.kid);
                put("alg", self.alg.name());
                put("n", n);
                put("e", e);
            }
            PublicParams::Ec { x, y } => {
                put("kty", "EC");
                put("kid", &self.kid);
                put("crv", "P-256");
                put("alg", self.alg.name());
                put("x", x);
                put("y", y);
            }
        }
    }

    /// Signs arbitrary bytes with the key's algorithm (RSASSA-PKCS1-v1_5 SHA-256, or ECDSA
    /// P-256 SHA-256 in fixed `r || s` form). Building block for [`SigningKey::sign`]; also
    /// useful to craft test tokens with arbitrary headers.
    pub fn sign_raw(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let rng = SystemRandom::new();
        match &self.inner {
            Inner::Rsa(kp) => {
                let mut sig = vec![0u8; kp.public_modulus_len()];
                kp.sign(&RSA_PKCS1_SHA256, &rng, message, &mut sig)?;
                Ok(sig)
            }
            Inner::Ec(kp) => Ok(kp.sign(&rng, message)?.as_ref().to_vec()),
        }
    }

    /// Signs `claims` (which must be a JSON object) as a compact JWS with header
    /// `{"alg":"RS256"|"ES256","kid":"<kid>"}`.
    pub fn sign(&self, claims: &Value) -> Result<String, KeyError> {
        if !claims.is_object() {
            return Err(KeyError::ClaimsNotObject);
        }
        let header = format!(
            "{{\"alg\":\"{}\",\"kid\":{}}}",
            self.alg.name(),
            Value::String(self.kid.clone())
        );
        let payload = claims.to_string();
        let mut out = b64::encode(header.as_bytes());
        out.push('.');
        out.push_str(&b64::encode(payload.as_bytes()));
        let sig = self.sign_raw(out.as_bytes())?;
        out.push('.');
        out.push_str(&b64::encode(&sig));
        Ok(out)
    }
}

/// A JWK set document `{"keys":[...]}` with the public JWKs of `keys`, members in
/// kube-apiserver's order (`use`, `kty`, `kid`, `crv` for EC, `alg`, then `n`/`e` or `x`/`y`).
pub fn jwks_json(keys: &[&SigningKey]) -> String {
    let mut out = String::from("{\"keys\":[");
    for (i, key) in keys.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('{');
        key.write_jwk(&mut out);
        out.push('}');
    }
    out.push_str("]}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_no_key_material() {
        let k = SigningKey::generate(KeyAlgorithm::Es256).unwrap();
        let dbg = format!("{k:?}");
        assert_eq!(
            dbg,
            format!("SigningKey {{ kid: {:?}, alg: Es256, .. }}", k.kid())
        );
        let pem_body: String = k
            .private_key_pem()
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        assert!(!dbg.contains(&pem_body[..20]));
    }

    #[test]
    fn jwk_member_order_matches_kube_apiserver() {
        let k = SigningKey::generate(KeyAlgorithm::Es256).unwrap();
        let doc = jwks_json(&[&k]);
        let kid_pos = doc.find("\"kid\"").unwrap();
        assert!(doc.starts_with("{\"keys\":[{\"use\":\"sig\",\"kty\":\"EC\",\"kid\":"));
        assert!(doc.find("\"crv\"").unwrap() > kid_pos);
        assert!(doc.find("\"alg\"").unwrap() > doc.find("\"crv\"").unwrap());
        assert!(doc.find("\"x\"").unwrap() > doc.find("\"alg\"").unwrap());
        assert_eq!(jwks_json(&[]), "{\"keys\":[]}");
    }
}
