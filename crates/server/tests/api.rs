//! The HTTP API through the router, with no socket (`Router::oneshot`): every protocol's
//! success and error shapes, SigV4 refusals, and the IRSA flow with its tampering cases.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use podiam_control::crypto::MasterKey;
use podiam_control::issuer::TokenRequest;
use podiam_control::{Caller, Config, Control, SystemClock};
use tower::ServiceExt;

struct Fixture {
    control: Arc<Control>,
    router: axum::Router,
    account: String,
    akid: String,
    secret: String,
}

async fn fixture() -> Fixture {
    let store = podiam_store::SqliteStore::memory().await.unwrap();
    let (master, _) = MasterKey::generate().unwrap();
    let control = Arc::new(
        Control::open(
            Config::default(),
            Arc::new(store),
            master,
            Arc::new(SystemClock),
        )
        .await
        .unwrap(),
    );
    let boot = control
        .bootstrap(Some("111122223333"))
        .await
        .unwrap()
        .unwrap();
    let router = podiam_server::router(Arc::clone(&control), podiam_server::Options::default());
    Fixture {
        control,
        router,
        account: boot.account,
        akid: boot.access_key_id,
        secret: boot.secret_access_key,
    }
}

fn amz_date(offset_secs: i64) -> String {
    let t = time::OffsetDateTime::now_utc() + time::Duration::seconds(offset_secs);
    t.format(time::macros::format_description!(
        "[year][month][day]T[hour][minute][second]Z"
    ))
    .unwrap()
}

struct Creds<'a> {
    akid: &'a str,
    secret: &'a str,
    token: Option<&'a str>,
}

#[allow(clippy::too_many_arguments)]
fn signed_req(
    method: &str,
    path: &str,
    body: &str,
    content_type: &str,
    c: &Creds<'_>,
    region: &str,
    service: &str,
    offset: i64,
) -> Request<Body> {
    let headers = [
        ("host", "podiam.test".as_bytes()),
        ("content-type", content_type.as_bytes()),
    ];
    let req = podiam_sigv4::Request {
        method,
        path,
        query: "",
        headers: &headers,
        body: body.as_bytes(),
    };
    let extra = podiam_sigv4::sign(
        &req,
        c.akid,
        c.secret,
        c.token,
        region,
        service,
        &amz_date(offset),
    );
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "podiam.test")
        .header("content-type", content_type);
    for (k, v) in extra {
        b = b.header(k, v);
    }
    b.body(Body::from(body.to_owned())).unwrap()
}

fn form(body: &str, c: &Creds<'_>, service: &str) -> Request<Body> {
    signed_req(
        "POST",
        "/",
        body,
        "application/x-www-form-urlencoded; charset=utf-8",
        c,
        "us-east-1",
        service,
        0,
    )
}

async fn send(f: &Fixture, req: Request<Body>) -> (StatusCode, String, Option<String>) {
    let resp = f.router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let etype = resp
        .headers()
        .get("x-amzn-errortype")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = String::from_utf8(
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    (status, body, etype)
}

fn code_of(xml: &str) -> &str {
    let start = xml.find("<Code>").map(|i| i + 6).unwrap_or(0);
    let end = xml.find("</Code>").unwrap_or(0);
    xml.get(start..end).unwrap_or("")
}

fn between<'a>(xml: &'a str, tag: &str) -> &'a str {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let s = xml.find(&open).map(|i| i + open.len()).unwrap();
    let e = xml[s..].find(&close).unwrap() + s;
    &xml[s..e]
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

const GCI: &str = "Action=GetCallerIdentity&Version=2011-06-15";

#[tokio::test]
async fn root_get_caller_identity() {
    let f = fixture().await;
    let c = Creds {
        akid: &f.akid,
        secret: &f.secret,
        token: None,
    };
    let (s, body, _) = send(&f, form(GCI, &c, "sts")).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert!(
        body.contains("<Arn>arn:aws:iam::111122223333:root</Arn>"),
        "{body}"
    );
    assert!(body.contains("<Account>111122223333</Account>"));
    assert!(body.contains("<ResponseMetadata><RequestId>"));
}

