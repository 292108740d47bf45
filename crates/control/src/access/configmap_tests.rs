#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::tests::ACCT;
use super::*;

// --- the parser

const MANIFEST: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: aws-auth
  namespace: kube-system
  resourceVersion: "1234"
data:
  mapRoles: |
    - rolearn: arn:aws:iam::111122223333:role/ops
      username: ops:{{SessionName}}
      groups:
        - system:masters
        - ops
  mapUsers: |
    - userarn: arn:aws:iam::111122223333:user/eng/alice
      username: alice
  mapAccounts: |
    - "444455556666"
"#;

const DATA_ONLY: &str = r#"mapRoles: |
  - rolearn: arn:aws:iam::111122223333:role/ops
    username: ops:{{SessionName}}
    groups: [system:masters, ops]
mapUsers: |
  - userarn: arn:aws:iam::111122223333:user/eng/alice
    username: alice
mapAccounts: |
  - 444455556666
"#;

fn mapping(username: &str, groups: &[&str]) -> AwsAuthMapping {
    AwsAuthMapping {
        username: username.into(),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
    }
}

#[test]
fn a_manifest_and_its_data_alone_parse_alike() {
    let a = AwsAuth::parse(MANIFEST).unwrap();
    assert_eq!(a, AwsAuth::parse(DATA_ONLY).unwrap());
    assert!(a.warnings().is_empty(), "{:?}", a.warnings());
    let ops = mapping("ops:{{SessionName}}", &["system:masters", "ops"]);
    assert_eq!(
        a.lookup("arn:aws:iam::111122223333:role/ops", ACCT),
        Some(AwsAuthMatch::Entry(&ops))
    );
    // Without regard to case, as the authenticator lowercases both sides.
    assert_eq!(
        a.lookup("ARN:AWS:IAM::111122223333:ROLE/OPS", ACCT),
        Some(AwsAuthMatch::Entry(&ops))
    );
    assert_eq!(
        a.lookup("arn:aws:iam::111122223333:user/eng/alice", ACCT),
        Some(AwsAuthMatch::Entry(&mapping("alice", &[])))
    );
    assert_eq!(a.lookup("arn:aws:iam::111122223333:user/alice", ACCT), None);
    assert_eq!(
        a.lookup("arn:aws:iam::444455556666:user/x", "444455556666"),
        Some(AwsAuthMatch::Account)
    );
}

#[test]
fn keys_match_without_regard_to_case_and_unknown_keys_are_ignored() {
    let a = AwsAuth::parse(
        "mapRoles: |\n  - rOlEaRn: arn:aws:iam::111122223333:role/n\n    UsErNaMe: n\n    gRoUpS: [g]\n    sso: {permissionSetName: x}\n",
    )
    .unwrap();
    assert_eq!(
        a.lookup("arn:aws:iam::111122223333:role/n", ACCT),
        Some(AwsAuthMatch::Entry(&mapping("n", &["g"])))
    );
}

#[test]
fn blank_and_null_lists_are_empty() {
    for text in [
        "data: {}",
        "data:\n  mapRoles: \"\"\n  mapUsers: \"``\"\n  mapAccounts: \"[]\"\n",
        "mapRoles: |\n  null\n",
        "kind: ConfigMap\n",
    ] {
        let a = AwsAuth::parse(text).unwrap();
        assert_eq!(a, AwsAuth::default(), "{text}");
    }
}

#[test]
fn account_ids_keep_their_digits_quoted_or_not() {
    let a = AwsAuth::parse("mapAccounts: |\n  - 012345678901\n  - '111122223333'\n").unwrap();
    assert!(a.warnings().is_empty(), "{:?}", a.warnings());
    assert_eq!(
        a.lookup("arn:aws:iam::012345678901:user/u", "012345678901"),
        Some(AwsAuthMatch::Account)
    );
    assert_eq!(
        a.lookup("arn:aws:iam::111122223333:user/u", ACCT),
        Some(AwsAuthMatch::Account)
    );
}

#[test]
fn a_later_duplicate_replaces_the_earlier_entry_with_a_warning() {
    let a = AwsAuth::parse(
        "mapRoles: |\n  - {rolearn: 'arn:aws:iam::111122223333:role/r', username: first}\n  - {rolearn: 'arn:aws:iam::111122223333:role/R', username: second}\n",
    )
    .unwrap();
    assert_eq!(
        a.lookup("arn:aws:iam::111122223333:role/r", ACCT),
        Some(AwsAuthMatch::Entry(&mapping("second", &[])))
    );
    assert_eq!(
        a.warnings(),
        [
            "mapRoles entry 2: \"arn:aws:iam::111122223333:role/R\" is listed again; this later entry replaces the earlier one"
        ]
    );
}

#[test]
fn entries_that_never_match_are_warned_about() {
    let a = AwsAuth::parse(
        "mapRoles: |\n  - {rolearn: 'arn:aws:iam::111122223333:role/team/a/deep', username: d}\n  - {rolearn: 'arn:aws:iam::111122223333:root', username: r}\n  - {rolearn: nope, username: n}\nmapAccounts: |\n  - '1234'\n",
    )
    .unwrap();
    let w = a.warnings();
    assert_eq!(w.len(), 4, "{w:?}");
    assert!(w[0].contains("has a path"), "{w:?}");
    assert!(w[1].contains("account root"), "{w:?}");
    assert!(w[2].contains("not an ARN"), "{w:?}");
    assert!(w[3].contains("not a 12-digit account"), "{w:?}");
}

