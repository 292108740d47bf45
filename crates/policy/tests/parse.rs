//! Parsing and validation: accepted documents, rejected documents with their exact errors,
//! size limits and JSON round trips.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use podiam_policy::{
    ActionClause, Limits, OperatorKind, Policy, PolicyError, PolicyKind, PrincipalClause,
    PrincipalSpec, PrincipalType, ResourceClause, SetQualifier, StatementEffect, Version,
    policy_size,
};

fn identity(json: &str) -> Result<Policy, PolicyError> {
    Policy::parse(json, PolicyKind::Identity)
}

fn trust(json: &str) -> Result<Policy, PolicyError> {
    Policy::parse(json, PolicyKind::Trust)
}

/// An identity policy with one statement built from `body` (the statement's inner JSON).
fn stmt(body: &str) -> Result<Policy, PolicyError> {
    identity(&format!(
        r#"{{"Version":"2012-10-17","Statement":{{{body}}}}}"#
    ))
}

fn round_trip(p: &Policy) {
    let text = p.to_json();
    let back = Policy::parse(&text, p.kind()).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(&back, p, "{text}");
    assert_eq!(back.to_json(), text);
}

// ---------------------------------------------------------------- accepted documents

#[test]
fn minimal_identity_policy() {
    let p =
        stmt(r#""Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*""#).unwrap();
    assert_eq!(p.version(), Version::V2012);
    assert_eq!(p.statements().len(), 1);
    let s = &p.statements()[0];
    assert_eq!(s.effect(), StatementEffect::Allow);
    assert!(s.sid().is_none());
    assert!(s.principal().is_none());
    let ActionClause::Action(actions) = s.action() else {
        panic!()
    };
    assert_eq!(actions[0].as_str(), "s3:GetObject");
    let Some(ResourceClause::Resource(resources)) = s.resource() else {
        panic!()
    };
    assert_eq!(resources[0].as_str(), "arn:aws:s3:::b/*");
    round_trip(&p);
}

#[test]
fn statement_array_id_and_sids() {
    let p = identity(
        r#"{"Version":"2012-10-17","Id":"my-policy","Statement":[
            {"Sid":"One","Effect":"Allow","Action":["s3:Get*","s3:List*"],"Resource":["*"]},
            {"Sid":"Two","Effect":"Deny","NotAction":"iam:*","NotResource":"arn:aws:iam::*:role/admin"},
            {"Sid":"","Effect":"Allow","Action":"*","Resource":"*"},
            {"Sid":"","Effect":"Allow","Action":"ec2:Describe?nstances","Resource":"*"}
        ]}"#,
    )
    .unwrap();
    assert_eq!(p.id(), Some("my-policy"));
    assert_eq!(p.statements().len(), 4);
    assert_eq!(p.statements()[1].sid(), Some("Two"));
    assert!(matches!(
        p.statements()[1].action(),
        ActionClause::NotAction(_)
    ));
    assert!(matches!(
        p.statements()[1].resource(),
        Some(ResourceClause::NotResource(_))
    ));
    round_trip(&p);
}

#[test]
fn versions() {
    let none = identity(r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#).unwrap();
    assert_eq!(none.version(), Version::V2008);
    assert_eq!(none.declared_version(), None);
    round_trip(&none);
    let old = identity(
        r#"{"Version":"2008-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#,
    )
    .unwrap();
    assert_eq!(old.declared_version(), Some(Version::V2008));
    round_trip(&old);
    // `${` in a 2008 document is text, so an invalid variable is not an error there.
    assert!(identity(r#"{"Version":"2008-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"arn:aws:s3:::${}"}}"#).is_ok());
}

#[test]
fn irsa_trust_policy() {
    let p = trust(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
            "Principal":{"Federated":"arn:aws:iam::111122223333:oidc-provider/oidc.example.com/id/ABC"},
            "Action":"sts:AssumeRoleWithWebIdentity",
            "Condition":{"StringEquals":{"oidc.example.com/id/ABC:sub":"system:serviceaccount:default:my-sa",
                                         "oidc.example.com/id/ABC:aud":"sts.amazonaws.com"}}}]}"#,
    )
    .unwrap();
    let s = &p.statements()[0];
    assert!(s.resource().is_none());
    let Some(PrincipalClause::Principal(PrincipalSpec::Map(entries))) = s.principal() else {
        panic!()
    };
    assert_eq!(entries[0].0, PrincipalType::Federated);
    let cond = s.condition().unwrap();
    assert_eq!(
        cond.operators()[0].operator().kind,
        OperatorKind::StringEquals
    );
    assert_eq!(
        cond.operators()[0].conditions()[1].key(),
        "oidc.example.com/id/ABC:aud"
    );
    round_trip(&p);
}