#[tokio::test]
async fn sigv4_refusals() {
    let f = fixture().await;
    let good = Creds {
        akid: &f.akid,
        secret: &f.secret,
        token: None,
    };
    let unsigned = Request::builder()
        .method("POST")
        .uri("/")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(GCI))
        .unwrap();
    let cases: Vec<(&str, Request<Body>, StatusCode, &str)> = vec![
        (
            "unsigned",
            unsigned,
            StatusCode::FORBIDDEN,
            "MissingAuthenticationToken",
        ),
        (
            "wrong secret",
            form(
                GCI,
                &Creds {
                    secret: "x".repeat(40).as_str(),
                    ..good
                },
                "sts",
            ),
            StatusCode::FORBIDDEN,
            "SignatureDoesNotMatch",
        ),
        (
            "unknown key",
            form(
                GCI,
                &Creds {
                    akid: "AKIAAAAAAAAAAAAAAAAA",
                    ..good
                },
                "sts",
            ),
            StatusCode::FORBIDDEN,
            "InvalidClientTokenId",
        ),
        (
            "temporary key without token",
            form(
                GCI,
                &Creds {
                    akid: "ASIAAAAAAAAAAAAAAAAA",
                    ..good
                },
                "sts",
            ),
            StatusCode::FORBIDDEN,
            "InvalidClientTokenId",
        ),
        (
            "6 minutes old",
            signed_req(
                "POST",
                "/",
                GCI,
                "application/x-www-form-urlencoded",
                &good,
                "us-east-1",
                "sts",
                -360,
            ),
            StatusCode::FORBIDDEN,
            "SignatureDoesNotMatch",
        ),
        (
            "6 minutes ahead",
            signed_req(
                "POST",
                "/",
                GCI,
                "application/x-www-form-urlencoded",
                &good,
                "us-east-1",
                "sts",
                360,
            ),
            StatusCode::FORBIDDEN,
            "SignatureDoesNotMatch",
        ),
        (
            "wrong service",
            form(GCI, &good, "s3"),
            StatusCode::FORBIDDEN,
            "SignatureDoesNotMatch",
        ),
        (
            "wrong region",
            signed_req(
                "POST",
                "/",
                GCI,
                "application/x-www-form-urlencoded",
                &good,
                "eu-west-9",
                "sts",
                0,
            ),
            StatusCode::FORBIDDEN,
            "SignatureDoesNotMatch",
        ),
        (
            "garbage session token",
            form(
                GCI,
                &Creds {
                    token: Some("AQAAAAE="),
                    ..good
                },
                "sts",
            ),
            StatusCode::FORBIDDEN,
            "InvalidClientTokenId",
        ),
    ];
    for (name, req, status, code) in cases {
        let (s, body, _) = send(&f, req).await;
        assert_eq!((s, code_of(&body)), (status, code), "{name}: {body}");
        assert!(
            body.starts_with("<?xml")
                && body.contains("<ErrorResponse")
                && body.contains("<Type>Sender</Type>"),
            "{name}: {body}"
        );
    }
    // Tampering with the signed body after signing.
    let mut req = form(GCI, &good, "sts");
    *req.body_mut() = Body::from("Action=GetCallerIdentity&Version=2011-06-15&X=1");
    let (s, body, _) = send(&f, req).await;
    assert_eq!(
        (s, code_of(&body)),
        (StatusCode::FORBIDDEN, "SignatureDoesNotMatch")
    );
}

