//! Lookups: each attribute, account isolation, order, pages, time bounds.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use podiam_store::{
    AuditAttr, AuditCursor, AuditPage, AuditQuery, AuditRow, ISSUED_KEY_TYPE, Store,
};

use super::{A, B, C, POLICY, ROLE, all, ev, find, ids, query, res};

pub fn attribute_events(account: &str, prefix: &str) -> Vec<AuditRow> {
    let role = |n: &str| format!("arn:aws:iam::{account}:role/{n}");
    let mut e1 = ev(account, &format!("{prefix}1"), 1000);
    e1.resources = vec![res(ROLE, &role("r1"))];
    let mut e2 = ev(account, &format!("{prefix}2"), 2000);
    e2.event_name = "CreateRole".into();
    e2.event_source = "iam.amazonaws.com".into();
    e2.username = "alice".into();
    e2.access_key_id = "AKIAALICE".into();
    e2.resources = vec![res(ROLE, &role("r2"))];
    let mut e3 = ev(account, &format!("{prefix}3"), 3000);
    e3.event_name = "GetRole".into();
    e3.event_source = "iam.amazonaws.com".into();
    e3.username = "alice".into();
    e3.access_key_id = "AKIAALICE".into();
    e3.read_only = true;
    e3.resources = vec![
        res(ROLE, &role("r2")),
        res(POLICY, &format!("arn:aws:iam::{account}:policy/p")),
    ];
    let mut e4 = ev(account, &format!("{prefix}4"), 4000);
    e4.event_name = "GetCallerIdentity".into();
    e4.username = "bob".into();
    e4.access_key_id = "ASIABOB".into();
    e4.read_only = true;
    vec![e1, e2, e3, e4]
}

/// Each of the eight attributes finds exactly its events, and a value no event has finds none;
/// every account sees its own events only.
pub async fn attributes_scenario(store: &dyn Store) {
    let a = attribute_events(A, "a");
    // Account B holds events alike (same names, users, keys, types) and one whose id is also
    // an id of A's: ids are unique per account only.
    let mut b = attribute_events(B, "b");
    let mut shared_id = ev(B, "a2", 2500);
    shared_id.event_name = "OnlyInB".into();
    b.push(shared_id.clone());
    store.append_audit(&a).await.unwrap();
    store.append_audit(&b).await.unwrap();

    // Whole rows come back as written, newest first.
    let got = all(store, &query(A, None)).await;
    let mut want = a.clone();
    want.reverse();
    assert_eq!(got, want);
    assert_eq!(find(store, B, None).await, ["b4", "b3", "a2", "b2", "b1"]);

    let role = |acct: &str, n: &str| format!("arn:aws:iam::{acct}:role/{n}");
    let policy = format!("arn:aws:iam::{A}:policy/p");
    // (attribute, A's matches, B's matches)
    let cases: Vec<(AuditAttr, Vec<&str>, Vec<&str>)> = vec![
        (AuditAttr::EventId("a2".into()), vec!["a2"], vec!["a2"]),
        (AuditAttr::EventId("a3".into()), vec!["a3"], vec![]),
        (AuditAttr::EventId("b3".into()), vec![], vec!["b3"]),
        (AuditAttr::EventId("zz".into()), vec![], vec![]),
        (
            AuditAttr::EventName("GetRole".into()),
            vec!["a3"],
            vec!["b3"],
        ),
        (AuditAttr::EventName("OnlyInB".into()), vec![], vec!["a2"]),
        (AuditAttr::EventName("DeleteRole".into()), vec![], vec![]),
        (AuditAttr::EventName("getrole".into()), vec![], vec![]),
        (
            AuditAttr::Username("alice".into()),
            vec!["a3", "a2"],
            vec!["b3", "b2"],
        ),
        (AuditAttr::Username("bob".into()), vec!["a4"], vec!["b4"]),
        (AuditAttr::Username("carol".into()), vec![], vec![]),
        (AuditAttr::Username("alic".into()), vec![], vec![]),
        (AuditAttr::Username(String::new()), vec![], vec![]),
        (
            AuditAttr::ResourceName(role(A, "r2")),
            vec!["a3", "a2"],
            vec![],
        ),
        (
            AuditAttr::ResourceName(role(B, "r2")),
            vec![],
            vec!["b3", "b2"],
        ),
        (AuditAttr::ResourceName(role(A, "r1")), vec!["a1"], vec![]),
        (AuditAttr::ResourceName(policy.clone()), vec!["a3"], vec![]),
        (AuditAttr::ResourceName(role(A, "nope")), vec![], vec![]),
        (AuditAttr::ResourceName(ROLE.into()), vec![], vec![]),
        (AuditAttr::ResourceName(String::new()), vec![], vec![]),
        (
            AuditAttr::ResourceType(ROLE.into()),
            vec!["a3", "a2", "a1"],
            vec!["b3", "b2", "b1"],
        ),
        (
            AuditAttr::ResourceType(POLICY.into()),
            vec!["a3"],
            vec!["b3"],
        ),
        (
            AuditAttr::ResourceType("AWS::S3::Bucket".into()),
            vec![],
            vec![],
        ),
        (AuditAttr::ResourceType(role(A, "r2")), vec![], vec![]),
        (AuditAttr::ResourceType(String::new()), vec![], vec![]),
        (
            AuditAttr::AccessKeyId("AKIAALICE".into()),
            vec!["a3", "a2"],
            vec!["b3", "b2"],
        ),
        (
            AuditAttr::AccessKeyId("ASIABOB".into()),
            vec!["a4"],
            vec!["b4"],
        ),
        (AuditAttr::AccessKeyId("AKIANOPE".into()), vec![], vec![]),
        (AuditAttr::AccessKeyId(String::new()), vec![], vec![]),
        (
            AuditAttr::EventSource("iam.amazonaws.com".into()),
            vec!["a3", "a2"],
            vec!["b3", "b2"],
        ),
        (
            AuditAttr::EventSource("sts.amazonaws.com".into()),
            vec!["a4", "a1"],
            vec!["b4", "a2", "b1"],
        ),
        (
            AuditAttr::EventSource("s3.amazonaws.com".into()),
            vec![],
            vec![],
        ),
        (
            AuditAttr::ReadOnly(true),
            vec!["a4", "a3"],
            vec!["b4", "b3"],
        ),
        (
            AuditAttr::ReadOnly(false),
            vec!["a2", "a1"],
            vec!["a2", "b2", "b1"],
        ),
    ];
    for (attr, want_a, want_b) in cases {
        assert_eq!(
            find(store, A, Some(attr.clone())).await,
            want_a,
            "A, {attr:?}"
        );
        assert_eq!(
            find(store, B, Some(attr.clone())).await,
            want_b,
            "B, {attr:?}"
        );
        // An account without events sees nothing, whatever the attribute.
        assert!(
            find(store, C, Some(attr.clone())).await.is_empty(),
            "C, {attr:?}"
        );
        // A found row is whole, and the account's own.
        for r in all(store, &query(A, Some(attr.clone()))).await {
            assert_eq!(r.account, A);
            assert_eq!(&r, a.iter().find(|e| e.event_id == r.event_id).unwrap());
        }
    }
    assert!(find(store, C, None).await.is_empty());
    assert!(find(store, "", None).await.is_empty());
    // An account id is matched exactly, not as a prefix.
    assert!(find(store, &A[..6], None).await.is_empty());
}

