//! Service accounts watched from the Kubernetes API with kube-rs.
//!
//! There is no API server on the machines these tests run on, so a small fake one stands in:
//! HTTPS with a generated CA, a bearer token, and the API's list and watch contract for
//! `/api/v1/serviceaccounts` — a `ServiceAccountList` with a resourceVersion, then a chunked
//! stream of `{"type": ..., "object": ...}` lines from that version, `ERROR` with a 410 Status
//! when the version is too old, 401/404 as `Status` objects. The payloads have the shape the API
//! server sends (items without kind/apiVersion in lists, server-set metadata, the
//! `last-applied-configuration` annotation that `kubectl apply` adds).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::result_large_err
)]

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use parking_lot::Mutex;
use podiam_webhook::kubernetes::{self, KubeServiceAccounts};
use podiam_webhook::tls::{ReloadingCert, ensure_self_signed, server_config};
use podiam_webhook::{
    Method, NoAssociations, ServiceAccountSource, ServiceAccounts, Settings, Webhook, server,
};
use serde_json::{Value, json};
use tokio::sync::broadcast;

const TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.fake-service-account-token";
const ROLE: &str = "arn:aws:iam::111122223333:role/app";

/// A ServiceAccount as the API server returns it.
fn service_account(ns: &str, name: &str, rv: u64, annotations: &BTreeMap<String, String>) -> Value {
    let mut ann: serde_json::Map<String, Value> = annotations
        .iter()
        .map(|(k, v)| (k.clone(), Value::from(v.clone())))
        .collect();
    let applied = json!({"apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"annotations": annotations, "name": name, "namespace": ns}});
    ann.insert(
        "kubectl.kubernetes.io/last-applied-configuration".into(),
        Value::from(format!("{applied}\n")),
    );
    json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {
            "annotations": ann,
            "creationTimestamp": "2026-11-30T10:00:00Z",
            "name": name,
            "namespace": ns,
            "resourceVersion": rv.to_string(),
            "uid": format!("0c9a3f5e-5c1b-4a4e-9d4f-{rv:012}"),
        }
    })
}

#[derive(Default)]
struct ApiState {
    rv: u64,
    accounts: BTreeMap<(String, String), Value>,
    requests: Vec<String>,
    fail_auth: bool,
}

#[derive(Clone)]
struct FakeApi {
    state: Arc<Mutex<ApiState>>,
    events: broadcast::Sender<String>,
}

impl FakeApi {
    fn new() -> Self {
        Self {
            state: Arc::default(),
            events: broadcast::channel(1024).0,
        }
    }

    /// Creates or updates a service account; `watch` says whether watchers are told.
    fn put(&self, ns: &str, name: &str, annotations: &[(&str, &str)], watch: bool) {
        let ann: BTreeMap<String, String> = annotations
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let mut s = self.state.lock();
        s.rv += 1;
        let obj = service_account(ns, name, s.rv, &ann);
        let kind = if s
            .accounts
            .insert((ns.into(), name.into()), obj.clone())
            .is_some()
        {
            "MODIFIED"
        } else {
            "ADDED"
        };
        if watch {
            let _ = self
                .events
                .send(json!({"type": kind, "object": obj}).to_string());
        }
    }

    fn delete(&self, ns: &str, name: &str, watch: bool) {
        let mut s = self.state.lock();
        s.rv += 1;
        let rv = s.rv;
        if let Some(mut obj) = s.accounts.remove(&(ns.into(), name.into())) {
            obj["metadata"]["resourceVersion"] = Value::from(rv.to_string());
            if watch {
                let _ = self
                    .events
                    .send(json!({"type": "DELETED", "object": obj}).to_string());
            }
        }
    }

    /// Tells watchers their resourceVersion is too old (as after etcd compaction).
    fn expire_watches(&self) {
        let rv = self.state.lock().rv;
        let _ = self.events.send(
            json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "metadata": {},
                "status": "Failure", "message": format!("too old resource version: 1 ({rv})"),
                "reason": "Expired", "code": 410}})
            .to_string(),
        );
    }

    fn requests(&self) -> Vec<String> {
        self.state.lock().requests.clone()
    }
}

