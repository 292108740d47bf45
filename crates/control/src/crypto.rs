//! Secrets at rest and session-key derivation.
//!
//! [`MasterKey`] seals secrets (AES-256-GCM, random 96-bit nonce) before they are stored.
//! `Debug` never prints key material.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hmac;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

/// A sealed secret: base64 of `nonce || ciphertext || tag`.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Sealed(pub String);

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealed(...)")
    }
}

/// Errors of sealing and opening.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The master key is not 32 bytes of base64.
    #[error("master key must be 32 bytes, base64-encoded")]
    BadMasterKey,
    /// A sealed value failed authentication (wrong master key or corrupted).
    #[error("sealed secret failed to open: wrong master key or corrupted data")]
    Open,
    /// The system random generator failed.
    #[error("random generator failure")]
    Random,
}

/// The master key that seals every secret at rest, and authenticates what podiam hands out
/// to be handed back ([`MasterKey::mac`]).
pub struct MasterKey {
    key: LessSafeKey,
    /// HMAC-SHA256 key derived from the master key (never the master key itself).
    mac_key: hmac::Key,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(...)")
    }
}

impl MasterKey {
    /// A new random master key, returned with its base64 text for the key file.
    pub fn generate() -> Result<(Self, String), CryptoError> {
        let bytes = random_bytes::<32>()?;
        let text = STANDARD.encode(bytes);
        Ok((Self::from_bytes(&bytes)?, text))
    }

    /// Parse the base64 text of a key file or `PODIAM_MASTER_KEY`.
    pub fn from_base64(text: &str) -> Result<Self, CryptoError> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| CryptoError::BadMasterKey)?;
        Self::from_bytes(&bytes)
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        if bytes.len() != 32 {
            return Err(CryptoError::BadMasterKey);
        }
        let key = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| CryptoError::BadMasterKey)?;
        let derived = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, bytes),
            b"podiam mac key v1",
        );
        Ok(Self {
            key: LessSafeKey::new(key),
            mac_key: hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()),
        })
    }

    /// HMAC-SHA256 of `message` for `purpose` (a fixed label: a tag made for one purpose never
    /// verifies for another). Every replica with the same master key computes the same tag.
    pub fn mac(&self, purpose: &str, message: &[u8]) -> [u8; 32] {
        let mut ctx = hmac::Context::with_key(&self.mac_key);
        ctx.update(purpose.as_bytes());
        ctx.update(&[0]);
        ctx.update(message);
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.sign().as_ref());
        out
    }

    /// Whether `tag` is [`MasterKey::mac`] of `message` for `purpose`, in constant time.
    pub fn verify_mac(&self, purpose: &str, message: &[u8], tag: &[u8]) -> bool {
        let mut m = Vec::with_capacity(purpose.len() + 1 + message.len());
        m.extend_from_slice(purpose.as_bytes());
        m.push(0);
        m.extend_from_slice(message);
        hmac::verify(&self.mac_key, &m, tag).is_ok()
    }

    /// Seal `plain`; `context` (e.g. the record kind and id) is bound as associated data so a
    /// sealed value cannot be moved to another record.
    pub fn seal(&self, plain: &[u8], context: &str) -> Result<Sealed, CryptoError> {
        let nonce_bytes = random_bytes::<NONCE_LEN>()?;
        let mut buf = plain.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(context.as_bytes()),
                &mut buf,
            )
            .map_err(|_| CryptoError::Random)?;
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&buf);
        Ok(Sealed(STANDARD.encode(out)))
    }

    /// Open a sealed value.
    pub fn open(&self, sealed: &Sealed, context: &str) -> Result<Vec<u8>, CryptoError> {
        let raw = STANDARD.decode(&sealed.0).map_err(|_| CryptoError::Open)?;
        if raw.len() < NONCE_LEN {
            return Err(CryptoError::Open);
        }
        let (nonce, ct) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Open)?;
        let mut buf = ct.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut buf)
            .map_err(|_| CryptoError::Open)?;
        Ok(plain.to_vec())
    }
}

/// `N` bytes from the system CSPRNG.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], CryptoError> {
    let mut b = [0u8; N];
    SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| CryptoError::Random)?;
    Ok(b)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn seal_open_round_trip_and_context_binding() {
        let (k, text) = MasterKey::generate().unwrap();
        let s = k.seal(b"secret", "access_key/AKIA1").unwrap();
        assert_eq!(k.open(&s, "access_key/AKIA1").unwrap(), b"secret");
        assert!(k.open(&s, "access_key/AKIA2").is_err(), "context is bound");
        let k2 = MasterKey::from_base64(&text).unwrap();
        assert_eq!(k2.open(&s, "access_key/AKIA1").unwrap(), b"secret");
        let (other, _) = MasterKey::generate().unwrap();
        assert!(
            other.open(&s, "access_key/AKIA1").is_err(),
            "wrong master key"
        );
        assert!(!format!("{k:?}{s:?}").contains(&s.0));
    }

    #[test]
    fn tampered_sealed_value_fails() {
        let (k, _) = MasterKey::generate().unwrap();
        let s = k.seal(b"secret", "c").unwrap();
        let mut raw = STANDARD.decode(&s.0).unwrap();
        for i in 0..raw.len() {
            raw[i] ^= 1;
            assert!(
                k.open(&Sealed(STANDARD.encode(&raw)), "c").is_err(),
                "byte {i}"
            );
            raw[i] ^= 1;
        }
        assert!(MasterKey::from_base64("c2hvcnQ=").is_err());
        assert!(MasterKey::from_base64("not base64!").is_err());
    }
}