#[test]
fn pod_identity_trust_policy() {
    let p = trust(
        r#"{"Version":"2012-10-17","Statement":[{"Sid":"AllowEksAuthToAssumeRoleForPodIdentity","Effect":"Allow",
            "Principal":{"Service":"pods.eks.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"]}]}"#,
    )
    .unwrap();
    round_trip(&p);
}

#[test]
fn resource_policy_with_principals() {
    let p = Policy::parse(
        r#"{"Version":"2012-10-17","Statement":[
            {"Sid":"public-read","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"},
            {"Sid":"public-read","Effect":"Deny","NotPrincipal":{"AWS":["111122223333","arn:aws:iam::111122223333:user/a"]},
             "Action":"s3:DeleteObject","Resource":"arn:aws:s3:::b/*"},
            {"Effect":"Allow","Principal":{"AWS":"*","Service":["ec2.amazonaws.com"],
             "CanonicalUser":"79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"},
             "Action":"s3:ListBucket","Resource":"arn:aws:s3:::b"}
        ]}"#,
        PolicyKind::Resource,
    )
    .unwrap();
    assert!(matches!(
        p.statements()[1].principal(),
        Some(PrincipalClause::NotPrincipal(_))
    ));
    round_trip(&p);
}

#[test]
fn condition_values_are_normalized_to_strings() {
    let p = stmt(
        r#""Effect":"Allow","Action":"*","Resource":"*","Condition":{
            "NumericLessThan":{"aws:MultiFactorAuthAge":3600},
            "Bool":{"aws:SecureTransport":true},
            "ForAnyValue:StringLike":{"aws:TagKeys":["a*",1.5,false]},
            "IpAddressIfExists":{"aws:SourceIp":["10.0.0.0/8","2001:db8::/32"]}}"#,
    )
    .unwrap();
    let ops = p.statements()[0].condition().unwrap().operators();
    assert_eq!(ops[0].conditions()[0].values(), ["3600"]);
    assert_eq!(ops[1].conditions()[0].values(), ["true"]);
    assert_eq!(ops[2].operator().qualifier, Some(SetQualifier::ForAnyValue));
    assert_eq!(ops[2].conditions()[0].values(), ["a*", "1.5", "false"]);
    assert!(ops[3].operator().if_exists);
    round_trip(&p);
}

#[test]
fn every_operator_parses_and_round_trips() {
    let value = |kind: OperatorKind| match kind {
        OperatorKind::NumericEquals
        | OperatorKind::NumericNotEquals
        | OperatorKind::NumericLessThan
        | OperatorKind::NumericLessThanEquals
        | OperatorKind::NumericGreaterThan
        | OperatorKind::NumericGreaterThanEquals => "10",
        OperatorKind::DateEquals
        | OperatorKind::DateNotEquals
        | OperatorKind::DateLessThan
        | OperatorKind::DateLessThanEquals
        | OperatorKind::DateGreaterThan
        | OperatorKind::DateGreaterThanEquals => "2024-01-01T00:00:00Z",
        OperatorKind::Bool | OperatorKind::Null => "true",
        OperatorKind::BinaryEquals => "aGVsbG8=",
        OperatorKind::IpAddress | OperatorKind::NotIpAddress => "10.0.0.0/8",
        _ => "arn:aws:s3:::x",
    };
    for kind in OperatorKind::ALL {
        let names = if kind == OperatorKind::Null {
            vec![kind.as_str().to_owned()]
        } else {
            vec![
                kind.as_str().to_owned(),
                format!("{}IfExists", kind.as_str()),
                format!("ForAllValues:{}", kind.as_str()),
                format!("ForAnyValue:{}IfExists", kind.as_str()),
            ]
        };
        for name in names {
            let p = stmt(&format!(
                r#""Effect":"Allow","Action":"*","Resource":"*","Condition":{{"{name}":{{"aws:k":"{}"}}}}"#,
                value(kind)
            ))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(
                p.statements()[0].condition().unwrap().operators()[0]
                    .operator()
                    .to_string(),
                name
            );
            round_trip(&p);
        }
    }
}

