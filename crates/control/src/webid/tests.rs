//! Unit tests of the issuer fetch: the address and redirect policy, the cache's key, single
//! flight, budget and backoff (against a plain-http issuer on 127.0.0.1, as under
//! `dangerous_allow_http_issuer`), and the `kid` rule. TLS trust is tested in `tls_tests`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::net::{Policy, classify, max_age};
use super::*;

// === address and redirect policy ===

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn address_classes() {
    for a in [
        "169.254.169.254",
        "169.254.0.1",
        "0.0.0.0",
        "0.1.2.3",
        "100.100.100.200",
        "192.0.0.192",
        "224.0.0.1",
        "255.255.255.255",
        "240.0.0.1",
        "::",
        "fe80::1",
        "febf::1",
        "fd00:ec2::254",
        "fd00:ec2:1::1",
        "ff02::1",
        "::ffff:169.254.169.254",
        "64:ff9b::a9fe:a9fe",
        "2002:a9fe:a9fe::1",
        "::169.254.169.254",
    ] {
        assert_eq!(classify(ip(a)), Class::Forbidden, "{a}");
    }
    for a in [
        "127.0.0.1",
        "127.9.8.7",
        "10.0.0.1",
        "172.16.0.1",
        "172.31.255.255",
        "192.168.1.1",
        "100.64.0.1",
        "198.18.0.1",
        "::1",
        "fc00::1",
        "fd12:3456::1",
        "fec0::1",
        "::ffff:10.0.0.1",
        "::ffff:127.0.0.1",
    ] {
        assert_eq!(classify(ip(a)), Class::Local, "{a}");
    }
    for a in [
        "8.8.8.8",
        "172.32.0.1",
        "100.128.0.1",
        "169.253.1.1",
        "2600:1f18::1",
        "::ffff:8.8.8.8",
        "2a00:1450::1",
    ] {
        assert_eq!(classify(ip(a)), Class::Public, "{a}");
    }
}

#[test]
fn urls_the_policy_refuses() {
    let public = Policy::for_issuer("https://issuer.example/x", false).unwrap();
    assert!(public.check("https://keys.example/jwks").is_ok());
    for bad in [
        "http://issuer.example/jwks",               // http without the flag
        "ftp://issuer.example/jwks",                // not http(s)
        "https://169.254.169.254/latest/meta-data", // metadata
        "https://[fd00:ec2::254]/latest",           // metadata (IPv6)
        "https://[::ffff:a9fe:a9fe]/latest",        // metadata, IPv4-mapped
        "https://2852039166/latest",                // metadata, decimal IPv4
        "https://127.0.0.1/jwks",                   // loopback the provider did not name
        "https://10.1.2.3/jwks",                    // private the provider did not name
        "https://localhost/jwks",                   // localhost the provider did not name
        "https://user:pw@issuer.example/jwks",      // credentials
        "not a url",
    ] {
        assert!(
            matches!(public.check(bad), Err(FetchError::NotAllowed { .. })),
            "{bad}"
        );
    }
    // the provider names a loopback address: that one, and no other local one
    let lit = Policy::for_issuer("https://127.1.2.3/x", false).unwrap();
    assert!(lit.check("https://127.1.2.3/x/keys").is_ok());
    assert!(lit.check("https://127.0.0.1/x/keys").is_err());
    assert!(lit.check("https://localhost/x/keys").is_err());
    assert!(lit.check("https://169.254.169.254/").is_err());
    let local = Policy::for_issuer("http://localhost:8080/x", true).unwrap();
    assert!(local.check("http://localhost:8080/keys").is_ok());
    assert!(local.check("http://127.0.0.1:8080/keys").is_err());
    // a provider URL naming a forbidden address is refused outright
    assert!(Policy::for_issuer("https://169.254.169.254/x", false).is_err());
    assert!(Policy::for_issuer("http://issuer.example/x", false).is_err());
}

#[test]
fn cache_control_max_age() {
    assert_eq!(max_age("public, max-age=3600"), Some(3600));
    assert_eq!(max_age("no-cache"), None);
    assert_eq!(max_age("max-age=abc"), None);
}

// === cache key, backoff, entry decisions ===

#[test]
fn the_cache_key_is_the_issuer_and_its_trust() {
    let a = "9e99a48a9960b14926bb7f3b02e22da2b0ab7280".to_owned();
    let b = "0123456789ABCDEF0123456789abcdef01234567".to_owned();
    let iss = "https://issuer.example/x";
    assert_eq!(
        IssuerTrust::new(iss, &[a.clone(), b.clone()]),
        IssuerTrust::new(iss, &[b.to_lowercase(), a.clone(), a.clone()])
    );
    assert_ne!(
        IssuerTrust::new(iss, std::slice::from_ref(&a)),
        IssuerTrust::new(iss, &[a.clone(), b.clone()])
    );
    assert_ne!(
        IssuerTrust::new(iss, std::slice::from_ref(&a)),
        IssuerTrust::system_roots(iss)
    );
    assert_eq!(
        IssuerTrust::new(iss, &["zz".into()]),
        IssuerTrust::system_roots(iss)
    );
    assert_ne!(
        IssuerTrust::new(iss, std::slice::from_ref(&a)),
        IssuerTrust::new("https://issuer.example/y", &[a])
    );
}

