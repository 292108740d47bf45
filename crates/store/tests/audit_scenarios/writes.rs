//! Writes: retried and repeated events, atomic batches, independence from the records, pruning.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use podiam_store::{AuditAttr, AuditRow, Store, StoreError, Write};

use super::{POLICY, ROLE, Raw, all, ev, find, ids, query, res};

/// A retried batch, a batch repeating an event, and a batch mixing new and stored events: no
/// failure and no duplicate; the stored copy is kept.
pub async fn duplicates_scenario(store: &dyn Store, raw: &Raw) {
    const D: &str = "100000000004";
    let resources_before = raw.count("audit_resources").await;
    let mut batch: Vec<AuditRow> = (0..5).map(|i| ev(D, &format!("d{i}"), i)).collect();
    for r in &mut batch {
        r.resources = vec![res(ROLE, "role/d"), res(POLICY, "policy/d")];
    }
    store.append_audit(&batch).await.unwrap();
    store.append_audit(&batch).await.unwrap();
    assert_eq!(find(store, D, None).await, ["d4", "d3", "d2", "d1", "d0"]);
    assert_eq!(
        find(store, D, Some(AuditAttr::ResourceName("role/d".into())))
            .await
            .len(),
        5
    );
    // Same id again with other contents (even another time): skipped, the first copy stays.
    let mut changed = ev(D, "d2", 77);
    changed.event_name = "Changed".into();
    changed.resources = vec![res(ROLE, "role/other")];
    let mut repeat = ev(D, "d5", 5);
    repeat.resources = vec![res(ROLE, "role/d"), res(ROLE, "role/d")];
    let mut repeat_again = repeat.clone();
    repeat_again.event_name = "SecondCopy".into();
    store
        .append_audit(&[changed, repeat.clone(), repeat_again])
        .await
        .unwrap();
    let got = all(store, &query(D, None)).await;
    assert_eq!(ids(&got), ["d5", "d4", "d3", "d2", "d1", "d0"]);
    assert_eq!(got[0], repeat, "the first copy of a repeated event is kept");
    assert_eq!(got[3], batch[2], "a stored event is not replaced");
    assert!(
        find(store, D, Some(AuditAttr::EventName("Changed".into())))
            .await
            .is_empty()
    );
    assert!(
        find(store, D, Some(AuditAttr::EventName("SecondCopy".into())))
            .await
            .is_empty()
    );
    assert!(
        find(store, D, Some(AuditAttr::ResourceName("role/other".into())))
            .await
            .is_empty(),
        "a skipped event leaves no resource behind"
    );
    assert_eq!(
        find(store, D, Some(AuditAttr::ResourceName("role/d".into())))
            .await
            .len(),
        6,
        "an event found once per resource name"
    );
    if let (Some(before), Some(after)) = (resources_before, raw.count("audit_resources").await) {
        assert_eq!(
            after - before,
            5 * 2 + 1,
            "one resource row per distinct name"
        );
    }
    // An empty batch is fine.
    store.append_audit(&[]).await.unwrap();
}

/// A batch that fails leaves nothing behind, however many statements it took.
pub async fn atomic_scenario(store: &dyn Store) {
    const X: &str = "100000000005";
    let good: Vec<AuditRow> = (0..600)
        .map(|i| {
            let mut e = ev(X, &format!("x{i:04}"), i);
            e.resources = vec![res(ROLE, &format!("role/x{i}"))];
            e
        })
        .collect();
    // An event without an id, last of a batch that spans several insert statements.
    let mut bad = good.clone();
    bad.push(ev(X, "", 1));
    let err = store.append_audit(&bad).await.unwrap_err();
    assert!(matches!(err, StoreError::Backend(_)), "{err:?}");
    assert!(find(store, X, None).await.is_empty(), "no partial batch");
    // A resource without a name fails the batch after its events were inserted.
    let mut bad = good.clone();
    bad[599].resources.push(res(ROLE, ""));
    assert!(store.append_audit(&bad).await.is_err());
    assert!(find(store, X, None).await.is_empty(), "no partial batch");
    assert!(
        find(store, X, Some(AuditAttr::ResourceName("role/x1".into())))
            .await
            .is_empty()
    );
    // The same events, valid, then all go in together.
    store.append_audit(&good).await.unwrap();
    assert_eq!(find(store, X, None).await.len(), 600);
    assert_eq!(
        find(store, X, Some(AuditAttr::ResourceName("role/x599".into()))).await,
        ["x0599"]
    );
}

/// Events are not records: they never show in the records or the change feed, and appending
/// them does not advance the feed.
pub async fn separate_from_records_scenario(store: &dyn Store) {
    const S: &str = "100000000006";
    let h0 = store.head().await.unwrap();
    store
        .apply(
            &[Write::Insert {
                kind: "role".into(),
                account: S.into(),
                id: "r".into(),
                doc: "{}".into(),
            }],
            1,
        )
        .await
        .unwrap();
    let h1 = store.head().await.unwrap();
    assert!(h1 > h0);
    store
        .append_audit(&[ev(S, "s1", 1), ev(S, "s2", 2)])
        .await
        .unwrap();
    assert_eq!(store.head().await.unwrap(), h1, "no change-feed entry");
    assert!(store.changes_since(h1).await.unwrap().changes.is_empty());
    assert_eq!(store.changes_since(h0).await.unwrap().changes.len(), 1);
    let all_records = store.load_all().await.unwrap();
    assert_eq!(all_records.len(), 1);
    assert_eq!(all_records[0].id, "r");
    // And records are not events.
    assert_eq!(find(store, S, None).await, ["s2", "s1"]);
}

