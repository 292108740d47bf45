//! Store conformance: the behaviour every backend must show. Runs against SQLite (in memory and
//! on disk); the same scenarios will run against PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, missing_docs)]

use podiam_store::{SqliteStore, Store, StoreError, Write};

fn ins(id: &str, doc: &str) -> Write {
    Write::Insert { kind: "role".into(), account: "111122223333".into(), id: id.into(), doc: doc.into() }
}

async fn scenario(store: &dyn Store) {
    assert!(store.load_all().await.unwrap().is_empty());
    store.apply(&[ins("a", "{\"n\":1}"), ins("b", "{}")], 10).await.unwrap();
    let all = store.load_all().await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].id, "a");
    assert_eq!(all[0].version, 1);

    // Duplicate insert conflicts and the batch leaves nothing behind.
    let err = store.apply(&[ins("c", "{}"), ins("a", "{}")], 11).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { ref id, .. } if id == "a"), "{err:?}");
    assert_eq!(store.load_all().await.unwrap().len(), 2, "no partial write");

    // Optimistic update.
    let upd = |v| Write::Update {
        kind: "role".into(),
        account: "111122223333".into(),
        id: "a".into(),
        doc: "{\"n\":2}".into(),
        expect_version: v,
    };
    store.apply(&[upd(1)], 12).await.unwrap();
    assert!(matches!(store.apply(&[upd(1)], 13).await, Err(StoreError::Conflict { .. })));
    let all = store.load_all().await.unwrap();
    assert_eq!(all[0].doc, "{\"n\":2}");
    assert_eq!(all[0].version, 2);

    // Delete, and deleting an absent record conflicts.
    let del = Write::Delete { kind: "role".into(), account: "111122223333".into(), id: "b".into() };
    store.apply(std::slice::from_ref(&del), 14).await.unwrap();
    assert!(matches!(store.apply(&[del], 15).await, Err(StoreError::Conflict { .. })));
    assert_eq!(store.load_all().await.unwrap().len(), 1);

    // Same id in another account or kind is a different record.
    store
        .apply(
            &[
                Write::Insert { kind: "role".into(), account: "444455556666".into(), id: "a".into(), doc: "{}".into() },
                Write::Insert { kind: "user".into(), account: "111122223333".into(), id: "a".into(), doc: "{}".into() },
            ],
            16,
        )
        .await
        .unwrap();
    assert_eq!(store.load_all().await.unwrap().len(), 3);
}

#[tokio::test]
async fn sqlite_memory_conformance() {
    let s = SqliteStore::memory().await.unwrap();
    scenario(&s).await;
}

#[tokio::test]
async fn sqlite_file_conformance_and_reopen() {
    let dir = std::env::temp_dir().join(format!("podiam-store-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("podiam.db");
    let _ = std::fs::remove_file(&path);
    {
        let s = SqliteStore::open(&path).await.unwrap();
        scenario(&s).await;
        s.close().await;
    }
    // Reopening applies no migration twice and keeps every record.
    let s = SqliteStore::open(&path).await.unwrap();
    assert_eq!(s.load_all().await.unwrap().len(), 3);
    s.close().await;
    std::fs::remove_dir_all(&dir).unwrap();
}
