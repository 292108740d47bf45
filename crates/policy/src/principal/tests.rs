#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::*;
use crate::json;
use StatementEffect::{Allow, Deny};

fn spec(text: &str) -> Result<PrincipalSpec, PolicyError> {
    let doc = json::parse(text).unwrap();
    PrincipalSpec::from_json(&doc, doc.root(), "Principal")
}

const ACCT: &str = "111122223333";
const ROLE: &str = "arn:aws:iam::111122223333:role/team/app";
const SESSION: &str = "arn:aws:sts::111122223333:assumed-role/app/s1";
const USER: &str = "arn:aws:iam::111122223333:user/alice";

fn session() -> Principal {
    Principal::assumed_role(SESSION, ROLE, ACCT)
}

#[test]
fn valid_aws_values() {
    for v in [
        "*",
        ACCT,
        "arn:aws:iam::111122223333:root",
        USER,
        ROLE,
        SESSION,
        "arn:aws:sts::111122223333:federated-user/bob",
        "arn:aws-cn:iam::111122223333:role/x",
        "arn:aws-us-gov:iam::111122223333:user/p/q/r",
    ] {
        assert!(spec(&format!(r#"{{"AWS":"{v}"}}"#)).is_ok(), "{v}");
    }
}

#[test]
fn unique_ids_of_deleted_principals_parse_and_match_nobody() {
    let s = spec(r#"{"AWS":["AROAABCDEFGHIJKLMNOPQ","AIDAABCDEFGHIJKLMNOPQ"]}"#).unwrap();
    let role = Principal::assumed_role(
        "arn:aws:sts::111122223333:assumed-role/r/s",
        "arn:aws:iam::111122223333:role/r",
        "111122223333",
    );
    let user = Principal::user("arn:aws:iam::111122223333:user/u", "111122223333");
    for p in [&role, &user] {
        assert!(s.matches(p).is_none(), "{p:?}");
    }
    for bad in [
        "AROAabcdefghijklmnopq",
        "AROAABCDEFGHIJKLMNOP",
        "AGPAABCDEFGHIJKLMNOPQ",
    ] {
        assert!(spec(&format!(r#"{{"AWS":"{bad}"}}"#)).is_err(), "{bad}");
    }
}

#[test]
fn invalid_aws_values() {
    for v in [
        "12",
        "1111222233334",
        "arn:aws:iam::12:root",
        "arn:aws:iam::111122223333:role/*",
        "arn:aws:iam::111122223333:group/g",
        "arn:aws:iam::111122223333:user/",
        "arn:aws:iam:us-east-1:111122223333:user/a",
        "arn:aws:s3:::bucket",
        "arn:aws:sts::111122223333:assumed-role/app",
        "arn:aws:sts::111122223333:assumed-role/app/s/x",
        "arn:foo:iam::111122223333:root",
        "AIDAEXAMPLE",
        "",
    ] {
        let err = spec(&format!(r#"{{"AWS":"{v}"}}"#)).unwrap_err();
        assert_eq!(
            err,
            PolicyError::InvalidPrincipal {
                kind: "AWS".into(),
                value: v.into()
            },
            "{v}"
        );
    }
    assert_eq!(
        spec(r#"{"AWS":"arn:aws:iam::12:root"}"#)
            .unwrap_err()
            .to_string(),
        r#"invalid principal in policy: "AWS":"arn:aws:iam::12:root""#
    );
}

#[test]
fn other_types_validation() {
    assert!(
        spec(r#"{"Federated":"arn:aws:iam::111122223333:oidc-provider/oidc.example.com/id/ABC"}"#)
            .is_ok()
    );
    assert!(spec(r#"{"Federated":"arn:aws:iam::111122223333:saml-provider/Okta"}"#).is_ok());
    assert!(
        spec(r#"{"Federated":["cognito-identity.amazonaws.com","accounts.google.com"]}"#).is_ok()
    );
    assert!(spec(r#"{"Federated":"*"}"#).is_err());
    assert!(spec(r#"{"Federated":"arn:aws:iam::111122223333:role/x"}"#).is_err());
    assert!(spec(r#"{"Federated":"arn:aws:iam::111122223333:oidc-provider/"}"#).is_err());
    assert!(spec(r#"{"Service":"pods.eks.amazonaws.com"}"#).is_ok());
    assert!(spec(r#"{"Service":"*"}"#).is_err());
    assert!(spec(r#"{"Service":"pods eks"}"#).is_err());
    assert!(spec(&format!(r#"{{"CanonicalUser":"{}"}}"#, "ab".repeat(32))).is_ok());
    assert!(spec(r#"{"CanonicalUser":"xyz"}"#).is_err());
}

#[test]
fn shape_validation() {
    assert_eq!(spec(r#""*""#).unwrap(), PrincipalSpec::Any);
    assert!(spec(r#""arn:aws:iam::111122223333:root""#).is_err());
    assert!(spec("{}").is_err());
    assert!(spec(r#"{"AWS":[]}"#).is_err());
    assert!(spec(r#"{"AWS":123456789012}"#).is_err());
    assert!(spec(r#"{"AWS":[null]}"#).is_err());
    assert!(spec(r#"{"aws":"*"}"#).is_err());
    assert!(spec(r#"{"AWS":"*","AWS":"*"}"#).is_err());
    assert!(spec("true").is_err());
    assert!(spec("[]").is_err());
}

#[test]
fn positive_matching() {
    let s = session();
    assert_eq!(
        spec(r#""*""#).unwrap().matches(&s),
        Some(PrincipalMatch::Broad)
    );
    assert_eq!(
        spec(r#"{"AWS":"*"}"#)
            .unwrap()
            .matches(&Principal::anonymous()),
        Some(PrincipalMatch::Broad)
    );
    assert_eq!(
        spec(&format!(r#"{{"AWS":"{ACCT}"}}"#)).unwrap().matches(&s),
        Some(PrincipalMatch::Account)
    );
    assert_eq!(
        spec(&format!(r#"{{"AWS":"{ROLE}"}}"#)).unwrap().matches(&s),
        Some(PrincipalMatch::Role)
    );
    assert_eq!(
        spec(&format!(r#"{{"AWS":"{SESSION}"}}"#))
            .unwrap()
            .matches(&s),
        Some(PrincipalMatch::Exact)
    );
    // Strongest wins.
    assert_eq!(
        spec(&format!(r#"{{"AWS":["{ACCT}","{SESSION}","{ROLE}"]}}"#))
            .unwrap()
            .matches(&s),
        Some(PrincipalMatch::Exact)
    );
    let root = Principal::root(ACCT);
    assert_eq!(
        spec(r#"{"AWS":"arn:aws:iam::111122223333:root"}"#)
            .unwrap()
            .matches(&root),
        Some(PrincipalMatch::Account)
    );
    let svc = Principal::service("pods.eks.amazonaws.com");
    assert_eq!(
        spec(r#"{"Service":"Pods.EKS.amazonaws.com"}"#)
            .unwrap()
            .matches(&svc),
        Some(PrincipalMatch::Broad)
    );
}

#[test]
fn negative_matching() {
    let s = session();
    assert_eq!(spec(r#"{"AWS":"444455556666"}"#).unwrap().matches(&s), None);
    // Role without path does not match a role with a path.
    assert_eq!(
        spec(r#"{"AWS":"arn:aws:iam::111122223333:role/app"}"#)
            .unwrap()
            .matches(&s),
        None
    );
    assert_eq!(
        spec(&format!(r#"{{"AWS":"{USER}"}}"#)).unwrap().matches(&s),
        None
    );
    // A session ARN does not match a different session of the same role.
    assert_eq!(
        spec(r#"{"AWS":"arn:aws:sts::111122223333:assumed-role/app/s2"}"#)
            .unwrap()
            .matches(&s),
        None
    );
    // Account principals do not match web identity or service principals.
    let web = Principal::web_identity("arn:aws:iam::111122223333:oidc-provider/x.example");
    assert_eq!(
        spec(&format!(r#"{{"AWS":"{ACCT}"}}"#))
            .unwrap()
            .matches(&web),
        None
    );
    assert_eq!(
        spec(r#"{"Service":"ec2.amazonaws.com"}"#)
            .unwrap()
            .matches(&web),
        None
    );
    assert_eq!(
        spec(r#"{"Federated":"arn:aws:iam::111122223333:oidc-provider/X.example"}"#)
            .unwrap()
            .matches(&web),
        None
    );
    let svc = Principal::service("pods.eks.amazonaws.com");
    assert_eq!(
        spec(r#"{"Service":"ec2.amazonaws.com"}"#)
            .unwrap()
            .matches(&svc),
        None
    );
    assert_eq!(
        spec(&format!(r#"{{"AWS":"{ACCT}"}}"#))
            .unwrap()
            .matches(&Principal::anonymous()),
        None
    );
    let canonical = spec(&format!(r#"{{"CanonicalUser":"{}"}}"#, "ab".repeat(32))).unwrap();
    assert_eq!(canonical.matches(&s), None);
}

#[test]
fn not_principal_deny_requires_whole_chain() {
    let excludes = |text: &str, p: &Principal| spec(text).unwrap().excludes(p, Deny);
    let s = session();
    assert!(!excludes(&format!(r#"{{"AWS":"{ROLE}"}}"#), &s));
    assert!(!excludes(
        &format!(r#"{{"AWS":["{ROLE}","{SESSION}"]}}"#),
        &s
    ));
    assert!(excludes(
        &format!(r#"{{"AWS":["{ACCT}","{ROLE}","{SESSION}"]}}"#),
        &s
    ));
    let user = Principal::user(USER, ACCT);
    assert!(!excludes(&format!(r#"{{"AWS":"{USER}"}}"#), &user));
    assert!(excludes(
        &format!(r#"{{"AWS":["{USER}","arn:aws:iam::{ACCT}:root"]}}"#),
        &user
    ));
    assert!(excludes(
        &format!(r#"{{"AWS":"{ACCT}"}}"#),
        &Principal::root(ACCT)
    ));
    assert!(excludes(
        r#"{"Service":"pods.eks.amazonaws.com"}"#,
        &Principal::service("pods.eks.amazonaws.com")
    ));
    assert!(!excludes(
        &format!(r#"{{"AWS":"{ACCT}"}}"#),
        &Principal::anonymous()
    ));
    assert!(excludes(r#"{"AWS":"*"}"#, &Principal::anonymous()));
    assert!(excludes(r#""*""#, &s));
}

#[test]
fn not_principal_allow_excludes_any_listed_identity() {
    let excludes = |text: &str, p: &Principal| spec(text).unwrap().excludes(p, Allow);
    let s = session();
    // Any one identity of the session's chain withholds the grant.
    for listed in [SESSION, ROLE, ACCT] {
        assert!(
            excludes(&format!(r#"{{"AWS":"{listed}"}}"#), &s),
            "{listed}"
        );
    }
    assert!(excludes(
        &format!(r#"{{"AWS":"arn:aws:iam::{ACCT}:root"}}"#),
        &s
    ));
    let user = Principal::user(USER, ACCT);
    assert!(excludes(&format!(r#"{{"AWS":"{USER}"}}"#), &user));
    assert!(excludes(&format!(r#"{{"AWS":"{ACCT}"}}"#), &user));
    assert!(excludes(
        &format!(r#"{{"AWS":"{ACCT}"}}"#),
        &Principal::root(ACCT)
    ));
    // Principals with nothing listed are granted.
    assert!(!excludes(&format!(r#"{{"AWS":"{USER}"}}"#), &s));
    assert!(!excludes(&format!(r#"{{"AWS":"{SESSION}"}}"#), &user));
    assert!(!excludes(
        r#"{"AWS":"arn:aws:iam::444455556666:root"}"#,
        &user
    ));
    assert!(!excludes(
        &format!(r#"{{"AWS":"{USER}"}}"#),
        &Principal::anonymous()
    ));
    assert!(excludes(
        r#"{"Service":"pods.eks.amazonaws.com"}"#,
        &Principal::service("pods.eks.amazonaws.com")
    ));
    assert!(!excludes(
        r#"{"Service":"ec2.amazonaws.com"}"#,
        &Principal::service("pods.eks.amazonaws.com")
    ));
    assert!(excludes(r#"{"AWS":"*"}"#, &Principal::anonymous()));
    assert!(excludes(r#""*""#, &s));
}