#[test]
fn resource_kind_accepts_free_form_and_duplicate_sids() {
    let p = Policy::parse(
        r#"{"Statement":[{"Sid":"a b-c","Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*"},
                          {"Sid":"a b-c","Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*"}]}"#,
        PolicyKind::Resource,
    );
    assert!(p.is_ok());
}

#[test]
fn size_limit_counts_without_whitespace() {
    let compact = r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#;
    let size = policy_size(compact);
    assert_eq!(size, compact.len());
    let spaced = "{ \"Statement\" :\n\t{ \"Effect\" : \"Allow\", \"Action\" : \"*\", \"Resource\" : \"*\" } }";
    assert_eq!(policy_size(spaced), size);
    assert!(
        Policy::parse_with_limits(spaced, PolicyKind::Identity, Limits { max_bytes: size }).is_ok()
    );
    let err = Policy::parse_with_limits(
        spaced,
        PolicyKind::Identity,
        Limits {
            max_bytes: size - 1,
        },
    )
    .unwrap_err();
    assert_eq!(
        err,
        PolicyError::TooLarge {
            actual: size,
            max: size - 1
        }
    );
    assert_eq!(err.aws_error_code(), "LimitExceeded");
}

#[test]
fn default_limits_per_kind() {
    assert_eq!(Limits::for_kind(PolicyKind::Identity).max_bytes, 10_240);
    assert_eq!(Limits::for_kind(PolicyKind::Boundary).max_bytes, 6_144);
    assert_eq!(Limits::for_kind(PolicyKind::Trust).max_bytes, 2_048);
    assert_eq!(Limits::for_kind(PolicyKind::Session).max_bytes, 2_048);
    assert_eq!(Limits::MANAGED.max_bytes, 6_144);
    let long_sid = "A".repeat(2_100);
    let doc = format!(
        r#"{{"Statement":{{"Sid":"{long_sid}","Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"}}}}"#
    );
    assert!(matches!(
        trust(&doc),
        Err(PolicyError::TooLarge { max: 2_048, .. })
    ));
    // The same size is fine for an identity policy (it fails later, for a missing Resource).
    assert_eq!(
        Policy::parse(
            &doc.replace("\"Principal\":\"*\",", ""),
            PolicyKind::Identity
        )
        .unwrap_err(),
        PolicyError::MissingResources(0)
    );
}

#[test]
fn labels_do_not_affect_equality() {
    let a = stmt(r#""Effect":"Allow","Action":"*","Resource":"*""#).unwrap();
    let b = a.clone().with_label("managed policy X");
    assert_eq!(b.label(), "managed policy X");
    assert_eq!(a.label(), "");
    assert_eq!(a, b);
    assert_eq!(a.to_string(), a.to_json());
}

// ---------------------------------------------------------------- rejected documents

#[test]
fn rejects_invalid_json() {
    for doc in ["", "{", "{} {}", "[1,2]x", "{\"Statement\":}", "nul"] {
        assert!(
            matches!(identity(doc), Err(PolicyError::Syntax(_))),
            "{doc}"
        );
    }
    assert!(matches!(identity("[]"), Err(PolicyError::WrongType { .. })));
    assert!(matches!(
        identity("\"policy\""),
        Err(PolicyError::WrongType { .. })
    ));
}

#[test]
fn rejects_duplicate_keys_everywhere() {
    let cases = [
        (
            r#"{"Version":"2012-10-17","Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#,
            "Version",
            "policy",
        ),
        (
            r#"{"Statement":{"Effect":"Allow","Effect":"Deny","Action":"*","Resource":"*"}}"#,
            "Effect",
            "statement 0",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Allow","Action":"*","Action":"s3:*","Resource":"*"}]}"#,
            "Action",
            "statement 1",
        ),
        (
            r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:a":"1"},"StringEquals":{"aws:b":"2"}}}}"#,
            "StringEquals",
            "Condition of statement 0",
        ),
        (
            r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:a":"1","aws:a":"2"}}}}"#,
            "aws:a",
            "StringEquals in Condition of statement 0",
        ),
    ];
    for (doc, key, location) in cases {
        assert_eq!(
            identity(doc).unwrap_err(),
            PolicyError::DuplicateKey {
                key: key.into(),
                location: location.into()
            },
            "{doc}"
        );
    }
    let doc = r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"*","AWS":"111122223333"},"Action":"sts:AssumeRole"}}"#;
    assert_eq!(
        trust(doc).unwrap_err(),
        PolicyError::DuplicateKey {
            key: "AWS".into(),
            location: "Principal".into()
        }
    );
}

