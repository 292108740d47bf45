//! What an event records of a request's parameters, against what the services read.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use super::*;

fn tree(body: &[u8]) -> Value {
    query_json(body, None).0
}

#[test]
fn query_parameters_become_camel_case_json_without_secrets() {
    let v = tree(
        b"Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fr&WebIdentityToken=eyJ.secret.sig&Tags.member.2.Key=b&Tags.member.1.Key=a&Tags.member.1.Value=x&X-Amz-Signature=abc&PolicyArns.member.1.arn=p",
    );
    assert_eq!(v["roleArn"], "arn:aws:iam::1:role/r");
    assert_eq!(v["tags"][0]["key"], "a");
    assert_eq!(v["tags"][0]["value"], "x");
    assert_eq!(v["tags"][1]["key"], "b");
    // STS reads session policies' `arn` in lower case.
    assert_eq!(v["policyArns"][0]["arn"], "p");
    let text = v.to_string();
    for secret in [
        "eyJ.secret.sig",
        "WebIdentityToken",
        "webIdentityToken",
        "abc",
        "AssumeRoleWithWebIdentity",
    ] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
}

#[test]
fn query_parameters_are_recorded_as_the_service_reads_them() {
    // The resource is the first value of the exact name, as the service reads it, whatever
    // else the request says; the recorded tree never lets a later or misspelled name stand
    // for it.
    let role = vec![("AWS::IAM::Role".to_owned(), "victim".to_owned())];
    for body in [
        &b"RoleName=victim&RoleName=decoy"[..],
        b"RoleName.member=decoy&RoleName=victim",
        b"member.RoleName=decoy&RoleName=victim",
        b"1=&RoleName=victim",
        b"RoleName=victim&RoleName.X=decoy&RoleName.X.Y=decoy",
        b"Role-Name=decoy&RoleName=victim",
    ] {
        let (v, resources) = query_json(body, None);
        let what = String::from_utf8_lossy(body);
        assert_eq!(v["roleName"], "victim", "{what}: {v}");
        assert!(!v.to_string().contains("decoy"), "{what}: {v}");
        assert_eq!(resources, role, "{what}");
    }
    // Names the service reads apart that come to one recorded name are both kept, in
    // order: neither stands for the other.
    let (v, resources) = query_json(b"roleName=decoy&RoleName=victim", None);
    assert_eq!(v["roleName"], serde_json::json!(["decoy", "victim"]));
    assert_eq!(resources, role);
    // What was recorded first is never replaced by a later name of another shape.
    let (v, resources) = query_json(b"RoleName.X=decoy&RoleName=victim&1=", None);
    assert_eq!(v["roleName"], serde_json::json!({"x": "decoy"}));
    assert_eq!(resources, role);
    let v = tree(b"Tags.member.1.Key=k&Tags=decoy&Tags.X=decoy&Tags.member.1.Value=x");
    assert_eq!(v["tags"], serde_json::json!([{"key": "k", "value": "x"}]));
    // List indexes as the protocol writes them: from 1, no leading zero.
    let v = tree(b"Tags.member.01.Key=decoy&Tags.member.1.Key=real&Tags.member.0.Key=decoy");
    assert_eq!(v["tags"], serde_json::json!([{"key": "real"}]));
}