fn status(code: u16, reason: &str, message: &str) -> Response {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code});
    (
        StatusCode::from_u16(code).unwrap(),
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn authorized(api: &FakeApi, headers: &HeaderMap, uri: &str) -> Result<(), Response> {
    let mut s = api.state.lock();
    s.requests.push(uri.to_owned());
    let ok = !s.fail_auth
        && headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            == Some(&format!("Bearer {TOKEN}"));
    if ok {
        Ok(())
    } else {
        Err(status(401, "Unauthorized", "Unauthorized"))
    }
}

async fn list_or_watch(
    State(api): State<FakeApi>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    if let Err(r) = authorized(&api, &headers, &uri.to_string()) {
        return r;
    }
    if q.get("watch").is_some_and(|w| w == "true" || w == "1") {
        let rx = api.events.subscribe();
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(line) => {
                        return Some((
                            Ok::<_, std::io::Error>(Bytes::from(format!("{line}\n"))),
                            rx,
                        ));
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        return (
            [(header::CONTENT_TYPE, "application/json")],
            Body::from_stream(stream),
        )
            .into_response();
    }
    let s = api.state.lock();
    let items: Vec<Value> = s
        .accounts
        .values()
        .map(|o| {
            let mut o = o.clone();
            let m = o.as_object_mut().unwrap();
            m.remove("kind");
            m.remove("apiVersion");
            o
        })
        .collect();
    let body = json!({"kind": "ServiceAccountList", "apiVersion": "v1",
        "metadata": {"resourceVersion": s.rv.to_string()}, "items": items});
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn get_one(
    State(api): State<FakeApi>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Path((ns, name)): Path<(String, String)>,
) -> Response {
    if let Err(r) = authorized(&api, &headers, &uri.to_string()) {
        return r;
    }
    match api.state.lock().accounts.get(&(ns, name.clone())) {
        Some(o) => ([(header::CONTENT_TYPE, "application/json")], o.to_string()).into_response(),
        None => status(
            404,
            "NotFound",
            &format!("serviceaccounts \"{name}\" not found"),
        ),
    }
}

struct Cluster {
    api: FakeApi,
    kubeconfig: PathBuf,
    _dir: common::TempDir,
}

/// Starts the fake API server over HTTPS and writes a kubeconfig for it.
async fn start_api(token: &str) -> Cluster {
    let dir = common::temp_dir("api");
    let ss = ensure_self_signed(&dir, &["127.0.0.1".to_owned()]).unwrap();
    let tls = server_config(Arc::new(ReloadingCert::open(&ss.cert, &ss.key).unwrap())).unwrap();
    let api = FakeApi::new();
    let app = Router::new()
        .route("/api/v1/serviceaccounts", get(list_or_watch))
        .route(
            "/api/v1/namespaces/{ns}/serviceaccounts/{name}",
            get(get_one),
        )
        .with_state(api.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(server::serve_tls(
        listener,
        app,
        tls,
        std::future::pending(),
    ));
    let ca = base64::engine::general_purpose::STANDARD.encode(ss.ca_pem().unwrap());
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: https://127.0.0.1:{}\n    certificate-authority-data: {ca}\n\
             contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: webhook\ncurrent-context: fake\n\
             users:\n- name: webhook\n  user:\n    token: {token}\n",
            addr.port()
        ),
    )
    .unwrap();
    Cluster {
        api,
        kubeconfig,
        _dir: dir,
    }
}

async fn watching(
    c: &Cluster,
    config: Option<Arc<dyn ServiceAccountSource>>,
) -> Arc<KubeServiceAccounts> {
    let client = kubernetes::client(Some(&c.kubeconfig)).await.unwrap();
    let src = Arc::new(KubeServiceAccounts::new(
        client,
        "eks.amazonaws.com",
        config,
    ));
    src.spawn_watch();
    src
}

/// Waits until the source is synced and its watch request is open (events sent before that
/// would be lost, as they would be on a real API server between list and watch... except that a
/// real one replays from the resourceVersion).
async fn synced_and_watching(c: &Cluster, src: &KubeServiceAccounts) {
    assert!(
        src.wait_synced(Duration::from_secs(5)).await,
        "the first list never completed"
    );
    eventually("the watch request", || c.api.events.receiver_count() > 0).await;
}

async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn role_of(src: &dyn ServiceAccountSource, ns: &str, name: &str) -> Option<String> {
    src.get(ns, name)?
        .annotations
        .get("eks.amazonaws.com/role-arn")
        .cloned()
}

#[tokio::test]
async fn lists_then_follows_the_watch() {
    let c = start_api(TOKEN).await;
    c.api.put(
        "default",
        "app",
        &[
            ("eks.amazonaws.com/role-arn", ROLE),
            ("eks.amazonaws.com/audience", "sts.amazonaws.com"),
        ],
        false,
    );
    c.api.put("kube-system", "default", &[], false);
    let src = watching(&c, None).await;
    assert!(!src.is_ready() || src.len() == 2);
    synced_and_watching(&c, &src).await;
    assert!(src.is_ready());
    assert_eq!(src.len(), 2);
    assert_eq!(
        role_of(src.as_ref(), "default", "app").as_deref(),
        Some(ROLE)
    );
    // Known, without annotations: present, with nothing kept.
    let plain = src.get("kube-system", "default").unwrap();
    assert!(plain.annotations.is_empty(), "{plain:?}");
    // Only the webhook's prefix is kept, not kubectl's copy of the object.
    let app = src.get("default", "app").unwrap();
    assert_eq!(app.annotations.len(), 2, "{app:?}");
    assert!(src.get("default", "nope").is_none());

    // The watch starts from the list's resourceVersion, with the bearer token.
    let reqs = c.api.requests();
    assert!(
        reqs.iter()
            .any(|r| r.contains("watch=true") && r.contains("resourceVersion=2")),
        "{reqs:?}"
    );

    // ADDED, MODIFIED, DELETED.
    c.api.put(
        "team-a",
        "worker",
        &[(
            "eks.amazonaws.com/role-arn",
            "arn:aws:iam::111122223333:role/worker",
        )],
        true,
    );
    eventually("ADDED", || src.get("team-a", "worker").is_some()).await;
    c.api.put(
        "default",
        "app",
        &[(
            "eks.amazonaws.com/role-arn",
            "arn:aws:iam::111122223333:role/other",
        )],
        true,
    );
    eventually("MODIFIED", || {
        role_of(src.as_ref(), "default", "app").as_deref()
            == Some("arn:aws:iam::111122223333:role/other")
    })
    .await;
    assert_eq!(src.get("default", "app").unwrap().annotations.len(), 1);
    c.api.delete("team-a", "worker", true);
    eventually("DELETED", || src.get("team-a", "worker").is_none()).await;
    assert_eq!(src.len(), 2);
    assert_eq!(src.fetches(), 0, "no direct lookup without a grace period");
}

#[tokio::test]
async fn an_expired_watch_relists_and_drops_what_was_missed() {
    let c = start_api(TOKEN).await;
    c.api.put(
        "default",
        "gone",
        &[("eks.amazonaws.com/role-arn", ROLE)],
        false,
    );
    let src = watching(&c, None).await;
    synced_and_watching(&c, &src).await;
    assert!(src.get("default", "gone").is_some());
    // Changes the watch never delivered (the API server compacted past them)...
    c.api.delete("default", "gone", false);
    c.api.put(
        "default",
        "new",
        &[("eks.amazonaws.com/role-arn", ROLE)],
        false,
    );
    assert!(src.get("default", "gone").is_some());
    // ...are picked up by the relist that a 410 forces.
    let lists_before = c
        .api
        .requests()
        .iter()
        .filter(|r| !r.contains("watch="))
        .count();
    c.api.expire_watches();
    eventually("relist", || {
        src.get("default", "new").is_some() && src.get("default", "gone").is_none()
    })
    .await;
    let lists_after = c
        .api
        .requests()
        .iter()
        .filter(|r| !r.contains("watch="))
        .count();
    assert!(lists_after > lists_before, "no relist after 410");
}

#[tokio::test]
async fn a_wrong_token_is_never_ready_and_knows_nothing() {
    let c = start_api("not-the-token").await;
    c.api.put(
        "default",
        "app",
        &[("eks.amazonaws.com/role-arn", ROLE)],
        false,
    );
    let src = watching(&c, None).await;
    assert!(!src.wait_synced(Duration::from_millis(500)).await);
    assert!(!src.is_ready());
    assert!(src.get("default", "app").is_none());
    // The direct lookup is refused too: no answer within the grace period.
    assert!(
        src.wait_for("default", "app", Duration::from_millis(200))
            .await
            .is_none()
    );
    assert!(c.api.requests().len() >= 2);
}

#[tokio::test]
async fn an_unreachable_api_server_is_not_ready() {
    let dir = common::temp_dir("unreachable");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let kc = dir.join("kubeconfig");
    std::fs::write(&kc, format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: x\n  cluster:\n    server: https://127.0.0.1:{port}\n    insecure-skip-tls-verify: true\n\
         contexts:\n- name: x\n  context:\n    cluster: x\n    user: u\ncurrent-context: x\nusers:\n- name: u\n  user:\n    token: t\n")).unwrap();
    let client = kubernetes::client(Some(&kc)).await.unwrap();
    let src = Arc::new(KubeServiceAccounts::new(client, "eks.amazonaws.com", None));
    src.spawn_watch();
    assert!(!src.wait_synced(Duration::from_millis(300)).await);
    assert!(
        src.wait_for("default", "app", Duration::from_millis(100))
            .await
            .is_none()
    );
}

#[tokio::test]
async fn bad_kubeconfigs_are_errors() {
    let dir = common::temp_dir("badkc");
    let missing = dir.join("missing");
    let Err(e) = kubernetes::client(Some(&missing)).await else {
        panic!("a missing kubeconfig was accepted")
    };
    assert!(e.contains("missing"), "{e}");
    let garbage = dir.join("garbage");
    std::fs::write(&garbage, "clusters: [{{{").unwrap();
    assert!(kubernetes::client(Some(&garbage)).await.is_err());
    let no_context = dir.join("no-context");
    std::fs::write(
        &no_context,
        "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n",
    )
    .unwrap();
    assert!(kubernetes::client(Some(&no_context)).await.is_err());
}

/// A CREATE review of a pod of `ns` running as `sa`, as the API server sends it.
fn review(ns: &str, sa: &str) -> Vec<u8> {
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": "app-", "namespace": ns},
        "spec": {"serviceAccountName": sa, "containers": [{"name": "app", "image": "app:1"}]}});
    serde_json::to_vec(&common::review(
        "705ab4f5-6393-11e8-b7cc-42010a800002",
        ns,
        "CREATE",
        &pod,
    ))
    .unwrap()
}

fn webhook(src: Arc<KubeServiceAccounts>, grace: Duration) -> Webhook {
    Webhook::new(Settings::default(), src, Arc::new(NoAssociations)).with_lookup_grace(grace)
}

#[tokio::test]
async fn the_grace_period_admits_a_pod_created_right_after_its_service_account() {
    let c = start_api(TOKEN).await;
    let src = watching(&c, None).await;
    synced_and_watching(&c, &src).await;
    let w = webhook(Arc::clone(&src), Duration::from_secs(2));

    // The service account's ADDED event arrives 150 ms after the pod's admission starts; it is
    // not yet readable by a direct GET either (as if the API server's cache lagged).
    let api = c.api.clone();
    let started = Instant::now();
    let late = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(150)).await;
        api.put(
            "team-b",
            "late",
            &[("eks.amazonaws.com/role-arn", ROLE)],
            true,
        );
    });
    let out = w.admit(&review("team-b", "late")).await.unwrap();
    late.await.unwrap();
    assert_eq!(out.method, Method::Irsa);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(140) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
    assert_eq!(w.metrics().lookups_waited(), (1, 0));
    assert_eq!(w.metrics().missing_service_accounts(), 0);

    // A service account that never appears: the pod is admitted unchanged after the grace.
    let w_short = webhook(Arc::clone(&src), Duration::from_millis(200));
    let started = Instant::now();
    let out = w_short.admit(&review("team-b", "never")).await.unwrap();
    assert_eq!(out.method, Method::None);
    assert!(out.response["response"].get("patch").is_none());
    assert!(started.elapsed() >= Duration::from_millis(190));
    assert_eq!(w_short.metrics().lookups_waited(), (0, 1));
    assert_eq!(w_short.metrics().missing_service_accounts(), 1);
}

