//! JWK sets as served at an issuer's `jwks_uri`, parsed once into ready-to-use aws-lc public
//! keys, and the key-selection + signature-verification step of token verification.
//!
//! Key acceptance rules are documented on [`JwkSet`].

use std::fmt;

use aws_lc_rs::signature::{ParsedPublicKey, RsaPublicKeyComponents};
use serde_json::{Map, Value};

use crate::alg::{Algorithm, Curve, ecdsa_signature_well_formed};
use crate::error::{JwkError, JwtError, snippet};
use crate::{MAX_JSON_DEPTH, MAX_JWKS_KEYS, MAX_JWKS_LEN, b64, json};

/// Members whose presence marks a JWK as (partly) private.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Public members copied into [`Jwk::to_json`] / [`JwkSet::to_json`].
const PUBLIC_MEMBERS: [&str; 10] = [
    "kty", "use", "key_ops", "alg", "kid", "n", "e", "crv", "x", "y",
];

/// The type (and size/curve) of a usable public key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyType {
    /// An RSA key with a modulus of `bits` bits.
    Rsa {
        /// Modulus size in bits.
        bits: u32,
    },
    /// An EC key on the given curve.
    Ec(Curve),
}

/// One usable public signature key of a [`JwkSet`], with its parsed aws-lc key object(s).
#[derive(Clone)]
pub struct Jwk {
    kid: Option<String>,
    alg: Option<Algorithm>,
    key_type: KeyType,
    /// Exact signature length this key produces (RSA: modulus bytes; EC: `2 * coordinate`).
    signature_len: usize,
    /// One parsed key per algorithm this key may verify (aws-lc binds a parsed key to one
    /// algorithm). RSA keys without `alg` get RS256/RS384/RS512; EC keys get their curve's.
    verifiers: Vec<(Algorithm, ParsedPublicKey)>,
    public: Map<String, Value>,
}

impl Jwk {
    /// The `kid`, if the JWK has one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The `alg` pinned by the JWK, if any.
    pub fn alg(&self) -> Option<Algorithm> {
        self.alg
    }

    /// Key type, size or curve.
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// Whether this key may verify `alg` (key type, curve and any pinned `alg` all fit).
    pub fn supports(&self, alg: Algorithm) -> bool {
        self.verifier(alg).is_some()
    }

    /// The key's public members as a JWK JSON object.
    pub fn to_json(&self) -> Value {
        Value::Object(self.public.clone())
    }

    fn verifier(&self, alg: Algorithm) -> Option<&ParsedPublicKey> {
        self.verifiers
            .iter()
            .find(|(a, _)| *a == alg)
            .map(|(_, key)| key)
    }

    /// Verifies one signature with this key: shape first, then aws-lc.
    fn verify(&self, alg: Algorithm, signing_input: &[u8], signature: &[u8]) -> bool {
        let Some(key) = self.verifier(alg) else {
            return false;
        };
        self.signature_shape_ok(signature) && key.verify_sig(signing_input, signature).is_ok()
    }

    /// Explicit shape checks done before aws-lc repeats them: exact length (RSA: modulus
    /// length; ECDSA: `2 * coordinate`) and, for ECDSA, `0 < r, s < n`.
    fn signature_shape_ok(&self, signature: &[u8]) -> bool {
        if signature.len() != self.signature_len {
            return false;
        }
        match self.key_type {
            KeyType::Ec(curve) => ecdsa_signature_well_formed(curve, signature),
            KeyType::Rsa { .. } => true,
        }
    }

    fn from_value(value: &Value) -> Result<Jwk, String> {
        let obj = value.as_object().ok_or("not a json object")?;
        let kid = match obj.get("kid") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err("\"kid\" is not a string".to_owned()),
        };
        if let Some(m) = PRIVATE_MEMBERS.iter().find(|m| obj.contains_key(**m)) {
            return Err(format!("contains private key member {m:?}"));
        }
        match obj.get("use") {
            None => {}
            Some(Value::String(u)) if u == "sig" => {}
            Some(Value::String(u)) => {
                return Err(format!("\"use\" is {:?}, not \"sig\"", snippet(u)));
            }
            Some(_) => return Err("\"use\" is not a string".to_owned()),
        }
        match obj.get("key_ops") {
            None => {}
            Some(Value::Array(ops)) if !ops.iter().any(|op| op.as_str() == Some("verify")) => {
                return Err("\"key_ops\" does not include \"verify\"".to_owned());
            }
            Some(Value::Array(_)) => {}
            Some(_) => return Err("\"key_ops\" is not an array".to_owned()),
        }
        let alg = match obj.get("alg") {
            None => None,
            Some(Value::String(a)) => Some(
                Algorithm::from_name(a)
                    .ok_or_else(|| format!("unsupported \"alg\" {:?}", snippet(a)))?,
            ),
            Some(_) => return Err("\"alg\" is not a string".to_owned()),
        };
        let (key_type, signature_len, verifiers) = match obj.get("kty").and_then(Value::as_str) {
            Some("RSA") => rsa_key(obj, alg)?,
            Some("EC") => ec_key(obj, alg)?,
            Some(other) => return Err(format!("unsupported \"kty\" {:?}", snippet(other))),
            None => return Err("\"kty\" is missing or not a string".to_owned()),
        };
        let public = PUBLIC_MEMBERS
            .iter()
            .filter_map(|m| obj.get(*m).map(|v| ((*m).to_owned(), v.clone())))
            .collect();
        Ok(Jwk {
            kid,
            alg,
            key_type,
            signature_len,
            verifiers,
            public,
        })
    }
}

