//! The record's shapes and rows, and the writer's admission rules, without HTTP.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use podiam_store::{AuditAttr, AuditQuery};
use serde_json::Value;

use super::record::{EventInput, build};
use super::writer::{AuditConfig, AuditLog, AuditSink, Enqueued};
use super::{FactsInner, Identity, Issued, KubeFacts};
use crate::auth::Caller;

const ACCT: &str = "111122223333";
const OTHER: &str = "444455556666";

fn input(facts: FactsInner, error: Option<(&'static str, String)>) -> EventInput<'static> {
    EventInput {
        time_ms: 1_700_000_000_123,
        event_id: uuid::Uuid::new_v4().to_string(),
        event_source: "sts.amazonaws.com",
        event_name: "AssumeRole",
        event_type: "AwsApiCall",
        region: "us-east-1",
        source_ip: Some("10.1.2.3".parse().unwrap()),
        user_agent: "aws-cli/2",
        request_id: "rid-1",
        read_only: false,
        request_parameters: Some(
            serde_json::json!({"roleArn": "arn:aws:iam::444455556666:role/r"}),
        ),
        error,
        resources: vec![],
        fallback_account: None,
        facts,
    }
}

fn issued() -> Issued {
    Issued {
        access_key_id: "ASIAISSUED0000000000".into(),
        expiration: 1_700_003_600,
        assumed_role_arn: format!("arn:aws:sts::{OTHER}:assumed-role/r/s"),
        assumed_role_id: "AROAX:s".into(),
        role_arn: format!("arn:aws:iam::{OTHER}:role/r"),
    }
}

#[test]
fn a_cross_account_credential_is_seen_by_both_accounts_and_names_no_secret() {
    let facts = FactsInner {
        identity: Some(Identity::Caller {
            caller: Caller::Root {
                account: ACCT.into(),
            },
            access_key_id: "AKIASIGNER0000000000".into(),
        }),
        issued: Some(issued()),
        resource_account: Some(OTHER.into()),
        ..FactsInner::default()
    };
    let b = build(input(facts, None));
    let accounts: Vec<&str> = b.rows.iter().map(|r| r.account.as_str()).collect();
    assert_eq!(accounts, [ACCT, OTHER]);
    assert!(b.issued && !b.anonymous_refusal);
    let v: Value = serde_json::from_str(&b.json).unwrap();
    assert_eq!(v["userIdentity"]["type"], "Root");
    assert_eq!(v["userIdentity"]["accessKeyId"], "AKIASIGNER0000000000");
    assert_eq!(v["recipientAccountId"], OTHER);
    assert_eq!(v["eventTime"], "2023-11-14T22:13:20Z");
    assert_eq!(v["sourceIPAddress"], "10.1.2.3");
    let creds = &v["responseElements"]["credentials"];
    assert_eq!(creds["accessKeyId"], "ASIAISSUED0000000000");
    assert_eq!(creds.as_object().unwrap().len(), 2, "{creds}");
    assert!(v.get("errorCode").is_none());
    assert_eq!(b.rows[0].access_key_id, "AKIASIGNER0000000000");
    assert_eq!(b.rows[0].username, "root");
    assert!(b.rows[0].resources.contains(&(
        "AWS::IAM::AccessKey".to_owned(),
        "ASIAISSUED0000000000".to_owned()
    )));
}

#[test]
fn a_refused_token_is_anonymous_and_its_claims_are_marked_unverified() {
    let facts = FactsInner {
        identity: Some(Identity::WebIdentity {
            provider: "https://evil.example".into(),
            subject: "system:serviceaccount:a:b".into(),
            audience: String::new(),
            verified: false,
        }),
        resource_account: Some(ACCT.into()),
        kube: Some(KubeFacts {
            namespace: Some("a".into()),
            pod_name: Some("p".into()),
            ..KubeFacts::default()
        }),
        ..FactsInner::default()
    };
    let b = build(input(facts, Some(("InvalidIdentityToken", "bad".into()))));
    assert!(b.anonymous_refusal && !b.issued);
    let v: Value = serde_json::from_str(&b.json).unwrap();
    assert_eq!(v["userIdentity"]["type"], "WebIdentityUser");
    assert_eq!(v["additionalEventData"]["tokenVerified"], false);
    assert_eq!(v["additionalEventData"]["kubernetes"]["podName"], "p");
    assert_eq!(v["errorCode"], "InvalidIdentityToken");
    assert!(v.get("responseElements").is_none_or(Value::is_null));
    assert_eq!(b.rows.len(), 1);
    assert!(
        b.rows[0]
            .resources
            .contains(&("podiam::Kubernetes::Pod".to_owned(), "a/p".to_owned()))
    );
    // A signed caller's refusal is not anonymous; an event with no account has no rows.
    let signed = FactsInner {
        identity: Some(Identity::Caller {
            caller: Caller::Root {
                account: ACCT.into(),
            },
            access_key_id: "AKIA".into(),
        }),
        ..FactsInner::default()
    };
    assert!(!build(input(signed, Some(("AccessDenied", "no".into())))).anonymous_refusal);
    let nobody = build(input(FactsInner::default(), Some(("X", "y".into()))));
    assert!(nobody.rows.is_empty() && nobody.anonymous_refusal);
}

async fn sink(config: AuditConfig) -> (AuditSink, Arc<dyn podiam_store::Store>) {
    let store: Arc<dyn podiam_store::Store> =
        Arc::new(podiam_store::SqliteStore::memory().await.unwrap());
    let s = AuditSink::start(&config, Arc::clone(&store), Arc::new(crate::SystemClock)).unwrap();
    (s, store)
}

fn refusal(i: usize) -> super::record::Built {
    let facts = FactsInner {
        resource_account: Some(ACCT.into()),
        ..FactsInner::default()
    };
    let mut x = input(facts, Some(("AccessDenied", format!("n{i}"))));
    x.event_id = format!("{i:08}");
    // Now: the sink prunes what is older than its retention as it starts.
    x.time_ms = crate::Clock::now_ms(&crate::SystemClock);
    build(x)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_refusals_are_rate_limited_and_the_rest_is_written() {
    let (s, store) = sink(AuditConfig::default()).await;
    let mut kept = 0;
    for i in 0..2500 {
        if matches!(s.submit(refusal(i)), Enqueued::Queued) {
            kept += 1;
        }
        if i % 500 == 0 {
            // Let the writer drain, so that only the rate limit refuses.
            assert!(s.flush(Duration::from_secs(10)).await);
        }
    }
    assert!(s.flush(Duration::from_secs(10)).await);
    assert!((2000..2100).contains(&kept), "{kept}");
    let suppressed = s
        .stats()
        .suppressed
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(suppressed as usize, 2500 - kept);
    let q = AuditQuery {
        account: ACCT.into(),
        attr: Some(AuditAttr::EventName("AssumeRole".into())),
        start_ms: None,
        end_ms: None,
        limit: 1000,
        after: None,
    };
    let mut n = 0;
    let mut q = q;
    loop {
        let page = store.lookup_audit(&q).await.unwrap();
        n += page.rows.len();
        match page.next {
            Some(c) => q.after = Some(c),
            None => break,
        }
    }
    let st = s.stats();
    let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(
        (n, load(&st.written), load(&st.failed), load(&st.dropped)),
        (kept, kept as u64, 0, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_waits_for_the_write_and_reports_a_failed_log() {
    let dir = std::env::temp_dir().join(format!("podiam-audit-test-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let ok_log = dir.join("audit.jsonl");
    let config = AuditConfig {
        log: Some(AuditLog::File(ok_log.clone())),
        required: true,
        ..AuditConfig::default()
    };
    let (s, _) = sink(config).await;
    let facts = FactsInner {
        issued: Some(issued()),
        resource_account: Some(OTHER.into()),
        ..FactsInner::default()
    };
    let Enqueued::Wait(rx) = s.submit(build(input(facts.clone(), None))) else {
        panic!("a credential's event is waited for under required")
    };
    assert!(rx.await.unwrap());
    let line = std::fs::read_to_string(&ok_log).unwrap();
    assert_eq!(line.lines().count(), 1);
    assert!(line.contains("ASIAISSUED0000000000"));
    // /dev/full refuses every write: the wait says so.
    let (full, _) = sink(AuditConfig {
        log: Some(AuditLog::File("/dev/full".into())),
        retention_days: 0,
        required: true,
        ..AuditConfig::default()
    })
    .await;
    let Enqueued::Wait(rx) = full.submit(build(input(facts, None))) else {
        panic!("waited for")
    };
    assert!(!rx.await.unwrap());
    assert_eq!(
        full.stats()
            .failed
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A store whose audit writes never answer (a database that hangs).
struct Hanging;

impl podiam_store::Store for Hanging {
    fn load_all(
        &self,
    ) -> podiam_store::BoxFut<'_, Result<Vec<podiam_store::Record>, podiam_store::StoreError>> {
        Box::pin(async { Ok(Vec::new()) })
    }
    fn apply<'a>(
        &'a self,
        _: &'a [podiam_store::Write],
        _: i64,
    ) -> podiam_store::BoxFut<'a, Result<(), podiam_store::StoreError>> {
        Box::pin(async { Ok(()) })
    }
    fn close(&self) -> podiam_store::BoxFut<'_, ()> {
        Box::pin(async {})
    }
    fn head(&self) -> podiam_store::BoxFut<'_, Result<i64, podiam_store::StoreError>> {
        Box::pin(async { Ok(0) })
    }
    fn changes_since(
        &self,
        _: i64,
    ) -> podiam_store::BoxFut<'_, Result<podiam_store::ChangeSet, podiam_store::StoreError>> {
        Box::pin(async { Ok(podiam_store::ChangeSet::default()) })
    }
    fn append_audit<'a>(
        &'a self,
        _: &'a [podiam_store::AuditRow],
    ) -> podiam_store::BoxFut<'a, Result<(), podiam_store::StoreError>> {
        Box::pin(std::future::pending())
    }
    fn prune_audit(
        &self,
        _: i64,
    ) -> podiam_store::BoxFut<'_, Result<u64, podiam_store::StoreError>> {
        Box::pin(async { Ok(0) })
    }
}

/// Closing abandons a write the store never answers, so the writer ends (before the runtime
/// its store calls run on does); the waiting request hears that its event was not written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_abandons_a_hanging_write() {
    let config = AuditConfig {
        required: true,
        ..AuditConfig::default()
    };
    let s = AuditSink::start(&config, Arc::new(Hanging), Arc::new(crate::SystemClock)).unwrap();
    let facts = FactsInner {
        issued: Some(issued()),
        resource_account: Some(ACCT.into()),
        ..FactsInner::default()
    };
    let Enqueued::Wait(rx) = s.submit(build(input(facts, None))) else {
        panic!("waited for")
    };
    // A request queued behind the hanging batch.
    let behind = s.submit(refusal(1));
    assert!(matches!(behind, Enqueued::Queued));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!s.flush(Duration::from_millis(200)).await);
    let started = std::time::Instant::now();
    assert!(s.close(Duration::from_secs(5)).await);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(!rx.await.unwrap());
    let failed = s.stats().failed.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(failed, 2);
    // Closing twice is harmless.
    assert!(s.close(Duration::from_secs(1)).await);
}

