//! The webhook over real TLS (a generated CA, reqwest/rustls), and the EKS associations client
//! against a small fake EKS API.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use podiam_webhook::tls::{ReloadingCert, ensure_self_signed, server_config};
use podiam_webhook::{Associations, ServiceAccounts, Settings, Webhook, server};
use serde_json::{Value, json};

struct Running {
    addr: SocketAddr,
    client: reqwest::Client,
    _dir: common::TempDir,
}

async fn start() -> Running {
    let dir = common::temp_dir("http");
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let ss = ensure_self_signed(&dir, &names).unwrap();
    assert!(ss.generated);
    // Reused on a second call.
    assert!(!ensure_self_signed(&dir, &names).unwrap().generated);
    let cert = Arc::new(ReloadingCert::open(&ss.cert, &ss.key).unwrap());
    let tls = server_config(cert).unwrap();
    let mut sas = ServiceAccounts::default();
    sas.insert_annotations(
        "default",
        "app",
        [(
            "eks.amazonaws.com/role-arn".to_owned(),
            "arn:aws:iam::111122223333:role/app".to_owned(),
        )]
        .into(),
    );
    let w = Arc::new(Webhook::new(
        Settings::default(),
        Arc::new(sas),
        Arc::new(Associations::default()),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(server::serve_tls(
        listener,
        server::router(w),
        tls,
        std::future::pending(),
    ));
    let ca = reqwest::Certificate::from_pem(ss.ca_pem().unwrap().as_bytes()).unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_only([ca])
        .build()
        .unwrap();
    Running {
        addr,
        client,
        _dir: dir,
    }
}

fn pod(sa: &str) -> Value {
    json!({"metadata": {"name": "p"}, "spec": {"serviceAccountName": sa, "containers": [{"name": "c", "image": "x"}]}})
}

impl Running {
    async fn post(&self, content_type: &str, body: Vec<u8>) -> (u16, String) {
        let r = self
            .client
            .post(format!("https://localhost:{}/mutate", self.addr.port()))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }
}

#[tokio::test]
async fn https_admission() {
    let s = start().await;
    // Wrong content type.
    let (st, body) = s.post("text/plain", b"{}".to_vec()).await;
    assert_eq!(st, 415);
    assert!(body.contains("application/json"));
    // Malformed JSON: 400 with the reason.
    let (st, body) = s.post("application/json", b"{not json".to_vec()).await;
    assert_eq!(st, 400);
    assert!(body.contains("malformed AdmissionReview"), "{body}");
    // No request.
    let (st, body) = s
        .post(
            "application/json",
            br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#.to_vec(),
        )
        .await;
    assert_eq!(st, 400);
    assert!(body.contains("no request"), "{body}");
    // Unsupported apiVersion.
    let (st, body) = s.post("application/json", br#"{"apiVersion":"admission.k8s.io/v2","kind":"AdmissionReview","request":{"uid":"u"}}"#.to_vec()).await;
    assert_eq!(st, 400);
    assert!(body.contains("unsupported apiVersion"), "{body}");
    // No identity: allowed, no patch, uid echoed.
    let rv = common::review("uid-none", "default", "CREATE", &pod("nobody"));
    let (st, body) = s
        .post("application/json", rv.to_string().into_bytes())
        .await;
    assert_eq!(st, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(v["kind"], "AdmissionReview");
    assert_eq!(v["response"]["uid"], "uid-none");
    assert_eq!(v["response"]["allowed"], true);
    assert!(v["response"].get("patch").is_none());
    assert!(v["response"].get("patchType").is_none());
    // v1beta1 accepted and echoed; an IRSA pod gets a patch.
    let mut rv = common::review("uid-beta", "default", "CREATE", &pod("app"));
    rv["apiVersion"] = json!("admission.k8s.io/v1beta1");
    let (st, body) = s
        .post(
            "application/json; charset=utf-8",
            rv.to_string().into_bytes(),
        )
        .await;
    assert_eq!(st, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["apiVersion"], "admission.k8s.io/v1beta1");
    assert_eq!(v["response"]["uid"], "uid-beta");
    let patch = common::decoded_patch(&v).unwrap();
    assert_eq!(patch.len(), 2);
    // healthz and metrics.
    let base = format!("https://localhost:{}", s.addr.port());
    let h = s
        .client
        .get(format!("{base}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(h.status(), 200);
    assert_eq!(h.text().await.unwrap(), "ok");
    let m = s
        .client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        m.contains("podiam_webhook_mutations_total{method=\"irsa\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("podiam_webhook_mutations_total{method=\"none\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("podiam_webhook_missing_service_accounts_total 1"),
        "{m}"
    );
    assert!(m.contains("podiam_webhook_bad_requests_total 4"), "{m}");
    assert!(
        m.contains("podiam_webhook_admission_duration_seconds_count 2"),
        "{m}"
    );
}

#[test]
fn certificate_reload() {
    let a = common::temp_dir("ca");
    let b = common::temp_dir("cb");
    let names = vec!["localhost".to_owned()];
    let sa = ensure_self_signed(&a, &names).unwrap();
    let sb = ensure_self_signed(&b, &names).unwrap();
    let cert = ReloadingCert::open(&sa.cert, &sa.key).unwrap();
    assert!(!cert.reload_if_changed());
    std::thread::sleep(Duration::from_millis(20));
    std::fs::copy(&sb.cert, &sa.cert).unwrap();
    std::fs::copy(&sb.key, &sa.key).unwrap();
    assert!(cert.reload_if_changed());
    // A broken file is not loaded (the previous pair stays).
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(&sa.cert, "garbage").unwrap();
    assert!(!cert.reload_if_changed());
    let _ = std::fs::remove_dir_all(&a);
    let _ = std::fs::remove_dir_all(&b);
}

/// A fake EKS API listing associations in pages of 2, checking the SigV4 header shape.
#[tokio::test]
async fn eks_associations_client() {
    use axum::extract::{Path, Query, State};
    use axum::http::HeaderMap;
    use std::collections::HashMap;
    let seen = Arc::new(parking_lot::Mutex::new(Vec::<String>::new()));
    let app = axum::Router::new()
        .route(
            "/clusters/{cluster}/pod-identity-associations",
            axum::routing::get(
                |State(seen): State<Arc<parking_lot::Mutex<Vec<String>>>>,
                 Path(cluster): Path<String>,
                 Query(q): Query<HashMap<String, String>>,
                 headers: HeaderMap| async move {
                    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                    seen.lock().push(format!("{cluster} {:?} {auth}", q.get("nextToken")));
                    if !auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDTEST/") || !auth.contains("/eu-west-1/eks/aws4_request") {
                        return (axum::http::StatusCode::FORBIDDEN, "{\"message\":\"bad signature\"}".to_owned());
                    }
                    assert_eq!(q.get("maxResults").map(String::as_str), Some("100"));
                    let body = match q.get("nextToken").map(String::as_str) {
                        None => json!({"associations": [
                            {"clusterName": cluster, "namespace": "default", "serviceAccount": "a", "associationArn": "arn:x", "associationId": "a-1"},
                            {"clusterName": cluster, "namespace": "prod", "serviceAccount": "b", "associationArn": "arn:y", "associationId": "a-2"}],
                            "nextToken": "page/2=+"}),
                        Some("page/2=+") => json!({"associations": [
                            {"clusterName": cluster, "namespace": "prod", "serviceAccount": "c", "associationArn": "arn:z", "associationId": "a-3"}]}),
                        Some(other) => panic!("unexpected token {other}"),
                    };
                    (axum::http::StatusCode::OK, body.to_string())
                },
            ),
        )
        .with_state(Arc::clone(&seen));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let http = reqwest::Client::new();
    let clock = podiam_awsclient::Clock::system();
    let creds = Arc::new(podiam_awsclient::CredentialsProvider::new(
        Some(podiam_awsclient::AwsCredentials::new("AKIDTEST", "secret")),
        podiam_awsclient::Env::default(),
        "eu-west-1".into(),
        http.clone(),
        clock.clone(),
        Duration::from_secs(300),
        Duration::from_secs(5),
    ));
    let client = podiam_webhook::eks::EksClient::with_parts(
        &format!("http://{addr}"),
        "demo",
        "eu-west-1",
        http,
        creds,
        clock,
    )
    .unwrap();
    let src = Arc::new(podiam_webhook::EksAssociations::new(client));
    assert!(!src.is_loaded());
    use podiam_webhook::AssociationSource as _;
    assert!(!src.has_association("default", "a"));
    assert_eq!(src.refresh().await.unwrap(), 3);
    assert!(src.is_loaded());
    assert!(src.has_association("default", "a"));
    assert!(src.has_association("prod", "b"));
    assert!(src.has_association("prod", "c"));
    assert!(!src.has_association("prod", "a"));
    assert_eq!(seen.lock().len(), 2);

    // Background refresh keeps the set; a failing server keeps the previous one.
    let bad = podiam_webhook::eks::EksClient::with_parts(
        "http://127.0.0.1:9",
        "demo",
        "eu-west-1",
        reqwest::Client::new(),
        Arc::new(podiam_awsclient::CredentialsProvider::new(
            Some(podiam_awsclient::AwsCredentials::new("AKIDTEST", "s")),
            podiam_awsclient::Env::default(),
            "eu-west-1".into(),
            reqwest::Client::new(),
            podiam_awsclient::Clock::system(),
            Duration::from_secs(300),
            Duration::from_secs(5),
        )),
        podiam_awsclient::Clock::system(),
    )
    .unwrap();
    let bad_src = Arc::new(podiam_webhook::EksAssociations::new(bad));
    assert!(bad_src.refresh().await.is_err());
    let h = src.spawn_refresh(Duration::from_millis(50));
    tokio::time::sleep(Duration::from_millis(120)).await;
    h.abort();
    assert!(seen.lock().len() >= 4);
    assert!(src.has_association("prod", "c"));
}

/// The webhook's listener bounds slow clients in time (short limits here): a stalled TLS
/// handshake, a request head cut short after the handshake, and an idle kept-alive connection
/// are all closed within their limits, while a complete request is answered.
#[tokio::test]
async fn stalled_clients_lose_their_connection() {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const LIMIT: Duration = Duration::from_millis(400);
    const PATIENCE: Duration = Duration::from_secs(5);
    async fn closed_after<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> (String, Duration) {
        let started = std::time::Instant::now();
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match tokio::time::timeout(PATIENCE, s.read(&mut buf)).await {
                Err(_) => panic!(
                    "connection still open after {PATIENCE:?}: {:?}",
                    String::from_utf8_lossy(&out)
                ),
                Ok(Ok(0) | Err(_)) => {
                    return (
                        String::from_utf8_lossy(&out).into_owned(),
                        started.elapsed(),
                    );
                }
                Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            }
        }
    }

    let dir = common::temp_dir("http-timeouts");
    let ss = ensure_self_signed(&dir, &["localhost".to_owned()]).unwrap();
    let tls = server_config(Arc::new(ReloadingCert::open(&ss.cert, &ss.key).unwrap())).unwrap();
    let w = Arc::new(Webhook::new(
        Settings::default(),
        Arc::new(ServiceAccounts::default()),
        Arc::new(Associations::default()),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let timeouts = server::Timeouts {
        handshake: LIMIT,
        header_read: LIMIT,
        body_read: LIMIT,
        write_stall: LIMIT,
        grace: Duration::from_secs(1),
    };
    tokio::spawn(server::serve_tls_with(
        listener,
        server::router(w),
        tls,
        timeouts,
        std::future::pending(),
    ));

    // Stalled inside the ClientHello.
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(&[
        0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
    ])
    .await
    .unwrap();
    let (_, after) = closed_after(&mut s).await;
    assert!(after >= LIMIT.mul_f32(0.9) && after < PATIENCE, "{after:?}");

    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ss.ca_pem().unwrap().as_bytes()).unwrap())
        .unwrap();
    let client = Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth(),
    );
    let connect = || async {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        tokio_rustls::TlsConnector::from(Arc::clone(&client))
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap()
    };

    // Handshake done, request head cut in the middle of a header line.
    let mut s = connect().await;
    s.write_all(b"POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Ty")
        .await
        .unwrap();
    let (_, after) = closed_after(&mut s).await;
    assert!(after >= LIMIT.mul_f32(0.9) && after < PATIENCE, "{after:?}");

    // A complete request is answered; the connection, then idle, is closed.
    let mut s = connect().await;
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let (resp, after) = closed_after(&mut s).await;
    assert!(
        resp.starts_with("HTTP/1.1 200 OK\r\n") && resp.ends_with("\r\n\r\nok"),
        "{resp}"
    );
    assert!(after >= LIMIT.mul_f32(0.9) && after < PATIENCE, "{after:?}");
}

/// An HTTPS fake EKS on 127.0.0.1 with a certificate from a fresh CA: the first request gets a
/// 503, later ones a one-association page. Returns its port, the CA file and the request count.
async fn https_eks(dir: &std::path::Path) -> (u16, PathBuf, Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let names = vec!["localhost".to_owned()];
    let ss = ensure_self_signed(dir, &names).unwrap();
    let tls = server_config(Arc::new(ReloadingCert::open(&ss.cert, &ss.key).unwrap())).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let Ok(mut s) = acceptor.accept(tcp).await else {
                continue;
            };
            let mut head = Vec::new();
            let mut buf = [0u8; 2048];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let head = String::from_utf8_lossy(&head).to_lowercase();
            assert!(
                head.starts_with("get /clusters/demo/pod-identity-associations?maxresults=100 "),
                "{head}"
            );
            assert!(head.contains("credential=akidprofile/"), "{head}");
            let answer = if seen.fetch_add(1, Ordering::SeqCst) == 0 {
                "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    .to_owned()
            } else {
                let body = json!({"associations": [{"namespace": "prod", "serviceAccount": "a"}]})
                    .to_string();
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                )
            };
            let _ = s.write_all(answer.as_bytes()).await;
            let _ = s.shutdown().await;
        }
    });
    (port, ss.ca_cert, count)
}