#[test]
fn backoff_doubles_to_a_minute() {
    let secs: Vec<u64> = (1..=9).map(|n| backoff(n).as_secs()).collect();
    assert_eq!(secs, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    assert_eq!(backoff(u32::MAX), BACKOFF_MAX);
}

#[test]
fn entry_decisions() {
    let t0 = Instant::now();
    let set = Arc::new(JwkSet::default());
    let at = |s: u64| t0 + Duration::from_secs(s);
    let mut e = Entry::default();
    assert!(matches!(e.lookup(t0, false), Lookup::Fetch));
    // a failure with nothing cached: fail fast until the backoff ends
    assert!(e.failed(t0).is_none());
    assert!(matches!(e.lookup(t0, false), Lookup::Fail(d) if d == Duration::from_secs(1)));
    assert!(matches!(e.lookup(at(1), false), Lookup::Fetch));
    assert!(e.failed(at(1)).is_none());
    assert!(
        matches!(e.lookup(at(2), true), Lookup::Fail(_)),
        "second failure: 2 s"
    );
    assert!(matches!(e.lookup(at(3), false), Lookup::Fetch));
    // success resets; fresh keys are used, a refetch is honoured once per interval
    e.succeeded(at(10), Arc::clone(&set), Duration::from_secs(100));
    assert_eq!(e.failures, 0);
    assert!(matches!(e.lookup(at(11), false), Lookup::Use(_)));
    assert!(matches!(e.lookup(at(11), true), Lookup::Use(_)));
    assert!(matches!(e.lookup(at(41), true), Lookup::Fetch));
    // expired keys: fetch; on failure the stale keys serve, and the backoff holds
    assert!(matches!(e.lookup(at(111), false), Lookup::Fetch));
    assert!(e.failed(at(111)).is_some());
    assert!(matches!(e.lookup(at(111), false), Lookup::Use(_)));
    assert!(matches!(e.lookup(at(112), false), Lookup::Fetch));
    // past the stale window nothing is served
    let late = at(110) + STALE_FOR;
    assert!(e.usable(late).is_none());
    assert!(e.failed(late).is_none());
    assert!(matches!(e.lookup(late, false), Lookup::Fail(_)));
}

// === fetches against a local plain-http issuer ===

#[derive(Clone)]
enum Reply {
    Json(String),
    Status(u16),
    Redirect(String),
    Stall,
    Large(usize),
}

struct Issuer2 {
    addr: SocketAddr,
    hits: Arc<parking_lot::Mutex<Vec<String>>>,
}

impl Issuer2 {
    fn url(&self) -> String {
        format!("http://{}/iss", self.addr)
    }
    fn hits(&self) -> Vec<String> {
        self.hits.lock().clone()
    }
}

/// An HTTP/1.1 server on 127.0.0.1 answering each path with `route(path, own url)`.
async fn issuer(route: impl Fn(&str, &str) -> Reply + Send + Sync + 'static) -> Issuer2 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let route = Arc::new(route);
    let (h, base) = (Arc::clone(&hits), format!("http://{addr}/iss"));
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let (hits, route, base) = (Arc::clone(&h), Arc::clone(&route), base.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf).to_string();
                let path = head.split_whitespace().nth(1).unwrap_or("").to_owned();
                hits.lock().push(path.clone());
                let (status, extra, body) = match route(&path, &base) {
                    Reply::Json(b) => (200, String::new(), b.into_bytes()),
                    Reply::Status(s) => (s, String::new(), Vec::new()),
                    Reply::Redirect(to) => (302, format!("location: {to}\r\n"), Vec::new()),
                    Reply::Large(n) => (200, String::new(), vec![b' '; n]),
                    Reply::Stall => {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        return;
                    }
                };
                let head = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n{extra}\r\n",
                    body.len()
                );
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(&body).await;
            });
        }
    });
    Issuer2 { addr, hits }
}

fn discovery(base: &str, jwks_uri: &str) -> Reply {
    Reply::Json(serde_json::json!({"issuer": base, "jwks_uri": jwks_uri}).to_string())
}

fn jwks() -> Reply {
    let k = podiam_jose::SigningKey::generate(podiam_jose::KeyAlgorithm::Es256).unwrap();
    Reply::Json(podiam_jose::jwks_json(&[&k]))
}

