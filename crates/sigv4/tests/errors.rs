//! One test per rejection rule (and the acceptance right at its edge), checking the error
//! variant, its AWS code/status and, where AWS's wording matters, the exact message.
//!
//! Where a test changes a request, it re-signs it (`common::resign`) so that the signature is
//! otherwise valid and only the rule under test can reject it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{Owned, correct_signature, replace_signature, resign};
use podiam_sigv4::{
    Error, Expectations, MAX_PRESIGN_EXPIRES_SECS, MAX_SIGNED_HEADERS, Options, SigningParams,
    check, parse, sign, signing_key, verify_with_key,
};

const AK: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const DATE: &str = "20150830T123600Z";
/// 2015-08-30T12:36:00Z.
const NOW: i64 = 1_440_938_160;
const TOKEN: &str = "FQoGZXIvYXdzEXAMPLE+token/with==";

fn unsigned() -> Owned {
    Owned {
        method: "POST".into(),
        path: "/".into(),
        query: String::new(),
        headers: vec![
            ("Host".into(), b"sts.amazonaws.com".to_vec()),
            (
                "Content-Type".into(),
                b"application/x-www-form-urlencoded; charset=utf-8".to_vec(),
            ),
        ],
        body: b"Action=GetCallerIdentity&Version=2011-06-15".to_vec(),
    }
}

fn params() -> SigningParams<'static> {
    SigningParams::new(AK, SECRET, "us-east-1", "sts", DATE)
}

fn signed_by(o: Owned, p: &SigningParams<'_>) -> Owned {
    let mut o = o;
    let added = o.with(|req| p.sign(req));
    o.apply(&added);
    o
}

fn signed() -> Owned {
    signed_by(unsigned(), &params())
}

fn presigned_by(o: Owned, p: &SigningParams<'_>, expires: u32) -> Owned {
    let mut o = o;
    o.query = o.with(|req| p.presign(req, expires));
    o
}

fn presigned(expires: u32) -> Owned {
    let mut o = unsigned();
    o.method = "GET".into();
    o.body.clear();
    o.query = "Action=GetCallerIdentity&Version=2011-06-15".into();
    presigned_by(o, &params(), expires)
}

const REGIONS: &[&str] = &["us-east-1", "us-west-2"];

fn expect() -> Expectations<'static> {
    Expectations {
        regions: REGIONS,
        ..Expectations::new("sts")
    }
}

fn run(o: &Owned, now: i64) -> Result<(), Error> {
    o.verify(SECRET, &expect(), now)
}

fn parse_err(o: &Owned) -> Error {
    o.with(|req| parse(req).expect_err("parse must fail"))
}

fn set_auth(o: &mut Owned, value: &str) {
    o.set_header("Authorization", value.as_bytes());
}

fn auth(o: &Owned) -> String {
    String::from_utf8(o.header("authorization").unwrap().to_vec()).unwrap()
}

fn assert_code(e: &Error, code: &str, status: u16) {
    assert_eq!((e.code(), e.status()), (code, status), "{e:?}");
}

// ---------------------------------------------------------------- baseline (positive)

#[test]
fn baseline_header_signature_verifies() {
    assert_eq!(run(&signed(), NOW), Ok(()));
}

#[test]
fn baseline_presigned_verifies() {
    let o = presigned(900);
    assert!(o.with(|req| parse(req).unwrap().unwrap().is_presigned()));
    assert_eq!(run(&o, NOW), Ok(()));
}

#[test]
fn no_signature_is_none_not_an_error() {
    let mut o = unsigned();
    o.query = "Action=GetCallerIdentity&X-Amz-Date=20150830T123600Z&X-Amz-Expires=5".into();
    assert_eq!(o.with(|req| parse(req).map(|p| p.is_none())), Ok(true));
    let e = Error::MissingAuthentication;
    assert_code(&e, "MissingAuthenticationToken", 403);
    assert_eq!(e.to_string(), "Request is missing Authentication Token");
}

// ---------------------------------------------------------------- clock skew

#[test]
fn skew_exactly_300_seconds_either_way_is_accepted() {
    let o = signed();
    assert_eq!(run(&o, NOW + 300), Ok(()));
    assert_eq!(run(&o, NOW - 300), Ok(()));
}