/// Newest first; equal times ordered by id, descending; cursors continue strictly after.
pub async fn ordering_scenario(store: &dyn Store) {
    const O: &str = "100000000001";
    let rows = vec![
        ev(O, "e3", 5),
        ev(O, "e1", 5),
        ev(O, "e9", 4),
        ev(O, "e2", 5),
        ev(O, "e0", 6),
    ];
    store.append_audit(&rows).await.unwrap();
    assert_eq!(find(store, O, None).await, ["e0", "e3", "e2", "e1", "e9"]);
    let mut q = query(O, None);
    q.limit = 2;
    let p = store.lookup_audit(&q).await.unwrap();
    assert_eq!(ids(&p.rows), ["e0", "e3"]);
    assert_eq!(
        p.next,
        Some(AuditCursor {
            event_time_ms: 5,
            event_id: "e3".into()
        })
    );
    q.after = p.next;
    let p = store.lookup_audit(&q).await.unwrap();
    assert_eq!(ids(&p.rows), ["e2", "e1"]);
    q.after = p.next;
    let p = store.lookup_audit(&q).await.unwrap();
    assert_eq!(ids(&p.rows), ["e9"]);
    assert_eq!(p.next, None);
    // A page that ends exactly at the last match has no next page.
    q.after = None;
    q.limit = 5;
    let p = store.lookup_audit(&q).await.unwrap();
    assert_eq!(p.rows.len(), 5);
    assert_eq!(p.next, None);
    q.limit = 4;
    assert!(store.lookup_audit(&q).await.unwrap().next.is_some());
    // A cursor need not be a stored row's position.
    let after = |t: i64, id: &str| {
        let mut q = query(O, None);
        q.after = Some(AuditCursor {
            event_time_ms: t,
            event_id: id.into(),
        });
        q
    };
    assert_eq!(ids(&all(store, &after(5, "e25")).await), ["e2", "e1", "e9"]);
    assert_eq!(ids(&all(store, &after(5, "e1")).await), ["e9"]);
    assert_eq!(ids(&all(store, &after(100, "")).await).len(), 5);
    assert!(all(store, &after(4, "e9")).await.is_empty());
    assert!(all(store, &after(i64::MIN, "")).await.is_empty());
    // The limit is honoured, never exceeded.
    let mut one = query(O, None);
    one.limit = 1;
    let p = store.lookup_audit(&one).await.unwrap();
    assert_eq!(ids(&p.rows), ["e0"]);
    one.limit = 0;
    assert_eq!(
        store.lookup_audit(&one).await.unwrap(),
        AuditPage::default()
    );
}