/// A well-behaved issuer.
fn good(path: &str, base: &str) -> Reply {
    match path {
        "/iss/.well-known/openid-configuration" => discovery(base, &format!("{base}/keys")),
        "/iss/keys" => jwks(),
        _ => Reply::Status(404),
    }
}

const DISCOVERY: &str = "/iss/.well-known/openid-configuration";

#[tokio::test]
async fn a_plain_http_issuer_needs_the_dangerous_flag() {
    let iss = issuer(good).await;
    let trust = IssuerTrust::system_roots(&iss.url());
    assert!(matches!(
        JwksCache::new(false).keys(&trust, false).await,
        Err(FetchError::NotAllowed { .. })
    ));
    assert!(iss.hits().is_empty());
    let keys = JwksCache::new(true).keys(&trust, false).await.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(iss.hits(), [DISCOVERY, "/iss/keys"]);
}

#[tokio::test]
async fn redirects_stay_on_the_origin() {
    let elsewhere = issuer(good).await;
    let other = format!(
        "http://{}/iss/.well-known/openid-configuration",
        elsewhere.addr
    );
    for to in [
        other.as_str(),
        "http://169.254.169.254/latest/meta-data/",
        "https://issuer.example/",
    ] {
        let target = to.to_owned();
        let iss = issuer(move |p, b| {
            if p == DISCOVERY {
                Reply::Redirect(target.clone())
            } else {
                good(p, b)
            }
        })
        .await;
        let err = JwksCache::new(true)
            .keys(&IssuerTrust::system_roots(&iss.url()), false)
            .await
            .unwrap_err();
        assert!(matches!(err, FetchError::Network { .. }), "{to}: {err}");
        assert_eq!(iss.hits(), [DISCOVERY]);
    }
    assert!(elsewhere.hits().is_empty());
    // on the same origin a redirect is followed (a few times at most)
    let iss = issuer(|p, b| match p {
        DISCOVERY => Reply::Redirect("/iss/moved".into()),
        "/iss/moved" => discovery(b, &format!("{b}/keys")),
        "/iss/loop" => Reply::Redirect("/iss/loop".into()),
        _ => good(p, b),
    })
    .await;
    assert!(
        JwksCache::new(true)
            .keys(&IssuerTrust::system_roots(&iss.url()), false)
            .await
            .is_ok()
    );
    let looping = issuer(|p, b| {
        if p == DISCOVERY {
            Reply::Redirect("/iss/x".into())
        } else if p == "/iss/x" {
            Reply::Redirect(DISCOVERY.into())
        } else {
            good(p, b)
        }
    })
    .await;
    assert!(
        JwksCache::new(true)
            .keys(&IssuerTrust::system_roots(&looping.url()), false)
            .await
            .is_err()
    );
    assert_eq!(looping.hits().len(), MAX_REDIRECTS + 1);
}

#[tokio::test]
async fn a_jwks_uri_off_limits_is_not_fetched() {
    for uri in [
        "http://169.254.169.254/keys",
        "http://127.0.0.2/keys",
        "http://localhost/keys",
        "http://[fd00:ec2::254]/keys",
        "file:///etc/passwd",
    ] {
        let target = uri.to_owned();
        let iss = issuer(move |p, b| {
            if p == DISCOVERY {
                discovery(b, &target)
            } else {
                good(p, b)
            }
        })
        .await;
        let err = JwksCache::new(true)
            .keys(&IssuerTrust::system_roots(&iss.url()), false)
            .await
            .unwrap_err();
        assert!(matches!(err, FetchError::NotAllowed { .. }), "{uri}: {err}");
        assert_eq!(iss.hits(), [DISCOVERY]);
    }
}

#[tokio::test]
async fn bodies_are_bounded() {
    let big = issuer(|p, _| {
        if p == DISCOVERY {
            Reply::Large(MAX_DISCOVERY_LEN + 1)
        } else {
            Reply::Status(404)
        }
    })
    .await;
    let err = JwksCache::new(true)
        .keys(&IssuerTrust::system_roots(&big.url()), false)
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::TooLarge { .. }), "{err}");
    let big = issuer(|p, b| {
        if p == "/iss/keys" {
            Reply::Large(MAX_JWKS_LEN + 1)
        } else {
            good(p, b)
        }
    })
    .await;
    let err = JwksCache::new(true)
        .keys(&IssuerTrust::system_roots(&big.url()), false)
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::TooLarge { .. }), "{err}");
}

