//! A load-test target: the agent on 127.0.0.1 in front of an in-process fake EKS Auth.
//! Prints the credentials URL and a token, then serves until Ctrl-C. For example:
//!
//! ```sh
//! cargo run --release -p podiam-agent --example bench_target -- 18080 > target.txt &
//! wrk -t2 -c32 -d10s -H "Authorization: $(sed -n 2p target.txt)" "$(sed -n 1p target.txt)"
//! ```
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use std::io::Write;

use axum::response::IntoResponse;
use base64::Engine as _;

async fn fake_eks_auth() -> axum::response::Response {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 6 * 3600;
    let body = serde_json::json!({
        "subject": {"namespace": "default", "serviceAccount": "sa"},
        "audience": "pods.eks.amazonaws.com",
        "podIdentityAssociation": {"associationArn": "arn:aws:eks:us-east-1:111122223333:podidentityassociation/bench/a-1", "associationId": "a-1"},
        "assumedRoleUser": {"arn": "arn:aws:sts::111122223333:assumed-role/r/eks-bench-p-1", "assumeRoleId": "AROA:x"},
        "credentials": {"sessionToken": "T".repeat(800), "secretAccessKey": "S".repeat(40), "accessKeyId": "ASIABENCH", "expiration": exp}
    });
    ([("content-type", "application/json")], body.to_string()).into_response()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(l, axum::Router::new().fallback(fake_eks_auth))
            .await
            .unwrap()
    });

    let mut c = podiam_agent::Config::new("bench");
    c.bind = vec!["127.0.0.1".parse().unwrap()];
    c.port = port;
    c.probe_port = 0;
    c.metrics_port = None;
    c.endpoint = Some(upstream);
    c.region = Some("us-east-1".into());
    c.env = podiam_agent::Env::from_pairs([("HOME", "/nonexistent")]);
    c.static_credentials = Some(podiam_agent::AwsCredentials::new("AKIDBENCH", "secret"));
    c.inbound_rps = 0;
    c.inbound_pod_rps = 0;
    c.inbound_unverified_rps = 0;
    let agent = podiam_agent::start(c).await.unwrap();

    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = serde_json::json!({"aud": ["pods.eks.amazonaws.com"], "exp": now + 86400, "iat": now, "nbf": now,
        "iss": "https://oidc.example/id/1", "sub": "system:serviceaccount:default:bench",
        "kubernetes.io": {"namespace": "default", "pod": {"name": "bench", "uid": "0"}, "serviceaccount": {"name": "bench", "uid": "1"}}});
    let token = format!(
        "{}.{}.{}",
        b64(r#"{"alg":"RS256","kid":"k"}"#),
        b64(&claims.to_string()),
        b64(&"s".repeat(256))
    );
    let mut out = std::io::stdout().lock();
    writeln!(out, "http://{}/v1/credentials", agent.credential_addrs()[0]).unwrap();
    writeln!(out, "{token}").unwrap();
    out.flush().unwrap();
    drop(out);
    let _ = tokio::signal::ctrl_c().await;
    agent.shutdown().await;
}
