//! Where an issuer fetch may go, and how much it may read.
//!
//! Issuer fetches are triggered by unauthenticated callers, so they must not become a way to
//! reach podiam's own network:
//! - only `https` (plain `http` only under `dangerous_allow_http_issuer`);
//! - redirects only within the same origin (scheme, host and port), at most [`MAX_REDIRECTS`];
//! - link-local, metadata, unspecified, multicast and reserved addresses ([`Class::Forbidden`])
//!   are never connected to;
//! - loopback and private addresses ([`Class::Local`]) only when the provider's own URL names
//!   that address literally (an IP literal, or `localhost` for the loopback addresses it
//!   resolves to). A DNS name never reaches them.
//!
//! Names are checked at connect time by [`Resolver`], the only resolver the client uses, so a
//! name that resolves differently between a check and the connection (DNS rebinding) gains
//! nothing; IP literals never reach a resolver and are checked by [`Policy::check`] before each
//! request. Proxies from the environment are not used (they would resolve names themselves).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;

use super::FetchError;

/// Most redirects followed for one request.
pub const MAX_REDIRECTS: usize = 3;
/// Time allowed to open a connection (TCP and TLS).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Time allowed for one request, redirects and body included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// What an address may be used for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Link-local (and so cloud metadata services), unspecified, multicast, broadcast, reserved:
    /// never fetched.
    Forbidden,
    /// Loopback, private, shared (CGNAT), unique-local: only when the provider URL names the
    /// address literally.
    Local,
    /// Anything else.
    Public,
}

/// The address classes (see [`Class`]). IPv4 embedded in IPv6 (mapped, NAT64, 6to4) is
/// classified as the IPv4 address it carries.
pub fn classify(ip: IpAddr) -> Class {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Class {
    let [a, b, c, d] = ip.octets();
    match (a, b, c, d) {
        // "this network", link-local (169.254.169.254 is the AWS, GCP and Azure metadata service),
        // IETF protocol assignments, Alibaba Cloud's metadata service, multicast, reserved and
        // broadcast.
        (0, ..) | (169, 254, ..) | (192, 0, 0, _) | (100, 100, 100, 200) | (224..=255, ..) => {
            Class::Forbidden
        }
        (127, ..) | (10, ..) | (192, 168, ..) => Class::Local,
        (172, 16..=31, ..) | (100, 64..=127, ..) | (198, 18..=19, ..) => Class::Local,
        _ => Class::Public,
    }
}

fn classify_v6(ip: Ipv6Addr) -> Class {
    let s = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    match s {
        [0, 0, 0, 0, 0, 0, 0, 1] => Class::Local,
        // unspecified, and the deprecated IPv4-compatible addresses
        [0, 0, 0, 0, 0, 0, ..] => Class::Forbidden,
        // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) reach the IPv4 address they embed
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => classify_v4(embedded(hi, lo)),
        [0x2002, hi, lo, ..] => classify_v4(embedded(hi, lo)),
        // the EC2 instance metadata service and DNS over IPv6
        [0xfd00, 0x0ec2, ..] => Class::Forbidden,
        // link-local fe80::/10, multicast ff00::/8
        [x, ..] if x & 0xffc0 == 0xfe80 || x & 0xff00 == 0xff00 => Class::Forbidden,
        // unique-local fc00::/7, deprecated site-local fec0::/10
        [x, ..] if x & 0xfe00 == 0xfc00 || x & 0xffc0 == 0xfec0 => Class::Local,
        _ => Class::Public,
    }
}

/// The host a provider URL names literally, which alone may be [`Class::Local`].
#[derive(Clone, Debug, PartialEq, Eq)]
enum Literal {
    Ip(IpAddr),
    Localhost,
}

/// Where the fetches of one issuer may go.
#[derive(Clone, Debug)]
pub struct Policy {
    allow_http: bool,
    literal: Option<Literal>,
}

impl Policy {
    /// The policy of `issuer` (its URL decides which local host, if any, may be fetched).
    pub fn for_issuer(issuer: &str, allow_http: bool) -> Result<Self, FetchError> {
        let url = Url::parse(issuer).map_err(|_| FetchError::NotAllowed {
            url: issuer.to_owned(),
            reason: "not a url",
        })?;
        let literal = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(Literal::Ip(IpAddr::V4(ip))),
            Some(url::Host::Ipv6(ip)) => Some(Literal::Ip(IpAddr::V6(ip))),
            Some(url::Host::Domain(d)) if is_localhost(d) => Some(Literal::Localhost),
            _ => None,
        };
        let policy = Self {
            allow_http,
            literal,
        };
        policy.check(issuer)?;
        Ok(policy)
    }

    /// Parse `url` and check it may be fetched: scheme, no credentials, and, for an IP literal
    /// or `localhost`, the address class.
    pub fn check(&self, url: &str) -> Result<Url, FetchError> {
        let refuse = |reason| FetchError::NotAllowed {
            url: url.to_owned(),
            reason,
        };
        let parsed = Url::parse(url).map_err(|_| refuse("not a url"))?;
        match parsed.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            _ => return Err(refuse("not https")),
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(refuse("credentials in the url"));
        }
        match parsed.host() {
            Some(url::Host::Ipv4(ip)) => self.check_ip(IpAddr::V4(ip)).map_err(refuse)?,
            Some(url::Host::Ipv6(ip)) => self.check_ip(IpAddr::V6(ip)).map_err(refuse)?,
            Some(url::Host::Domain(d))
                if is_localhost(d) && self.literal != Some(Literal::Localhost) =>
            {
                return Err(refuse("local address not named by the provider"));
            }
            Some(url::Host::Domain(_)) => {}
            None => return Err(refuse("no host")),
        }
        Ok(parsed)
    }

    fn check_ip(&self, ip: IpAddr) -> Result<(), &'static str> {
        match classify(ip) {
            Class::Forbidden => Err("forbidden address"),
            Class::Local if self.literal != Some(Literal::Ip(ip)) => {
                Err("local address not named by the provider")
            }
            Class::Local | Class::Public => Ok(()),
        }
    }

    /// An HTTP client that follows this policy and trusts TLS by `tls`.
    pub fn client(&self, tls: rustls::ClientConfig) -> Result<reqwest::Client, String> {
        reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .no_proxy()
            .dns_resolver(Arc::new(Resolver {
                localhost: self.literal == Some(Literal::Localhost),
            }))
            .redirect(reqwest::redirect::Policy::custom(same_origin))
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| e.to_string())
    }
}

