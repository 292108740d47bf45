//! Test fixtures: a fake EKS Auth that verifies SigV4, a fake STS, a fake cluster issuer
//! (discovery + JWKS over http), token minting (unsigned, or signed with real keys), an agent
//! bound to 127.0.0.1 with ephemeral ports, and a raw HTTP/1.1 client.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::extract::State;
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use parking_lot::Mutex;
use podiam_agent::{Agent, AwsCredentials, Clock, Config, Env};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const CLUSTER: &str = "test-cluster";
pub const REGION: &str = "us-west-2";
pub const NODE_AKID: &str = "AKIDNODE";
pub const NODE_SECRET: &str = "node-secret-value";

/// What the fake EKS Auth answers.
#[derive(Clone, Debug)]
pub enum Mode {
    /// Credentials valid for this long.
    Ok { lifetime: Duration },
    /// An error.
    Fail {
        status: u16,
        code: &'static str,
        message: &'static str,
    },
}

pub struct FakeEksAuth {
    pub url: String,
    pub clock: Clock,
    pub calls: AtomicUsize,
    pub bad_signatures: AtomicUsize,
    pub mode: Mutex<Mode>,
    pub delay: Mutex<Duration>,
    /// Tokens answered with AccessDeniedException whatever the mode.
    pub deny: Mutex<HashSet<String>>,
    /// Secrets by access key id, for SigV4 verification.
    pub secrets: Mutex<HashMap<String, String>>,
    /// (access key id, security token) of each verified call.
    pub signers: Mutex<Vec<(String, Option<String>)>>,
    pub tokens: Mutex<Vec<String>>,
}

impl FakeEksAuth {
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
    pub fn set_mode(&self, m: Mode) {
        *self.mode.lock() = m;
    }
    pub fn ok(&self) {
        self.set_mode(Mode::Ok {
            lifetime: Duration::from_secs(3600),
        });
    }
}

fn error_response(status: u16, code: &str, message: &str, n: usize) -> Response {
    let mut r = (
        StatusCode::from_u16(status).unwrap(),
        serde_json::json!({ "message": message }).to_string(),
    )
        .into_response();
    let h = r.headers_mut();
    h.insert(
        "x-amzn-errortype",
        format!("{code}:http://internal.amazon.com/coral/com.amazon.coral.service/")
            .parse()
            .unwrap(),
    );
    h.insert("x-amzn-requestid", format!("req-{n}").parse().unwrap());
    h.insert("content-type", "application/json".parse().unwrap());
    r
}

async fn eks_auth(State(f): State<Arc<FakeEksAuth>>, req: Request<Body>) -> Response {
    let (parts, body) = req.into_parts();
    let body = to_bytes(body, 1 << 20).await.unwrap();
    let n = f.calls.fetch_add(1, Ordering::SeqCst) + 1;
    let headers: Vec<(&str, &[u8])> = parts
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_bytes()))
        .collect();
    let sreq = podiam_sigv4::Request {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &headers,
        body: &body,
    };
    let verified = match podiam_sigv4::parse(&sreq) {
        Ok(Some(p)) => {
            let secret = f.secrets.lock().get(p.access_key_id()).cloned();
            let expect = podiam_sigv4::Expectations {
                regions: &[REGION],
                ..podiam_sigv4::Expectations::new("eks-auth")
            };
            let ok = secret.is_some_and(|s| {
                podiam_sigv4::verify(&sreq, &p, &s, &expect, f.clock.now_secs()).is_ok()
            });
            if ok {
                f.signers.lock().push((
                    p.access_key_id().to_owned(),
                    p.security_token().map(str::to_owned),
                ));
            }
            ok
        }
        _ => false,
    };
    if !verified {
        f.bad_signatures.fetch_add(1, Ordering::SeqCst);
        return error_response(403, "InvalidSignatureException", "bad signature", n);
    }
    if parts.method != "POST"
        || parts.uri.path() != format!("/clusters/{CLUSTER}/assume-role-for-pod-identity")
    {
        return error_response(404, "NotFoundException", "no such route", n);
    }
    if parts.headers.get("content-type").map(|v| v.as_bytes()) != Some(b"application/json") {
        return error_response(400, "InvalidRequestException", "content type", n);
    }
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let token = v["token"].as_str().unwrap().to_owned();
    f.tokens.lock().push(token.clone());
    let delay = *f.delay.lock();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if f.deny.lock().contains(&token) {
        return error_response(400, "AccessDeniedException", "denied for this token", n);
    }
    let mode = f.mode.lock().clone();
    match mode {
        Mode::Fail {
            status,
            code,
            message,
        } => error_response(status, code, message, n),
        Mode::Ok { lifetime } => {
            let exp = f.clock.now_secs() + lifetime.as_secs() as i64;
            let body = serde_json::json!({
                "subject": {"namespace": "default", "serviceAccount": "sa"},
                "audience": "pods.eks.amazonaws.com",
                "podIdentityAssociation": {
                    "associationArn": format!("arn:aws:eks:{REGION}:111122223333:podidentityassociation/{CLUSTER}/a-abcdefghijklmnop1"),
                    "associationId": "a-abcdefghijklmnop1"
                },
                "assumedRoleUser": {
                    "arn": format!("arn:aws:sts::111122223333:assumed-role/my-role/eks-{CLUSTER}-pod-{n}"),
                    "assumeRoleId": format!("AROAEXAMPLE:eks-{CLUSTER}-pod-{n}")
                },
                "credentials": {
                    "sessionToken": format!("session-token-{n}"),
                    "secretAccessKey": format!("secret-{n}"),
                    "accessKeyId": format!("ASIA{n:08}"),
                    "expiration": exp
                }
            });
            let mut r = body.to_string().into_response();
            r.headers_mut()
                .insert("content-type", "application/json".parse().unwrap());
            r.headers_mut()
                .insert("x-amzn-requestid", format!("req-{n}").parse().unwrap());
            r
        }
    }
}

