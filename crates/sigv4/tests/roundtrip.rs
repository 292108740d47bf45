//! Sign-then-verify round trips: fixed requests shaped like podiam's real traffic, and
//! property tests over random methods, paths, queries, headers and bodies — each of which must
//! verify, and stop verifying when any byte of the body or of a signed header changes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::Owned;
use podiam_sigv4::{Error, Expectations, SigningParams, parse};
use proptest::prelude::*;

const AK: &str = "ASIAEXAMPLEEXAMPLE01";
const SECRET: &str = "w/NxEXAMPLE+secret/KEY";
const DATE: &str = "20240229T235959Z";

fn now() -> i64 {
    common::unix_of(DATE)
}

fn params<'a>(service: &'a str, token: Option<&'a str>) -> SigningParams<'a> {
    SigningParams {
        session_token: token,
        ..SigningParams::new(AK, SECRET, "eu-central-1", service, DATE)
    }
}

fn sign_into(o: &Owned, p: &SigningParams<'_>) -> Owned {
    let mut s = o.clone();
    let added = o.with(|req| p.sign(req));
    s.apply(&added);
    s
}

fn presign_into(o: &Owned, p: &SigningParams<'_>, expires: u32) -> Owned {
    let mut s = o.clone();
    s.query = o.with(|req| p.presign(req, expires));
    s
}

#[test]
fn eks_pod_identity_request() {
    let o = Owned {
        method: "POST".into(),
        path: "/clusters/my-cluster/assume-role-for-pod-identity".into(),
        query: String::new(),
        headers: vec![
            ("host".into(), b"eks-auth.eu-central-1.api.aws".to_vec()),
            ("content-type".into(), b"application/json".to_vec()),
            ("user-agent".into(), b"aws-sdk-go-v2/1.30".to_vec()),
        ],
        body: br#"{"token":"eyJhbGciOiJSUzI1NiJ9.e30.sig"}"#.to_vec(),
    };
    let s = sign_into(&o, &params("eks-auth", Some("session/token+x==")));
    let expect = Expectations {
        regions: &["eu-central-1"],
        ..Expectations::new("eks-auth")
    };
    assert_eq!(s.verify(SECRET, &expect, now()), Ok(()));
    // The user agent is not signed: a proxy rewriting it does not matter.
    let mut m = s.clone();
    m.set_header("user-agent", b"proxy");
    assert_eq!(m.verify(SECRET, &expect, now()), Ok(()));
    // The body is.
    let mut m = s.clone();
    m.body = br#"{"token":"eyJhbGciOiJSUzI1NiJ9.e30.sih"}"#.to_vec();
    assert_eq!(
        m.verify(SECRET, &expect, now()),
        Err(Error::SignatureMismatch)
    );
}

#[test]
fn sts_query_api_get_with_encoded_values() {
    let o = Owned {
        method: "GET".into(),
        path: "/".into(),
        query: "Action=AssumeRole&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fdemo\
                &RoleSessionName=a%20b&Version=2011-06-15"
            .into(),
        headers: vec![("Host".into(), b"sts.amazonaws.com".to_vec())],
        body: Vec::new(),
    };
    let s = sign_into(&o, &params("sts", None));
    let expect = Expectations::new("sts");
    assert_eq!(s.verify(SECRET, &expect, now()), Ok(()));
    // Equivalent encodings of the same query canonicalize identically.
    let mut m = s.clone();
    m.query = "Version=2011-06-15&RoleSessionName=a+b&RoleArn=arn:aws:iam::123456789012:role/demo\
               &Action=AssumeRole"
        .into();
    assert_eq!(m.verify(SECRET, &expect, now()), Ok(()));
    // A different value does not.
    let mut m = s.clone();
    m.query = m.query.replace("demo", "admin");
    assert_eq!(
        m.verify(SECRET, &expect, now()),
        Err(Error::SignatureMismatch)
    );
}

#[test]
fn header_names_in_any_case_on_the_wire() {
    let o = Owned {
        method: "POST".into(),
        path: "/".into(),
        query: String::new(),
        headers: vec![
            ("Host".into(), b"iam.amazonaws.com".to_vec()),
            ("X-Custom".into(), b"  a   b  ".to_vec()),
        ],
        body: b"Action=ListRoles".to_vec(),
    };
    let s = sign_into(&o, &params("iam", None));
    let mut m = s.clone();
    for (n, v) in &mut m.headers {
        *n = n.to_ascii_uppercase();
        if n == "X-CUSTOM" {
            *v = b"a b".to_vec();
        }
    }
    assert_eq!(m.verify(SECRET, &Expectations::new("iam"), now()), Ok(()));
}

#[test]
fn presigned_sts_get_caller_identity_like_an_eks_token() {
    let o = Owned {
        method: "GET".into(),
        path: "/".into(),
        query: "Action=GetCallerIdentity&Version=2011-06-15".into(),
        headers: vec![
            ("host".into(), b"sts.eu-central-1.amazonaws.com".to_vec()),
            ("x-k8s-aws-id".into(), b"my-cluster".to_vec()),
        ],
        body: Vec::new(),
    };
    let s = presign_into(&o, &params("sts", Some("tok")), 60);
    assert!(s.query.contains("X-Amz-SignedHeaders=host%3Bx-k8s-aws-id"));
    let expect = Expectations::new("sts");
    assert_eq!(s.verify(SECRET, &expect, now() + 60), Ok(()));
    assert_eq!(
        s.verify(SECRET, &expect, now() + 61),
        Err(Error::RequestExpired)
    );
    let mut m = s.clone();
    m.set_header("x-k8s-aws-id", b"other-cluster");
    assert_eq!(
        m.verify(SECRET, &expect, now()),
        Err(Error::SignatureMismatch)
    );
}

