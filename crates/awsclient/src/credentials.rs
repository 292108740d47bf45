//! AWS credentials from the standard chain: environment variables, then the shared files'
//! profile, then web identity (IRSA) from the environment or the profile. The agent signs its
//! EKS Auth calls with them (its node credentials), the webhook its EKS calls, the tools their
//! calls to podiam. [`CredentialsProvider`] re-resolves periodically: shared files every
//! `reread` (so rotated files are picked up), web identity credentials 5 minutes before they
//! expire.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, parse_rfc3339};
use crate::config::{Env, Profile};
use crate::endpoint::{Service, resolve_endpoint};

/// AWS credentials. `Debug` shows the access key id only.
#[derive(Clone, PartialEq, Eq)]
pub struct AwsCredentials {
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
    /// The session token of temporary credentials.
    pub session_token: Option<String>,
    /// When temporary credentials expire, Unix seconds.
    pub expiration: Option<i64>,
}

impl std::fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .field("expiration", &self.expiration)
            .finish()
    }
}

impl AwsCredentials {
    /// Long-term credentials.
    pub fn new(access_key_id: impl Into<String>, secret_access_key: impl Into<String>) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            session_token: None,
            expiration: None,
        }
    }

    fn usable_at(&self, now_ms: i64) -> bool {
        self.expiration
            .is_none_or(|e| e.saturating_mul(1000) > now_ms)
    }
}

/// Where the node credentials came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialSource {
    /// Given to the provider (fixed credentials).
    Static,
    /// `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` [/ `AWS_SESSION_TOKEN`].
    Environment,
    /// The shared credentials/config files' profile.
    SharedFiles,
    /// `AssumeRoleWithWebIdentity` (environment or profile settings).
    WebIdentity,
}

/// Credentials and their source.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The credentials.
    pub credentials: AwsCredentials,
    /// Their source.
    pub source: CredentialSource,
}

/// Why no node credentials could be had.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CredentialsError {
    /// No source in the chain is configured.
    #[error("no node credentials found ({0})")]
    NotFound(String),
    /// A source is configured but incomplete or unreadable.
    #[error("invalid credentials configuration: {0}")]
    Config(String),
    /// The web identity exchange failed.
    #[error("web identity: {0}")]
    WebIdentity(String),
}

struct WebIdentitySettings {
    token_file: String,
    role_arn: String,
    session_name: Option<String>,
}

/// Resolves the chain once: environment → profile keys → web identity (environment, then
/// profile). `region` selects the STS endpoint when none is configured
/// ([`crate::endpoint::configured_endpoint`]).
pub async fn resolve_chain(
    env: &Env,
    region: &str,
    http: &reqwest::Client,
    clock: &Clock,
) -> Result<Resolved, CredentialsError> {
    let mut tried = Vec::new();
    match (
        env.get("AWS_ACCESS_KEY_ID"),
        env.get("AWS_SECRET_ACCESS_KEY"),
    ) {
        (Some(a), Some(s)) => {
            return Ok(Resolved {
                credentials: AwsCredentials {
                    session_token: env.get("AWS_SESSION_TOKEN").map(str::to_owned),
                    ..AwsCredentials::new(a, s)
                },
                source: CredentialSource::Environment,
            });
        }
        (Some(_), None) => {
            return Err(CredentialsError::Config(
                "AWS_ACCESS_KEY_ID is set without AWS_SECRET_ACCESS_KEY".into(),
            ));
        }
        _ => tried.push("environment: AWS_ACCESS_KEY_ID not set"),
    }
    let profile = Profile::load(env);
    match (
        profile.get("aws_access_key_id"),
        profile.get("aws_secret_access_key"),
    ) {
        (Some(a), Some(s)) => {
            return Ok(Resolved {
                credentials: AwsCredentials {
                    session_token: profile.get("aws_session_token").map(str::to_owned),
                    ..AwsCredentials::new(a, s)
                },
                source: CredentialSource::SharedFiles,
            });
        }
        (Some(_), None) => {
            return Err(CredentialsError::Config(format!(
                "profile {:?} has aws_access_key_id but no aws_secret_access_key",
                env.profile_name()
            )));
        }
        _ if profile.found => tried.push("shared files: the profile has no static keys"),
        _ => tried.push("shared files: profile not found"),
    }
    let web = if let Some(file) = env.get("AWS_WEB_IDENTITY_TOKEN_FILE") {
        let Some(role) = env.get("AWS_ROLE_ARN") else {
            return Err(CredentialsError::Config(
                "AWS_WEB_IDENTITY_TOKEN_FILE is set without AWS_ROLE_ARN".into(),
            ));
        };
        Some(WebIdentitySettings {
            token_file: file.to_owned(),
            role_arn: role.to_owned(),
            session_name: env.get("AWS_ROLE_SESSION_NAME").map(str::to_owned),
        })
    } else if let (Some(file), Some(role)) = (
        profile.get("web_identity_token_file"),
        profile.get("role_arn"),
    ) {
        Some(WebIdentitySettings {
            token_file: file.to_owned(),
            role_arn: role.to_owned(),
            session_name: profile.get("role_session_name").map(str::to_owned),
        })
    } else {
        tried.push("web identity: AWS_WEB_IDENTITY_TOKEN_FILE not set");
        None
    };
    if let Some(w) = web {
        let credentials = assume_role_with_web_identity(env, region, http, clock, &w).await?;
        return Ok(Resolved {
            credentials,
            source: CredentialSource::WebIdentity,
        });
    }
    Err(CredentialsError::NotFound(tried.join("; ")))
}