/// Pruning deletes exactly the events older than the bound, from both tables, in every
/// account, and returns how many went. Times here are long before every other scenario's.
pub async fn prune_scenario(store: &dyn Store, raw: &Raw) {
    const BASE: i64 = -10_000_000;
    let events_before = raw.count("audit_events").await;
    let resources_before = raw.count("audit_resources").await;
    // More old events in one account than one pruning transaction takes.
    let mut rows: Vec<AuditRow> = (0..2300)
        .map(|i| {
            let mut e = ev("200000000001", &format!("p{i:05}"), BASE + i);
            e.resources = vec![res(ROLE, &format!("role/p{}", i % 7)), res(POLICY, "pol")];
            e
        })
        .collect();
    rows.extend((0..10).map(|i| {
        let mut e = ev("200000000002", &format!("q{i}"), BASE + 1000 + i);
        e.resources = vec![res(ROLE, "role/q")];
        e
    }));
    store.append_audit(&rows).await.unwrap();
    // Nothing is older than the oldest event.
    assert_eq!(store.prune_audit(BASE).await.unwrap(), 0);
    assert_eq!(store.prune_audit(i64::MIN).await.unwrap(), 0);
    // Events before BASE + 1005: 1005 of the first account, 5 of the second.
    assert_eq!(store.prune_audit(BASE + 1005).await.unwrap(), 1010);
    let left = all(store, &query("200000000001", None)).await;
    assert_eq!(left.len(), 2300 - 1005);
    assert!(left.iter().all(|r| r.event_time_ms >= BASE + 1005));
    assert_eq!(
        left.last().unwrap().event_time_ms,
        BASE + 1005,
        "the bound itself stays"
    );
    assert_eq!(
        find(store, "200000000002", None).await,
        ["q9", "q8", "q7", "q6", "q5"]
    );
    // The resource index lost the pruned events too.
    let by_name = all(
        store,
        &query("200000000001", Some(AuditAttr::ResourceName("pol".into()))),
    )
    .await;
    assert_eq!(by_name, left);
    assert!(
        find(
            store,
            "200000000001",
            Some(AuditAttr::EventId("p00007".into()))
        )
        .await
        .is_empty()
    );
    if let (Some(e0), Some(r0)) = (events_before, resources_before) {
        assert_eq!(raw.count("audit_events").await.unwrap() - e0, 1295 + 5);
        assert_eq!(
            raw.count("audit_resources").await.unwrap() - r0,
            1295 * 2 + 5,
            "no resource row outlives its event"
        );
    }
    // Pruning again at the same bound deletes nothing; later bounds take the rest.
    assert_eq!(store.prune_audit(BASE + 1005).await.unwrap(), 0);
    assert_eq!(store.prune_audit(BASE + 5000).await.unwrap(), 1300);
    assert!(find(store, "200000000001", None).await.is_empty());
    assert!(find(store, "200000000002", None).await.is_empty());
    if let (Some(e0), Some(r0)) = (events_before, resources_before) {
        assert_eq!(raw.count("audit_events").await, Some(e0));
        assert_eq!(raw.count("audit_resources").await, Some(r0));
    }
    // A pruned event may be appended again (a late retry): it is stored anew.
    store.append_audit(&rows[..1]).await.unwrap();
    assert_eq!(find(store, "200000000001", None).await, ["p00000"]);
    assert_eq!(store.prune_audit(BASE + 1).await.unwrap(), 1);
}

/// NUL in any field (a token's subject, a resource name: caller-chosen) is kept as U+FFFD on
/// both backends, never failing the batch it is in, and a lookup naming it with NUL finds it.
pub async fn nul_scenario(store: &dyn Store) {
    const N: &str = "100000000010";
    let mut bad = ev(N, "n1", 10);
    bad.username = "a\0b".into();
    bad.event_name = "E\0".into();
    bad.event_source = "s\0".into();
    bad.access_key_id = "ASIA\0".into();
    bad.resources = vec![res("T\0", "name\0")];
    bad.record = "{\"x\":\"\0\"}".into();
    let good = ev(N, "n2", 20);
    store.append_audit(&[bad, good]).await.unwrap();
    assert_eq!(find(store, N, None).await, ["n2", "n1"]);
    for attr in [
        AuditAttr::Username("a\0b".into()),
        AuditAttr::Username("a\u{FFFD}b".into()),
        AuditAttr::EventName("E\0".into()),
        AuditAttr::EventSource("s\0".into()),
        AuditAttr::AccessKeyId("ASIA\0".into()),
        AuditAttr::ResourceName("name\0".into()),
        AuditAttr::ResourceType("T\0".into()),
    ] {
        assert_eq!(find(store, N, Some(attr.clone())).await, ["n1"], "{attr:?}");
    }
    let got = all(store, &query(N, Some(AuditAttr::EventId("n1".into())))).await;
    assert_eq!(got[0].username, "a\u{FFFD}b");
    assert_eq!(got[0].record, "{\"x\":\"\u{FFFD}\"}");
    assert!(find(store, "1000000000\x0001", None).await.is_empty());
}
