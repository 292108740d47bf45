//! Client side: signing a request in the `Authorization` header form, or presigning it into
//! its query string. Used by podiam's own agent and by tests; it shares the canonicalization
//! code with the verifier.

use crate::canonical::{Canon, capacity_hint, encode_str, write_canonical_request};
use crate::parse::Scope;
use crate::verify::{build_string_to_sign, sha256_hex, sign_string, signing_key};
use crate::{ALGORITHM, Options, Request, UNSIGNED_PAYLOAD};

/// Headers never signed (they are replaced, hop-by-hop, or commonly rewritten by proxies).
const NOT_SIGNED: &[&str] = &[
    "authorization",
    "user-agent",
    "x-amzn-trace-id",
    "expect",
    "transfer-encoding",
    "connection",
];

/// Headers the signer sets itself; any such header in the input request is ignored.
const REPLACED: &[&str] = &["x-amz-date", "x-amz-security-token", "x-amz-content-sha256"];

/// Everything needed to sign besides the request. `Debug` leaves the secret key and the session
/// token out.
#[derive(Clone, Copy)]
pub struct SigningParams<'a> {
    /// The access key id.
    pub access_key_id: &'a str,
    /// The secret access key.
    pub secret_access_key: &'a str,
    /// The session token of temporary credentials, if any.
    pub session_token: Option<&'a str>,
    /// The region for the credential scope.
    pub region: &'a str,
    /// The service for the credential scope.
    pub service: &'a str,
    /// The request time, `YYYYMMDDTHHMMSSZ`.
    pub amz_date: &'a str,
    /// Add (and sign) an `x-amz-content-sha256` header (header form only).
    pub content_sha256_header: bool,
    /// Canonicalization knobs; use [`Options::default`] for STS/IAM/EKS.
    pub options: Options,
}

impl std::fmt::Debug for SigningParams<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningParams")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"...")
            .field("session_token", &self.session_token.map(|_| "..."))
            .field("region", &self.region)
            .field("service", &self.service)
            .field("amz_date", &self.amz_date)
            .field("content_sha256_header", &self.content_sha256_header)
            .field("options", &self.options)
            .finish()
    }
}

impl<'a> SigningParams<'a> {
    /// Parameters with no session token, no `x-amz-content-sha256`, default options.
    pub const fn new(
        access_key_id: &'a str,
        secret_access_key: &'a str,
        region: &'a str,
        service: &'a str,
        amz_date: &'a str,
    ) -> Self {
        Self {
            access_key_id,
            secret_access_key,
            session_token: None,
            region,
            service,
            amz_date,
            content_sha256_header: false,
            options: Options::DEFAULT,
        }
    }

