//! Self-contained sessions.
//!
//! A session token is `base64(version || key id || nonce || AES-256-GCM(claims))`: it carries
//! everything needed to verify later calls, so nothing per session is stored and any replica
//! holding the key ring verifies any session. The session's secret access key is derived with the
//! same key (HMAC) from the access key id and a digest of the whole sealed token, so it is never
//! stored either, and a secret is good for its own token only: knowing the secret of one session
//! says nothing of another's, even one with the same access key id.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::crypto::random_bytes;

const TOKEN_VERSION: u8 = 1;
const AAD: &[u8] = b"podiam-session-token-v1";
/// Bytes of the binary header: version (1) + key id (4) + nonce (12).
const HEADER: usize = 1 + 4 + NONCE_LEN;

/// What a session is: everything later calls need, sealed into its token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionClaims {
    /// The session's access key id (`ASIA...`).
    #[serde(rename = "k")]
    pub access_key_id: String,
    /// Account of the role.
    #[serde(rename = "a")]
    pub account: String,
    /// Role name.
    #[serde(rename = "r")]
    pub role_name: String,
    /// Role path.
    #[serde(rename = "p")]
    pub role_path: String,
    /// Role unique id (`AROA...`).
    #[serde(rename = "ri")]
    pub role_id: String,
    /// Session name.
    #[serde(rename = "s")]
    pub session_name: String,
    /// Issue time (unix seconds).
    #[serde(rename = "i")]
    pub issued: i64,
    /// Expiry (unix seconds).
    #[serde(rename = "e")]
    pub expires: i64,
    /// Session tags (key → value; keys unique case-insensitively).
    #[serde(rename = "t", default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Keys of `tags` that pass to chained sessions.
    #[serde(rename = "tt", default, skip_serializing_if = "Vec::is_empty")]
    pub transitive: Vec<String>,
    /// Source identity.
    #[serde(rename = "si", default, skip_serializing_if = "Option::is_none")]
    pub source_identity: Option<String>,
    /// Inline session policy.
    #[serde(rename = "sp", default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// Managed session policy ARNs.
    #[serde(rename = "sa", default, skip_serializing_if = "Vec::is_empty")]
    pub policy_arns: Vec<String>,
    /// The unique ids (`ANPA...`) of `policy_arns`' policies when the session was minted, in the
    /// same order (empty where none existed): a policy deleted and re-created under the same ARN
    /// is another policy, and reads as absent for this session.
    #[serde(rename = "sq", default, skip_serializing_if = "Vec::is_empty")]
    pub policy_ids: Vec<String>,
    /// `true` when this session was made from another role session (role chaining).
    #[serde(rename = "c", default)]
    pub chained: bool,
    /// For web-identity sessions: the IAM OIDC provider ARN.
    #[serde(rename = "f", default, skip_serializing_if = "Option::is_none")]
    pub federated_provider: Option<String>,
}

impl SessionClaims {
    /// `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`.
    pub fn arn(&self) -> String {
        format!(
            "arn:aws:sts::{}:assumed-role/{}/{}",
            self.account, self.role_name, self.session_name
        )
    }
    /// `arn:aws:iam::ACCOUNT:role/PATH/ROLE`.
    pub fn role_arn(&self) -> String {
        format!(
            "arn:aws:iam::{}:role{}{}",
            self.account, self.role_path, self.role_name
        )
    }
    /// `ROLEID:SESSION`.
    pub fn user_id(&self) -> String {
        format!("{}:{}", self.role_id, self.session_name)
    }
}

/// Why a session token was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// Malformed, tampered, or sealed with an unknown key.
    #[error("the security token included in the request is invalid")]
    Invalid,
    /// Past its expiry.
    #[error("the security token included in the request is expired")]
    Expired,
}

/// One session key.
pub struct SessionKeyMaterial {
    id: u32,
    active_from: i64,
    aead: LessSafeKey,
    secret_key: hmac::Key,
}

impl std::fmt::Debug for SessionKeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKeyMaterial")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl SessionKeyMaterial {
    /// Build from 32 key bytes.
    pub fn new(id: u32, bytes: &[u8; 32]) -> Option<Self> {
        let aead = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, bytes).ok()?);
        // Separate keys for the two uses, both derived from the stored bytes.
        let derive = hmac::Key::new(hmac::HMAC_SHA256, bytes);
        let secret_bytes = hmac::sign(&derive, b"podiam session secret derivation v1");
        Some(Self {
            id,
            active_from: 0,
            aead,
            secret_key: hmac::Key::new(hmac::HMAC_SHA256, secret_bytes.as_ref()),
        })
    }
    /// The key mints only from `unix_secs` on (it verifies at once).
    #[must_use]
    pub fn active_from(mut self, unix_secs: i64) -> Self {
        self.active_from = unix_secs;
        self
    }
    /// The key id.
    pub fn id(&self) -> u32 {
        self.id
    }
}

