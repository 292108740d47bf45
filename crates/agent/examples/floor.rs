//! The benchmark floor for the agent: a minimal hyper HTTP/1 server that answers every request
//! with one fixed container-credentials JSON body, as large as the agent's. Whatever the agent
//! does beyond this (Host check, token hash, cache lookup) is the difference to this server.
//!
//! `cargo run --release -p podiam-agent --example floor -- PORT` prints `floor on ADDR`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::convert::Infallible;
use std::io::Write;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let body = Bytes::from(
        serde_json::json!({
            "AccessKeyId": "ASIAQEXAMPLEEXAMPLE1",
            "SecretAccessKey": "S".repeat(40),
            "Token": "T".repeat(900),
            "AccountId": "111122223333",
            "Expiration": "2026-12-01T06:00:00Z",
        })
        .to_string(),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    println!("floor on {}", listener.local_addr().unwrap());
    std::io::stdout().flush().unwrap();
    loop {
        let (tcp, _) = listener.accept().await.unwrap();
        let _ = tcp.set_nodelay(true);
        let body = body.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |_req: Request<hyper::body::Incoming>| {
                let body = body.clone();
                async move {
                    Ok::<_, Infallible>(
                        Response::builder()
                            .header("content-type", "application/json")
                            .body(Full::new(body))
                            .unwrap(),
                    )
                }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), svc)
                .await;
        });
    }
}