async fn serve(router: axum::Router) -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, router).await.unwrap() });
    addr
}

pub async fn fake_eks_auth(clock: Clock) -> Arc<FakeEksAuth> {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let f = Arc::new(FakeEksAuth {
        url: format!("http://{addr}"),
        clock,
        calls: AtomicUsize::new(0),
        bad_signatures: AtomicUsize::new(0),
        mode: Mutex::new(Mode::Ok {
            lifetime: Duration::from_secs(3600),
        }),
        delay: Mutex::new(Duration::ZERO),
        deny: Mutex::new(HashSet::new()),
        secrets: Mutex::new(HashMap::from([(
            NODE_AKID.to_owned(),
            NODE_SECRET.to_owned(),
        )])),
        signers: Mutex::new(Vec::new()),
        tokens: Mutex::new(Vec::new()),
    });
    let router = axum::Router::new()
        .fallback(eks_auth)
        .with_state(Arc::clone(&f));
    tokio::spawn(async move { axum::serve(l, router).await.unwrap() });
    f
}

/// A fake STS for AssumeRoleWithWebIdentity (form POST, XML answer).
pub struct FakeSts {
    pub url: String,
    pub clock: Clock,
    pub calls: AtomicUsize,
    /// Form fields of each call.
    pub forms: Mutex<Vec<HashMap<String, String>>>,
    pub authorization_seen: AtomicUsize,
    pub fail: Mutex<bool>,
    pub lifetime: Mutex<Duration>,
}

async fn sts(State(f): State<Arc<FakeSts>>, req: Request<Body>) -> Response {
    let (parts, body) = req.into_parts();
    let body = to_bytes(body, 1 << 20).await.unwrap();
    let n = f.calls.fetch_add(1, Ordering::SeqCst) + 1;
    if parts.headers.contains_key("authorization") {
        f.authorization_seen.fetch_add(1, Ordering::SeqCst);
    }
    let form: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    f.forms.lock().push(form.clone());
    if *f.fail.lock() || form.get("Action").map(String::as_str) != Some("AssumeRoleWithWebIdentity")
    {
        let xml = "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type><Code>InvalidIdentityToken</Code><Message>Token rejected</Message></Error><RequestId>r</RequestId></ErrorResponse>";
        return (StatusCode::BAD_REQUEST, [("content-type", "text/xml")], xml).into_response();
    }
    let exp = f.clock.now_secs() + f.lifetime.lock().as_secs() as i64;
    let exp = time::OffsetDateTime::from_unix_timestamp(exp)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let xml = format!(
        r#"<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>system:serviceaccount:kube-system:podiam-agent</SubjectFromWebIdentityToken>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::111122223333:assumed-role/node/{session}</Arn>
      <AssumedRoleId>AROAEXAMPLE:{session}</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <SessionToken>sts-session-token-{n}</SessionToken>
      <SecretAccessKey>sts-secret-{n}</SecretAccessKey>
      <Expiration>{exp}</Expiration>
      <AccessKeyId>ASIASTS{n:04}</AccessKeyId>
    </Credentials>
    <Provider>https://oidc.example</Provider>
    <Audience>sts.amazonaws.com</Audience>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>r-{n}</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>"#,
        session = form.get("RoleSessionName").cloned().unwrap_or_default()
    );
    (StatusCode::OK, [("content-type", "text/xml")], xml).into_response()
}