// ---------------------------------------------------------------- properties

/// A header name the signer will sign (not one it replaces or skips).
fn header_name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,10}".prop_filter("signable", |n| {
        !n.starts_with("x-amz")
            && ![
                "host",
                "authorization",
                "user-agent",
                "expect",
                "transfer-encoding",
                "connection",
                "x-amzn-trace-id",
                "date",
            ]
            .contains(&n.as_str())
    })
}

fn request() -> impl Strategy<Value = Owned> {
    (
        prop_oneof![
            Just("GET".to_owned()),
            Just("POST".to_owned()),
            "[A-Z]{1,8}"
        ],
        prop::collection::vec("[A-Za-z0-9._~%:@!$&'()*+,;= -]{0,10}", 0..5),
        prop::collection::vec(
            ("[a-z0-9%+ ._~-]{0,8}", "[A-Za-z0-9%+ =._~/:-]{0,12}"),
            0..5,
        ),
        prop::collection::vec((header_name(), "[ -~]{0,24}"), 0..5),
        prop::collection::vec(any::<u8>(), 0..128),
    )
        .prop_map(|(method, segments, query, headers, body)| {
            let mut all = vec![("Host".to_owned(), b"example.amazonaws.com".to_vec())];
            all.extend(headers.into_iter().map(|(n, v)| (n, v.into_bytes())));
            Owned {
                method,
                path: format!("/{}", segments.join("/")),
                query: query
                    .into_iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join("&"),
                headers: all,
                body,
            }
        })
}

fn token() -> impl Strategy<Value = Option<String>> {
    prop::option::of("[A-Za-z0-9+/=]{8,40}")
}

/// Flips one bit of the body (or appends a byte to an empty one).
fn mutate_body(o: &Owned, at: prop::sample::Index) -> Owned {
    let mut m = o.clone();
    if m.body.is_empty() {
        m.body.push(0);
    } else {
        let i = at.index(m.body.len());
        m.body[i] ^= 1;
    }
    m
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn header_form_round_trip(o in request(), tok in token()) {
        let s = sign_into(&o, &params("svc", tok.as_deref()));
        let expect = Expectations::new("svc");
        prop_assert_eq!(s.verify(SECRET, &expect, now()), Ok(()));
        let parsed_token = s.with(|req| {
            parse(req).unwrap().unwrap().security_token().map(str::to_owned)
        });
        prop_assert_eq!(parsed_token, tok);
    }

    #[test]
    fn header_form_body_byte_flip_fails(o in request(), at in any::<prop::sample::Index>()) {
        let s = sign_into(&o, &params("svc", None));
        let m = mutate_body(&s, at);
        prop_assert_eq!(
            m.verify(SECRET, &Expectations::new("svc"), now()),
            Err(Error::SignatureMismatch)
        );
    }

    #[test]
    fn header_form_signed_header_byte_flip_fails(
        o in request(),
        which in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
    ) {
        let s = sign_into(&o, &params("svc", None));
        // Any header but the Authorization one; all of them are signed.
        let candidates: Vec<usize> = (0..s.headers.len())
            .filter(|&i| !s.headers[i].0.eq_ignore_ascii_case("authorization"))
            .collect();
        let h = candidates[which.index(candidates.len())];
        let mut m = s.clone();
        let v = &mut m.headers[h].1;
        if v.is_empty() {
            v.push(b'x');
        } else {
            let i = at.index(v.len());
            v[i] ^= 1;
        }
        prop_assert!(m.verify(SECRET, &Expectations::new("svc"), now()).is_err());
    }

    #[test]
    fn header_form_method_path_query_changes_fail(o in request()) {
        let s = sign_into(&o, &params("svc", None));
        let expect = Expectations::new("svc");
        let mut m = s.clone();
        m.method.push('X');
        prop_assert_eq!(m.verify(SECRET, &expect, now()), Err(Error::SignatureMismatch));
        let mut m = s.clone();
        m.path.push('x');
        prop_assert_eq!(m.verify(SECRET, &expect, now()), Err(Error::SignatureMismatch));
        let mut m = s.clone();
        m.query.push_str("&zz=1");
        prop_assert_eq!(m.verify(SECRET, &expect, now()), Err(Error::SignatureMismatch));
    }

    #[test]
    fn presigned_round_trip(o in request(), tok in token(), expires in 0u32..=604_800) {
        let s = presign_into(&o, &params("svc", tok.as_deref()), expires);
        let expect = Expectations::new("svc");
        prop_assert_eq!(s.verify(SECRET, &expect, now()), Ok(()));
        prop_assert_eq!(s.verify(SECRET, &expect, now() + i64::from(expires)), Ok(()));
        prop_assert_eq!(
            s.verify(SECRET, &expect, now() + i64::from(expires) + 1),
            Err(Error::RequestExpired)
        );
    }

    #[test]
    fn presigned_body_byte_flip_fails(o in request(), at in any::<prop::sample::Index>()) {
        let s = presign_into(&o, &params("svc", None), 300);
        let m = mutate_body(&s, at);
        prop_assert_eq!(
            m.verify(SECRET, &Expectations::new("svc"), now()),
            Err(Error::SignatureMismatch)
        );
    }

    #[test]
    fn wrong_secret_always_fails(o in request(), secret in "[A-Za-z0-9/+]{1,40}") {
        prop_assume!(secret != SECRET);
        let s = sign_into(&o, &params("svc", None));
        prop_assert_eq!(
            s.verify(&secret, &Expectations::new("svc"), now()),
            Err(Error::SignatureMismatch)
        );
    }
}