/// 2,500 events (multi-statement batches, shared times): pages of 50 visit every row once, in
/// order, with and without an attribute or bounds.
pub async fn pagination_scenario(store: &dyn Store) {
    const P: &str = "100000000002";
    const N: usize = 2500;
    let rows: Vec<AuditRow> = (0..N)
        .map(|i| {
            // Ids unrelated to the order of times (7919 is invertible mod the prime 2503).
            let mut e = ev(P, &format!("id-{:05}", (i * 7919) % 2503), (i / 3) as i64);
            e.resources = vec![res(ROLE, &format!("role/r{}", i % 3))];
            if i % 2 == 0 {
                e.resources.push(res(POLICY, "policy/even"));
                e.access_key_id = "AKIAEVEN".into();
            }
            e
        })
        .collect();
    store.append_audit(&rows[..1700]).await.unwrap();
    store.append_audit(&rows[1700..]).await.unwrap();
    let sorted = |mut v: Vec<AuditRow>| {
        v.sort_by(|a, b| (b.event_time_ms, &b.event_id).cmp(&(a.event_time_ms, &a.event_id)));
        v
    };
    let mut q = query(P, None);
    q.limit = 50;
    let (mut pages, mut seen) = (0, Vec::new());
    loop {
        let p = store.lookup_audit(&q).await.unwrap();
        pages += 1;
        seen.extend(p.rows);
        match p.next {
            Some(c) => q.after = Some(c),
            None => break,
        }
    }
    assert_eq!(pages, N / 50);
    assert_eq!(seen, sorted(rows.clone()), "every row once, newest first");

    let by = |attr: Option<AuditAttr>, start: Option<i64>, end: Option<i64>| {
        let mut q = query(P, attr);
        q.limit = 50;
        q.start_ms = start;
        q.end_ms = end;
        q
    };
    let want =
        |f: &dyn Fn(&AuditRow) -> bool| sorted(rows.iter().filter(|r| f(r)).cloned().collect());
    let cases: Vec<(AuditQuery, Vec<AuditRow>)> = vec![
        (
            by(Some(AuditAttr::ResourceName("role/r0".into())), None, None),
            want(&|r| r.resources[0].1 == "role/r0"),
        ),
        (
            by(
                Some(AuditAttr::ResourceName("policy/even".into())),
                Some(100),
                Some(600),
            ),
            want(&|r| r.resources.len() == 2 && (100..=600).contains(&r.event_time_ms)),
        ),
        (
            by(
                Some(AuditAttr::AccessKeyId("AKIAEVEN".into())),
                None,
                Some(400),
            ),
            want(&|r| r.access_key_id == "AKIAEVEN" && r.event_time_ms <= 400),
        ),
        (
            by(
                Some(AuditAttr::ResourceType(POLICY.into())),
                Some(700),
                None,
            ),
            want(&|r| r.resources.len() == 2 && r.event_time_ms >= 700),
        ),
        (
            by(None, Some(10), Some(10)),
            want(&|r| r.event_time_ms == 10),
        ),
    ];
    for (q, want) in cases {
        assert!(!want.is_empty());
        assert_eq!(all(store, &q).await, want, "{q:?}");
    }
}