pub async fn fake_sts(clock: Clock) -> Arc<FakeSts> {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let f = Arc::new(FakeSts {
        url: format!("http://{addr}"),
        clock,
        calls: AtomicUsize::new(0),
        forms: Mutex::new(Vec::new()),
        authorization_seen: AtomicUsize::new(0),
        fail: Mutex::new(false),
        lifetime: Mutex::new(Duration::from_secs(3600)),
    });
    let router = axum::Router::new().fallback(sts).with_state(Arc::clone(&f));
    tokio::spawn(async move { axum::serve(l, router).await.unwrap() });
    f
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

static SERIAL: AtomicUsize = AtomicUsize::new(0);

/// A projected-token-shaped JWT (unsigned; the fake does not verify it), unique per call.
pub fn token_with(clock: &Clock, exp_in: i64, nbf_in: i64) -> String {
    let now = clock.now_secs();
    let id = SERIAL.fetch_add(1, Ordering::SeqCst);
    let claims = serde_json::json!({
        "aud": ["pods.eks.amazonaws.com"],
        "exp": now + exp_in, "iat": now, "nbf": now + nbf_in,
        "iss": "https://oidc.example/id/1",
        "sub": format!("system:serviceaccount:default:sa-{id}"),
        "kubernetes.io": {"namespace": "default", "pod": {"name": format!("pod-{id}"), "uid": "u"}}
    });
    format!(
        "{}.{}.{}",
        b64(r#"{"alg":"RS256","kid":"k1"}"#),
        b64(&claims.to_string()),
        b64("signature")
    )
}

pub fn token(clock: &Clock) -> String {
    token_with(clock, 86400, -10)
}

/// An agent on 127.0.0.1 (ephemeral ports) in front of `fake`, with static node credentials
/// and the janitor effectively off (tests call `refresh_now`).
pub fn config(fake: &FakeEksAuth) -> Config {
    let mut c = Config::new(CLUSTER);
    c.bind = vec!["127.0.0.1".parse().unwrap()];
    c.port = 0;
    c.probe_port = 0;
    c.metrics_address = "127.0.0.1".parse().unwrap();
    c.metrics_port = Some(0);
    c.endpoint = Some(fake.url.clone());
    c.region = Some(REGION.to_owned());
    c.env = Env::from_pairs([("HOME", "/nonexistent")]);
    c.static_credentials = Some(AwsCredentials::new(NODE_AKID, NODE_SECRET));
    c.clock = fake.clock.clone();
    c.refresh_interval = Duration::from_secs(3600);
    c.shutdown_grace = Duration::from_secs(1);
    c.inbound_rps = 0;
    c.inbound_pod_rps = 0;
    c.inbound_unverified_rps = 0;
    c
}

pub async fn agent(fake: &FakeEksAuth, tweak: impl FnOnce(&mut Config)) -> Agent {
    let mut c = config(fake);
    tweak(&mut c);
    let a = podiam_agent::start(c).await.unwrap();
    // Node credentials resolve in the background; wait for readiness.
    for _ in 0..200 {
        if a.is_ready() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    a
}

/// A response read off the wire.
#[derive(Debug)]
pub struct Raw {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Raw {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

/// One HTTP/1.1 request with exactly these `Host` and `Authorization` values.
pub async fn raw(
    addr: SocketAddr,
    method: &str,
    path: &str,
    host: Option<&str>,
    auth: Option<&str>,
) -> Raw {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\n");
    if let Some(h) = host {
        req.push_str(&format!("Host: {h}\r\n"));
    }
    if let Some(a) = auth {
        req.push_str(&format!("Authorization: {a}\r\n"));
    }
    req.push_str("Connection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8(buf).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        })
        .collect();
    Raw {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// GET /v1/credentials on the agent's first listener with the right `Host`.
pub async fn creds(agent: &Agent, token: &str) -> Raw {
    let addr = agent.credential_addrs()[0];
    raw(
        addr,
        "GET",
        "/v1/credentials",
        Some(&addr.to_string()),
        Some(token),
    )
    .await
}

/// A fresh temporary directory, removed with what it holds when dropped (so a run leaves
/// nothing under the system temp dir). Dereferences to its path.
pub struct TempDir(std::path::PathBuf);

impl std::ops::Deref for TempDir {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl AsRef<std::path::Path> for TempDir {
    fn as_ref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh temporary directory.
pub fn temp_dir(tag: &str) -> TempDir {
    let d = std::env::temp_dir().join(format!(
        "podiam-agent-{tag}-{}-{}",
        std::process::id(),
        SERIAL.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&d).unwrap();
    TempDir(d)
}

/// Polls `f` until true (5 s at most).
pub async fn eventually(mut f: impl FnMut() -> bool) -> bool {
    for _ in 0..500 {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

/// A cluster's service account issuer: discovery document and JWKS over plain http.
pub struct FakeIssuer {
    /// The issuer URL (`http://127.0.0.1:PORT/id/1`).
    pub url: String,
    /// The published keys.
    pub keys: Mutex<Vec<Arc<podiam_jose::SigningKey>>>,
    pub discovery_calls: AtomicUsize,
    pub jwks_calls: AtomicUsize,
}

impl FakeIssuer {
    pub fn jwks_calls(&self) -> usize {
        self.jwks_calls.load(Ordering::SeqCst)
    }
    pub fn publish(&self, key: &Arc<podiam_jose::SigningKey>) {
        self.keys.lock().push(Arc::clone(key));
    }
}

async fn issuer_route(State(f): State<Arc<FakeIssuer>>, req: Request<Body>) -> Response {
    match req.uri().path() {
        "/id/1/.well-known/openid-configuration" => {
            f.discovery_calls.fetch_add(1, Ordering::SeqCst);
            serde_json::json!({
                "issuer": f.url,
                "jwks_uri": format!("{}/keys", f.url),
                "response_types_supported": ["id_token"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256", "ES256"]
            })
            .to_string()
            .into_response()
        }
        "/id/1/keys" => {
            f.jwks_calls.fetch_add(1, Ordering::SeqCst);
            let keys = f.keys.lock().clone();
            let refs: Vec<&podiam_jose::SigningKey> = keys.iter().map(|k| &**k).collect();
            podiam_jose::jwks_json(&refs).into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// A fake issuer publishing `keys`.
pub async fn fake_issuer(keys: &[&Arc<podiam_jose::SigningKey>]) -> Arc<FakeIssuer> {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let f = Arc::new(FakeIssuer {
        url: format!("http://{addr}/id/1"),
        keys: Mutex::new(keys.iter().map(|k| Arc::clone(k)).collect()),
        discovery_calls: AtomicUsize::new(0),
        jwks_calls: AtomicUsize::new(0),
    });
    let router = axum::Router::new()
        .fallback(issuer_route)
        .with_state(Arc::clone(&f));
    tokio::spawn(async move { axum::serve(l, router).await.unwrap() });
    f
}

pub fn signing_key() -> Arc<podiam_jose::SigningKey> {
    Arc::new(podiam_jose::SigningKey::generate(podiam_jose::KeyAlgorithm::Rs256).unwrap())
}

/// Projected-token claims for pod `pod` (uid) of `ns`/`sa`, issued by `iss`, expiring in
/// `exp_in` seconds.
pub fn pod_claims(
    clock: &Clock,
    iss: &str,
    ns: &str,
    sa: &str,
    pod: &str,
    exp_in: i64,
) -> serde_json::Value {
    let now = clock.now_secs();
    serde_json::json!({
        "aud": ["pods.eks.amazonaws.com"],
        "exp": now + exp_in, "iat": now - 10, "nbf": now - 10,
        "iss": iss,
        "sub": format!("system:serviceaccount:{ns}:{sa}"),
        "kubernetes.io": {"namespace": ns, "serviceaccount": {"name": sa, "uid": "sa-uid"},
                          "pod": {"name": format!("pod-{pod}"), "uid": pod}},
        "jti": SERIAL.fetch_add(1, Ordering::SeqCst).to_string()
    })
}

/// `claims` signed by `key`, with header `kid` set to `kid` (a forger names the real key).
pub fn sign_as(key: &podiam_jose::SigningKey, kid: &str, claims: &serde_json::Value) -> String {
    let header = serde_json::json!({"alg": key.algorithm().name(), "kid": kid}).to_string();
    let input = format!("{}.{}", b64(&header), b64(&claims.to_string()));
    let sig = key.sign_raw(input.as_bytes()).unwrap();
    format!(
        "{input}.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sig)
    )
}

/// Points the agent at `issuer` (plain http, so dangerously allowed).
pub fn with_issuer(c: &mut Config, issuer: &FakeIssuer) {
    c.cluster_issuer_url = Some(issuer.url.clone());
    c.dangerous_allow_http_issuer = true;
}