/// An event the store refuses (here: an empty id, which its schema forbids) costs only itself:
/// the rest of its batch is written, and its waiter alone hears of the failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_event_does_not_fail_its_batch() {
    let issued_event = |i: usize, bad: bool| {
        let facts = FactsInner {
            issued: Some(issued()),
            resource_account: Some(ACCT.into()),
            ..FactsInner::default()
        };
        let mut x = input(facts, None);
        x.event_id = format!("{i:08}");
        x.time_ms = crate::Clock::now_ms(&crate::SystemClock);
        let mut b = build(x);
        for r in b.rows.iter_mut().filter(|_| bad) {
            r.event_id = String::new();
        }
        b
    };
    let count = |store: Arc<dyn podiam_store::Store>| async move {
        let q = AuditQuery {
            account: ACCT.into(),
            attr: None,
            start_ms: None,
            end_ms: None,
            limit: 100,
            after: None,
        };
        store.lookup_audit(&q).await.unwrap().rows.len()
    };
    let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    // Queued without waking the writer: one batch, taken by the flush.
    let (s, store) = sink(AuditConfig::default()).await;
    for i in 0..9 {
        assert!(matches!(
            s.submit(issued_event(i, i == 4)),
            Enqueued::Queued
        ));
    }
    assert!(s.flush(Duration::from_secs(10)).await);
    assert_eq!(count(Arc::clone(&store)).await, 8);
    assert_eq!((load(&s.stats().written), load(&s.stats().failed)), (8, 1));
    // Waited for: each waiter hears of its own event.
    let (s, store) = sink(AuditConfig {
        required: true,
        ..AuditConfig::default()
    })
    .await;
    let mut waits = Vec::new();
    for i in 0..9 {
        let Enqueued::Wait(rx) = s.submit(issued_event(i, i == 4)) else {
            panic!("waited for")
        };
        waits.push(rx);
    }
    let mut acks = Vec::new();
    for rx in waits {
        acks.push(rx.await.unwrap());
    }
    assert_eq!(acks, (0..9).map(|i| i != 4).collect::<Vec<_>>());
    assert_eq!(count(store).await, 8);
}

