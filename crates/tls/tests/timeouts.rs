//! The accept loop's time limits over real sockets, with short limits: a client that stalls in
//! the TLS handshake, in a request head, between requests or in a body loses its connection
//! within the limit; ordinary requests (several on one kept-alive connection) still work.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::routing::{get, post};
use podiam_tls::{Timeouts, Transport};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

const SHORT: Duration = Duration::from_millis(400);
const LONG: Duration = Duration::from_secs(30);
/// How long a test waits for the server to close before declaring the limit not enforced.
const PATIENCE: Duration = Duration::from_secs(5);

fn timeouts(handshake: Duration, header_read: Duration, body_read: Duration) -> Timeouts {
    Timeouts {
        handshake,
        header_read,
        body_read,
        write_stall: LONG,
        grace: Duration::from_secs(1),
    }
}

/// A response larger than what loopback socket buffers hold.
const BIG: usize = 48 << 20;

fn app() -> Router {
    Router::new()
        .route("/", get(|| async { "ok" }))
        .route("/big", get(|| async { vec![b'x'; BIG] }))
        .route(
            "/echo",
            post(|body: Bytes| async move { format!("{} bytes", body.len()) }),
        )
}

/// A server certificate for `localhost` signed by a fresh CA: (server config, client config).
fn tls_pair() -> (Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>) {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let server = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![CertificateDer::from(leaf.der().to_vec())], key)
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(ca.der().to_vec())).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    (Arc::new(server), Arc::new(client))
}

async fn start(transport: Transport, t: Timeouts) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(podiam_tls::serve(
        listener,
        app(),
        transport,
        t,
        std::future::pending(),
        |_, _| {},
    ));
    addr
}

async fn tls_connect(
    addr: SocketAddr,
    client: Arc<rustls::ClientConfig>,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    tokio_rustls::TlsConnector::from(client)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap()
}