async fn assume_role_with_web_identity(
    env: &Env,
    region: &str,
    http: &reqwest::Client,
    clock: &Clock,
    w: &WebIdentitySettings,
) -> Result<AwsCredentials, CredentialsError> {
    let token = tokio::fs::read_to_string(&w.token_file)
        .await
        .map_err(|e| {
            CredentialsError::WebIdentity(format!(
                "cannot read the token file {}: {e}",
                w.token_file
            ))
        })?;
    let session = w
        .session_name
        .clone()
        .unwrap_or_else(|| format!("podiam-agent-{}", clock.now_ms()));
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("Action", "AssumeRoleWithWebIdentity")
        .append_pair("Version", "2011-06-15")
        .append_pair("RoleArn", &w.role_arn)
        .append_pair("RoleSessionName", &session)
        .append_pair("WebIdentityToken", token.trim())
        .finish();
    let url = format!("{}/", resolve_endpoint(None, env, Service::Sts, region));
    let resp = http
        .post(&url)
        .header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .timeout(Duration::from_secs(10))
        .body(body)
        .send()
        .await
        .map_err(|e| CredentialsError::WebIdentity(format!("calling {url}: {e}")))?;
    let status = resp.status();
    let text = resp
        .text()
        .await
        .map_err(|e| CredentialsError::WebIdentity(format!("reading the STS response: {e}")))?;
    if !status.is_success() {
        let code = xml_tag(&text, "Code").unwrap_or_default();
        let message = xml_tag(&text, "Message").unwrap_or_default();
        return Err(CredentialsError::WebIdentity(format!(
            "STS answered {status}: {code}: {message}"
        )));
    }
    parse_sts_credentials(&text)
        .ok_or_else(|| CredentialsError::WebIdentity("unparseable STS response".into()))
}

/// Extracts the `<Credentials>` of an STS `Assume*` XML response.
pub fn parse_sts_credentials(xml: &str) -> Option<AwsCredentials> {
    let section = xml_section(xml, "Credentials")?;
    Some(AwsCredentials {
        access_key_id: xml_tag(section, "AccessKeyId")?,
        secret_access_key: xml_tag(section, "SecretAccessKey")?,
        session_token: Some(xml_tag(section, "SessionToken")?),
        expiration: Some(parse_rfc3339(&xml_tag(section, "Expiration")?)?),
    })
}

/// The raw inner text of the first `<name>...</name>`.
fn xml_section<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = xml.find(&open)?.checked_add(open.len())?;
    let rest = xml.get(start..)?;
    let end = rest.find(&close)?;
    rest.get(..end)
}

/// The unescaped text of the first `<name>...</name>`.
fn xml_tag(xml: &str, name: &str) -> Option<String> {
    xml_section(xml, name).map(|s| xml_unescape(s.trim()))
}

fn xml_unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(rest.get(..i).unwrap_or_default());
        let after = rest.get(i..).unwrap_or_default();
        let Some(semi) = after.find(';') else {
            out.push_str(after);
            return out;
        };
        let entity = after.get(1..semi).unwrap_or_default();
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            e => e
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| e.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = after.get(semi.saturating_add(1)..).unwrap_or_default();
            }
            None => {
                out.push('&');
                rest = after.get(1..).unwrap_or_default();
            }
        }
    }
    out.push_str(rest);
    out
}

struct State {
    current: Option<(Arc<AwsCredentials>, CredentialSource)>,
    /// When to re-resolve (Unix ms).
    next_refresh_ms: i64,
    last_error: Option<CredentialsError>,
}