#[test]
fn only_modeled_members_are_recorded() {
    // What the service ignores is not the caller's to make the event carry.
    let arwwi = model::inputs(Service::Sts, "AssumeRoleWithWebIdentity");
    let (v, _) = query_json(
        b"RoleArn=r&RoleSessionName=s&Junk=j&Tags.member.1.Key=k&PolicyArns.member.1.arn=a&PolicyArns.member.1.Junk=j",
        arwwi,
    );
    assert_eq!(
        v,
        serde_json::json!({"roleArn": "r", "roleSessionName": "s", "policyArns": [{"arn": "a"}]})
    );
    let assume = model::inputs(Service::Sts, "AssumeRole");
    let (v, _) = query_json(
        b"RoleArn=r&Tags.member.1.Key=k&Tags.member.1.Value=v&Tags.member.1.X=j",
        assume,
    );
    assert_eq!(
        v,
        serde_json::json!({"roleArn": "r", "tags": [{"key": "k", "value": "v"}]})
    );
    let seen = Seen {
        method: Method::POST,
        path: "/clusters/prod/pod-identity-associations".into(),
        body: Bytes::from_static(br#"{"namespace":"n","serviceAccount":"s","junk":"j"}"#),
        ..Seen::default()
    };
    let (v, _) = request_facts("eks", "CreatePodIdentityAssociation", &seen);
    assert_eq!(
        v.unwrap(),
        serde_json::json!({"namespace": "n", "serviceAccount": "s", "clusterName": "prod"})
    );
    // podiam's own operations, which no model describes, keep what they are sent.
    let (v, _) = request_facts("podiam", "CreateToken", &seen);
    assert_eq!(v.unwrap()["junk"], "j");
}

#[test]
fn query_values_decode_as_forms_do() {
    // What `form_urlencoded` reads, `+` and percent escapes and invalid UTF-8 included,
    // whether or not a name is encoded; a secret's name is found encoded too.
    let body: &[u8] =
        b"Description=a+b%2Bc%20d&Path=%2F%FF%2F&&Role%4eame=r&Web%49dentityToken=x%41y&Lone&=v";
    let v = tree(body);
    let expected: Vec<(String, String)> = form_urlencoded::parse(body)
        .filter(|(k, _)| !k.is_empty() && k != "WebIdentityToken")
        .map(|(k, v)| (query::lower_first(&k), v.into_owned()))
        .collect();
    assert_eq!(expected.len(), 4, "{expected:?}");
    for (k, want) in expected {
        assert_eq!(v[&k], Value::String(want), "{k} in {v}");
    }
    assert_eq!(v["description"], "a b+c d");
    assert!(!v.to_string().contains("xAy"), "{v}");
    assert_eq!(
        query_json(body, None).1,
        vec![("AWS::IAM::Role".to_owned(), "r".to_owned())]
    );
}

#[test]
fn hostile_indexes_and_shapes_do_not_blow_up() {
    let v =
        tree(b"A.member.99999999999=x&A.b=y&A=z&.=1&..=2&B.member.0=q&C.member.7=c&C.member.3=b");
    assert!(v.to_string().len() < 20_000, "{v}");
    // Lists keep the indexes given, in order, without padding.
    assert_eq!(v["c"], serde_json::json!(["b", "c"]));
    // A thousand far indexes cost a thousand nodes, not a million.
    let far: String = (0..2000)
        .map(|i| format!("A{i}.member.999999=x&"))
        .collect();
    let v = tree(far.as_bytes());
    let o = v.as_object().unwrap();
    assert_eq!(o.len(), MAX_QUERY_PARAMS);
    assert!(o.values().all(|x| x == &serde_json::json!(["x"])));
    // A secret's name nested anywhere in a parameter's name is left out too.
    let nested =
        tree(b"RoleArn=r&.WebIdentityToken=eyJ.a&Tags.member.1.Password=p&A.X-Amz-Signature.B=s");
    assert_eq!(nested, serde_json::json!({"roleArn": "r"}));
    let deep = format!("{}=x", vec!["a"; 10_000].join("."));
    assert!(tree(deep.as_bytes()).to_string().len() < 100);
    let long = format!("PolicyDocument={}", "a".repeat(200_000));
    let v = tree(long.as_bytes());
    assert!(v["policyDocument"].as_str().unwrap().len() < 9000);
    // A resource name too long to be one is not indexed.
    let long = format!("RoleName={}", "a".repeat(3000));
    assert!(query_json(long.as_bytes(), None).1.is_empty());
}

#[test]
fn rest_json_requests_lose_their_tokens_and_gain_their_path_names() {
    let seen = Seen {
        method: Method::POST,
        path: "/clusters/prod/assume-role-for-pod-identity".into(),
        body: Bytes::from_static(br#"{"token":"eyJ.secret.sig","eksNodeName":"n1"}"#),
        ..Seen::default()
    };
    let v = request_parameters("eks-auth", &seen).unwrap();
    assert_eq!(v["clusterName"], "prod");
    assert_eq!(v["eksNodeName"], "n1");
    assert!(!v.to_string().contains("secret"), "{v}");
    // Nested anywhere, in any case.
    let nested = Seen {
        method: Method::POST,
        path: "/clusters/prod/access-entries".into(),
        body: Bytes::from_static(
            br#"{"a":{"TOKEN":"secret1","b":[{"SessionToken":"secret2","keep":"k"}]},"Password":"secret3"}"#,
        ),
        ..Seen::default()
    };
    let v = request_parameters("eks", &nested).unwrap();
    assert!(!v.to_string().contains("secret"), "{v}");
    assert_eq!(v["a"]["b"][0]["keep"], "k");
    let review = Seen {
        method: Method::POST,
        path: "/podiam/clusters/prod/authenticate".into(),
        body: Bytes::from_static(br#"{"spec":{"token":"k8s-aws-v1.secret"}}"#),
        ..Seen::default()
    };
    let v = request_parameters("podiam", &review).unwrap();
    assert!(!v.to_string().contains("secret"), "{v}");
    assert_eq!(v["clusterName"], "prod");
    // The path names what the service acts on: a body member of the same name does not
    // replace it, in the record or in the resources.
    let decoy = Seen {
        method: Method::DELETE,
        path: "/clusters/victim".into(),
        body: Bytes::from_static(br#"{"clusterName":"decoy"}"#),
        ..Seen::default()
    };
    let (v, resources) = request_facts("eks", "DeleteCluster", &decoy);
    assert_eq!(v.unwrap()["clusterName"], "victim");
    assert_eq!(
        resources,
        vec![("AWS::EKS::Cluster".to_owned(), "victim".to_owned())]
    );
}