/// A synced source, and a service account `default/unseen` that exists on the API server but
/// that the watch has not delivered.
async fn synced_with_an_unseen_account() -> (Cluster, Arc<KubeServiceAccounts>) {
    let c = start_api(TOKEN).await;
    let src = watching(&c, None).await;
    assert!(src.wait_synced(Duration::from_secs(5)).await);
    c.api.put(
        "default",
        "unseen",
        &[("eks.amazonaws.com/role-arn", ROLE)],
        false,
    );
    (c, src)
}

#[tokio::test]
async fn without_a_grace_period_an_unknown_service_account_is_not_waited_for() {
    let (_c, src) = synced_with_an_unseen_account().await;
    let w = webhook(Arc::clone(&src), Duration::ZERO);
    let out = w.admit(&review("default", "unseen")).await.unwrap();
    assert_eq!(out.method, Method::None);
    assert_eq!(src.fetches(), 0);
    assert_eq!(w.metrics().lookups_waited(), (0, 0));
    assert_eq!(w.metrics().missing_service_accounts(), 1);
}

#[tokio::test]
async fn a_lagging_watch_is_covered_by_a_direct_lookup() {
    let (c, src) = synced_with_an_unseen_account().await;
    let w = webhook(Arc::clone(&src), Duration::from_secs(2));
    let started = Instant::now();
    let out = w.admit(&review("default", "unseen")).await.unwrap();
    assert_eq!(out.method, Method::Irsa);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(src.fetches(), 1);
    let reqs = c.api.requests();
    assert!(
        reqs.iter()
            .any(|r| r.starts_with("/api/v1/namespaces/default/serviceaccounts/unseen")),
        "{reqs:?}"
    );
    // The rate limit bounds direct lookups: 40 misses at once get the rest of the burst of 20
    // (plus what refilled at 10/s since the first).
    let misses: Vec<_> = (0..40)
        .map(|i| {
            let src = Arc::clone(&src);
            tokio::spawn(async move {
                src.wait_for(
                    "default",
                    &format!("absent-{i}"),
                    Duration::from_millis(300),
                )
                .await
            })
        })
        .collect();
    for m in misses {
        assert!(m.await.unwrap().is_none());
    }
    let fetched = src.fetches();
    assert!((20..=24).contains(&fetched), "{fetched} direct lookups");
}

