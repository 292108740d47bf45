//! The shape of an `aws eks get-token` token: `k8s-aws-v1.` and the unpadded base64url of a
//! presigned STS GetCallerIdentity URL, checked strictly before any secret or clock is used
//! (`super::authn` verifies the signature and maps the signer), and the refusal every check
//! gives: a reason for the server log, one generic text on the wire.

use base64::Engine as _;

/// The token prefix `aws eks get-token` and aws-iam-authenticator write.
pub const TOKEN_PREFIX: &str = "k8s-aws-v1.";
/// The longest token accepted, in characters: a presigned URL with a session token is about
/// 2-3 KB; anything far beyond is refused before decoding.
pub const MAX_TOKEN_CHARS: usize = 8192;
/// How long after its `X-Amz-Date` a token is accepted (STS: 15 minutes).
pub const TOKEN_VALIDITY_SECS: i64 = 900;
/// How far ahead of the server clock `X-Amz-Date` may be.
pub const TOKEN_MAX_FUTURE_SECS: i64 = 300;
/// The signed header carrying the cluster name.
pub const CLUSTER_ID_HEADER: &str = "x-k8s-aws-id";

/// The query parameters a presigned GetCallerIdentity URL may carry.
const ALLOWED_PARAMS: [&str; 9] = [
    "Action",
    "Version",
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Security-Token",
    "X-Amz-Signature",
];

/// A refused token: the reason is for the server log only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRefused {
    reason: String,
}

impl TokenRefused {
    pub(super) fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
        }
    }
    /// Why, for the log (never the caller).
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl std::fmt::Display for TokenRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

/// The one error text a refused token gets on the wire.
pub const REFUSED: &str = "the token was not accepted";

pub(super) type Refusal<T> = std::result::Result<T, TokenRefused>;

/// A token's presigned URL, checked for shape: the pieces SigV4 verification needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresignedUrl {
    /// The authority (host and optional port) as written: the signed `host` header's value.
    pub host: String,
    /// The raw query string.
    pub query: String,
}

/// Decode and check a token's shape (no secret, no clock). `accepted_hosts` are compared
/// without regard to ASCII case.
pub fn parse_token(token: &str, accepted_hosts: &[String]) -> Refusal<PresignedUrl> {
    if token.len() > MAX_TOKEN_CHARS {
        return Err(TokenRefused::new("token too long"));
    }
    let encoded = token
        .strip_prefix(TOKEN_PREFIX)
        .ok_or_else(|| TokenRefused::new("not a k8s-aws-v1 token"))?;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| TokenRefused::new("token is not unpadded base64url"))?;
    let url = String::from_utf8(raw).map_err(|_| TokenRefused::new("token URL is not UTF-8"))?;
    if !url.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(TokenRefused::new(
            "token URL holds spaces, controls or non-ASCII",
        ));
    }
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| TokenRefused::new("token URL is not http(s)"))?;
    if rest.contains('#') {
        return Err(TokenRefused::new("token URL has a fragment"));
    }
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (host, rest) = rest.split_at(end);
    if host.is_empty() || host.contains('@') {
        return Err(TokenRefused::new("token URL has no host, or user info"));
    }
    if !accepted_hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
        return Err(TokenRefused::new(format!(
            "token URL host {:?} is not one of the accepted STS hosts",
            clip(host)
        )));
    }
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path != "/" {
        return Err(TokenRefused::new("token URL path is not /"));
    }
    check_query(query)?;
    Ok(PresignedUrl {
        host: host.to_owned(),
        query: query.to_owned(),
    })
}

/// The query of a presigned GetCallerIdentity, and nothing else.
fn check_query(query: &str) -> Refusal<()> {
    let mut seen = [false; ALLOWED_PARAMS.len()];
    let mut action = None;
    let mut version = None;
    let mut expires = None;
    let mut signed_headers = None;
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = decode(k)?;
        let v = decode(v)?;
        let i = ALLOWED_PARAMS.iter().position(|p| *p == k).ok_or_else(|| {
            TokenRefused::new(format!("token URL has query parameter {:?}", clip(&k)))
        })?;
        match seen.get_mut(i) {
            Some(s) if !*s => *s = true,
            _ => {
                return Err(TokenRefused::new(format!(
                    "token URL repeats query parameter {k}"
                )));
            }
        }
        match k.as_str() {
            "Action" => action = Some(v),
            "Version" => version = Some(v),
            "X-Amz-Expires" => expires = Some(v),
            "X-Amz-SignedHeaders" => signed_headers = Some(v),
            _ => {}
        }
    }
    if action.as_deref() != Some("GetCallerIdentity") {
        return Err(TokenRefused::new(
            "token URL action is not GetCallerIdentity",
        ));
    }
    if version.as_deref() != Some("2011-06-15") {
        return Err(TokenRefused::new("token URL version is not 2011-06-15"));
    }
    match expires.as_deref().map(str::parse::<u32>) {
        Some(Ok(0..=900)) => {}
        _ => {
            return Err(TokenRefused::new(
                "token URL X-Amz-Expires is missing or not in 0..=900",
            ));
        }
    }
    let signed = signed_headers.unwrap_or_default();
    let mut names: Vec<&str> = signed.split(';').collect();
    if !names.contains(&CLUSTER_ID_HEADER) {
        return Err(TokenRefused::new("x-k8s-aws-id is not a signed header"));
    }
    names.sort_unstable();
    if names != ["host", CLUSTER_ID_HEADER] {
        return Err(TokenRefused::new(
            "token URL signs headers other than host and x-k8s-aws-id",
        ));
    }
    Ok(())
}

fn decode(s: &str) -> Refusal<String> {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| TokenRefused::new("token URL query is not UTF-8"))
}

/// At most 64 characters of an attacker-chosen string, for a log line.
pub(super) fn clip(s: &str) -> String {
    s.chars().take(64).collect()
}