    fn scope(&self) -> Scope<'a> {
        Scope {
            date: self.amz_date.get(..8).unwrap_or(self.amz_date),
            region: self.region,
            service: self.service,
        }
    }

    fn credential(&self) -> String {
        let s = self.scope();
        format!(
            "{}/{}/{}/{}/aws4_request",
            self.access_key_id, s.date, s.region, s.service
        )
    }

    fn signature(&self, canon: &Canon<'_>) -> String {
        let mut creq = Vec::with_capacity(capacity_hint(canon));
        write_canonical_request(&mut creq, canon);
        let sts = build_string_to_sign(self.amz_date, self.scope(), &creq);
        let s = self.scope();
        let key = signing_key(self.secret_access_key, s.date, s.region, s.service);
        String::from_utf8_lossy(&sign_string(&key, &sts)).into_owned()
    }

    /// Signs `req` in the `Authorization` header form. Returns the headers to add, lowercase:
    /// `authorization`, `x-amz-date`, then `x-amz-security-token` and `x-amz-content-sha256`
    /// when applicable. They replace any header of the same name in `req` (which the signer
    /// ignored).
    ///
    /// Every other header of `req` is signed, except `authorization`, `user-agent`,
    /// `x-amzn-trace-id`, `expect`, `transfer-encoding` and `connection`. `req` must carry a
    /// `host` header for the result to verify.
    pub fn sign(&self, req: &Request<'_>) -> Vec<(String, String)> {
        let body_hash = sha256_hex(req.body);
        let mut headers: Vec<(&str, &[u8])> = req
            .headers
            .iter()
            .filter(|(n, _)| !REPLACED.iter().any(|r| n.eq_ignore_ascii_case(r)))
            .copied()
            .collect();
        headers.push(("x-amz-date", self.amz_date.as_bytes()));
        let mut skip: Vec<String> = Vec::new();
        if let Some(token) = self.session_token {
            headers.push(("x-amz-security-token", token.as_bytes()));
            if self.options.unsigned_session_token {
                skip.push("x-amz-security-token".to_owned());
            }
        }
        if self.content_sha256_header {
            headers.push(("x-amz-content-sha256", &body_hash));
        }
        let signed_headers = signed_header_list(&headers, &skip);

        let canon = Canon {
            method: req.method,
            path: req.path,
            query: req.query,
            headers: &headers,
            signed_headers: &signed_headers,
            payload_hash: &body_hash,
            exclude_signature: false,
            exclude_token: false,
            options: self.options,
        };
        let signature = self.signature(&canon);

        let mut out = vec![
            (
                "authorization".to_owned(),
                format!(
                    "{ALGORITHM} Credential={}, SignedHeaders={signed_headers}, Signature={signature}",
                    self.credential()
                ),
            ),
            ("x-amz-date".to_owned(), self.amz_date.to_owned()),
        ];
        if let Some(token) = self.session_token {
            out.push(("x-amz-security-token".to_owned(), token.to_owned()));
        }
        if self.content_sha256_header {
            out.push((
                "x-amz-content-sha256".to_owned(),
                String::from_utf8_lossy(&body_hash).into_owned(),
            ));
        }
        out
    }

    /// Presigns `req`: returns its new raw query string — the original query followed by
    /// `X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`, `X-Amz-SignedHeaders`,
    /// `X-Amz-Expires`, `X-Amz-Security-Token` (if any) and `X-Amz-Signature`.
    ///
    /// The payload hash is the body's SHA-256 (as the SDKs do for non-S3 services), or
    /// `UNSIGNED-PAYLOAD` with [`Options::presigned_unsigned_payload`].
    pub fn presign(&self, req: &Request<'_>, expires_secs: u32) -> String {
        let headers: Vec<(&str, &[u8])> = req
            .headers
            .iter()
            .filter(|(n, _)| !REPLACED.iter().any(|r| n.eq_ignore_ascii_case(r)))
            .copied()
            .collect();
        let signed_headers = signed_header_list(&headers, &[]);
        let mut query = String::with_capacity(req.query.len() + 256);
        query.push_str(req.query);
        if !query.is_empty() {
            query.push('&');
        }
        query.push_str("X-Amz-Algorithm=");
        query.push_str(ALGORITHM);
        query.push_str("&X-Amz-Credential=");
        query.push_str(&encode_str(&self.credential()));
        query.push_str("&X-Amz-Date=");
        query.push_str(&encode_str(self.amz_date));
        query.push_str("&X-Amz-SignedHeaders=");
        query.push_str(&encode_str(&signed_headers));
        query.push_str(&format!("&X-Amz-Expires={expires_secs}"));
        if let Some(token) = self.session_token {
            query.push_str("&X-Amz-Security-Token=");
            query.push_str(&encode_str(token));
        }
        let body_hash;
        let payload: &[u8] = if self.options.presigned_unsigned_payload {
            UNSIGNED_PAYLOAD.as_bytes()
        } else {
            body_hash = sha256_hex(req.body);
            &body_hash
        };
        let canon = Canon {
            method: req.method,
            path: req.path,
            query: &query,
            headers: &headers,
            signed_headers: &signed_headers,
            payload_hash: payload,
            exclude_signature: true,
            exclude_token: self.options.unsigned_session_token,
            options: self.options,
        };
        let signature = self.signature(&canon);
        query.push_str("&X-Amz-Signature=");
        query.push_str(&signature);
        query
    }
}

/// The sorted, deduplicated, lowercase names of `headers`, minus [`NOT_SIGNED`] and `skip`.
fn signed_header_list(headers: &[(&str, &[u8])], skip: &[String]) -> String {
    let mut names: Vec<String> = headers
        .iter()
        .map(|(n, _)| n.to_ascii_lowercase())
        .filter(|n| !NOT_SIGNED.contains(&n.as_str()) && !skip.contains(n))
        .collect();
    names.sort_unstable();
    names.dedup();
    names.join(";")
}

/// Signs `req` in the `Authorization` header form with default options; see
/// [`SigningParams::sign`] for which headers are signed and returned.
pub fn sign(
    req: &Request<'_>,
    access_key_id: &str,
    secret_access_key: &str,
    session_token: Option<&str>,
    region: &str,
    service: &str,
    amz_date: &str,
) -> Vec<(String, String)> {
    SigningParams {
        session_token,
        ..SigningParams::new(access_key_id, secret_access_key, region, service, amz_date)
    }
    .sign(req)
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )]
    use super::*;

    #[test]
    fn signing_params_debug_leaves_the_secrets_out() {
        let mut p = SigningParams::new(
            "ASIAEXAMPLEEXAMPLE01",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "us-east-1",
            "sts",
            "20260101T000000Z",
        );
        p.session_token = Some("IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKEN");
        let shown = format!("{p:?} {p:#?}");
        assert!(!shown.contains("wJalrXUtnFEMI"), "{shown}");
        assert!(!shown.contains("IQoJb3JpZ2lu"), "{shown}");
        assert!(
            shown.contains("ASIAEXAMPLEEXAMPLE01")
                && shown.contains("session_token: Some(\"...\")"),
            "{shown}"
        );
    }
}