/// Reads until the server closes the connection; returns what it sent and when it closed.
async fn read_until_closed<S: AsyncRead + Unpin>(s: &mut S) -> (String, Duration) {
    let started = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(PATIENCE, s.read(&mut buf)).await {
            Err(_) => panic!(
                "the server kept the connection open for {PATIENCE:?}; received {:?}",
                String::from_utf8_lossy(&out)
            ),
            Ok(Ok(0)) | Ok(Err(_)) => {
                return (
                    String::from_utf8_lossy(&out).into_owned(),
                    started.elapsed(),
                );
            }
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// Reads one response to a GET of `/` (body `ok`).
async fn read_ok_response<S: AsyncRead + Unpin>(s: &mut S) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while !out.ends_with(b"\r\n\r\nok") {
        let n = tokio::time::timeout(PATIENCE, s.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed early: {:?}", String::from_utf8_lossy(&out));
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(out).unwrap()
}

/// Sends a request head cut in the middle of a header line, then nothing.
async fn stall_in_head<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S) -> Duration {
    s.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: a")
        .await
        .unwrap();
    s.flush().await.unwrap();
    let (_, closed_after) = read_until_closed(s).await;
    closed_after
}

/// Two requests on one connection, then the connection sits idle until the server closes it.
async fn keep_alive_then_idle<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S) -> Duration {
    for _ in 0..2 {
        s.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        let resp = read_ok_response(s).await;
        assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"), "{resp}");
    }
    let (rest, closed_after) = read_until_closed(s).await;
    assert_eq!(rest, "");
    closed_after
}

#[tokio::test]
async fn plain_partial_head_is_closed_within_the_header_timeout() {
    let addr = start(Transport::Plain, timeouts(LONG, SHORT, LONG)).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let closed_after = stall_in_head(&mut s).await;
    assert!(
        closed_after >= SHORT.mul_f32(0.9) && closed_after < PATIENCE,
        "{closed_after:?}"
    );
}

#[tokio::test]
async fn plain_silent_connection_is_closed_within_the_header_timeout() {
    let addr = start(Transport::Plain, timeouts(LONG, SHORT, LONG)).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let (_, closed_after) = read_until_closed(&mut s).await;
    assert!(closed_after < PATIENCE, "{closed_after:?}");
}

#[tokio::test]
async fn plain_requests_work_and_idle_keep_alive_is_closed() {
    let addr = start(Transport::Plain, timeouts(LONG, SHORT, LONG)).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let idle = keep_alive_then_idle(&mut s).await;
    assert!(idle >= SHORT.mul_f32(0.9) && idle < PATIENCE, "{idle:?}");
}

#[tokio::test]
async fn plain_slow_body_is_cut_within_the_body_timeout() {
    let addr = start(Transport::Plain, timeouts(LONG, LONG, SHORT)).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n0123456789")
        .await
        .unwrap();
    let (resp, closed_after) = read_until_closed(&mut s).await;
    assert!(!resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(
        closed_after >= SHORT.mul_f32(0.9) && closed_after < PATIENCE,
        "{closed_after:?}"
    );
    // A whole body, in time, is read.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: 10\r\n\r\n0123456789").await.unwrap();
    let (resp, _) = read_until_closed(&mut s).await;
    assert!(
        resp.starts_with("HTTP/1.1 200 OK\r\n") && resp.ends_with("\r\n\r\n10 bytes"),
        "{resp}"
    );
}

#[tokio::test]
async fn tls_handshake_stalled_before_the_client_hello_ends_is_closed() {
    let (server, _) = tls_pair();
    let addr = start(Transport::Tls(server), timeouts(SHORT, LONG, LONG)).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    // A TLS record header announcing a 512-byte handshake message, and the first bytes of a
    // ClientHello: the rest never comes.
    s.write_all(&[
        0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
    ])
    .await
    .unwrap();
    let (_, closed_after) = read_until_closed(&mut s).await;
    assert!(
        closed_after >= SHORT.mul_f32(0.9) && closed_after < PATIENCE,
        "{closed_after:?}"
    );
}

#[tokio::test]
async fn tls_partial_head_is_closed_within_the_header_timeout() {
    let (server, client) = tls_pair();
    let addr = start(Transport::Tls(server), timeouts(LONG, SHORT, LONG)).await;
    let mut s = tls_connect(addr, client).await;
    let closed_after = stall_in_head(&mut s).await;
    assert!(
        closed_after >= SHORT.mul_f32(0.9) && closed_after < PATIENCE,
        "{closed_after:?}"
    );
}

#[tokio::test]
async fn tls_requests_work_and_idle_keep_alive_is_closed() {
    let (server, client) = tls_pair();
    let addr = start(Transport::Tls(server), timeouts(SHORT, SHORT, LONG)).await;
    let mut s = tls_connect(addr, client).await;
    let idle = keep_alive_then_idle(&mut s).await;
    assert!(idle >= SHORT.mul_f32(0.9) && idle < PATIENCE, "{idle:?}");
}

#[tokio::test]
async fn shutdown_stops_accepting_and_closes_idle_connections() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(podiam_tls::serve(
        listener,
        app(),
        Transport::Plain,
        timeouts(LONG, LONG, LONG),
        async move {
            let _ = rx.await;
        },
        |_, _| {},
    ));
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    read_ok_response(&mut s).await;
    tx.send(()).unwrap();
    let (_, closed_after) = read_until_closed(&mut s).await;
    assert!(closed_after < PATIENCE);
    tokio::time::timeout(PATIENCE, server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn a_client_that_stops_reading_loses_its_connection() {
    let t = Timeouts {
        write_stall: SHORT,
        ..timeouts(LONG, LONG, LONG)
    };
    let addr = start(Transport::Plain, t).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /big HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    // Take nothing in until the server's write has been stalled for longer than the limit.
    tokio::time::sleep(SHORT * 4).await;
    let mut received = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match tokio::time::timeout(PATIENCE, s.read(&mut buf)).await {
            Err(_) => panic!("the server kept the connection open; {received} bytes received"),
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => received += n,
        }
    }
    assert!(
        received < BIG,
        "the whole response arrived: the write was not cut"
    );
}