#[test]
fn skew_past_300_seconds_old_is_signature_expired() {
    let e = run(&signed(), NOW + 301).unwrap_err();
    assert_code(&e, "SignatureDoesNotMatch", 403);
    assert_eq!(
        e.to_string(),
        "Signature expired: 20150830T123600Z is now earlier than 20150830T123601Z \
         (20150830T124101Z - 5 min.)"
    );
}

#[test]
fn skew_past_300_seconds_in_future_is_not_yet_current() {
    let e = run(&signed(), NOW - 301).unwrap_err();
    assert_code(&e, "SignatureDoesNotMatch", 403);
    assert_eq!(
        e.to_string(),
        "Signature not yet current: 20150830T123600Z is still later than 20150830T123559Z \
         (20150830T123059Z + 5 min.)"
    );
}

#[test]
fn custom_skew_is_honoured_and_reported() {
    let exp = Expectations {
        max_skew_secs: 90,
        ..expect()
    };
    let o = signed();
    assert_eq!(o.verify(SECRET, &exp, NOW + 90), Ok(()));
    let e = o.verify(SECRET, &exp, NOW + 91).unwrap_err();
    assert!(
        e.to_string().ends_with("(20150830T123731Z - 90 sec.)"),
        "{e}"
    );
}

// ---------------------------------------------------------------- credential scope

#[test]
fn scope_date_mismatch() {
    let mut o = signed();
    let a = auth(&o).replace("/20150830/", "/20150831/");
    set_auth(&mut o, &a);
    resign(&mut o, SECRET, Options::default());
    let e = run(&o, NOW).unwrap_err();
    assert_code(&e, "SignatureDoesNotMatch", 403);
    assert_eq!(
        e.to_string(),
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from \
         HTTP: '20150831' != '20150830', from '20150830T123600Z'."
    );
}

#[test]
fn wrong_service() {
    let o = signed_by(
        unsigned(),
        &SigningParams {
            service: "iam",
            ..params()
        },
    );
    let e = run(&o, NOW).unwrap_err();
    assert_eq!(
        e,
        Error::WrongService {
            expected: "sts".into()
        }
    );
    assert_code(&e, "SignatureDoesNotMatch", 403);
    assert_eq!(
        e.to_string(),
        "Credential should be scoped to correct service: 'sts'. "
    );
}

#[test]
fn wrong_region() {
    let o = signed_by(
        unsigned(),
        &SigningParams {
            region: "eu-west-1",
            ..params()
        },
    );
    let e = run(&o, NOW).unwrap_err();
    assert_eq!(e, Error::WrongRegion);
    assert_code(&e, "SignatureDoesNotMatch", 403);
    assert_eq!(
        e.to_string(),
        "Credential should be scoped to a valid region. "
    );
}

#[test]
fn empty_region_list_accepts_any_region() {
    let o = signed_by(
        unsigned(),
        &SigningParams {
            region: "eu-west-1",
            ..params()
        },
    );
    assert_eq!(o.verify(SECRET, &Expectations::new("sts"), NOW), Ok(()));
}

#[test]
fn region_in_list_other_than_first_is_accepted() {
    let o = signed_by(
        unsigned(),
        &SigningParams {
            region: "us-west-2",
            ..params()
        },
    );
    assert_eq!(run(&o, NOW), Ok(()));
}

// ---------------------------------------------------------------- headers that must be signed

#[test]
fn host_not_signed() {
    let mut o = unsigned();
    o.headers.retain(|(n, _)| n != "Host");
    let mut o = signed_by(o, &params());
    o.headers
        .push(("Host".into(), b"sts.amazonaws.com".to_vec()));
    assert!(!auth(&o).contains("host"));
    let e = run(&o, NOW).unwrap_err();
    assert_eq!(e, Error::HostNotSigned);
    assert_code(&e, "SignatureDoesNotMatch", 403);
    assert_eq!(
        e.to_string(),
        "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
    );
}

#[test]
fn host_signed_under_another_case_does_not_count() {
    let mut o = signed();
    let a = auth(&o).replace(
        "SignedHeaders=content-type;host;",
        "SignedHeaders=content-type;Host;",
    );
    set_auth(&mut o, &a);
    assert_eq!(run(&o, NOW), Err(Error::HostNotSigned));
}