impl fmt::Debug for Jwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jwk")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("key_type", &self.key_type)
            .finish_non_exhaustive()
    }
}

type Parsed = (KeyType, usize, Vec<(Algorithm, ParsedPublicKey)>);

fn member_bytes(obj: &Map<String, Value>, name: &str) -> Result<Vec<u8>, String> {
    let s = obj
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{name:?} is missing or not a string"))?;
    b64::decode_jwk_member(s).ok_or_else(|| format!("{name:?} is not base64url"))
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or_default()
}

/// Bit length of a big-endian integer without leading zero bytes.
fn bit_len(be: &[u8]) -> u32 {
    match be.first() {
        None => 0,
        Some(&top) => {
            let len = u32::try_from(be.len()).unwrap_or(u32::MAX);
            len.saturating_sub(1)
                .saturating_mul(8)
                .saturating_add(8 - top.leading_zeros())
        }
    }
}

fn rsa_key(obj: &Map<String, Value>, alg: Option<Algorithm>) -> Result<Parsed, String> {
    if let Some(a) = alg.filter(|a| !a.is_rsa()) {
        return Err(format!("\"alg\" {a} does not fit an RSA key"));
    }
    let n_raw = member_bytes(obj, "n")?;
    let e_raw = member_bytes(obj, "e")?;
    let n = strip_leading_zeros(&n_raw);
    let e = strip_leading_zeros(&e_raw);
    let bits = bit_len(n);
    if !(2048..=8192).contains(&bits) {
        return Err(format!(
            "rsa modulus has {bits} bits; 2048 to 8192 are accepted"
        ));
    }
    if n.last().is_none_or(|b| b % 2 == 0) {
        return Err("rsa modulus is even".to_owned());
    }
    if e.is_empty() || e.len() > 4 {
        return Err("rsa exponent is out of range".to_owned());
    }
    let e_val = e.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    if e_val < 3 || e_val % 2 == 0 {
        return Err("rsa exponent is out of range".to_owned());
    }
    let components = RsaPublicKeyComponents { n, e };
    let mut verifiers = Vec::with_capacity(3);
    for a in [Algorithm::Rs256, Algorithm::Rs384, Algorithm::Rs512] {
        if alg.is_some_and(|pinned| pinned != a) {
            continue;
        }
        let params = a.rsa_params().ok_or("internal: missing rsa parameters")?;
        let key = components
            .to_parsed_public_key(params)
            .map_err(|_| "rsa key rejected by the crypto library".to_owned())?;
        verifiers.push((a, key));
    }
    Ok((KeyType::Rsa { bits }, n.len(), verifiers))
}

fn ec_key(obj: &Map<String, Value>, alg: Option<Algorithm>) -> Result<Parsed, String> {
    let crv = obj
        .get("crv")
        .and_then(Value::as_str)
        .ok_or("\"crv\" is missing or not a string")?;
    let curve =
        Curve::from_name(crv).ok_or_else(|| format!("unsupported \"crv\" {:?}", snippet(crv)))?;
    if let Some(a) = alg.filter(|a| *a != curve.algorithm()) {
        return Err(format!("\"alg\" {a} does not fit curve {}", curve.name()));
    }
    let x = member_bytes(obj, "x")?;
    let y = member_bytes(obj, "y")?;
    let len = curve.coordinate_len();
    if x.len() != len || y.len() != len {
        return Err(format!(
            "ec coordinates must be exactly {len} bytes for {}",
            curve.name()
        ));
    }
    let mut point = Vec::with_capacity(1 + 2 * len);
    point.push(0x04);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    let key = ParsedPublicKey::new(curve.verification_alg(), &point)
        .map_err(|_| format!("ec point is not on {}", curve.name()))?;
    Ok((KeyType::Ec(curve), 2 * len, vec![(curve.algorithm(), key)]))
}