#[tokio::test]
async fn config_map_entries_are_layered_under_the_api() {
    let c = start_api(TOKEN).await;
    c.api.put(
        "default",
        "annotated",
        &[("eks.amazonaws.com/role-arn", ROLE)],
        false,
    );
    c.api.put("default", "plain", &[], false);
    let file = ServiceAccounts::parse(
        r#"{"default/plain": {"RoleARN": "arn:aws:iam::111122223333:role/from-config"},
            "default/annotated": {"RoleARN": "arn:aws:iam::111122223333:role/loses", "TokenExpiration": 3600},
            "*/anywhere": {"RoleARN": "arn:aws:iam::111122223333:role/wild"}}"#,
    )
    .unwrap();
    let src = watching(&c, Some(Arc::new(file))).await;
    assert!(src.wait_synced(Duration::from_secs(5)).await);
    let w = webhook(Arc::clone(&src), Duration::ZERO);
    let patched = |ns: &str, sa: &str| {
        let out = w.review_bytes(&review(ns, sa)).unwrap();
        let patch = common::decoded_patch(&out.response).unwrap_or_default();
        (out.method, serde_json::to_string(&patch).unwrap())
    };
    // Annotations win over the ConfigMap entry.
    let (m, p) = patched("default", "annotated");
    assert_eq!(m, Method::Irsa);
    assert!(p.contains(ROLE) && !p.contains("role/loses"), "{p}");
    // No role annotation: the ConfigMap entry applies.
    let (m, p) = patched("default", "plain");
    assert_eq!(m, Method::Irsa);
    assert!(p.contains("role/from-config"), "{p}");
    // Not in the API, but a `*/name` entry exists.
    let (m, p) = patched("other", "anywhere");
    assert_eq!(m, Method::Irsa);
    assert!(p.contains("role/wild"), "{p}");
    let (m, _) = patched("other", "nothing");
    assert_eq!(m, Method::None);
}

