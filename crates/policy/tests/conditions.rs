//! Every condition operator, through the public API: a one-statement identity policy with
//! the condition under test is evaluated against a request context.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use podiam_policy::{
    Context, Policy, PolicyEffect, PolicyKind, Principal, Request, evaluate_policy,
};

const RESOURCE: &str = "arn:aws:s3:::bucket/home/alice/file";

fn policy(version: &str, resource: &str, condition: &str) -> Policy {
    let version = if version.is_empty() {
        String::new()
    } else {
        format!(r#""Version":"{version}","#)
    };
    let doc = format!(
        r#"{{{version}"Statement":{{"Effect":"Allow","Action":"s3:GetObject","Resource":"{resource}","Condition":{condition}}}}}"#
    );
    Policy::parse(&doc, PolicyKind::Identity).unwrap_or_else(|e| panic!("{e}: {doc}"))
}

fn allowed_by(p: &Policy, ctx: &Context) -> bool {
    let principal = Principal::user("arn:aws:iam::111122223333:user/alice", "111122223333");
    let req = Request {
        principal: &principal,
        action: "s3:GetObject",
        resource: RESOURCE,
        context: ctx,
    };
    evaluate_policy(&req, p).effect == PolicyEffect::Allow
}

/// Does `condition` (a Condition element) hold for `ctx`?
fn holds(condition: &str, ctx: &Context) -> bool {
    allowed_by(&policy("2012-10-17", "*", condition), ctx)
}

fn ctx1(key: &str, value: &str) -> Context {
    Context::new().with(key, value)
}

fn ctxn(key: &str, values: &[&str]) -> Context {
    Context::new().with_multi(key, values.iter().copied())
}

fn empty() -> Context {
    Context::new()
}

// ---------------------------------------------------------------- String

#[test]
fn string_equals_is_case_sensitive_on_values_and_insensitive_on_keys() {
    let c = r#"{"StringEquals":{"aws:username":"alice"}}"#;
    assert!(holds(c, &ctx1("aws:username", "alice")));
    assert!(holds(c, &ctx1("AWS:UserName", "alice")));
    assert!(holds(
        r#"{"StringEquals":{"AWS:USERNAME":"alice"}}"#,
        &ctx1("aws:username", "alice")
    ));
    assert!(!holds(c, &ctx1("aws:username", "Alice")));
    assert!(!holds(c, &ctx1("aws:username", "alice ")));
    assert!(!holds(c, &ctx1("aws:username", "ali*")));
    assert!(!holds(c, &empty()));
}

#[test]
fn string_equals_has_no_wildcards() {
    let c = r#"{"StringEquals":{"aws:username":"ali*"}}"#;
    assert!(holds(c, &ctx1("aws:username", "ali*")));
    assert!(!holds(c, &ctx1("aws:username", "alice")));
}

#[test]
fn string_equals_values_are_ored() {
    let c = r#"{"StringEquals":{"aws:username":["alice","bob"]}}"#;
    assert!(holds(c, &ctx1("aws:username", "bob")));
    assert!(!holds(c, &ctx1("aws:username", "carol")));
}

#[test]
fn string_not_equals_with_multiple_values_matches_none() {
    let c = r#"{"StringNotEquals":{"aws:username":["alice","bob"]}}"#;
    assert!(holds(c, &ctx1("aws:username", "carol")));
    assert!(!holds(c, &ctx1("aws:username", "alice")));
    assert!(!holds(c, &ctx1("aws:username", "bob")));
    // Missing key: a negated operator is true.
    assert!(holds(c, &empty()));
    // Case-sensitive: "Alice" is not "alice".
    assert!(holds(c, &ctx1("aws:username", "Alice")));
}

#[test]
fn string_equals_ignore_case() {
    let c = r#"{"StringEqualsIgnoreCase":{"aws:username":"Alice"}}"#;
    assert!(holds(c, &ctx1("aws:username", "ALICE")));
    assert!(holds(c, &ctx1("aws:username", "alice")));
    assert!(!holds(c, &ctx1("aws:username", "alicia")));
    assert!(!holds(c, &empty()));
    let n = r#"{"StringNotEqualsIgnoreCase":{"aws:username":["Alice","BOB"]}}"#;
    assert!(!holds(n, &ctx1("aws:username", "bob")));
    assert!(!holds(n, &ctx1("aws:username", "ALICE")));
    assert!(holds(n, &ctx1("aws:username", "carol")));
    assert!(holds(n, &empty()));
}

#[test]
fn string_like_wildcards() {
    let c = r#"{"StringLike":{"s3:prefix":["home/*/docs","tmp/??"]}}"#;
    assert!(holds(c, &ctx1("s3:prefix", "home/alice/docs")));
    assert!(holds(c, &ctx1("s3:prefix", "home//docs")));
    assert!(holds(c, &ctx1("s3:prefix", "home/a/b/docs")));
    assert!(holds(c, &ctx1("s3:prefix", "tmp/ab")));
    assert!(!holds(c, &ctx1("s3:prefix", "tmp/abc")));
    assert!(!holds(c, &ctx1("s3:prefix", "tmp/a")));
    assert!(!holds(c, &ctx1("s3:prefix", "Home/alice/docs")));
    assert!(!holds(c, &ctx1("s3:prefix", "home/alice/docs/x")));
    assert!(!holds(c, &empty()));
}

#[test]
fn string_not_like() {
    let c = r#"{"StringNotLike":{"s3:prefix":["secret/*","private*"]}}"#;
    assert!(holds(c, &ctx1("s3:prefix", "public/x")));
    assert!(!holds(c, &ctx1("s3:prefix", "secret/x")));
    assert!(!holds(c, &ctx1("s3:prefix", "private")));
    assert!(holds(c, &empty()));
}

#[test]
fn several_keys_and_operators_are_anded() {
    let c = r#"{"StringEquals":{"aws:username":"alice","aws:PrincipalTag/team":"red"},
                "Bool":{"aws:SecureTransport":"true"}}"#;
    let ok = Context::new()
        .with("aws:username", "alice")
        .with("aws:PrincipalTag/team", "red")
        .with("aws:SecureTransport", "true");
    assert!(holds(c, &ok));
    assert!(!holds(c, &ok.clone().with("aws:PrincipalTag/team", "blue")));
    assert!(!holds(c, &ok.clone().with("aws:SecureTransport", "false")));
    let mut partial = ok.clone();
    partial.remove("aws:username");
    assert!(!holds(c, &partial));
}