/// A key that [`JwkSet::from_json`] did not keep, and why (for logging).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedKey {
    /// Position in the `keys` array.
    pub index: usize,
    /// Its `kid`, if it had a string one.
    pub kid: Option<String>,
    /// Why it was skipped.
    pub reason: String,
}

/// A parsed JWK set: only usable public signature keys, ready for verification.
///
/// Parsing is lenient about the document (unknown members are ignored, unusable keys are
/// skipped and reported through [`JwkSet::skipped`]) but strict about what is kept. A key is
/// kept only if all of these hold:
/// - `kty` is `RSA` (with `n`, `e`; modulus 2048..=8192 bits; `e` odd, `3 <= e < 2^32`) or `EC`
///   (with `crv` `P-256`/`P-384`/`P-521`, full-length `x` and `y` forming a point on the curve);
/// - no private member (`d`, `p`, `q`, `dp`, `dq`, `qi`, `oth`, `k`) is present — a published
///   private key is never used;
/// - `use`, if present, is `"sig"`; `key_ops`, if present, contains `"verify"`;
/// - `alg`, if present, is on the allow-list and fits the key type/curve (it then pins the
///   only algorithm the key may verify);
/// - `kid`, if present, is a string.
///
/// Parse it once when the JWKS is fetched and share it (it is `Send + Sync`); verification
/// does no key parsing.
#[derive(Clone, Default)]
pub struct JwkSet {
    keys: Vec<Jwk>,
    skipped: Vec<SkippedKey>,
}

impl JwkSet {
    /// Parses a JWK set document (`{"keys":[...]}`).
    ///
    /// Fails only if the document as a whole is unusable: over [`MAX_JWKS_LEN`] bytes, not a
    /// JSON object (depth/duplicate-member limits as for tokens), no `keys` array, or more than
    /// [`MAX_JWKS_KEYS`] entries. Individual unusable keys are skipped (see the module docs and
    /// [`JwkSet::skipped`]); a set may therefore end up empty.
    pub fn from_json(bytes: &[u8]) -> Result<Self, JwkError> {
        if bytes.len() > MAX_JWKS_LEN {
            return Err(JwkError::TooLarge {
                len: bytes.len(),
                max: MAX_JWKS_LEN,
            });
        }
        let doc = json::parse_object(bytes, MAX_JSON_DEPTH).map_err(JwkError::Malformed)?;
        let Some(Value::Array(entries)) = doc.get("keys") else {
            return Err(JwkError::Malformed(
                "\"keys\" is missing or not an array".to_owned(),
            ));
        };
        if entries.len() > MAX_JWKS_KEYS {
            return Err(JwkError::TooManyKeys {
                count: entries.len(),
                max: MAX_JWKS_KEYS,
            });
        }
        let mut set = JwkSet::default();
        for (index, entry) in entries.iter().enumerate() {
            match Jwk::from_value(entry) {
                Ok(key) => set.keys.push(key),
                Err(reason) => set.skipped.push(SkippedKey {
                    index,
                    kid: entry.get("kid").and_then(Value::as_str).map(str::to_owned),
                    reason,
                }),
            }
        }
        Ok(set)
    }

    /// Serializes the kept keys (public members only) as a JWK set document.
    pub fn to_json(&self) -> String {
        let keys: Vec<Value> = self.keys.iter().map(Jwk::to_json).collect();
        let mut doc = Map::new();
        doc.insert("keys".to_owned(), Value::Array(keys));
        Value::Object(doc).to_string()
    }

    /// Number of usable keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no usable key was found.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The usable keys, in document order.
    pub fn keys(&self) -> &[Jwk] {
        &self.keys
    }

    /// The entries that were skipped, with reasons.
    pub fn skipped(&self) -> &[SkippedKey] {
        &self.skipped
    }

    /// Looks a key up: with `Some(kid)`, the first key with exactly that `kid`; with `None`,
    /// the only key of the set (`None` if the set does not have exactly one key).
    pub fn find(&self, kid: Option<&str>) -> Option<&Jwk> {
        match kid {
            Some(kid) => self.keys.iter().find(|k| k.kid() == Some(kid)),
            None => match self.keys.as_slice() {
                [only] => Some(only),
                _ => None,
            },
        }
    }