/// Large anonymous refusals run out of their byte allowance long before their count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_refusals_are_limited_in_bytes_too() {
    let (s, _) = sink(AuditConfig::default()).await;
    let mut kept = 0;
    for i in 0..400 {
        let mut b = refusal(i);
        assert!(b.anonymous_refusal);
        b.json = format!("{}{}", b.json, " ".repeat(64 * 1024));
        if matches!(s.submit(b), Enqueued::Queued) {
            kept += 1;
        }
    }
    // 8 MiB of burst in 64 KiB events, and what 512 KiB/s refills meanwhile.
    assert!((120..140).contains(&kept), "{kept}");
    // A small one is still admitted once the bytes refill.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(matches!(s.submit(refusal(1000)), Enqueued::Queued));
    assert!(s.flush(Duration::from_secs(10)).await);
}

fn session_of(role: &str, session: &str) -> Caller {
    Caller::Session(Arc::new(crate::session::SessionClaims::example(
        role, session,
    )))
}

fn signed_refusal(caller: Caller, i: usize) -> super::record::Built {
    let facts = FactsInner {
        identity: Some(Identity::Caller {
            caller,
            access_key_id: "AKIAEXAMPLE".into(),
        }),
        ..FactsInner::default()
    };
    let mut x = input(facts, Some(("AccessDenied", format!("n{i}"))));
    x.time_ms = crate::Clock::now_ms(&crate::SystemClock);
    build(x)
}

