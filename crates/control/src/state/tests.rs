#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
use std::sync::Arc;

use super::tables::sort_key;
use super::{Associations, Entry};
use crate::model;

fn assoc(
    id: &str,
    cluster: &str,
    ns: &str,
    sa: &str,
    version: i64,
) -> Entry<model::PodIdentityAssociation> {
    let doc = serde_json::json!({
        "id": id, "cluster": cluster, "namespace": ns, "service_account": sa,
        "role_arn": "arn:aws:iam::111122223333:role/r", "external_id": "x", "created_ms": 1, "modified_ms": 1,
    });
    Entry {
        version,
        value: Arc::new(serde_json::from_value(doc).unwrap()),
    }
}

#[test]
fn associations_are_indexed_by_subject_id_and_cluster() {
    let mut t = Associations::default();
    t.insert("111", "a-3", assoc("a-3", "c1", "ns", "sa3", 1), true);
    t.insert("111", "a-1", assoc("a-1", "c1", "ns", "sa1", 1), true);
    t.insert("111", "a-2", assoc("a-2", "c2", "ns", "sa1", 1), true);
    t.insert("222", "a-9", assoc("a-9", "c1", "ns", "sa1", 1), true);
    assert_eq!(t.len(), 4);
    assert_eq!(t.find("111", "c1", "ns", "sa1").unwrap().value.id, "a-1");
    assert_eq!(t.find("111", "c2", "ns", "sa1").unwrap().value.id, "a-2");
    assert_eq!(t.find("222", "c1", "ns", "sa1").unwrap().value.id, "a-9");
    assert!(t.find("111", "c1", "ns", "sa2").is_none());
    assert!(t.find("111", "c1", "other", "sa1").is_none());
    // Names cannot run into each other: ("c1", "ns") is not ("c1n", "s").
    assert!(t.find("111", "c1n", "s", "sa1").is_none());
    assert_eq!(t.get_by_id("111", "a-2").unwrap().value.cluster, "c2");
    assert!(t.get_by_id("222", "a-2").is_none());
    assert!(t.get("111", "c2", "a-1").is_none());
    // Per cluster, in id order, with an exclusive start.
    let ids: Vec<&str> = t.of_cluster("111", "c1", None).map(|(id, _)| id).collect();
    assert_eq!(ids, ["a-1", "a-3"]);
    let ids: Vec<&str> = t
        .of_cluster("111", "c1", Some("a-1"))
        .map(|(id, _)| id)
        .collect();
    assert_eq!(ids, ["a-3"]);
    assert_eq!(t.of_cluster("111", "none", None).count(), 0);
    assert_eq!(
        (
            t.count("111", "c1"),
            t.count("111", "c2"),
            t.count("333", "c1")
        ),
        (2, 1, 0)
    );
}

#[test]
fn sort_keys_order_ids_as_strings_do() {
    let mut ids = vec![
        "a-b",
        "a-",
        "a-bb",
        "b",
        "",
        "a-0123456789abcdefghijklmno",
        "a-0123456789abcdefghijklmn",
        "a-0123456789abcdefghijklm",
        "a-0123456789abcdefghijklmnp",
        "a-0123456789abcdefghijkl",
    ];
    let mut by_key = ids.clone();
    by_key.sort_by_key(|id| sort_key(id));
    ids.sort_unstable();
    assert_eq!(by_key, ids);
}

#[test]
fn a_bulk_load_indexes_exactly_what_inserts_do() {
    let mut records = Vec::new();
    let mut one_by_one = Associations::default();
    // Several accounts and clusters, interleaved and out of order, as a database returns them.
    for i in (0..300).rev() {
        let (account, cluster) = (["111", "222"][i % 2], ["c1", "c2", "c10"][i % 3]);
        let id = format!("a-{:05}", (i * 7919) % 1000);
        let e = assoc(&id, cluster, &format!("ns{}", i % 5), &format!("sa{i}"), 1);
        one_by_one.insert(account, &id, e.clone(), false);
        records.push((account.to_owned(), id, e));
    }
    let bulk = Associations::from_records(records);
    assert_eq!(bulk.len(), one_by_one.len());
    assert_eq!(bulk.by_subject, one_by_one.by_subject);
    assert_eq!(bulk.cluster_of, one_by_one.cluster_of);
    for account in ["111", "222"] {
        for cluster in ["c1", "c2", "c10"] {
            let ids = |t: &Associations| {
                t.of_cluster(account, cluster, None)
                    .map(|(id, e)| (id.to_owned(), e.version))
                    .collect::<Vec<_>>()
            };
            assert_eq!(ids(&bulk), ids(&one_by_one), "{account} {cluster}");
            assert!(!ids(&bulk).is_empty());
        }
    }
    assert!(Associations::from_records(Vec::new()).is_empty());
    // Two associations of one subject (a race between replicas): the larger id wins,
    // whatever order the rows come in.
    for ids in [["a-1", "a-2"], ["a-2", "a-1"]] {
        let records = ids
            .iter()
            .map(|id| {
                (
                    "111".to_owned(),
                    (*id).to_owned(),
                    assoc(id, "c1", "ns", "sa", 1),
                )
            })
            .collect();
        assert_eq!(
            Associations::from_records(records)
                .find("111", "c1", "ns", "sa")
                .unwrap()
                .value
                .id,
            "a-2"
        );
    }
}

#[test]
fn replacing_and_removing_keep_the_indexes_exact() {
    let mut t = Associations::default();
    t.insert("111", "a-1", assoc("a-1", "c1", "ns", "sa1", 1), false);
    // A new version of the record under another service account: the old subject is gone.
    t.insert("111", "a-1", assoc("a-1", "c1", "ns", "sa2", 2), false);
    assert!(t.find("111", "c1", "ns", "sa1").is_none());
    assert_eq!(t.find("111", "c1", "ns", "sa2").unwrap().version, 2);
    assert_eq!(t.len(), 1);
    // Removing an id whose subject now points elsewhere leaves the other's index alone.
    t.insert("111", "a-2", assoc("a-2", "c1", "ns", "sa3", 1), false);
    assert_eq!(t.remove("111", "a-1").unwrap().version, 2);
    assert!(t.remove("111", "a-1").is_none(), "removed twice");
    assert!(t.find("111", "c1", "ns", "sa2").is_none());
    assert_eq!(t.find("111", "c1", "ns", "sa3").unwrap().value.id, "a-2");
    t.remove("111", "a-2").unwrap();
    assert!(t.is_empty());
    assert_eq!(t.count("111", "c1"), 0);
    assert!(
        t.by_cluster.is_empty() && t.by_subject.is_empty(),
        "no empty leftovers"
    );
}