#[test]
fn x_amz_date_header_not_signed() {
    let mut o = signed();
    let a = auth(&o).replace(";x-amz-date", "");
    set_auth(&mut o, &a);
    resign(&mut o, SECRET, Options::default());
    let e = run(&o, NOW).unwrap_err();
    assert_eq!(
        e,
        Error::HeaderNotSigned {
            header: "x-amz-date"
        }
    );
    assert_code(&e, "SignatureDoesNotMatch", 403);
}

#[test]
fn x_amz_security_token_header_not_signed() {
    let mut o = signed();
    o.headers
        .push(("X-Amz-Security-Token".into(), TOKEN.as_bytes().to_vec()));
    // The signature covers everything else, yet the request is rejected...
    let e = run(&o, NOW).unwrap_err();
    assert_eq!(
        e,
        Error::HeaderNotSigned {
            header: "x-amz-security-token"
        }
    );
    assert_code(&e, "SignatureDoesNotMatch", 403);
    // ...unless the unsigned-token compatibility option is on.
    let lenient = Expectations {
        options: Options {
            unsigned_session_token: true,
            ..Options::default()
        },
        ..expect()
    };
    assert_eq!(o.verify(SECRET, &lenient, NOW), Ok(()));
}

#[test]
fn signed_session_token_is_accepted_and_exposed() {
    let o = signed_by(
        unsigned(),
        &SigningParams {
            session_token: Some(TOKEN),
            ..params()
        },
    );
    assert!(auth(&o).contains("x-amz-security-token"));
    assert_eq!(
        o.with(|req| parse(req)
            .unwrap()
            .unwrap()
            .security_token()
            .map(str::to_owned)),
        Some(TOKEN.to_owned())
    );
    assert_eq!(run(&o, NOW), Ok(()));
}

#[test]
fn other_unsigned_x_amz_headers_are_ignored() {
    let mut o = signed();
    o.headers
        .push(("X-Amz-User-Agent".into(), b"aws-sdk-js/2.1".to_vec()));
    o.headers
        .push(("amz-sdk-invocation-id".into(), b"1".to_vec()));
    o.headers.push(("X-Amz-Target".into(), b"x".to_vec()));
    assert_eq!(run(&o, NOW), Ok(()));
}

// ---------------------------------------------------------------- date header

#[test]
fn date_header_fallback_is_accepted_when_signed() {
    let mut o = unsigned();
    o.headers
        .push(("Date".into(), b"Sun, 30 Aug 2015 12:36:00 GMT".to_vec()));
    set_auth(
        &mut o,
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/sts/aws4_request, \
         SignedHeaders=content-type;date;host, Signature=00",
    );
    resign(&mut o, SECRET, Options::default());
    let amz = o.with(|req| parse(req).unwrap().unwrap().amz_date().to_owned());
    assert_eq!(amz, DATE);
    assert_eq!(run(&o, NOW), Ok(()));
    assert!(run(&o, NOW + 301).is_err());
}

#[test]
fn date_header_fallback_must_be_signed() {
    let mut o = unsigned();
    o.headers
        .push(("Date".into(), b"Sun, 30 Aug 2015 12:36:00 GMT".to_vec()));
    set_auth(
        &mut o,
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/sts/aws4_request, \
         SignedHeaders=content-type;host, Signature=00",
    );
    resign(&mut o, SECRET, Options::default());
    assert_eq!(run(&o, NOW), Err(Error::HeaderNotSigned { header: "date" }));
}

#[test]
fn missing_date_is_incomplete_signature() {
    let mut o = signed();
    o.headers.retain(|(n, _)| n != "x-amz-date");
    let e = parse_err(&o);
    assert_code(&e, "IncompleteSignature", 400);
    assert_eq!(
        e.to_string(),
        format!(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' \
             header. Authorization={}",
            auth(&o)
        )
    );
}

#[test]
fn unparseable_x_amz_date() {
    for bad in [
        "2015-08-30T12:36:00Z",
        "20150830T123600",
        "20151330T123600Z",
        "",
    ] {
        let mut o = signed();
        o.set_header("x-amz-date", bad.as_bytes());
        let e = parse_err(&o);
        assert_eq!(e, Error::InvalidDate { date: bad.into() });
        assert_code(&e, "IncompleteSignature", 400);
    }
    let mut o = signed();
    o.set_header("x-amz-date", b"x");
    assert_eq!(
        parse_err(&o).to_string(),
        "Date must be in ISO-8601 'basic format'. Got 'x'. See http://en.wikipedia.org/wiki/ISO_8601"
    );
}