#[tokio::test]
async fn readyz_follows_the_first_list() {
    let c = start_api(TOKEN).await;
    c.state_fail_auth(true);
    let src = watching(&c, None).await;
    let w = Arc::new(webhook(Arc::clone(&src), Duration::ZERO));
    let app = server::router(Arc::clone(&w));
    let get = |app: Router| async move {
        use tower::ServiceExt as _;
        let r = app
            .oneshot(
                axum::http::Request::get("/readyz")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        r.status().as_u16()
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(get(app.clone()).await, 503);
    // Credentials fixed (e.g. RBAC granted): the watcher's retry lists and the webhook is ready.
    c.state_fail_auth(false);
    assert!(
        src.wait_synced(Duration::from_secs(10)).await,
        "never recovered"
    );
    assert_eq!(get(app).await, 200);
}

impl Cluster {
    fn state_fail_auth(&self, fail: bool) {
        self.api.state.lock().fail_auth = fail;
    }
}

#[tokio::test]
async fn a_file_source_never_waits() {
    let mut sas = ServiceAccounts::default();
    sas.insert_annotations(
        "default",
        "app",
        [("eks.amazonaws.com/role-arn".to_owned(), ROLE.to_owned())].into(),
    );
    let w = Webhook::new(Settings::default(), Arc::new(sas), Arc::new(NoAssociations))
        .with_lookup_grace(Duration::from_secs(5));
    assert!(w.is_ready());
    let started = Instant::now();
    let out = w.admit(&review("default", "missing")).await.unwrap();
    assert_eq!(out.method, Method::None);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(w.metrics().lookups_waited(), (0, 0));
    assert_eq!(w.metrics().missing_service_accounts(), 1);
    assert_eq!(
        w.admit(&review("default", "app")).await.unwrap().method,
        Method::Irsa
    );
}

#[tokio::test]
async fn malformed_reviews_are_refused_before_anything_waits() {
    let c = start_api(TOKEN).await;
    let src = watching(&c, None).await;
    assert!(src.wait_synced(Duration::from_secs(5)).await);
    let w = webhook(Arc::clone(&src), Duration::from_secs(5));
    let mut bad = Vec::new();
    for (field, value) in [
        ("uid", json!("")),
        ("apiVersion", json!("admission.k8s.io/v2")),
    ] {
        let mut r: Value = serde_json::from_slice(&review("default", "ghost")).unwrap();
        if field == "uid" {
            r["request"]["uid"] = value;
        } else {
            r[field] = value;
        }
        bad.push(serde_json::to_vec(&r).unwrap());
    }
    for body in bad {
        let started = Instant::now();
        assert!(w.admit(&body).await.is_err());
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    }
    assert_eq!(src.fetches(), 0, "no lookup spent on a malformed review");
    assert_eq!(w.metrics().lookups_waited(), (0, 0));
}