#[test]
fn bad_files_are_refused_whole_with_a_reason() {
    let cases: [(&str, &str); 15] = [
        ("{}", "neither a ConfigMap manifest"),
        (
            "apiVersion: v1\nclusters: []\ncurrent-context: x\n",
            "neither a ConfigMap manifest",
        ),
        ("", "empty"),
        ("mapRoles: [unclosed", "not YAML"),
        ("- a\n- b\n", "not YAML"),
        ("mapRoles: |\n  - rolearn: [a]\n", "mapRoles"),
        (
            "mapRoles: |\n  - username: x\n",
            "mapRoles entry 1: no rolearn",
        ),
        (
            "mapUsers: |\n  - userarn: arn:aws:iam::111122223333:user/u\n",
            "mapUsers entry 1: no username",
        ),
        (
            "mapRoles: |\n  - {rolearn: a, rolearn: b, username: u}\n",
            "mapRoles",
        ),
        ("mapRoles: |\n  key: value\n", "mapRoles"),
        ("kind: Secret\ndata: {}\n", "not ConfigMap"),
        ("metadata: {name: other}\n", "not aws-auth"),
        ("metadata: {namespace: default}\n", "not kube-system"),
        ("data: {}\nmapRoles: '[]'\n", "go under data"),
        ("mapAccounts: |\n  - [1]\n", "mapAccounts"),
    ];
    for (text, why) in cases {
        let e = AwsAuth::parse(text).unwrap_err().to_string();
        assert!(e.contains(why), "{text:?}: expected {why:?}, got {e:?}");
    }
}

#[test]
fn size_entry_group_and_field_bounds() {
    let big = format!("mapAccounts: |\n  - '{}'\n", "1".repeat(MAX_AWS_AUTH_BYTES));
    assert!(
        AwsAuth::parse(&big)
            .unwrap_err()
            .to_string()
            .contains("larger than")
    );

    let mut many = String::from("mapAccounts: |\n");
    for i in 0..=MAX_AWS_AUTH_ENTRIES {
        many.push_str(&format!("  - '{i:012}'\n"));
    }
    assert!(
        AwsAuth::parse(&many)
            .unwrap_err()
            .to_string()
            .contains("more than")
    );

    let groups: Vec<String> = (0..=MAX_AWS_AUTH_GROUPS).map(|i| format!("g{i}")).collect();
    let text = format!(
        "mapRoles: |\n  - {{rolearn: 'arn:aws:iam::111122223333:role/r', username: u, groups: [{}]}}\n",
        groups.join(", ")
    );
    assert!(
        AwsAuth::parse(&text)
            .unwrap_err()
            .to_string()
            .contains("more than")
    );

    let text = format!(
        "mapRoles: |\n  - {{rolearn: 'arn:aws:iam::111122223333:role/r', username: '{}'}}\n",
        "u".repeat(3000)
    );
    assert!(
        AwsAuth::parse(&text)
            .unwrap_err()
            .to_string()
            .contains("longer than")
    );
}

#[test]
fn aliases_cannot_blow_the_output_up() {
    // One 2000-character username repeated by alias far past the output allowance.
    let mut text = format!(
        "mapRoles: |\n  - &e {{rolearn: 'arn:aws:iam::111122223333:role/r', username: '{}'}}\n",
        "u".repeat(2000)
    );
    for _ in 0..5000 {
        text.push_str("  - *e\n");
    }
    let started = std::time::Instant::now();
    let e = AwsAuth::parse(&text).unwrap_err().to_string();
    assert!(e.contains("too much data"), "{e}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn cluster_names_of_sources() {
    let c: AwsAuthCluster = "111122223333/prod".parse().unwrap();
    assert_eq!(c.to_string(), "111122223333/prod");
    assert_eq!(
        "prod".parse::<AwsAuthCluster>().unwrap().to_string(),
        "prod"
    );
    for bad in ["", "1111/prod", "111122223333/", "a/b/c", "bad name"] {
        assert!(bad.parse::<AwsAuthCluster>().is_err(), "{bad}");
    }
}

#[test]
fn data_from_the_kubernetes_api_parses_as_the_file_does() {
    let data: std::collections::BTreeMap<String, String> = [
        ("mapRoles", "- rolearn: arn:aws:iam::111122223333:role/ops\n  username: ops:{{SessionName}}\n  groups: [system:masters, ops]\n"),
        ("mapUsers", "- userarn: arn:aws:iam::111122223333:user/eng/alice\n  username: alice\n"),
        ("mapAccounts", "- \"444455556666\"\n"),
        ("other", "ignored"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(
        AwsAuth::from_data(&data).unwrap(),
        AwsAuth::parse(MANIFEST).unwrap()
    );
    assert_eq!(
        AwsAuth::from_data(&Default::default()).unwrap(),
        AwsAuth::default()
    );
    let big = [("mapAccounts".to_owned(), "#".repeat(MAX_AWS_AUTH_BYTES + 1))]
        .into_iter()
        .collect();
    assert!(
        AwsAuth::from_data(&big)
            .unwrap_err()
            .to_string()
            .contains("larger than")
    );
    let bad = [("mapRoles".to_owned(), "- username: x\n".to_owned())]
        .into_iter()
        .collect();
    assert!(
        AwsAuth::from_data(&bad)
            .unwrap_err()
            .to_string()
            .contains("no rolearn")
    );
}