#[tokio::test]
async fn failures_are_remembered() {
    let iss = issuer(|_, _| Reply::Status(500)).await;
    let cache = JwksCache::new(true);
    let trust = IssuerTrust::system_roots(&iss.url());
    assert!(matches!(
        cache.keys(&trust, false).await,
        Err(FetchError::Status { status: 500, .. })
    ));
    for refresh in [false, true, false] {
        assert!(matches!(
            cache.keys(&trust, refresh).await,
            Err(FetchError::BackingOff { .. })
        ));
    }
    assert_eq!(iss.hits().len(), 1, "no attempt while backing off");
    tokio::time::sleep(BACKOFF_MIN).await;
    assert!(cache.keys(&trust, false).await.is_err());
    assert_eq!(iss.hits().len(), 2);
}

#[tokio::test]
async fn a_stalling_issuer_delays_only_its_own_callers() {
    let stall = issuer(|_, _| Reply::Stall).await;
    let fine = issuer(good).await;
    let cache = Arc::new(JwksCache::new(true).with_budget(Duration::from_millis(800)));
    let stalled = IssuerTrust::system_roots(&stall.url());
    let started = Instant::now();
    let waiting: Vec<_> = (0..6)
        .map(|_| {
            let (c, t) = (Arc::clone(&cache), stalled.clone());
            tokio::spawn(async move { c.keys(&t, false).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let t = Instant::now();
    assert!(
        cache
            .keys(&IssuerTrust::system_roots(&fine.url()), false)
            .await
            .is_ok()
    );
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "another issuer waited {:?}",
        t.elapsed()
    );
    for w in waiting {
        assert!(matches!(
            w.await.unwrap(),
            Err(FetchError::Timeout { .. } | FetchError::BackingOff { .. })
        ));
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the budget bounds every waiter: {:?}",
        started.elapsed()
    );
    assert_eq!(stall.hits(), [DISCOVERY], "one fetch for all six callers");
    let t = Instant::now();
    assert!(matches!(
        cache.keys(&stalled, false).await,
        Err(FetchError::BackingOff { .. })
    ));
    assert!(t.elapsed() < Duration::from_millis(50));
}

#[tokio::test]
async fn keys_are_cached_per_trust() {
    let iss = issuer(good).await;
    let cache = JwksCache::new(true);
    let roots = IssuerTrust::system_roots(&iss.url());
    let pinned = IssuerTrust::new(
        &iss.url(),
        &["9e99a48a9960b14926bb7f3b02e22da2b0ab7280".into()],
    );
    let a = cache.keys(&roots, false).await.unwrap();
    assert!(
        cache.cached(&pinned).is_none(),
        "keys fetched under one trust do not serve another"
    );
    let b = cache.keys(&pinned, false).await.unwrap();
    assert!(!Arc::ptr_eq(&a, &b));
    assert_eq!(iss.hits().len(), 4);
    assert!(Arc::ptr_eq(&cache.keys(&roots, false).await.unwrap(), &a));
    assert!(Arc::ptr_eq(&cache.cached(&pinned).unwrap(), &b));
    assert_eq!(iss.hits().len(), 4);
}

// === kid ===

fn token_without_kid(key: &podiam_jose::SigningKey, claims: &serde_json::Value) -> String {
    use base64::Engine as _;
    let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    let input = format!(
        "{}.{}",
        b64(br#"{"alg":"ES256"}"#),
        b64(claims.to_string().as_bytes())
    );
    let sig = key.sign_raw(input.as_bytes()).unwrap();
    format!("{input}.{}", b64(&sig))
}

#[test]
fn a_token_without_kid_needs_a_single_key_issuer() {
    let key = podiam_jose::SigningKey::generate(podiam_jose::KeyAlgorithm::Es256).unwrap();
    let other = podiam_jose::SigningKey::generate(podiam_jose::KeyAlgorithm::Es256).unwrap();
    let now = 1_700_000_000;
    let claims = serde_json::json!({"iss": "https://i.example", "sub": "s", "aud": "sts.amazonaws.com", "iat": now, "exp": now + 600});
    let token = podiam_jose::UnverifiedToken::parse(&token_without_kid(&key, &claims)).unwrap();
    let aud = vec!["sts.amazonaws.com".to_owned()];
    let v = Validation::new("https://i.example", &aud, now);
    let one = JwkSet::from_json(podiam_jose::jwks_json(&[&key]).as_bytes()).unwrap();
    assert!(verify(&token, &one, &v).is_ok());
    for keys in [[&key, &other], [&other, &key]] {
        let two = JwkSet::from_json(podiam_jose::jwks_json(&keys).as_bytes()).unwrap();
        assert!(matches!(
            verify(&token, &two, &v),
            Err(JwtError::Malformed(_))
        ));
    }
    // with a kid, the set's size does not matter
    let with_kid = podiam_jose::UnverifiedToken::parse(&key.sign(&claims).unwrap()).unwrap();
    let two = JwkSet::from_json(podiam_jose::jwks_json(&[&other, &key]).as_bytes()).unwrap();
    assert!(verify(&with_kid, &two, &v).is_ok());
}