#[test]
fn unparseable_date_header() {
    let mut o = signed();
    o.headers.retain(|(n, _)| n != "x-amz-date");
    o.headers.push(("Date".into(), b"yesterday".to_vec()));
    assert_eq!(
        parse_err(&o),
        Error::InvalidDate {
            date: "yesterday".into()
        }
    );
}

// ---------------------------------------------------------------- malformed Authorization

#[test]
fn authorization_with_no_parameters() {
    let mut o = signed();
    set_auth(&mut o, "AWS4-HMAC-SHA256");
    let e = parse_err(&o);
    assert_code(&e, "IncompleteSignature", 400);
    assert_eq!(
        e.to_string(),
        "Authorization header requires 'Credential' parameter. Authorization header requires \
         'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. \
         Authorization=AWS4-HMAC-SHA256"
    );
}

#[test]
fn authorization_missing_each_parameter() {
    for (drop, sentence) in [
        ("Credential", "requires 'Credential' parameter"),
        ("SignedHeaders", "requires 'SignedHeaders' parameter"),
        ("Signature", "requires 'Signature' parameter"),
    ] {
        let mut o = signed();
        let a = auth(&o);
        let rest: Vec<&str> = a["AWS4-HMAC-SHA256 ".len()..]
            .split(", ")
            .filter(|p| !p.starts_with(drop))
            .collect();
        set_auth(&mut o, &format!("AWS4-HMAC-SHA256 {}", rest.join(", ")));
        let e = parse_err(&o);
        assert!(
            matches!(&e, Error::MissingAuthorizationParameters { missing, .. } if missing.len() == 1),
            "{e:?}"
        );
        assert!(e.to_string().contains(sentence), "{e}");
        assert_code(&e, "IncompleteSignature", 400);
    }
}

#[test]
fn authorization_element_without_equals() {
    let mut o = signed();
    set_auth(
        &mut o,
        "AWS4-HMAC-SHA256 Credential, SignedHeaders=host, Signature=ab",
    );
    let e = parse_err(&o);
    assert_code(&e, "IncompleteSignature", 400);
    assert_eq!(
        e.to_string(),
        "'Credential' not a valid key=value pair (missing equal-sign) in Authorization header: \
         'AWS4-HMAC-SHA256 Credential, SignedHeaders=host, Signature=ab'."
    );
}

#[test]
fn unsupported_algorithms() {
    for (value, alg) in [
        ("Bearer abc", "Bearer"),
        ("AWS AKIDEXAMPLE:c2lnbmF0dXJl", "AWS"),
        (
            "AWS4-ECDSA-P256-SHA256 Credential=AKIDEXAMPLE/20150830/sts/aws4_request, \
             SignedHeaders=host, Signature=ab",
            "AWS4-ECDSA-P256-SHA256",
        ),
        ("aws4-hmac-sha256 Credential=x", "aws4-hmac-sha256"),
        ("", ""),
    ] {
        let mut o = signed();
        set_auth(&mut o, value);
        let e = parse_err(&o);
        assert_eq!(
            e,
            Error::UnsupportedAlgorithm {
                algorithm: alg.into()
            }
        );
        assert_code(&e, "IncompleteSignature", 400);
    }
}

#[test]
fn malformed_credentials() {
    for cred in [
        "AKIDEXAMPLE/20150830/us-east-1/sts",
        "AKIDEXAMPLE/20150830/us-east-1/sts/aws4_request/extra",
        "/20150830/us-east-1/sts/aws4_request",
        "AKIDEXAMPLE//us-east-1/sts/aws4_request",
        "AKIDEXAMPLE",
        "",
    ] {
        let mut o = signed();
        set_auth(
            &mut o,
            &format!(
                "AWS4-HMAC-SHA256 Credential={cred}, SignedHeaders=host;x-amz-date, Signature=ab"
            ),
        );
        let e = parse_err(&o);
        assert_eq!(
            e,
            Error::MalformedCredential {
                credential: cred.into()
            }
        );
        assert_code(&e, "IncompleteSignature", 400);
    }
}