#[tokio::test]
async fn query_protocol_errors() {
    let f = fixture().await;
    let c = Creds {
        akid: &f.akid,
        secret: &f.secret,
        token: None,
    };
    let (s, body, _) = send(&f, form("Action=GetCallerIdentity", &c, "sts")).await;
    assert_eq!(
        (s, code_of(&body)),
        (StatusCode::BAD_REQUEST, "MissingParameter")
    );
    let (s, body, _) = send(&f, form("Action=Frobnicate&Version=2011-06-15", &c, "sts")).await;
    assert_eq!(
        (s, code_of(&body)),
        (StatusCode::BAD_REQUEST, "InvalidAction")
    );
    let (s, body, _) = send(&f, form("Action=GetRole&Version=2010-05-08", &c, "iam")).await;
    assert_eq!(
        (s, code_of(&body)),
        (StatusCode::BAD_REQUEST, "ValidationError"),
        "{body}"
    );
    let (s, body, _) = send(
        &f,
        form("Action=GetRole&Version=2010-05-08&RoleName=nope", &c, "iam"),
    )
    .await;
    assert_eq!(
        (s, code_of(&body)),
        (StatusCode::NOT_FOUND, "NoSuchEntity"),
        "{body}"
    );
    assert!(body.contains("xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\""));
    let big = format!(
        "Action=GetCallerIdentity&Version=2011-06-15&P={}",
        "a".repeat(2 << 20)
    );
    let req = Request::builder()
        .method("POST")
        .uri("/")
        .body(Body::from(big))
        .unwrap();
    let (s, _, _) = send(&f, req).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn eks_errors_are_rest_json() {
    let f = fixture().await;
    let c = Creds {
        akid: &f.akid,
        secret: &f.secret,
        token: None,
    };
    let (s, body, et) = send(
        &f,
        signed_req(
            "GET",
            "/clusters/missing",
            "",
            "application/json",
            &c,
            "us-east-1",
            "eks",
            0,
        ),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(et.as_deref(), Some("ResourceNotFoundException"));
    assert_eq!(body, r#"{"message":"no cluster found for name: missing."}"#);
    let (s, _, et) = send(
        &f,
        signed_req(
            "POST",
            "/clusters",
            "{not json",
            "application/json",
            &c,
            "us-east-1",
            "eks",
            0,
        ),
    )
    .await;
    assert_eq!(
        (s, et.as_deref()),
        (StatusCode::BAD_REQUEST, Some("InvalidParameterException"))
    );
    let (s, _, et) = send(
        &f,
        signed_req(
            "POST",
            "/clusters",
            r#"{"name":"x"}"#,
            "application/json",
            &c,
            "us-east-1",
            "eks",
            0,
        ),
    )
    .await;
    assert_eq!(
        (s, et.as_deref()),
        (StatusCode::BAD_REQUEST, Some("InvalidParameterException"))
    );
    let (s, _, et) = send(
        &f,
        signed_req(
            "GET",
            "/clusters",
            "",
            "application/json",
            &c,
            "us-east-1",
            "eks",
            0,
        ),
    )
    .await;
    assert_eq!((s, et), (StatusCode::OK, None));
}

/// Create a cluster, its provider and an IRSA role; return (token, role arn).
async fn irsa_setup(f: &Fixture) -> (String, String) {
    let c = Creds {
        akid: &f.akid,
        secret: &f.secret,
        token: None,
    };
    let body = r#"{"name":"demo","roleArn":"arn:aws:iam::111122223333:role/eks","resourcesVpcConfig":{"subnetIds":["subnet-1"]}}"#;
    let (s, out, _) = send(
        f,
        signed_req(
            "POST",
            "/clusters",
            body,
            "application/json",
            &c,
            "us-east-1",
            "eks",
            0,
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(
        v["cluster"]["createdAt"].is_number(),
        "rest-json timestamps are numbers"
    );
    let issuer = v["cluster"]["identity"]["oidc"]["issuer"]
        .as_str()
        .unwrap()
        .to_owned();
    let hostpath = issuer.trim_start_matches("https://").to_owned();
    let (s, out, _) = send(
        f,
        form(&format!("Action=CreateOpenIDConnectProvider&Version=2010-05-08&Url={}&ClientIDList.member.1=sts.amazonaws.com", enc(&issuer)), &c, "iam"),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{out}");
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"Federated":"arn:aws:iam::111122223333:oidc-provider/{hostpath}"}},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{{"StringEquals":{{"{hostpath}:sub":"system:serviceaccount:default:my-sa","{hostpath}:aud":"sts.amazonaws.com"}}}}}}]}}"#
    );
    let (s, out, _) = send(
        f,
        form(
            &format!(
                "Action=CreateRole&Version=2010-05-08&RoleName=irsa&AssumeRolePolicyDocument={}",
                enc(&trust)
            ),
            &c,
            "iam",
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{out}");
    let returned = between(&out, "AssumeRolePolicyDocument");
    assert!(
        returned.starts_with("%7B%22Version%22"),
        "policy documents are URL-encoded: {returned}"
    );
    let root = Caller::Root {
        account: f.account.clone(),
    };
    let meta = podiam_control::auth::RequestMeta::default();
    let token = f
        .control
        .mint_service_account_token(
            &root,
            &meta,
            "demo",
            &TokenRequest {
                namespace: "default".into(),
                service_account: "my-sa".into(),
                ..Default::default()
            },
        )
        .unwrap();
    (token, "arn:aws:iam::111122223333:role/irsa".into())
}

fn awwi(role: &str, session: &str, token: &str) -> Request<Body> {
    let body = format!(
        "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn={}&RoleSessionName={session}&WebIdentityToken={}",
        enc(role),
        enc(token)
    );
    Request::builder()
        .method("POST")
        .uri("/")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .unwrap()
}

#[tokio::test]
async fn irsa_flow_and_session_tampering() {
    let f = fixture().await;
    let (token, role) = irsa_setup(&f).await;
    let (s, out, _) = send(&f, awwi(&role, "s1", &token)).await;
    assert_eq!(s, StatusCode::OK, "{out}");
    assert_eq!(
        between(&out, "SubjectFromWebIdentityToken"),
        "system:serviceaccount:default:my-sa"
    );
    assert_eq!(between(&out, "Audience"), "sts.amazonaws.com");
    let akid = between(&out, "AccessKeyId").to_owned();
    let secret = between(&out, "SecretAccessKey").to_owned();
    let session = between(&out, "SessionToken").to_owned();
    assert!(akid.starts_with("ASIA"));
    let c = Creds {
        akid: &akid,
        secret: &secret,
        token: Some(&session),
    };
    let (s, out, _) = send(&f, form(GCI, &c, "sts")).await;
    assert_eq!(s, StatusCode::OK, "{out}");
    assert_eq!(
        between(&out, "Arn"),
        "arn:aws:sts::111122223333:assumed-role/irsa/s1"
    );
    // Every modified character of the session token is refused.
    let bytes = session.as_bytes();
    for i in (0..bytes.len()).step_by(7) {
        let mut m = bytes.to_vec();
        m[i] = if m[i] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(m).unwrap();
        let c = Creds {
            akid: &akid,
            secret: &secret,
            token: Some(&tampered),
        };
        let (s, out, _) = send(&f, form(GCI, &c, "sts")).await;
        assert_eq!(
            (s, code_of(&out)),
            (StatusCode::FORBIDDEN, "InvalidClientTokenId"),
            "byte {i}"
        );
    }
    // The session's own policy set is empty: IAM calls are denied, not errors.
    let c = Creds {
        akid: &akid,
        secret: &secret,
        token: Some(&session),
    };
    let (s, out, _) = send(&f, form("Action=ListRoles&Version=2010-05-08", &c, "iam")).await;
    assert_eq!(
        (s, code_of(&out)),
        (StatusCode::FORBIDDEN, "AccessDenied"),
        "{out}"
    );
}

#[tokio::test]
async fn web_identity_refusals() {
    let f = fixture().await;
    let (token, role) = irsa_setup(&f).await;
    let root = Caller::Root {
        account: f.account.clone(),
    };
    let meta = podiam_control::auth::RequestMeta::default();
    let mint = |sa: &str, aud: &[&str]| {
        f.control
            .mint_service_account_token(
                &root,
                &meta,
                "demo",
                &TokenRequest {
                    namespace: "default".into(),
                    service_account: sa.into(),
                    audiences: aud.iter().map(|s| (*s).to_owned()).collect(),
                    ..Default::default()
                },
            )
            .unwrap()
    };
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let sig = parts[2].clone();
    parts[2] = format!(
        "{}{}",
        if sig.starts_with('A') { "B" } else { "A" },
        &sig[1..]
    );
    let bad_sig = parts.join(".");
    let cases: Vec<(&str, String, String, StatusCode, &str)> = vec![
        (
            "wrong sub",
            role.clone(),
            mint("other-sa", &[]),
            StatusCode::FORBIDDEN,
            "AccessDenied",
        ),
        (
            "wrong aud",
            role.clone(),
            mint("my-sa", &["other"]),
            StatusCode::BAD_REQUEST,
            "InvalidIdentityToken",
        ),
        (
            "bad signature",
            role.clone(),
            bad_sig,
            StatusCode::BAD_REQUEST,
            "InvalidIdentityToken",
        ),
        (
            "not a jwt",
            role.clone(),
            "abc.def".into(),
            StatusCode::BAD_REQUEST,
            "InvalidIdentityToken",
        ),
        (
            "oversize",
            role.clone(),
            "a".repeat(20_001),
            StatusCode::BAD_REQUEST,
            "ValidationError",
        ),
        (
            "missing role",
            "arn:aws:iam::111122223333:role/nope".into(),
            token.clone(),
            StatusCode::FORBIDDEN,
            "AccessDenied",
        ),
        (
            "malformed role arn",
            "arn:aws:iam::1111:role/nope-nope-nope".into(),
            token.clone(),
            StatusCode::BAD_REQUEST,
            "ValidationError",
        ),
    ];
    for (name, role, tok, status, code) in cases {
        let (s, out, _) = send(&f, awwi(&role, "s1", &tok)).await;
        assert_eq!((s, code_of(&out)), (status, code), "{name}: {out}");
    }
    for (session, code) in [("a", "ValidationError"), ("has space", "ValidationError")] {
        let (s, out, _) = send(&f, awwi(&role, &enc(session), &token)).await;
        assert_eq!(
            (s, code_of(&out)),
            (StatusCode::BAD_REQUEST, code),
            "session {session:?}: {out}"
        );
    }
}

/// Run one query call as `c` and return (status, body).
async fn call(f: &Fixture, c: &Creds<'_>, service: &str, body: &str) -> (StatusCode, String) {
    let (s, b, _) = send(f, form(body, c, service)).await;
    (s, b)
}

#[tokio::test]
async fn cross_account_assume_role_needs_trust_and_identity() {
    let f = fixture().await;
    let b = f
        .control
        .create_account("444455556666")
        .await
        .unwrap()
        .unwrap();
    let root_a = Creds {
        akid: &f.akid,
        secret: &f.secret,
        token: None,
    };
    let root_b = Creds {
        akid: &b.access_key_id,
        secret: &b.secret_access_key,
        token: None,
    };
    assert_eq!(
        call(
            &f,
            &root_a,
            "iam",
            "Action=CreateUser&Version=2010-05-08&UserName=alice"
        )
        .await
        .0,
        StatusCode::OK
    );
    let (s, out) = call(
        &f,
        &root_a,
        "iam",
        "Action=CreateAccessKey&Version=2010-05-08&UserName=alice",
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (akid, secret) = (
        between(&out, "AccessKeyId").to_owned(),
        between(&out, "SecretAccessKey").to_owned(),
    );
    let alice = Creds {
        akid: &akid,
        secret: &secret,
        token: None,
    };
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/alice"},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"sts:ExternalId":"ext-123"}}}]}"#;
    let (s, out) = call(
        &f,
        &root_b,
        "iam",
        &format!(
            "Action=CreateRole&Version=2010-05-08&RoleName=xrole&AssumeRolePolicyDocument={}",
            enc(trust)
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{out}");
    let assume = |ext: &str| {
        format!(
            "Action=AssumeRole&Version=2011-06-15&RoleArn={}&RoleSessionName=xs&ExternalId={ext}",
            enc("arn:aws:iam::444455556666:role/xrole")
        )
    };
    // Trust alone is not enough across accounts.
    let (s, out) = call(&f, &alice, "sts", &assume("ext-123")).await;
    assert_eq!(
        (s, code_of(&out)),
        (StatusCode::FORBIDDEN, "AccessDenied"),
        "{out}"
    );
    let allow = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"arn:aws:iam::444455556666:role/*"}]}"#;
    let (s, _) = call(&f, &root_a, "iam", &format!("Action=PutUserPolicy&Version=2010-05-08&UserName=alice&PolicyName=ar&PolicyDocument={}", enc(allow))).await;
    assert_eq!(s, StatusCode::OK);
    let (s, out) = call(&f, &alice, "sts", &assume("ext-123")).await;
    assert_eq!(s, StatusCode::OK, "{out}");
    assert_eq!(
        between(&out, "Arn"),
        "arn:aws:sts::444455556666:assumed-role/xrole/xs"
    );
    // The trust policy's conditions still hold.
    let (s, out) = call(&f, &alice, "sts", &assume("ext-999")).await;
    assert_eq!(
        (s, code_of(&out)),
        (StatusCode::FORBIDDEN, "AccessDenied"),
        "{out}"
    );
    // A trust policy must name users that exist (bob does not, yet)...
    let to_bob = format!(
        "Action=UpdateAssumeRolePolicy&Version=2010-05-08&RoleName=xrole&PolicyDocument={}",
        enc(&trust.replace("user/alice", "user/bob"))
    );
    let (s, out) = call(&f, &root_b, "iam", &to_bob).await;
    assert_eq!(
        (s, code_of(&out)),
        (StatusCode::BAD_REQUEST, "MalformedPolicyDocument"),
        "{out}"
    );
    // ...and an identity policy alone, without trust, is not enough either.
    let (s, _) = call(
        &f,
        &root_a,
        "iam",
        "Action=CreateUser&Version=2010-05-08&UserName=bob",
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = call(&f, &root_b, "iam", &to_bob).await;
    assert_eq!(s, StatusCode::OK);
    let (s, out) = call(&f, &alice, "sts", &assume("ext-123")).await;
    assert_eq!(
        (s, code_of(&out)),
        (StatusCode::FORBIDDEN, "AccessDenied"),
        "{out}"
    );
    // Account A's root cannot read account B's roles.
    let (s, out) = call(
        &f,
        &root_a,
        "iam",
        "Action=GetRole&Version=2010-05-08&RoleName=xrole",
    )
    .await;
    assert_eq!(
        (s, code_of(&out)),
        (StatusCode::NOT_FOUND, "NoSuchEntity"),
        "{out}"
    );
}

#[tokio::test]
async fn role_chaining_and_session_tags() {
    let f = fixture().await;
    let root = Creds {
        akid: &f.akid,
        secret: &f.secret,
        token: None,
    };
    call(
        &f,
        &root,
        "iam",
        "Action=CreateUser&Version=2010-05-08&UserName=u",
    )
    .await;
    let (_, out) = call(
        &f,
        &root,
        "iam",
        "Action=CreateAccessKey&Version=2010-05-08&UserName=u",
    )
    .await;
    let (akid, secret) = (
        between(&out, "AccessKeyId").to_owned(),
        between(&out, "SecretAccessKey").to_owned(),
    );
    let user = Creds {
        akid: &akid,
        secret: &secret,
        token: None,
    };
    let trust_user = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/u"},"Action":["sts:AssumeRole","sts:TagSession"]}]}"#;
    let trust_role = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/first"},"Action":["sts:AssumeRole","sts:TagSession"],"Condition":{"StringEquals":{"aws:PrincipalTag/team":"blue"}}}]}"#;
    for (name, trust) in [("first", trust_user), ("second", trust_role)] {
        let (s, out) = call(&f, &root, "iam", &format!("Action=CreateRole&Version=2010-05-08&RoleName={name}&AssumeRolePolicyDocument={}&MaxSessionDuration=7200", enc(trust))).await;
        assert_eq!(s, StatusCode::OK, "{out}");
    }
    let allow = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}"#;
    call(
        &f,
        &root,
        "iam",
        &format!(
            "Action=PutRolePolicy&Version=2010-05-08&RoleName=first&PolicyName=p&PolicyDocument={}",
            enc(allow)
        ),
    )
    .await;
    // Root may not assume roles.
    let first = format!(
        "Action=AssumeRole&Version=2011-06-15&RoleArn={}&RoleSessionName=one",
        enc("arn:aws:iam::111122223333:role/first")
    );
    let (s, out) = call(&f, &root, "sts", &first).await;
    assert_eq!(
        (s, code_of(&out)),
        (StatusCode::FORBIDDEN, "AccessDenied"),
        "{out}"
    );
    // Same-account trust naming the user is enough without an identity policy.
    let (s, out) = call(&f, &user, "sts", &format!("{first}&Tags.member.1.Key=team&Tags.member.1.Value=blue&TransitiveTagKeys.member.1=team&DurationSeconds=7200")).await;
    assert_eq!(s, StatusCode::OK, "{out}");
    let (a1, s1, t1) = (
        between(&out, "AccessKeyId").to_owned(),
        between(&out, "SecretAccessKey").to_owned(),
        between(&out, "SessionToken").to_owned(),
    );
    let sess = Creds {
        akid: &a1,
        secret: &s1,
        token: Some(&t1),
    };
    let second = format!(
        "Action=AssumeRole&Version=2011-06-15&RoleArn={}&RoleSessionName=two",
        enc("arn:aws:iam::111122223333:role/second")
    );
    // Chained sessions are capped at one hour.
    let (s, out) = call(&f, &sess, "sts", &format!("{second}&DurationSeconds=3601")).await;
    assert_eq!(
        (s, code_of(&out)),
        (StatusCode::BAD_REQUEST, "ValidationError"),
        "{out}"
    );
    // The transitive tag satisfies aws:PrincipalTag/team in the next trust policy.
    let (s, out) = call(&f, &sess, "sts", &second).await;
    assert_eq!(s, StatusCode::OK, "{out}");
    // A transitive tag cannot be overridden down the chain.
    let (s, out) = call(
        &f,
        &sess,
        "sts",
        &format!("{second}&Tags.member.1.Key=team&Tags.member.1.Value=red"),
    )
    .await;
    assert_eq!(
        (s, code_of(&out)),
        (StatusCode::BAD_REQUEST, "InvalidParameterValue"),
        "{out}"
    );
    // Without the tag the condition fails.
    let (s, out) = call(&f, &user, "sts", &first).await;
    assert_eq!(s, StatusCode::OK);
    let (a2, s2, t2) = (
        between(&out, "AccessKeyId").to_owned(),
        between(&out, "SecretAccessKey").to_owned(),
        between(&out, "SessionToken").to_owned(),
    );
    let untagged = Creds {
        akid: &a2,
        secret: &s2,
        token: Some(&t2),
    };
    let (s, out) = call(&f, &untagged, "sts", &second).await;
    assert_eq!(
        (s, code_of(&out)),
        (StatusCode::FORBIDDEN, "AccessDenied"),
        "{out}"
    );
}

#[tokio::test]
async fn simulate_custom_and_principal_policy() {
    let f = fixture().await;
    let root = Creds {
        akid: &f.akid,
        secret: &f.secret,
        token: None,
    };
    let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"},{"Effect":"Deny","Action":"s3:DeleteBucket","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]}"#;
    let body = format!(
        "Action=SimulateCustomPolicy&Version=2010-05-08&PolicyInputList.member.1={}&ActionNames.member.1=s3:GetObject&ActionNames.member.2=s3:DeleteBucket&ContextEntries.member.1.ContextKeyName=aws:SourceIp&ContextEntries.member.1.ContextKeyValues.member.1=10.1.2.3&ContextEntries.member.1.ContextKeyType=ip",
        enc(doc)
    );
    let (s, out) = call(&f, &root, "iam", &body).await;
    assert_eq!(s, StatusCode::OK, "{out}");
    let decisions: Vec<&str> = out
        .match_indices("<EvalDecision>")
        .map(|(i, _)| &out[i + 14..i + 14 + out[i + 14..].find('<').unwrap()])
        .collect();
    assert_eq!(decisions, vec!["allowed", "explicitDeny"], "{out}");
    assert!(out.contains("<SourcePolicyId>PolicyInputList.1</SourcePolicyId>"));
    assert!(
        out.contains("<StartPosition><Line>1</Line><Column>38</Column></StartPosition>"),
        "{out}"
    );
    // Without the context key the Deny's condition cannot match: allowed, and the key is reported missing.
    let body = format!(
        "Action=SimulateCustomPolicy&Version=2010-05-08&PolicyInputList.member.1={}&ActionNames.member.1=s3:DeleteBucket",
        enc(doc)
    );
    let (_, out) = call(&f, &root, "iam", &body).await;
    assert!(
        out.contains("<EvalDecision>allowed</EvalDecision>")
            && out.contains(
                "<MissingContextValues><member>aws:SourceIp</member></MissingContextValues>"
            ),
        "{out}"
    );
    // Malformed input policies and bad context types are client errors.
    let (s, out) = call(&f, &root, "iam", "Action=SimulateCustomPolicy&Version=2010-05-08&PolicyInputList.member.1=%7B&ActionNames.member.1=s3:GetObject").await;
    assert_eq!(
        (s, code_of(&out)),
        (StatusCode::BAD_REQUEST, "MalformedPolicyDocument")
    );
    let (s, out) = call(&f, &root, "iam", &format!("Action=SimulateCustomPolicy&Version=2010-05-08&PolicyInputList.member.1={}&ActionNames.member.1=s3:GetObject&ContextEntries.member.1.ContextKeyName=aws:SourceIp&ContextEntries.member.1.ContextKeyType=bogus", enc(doc))).await;
    assert_eq!(
        (s, code_of(&out)),
        (StatusCode::BAD_REQUEST, "ValidationError")
    );
    let (s, out) = call(
        &f,
        &root,
        "iam",
        &format!(
            "Action=SimulateCustomPolicy&Version=2010-05-08&PolicyInputList.member.1={}",
            enc(doc)
        ),
    )
    .await;
    assert_eq!(
        (s, code_of(&out)),
        (StatusCode::BAD_REQUEST, "ValidationError")
    );
    // Principal simulation uses the user's stored policies.
    call(
        &f,
        &root,
        "iam",
        "Action=CreateUser&Version=2010-05-08&UserName=sim",
    )
    .await;
    let p = r#"{"Version":"2012-10-17","Statement":[{"Sid":"ReadRoles","Effect":"Allow","Action":"iam:GetRole","Resource":"*"}]}"#;
    call(
        &f,
        &root,
        "iam",
        &format!(
            "Action=PutUserPolicy&Version=2010-05-08&UserName=sim&PolicyName=p1&PolicyDocument={}",
            enc(p)
        ),
    )
    .await;
    let (s, out) = call(&f, &root, "iam", &format!("Action=SimulatePrincipalPolicy&Version=2010-05-08&PolicySourceArn={}&ActionNames.member.1=iam:GetRole&ActionNames.member.2=iam:DeleteRole", enc("arn:aws:iam::111122223333:user/sim"))).await;
    assert_eq!(s, StatusCode::OK, "{out}");
    assert!(out.contains("<EvalActionName>iam:GetRole</EvalActionName><EvalResourceName>*</EvalResourceName><EvalDecision>allowed</EvalDecision><MatchedStatements><member><SourcePolicyId>p1</SourcePolicyId><SourcePolicyType>user</SourcePolicyType>"), "{out}");
    assert!(out.contains("<EvalActionName>iam:DeleteRole</EvalActionName><EvalResourceName>*</EvalResourceName><EvalDecision>implicitDeny</EvalDecision>"), "{out}");
    let (s, out) = call(&f, &root, "iam", &format!("Action=SimulatePrincipalPolicy&Version=2010-05-08&PolicySourceArn={}&ActionNames.member.1=iam:GetRole", enc("arn:aws:iam::111122223333:user/nobody"))).await;
    assert_eq!((s, code_of(&out)), (StatusCode::NOT_FOUND, "NoSuchEntity"));
}