/// A credentials provider: caches the chain's answer and re-resolves it when due.
pub struct CredentialsProvider {
    fixed: Option<AwsCredentials>,
    env: Env,
    region: String,
    http: reqwest::Client,
    clock: Clock,
    reread_ms: i64,
    retry_ms: i64,
    state: parking_lot::RwLock<State>,
    refresh: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for CredentialsProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialsProvider")
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

/// Refresh web identity credentials this long before they expire.
const WEB_IDENTITY_MARGIN_MS: i64 = 5 * 60 * 1000;

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl CredentialsProvider {
    /// A provider over `env` (or always `fixed`, when given).
    pub fn new(
        fixed: Option<AwsCredentials>,
        env: Env,
        region: String,
        http: reqwest::Client,
        clock: Clock,
        reread: Duration,
        retry: Duration,
    ) -> Self {
        Self {
            fixed,
            env,
            region,
            http,
            clock,
            reread_ms: millis(reread),
            retry_ms: millis(retry),
            state: parking_lot::RwLock::new(State {
                current: None,
                next_refresh_ms: i64::MIN,
                last_error: None,
            }),
            refresh: tokio::sync::Mutex::new(()),
        }
    }

    /// Whether credentials are currently held and not expired.
    pub fn is_resolved(&self) -> bool {
        let now = self.clock.now_ms();
        self.state
            .read()
            .current
            .as_ref()
            .is_some_and(|(c, _)| c.usable_at(now))
    }

    /// The source of the credentials held, if any.
    pub fn source(&self) -> Option<CredentialSource> {
        self.state.read().current.as_ref().map(|(_, s)| *s)
    }

    fn cached(&self, now: i64) -> Option<Result<Arc<AwsCredentials>, CredentialsError>> {
        let s = self.state.read();
        if s.next_refresh_ms > now {
            match (&s.current, &s.last_error) {
                (Some((c, _)), _) if c.usable_at(now) => return Some(Ok(Arc::clone(c))),
                (_, Some(e)) => return Some(Err(e.clone())),
                _ => {}
            }
        }
        None
    }

    /// The current credentials, re-resolving the chain when due. When re-resolution fails,
    /// the held credentials are kept while they are valid.
    pub async fn get(&self) -> Result<Arc<AwsCredentials>, CredentialsError> {
        if let Some(r) = self.cached(self.clock.now_ms()) {
            return r;
        }
        let _guard = self.refresh.lock().await;
        let now = self.clock.now_ms();
        if let Some(r) = self.cached(now) {
            return r;
        }
        let resolved = match &self.fixed {
            Some(c) => Ok(Resolved {
                credentials: c.clone(),
                source: CredentialSource::Static,
            }),
            None => resolve_chain(&self.env, &self.region, &self.http, &self.clock).await,
        };
        let now = self.clock.now_ms();
        let mut s = self.state.write();
        match resolved {
            Ok(r) => {
                let next = match (r.source, r.credentials.expiration) {
                    (CredentialSource::Static | CredentialSource::Environment, None) => i64::MAX,
                    (CredentialSource::SharedFiles, _) => now.saturating_add(self.reread_ms),
                    (_, Some(exp)) => {
                        let exp_ms = exp.saturating_mul(1000);
                        let life = exp_ms.saturating_sub(now);
                        if life > 2 * WEB_IDENTITY_MARGIN_MS {
                            exp_ms - WEB_IDENTITY_MARGIN_MS
                        } else {
                            now.saturating_add((life / 2).max(1000))
                        }
                    }
                    (_, None) => now.saturating_add(self.reread_ms),
                };
                if s.current
                    .as_ref()
                    .is_none_or(|(c, _)| c.access_key_id != r.credentials.access_key_id)
                {
                    tracing::info!(source = ?r.source, access_key_id = %r.credentials.access_key_id, "node credentials resolved");
                }
                let creds = Arc::new(r.credentials);
                s.current = Some((Arc::clone(&creds), r.source));
                s.next_refresh_ms = next;
                s.last_error = None;
                Ok(creds)
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot resolve the node credentials");
                s.next_refresh_ms = now.saturating_add(self.retry_ms);
                s.last_error = Some(e.clone());
                match &s.current {
                    Some((c, _)) if c.usable_at(now) => Ok(Arc::clone(c)),
                    _ => Err(e),
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;

    #[test]
    fn parses_sts_xml() {
        let xml = r#"<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <Credentials>
      <SessionToken>tok&amp;en</SessionToken>
      <SecretAccessKey>s3cr3tv4lue</SecretAccessKey>
      <Expiration>2014-10-24T23:00:23Z</Expiration>
      <AccessKeyId>ASIAEXAMPLE</AccessKeyId>
    </Credentials>
  </AssumeRoleWithWebIdentityResult>
</AssumeRoleWithWebIdentityResponse>"#;
        let c = parse_sts_credentials(xml).unwrap();
        assert_eq!(c.access_key_id, "ASIAEXAMPLE");
        assert_eq!(c.session_token.as_deref(), Some("tok&en"));
        assert_eq!(c.expiration, Some(1_414_191_623));
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("s3cr3tv4lue") && !dbg.contains("tok&en"));
        assert_eq!(xml_unescape("a&lt;b&#65;&#x42;&bogus;c&"), "a<bAB&bogus;c&");
        assert!(parse_sts_credentials("<x/>").is_none());
    }
}