#[test]
fn bad_credential_terminator() {
    let mut o = signed();
    let a = auth(&o).replace("aws4_request", "aws5_request");
    set_auth(&mut o, &a);
    let e = parse_err(&o);
    assert_code(&e, "IncompleteSignature", 400);
    assert_eq!(
        e.to_string(),
        "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'."
    );
}

#[test]
fn authorization_not_utf8() {
    let mut o = signed();
    o.set_header("Authorization", b"AWS4-HMAC-SHA256 Credential=\xff");
    let e = parse_err(&o);
    assert_eq!(
        e,
        Error::NotUtf8 {
            name: "Authorization"
        }
    );
    assert_code(&e, "IncompleteSignature", 400);
}

#[test]
fn duplicate_credential_in_authorization() {
    let mut o = signed();
    let a = auth(&o) + ", Credential=OTHER/20150830/us-east-1/sts/aws4_request";
    set_auth(&mut o, &a);
    assert_eq!(
        parse_err(&o),
        Error::DuplicateAuthComponent { name: "Credential" }
    );
}

#[test]
fn too_many_signed_headers() {
    let list: Vec<String> = (0..MAX_SIGNED_HEADERS)
        .map(|i| format!("h{i:03}"))
        .collect();
    let mut o = signed();
    set_auth(
        &mut o,
        &format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/sts/aws4_request, \
             SignedHeaders={}, Signature=00",
            list.join(";")
        ),
    );
    // At the limit it parses (and fails later, on the signature).
    assert_eq!(run(&o, NOW), Err(Error::HostNotSigned));
    let a = auth(&o).replace("SignedHeaders=", "SignedHeaders=host;");
    set_auth(&mut o, &a);
    let e = parse_err(&o);
    assert_eq!(
        e,
        Error::TooManySignedHeaders {
            count: MAX_SIGNED_HEADERS + 1
        }
    );
    assert_code(&e, "IncompleteSignature", 400);
}

#[test]
fn signature_in_uppercase_hex_does_not_match() {
    let o = signed();
    let sig = o.with(|req| parse(req).unwrap().unwrap().signature().to_owned());
    let o = replace_signature(&o, &sig.to_ascii_uppercase());
    let e = run(&o, NOW).unwrap_err();
    assert_eq!(e, Error::SignatureMismatch);
    assert_code(&e, "SignatureDoesNotMatch", 403);
    assert_eq!(
        e.to_string(),
        "The request signature we calculated does not match the signature you provided. Check \
         your AWS Secret Access Key and signing method. Consult the service documentation for \
         details."
    );
}

#[test]
fn wrong_secret_does_not_match() {
    assert_eq!(
        signed().verify("not-the-secret", &expect(), NOW),
        Err(Error::SignatureMismatch)
    );
}

// ---------------------------------------------------------------- duplicates / two mechanisms

#[test]
fn header_and_presigned_query_together() {
    let mut o = presigned(60);
    let h = signed();
    set_auth(&mut o, &auth(&h));
    let e = parse_err(&o);
    assert_eq!(e, Error::MultipleAuthMechanisms);
    assert_code(&e, "IncompleteSignature", 400);
}

#[test]
fn authorization_header_with_a_stray_presign_parameter() {
    let mut o = unsigned();
    o.query = "X-Amz-Signature=abc".into();
    let o = signed_by(o, &params());
    assert_eq!(parse_err(&o), Error::MultipleAuthMechanisms);
}

#[test]
fn two_authorization_headers() {
    let mut o = signed();
    let a = auth(&o);
    o.headers.push(("authorization".into(), a.into_bytes()));
    let e = parse_err(&o);
    assert_eq!(
        e,
        Error::DuplicateAuthComponent {
            name: "Authorization"
        }
    );
    assert_code(&e, "IncompleteSignature", 400);
}

#[test]
fn two_x_amz_date_headers() {
    let mut o = signed();
    o.headers
        .push(("X-Amz-Date".into(), DATE.as_bytes().to_vec()));
    assert_eq!(
        parse_err(&o),
        Error::DuplicateAuthComponent { name: "X-Amz-Date" }
    );
}

#[test]
fn token_in_header_and_query() {
    let mut o = unsigned();
    o.query = format!("X-Amz-Security-Token={TOKEN}");
    let o = signed_by(
        o,
        &SigningParams {
            session_token: Some(TOKEN),
            ..params()
        },
    );
    assert_eq!(
        parse_err(&o),
        Error::DuplicateAuthComponent {
            name: "X-Amz-Security-Token"
        }
    );
}