#[tokio::test]
async fn revoking_a_roles_sessions() {
    let f = fixture().await;
    let root = Creds {
        akid: &f.akid,
        secret: &f.secret,
        token: None,
    };
    call(
        &f,
        &root,
        "iam",
        "Action=CreateUser&Version=2010-05-08&UserName=u",
    )
    .await;
    let (_, out) = call(
        &f,
        &root,
        "iam",
        "Action=CreateAccessKey&Version=2010-05-08&UserName=u",
    )
    .await;
    let (akid, secret) = (
        between(&out, "AccessKeyId").to_owned(),
        between(&out, "SecretAccessKey").to_owned(),
    );
    let user = Creds {
        akid: &akid,
        secret: &secret,
        token: None,
    };
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/u"},"Action":"sts:AssumeRole"}]}"#;
    call(
        &f,
        &root,
        "iam",
        &format!(
            "Action=CreateRole&Version=2010-05-08&RoleName=rv&AssumeRolePolicyDocument={}",
            enc(trust)
        ),
    )
    .await;
    let allow = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:ListRoles","Resource":"*"}]}"#;
    call(
        &f,
        &root,
        "iam",
        &format!(
            "Action=PutRolePolicy&Version=2010-05-08&RoleName=rv&PolicyName=p&PolicyDocument={}",
            enc(allow)
        ),
    )
    .await;
    let assume = format!(
        "Action=AssumeRole&Version=2011-06-15&RoleArn={}&RoleSessionName=ss",
        enc("arn:aws:iam::111122223333:role/rv")
    );
    let (st, out) = call(&f, &user, "sts", &assume).await;
    assert_eq!(st, StatusCode::OK, "{out}");
    let (a, s, t) = (
        between(&out, "AccessKeyId").to_owned(),
        between(&out, "SecretAccessKey").to_owned(),
        between(&out, "SessionToken").to_owned(),
    );
    let old = Creds {
        akid: &a,
        secret: &s,
        token: Some(&t),
    };
    assert_eq!(
        call(&f, &old, "iam", "Action=ListRoles&Version=2010-05-08")
            .await
            .0,
        StatusCode::OK
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let root_caller = Caller::Root {
        account: f.account.clone(),
    };
    f.control
        .revoke_role_sessions(
            &root_caller,
            &podiam_control::auth::RequestMeta::default(),
            "rv",
        )
        .await
        .unwrap();
    let (st, out) = call(&f, &old, "iam", "Action=ListRoles&Version=2010-05-08").await;
    assert_eq!(
        (st, code_of(&out)),
        (StatusCode::FORBIDDEN, "AccessDenied"),
        "a session issued before the revocation is denied"
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (st, out) = call(&f, &user, "sts", &assume).await;
    assert_eq!(st, StatusCode::OK, "{out}");
    let (a, s, t) = (
        between(&out, "AccessKeyId").to_owned(),
        between(&out, "SecretAccessKey").to_owned(),
        between(&out, "SessionToken").to_owned(),
    );
    let new = Creds {
        akid: &a,
        secret: &s,
        token: Some(&t),
    };
    assert_eq!(
        call(&f, &new, "iam", "Action=ListRoles&Version=2010-05-08")
            .await
            .0,
        StatusCode::OK,
        "a session issued after it is not"
    );
}

fn direct_request(token: &str) -> Request<Body> {
    Request::builder()
        .method("GET")
        .uri("/podiam/pod-identity/111122223333/demo/v1/credentials")
        .header("host", "podiam.test")
        .header("authorization", token)
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn direct_pod_identity_is_off_by_default_like_an_unknown_path() {
    let f = fixture().await;
    let (s, body, etype) = send(&f, direct_request("some-token")).await;
    let (us, ubody, uetype) = send(
        &f,
        Request::builder()
            .uri("/no/such/path")
            .header("host", "podiam.test")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(
        (s, etype.as_deref()),
        (StatusCode::NOT_FOUND, Some("UnknownOperationException")),
        "{body}"
    );
    assert_eq!(
        (us, uetype.as_deref()),
        (StatusCode::NOT_FOUND, Some("UnknownOperationException")),
        "{ubody}"
    );
    assert_eq!(
        body.replace(
            "/podiam/pod-identity/111122223333/demo/v1/credentials",
            "/no/such/path"
        ),
        ubody
    );
}

#[tokio::test]
async fn direct_pod_identity_is_refused_without_tls() {
    let f = fixture().await;
    let router = podiam_server::router(
        Arc::clone(&f.control),
        podiam_server::Options {
            direct_pod_identity: true,
        },
    );
    for token in ["some-token", ""] {
        let resp = router.clone().oneshot(direct_request(token)).await.unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        let body = String::from_utf8(
            resp.into_body()
                .collect()
                .await
                .unwrap()
                .to_bytes()
                .to_vec(),
        )
        .unwrap();
        let (rid, rest) = body.strip_prefix('[').unwrap().split_once("]: ").unwrap();
        assert!(uuid_like(rid), "{body}");
        assert_eq!(
            rest,
            "(AccessDeniedException): direct-mode Pod Identity is served over HTTPS only, fault: client\n"
        );
    }
}

fn uuid_like(s: &str) -> bool {
    s.len() == 36 && s.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

/// The operations surface: a few requests, then `/metrics` counts them with bounded labels.
#[tokio::test]
async fn metrics_count_requests_denials_and_credential_latency() {
    let f = fixture().await;
    let (token, role) = irsa_setup(&f).await;
    let (s, out, _) = send(&f, awwi(&role, "m1", &token)).await;
    assert_eq!(s, StatusCode::OK, "{out}");
    let (akid, secret, session) = (
        between(&out, "AccessKeyId").to_owned(),
        between(&out, "SecretAccessKey").to_owned(),
        between(&out, "SessionToken").to_owned(),
    );
    let c = Creds {
        akid: &akid,
        secret: &secret,
        token: Some(&session),
    };
    let (s, out) = call(&f, &c, "iam", "Action=ListRoles&Version=2010-05-08").await;
    assert_eq!(
        (s, code_of(&out)),
        (StatusCode::FORBIDDEN, "AccessDenied"),
        "{out}"
    );
    // An action name a caller makes up is counted as `other`, not as a new label value.
    let root = Creds {
        akid: &f.akid,
        secret: &f.secret,
        token: None,
    };
    let (s, _) = call(
        &f,
        &root,
        "sts",
        "Action=MadeUpAction12345&Version=2011-06-15",
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    let resp = f
        .router
        .clone()
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    assert!(resp.headers().get("x-amzn-requestid").is_some());
    let text = String::from_utf8(
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    for line in [
        "# TYPE podiam_requests_total counter",
        "podiam_requests_total{protocol=\"eks\",action=\"CreateCluster\",code=\"200\"} 1",
        "podiam_requests_total{protocol=\"iam\",action=\"CreateOpenIDConnectProvider\",code=\"200\"} 1",
        "podiam_requests_total{protocol=\"iam\",action=\"CreateRole\",code=\"200\"} 1",
        "podiam_requests_total{protocol=\"sts\",action=\"AssumeRoleWithWebIdentity\",code=\"200\"} 1",
        "podiam_requests_total{protocol=\"iam\",action=\"ListRoles\",code=\"AccessDenied\"} 1",
        "podiam_requests_total{protocol=\"sts\",action=\"other\",code=\"InvalidAction\"} 1",
        "# TYPE podiam_access_denied_total counter",
        "podiam_access_denied_total{reason=\"no_identity_allow\"} 1",
        "# TYPE podiam_credential_duration_seconds histogram",
        "podiam_credential_duration_seconds_bucket{path=\"AssumeRoleWithWebIdentity\",le=\"10\"} 1",
        "podiam_credential_duration_seconds_bucket{path=\"AssumeRoleWithWebIdentity\",le=\"+Inf\"} 1",
        "podiam_credential_duration_seconds_count{path=\"AssumeRoleWithWebIdentity\"} 1",
        "podiam_credential_duration_seconds_count{path=\"AssumeRole\"} 0",
        "podiam_credential_duration_seconds_count{path=\"AssumeRoleForPodIdentity\"} 0",
        "podiam_credential_duration_seconds_count{path=\"PodIdentityDirect\"} 0",
        "# TYPE podiam_store_commit_duration_seconds histogram",
        "podiam_feed_lag_seconds 0.0",
        "podiam_stale 0",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    // Every commit of the setup (cluster, provider, role, ...) was timed.
    let commits: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("podiam_store_commit_duration_seconds_count "))
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(commits >= 3, "{text}");
    // The caller's made-up action name is nowhere in the exposition.
    assert!(!text.contains("MadeUpAction12345"), "{text}");
}

/// `--tls-cert`/`--tls-key` rotated on disk: the next connection gets the new certificate,
/// with no restart.
#[tokio::test]
async fn a_rotated_certificate_is_served_to_new_connections() {
    use rustls::pki_types::{CertificateDer, ServerName};
    let dir = std::env::temp_dir().join(format!("podiam-serve-rotate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert_path, key_path) = (dir.join("tls.crt"), dir.join("tls.key"));
    let issue = || rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (first, second) = (issue(), issue());
    std::fs::write(&cert_path, first.cert.pem()).unwrap();
    std::fs::write(&key_path, first.signing_key.serialize_pem()).unwrap();

    let f = fixture().await;
    let tls = podiam_server::load_tls_config_checking_every(
        &cert_path,
        &key_path,
        std::time::Duration::ZERO,
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(podiam_server::serve(
        listener,
        Arc::clone(&f.control),
        podiam_server::Options::default(),
        podiam_server::Transport::Tls(tls),
        podiam_server::Timeouts::default(),
        std::future::pending(),
    ));
    let mut roots = rustls::RootCertStore::empty();
    roots.add(first.cert.der().clone()).unwrap();
    roots.add(second.cert.der().clone()).unwrap();
    let client = Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth(),
    );
    let served = || async {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let tls = tokio_rustls::TlsConnector::from(Arc::clone(&client))
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap();
        let certs: Vec<CertificateDer<'static>> =
            tls.get_ref().1.peer_certificates().unwrap().to_vec();
        certs[0].clone()
    };
    assert_eq!(&served().await, first.cert.der());
    // Modification times must differ from the first pair's.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    std::fs::write(&key_path, second.signing_key.serialize_pem()).unwrap();
    std::fs::write(&cert_path, second.cert.pem()).unwrap();
    assert_eq!(&served().await, second.cert.der());
    // A broken file is not loaded: the last good pair stays.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    std::fs::write(&cert_path, "not a certificate").unwrap();
    assert_eq!(&served().await, second.cert.der());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Every log line of a request carries its request id, the one answered in x-amzn-RequestId.
#[tokio::test]
async fn each_log_line_of_a_request_names_its_request_id() {
    #[derive(Clone, Default)]
    struct Buf(Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let f = fixture().await;
    let buf = Buf::default();
    let sink = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("podiam_server=debug"))
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let resp = f
        .router
        .clone()
        .oneshot(Request::get("/no/such/path").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let rid = resp.headers()["x-amzn-requestid"]
        .to_str()
        .unwrap()
        .to_owned();
    let logged = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = logged.lines().collect();
    assert!(!lines.is_empty());
    for line in lines {
        assert!(
            line.contains(&format!("request{{request_id={rid}}}")),
            "{line}"
        );
    }
}