#[test]
fn rejects_unknown_elements() {
    assert_eq!(
        identity(r#"{"Version":"2012-10-17","Statment":[]}"#).unwrap_err(),
        PolicyError::UnknownElement {
            element: "Statment".into(),
            location: "policy".into()
        }
    );
    assert_eq!(
        stmt(r#""Effect":"Allow","Action":"*","Resources":"*""#).unwrap_err(),
        PolicyError::UnknownElement {
            element: "Resources".into(),
            location: "statement 0".into()
        }
    );
    assert!(matches!(
        stmt(r#""effect":"Allow","Action":"*","Resource":"*""#),
        Err(PolicyError::UnknownElement { .. })
    ));
}

#[test]
fn rejects_bad_versions() {
    let body = r#""Statement":{"Effect":"Allow","Action":"*","Resource":"*"}"#;
    assert_eq!(
        identity(&format!(r#"{{"Version":"2012-10-18",{body}}}"#)).unwrap_err(),
        PolicyError::InvalidVersion("2012-10-18".into())
    );
    assert!(matches!(
        identity(&format!(r#"{{"Version":2012,{body}}}"#)),
        Err(PolicyError::WrongType { .. })
    ));
    assert!(matches!(
        identity(&format!(r#"{{"Id":7,{body}}}"#)),
        Err(PolicyError::WrongType { .. })
    ));
}

#[test]
fn rejects_bad_statement_shapes() {
    assert_eq!(
        identity(r#"{"Version":"2012-10-17"}"#).unwrap_err(),
        PolicyError::MissingStatement
    );
    assert_eq!(
        identity(r#"{"Statement":[]}"#).unwrap_err(),
        PolicyError::EmptyStatement
    );
    assert!(matches!(
        identity(r#"{"Statement":"Allow"}"#),
        Err(PolicyError::WrongType { .. })
    ));
    assert!(matches!(
        identity(r#"{"Statement":["x"]}"#),
        Err(PolicyError::WrongType { .. })
    ));
    assert!(matches!(
        identity(r#"{"Statement":[[]]}"#),
        Err(PolicyError::WrongType { .. })
    ));
}

#[test]
fn rejects_bad_effects() {
    assert_eq!(
        stmt(r#""Action":"*","Resource":"*""#).unwrap_err(),
        PolicyError::MissingEffect(0)
    );
    for effect in ["allow", "DENY", "Permit", ""] {
        assert_eq!(
            stmt(&format!(
                r#""Effect":"{effect}","Action":"*","Resource":"*""#
            ))
            .unwrap_err(),
            PolicyError::InvalidEffect(effect.into())
        );
    }
    assert!(matches!(
        stmt(r#""Effect":true,"Action":"*","Resource":"*""#),
        Err(PolicyError::WrongType { .. })
    ));
    assert_eq!(
        PolicyError::InvalidEffect("allow".into()).to_string(),
        "invalid effect: \"allow\" (must be Allow or Deny)"
    );
}

#[test]
fn rejects_missing_empty_or_conflicting_actions() {
    assert_eq!(
        stmt(r#""Effect":"Allow","Resource":"*""#).unwrap_err(),
        PolicyError::MissingActions(0)
    );
    assert_eq!(
        stmt(r#""Effect":"Allow","Action":[],"Resource":"*""#).unwrap_err(),
        PolicyError::MissingActions(0)
    );
    assert_eq!(
        stmt(r#""Effect":"Allow","Action":"*","NotAction":"s3:*","Resource":"*""#).unwrap_err(),
        PolicyError::Conflicting {
            statement: 0,
            first: "Action",
            second: "NotAction"
        }
    );
    assert!(matches!(
        stmt(r#""Effect":"Allow","Action":7,"Resource":"*""#),
        Err(PolicyError::WrongType { .. })
    ));
    assert!(matches!(
        stmt(r#""Effect":"Allow","Action":["s3:*",7],"Resource":"*""#),
        Err(PolicyError::WrongType { .. })
    ));
    assert!(matches!(
        stmt(r#""Effect":"Allow","Action":{"s3":"*"},"Resource":"*""#),
        Err(PolicyError::WrongType { .. })
    ));
}

#[test]
fn rejects_malformed_actions() {
    for action in [
        "s3GetObject",
        "",
        "s3:",
        ":GetObject",
        "s3*:Get",
        "s 3:Get",
        "s3:Get Object",
        "s3:Get:Object",
        "**:x",
    ] {
        let err = stmt(&format!(
            r#""Effect":"Allow","Action":"{action}","Resource":"*""#
        ))
        .unwrap_err();
        assert!(
            matches!(&err, PolicyError::InvalidAction { action: a, .. } if a == action),
            "{action}: {err}"
        );
    }
    assert_eq!(
        stmt(r#""Effect":"Allow","Action":"GetObject","Resource":"*""#)
            .unwrap_err()
            .to_string(),
        "invalid action \"GetObject\": actions/conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."
    );
}

#[test]
fn rejects_missing_or_malformed_resources() {
    assert_eq!(
        stmt(r#""Effect":"Allow","Action":"*""#).unwrap_err(),
        PolicyError::MissingResources(0)
    );
    assert_eq!(
        stmt(r#""Effect":"Allow","Action":"*","Resource":[]"#).unwrap_err(),
        PolicyError::MissingResources(0)
    );
    assert_eq!(
        stmt(r#""Effect":"Allow","Action":"*","Resource":"*","NotResource":"*""#).unwrap_err(),
        PolicyError::Conflicting {
            statement: 0,
            first: "Resource",
            second: "NotResource"
        }
    );
    for resource in [
        "bucket",
        "arn:aws:s3",
        "arn:aws:s3:::",
        "**",
        "ARN:aws:s3:::b",
    ] {
        if resource == "arn:aws:s3:::" {
            // Six fields with an empty resource: ARN-shaped, accepted.
            assert!(
                stmt(&format!(
                    r#""Effect":"Allow","Action":"*","Resource":"{resource}""#
                ))
                .is_ok()
            );
            continue;
        }
        assert_eq!(
            stmt(&format!(
                r#""Effect":"Allow","Action":"*","Resource":"{resource}""#
            ))
            .unwrap_err(),
            PolicyError::InvalidResource(resource.into()),
            "{resource}"
        );
    }
    assert_eq!(
        PolicyError::InvalidResource("bucket".into()).to_string(),
        "resource bucket must be in arn format or \"*\""
    );
}

#[test]
fn rejects_principal_in_identity_session_and_boundary_policies() {
    for kind in [
        PolicyKind::Identity,
        PolicyKind::Session,
        PolicyKind::Boundary,
    ] {
        for element in ["Principal", "NotPrincipal"] {
            let doc = format!(
                r#"{{"Statement":{{"Effect":"Allow","{element}":"*","Action":"*","Resource":"*"}}}}"#
            );
            assert_eq!(
                Policy::parse(&doc, kind).unwrap_err(),
                PolicyError::PrincipalNotAllowed,
                "{kind:?} {element}"
            );
        }
    }
    assert_eq!(
        PolicyError::PrincipalNotAllowed.to_string(),
        "policy document should not specify a principal"
    );
}

#[test]
fn rejects_resource_in_trust_policies() {
    for element in ["Resource", "NotResource"] {
        let doc = format!(
            r#"{{"Statement":{{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole","{element}":"*"}}}}"#
        );
        let err = trust(&doc).unwrap_err();
        assert!(matches!(err, PolicyError::ResourceNotAllowed(e) if e == element));
        assert_eq!(err.to_string(), format!("has prohibited field {element}"));
    }
}

#[test]
fn rejects_not_principal_in_trust_policies_only() {
    let doc = r#"{"Statement":{"Effect":"Deny","NotPrincipal":{"AWS":"111122223333"},"Action":"sts:AssumeRole"}}"#;
    let err = trust(doc).unwrap_err();
    assert_eq!(err, PolicyError::NotPrincipalNotAllowed);
    assert_eq!(err.to_string(), "has prohibited field NotPrincipal");
    let doc = r#"{"Statement":{"Effect":"Deny","NotPrincipal":{"AWS":"111122223333"},"Action":"s3:*","Resource":"*"}}"#;
    assert!(Policy::parse(doc, PolicyKind::Resource).is_ok());
}

#[test]
fn rejects_missing_or_conflicting_principals() {
    let doc = r#"{"Statement":{"Effect":"Allow","Action":"sts:AssumeRole"}}"#;
    assert_eq!(trust(doc).unwrap_err(), PolicyError::MissingPrincipal(0));
    let doc = r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}"#;
    assert_eq!(
        Policy::parse(doc, PolicyKind::Resource).unwrap_err(),
        PolicyError::MissingPrincipal(0)
    );
    let doc = r#"{"Statement":{"Effect":"Allow","Principal":"*","NotPrincipal":"*","Action":"sts:AssumeRole"}}"#;
    assert_eq!(
        trust(doc).unwrap_err(),
        PolicyError::Conflicting {
            statement: 0,
            first: "Principal",
            second: "NotPrincipal"
        }
    );
}

#[test]
fn rejects_invalid_principals_with_aws_style_message() {
    let doc = r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::12:root"},"Action":"sts:AssumeRole"}}"#;
    let err = trust(doc).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"invalid principal in policy: "AWS":"arn:aws:iam::12:root""#
    );
    assert_eq!(err.aws_error_code(), "MalformedPolicyDocument");
    for principal in [
        r#"{"AWS":"arn:aws:iam::111122223333:role/*"}"#,
        r#"{"Federated":"*"}"#,
        r#"{"Service":["pods.eks.amazonaws.com",""]}"#,
        r#"{"Foo":"bar"}"#,
        r#""arn:aws:iam::111122223333:root""#,
        r#"{}"#,
    ] {
        let doc = format!(
            r#"{{"Statement":{{"Effect":"Allow","Principal":{principal},"Action":"sts:AssumeRole"}}}}"#
        );
        assert!(
            matches!(trust(&doc), Err(PolicyError::InvalidPrincipal { .. })),
            "{principal}"
        );
    }
}

#[test]
fn rejects_bad_conditions() {
    let with = |cond: &str| {
        stmt(&format!(
            r#""Effect":"Allow","Action":"*","Resource":"*","Condition":{cond}"#
        ))
    };
    assert_eq!(
        with(r#"{"StringEqualz":{"aws:k":"v"}}"#).unwrap_err(),
        PolicyError::InvalidConditionOperator("StringEqualz".into())
    );
    for op in [
        "stringEquals",
        "NullIfExists",
        "ForAnyValue:Null",
        "ForAll:StringEquals",
        "StringEqualsIfexists",
    ] {
        assert_eq!(
            with(&format!(r#"{{"{op}":{{"aws:k":"true"}}}}"#)).unwrap_err(),
            PolicyError::InvalidConditionOperator(op.into())
        );
    }
    assert!(matches!(
        with(r#""StringEquals""#),
        Err(PolicyError::WrongType { .. })
    ));
    assert!(matches!(
        with(r#"{"StringEquals":"aws:k"}"#),
        Err(PolicyError::WrongType { .. })
    ));
    assert!(matches!(
        with(r#"{"StringEquals":{"aws:k":null}}"#),
        Err(PolicyError::WrongType { .. })
    ));
    assert!(matches!(
        with(r#"{"StringEquals":{"aws:k":{"a":"b"}}}"#),
        Err(PolicyError::WrongType { .. })
    ));
    assert!(matches!(
        with(r#"{"StringEquals":{"aws:k":[["a"]]}}"#),
        Err(PolicyError::WrongType { .. })
    ));
    for key in ["sub", ":sub", "aws:", ""] {
        assert_eq!(
            with(&format!(r#"{{"StringEquals":{{"{key}":"v"}}}}"#)).unwrap_err(),
            PolicyError::InvalidConditionKey(key.into())
        );
    }
}

#[test]
fn rejects_condition_values_of_the_wrong_type() {
    let with = |op: &str, v: &str| {
        stmt(&format!(
            r#""Effect":"Allow","Action":"*","Resource":"*","Condition":{{"{op}":{{"aws:k":{v}}}}}"#
        ))
    };
    for (op, v) in [
        ("NumericEquals", r#""abc""#),
        ("NumericLessThan", r#"["1","x"]"#),
        ("NumericGreaterThan", "true"),
        ("DateLessThan", r#""tomorrow""#),
        ("DateEquals", r#""2024-02-30""#),
        ("Bool", r#""yes""#),
        ("Null", r#""1""#),
        ("IpAddress", r#""300.1.1.1""#),
        ("NotIpAddress", r#""10.0.0.0/40""#),
        ("BinaryEquals", r#""***""#),
    ] {
        let err = with(op, v).unwrap_err();
        assert!(
            matches!(&err, PolicyError::InvalidConditionValue { operator, .. } if operator == op),
            "{op} {v}: {err}"
        );
    }
    assert!(with("Bool", "true").is_ok());
    assert!(with("NumericEquals", "1.5").is_ok());
    // AWS supports policy variables in Bool values (not in Numeric/Date/IP/Binary ones).
    assert!(with("Bool", r#""${aws:PrincipalTag/mfa}""#).is_ok());
    assert!(with("Bool", r#"["false","${aws:PrincipalTag/mfa, 'true'}"]"#).is_ok());
    for (op, v) in [
        ("Bool", r#""${*}""#),
        ("NumericEquals", r#""${aws:PrincipalTag/n}""#),
        ("DateLessThan", r#""${aws:PrincipalTag/d}""#),
        ("IpAddress", r#""${aws:PrincipalTag/ip}""#),
    ] {
        let err = with(op, v).unwrap_err();
        assert!(
            matches!(&err, PolicyError::InvalidConditionValue { operator, .. } if operator == op),
            "{op} {v}: {err}"
        );
    }
    assert!(matches!(
        with("Bool", r#""${aws:PrincipalTag/mfa, true}""#).unwrap_err(),
        PolicyError::InvalidVariable { .. }
    ));
}

#[test]
fn rejects_malformed_variables_in_2012_documents() {
    let err = stmt(r#""Effect":"Allow","Action":"*","Resource":"arn:aws:s3:::${}""#).unwrap_err();
    assert!(matches!(err, PolicyError::InvalidVariable { .. }));
    let err = stmt(r#""Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringLike":{"aws:k":"${aws:username, nobody}"}}"#)
        .unwrap_err();
    assert!(matches!(err, PolicyError::InvalidVariable { .. }));
}

#[test]
fn rejects_bad_sids() {
    let doc = r#"{"Statement":[{"Sid":"A","Effect":"Allow","Action":"*","Resource":"*"},
                               {"Sid":"A","Effect":"Deny","Action":"*","Resource":"*"}]}"#;
    assert_eq!(
        identity(doc).unwrap_err(),
        PolicyError::DuplicateSid("A".into())
    );
    assert_eq!(
        stmt(r#""Sid":"my-sid","Effect":"Allow","Action":"*","Resource":"*""#).unwrap_err(),
        PolicyError::InvalidSid("my-sid".into())
    );
    let doc =
        r#"{"Statement":{"Sid":"a b","Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"}}"#;
    assert_eq!(
        trust(doc).unwrap_err(),
        PolicyError::InvalidSid("a b".into())
    );
    assert!(matches!(
        stmt(r#""Sid":1,"Effect":"Allow","Action":"*","Resource":"*""#),
        Err(PolicyError::WrongType { .. })
    ));
}

#[test]
fn every_error_maps_to_malformed_policy_document_except_size() {
    let errors = [
        PolicyError::Syntax("x".into()),
        PolicyError::MissingStatement,
        PolicyError::PrincipalNotAllowed,
        PolicyError::DuplicateSid("a".into()),
    ];
    for e in errors {
        assert_eq!(e.aws_error_code(), "MalformedPolicyDocument");
        let msg = e.to_string();
        assert_eq!(
            msg.chars().next().map(|c| c.is_lowercase()),
            Some(true),
            "{msg}"
        );
    }
}

#[test]
fn fuzz_seed_corpus_parses() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/parse_policy");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let kind = match name.as_str() {
            "irsa.json" | "pod_identity.json" => PolicyKind::Trust,
            n if n.starts_with("bucket") => PolicyKind::Resource,
            _ => PolicyKind::Identity,
        };
        let parsed = Policy::parse(&text, kind);
        if name == "duplicate_keys.json" {
            assert!(
                matches!(parsed, Err(PolicyError::DuplicateKey { .. })),
                "{name}"
            );
        } else {
            round_trip(&parsed.unwrap_or_else(|e| panic!("{name}: {e}")));
        }
        seen += 1;
    }
    assert!(seen >= 5);
}