#[test]
fn repeated_presign_parameter() {
    let mut o = presigned(60);
    o.query.push_str("&X-Amz-Date=20150830T123600Z");
    assert_eq!(
        parse_err(&o),
        Error::DuplicateAuthComponent { name: "X-Amz-Date" }
    );
    let mut o = presigned(60);
    o.query.push_str("&X-Amz-Signature=00");
    assert_eq!(
        parse_err(&o),
        Error::DuplicateAuthComponent {
            name: "X-Amz-Signature"
        }
    );
}

// ---------------------------------------------------------------- presigned

#[test]
fn presigned_valid_until_expiry_inclusive() {
    let o = presigned(60);
    assert_eq!(run(&o, NOW + 60), Ok(()));
    // No skew limit applies to the past: it is X-Amz-Expires that bounds it.
    let o = presigned(3600);
    assert_eq!(run(&o, NOW + 3000), Ok(()));
}

#[test]
fn presigned_expired() {
    let e = run(&presigned(60), NOW + 61).unwrap_err();
    assert_eq!(e, Error::RequestExpired);
    assert_code(&e, "AccessDenied", 403);
    assert_eq!(e.to_string(), "Request has expired");
}

#[test]
fn presigned_zero_expiry_is_valid_only_at_its_second() {
    let o = presigned(0);
    assert_eq!(run(&o, NOW), Ok(()));
    assert_eq!(run(&o, NOW + 1), Err(Error::RequestExpired));
}

#[test]
fn a_fixed_presigned_validity_replaces_x_amz_expires() {
    // STS answers a presigned GetCallerIdentity for 15 minutes whatever X-Amz-Expires says.
    let o = presigned(60);
    let sts = Expectations {
        presigned_validity_secs: Some(900),
        ..expect()
    };
    assert_eq!(o.verify(SECRET, &sts, NOW + 900), Ok(()));
    assert_eq!(
        o.verify(SECRET, &sts, NOW + 901),
        Err(Error::RequestExpired)
    );
    assert_eq!(run(&o, NOW + 61), Err(Error::RequestExpired));
}

#[test]
fn presigned_from_the_future() {
    let o = presigned(900);
    assert_eq!(run(&o, NOW - 300), Ok(()));
    let e = run(&o, NOW - 301).unwrap_err();
    assert!(matches!(e, Error::SignatureNotYetCurrent { .. }), "{e:?}");
    assert_code(&e, "SignatureDoesNotMatch", 403);
}

#[test]
fn presigned_expires_at_most_a_week() {
    let o = presigned(MAX_PRESIGN_EXPIRES_SECS);
    assert_eq!(run(&o, NOW + i64::from(MAX_PRESIGN_EXPIRES_SECS)), Ok(()));
    let o = presigned(MAX_PRESIGN_EXPIRES_SECS + 1);
    let e = parse_err(&o);
    assert_eq!(e, Error::ExpiresTooLarge);
    assert_code(&e, "IncompleteSignature", 400);
    assert_eq!(
        e.to_string(),
        "X-Amz-Expires must be less than a week (in seconds) that is 604800"
    );
}

#[test]
fn presigned_expires_not_a_number() {
    for (raw, decoded) in [
        ("abc", "abc"),
        ("-1", "-1"),
        ("%2B5", "+5"),
        ("+5", " 5"),
        ("", ""),
        ("1.5", "1.5"),
        ("0x10", "0x10"),
        ("5%20", "5 "),
    ] {
        let mut o = presigned(60);
        o.query = o
            .query
            .replace("X-Amz-Expires=60", &format!("X-Amz-Expires={raw}"));
        let e = parse_err(&o);
        assert_eq!(
            e,
            Error::InvalidExpires {
                value: decoded.into()
            },
            "{raw:?}"
        );
        assert_code(&e, "IncompleteSignature", 400);
    }
    let mut o = presigned(60);
    o.query = o
        .query
        .replace("X-Amz-Expires=60", "X-Amz-Expires=99999999999999999999999");
    assert_eq!(parse_err(&o), Error::ExpiresTooLarge);
}