fn is_localhost(host: &str) -> bool {
    host.trim_end_matches('.').eq_ignore_ascii_case("localhost")
}

/// Redirects stay on the origin of the first request (so the scheme and the address checks of
/// that request hold for every hop).
fn same_origin(attempt: reqwest::redirect::Attempt<'_>) -> reqwest::redirect::Action {
    let first = attempt.previous().first().map(Url::origin);
    if attempt.previous().len() > MAX_REDIRECTS {
        attempt.error("too many redirects")
    } else if first != Some(attempt.url().origin()) {
        attempt.error("redirect to another origin")
    } else {
        attempt.follow()
    }
}

/// Resolves with the system resolver and keeps only the addresses a name may reach: public ones,
/// and loopback ones for `localhost` when the provider URL says `localhost`.
struct Resolver {
    localhost: bool,
}

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        let loopback_ok = self.localhost && is_localhost(&host);
        Box::pin(async move {
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let kept: Vec<SocketAddr> = found.filter(|a| permitted(a.ip(), loopback_ok)).collect();
            if kept.is_empty() {
                return Err(format!("{host} resolves to no permitted address").into());
            }
            Ok(Box::new(kept.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Whether a resolved address may be connected to.
fn permitted(ip: IpAddr, loopback_ok: bool) -> bool {
    match classify(ip) {
        Class::Public => true,
        Class::Local => loopback_ok && ip.is_loopback(),
        Class::Forbidden => false,
    }
}

/// GET `url`: a success status, at most `max` body bytes (checked as they arrive), and the
/// Cache-Control `max-age`, if any.
pub async fn get(
    client: &reqwest::Client,
    url: Url,
    max: usize,
) -> Result<(Vec<u8>, Option<u64>), FetchError> {
    let name = url.to_string();
    let mut resp = client
        .get(url)
        .send()
        .await
        .map_err(|e| FetchError::Network {
            url: name.clone(),
            reason: error_chain(&e),
        })?;
    if !resp.status().is_success() {
        return Err(FetchError::Status {
            url: name,
            status: resp.status().as_u16(),
        });
    }
    if resp.content_length().is_some_and(|n| n > max as u64) {
        return Err(FetchError::TooLarge { url: name, max });
    }
    let max_age = resp
        .headers()
        .get("cache-control")
        .and_then(|v| v.to_str().ok())
        .and_then(max_age);
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| FetchError::Network {
        url: name.clone(),
        reason: error_chain(&e),
    })? {
        if body.len() + chunk.len() > max {
            return Err(FetchError::TooLarge { url: name, max });
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, max_age))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(x) = src {
        s.push_str(": ");
        s.push_str(&x.to_string());
        src = x.source();
    }
    s
}

/// `max-age=N` of a Cache-Control header.
pub fn max_age(v: &str) -> Option<u64> {
    v.split(',').find_map(|d| {
        d.trim()
            .strip_prefix("max-age=")
            .and_then(|n| n.trim().parse().ok())
    })
}