#[test]
fn empty_condition_value_lists() {
    assert!(!holds(
        r#"{"StringEquals":{"aws:k":[]}}"#,
        &ctx1("aws:k", "v")
    ));
    assert!(holds(
        r#"{"StringNotEquals":{"aws:k":[]}}"#,
        &ctx1("aws:k", "v")
    ));
    assert!(holds(r#"{"StringEquals":{}}"#, &empty()));
    assert!(holds("{}", &empty()));
}

// ---------------------------------------------------------------- Numeric

#[test]
fn numeric_operators() {
    let ctx = ctx1("s3:max-keys", "10");
    let cases = [
        ("NumericEquals", "10", true),
        ("NumericEquals", "10.0", true),
        ("NumericEquals", "11", false),
        ("NumericNotEquals", "11", true),
        ("NumericNotEquals", "10", false),
        ("NumericLessThan", "11", true),
        ("NumericLessThan", "10", false),
        ("NumericLessThanEquals", "10", true),
        ("NumericLessThanEquals", "9.99", false),
        ("NumericGreaterThan", "9.5", true),
        ("NumericGreaterThan", "10", false),
        ("NumericGreaterThanEquals", "10", true),
        ("NumericGreaterThanEquals", "1e2", false),
    ];
    for (op, value, expected) in cases {
        assert_eq!(
            holds(&format!(r#"{{"{op}":{{"s3:max-keys":"{value}"}}}}"#), &ctx),
            expected,
            "{op} {value}"
        );
    }
}

#[test]
fn numeric_with_floats_json_numbers_and_bad_request_values() {
    assert!(holds(
        r#"{"NumericLessThan":{"aws:MultiFactorAuthAge":3600}}"#,
        &ctx1("aws:MultiFactorAuthAge", "120.5")
    ));
    assert!(!holds(
        r#"{"NumericLessThan":{"aws:MultiFactorAuthAge":3600}}"#,
        &ctx1("aws:MultiFactorAuthAge", "3600.01")
    ));
    assert!(holds(
        r#"{"NumericEquals":{"k:n":[1.25,"-3"]}}"#,
        &ctx1("k:n", "-3.0")
    ));
    assert!(!holds(
        r#"{"NumericEquals":{"k:n":"1"}}"#,
        &ctx1("k:n", "one")
    ));
    assert!(!holds(r#"{"NumericLessThan":{"k:n":"1"}}"#, &empty()));
    assert!(holds(r#"{"NumericNotEquals":{"k:n":"1"}}"#, &empty()));
}

// ---------------------------------------------------------------- Date

#[test]
fn date_operators_accept_several_formats() {
    let now = ctx1("aws:CurrentTime", "2024-06-01T12:00:00Z");
    let before = [
        "2024-06-02",
        "2024-06-01T12:00:01Z",
        "2024-06-01T14:00:01+02:00",
        "20240601T120001Z",
        "1717243201",
        "2024-06-01T12:00:00.500Z",
    ];
    for limit in before {
        assert!(
            holds(
                &format!(r#"{{"DateLessThan":{{"aws:CurrentTime":"{limit}"}}}}"#),
                &now
            ),
            "{limit}"
        );
        assert!(
            !holds(
                &format!(r#"{{"DateGreaterThanEquals":{{"aws:CurrentTime":"{limit}"}}}}"#),
                &now
            ),
            "{limit}"
        );
    }
    let same = [
        "2024-06-01T12:00:00Z",
        "2024-06-01T08:00:00-04:00",
        "1717243200",
        "2024-06-01T12:00Z",
    ];
    for t in same {
        assert!(
            holds(
                &format!(r#"{{"DateEquals":{{"aws:CurrentTime":"{t}"}}}}"#),
                &now
            ),
            "{t}"
        );
        assert!(
            !holds(
                &format!(r#"{{"DateNotEquals":{{"aws:CurrentTime":"{t}"}}}}"#),
                &now
            ),
            "{t}"
        );
        assert!(
            holds(
                &format!(r#"{{"DateLessThanEquals":{{"aws:CurrentTime":"{t}"}}}}"#),
                &now
            ),
            "{t}"
        );
        assert!(
            holds(
                &format!(r#"{{"DateGreaterThanEquals":{{"aws:CurrentTime":"{t}"}}}}"#),
                &now
            ),
            "{t}"
        );
        assert!(
            !holds(
                &format!(r#"{{"DateGreaterThan":{{"aws:CurrentTime":"{t}"}}}}"#),
                &now
            ),
            "{t}"
        );
    }
    assert!(holds(
        r#"{"DateGreaterThan":{"aws:CurrentTime":"2024-01-01"}}"#,
        &now
    ));
    // Epoch request values (aws:EpochTime) compare with ISO policy values.
    assert!(holds(
        r#"{"DateLessThan":{"aws:EpochTime":"2024-06-01T12:00:01Z"}}"#,
        &ctx1("aws:EpochTime", "1717243200")
    ));
    // Unparseable request values never match.
    assert!(!holds(
        r#"{"DateLessThan":{"aws:CurrentTime":"2030-01-01"}}"#,
        &ctx1("aws:CurrentTime", "now")
    ));
    assert!(!holds(
        r#"{"DateLessThan":{"aws:CurrentTime":"2030-01-01"}}"#,
        &empty()
    ));
}

// ---------------------------------------------------------------- Bool, Binary, Null

#[test]
fn bool_operator() {
    let c = r#"{"Bool":{"aws:SecureTransport":"true"}}"#;
    assert!(holds(c, &ctx1("aws:SecureTransport", "true")));
    assert!(holds(c, &ctx1("aws:SecureTransport", "TRUE")));
    assert!(!holds(c, &ctx1("aws:SecureTransport", "false")));
    assert!(!holds(c, &ctx1("aws:SecureTransport", "yes")));
    assert!(!holds(c, &empty()));
    let f = r#"{"Bool":{"aws:SecureTransport":false}}"#;
    assert!(holds(f, &ctx1("aws:SecureTransport", "false")));
    assert!(!holds(f, &ctx1("aws:SecureTransport", "true")));
    assert!(holds(
        r#"{"BoolIfExists":{"aws:MultiFactorAuthPresent":"true"}}"#,
        &empty()
    ));
    assert!(!holds(
        r#"{"BoolIfExists":{"aws:MultiFactorAuthPresent":"true"}}"#,
        &ctx1("aws:MultiFactorAuthPresent", "false")
    ));
}

/// AWS "Condition operators", Boolean condition operators: policy variables are supported.
/// The substituted value is compared as a boolean.
#[test]
fn bool_operator_with_policy_variables() {
    let c = r#"{"Bool":{"aws:SecureTransport":"${aws:PrincipalTag/https}"}}"#;
    let ctx = |tag: Option<&str>, transport: &str| {
        let mut ctx = Context::new().with("aws:SecureTransport", transport);
        if let Some(tag) = tag {
            ctx.set("aws:PrincipalTag/https", tag);
        }
        ctx
    };
    assert!(holds(c, &ctx(Some("true"), "true")));
    assert!(holds(c, &ctx(Some("false"), "false")));
    assert!(holds(c, &ctx(Some("TRUE"), "true")));
    assert!(!holds(c, &ctx(Some("true"), "false")));
    assert!(!holds(c, &ctx(Some("false"), "true")));
    // A tag that is not a boolean, or an unresolved variable, matches nothing.
    assert!(!holds(c, &ctx(Some("yes"), "true")));
    assert!(!holds(c, &ctx(None, "true")));
    assert!(!holds(c, &ctx(None, "false")));
    // The default is used when the tag is absent.
    let d = r#"{"Bool":{"aws:SecureTransport":"${aws:PrincipalTag/https, 'true'}"}}"#;
    assert!(holds(d, &ctx(None, "true")));
    assert!(!holds(d, &ctx(None, "false")));
    assert!(holds(d, &ctx(Some("false"), "false")));
    // A list mixing a constant and a variable is ORed as usual.
    let l = r#"{"Bool":{"aws:SecureTransport":["true","${aws:PrincipalTag/https}"]}}"#;
    assert!(holds(l, &ctx(Some("false"), "false")));
    assert!(holds(l, &ctx(None, "true")));
    assert!(!holds(l, &ctx(None, "false")));
    // In a 2008-10-17 document `${...}` is literal text, which is not a boolean.
    let doc = r#"{"Version":"2008-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"${aws:PrincipalTag/https}"}}}}"#;
    assert!(Policy::parse(doc, PolicyKind::Identity).is_err());
}

#[test]
fn binary_equals() {
    let c = r#"{"BinaryEquals":{"k:bin":"aGVsbG8="}}"#;
    assert!(holds(c, &ctx1("k:bin", "aGVsbG8=")));
    assert!(holds(c, &ctx1("k:bin", "aGVsbG8")));
    assert!(!holds(c, &ctx1("k:bin", "aGVsbG9=")));
    assert!(!holds(c, &ctx1("k:bin", "not base64!")));
    assert!(!holds(c, &empty()));
}

#[test]
fn null_operator() {
    let absent = r#"{"Null":{"aws:TokenIssueTime":"true"}}"#;
    let present = r#"{"Null":{"aws:TokenIssueTime":"false"}}"#;
    assert!(holds(absent, &empty()));
    assert!(!holds(
        absent,
        &ctx1("aws:TokenIssueTime", "2024-01-01T00:00:00Z")
    ));
    assert!(holds(present, &ctx1("aws:tokenissuetime", "x")));
    assert!(!holds(present, &empty()));
    // An empty multivalued key counts as absent.
    assert!(holds(absent, &ctxn("aws:TokenIssueTime", &[])));
    assert!(holds(
        r#"{"Null":{"aws:TokenIssueTime":["true","false"]}}"#,
        &empty()
    ));
}

// ---------------------------------------------------------------- IP

#[test]
fn ip_address_v4_and_v6() {
    let c = r#"{"IpAddress":{"aws:SourceIp":["203.0.113.0/24","2001:DB8:1234:5678::/64"]}}"#;
    assert!(holds(c, &ctx1("aws:SourceIp", "203.0.113.77")));
    assert!(holds(c, &ctx1("aws:SourceIp", "2001:db8:1234:5678::abcd")));
    assert!(holds(c, &ctx1("aws:SourceIp", "::ffff:203.0.113.1")));
    assert!(!holds(c, &ctx1("aws:SourceIp", "203.0.114.1")));
    assert!(!holds(c, &ctx1("aws:SourceIp", "2001:db8:1234:5679::1")));
    assert!(!holds(c, &ctx1("aws:SourceIp", "not-an-ip")));
    assert!(!holds(c, &empty()));
    let single = r#"{"IpAddress":{"aws:SourceIp":"192.0.2.1"}}"#;
    assert!(holds(single, &ctx1("aws:SourceIp", "192.0.2.1")));
    assert!(!holds(single, &ctx1("aws:SourceIp", "192.0.2.2")));
}

#[test]
fn not_ip_address() {
    let c = r#"{"NotIpAddress":{"aws:SourceIp":["10.0.0.0/8","fd00::/8"]}}"#;
    assert!(holds(c, &ctx1("aws:SourceIp", "192.0.2.1")));
    assert!(holds(c, &ctx1("aws:SourceIp", "2001:db8::1")));
    assert!(!holds(c, &ctx1("aws:SourceIp", "10.1.1.1")));
    assert!(!holds(c, &ctx1("aws:SourceIp", "fd12::1")));
    assert!(holds(c, &empty()));
}

// ---------------------------------------------------------------- ARN

#[test]
fn arn_like_and_equals() {
    for op in ["ArnLike", "ArnEquals"] {
        let c = format!(r#"{{"{op}":{{"aws:SourceArn":"arn:aws:sns:*:111122223333:topic-?"}}}}"#);
        assert!(
            holds(
                &c,
                &ctx1(
                    "aws:SourceArn",
                    "arn:aws:sns:us-east-1:111122223333:topic-a"
                )
            ),
            "{op}"
        );
        assert!(
            !holds(
                &c,
                &ctx1(
                    "aws:SourceArn",
                    "arn:aws:sns:us-east-1:444455556666:topic-a"
                )
            ),
            "{op}"
        );
        assert!(
            !holds(
                &c,
                &ctx1(
                    "aws:SourceArn",
                    "arn:aws:sns:us-east-1:111122223333:topic-ab"
                )
            ),
            "{op}"
        );
        assert!(
            !holds(
                &c,
                &ctx1(
                    "aws:SourceArn",
                    "arn:aws:SNS:us-east-1:111122223333:topic-a"
                )
            ),
            "{op}"
        );
        assert!(!holds(&c, &ctx1("aws:SourceArn", "not-an-arn")), "{op}");
        assert!(!holds(&c, &empty()), "{op}");
    }
    // The wildcard in the region field does not cross into the account field.
    let c = r#"{"ArnLike":{"aws:SourceArn":"arn:aws:sns:*:topic"}}"#;
    assert!(!holds(
        c,
        &ctx1("aws:SourceArn", "arn:aws:sns:us-east-1:111122223333:topic")
    ));
    // The resource field may contain ':' and '/'.
    let c = r#"{"ArnLike":{"aws:SourceArn":"arn:aws:logs:*:*:log-group:/app/*"}}"#;
    assert!(holds(
        c,
        &ctx1(
            "aws:SourceArn",
            "arn:aws:logs:eu-west-1:111122223333:log-group:/app/web:*"
        )
    ));
}

#[test]
fn arn_not_like_and_not_equals() {
    for op in ["ArnNotLike", "ArnNotEquals"] {
        let c = format!(
            r#"{{"{op}":{{"aws:PrincipalArn":["arn:aws:iam::*:role/admin*","arn:aws:iam::*:root"]}}}}"#
        );
        assert!(
            holds(
                &c,
                &ctx1("aws:PrincipalArn", "arn:aws:iam::111122223333:role/dev")
            ),
            "{op}"
        );
        assert!(
            !holds(
                &c,
                &ctx1("aws:PrincipalArn", "arn:aws:iam::111122223333:role/admin-1")
            ),
            "{op}"
        );
        assert!(
            !holds(
                &c,
                &ctx1("aws:PrincipalArn", "arn:aws:iam::111122223333:root")
            ),
            "{op}"
        );
        assert!(holds(&c, &empty()), "{op}");
    }
}

// ---------------------------------------------------------------- IfExists

#[test]
fn if_exists_with_missing_and_present_keys() {
    let c = r#"{"StringEqualsIfExists":{"ec2:InstanceType":"t3.micro"}}"#;
    assert!(holds(c, &empty()));
    assert!(holds(c, &ctx1("ec2:InstanceType", "t3.micro")));
    assert!(!holds(c, &ctx1("ec2:InstanceType", "m5.large")));
    let n = r#"{"NumericLessThanIfExists":{"k:n":"5"}}"#;
    assert!(holds(n, &empty()));
    assert!(!holds(n, &ctx1("k:n", "6")));
    let ip = r#"{"NotIpAddressIfExists":{"aws:SourceIp":"10.0.0.0/8"}}"#;
    assert!(holds(ip, &empty()));
    assert!(!holds(ip, &ctx1("aws:SourceIp", "10.0.0.1")));
}

// ---------------------------------------------------------------- set qualifiers

#[test]
fn for_all_values() {
    let c = r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["team","env"]}}"#;
    assert!(holds(c, &ctxn("aws:TagKeys", &["team"])));
    assert!(holds(c, &ctxn("aws:TagKeys", &["team", "env"])));
    assert!(!holds(c, &ctxn("aws:TagKeys", &["team", "owner"])));
    assert!(!holds(c, &ctxn("aws:TagKeys", &["Team"])));
    // Missing key and empty list: vacuously true.
    assert!(holds(c, &empty()));
    assert!(holds(c, &ctxn("aws:TagKeys", &[])));
}

#[test]
fn for_any_value() {
    let c = r#"{"ForAnyValue:StringEquals":{"aws:TagKeys":["team","env"]}}"#;
    assert!(holds(c, &ctxn("aws:TagKeys", &["owner", "env"])));
    assert!(!holds(c, &ctxn("aws:TagKeys", &["owner", "cost"])));
    assert!(!holds(c, &empty()));
    assert!(!holds(c, &ctxn("aws:TagKeys", &[])));
}

/// AWS "Single-valued vs. multivalued context keys": ForAnyValue returns false "for no
/// matching context key or if the key does not exist", ForAllValues returns true "if there
/// are no context keys in the request". `IfExists` does not change either answer.
#[test]
fn set_qualifiers_with_if_exists() {
    let any = r#"{"ForAnyValue:StringEqualsIfExists":{"aws:TagKeys":"team"}}"#;
    assert!(!holds(any, &empty()));
    assert!(!holds(any, &ctxn("aws:TagKeys", &[])));
    assert!(holds(any, &ctxn("aws:TagKeys", &["owner", "team"])));
    assert!(!holds(any, &ctxn("aws:TagKeys", &["owner"])));
    let any_not = r#"{"ForAnyValue:StringNotEqualsIfExists":{"aws:TagKeys":"team"}}"#;
    assert!(!holds(any_not, &empty()));
    assert!(holds(any_not, &ctxn("aws:TagKeys", &["owner", "team"])));
    let all = r#"{"ForAllValues:StringEqualsIfExists":{"aws:TagKeys":["team","env"]}}"#;
    assert!(holds(all, &empty()));
    assert!(holds(all, &ctxn("aws:TagKeys", &["team"])));
    assert!(!holds(all, &ctxn("aws:TagKeys", &["team", "owner"])));
    let all_not = r#"{"ForAllValues:StringNotLikeIfExists":{"aws:TagKeys":"secret*"}}"#;
    assert!(holds(all_not, &empty()));
    assert!(!holds(
        all_not,
        &ctxn("aws:TagKeys", &["secretkey", "team"])
    ));
}

#[test]
fn set_qualifiers_with_negated_operators() {
    let all = r#"{"ForAllValues:StringNotLike":{"aws:TagKeys":["aws:*","secret*"]}}"#;
    assert!(holds(all, &ctxn("aws:TagKeys", &["team", "env"])));
    assert!(!holds(all, &ctxn("aws:TagKeys", &["team", "secretkey"])));
    assert!(holds(all, &empty()));
    let any = r#"{"ForAnyValue:StringNotEquals":{"aws:TagKeys":["team","env"]}}"#;
    assert!(holds(any, &ctxn("aws:TagKeys", &["team", "owner"])));
    assert!(!holds(any, &ctxn("aws:TagKeys", &["team", "env"])));
    assert!(!holds(any, &empty()));
}

/// Does `condition` make a `Deny` statement apply for `ctx`?
fn denies(condition: &str, ctx: &Context) -> bool {
    let doc = format!(
        r#"{{"Version":"2012-10-17","Statement":{{"Effect":"Deny","Action":"s3:GetObject","Resource":"*","Condition":{condition}}}}}"#
    );
    let p = Policy::parse(&doc, PolicyKind::Identity).unwrap_or_else(|e| panic!("{e}: {doc}"));
    let principal = Principal::user("arn:aws:iam::111122223333:user/alice", "111122223333");
    let req = Request {
        principal: &principal,
        action: "s3:GetObject",
        resource: RESOURCE,
        context: ctx,
    };
    evaluate_policy(&req, &p).effect == PolicyEffect::Deny
}

/// AWS "Single-valued vs. multivalued context keys": the kind of a key is decided by "the
/// number of values in the request context", and "multivalued context keys require a
/// condition set operator". A key with one value compares normally (also one set as a
/// list); with two or more values an operator without a qualifier fails closed: it never
/// holds in an Allow, and in a Deny it holds under the reading that applies the Deny.
#[test]
fn single_valued_operators_on_multivalued_keys() {
    let eq = r#"{"StringEquals":{"aws:TagKeys":"team"}}"#;
    let ne = r#"{"StringNotEquals":{"aws:TagKeys":"team"}}"#;
    let two_listed = ctxn("aws:TagKeys", &["owner", "team"]);
    let two_unlisted = ctxn("aws:TagKeys", &["owner", "cost"]);
    // One value: compared as a single value, in both effects.
    for one in [ctxn("aws:TagKeys", &["team"]), ctx1("aws:TagKeys", "team")] {
        assert!(holds(eq, &one));
        assert!(denies(eq, &one));
        assert!(!holds(ne, &one));
        assert!(!denies(ne, &one));
    }
    let other = ctxn("aws:TagKeys", &["owner"]);
    assert!(!holds(eq, &other));
    assert!(!denies(eq, &other));
    assert!(holds(ne, &other));
    assert!(denies(ne, &other));
    // Two values, Allow: never holds, positive or negated.
    for ctx in [&two_listed, &two_unlisted] {
        assert!(!holds(eq, ctx));
        assert!(!holds(ne, ctx));
        assert!(!holds(r#"{"StringLikeIfExists":{"aws:TagKeys":"*"}}"#, ctx));
        assert!(!holds(r#"{"NumericLessThan":{"aws:TagKeys":"1"}}"#, ctx));
    }
    // Two values, Deny: a negated operator always applies the Deny; a positive one does
    // when any value matches.
    assert!(denies(ne, &two_listed));
    assert!(denies(ne, &two_unlisted));
    assert!(denies(
        r#"{"StringNotLike":{"aws:TagKeys":["owner","team"]}}"#,
        &two_listed
    ));
    assert!(denies(eq, &two_listed));
    assert!(!denies(eq, &two_unlisted));
    // The set qualifiers are unaffected.
    assert!(holds(
        r#"{"ForAnyValue:StringEquals":{"aws:TagKeys":"team"}}"#,
        &two_listed
    ));
    assert!(!denies(
        r#"{"ForAllValues:StringNotEquals":{"aws:TagKeys":"team"}}"#,
        &two_listed
    ));
}

#[test]
fn for_all_values_with_numbers_and_ips() {
    let c = r#"{"ForAllValues:NumericLessThan":{"k:sizes":"100"}}"#;
    assert!(holds(c, &ctxn("k:sizes", &["1", "99.9"])));
    assert!(!holds(c, &ctxn("k:sizes", &["1", "100"])));
    let ip = r#"{"ForAnyValue:IpAddress":{"k:ips":"10.0.0.0/8"}}"#;
    assert!(holds(ip, &ctxn("k:ips", &["192.0.2.1", "10.9.9.9"])));
    assert!(!holds(ip, &ctxn("k:ips", &["192.0.2.1"])));
}

// ---------------------------------------------------------------- variables

#[test]
fn variables_in_resources() {
    let p = policy(
        "2012-10-17",
        "arn:aws:s3:::bucket/home/${aws:username}/*",
        "{}",
    );
    assert!(allowed_by(&p, &ctx1("aws:username", "alice")));
    assert!(!allowed_by(&p, &ctx1("aws:username", "bob")));
    // Unresolvable: the resource matches nothing.
    assert!(!allowed_by(&p, &empty()));
    // A substituted value is literal, not a wildcard.
    assert!(!allowed_by(&p, &ctx1("aws:username", "*")));
}

#[test]
fn variables_with_defaults() {
    let p = policy(
        "2012-10-17",
        "arn:aws:s3:::bucket/home/${aws:username, 'alice'}/*",
        "{}",
    );
    assert!(allowed_by(&p, &empty()));
    assert!(!allowed_by(&p, &ctx1("aws:username", "bob")));
    let c = r#"{"StringEquals":{"aws:ResourceTag/team":"${aws:PrincipalTag/team, 'none'}"}}"#;
    assert!(holds(c, &ctx1("aws:ResourceTag/team", "none")));
    assert!(holds(
        c,
        &Context::new()
            .with("aws:ResourceTag/team", "red")
            .with("aws:PrincipalTag/team", "red")
    ));
    assert!(!holds(
        c,
        &Context::new()
            .with("aws:ResourceTag/team", "red")
            .with("aws:PrincipalTag/team", "blue")
    ));
}

#[test]
fn variables_in_conditions_and_unresolved_values() {
    let c = r#"{"StringEquals":{"aws:ResourceTag/owner":"${aws:userid}"}}"#;
    let ctx = Context::new()
        .with("aws:userid", "AIDAEXAMPLE")
        .with("aws:ResourceTag/owner", "AIDAEXAMPLE");
    assert!(holds(c, &ctx));
    assert!(!holds(c, &ctx1("aws:ResourceTag/owner", "AIDAEXAMPLE")));
    // An unresolved value matches nothing, so a negated operator with only that value holds.
    let n = r#"{"StringNotEquals":{"aws:ResourceTag/owner":"${aws:userid}"}}"#;
    assert!(holds(n, &ctx1("aws:ResourceTag/owner", "x")));
    // Like with a variable: the variable part is literal, the policy's own '*' is a wildcard.
    let like = r#"{"StringLike":{"s3:prefix":"home/${aws:username}/*"}}"#;
    assert!(holds(
        like,
        &Context::new()
            .with("aws:username", "a?")
            .with("s3:prefix", "home/a?/x")
    ));
    assert!(!holds(
        like,
        &Context::new()
            .with("aws:username", "a?")
            .with("s3:prefix", "home/ab/x")
    ));
    let arn = r#"{"ArnLike":{"aws:SourceArn":"arn:aws:iam::${aws:PrincipalAccount}:role/*"}}"#;
    let ctx = Context::new()
        .with("aws:PrincipalAccount", "111122223333")
        .with("aws:SourceArn", "arn:aws:iam::111122223333:role/x");
    assert!(holds(arn, &ctx));
    assert!(!holds(
        arn,
        &ctx.clone().with("aws:PrincipalAccount", "444455556666")
    ));
}

#[test]
fn variable_escapes() {
    let c = r#"{"StringLike":{"k:v":"a${*}b${?}c${$}"}}"#;
    assert!(holds(c, &ctx1("k:v", "a*b?c$")));
    assert!(!holds(c, &ctx1("k:v", "aXbYc$")));
    let p = policy(
        "2012-10-17",
        "arn:aws:s3:::bucket/home/alice/file${*}",
        "{}",
    );
    assert!(!allowed_by(&p, &empty()), "the escaped * is literal");
}

#[test]
fn numeric_operators_do_not_substitute_variables() {
    // `${...}` is not a number, so it is rejected at parse time for Numeric operators.
    let doc = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*",
                  "Condition":{"NumericEquals":{"k:n":"${k:m}"}}}}"#;
    assert!(Policy::parse(doc, PolicyKind::Identity).is_err());
}

#[test]
fn version_2008_does_not_substitute_variables() {
    let p = policy(
        "2008-10-17",
        "arn:aws:s3:::bucket/home/${aws:username}/*",
        "{}",
    );
    assert!(!allowed_by(&p, &ctx1("aws:username", "alice")));
    let p = policy("", "arn:aws:s3:::bucket/home/${aws:username}/*", "{}");
    assert!(!allowed_by(&p, &ctx1("aws:username", "alice")));
    let p = policy(
        "2008-10-17",
        "*",
        r#"{"StringEquals":{"k:v":"${aws:username}"}}"#,
    );
    assert!(allowed_by(
        &p,
        &Context::new()
            .with("k:v", "${aws:username}")
            .with("aws:username", "alice")
    ));
    assert!(!allowed_by(
        &p,
        &Context::new()
            .with("k:v", "alice")
            .with("aws:username", "alice")
    ));
}