#[test]
fn presigned_missing_each_parameter() {
    for param in [
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-Expires",
        "X-Amz-SignedHeaders",
        "X-Amz-Signature",
    ] {
        let mut o = presigned(60);
        o.query = o
            .query
            .split('&')
            .filter(|p| !p.starts_with(&format!("{param}=")))
            .collect::<Vec<_>>()
            .join("&");
        let e = parse_err(&o);
        assert_eq!(e, Error::IncompletePresignedQuery, "{param}");
        assert_code(&e, "IncompleteSignature", 400);
    }
}

#[test]
fn presigned_wrong_algorithm() {
    let mut o = presigned(60);
    o.query = o.query.replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA1");
    assert_eq!(
        parse_err(&o),
        Error::UnsupportedAlgorithm {
            algorithm: "AWS4-HMAC-SHA1".into()
        }
    );
}

#[test]
fn presigned_bad_date() {
    let mut o = presigned(60);
    o.query = o
        .query
        .replace("X-Amz-Date=20150830T123600Z", "X-Amz-Date=20150830");
    assert_eq!(
        parse_err(&o),
        Error::InvalidDate {
            date: "20150830".into()
        }
    );
}

#[test]
fn presigned_host_not_signed() {
    let mut o = presigned(60);
    o.query = o.query.replace(
        "X-Amz-SignedHeaders=content-type%3Bhost",
        "X-Amz-SignedHeaders=content-type",
    );
    resign(&mut o, SECRET, Options::default());
    assert_eq!(run(&o, NOW), Err(Error::HostNotSigned));
}

#[test]
fn presigned_with_unsigned_x_amz_date_header() {
    let mut o = presigned(60);
    o.headers
        .push(("X-Amz-Date".into(), DATE.as_bytes().to_vec()));
    assert_eq!(
        run(&o, NOW),
        Err(Error::HeaderNotSigned {
            header: "x-amz-date"
        })
    );
}

#[test]
fn presigned_token_is_signed_and_exposed() {
    let mut o = unsigned();
    o.method = "GET".into();
    o.body.clear();
    let o = presigned_by(
        o,
        &SigningParams {
            session_token: Some(TOKEN),
            ..params()
        },
        60,
    );
    assert_eq!(
        o.with(|req| parse(req)
            .unwrap()
            .unwrap()
            .security_token()
            .map(str::to_owned)),
        Some(TOKEN.to_owned())
    );
    assert_eq!(run(&o, NOW), Ok(()));
    // Swapping the token breaks the signature.
    let mut m = o.clone();
    m.query = m.query.replace("EXAMPLE", "EXAMPLF");
    assert_eq!(run(&m, NOW), Err(Error::SignatureMismatch));
}

// ---------------------------------------------------------------- payload hash

#[test]
fn content_sha256_header_must_match_body() {
    let o = signed_by(
        unsigned(),
        &SigningParams {
            content_sha256_header: true,
            ..params()
        },
    );
    assert_eq!(run(&o, NOW), Ok(()));
    let mut m = o.clone();
    m.body.push(b'&');
    let e = run(&m, NOW).unwrap_err();
    assert_eq!(e, Error::ContentSha256Mismatch);
    assert_code(&e, "SignatureDoesNotMatch", 403);
    // Even when it is not signed, a wrong value is rejected.
    let mut m = signed();
    m.headers
        .push(("x-amz-content-sha256".into(), vec![b'0'; 64]));
    assert_eq!(run(&m, NOW), Err(Error::ContentSha256Mismatch));
}

#[test]
fn unsigned_payload_rejected_in_header_form() {
    let mut o = signed();
    o.headers
        .push(("x-amz-content-sha256".into(), b"UNSIGNED-PAYLOAD".to_vec()));
    let e = run(&o, NOW).unwrap_err();
    assert_eq!(e, Error::UnsignedPayloadNotAllowed);
    assert_code(&e, "SignatureDoesNotMatch", 403);
}

#[test]
fn unsigned_payload_accepted_for_presigned() {
    let mut o = presigned(60);
    o.method = "POST".into();
    o.headers
        .push(("x-amz-content-sha256".into(), b"UNSIGNED-PAYLOAD".to_vec()));
    resign(&mut o, SECRET, Options::default());
    assert_eq!(run(&o, NOW), Ok(()));
    // A body the signature does not cover is refused: a presigned URL must not carry
    // parameters its signer never saw.
    o.body = b"Action=AssumeRole".to_vec();
    assert_eq!(run(&o, NOW), Err(Error::UnsignedPayloadNotAllowed));
    // Without the header the body hash is what counts.
    o.headers.retain(|(n, _)| n != "x-amz-content-sha256");
    assert_eq!(run(&o, NOW), Err(Error::SignatureMismatch));
}