/// `EksClient::new` takes its endpoint from the profile's `endpoint_url`, trusts the CA bundle
/// of `AWS_CA_BUNDLE`, signs with the profile's keys for the profile's region, and retries a 503.
#[tokio::test]
async fn eks_client_follows_the_shared_aws_configuration() {
    use podiam_webhook::AssociationSource as _;
    let dir = common::temp_dir("eks-config");
    let (port, ca, count) = https_eks(&dir).await;
    std::fs::write(
        dir.join("config"),
        format!("[profile hub]\nregion = eu-west-3\nendpoint_url = https://localhost:{port}/\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join("credentials"),
        "[hub]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = s\n",
    )
    .unwrap();
    let env = |extra: &[(&str, &str)]| {
        let mut env = podiam_awsclient::Env::from_pairs([
            ("AWS_CONFIG_FILE", dir.join("config").to_str().unwrap()),
            (
                "AWS_SHARED_CREDENTIALS_FILE",
                dir.join("credentials").to_str().unwrap(),
            ),
            ("AWS_PROFILE", "hub"),
        ]);
        for (k, v) in extra {
            env.set(*k, *v);
        }
        env
    };

    let client = podiam_webhook::eks::EksClient::new(
        None,
        "demo",
        None,
        env(&[("AWS_CA_BUNDLE", ca.to_str().unwrap())]),
    )
    .unwrap();
    assert_eq!(client.endpoint(), format!("https://localhost:{port}"));
    assert_eq!(client.region(), "eu-west-3");
    let src = podiam_webhook::EksAssociations::new(client);
    assert_eq!(src.refresh().await.unwrap(), 1);
    assert!(src.has_association("prod", "a"));
    assert_eq!(
        count.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "one 503, retried once"
    );

    // Without the bundle the platform's store does not know the CA: no answer.
    let untrusted = podiam_webhook::eks::EksClient::new(None, "demo", None, env(&[])).unwrap();
    let e = podiam_webhook::EksAssociations::new(untrusted)
        .refresh()
        .await
        .unwrap_err();
    assert!(e.to_string().contains("certificate"), "{e}");

    // A bundle that cannot be read is a startup error naming it.
    let e = podiam_webhook::eks::EksClient::new(
        None,
        "demo",
        None,
        env(&[("AWS_CA_BUNDLE", "/nonexistent/ca.pem")]),
    )
    .unwrap_err();
    assert!(
        e.starts_with("cannot read the CA bundle \"/nonexistent/ca.pem\" (from AWS_CA_BUNDLE)"),
        "{e}"
    );

    // The flags still win over the configuration.
    let flagged = podiam_webhook::eks::EksClient::new(
        Some("http://127.0.0.1:9/"),
        "demo",
        Some("ap-south-1"),
        env(&[]),
    )
    .unwrap();
    assert_eq!(
        (flagged.endpoint(), flagged.region()),
        ("http://127.0.0.1:9", "ap-south-1")
    );
    let _ = std::fs::remove_dir_all(&dir);
}