/// The session keys in force: the newest signs, all verify (rotation with overlap).
#[derive(Debug, Default)]
pub struct SessionKeyring {
    keys: Vec<SessionKeyMaterial>,
    opened: OpenedTokens,
}

/// What opening a token gave, for the same text again: a session signs many calls, and opening
/// one (base64, AES-GCM, JSON, the secret's HMAC over the token's SHA-256) is most of what
/// checking such a call costs. Only tokens that opened are kept, by their exact text, in the
/// ring that opened them, so a rotation or a retirement (which builds a new ring) starts empty;
/// expiry is checked on every use. Bounded: cleared when it would pass [`OpenedTokens::MAX`].
#[derive(Default)]
struct OpenedTokens {
    map: parking_lot::RwLock<HashMap<Box<str>, Opened, foldhash::fast::RandomState>>,
}

/// An opened token: its claims and its secret.
type Opened = (Arc<SessionClaims>, Arc<str>);

impl OpenedTokens {
    const MAX: usize = 16_384;

    fn get(&self, token: &str) -> Option<Opened> {
        self.map
            .read()
            .get(token)
            .map(|(c, s)| (Arc::clone(c), Arc::clone(s)))
    }

    fn insert(&self, token: &str, opened: &Opened) {
        let mut map = self.map.write();
        if map.len() >= Self::MAX {
            map.clear();
        }
        map.insert(token.into(), (Arc::clone(&opened.0), Arc::clone(&opened.1)));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.read().len()
    }
}

impl std::fmt::Debug for OpenedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedTokens").finish_non_exhaustive()
    }
}

impl SessionKeyring {
    /// A ring with these keys; the active one with the highest id mints.
    pub fn new(mut keys: Vec<SessionKeyMaterial>) -> Self {
        keys.sort_by_key(|k| k.id);
        Self {
            keys,
            opened: OpenedTokens::default(),
        }
    }

    /// The key that mints at `now`: the newest active one (the oldest if none is active yet).
    fn current(&self, now: i64) -> Option<&SessionKeyMaterial> {
        self.keys
            .iter()
            .rev()
            .find(|k| k.active_from <= now)
            .or_else(|| self.keys.first())
    }

    fn by_id(&self, id: u32) -> Option<&SessionKeyMaterial> {
        self.keys.iter().find(|k| k.id == id)
    }

    /// The secret access key of the session whose sealed token is `raw` (40 characters, like
    /// AWS's): HMAC over the access key id and the SHA-256 of every byte of the token.
    fn derive_secret(k: &SessionKeyMaterial, access_key_id: &str, raw: &[u8]) -> String {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, raw);
        let mut ctx = hmac::Context::with_key(&k.secret_key);
        ctx.update(access_key_id.as_bytes());
        ctx.update(&[0]);
        ctx.update(digest.as_ref());
        let mut s = STANDARD.encode(ctx.sign().as_ref());
        s.truncate(40);
        s
    }

    /// Mint a token for `claims`. Returns `(session token, secret access key)`.
    pub fn mint(&self, claims: &SessionClaims) -> Option<(String, String)> {
        let k = self.current(claims.issued)?;
        let plain = serde_json::to_vec(claims).ok()?;
        let nonce = random_bytes::<NONCE_LEN>().ok()?;
        let mut buf = Vec::with_capacity(HEADER + plain.len() + 16);
        buf.push(TOKEN_VERSION);
        buf.extend_from_slice(&k.id.to_be_bytes());
        buf.extend_from_slice(&nonce);
        let mut body = plain;
        k.aead
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(AAD),
                &mut body,
            )
            .ok()?;
        buf.extend_from_slice(&body);
        let secret = Self::derive_secret(k, &claims.access_key_id, &buf);
        Some((STANDARD.encode(buf), secret))
    }

    /// Open a token; checks integrity and expiry. Returns the claims and the session's secret
    /// access key.
    pub fn open(&self, token: &str, now: i64) -> Result<Opened, SessionError> {
        // AWS session tokens are at most a few KiB; refuse before decoding anything large.
        if token.len() > 8192 {
            return Err(SessionError::Invalid);
        }
        if let Some(opened) = self.opened.get(token) {
            if now >= opened.0.expires {
                return Err(SessionError::Expired);
            }
            return Ok(opened);
        }
        let (claims, secret) = self.open_sealed(token, now)?;
        let opened: Opened = (Arc::new(claims), secret.into());
        self.opened.insert(token, &opened);
        Ok(opened)
    }

    /// Open a token from its bytes (what [`SessionKeyring::open`] does on a miss).
    fn open_sealed(&self, token: &str, now: i64) -> Result<(SessionClaims, String), SessionError> {
        let raw = STANDARD.decode(token).map_err(|_| SessionError::Invalid)?;
        let (header, body) = raw.split_at_checked(HEADER).ok_or(SessionError::Invalid)?;
        let (version, rest) = header.split_first().ok_or(SessionError::Invalid)?;
        if *version != TOKEN_VERSION {
            return Err(SessionError::Invalid);
        }
        let (id_bytes, nonce) = rest.split_at_checked(4).ok_or(SessionError::Invalid)?;
        let id = u32::from_be_bytes(id_bytes.try_into().map_err(|_| SessionError::Invalid)?);
        let key = self.by_id(id).ok_or(SessionError::Invalid)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SessionError::Invalid)?;
        let mut buf = body.to_vec();
        let plain = key
            .aead
            .open_in_place(nonce, Aad::from(AAD), &mut buf)
            .map_err(|_| SessionError::Invalid)?;
        let claims: SessionClaims =
            serde_json::from_slice(plain).map_err(|_| SessionError::Invalid)?;
        if now >= claims.expires {
            return Err(SessionError::Expired);
        }
        let secret = Self::derive_secret(key, &claims.access_key_id, &raw);
        Ok((claims, secret))
    }
}