/// A signed caller's refusals are counted against the caller, a session's against its role
/// (sessions are minted at will), so that no caller can fill the store with refusals; callers
/// do not hold each other back, and answered requests are never limited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_refusals_are_limited_per_caller_and_sessions_count_as_their_role() {
    use super::limit::PER_CALLER;
    let (s, _) = sink(AuditConfig::default()).await;
    let burst = PER_CALLER.events_burst as usize;
    let b = signed_refusal(session_of("r", "s0"), 0);
    assert_eq!(
        b.refused_by
            .as_ref()
            .map(|r| (r.account.as_str(), r.caller.as_str())),
        Some((ACCT, "arn:aws:iam::111122223333:role/r"))
    );
    assert!(!b.anonymous_refusal);
    let mut kept = 0;
    for i in 0..(burst + 300) {
        // A new session name for each: the role's allowance still runs out.
        if matches!(
            s.submit(signed_refusal(session_of("r", &format!("s{i}")), i)),
            Enqueued::Queued
        ) {
            kept += 1;
        }
        if i % 200 == 0 {
            assert!(s.flush(Duration::from_secs(10)).await);
        }
    }
    // The burst, and what the rate refills while the loop runs.
    assert!((burst..burst + 60).contains(&kept), "{kept}");
    // Another role's sessions and the account's root are not held back.
    assert!(matches!(
        s.submit(signed_refusal(session_of("other", "x"), 1)),
        Enqueued::Queued
    ));
    let root = Caller::Root {
        account: ACCT.into(),
    };
    let b = signed_refusal(root.clone(), 1);
    assert_eq!(
        b.refused_by
            .as_ref()
            .map(|r| (r.account.as_str(), r.caller.as_str())),
        Some((ACCT, "arn:aws:iam::111122223333:root"))
    );
    assert!(matches!(s.submit(b), Enqueued::Queued));
    // An answered request of the limited role is kept: only refusals are limited.
    let answered = build(input(
        FactsInner {
            identity: Some(Identity::Caller {
                caller: session_of("r", "ok"),
                access_key_id: "ASIAEXAMPLE".into(),
            }),
            ..FactsInner::default()
        },
        None,
    ));
    assert!(answered.refused_by.is_none());
    assert!(matches!(s.submit(answered), Enqueued::Queued));
    assert!(s.flush(Duration::from_secs(10)).await);
    let suppressed = s
        .stats()
        .suppressed
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(suppressed as usize, burst + 300 - kept);
}
