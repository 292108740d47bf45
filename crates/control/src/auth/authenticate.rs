//! SigV4 authentication of signed requests: the access key, long-term or session, and the
//! caller it belongs to.

use std::sync::Arc;

use super::caller::{Caller, SigningScope};
use crate::Control;
use crate::audit::{FactsSlot, Identity};
use crate::error::{AwsError, ErrorCode, Result};
use crate::session::SessionError;

impl Control {
    /// Authenticate a SigV4-signed request. `Ok(None)` when the request is not signed at all.
    /// Notes in `audit` who called and with which key: the key the parser read and verification
    /// checked (a refused request's, when it had the shape of one), from this one parse.
    pub fn authenticate(
        &self,
        req: &podiam_sigv4::Request<'_>,
        scope: SigningScope<'_>,
        audit: &FactsSlot,
    ) -> Result<Option<Caller>> {
        let parsed = podiam_sigv4::parse(req);
        let result = match &parsed {
            Ok(Some(p)) => self.verify_signed(req, p, scope, None).map(Some),
            Ok(None) => Ok(None),
            Err(e) => Err(sigv4_error(e)),
        };
        audit.note(|f| {
            let akid = match &parsed {
                Ok(Some(p)) => Some(p.access_key_id()),
                _ => None,
            };
            f.identity = Some(match &result {
                Ok(Some(caller)) => Identity::Caller {
                    caller: caller.clone(),
                    access_key_id: akid.unwrap_or_default().to_owned(),
                },
                Ok(None) | Err(_) => Identity::Unknown {
                    access_key_id: akid.filter(|a| plausible_access_key(a)).map(str::to_owned),
                },
            });
        });
        result
    }

    /// [`Control::authenticate`], with a presigned request usable for `presigned_validity_secs`
    /// after its request time whatever its `X-Amz-Expires` says (as STS treats a presigned
    /// GetCallerIdentity). Every other check is the same.
    pub(crate) fn authenticate_signed(
        &self,
        req: &podiam_sigv4::Request<'_>,
        scope: SigningScope<'_>,
        presigned_validity_secs: Option<i64>,
    ) -> Result<Option<Caller>> {
        match podiam_sigv4::parse(req) {
            Ok(Some(p)) => self
                .verify_signed(req, &p, scope, presigned_validity_secs)
                .map(Some),
            Ok(None) => Ok(None),
            Err(e) => Err(sigv4_error(&e)),
        }
    }

    /// Verify a parsed signed request: its key or session, its signature, and the caller.
    fn verify_signed(
        &self,
        req: &podiam_sigv4::Request<'_>,
        parsed: &podiam_sigv4::Parsed<'_>,
        scope: SigningScope<'_>,
        presigned_validity_secs: Option<i64>,
    ) -> Result<Caller> {
        let now = self.now();
        let akid = parsed.access_key_id();
        // IAM and global STS sign with us-east-1; accept it beside the configured region.
        let regions = [self.config.region.as_str(), "us-east-1"];
        let expect = podiam_sigv4::Expectations {
            service: scope.service,
            regions: &regions,
            max_skew_secs: 300,
            options: podiam_sigv4::Options::default(),
            presigned_validity_secs,
        };
        if let Some(token) = parsed.security_token() {
            let ring = self.session_keyring();
            let (claims, secret) = ring.open(token, now).map_err(|e| match e {
                SessionError::Expired => AwsError::expired_session_token(),
                SessionError::Invalid => AwsError::invalid_client_token_id(),
            })?;
            if claims.access_key_id != akid {
                return Err(AwsError::invalid_client_token_id());
            }
            podiam_sigv4::verify(req, parsed, &secret, &expect, now)
                .map_err(|e| sigv4_error(&e))?;
            // A session lives only as long as its role: a session of a deleted role, or of a
            // role deleted and re-created under the same name (another unique id), is refused
            // on every path, before any policy is read.
            let alive = self
                .db
                .read()
                .roles
                .get(&(claims.account.clone(), claims.role_name.to_lowercase()))
                .is_some_and(|e| e.value.id == claims.role_id);
            if !alive {
                return Err(AwsError::invalid_client_token_id());
            }
            return Ok(Caller::Session(claims));
        }
        if akid.starts_with("ASIA") {
            // A temporary key without its session token.
            return Err(AwsError::invalid_client_token_id());
        }
        let key = self
            .db
            .read()
            .access_keys
            .get(akid)
            .map(|e| Arc::clone(&e.value));
        let key = key.ok_or_else(AwsError::invalid_client_token_id)?;
        if key.status != "Active" {
            return Err(AwsError::invalid_client_token_id());
        }
        let secret = self.open_sealed(&key.secret, &format!("access_key/{}", key.id))?;
        let secret = String::from_utf8(secret).map_err(|_| AwsError::service_failure())?;
        podiam_sigv4::verify(req, parsed, &secret, &expect, now).map_err(|e| sigv4_error(&e))?;
        match &key.user {
            None => Ok(Caller::Root {
                account: key.account.clone(),
            }),
            Some(name) => {
                let user = self
                    .db
                    .read()
                    .users
                    .get(&(key.account.clone(), name.to_lowercase()))
                    .map(|e| Arc::clone(&e.value));
                let user = user
                    .filter(|u| key.belongs_to(u))
                    .ok_or_else(AwsError::invalid_client_token_id)?;
                Ok(Caller::User {
                    account: key.account.clone(),
                    user,
                })
            }
        }
    }
}

/// Whether a refused request's access key id is worth recording (and indexing): the shape of
/// one, not arbitrary text.
fn plausible_access_key(akid: &str) -> bool {
    (16..=128).contains(&akid.len()) && akid.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Map a SigV4 error to the AWS error.
fn sigv4_error(e: &podiam_sigv4::Error) -> AwsError {
    use podiam_sigv4::ErrorKind;
    let code = match e.kind() {
        ErrorKind::MissingAuthenticationToken => ErrorCode::MissingAuthenticationToken,
        ErrorKind::IncompleteSignature => ErrorCode::IncompleteSignature,
        ErrorKind::SignatureDoesNotMatch => ErrorCode::SignatureDoesNotMatch,
        ErrorKind::AccessDenied => ErrorCode::AccessDenied,
    };
    AwsError::new(code, e.to_string())
}