#[cfg(test)]
impl SessionClaims {
    /// A session of role `role` (account 111122223333, path `/`) named `session`, issued at
    /// 1000 for an hour, with nothing else: for tests.
    pub(crate) fn example(role: &str, session: &str) -> Self {
        Self {
            access_key_id: "ASIAEXAMPLE123456789".into(),
            account: "111122223333".into(),
            role_name: role.into(),
            role_path: "/".into(),
            role_id: "AROAEXAMPLE".into(),
            session_name: session.into(),
            issued: 1000,
            expires: 4600,
            tags: BTreeMap::new(),
            transitive: vec![],
            source_identity: None,
            policy: None,
            policy_arns: vec![],
            policy_ids: vec![],
            chained: false,
            federated_provider: None,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn claims() -> SessionClaims {
        SessionClaims {
            tags: BTreeMap::from([("team".into(), "a".into())]),
            transitive: vec!["team".into()],
            ..SessionClaims::example("r", "s")
        }
    }

    fn key_id(token: &str) -> u32 {
        let raw = STANDARD.decode(token).unwrap();
        u32::from_be_bytes(raw[1..5].try_into().unwrap())
    }

    fn ring(id: u32, b: u8) -> SessionKeyring {
        SessionKeyring::new(vec![SessionKeyMaterial::new(id, &[b; 32]).unwrap()])
    }

    #[test]
    fn mint_open_round_trip_and_secret_derivation() {
        let r = ring(1, 7);
        let (tok, secret) = r.mint(&claims()).unwrap();
        let (c, opened) = r.open(&tok, 2000).unwrap();
        assert_eq!(*c, claims());
        assert_eq!(&*opened, secret.as_str());
        assert_eq!(secret.len(), 40);
        // The same claims sealed again (another nonce) have another secret: a secret binds
        // its own token, not the access key id alone.
        let (tok2, secret2) = r.mint(&claims()).unwrap();
        assert_ne!(tok2, tok);
        assert_ne!(secret2, secret);
        assert_eq!(&*r.open(&tok2, 2000).unwrap().1, secret2.as_str());
        assert_eq!(c.arn(), "arn:aws:sts::111122223333:assumed-role/r/s");
    }

    #[test]
    fn any_modified_byte_is_rejected() {
        let r = ring(1, 7);
        let (tok, _) = r.mint(&claims()).unwrap();
        let raw = STANDARD.decode(&tok).unwrap();
        for i in 0..raw.len() {
            let mut m = raw.clone();
            m[i] ^= 0x01;
            assert_eq!(
                r.open(&STANDARD.encode(&m), 2000).unwrap_err(),
                SessionError::Invalid,
                "byte {i}"
            );
        }
        assert_eq!(
            r.open(&tok[..tok.len() - 4], 2000).unwrap_err(),
            SessionError::Invalid
        );
        assert_eq!(r.open("", 2000).unwrap_err(), SessionError::Invalid);
        assert_eq!(r.open("!!!", 2000).unwrap_err(), SessionError::Invalid);
        assert_eq!(
            r.open(&"A".repeat(9000), 2000).unwrap_err(),
            SessionError::Invalid
        );
    }

    #[test]
    fn expiry_and_foreign_keys() {
        let r = ring(1, 7);
        let (tok, _) = r.mint(&claims()).unwrap();
        assert_eq!(r.open(&tok, 4600).unwrap_err(), SessionError::Expired);
        assert!(r.open(&tok, 4599).is_ok());
        assert_eq!(
            ring(1, 8).open(&tok, 2000).unwrap_err(),
            SessionError::Invalid,
            "same id, other key"
        );
        assert_eq!(
            ring(2, 7).open(&tok, 2000).unwrap_err(),
            SessionError::Invalid,
            "unknown key id"
        );
    }

    #[test]
    fn an_opened_token_is_answered_again_from_memory_until_it_expires() {
        let r = ring(1, 7);
        let (tok, secret) = r.mint(&claims()).unwrap();
        let (first, s1) = r.open(&tok, 2000).unwrap();
        assert_eq!(r.opened.len(), 1);
        let (again, s2) = r.open(&tok, 2001).unwrap();
        assert!(
            Arc::ptr_eq(&first, &again),
            "the second open is the first one's answer"
        );
        assert_eq!((&*s1, &*s2), (secret.as_str(), secret.as_str()));
        // Expiry is checked on every use, cached or not.
        assert_eq!(r.open(&tok, 4600).unwrap_err(), SessionError::Expired);
        assert!(r.open(&tok, 4599).is_ok());
        // Only tokens that opened are kept: a modified one is refused every time.
        let mut raw = STANDARD.decode(&tok).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        let bad = STANDARD.encode(&raw);
        for _ in 0..2 {
            assert_eq!(r.open(&bad, 2000).unwrap_err(), SessionError::Invalid);
        }
        assert_eq!(r.opened.len(), 1);
        // A ring without the key (a retirement builds a new ring) has nothing cached.
        assert_eq!(
            ring(2, 9).open(&tok, 2000).unwrap_err(),
            SessionError::Invalid
        );
    }

    #[test]
    fn the_opened_tokens_stay_bounded() {
        let r = ring(1, 7);
        for i in 0..OpenedTokens::MAX + 10 {
            let mut c = claims();
            c.session_name = format!("s{i}");
            let (tok, _) = r.mint(&c).unwrap();
            assert_eq!(r.open(&tok, 2000).unwrap().0.session_name, c.session_name);
        }
        assert!(r.opened.len() <= OpenedTokens::MAX, "{}", r.opened.len());
    }

    #[test]
    fn rotation_keeps_old_tokens_valid() {
        let old = ring(1, 7);
        let (tok, secret) = old.mint(&claims()).unwrap();
        let both = SessionKeyring::new(vec![
            SessionKeyMaterial::new(2, &[9; 32]).unwrap(),
            SessionKeyMaterial::new(1, &[7; 32]).unwrap(),
        ]);
        let (_, opened) = both.open(&tok, 2000).unwrap();
        assert_eq!(
            &*opened,
            secret.as_str(),
            "an old key still verifies its sessions"
        );
        let (tok2, _) = both.mint(&claims()).unwrap();
        assert_eq!(key_id(&tok2), 2, "newest key mints");
    }

    #[test]
    fn a_rotated_key_mints_only_once_active() {
        let ring = SessionKeyring::new(vec![
            SessionKeyMaterial::new(1, &[7; 32]).unwrap(),
            SessionKeyMaterial::new(2, &[9; 32])
                .unwrap()
                .active_from(1002),
        ]);
        let mut c = claims();
        c.issued = 1001;
        let (early, _) = ring.mint(&c).unwrap();
        assert_eq!(key_id(&early), 1, "before activation the old key mints");
        c.issued = 1002;
        let (late, _) = ring.mint(&c).unwrap();
        assert_eq!(key_id(&late), 2, "from activation the new key mints");
        let only_future = SessionKeyring::new(vec![
            SessionKeyMaterial::new(3, &[1; 32])
                .unwrap()
                .active_from(5000),
        ]);
        assert!(
            only_future.mint(&claims()).is_some(),
            "a lone key mints even before its activation"
        );
    }
}