#[test]
fn presigned_unsigned_payload_option() {
    let p = SigningParams {
        options: Options {
            presigned_unsigned_payload: true,
            ..Options::default()
        },
        ..params()
    };
    let mut bodiless = unsigned();
    bodiless.body.clear();
    let mut o = presigned_by(bodiless, &p, 60);
    let exp = Expectations {
        options: p.options,
        ..expect()
    };
    assert_eq!(o.verify(SECRET, &exp, NOW), Ok(()));
    // The default (non-S3) verifier hashes the body and so rejects it.
    assert_eq!(run(&o, NOW), Err(Error::SignatureMismatch));
    // A body it does not cover is refused even with the option.
    o.body.push(b'x');
    assert_eq!(o.verify(SECRET, &exp, NOW), Err(Error::SignatureMismatch));
}

// ---------------------------------------------------------------- key caching, check()

#[test]
fn verify_with_cached_key() {
    let o = signed();
    o.with(|req| {
        let parsed = parse(req).unwrap().unwrap();
        let s = parsed.scope();
        assert_eq!(
            (s.date, s.region, s.service),
            ("20150830", "us-east-1", "sts")
        );
        let key = signing_key(SECRET, s.date, s.region, s.service);
        assert_eq!(verify_with_key(req, &parsed, &key, &expect(), NOW), Ok(()));
        let other = signing_key(SECRET, "20150831", s.region, s.service);
        assert_eq!(
            verify_with_key(req, &parsed, &other, &expect(), NOW),
            Err(Error::SignatureMismatch)
        );
        // Policy checks still run with a cached key.
        assert!(verify_with_key(req, &parsed, &key, &expect(), NOW + 301).is_err());
    });
}

#[test]
fn check_runs_without_the_secret() {
    let o = signed();
    o.with(|req| {
        let parsed = parse(req).unwrap().unwrap();
        assert_eq!(check(req, &parsed, &expect(), NOW), Ok(()));
        assert!(check(req, &parsed, &Expectations::new("iam"), NOW).is_err());
        assert!(check(req, &parsed, &expect(), NOW + 1000).is_err());
    });
}

#[test]
fn simple_sign_function_matches_signing_params() {
    let o = unsigned();
    let a = o.with(|req| sign(req, AK, SECRET, Some(TOKEN), "us-east-1", "sts", DATE));
    let b = o.with(|req| {
        SigningParams {
            session_token: Some(TOKEN),
            ..params()
        }
        .sign(req)
    });
    assert_eq!(a, b);
    let names: Vec<&str> = a.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["authorization", "x-amz-date", "x-amz-security-token"]
    );
}

#[test]
fn resign_helper_agrees_with_the_signer() {
    // Guards the helper used above: on an untouched request it reproduces the signature.
    let o = signed();
    let sig = o.with(|req| parse(req).unwrap().unwrap().signature().to_owned());
    assert_eq!(correct_signature(&o, SECRET, Options::default()), sig);
}

#[test]
fn error_codes_and_statuses() {
    let cases: Vec<(Error, &str, u16)> = vec![
        (
            Error::MissingAuthentication,
            "MissingAuthenticationToken",
            403,
        ),
        (
            Error::MissingAuthorizationParameters {
                missing: vec![],
                authorization: String::new(),
            },
            "IncompleteSignature",
            400,
        ),
        (Error::IncompletePresignedQuery, "IncompleteSignature", 400),
        (Error::MultipleAuthMechanisms, "IncompleteSignature", 400),
        (Error::ExpiresTooLarge, "IncompleteSignature", 400),
        (Error::HostNotSigned, "SignatureDoesNotMatch", 403),
        (Error::WrongRegion, "SignatureDoesNotMatch", 403),
        (Error::SignatureMismatch, "SignatureDoesNotMatch", 403),
        (Error::ContentSha256Mismatch, "SignatureDoesNotMatch", 403),
        (Error::RequestExpired, "AccessDenied", 403),
    ];
    for (e, code, status) in cases {
        assert_code(&e, code, status);
    }
}