/// Start and end bound event times inclusively.
pub async fn bounds_scenario(store: &dyn Store) {
    const T: &str = "100000000003";
    let mut rows = vec![
        ev(T, "t10", 10),
        ev(T, "t20", 20),
        ev(T, "t30", 30),
        ev(T, "tneg", -5),
    ];
    for r in &mut rows {
        r.resources = vec![res(ROLE, "role/b")];
    }
    store.append_audit(&rows).await.unwrap();
    let range = |start: Option<i64>, end: Option<i64>, attr: Option<AuditAttr>| {
        let mut q = query(T, attr);
        q.start_ms = start;
        q.end_ms = end;
        q
    };
    let cases: Vec<(Option<i64>, Option<i64>, Vec<&str>)> = vec![
        (Some(20), Some(30), vec!["t30", "t20"]),
        (Some(20), Some(20), vec!["t20"]),
        (Some(10), None, vec!["t30", "t20", "t10"]),
        (None, Some(10), vec!["t10", "tneg"]),
        (None, None, vec!["t30", "t20", "t10", "tneg"]),
        (Some(-5), Some(-5), vec!["tneg"]),
        (
            Some(i64::MIN),
            Some(i64::MAX),
            vec!["t30", "t20", "t10", "tneg"],
        ),
        // Negative: nothing in the range.
        (Some(21), Some(29), vec![]),
        (Some(31), None, vec![]),
        (None, Some(-6), vec![]),
        (Some(11), Some(19), vec![]),
        (Some(30), Some(20), vec![]),
        (Some(i64::MAX), None, vec![]),
        (None, Some(i64::MIN), vec![]),
    ];
    for (start, end, want) in cases {
        for attr in [
            None,
            Some(AuditAttr::ResourceName("role/b".into())),
            Some(AuditAttr::EventName("AssumeRoleWithWebIdentity".into())),
        ] {
            let got = all(store, &range(start, end, attr.clone())).await;
            assert_eq!(ids(&got), want, "{start:?}..={end:?} {attr:?}");
        }
    }
}

/// An `AccessKeyId` lookup finds the events that issued the key (a resource of type
/// [`ISSUED_KEY_TYPE`] named by it) as well as those signed with it, in one newest-first order
/// across pages of every size; not a resource of another type with the key's name, nor another
/// account's events.
pub async fn issued_keys_scenario(store: &dyn Store) {
    const K: &str = "100000000008";
    const OTHER: &str = "100000000009";
    let key = "ASIAISSUEDKEY0000001";
    let issued = |account: &str, id: &str, t: i64| {
        let mut e = ev(account, id, t);
        e.event_name = "AssumeRoleWithWebIdentity".into();
        e.resources = vec![
            res(ROLE, &format!("arn:aws:iam::{account}:role/r")),
            res(ISSUED_KEY_TYPE, key),
        ];
        e
    };
    let signed = |account: &str, id: &str, t: i64| {
        let mut e = ev(account, id, t);
        e.access_key_id = key.into();
        e
    };
    // Issued at 50; used before (a clock skew between replicas) and after; issued again at 75
    // (an event may both sign with one key and issue another: AssumeRole with a session key).
    let mut both = issued(K, "k075", 75);
    both.access_key_id = "ASIAOTHERKEY00000001".into();
    let mut lookalike = ev(K, "k060", 60);
    lookalike.resources = vec![res(ROLE, key)];
    let mut rows = vec![
        signed(K, "k010", 10),
        issued(K, "k050", 50),
        both,
        lookalike,
        issued(OTHER, "o050", 50),
        signed(OTHER, "o055", 55),
    ];
    // Two events at one time, one of each half: the order is by id within a time.
    rows.push(signed(K, "k080b", 80));
    rows.push(issued(K, "k080a", 80));
    for t in (90..130).step_by(2) {
        rows.push(signed(K, &format!("k{t:03}"), t));
    }
    store.append_audit(&rows).await.unwrap();

    let mut want: Vec<String> = (90..130)
        .step_by(2)
        .rev()
        .map(|t| format!("k{t:03}"))
        .collect();
    want.extend(["k080b", "k080a", "k075", "k050", "k010"].map(str::to_owned));
    for limit in [1, 2, 3, 7, 25, 26, 1000] {
        let mut q = query(K, Some(AuditAttr::AccessKeyId(key.into())));
        q.limit = limit;
        assert_eq!(ids(&all(store, &q).await), want, "limit {limit}");
    }
    // Time bounds apply to both halves.
    let mut q = query(K, Some(AuditAttr::AccessKeyId(key.into())));
    (q.start_ms, q.end_ms) = (Some(50), Some(80));
    assert_eq!(
        ids(&all(store, &q).await),
        ["k080b", "k080a", "k075", "k050"]
    );
    assert_eq!(
        find(store, OTHER, Some(AuditAttr::AccessKeyId(key.into()))).await,
        ["o055", "o050"]
    );
    // The other key of the event that both signed and issued finds it through the signed half.
    assert_eq!(
        find(
            store,
            K,
            Some(AuditAttr::AccessKeyId("ASIAOTHERKEY00000001".into()))
        )
        .await,
        ["k075"]
    );
    // A resource-name lookup still sees every resource named so, whatever its type.
    assert_eq!(
        find(store, K, Some(AuditAttr::ResourceName(key.into()))).await,
        ["k080a", "k075", "k060", "k050"]
    );
    assert!(
        find(
            store,
            K,
            Some(AuditAttr::AccessKeyId("ASIAISSUEDKEY0000002".into()))
        )
        .await
        .is_empty()
    );
}