    /// Signature layer of verification: checks `alg` against the allow-list, selects keys,
    /// verifies `signature` over `signing_input` and returns the key that verified it.
    ///
    /// Key selection: with a `kid`, only keys whose `kid` equals it exactly are candidates
    /// (none → [`JwtError::UnknownKid`]; some, but none usable with `alg` →
    /// [`JwtError::IncompatibleKey`]). Without a `kid`, every key usable with `alg` is a
    /// candidate (none → [`JwtError::UnknownKid`]); like AWS STS, each candidate is tried in
    /// document order. No candidate verifying → [`JwtError::BadSignature`].
    pub fn verify_signature(
        &self,
        alg: &str,
        kid: Option<&str>,
        signing_input: &[u8],
        signature: &[u8],
    ) -> Result<&Jwk, JwtError> {
        self.select_and_verify(alg, kid, signing_input, signature)
            .map(|(_, key)| key)
    }

    pub(crate) fn select_and_verify(
        &self,
        alg: &str,
        kid: Option<&str>,
        signing_input: &[u8],
        signature: &[u8],
    ) -> Result<(Algorithm, &Jwk), JwtError> {
        let alg = Algorithm::from_name(alg)
            .ok_or_else(|| JwtError::UnsupportedAlgorithm(snippet(alg)))?;
        let mut kid_matched = false;
        let mut candidates = 0usize;
        for key in &self.keys {
            if let Some(kid) = kid {
                if key.kid() != Some(kid) {
                    continue;
                }
                kid_matched = true;
            }
            if !key.supports(alg) {
                continue;
            }
            candidates += 1;
            if key.verify(alg, signing_input, signature) {
                return Ok((alg, key));
            }
        }
        if candidates > 0 {
            Err(JwtError::BadSignature)
        } else if kid_matched {
            Err(JwtError::IncompatibleKey(alg.name().to_owned()))
        } else {
            Err(JwtError::UnknownKid)
        }
    }
}

impl fmt::Debug for JwkSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwkSet")
            .field("keys", &self.keys)
            .field("skipped", &self.skipped.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_len_counts_bits() {
        assert_eq!(bit_len(&[]), 0);
        assert_eq!(bit_len(&[1]), 1);
        assert_eq!(bit_len(&[0x80]), 8);
        assert_eq!(bit_len(&[0x01, 0x00]), 9);
        let mut n = vec![0xffu8; 256];
        assert_eq!(bit_len(&n), 2048);
        n[0] = 0x7f;
        assert_eq!(bit_len(&n), 2047);
    }

    #[test]
    fn strip_leading_zeros_works() {
        assert_eq!(strip_leading_zeros(&[0, 0, 1, 0]), &[1, 0]);
        assert_eq!(strip_leading_zeros(&[0, 0]), &[] as &[u8]);
        assert_eq!(strip_leading_zeros(&[]), &[] as &[u8]);
    }

    const RFC7515_A3_JWK: &str = r#"{"kty":"EC","crv":"P-256",
        "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;

    fn jwk(text: &str) -> Jwk {
        Jwk::from_value(&serde_json::from_str(text).unwrap()).unwrap()
    }

    #[test]
    fn ecdsa_shape_check_runs_before_crypto() {
        let key = jwk(RFC7515_A3_JWK);
        let mut ok = vec![0u8; 64];
        ok[31] = 1;
        ok[63] = 1;
        assert!(key.signature_shape_ok(&ok));
        assert!(!key.signature_shape_ok(&[0u8; 64]));
        assert!(!key.signature_shape_ok(&[0xffu8; 64]));
        assert!(!key.signature_shape_ok(&ok[..63]));
        assert!(!key.signature_shape_ok(&[ok.clone(), vec![0]].concat()));
        // verify() consults the shape check: an all-zero signature never reaches aws-lc's
        // answer (which would also be "no").
        assert!(!key.verify(Algorithm::Es256, b"x", &[0u8; 64]));
    }

    #[test]
    fn rsa_shape_check_is_exact_length() {
        let n = crate::b64::encode(&[0xc5u8; 256]);
        let key = jwk(&format!(r#"{{"kty":"RSA","n":"{n}","e":"AQAB"}}"#));
        assert_eq!(key.key_type(), KeyType::Rsa { bits: 2048 });
        assert!(key.signature_shape_ok(&[1u8; 256]));
        assert!(!key.signature_shape_ok(&[1u8; 255]));
        assert!(!key.signature_shape_ok(&[1u8; 257]));
        assert!(!key.signature_shape_ok(&[]));
    }

    #[test]
    fn set_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<JwkSet>();
        check::<Jwk>();
    }
}
