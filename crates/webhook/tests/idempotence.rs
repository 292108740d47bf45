//! Property: for any pod, service account and flags, applying the webhook's patch and admitting
//! the result again yields no patch; and every patch has the upstream shape.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::Arc;

use podiam_webhook::mutate::{Inputs, Settings, mutate};
use podiam_webhook::{ServiceAccountInfo, ServiceAccounts};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

const ENV_NAMES: [&str; 9] = [
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_STS_REGIONAL_ENDPOINTS",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_ENDPOINT_URL_STS",
    "FOO",
];

fn container(name: String, env_mask: u16, env_none: bool, mounts: u8) -> Value {
    let mut c = Map::new();
    c.insert("name".into(), Value::from(name));
    if !env_none {
        let env: Vec<Value> = ENV_NAMES
            .iter()
            .enumerate()
            .filter(|(i, _)| env_mask & (1 << i) != 0)
            .map(|(_, n)| json!({"name": n, "value": "x"}))
            .collect();
        c.insert("env".into(), Value::from(env));
    }
    let mut m = Vec::new();
    if mounts & 1 != 0 {
        m.push(json!({"name": "aws-iam-token", "mountPath": "/a"}));
    }
    if mounts & 2 != 0 {
        m.push(json!({"name": "eks-pod-identity-token", "mountPath": "/b"}));
    }
    if mounts & 4 != 0 {
        c.insert("volumeMounts".into(), Value::from(m));
    }
    Value::Object(c)
}

fn arb_container(name: &'static str) -> impl Strategy<Value = Value> {
    (any::<u16>(), any::<bool>(), 0u8..8).prop_map(move |(m, n, v)| container(name.into(), m, n, v))
}

prop_compose! {
    fn arb_pod()(
        containers in prop::collection::vec(prop_oneof![arb_container("a"), arb_container("b"), arb_container("c")], 1..4),
        init in prop::option::of(prop::collection::vec(arb_container("i"), 0..3)),
        volumes in 0u8..4,
        labels in 0u8..4,
        windows in any::<bool>(),
        skip in prop::option::of(prop::sample::select(vec!["a", "b,i", "i", "a,b,c,i", ""])),
        exp in prop::option::of(prop::sample::select(vec!["100", "3600", "86400", "bad"])),
    ) -> Value {
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {"serviceAccountName": "sa", "containers": containers}});
        if let Some(i) = init { pod["spec"]["initContainers"] = Value::from(i); }
        match volumes {
            1 => pod["spec"]["volumes"] = json!([]),
            2 => pod["spec"]["volumes"] = json!([{"name": "data", "emptyDir": {}}]),
            3 => pod["spec"]["volumes"] = json!([{"name": "aws-iam-token", "emptyDir": {}}, {"name": "eks-pod-identity-token", "emptyDir": {}}]),
            _ => {}
        }
        match labels {
            1 => pod["metadata"]["labels"] = json!({}),
            2 => pod["metadata"]["labels"] = json!({"app": "x"}),
            3 => pod["metadata"]["labels"] = json!({"eks.amazonaws.com/pod-identity": "no"}),
            _ => {}
        }
        if windows { pod["spec"]["nodeSelector"] = json!({"kubernetes.io/os": "windows"}); }
        let mut ann = Map::new();
        if let Some(s) = skip { ann.insert("eks.amazonaws.com/skip-containers".into(), Value::from(s)); }
        if let Some(e) = exp { ann.insert("eks.amazonaws.com/token-expiration".into(), Value::from(e)); }
        if !ann.is_empty() { pod["metadata"]["annotations"] = Value::Object(ann); }
        pod
    }
}

prop_compose! {
    fn arb_sa()(role in any::<bool>(), regional in prop::option::of(prop::sample::select(vec!["true", "false", "x"])),
                cm in any::<bool>()) -> Option<ServiceAccountInfo> {
        let mut s = ServiceAccounts::default();
        let mut ann = std::collections::BTreeMap::new();
        if role { ann.insert("eks.amazonaws.com/role-arn".to_owned(), "arn:aws:iam::111122223333:role/r".to_owned()); }
        if let Some(r) = regional { ann.insert("eks.amazonaws.com/sts-regional-endpoints".to_owned(), r.to_owned()); }
        s.insert_annotations("ns", "sa", ann);
        if cm {
            s.insert_config("ns/sa", podiam_webhook::ConfigEntry { role_arn: Some("arn:aws:iam::111122223333:role/cm".into()), ..Default::default() });
        }
        s.lookup("ns", "sa")
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn mutating_a_mutated_pod_gives_no_patch(
        pod in arb_pod(),
        sa in arb_sa(),
        assoc in any::<bool>(),
        region in prop::option::of(Just("eu-west-1".to_owned())),
        regional in any::<bool>(),
        endpoint in prop::option::of(Just("https://podiam:8443".to_owned())),
    ) {
        let settings = Settings { default_region: region, regional_sts: regional, inject_sts_endpoint: endpoint,
            jitter: Arc::new(|| 80_000), ..Settings::default() };
        let inputs = Inputs { service_account: sa.as_ref(), has_association: assoc };
        let first = mutate(&settings, &pod, inputs);
        let Some(patch) = first.patch else { return Ok(()) };
        // Upstream shape: [label], [volume], containers (always), [initContainers].
        let paths: Vec<&str> = patch.iter().map(|o| o["path"].as_str().unwrap()).collect();
        prop_assert!(patch.iter().all(|o| o["op"] == "add"));
        let ci = paths.iter().position(|p| *p == "/spec/containers");
        prop_assert!(ci.is_some());
        let ci = ci.unwrap();
        prop_assert!(paths[..ci].iter().all(|p| p.starts_with("/metadata/labels") || p.starts_with("/spec/volumes")));
        prop_assert!(paths[ci + 1..].iter().all(|p| *p == "/spec/initContainers"));
        let mut mutated = pod.clone();
        common::apply_patch(&mut mutated, &patch);
        prop_assert_ne!(&mutated, &pod);
        let second = mutate(&settings, &mutated, inputs);
        prop_assert!(second.patch.is_none(), "second patch: {:?}", second.patch);
    }
}
