//! Measures single-core verification throughput (parse + verify of a typical STS request),
//! with the signing key derived per request and cached; and of a presigned GetCallerIdentity
//! URL as `aws eks get-token` writes it (the SigV4 work of one TokenReview).
//!
//! `cargo run --release -p podiam-sigv4 --example verify_throughput`

use std::time::Instant;

use podiam_sigv4::{
    Expectations, Request, SigningParams, parse, sign, signing_key, verify, verify_with_key,
};

const N: u32 = 50_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let body = b"Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fdemo&RoleSessionName=s&WebIdentityToken=eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6ZGVmYXVsdDpkZW1vIn0.c2lnbmF0dXJl";
    let base = [
        ("host", &b"sts.us-east-1.amazonaws.com"[..]),
        (
            "content-type",
            b"application/x-www-form-urlencoded; charset=utf-8",
        ),
        (
            "user-agent",
            b"aws-sdk-go-v2/1.30.0 os/linux lang/go#1.22 md/GOOS#linux",
        ),
        (
            "amz-sdk-invocation-id",
            b"3b1e6f4e-1a1b-4a0c-9b7e-0b0f0e0d0c0b",
        ),
        ("amz-sdk-request", b"attempt=1; max=3"),
        ("content-length", b"280"),
    ];
    let unsigned = Request {
        method: "POST",
        path: "/",
        query: "",
        headers: &base,
        body,
    };
    let added = sign(
        &unsigned,
        "ASIAEXAMPLE",
        "secret",
        Some("FQoGZXIvYXdzEXAMPLEtoken"),
        "us-east-1",
        "sts",
        "20150830T123600Z",
    );
    let mut headers: Vec<(&str, &[u8])> = base.to_vec();
    headers.extend(added.iter().map(|(n, v)| (n.as_str(), v.as_bytes())));
    let req = Request {
        headers: &headers,
        ..unsigned
    };
    let expect = Expectations {
        regions: &["us-east-1"],
        ..Expectations::new("sts")
    };
    let now = 1_440_938_160;

    let start = Instant::now();
    for _ in 0..N {
        let parsed = parse(&req)?.ok_or("unsigned")?;
        verify(&req, &parsed, "secret", &expect, now)?;
    }
    let per = start.elapsed() / N;
    println!(
        "parse+verify (key derived):  {per:?}/req, {:.0} req/s/core",
        1.0 / per.as_secs_f64()
    );

    let key = signing_key("secret", "20150830", "us-east-1", "sts");
    let start = Instant::now();
    for _ in 0..N {
        let parsed = parse(&req)?.ok_or("unsigned")?;
        verify_with_key(&req, &parsed, &key, &expect, now)?;
    }
    let per = start.elapsed() / N;
    println!(
        "parse+verify (cached key):   {per:?}/req, {:.0} req/s/core",
        1.0 / per.as_secs_f64()
    );

    // `aws eks get-token`: GET /?Action=GetCallerIdentity... presigned for 60 s, with the
    // cluster name as the signed x-k8s-aws-id header and a session token.
    let get_headers: [(&str, &[u8]); 2] = [
        ("host", b"sts.us-east-1.amazonaws.com"),
        ("x-k8s-aws-id", b"my-cluster"),
    ];
    let get = Request {
        method: "GET",
        path: "/",
        query: "Action=GetCallerIdentity&Version=2011-06-15",
        headers: &get_headers,
        body: b"",
    };
    let mut params = SigningParams::new(
        "ASIAEXAMPLE",
        "secret",
        "us-east-1",
        "sts",
        "20150830T123600Z",
    );
    params.session_token = Some("FQoGZXIvYXdzEXAMPLEtoken");
    let query = params.presign(&get, 60);
    let presigned = Request {
        query: &query,
        ..get
    };
    let start = Instant::now();
    for _ in 0..N {
        let parsed = parse(&presigned)?.ok_or("unsigned")?;
        verify(&presigned, &parsed, "secret", &expect, now)?;
    }
    let per = start.elapsed() / N;
    println!(
        "presigned GetCallerIdentity parse+verify (key derived): {per:?}/req, {:.0} req/s/core",
        1.0 / per.as_secs_f64()
    );
    Ok(())
}
