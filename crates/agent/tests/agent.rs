//! The agent over real HTTP in front of a fake EKS Auth that verifies SigV4.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

mod common;

use std::time::Duration;

use common::*;
use podiam_agent::Clock;

#[tokio::test]
async fn success_shape_and_expiration_format() {
    let fake = fake_eks_auth(Clock::system()).await;
    let agent = agent(&fake, |_| {}).await;
    let t = token(&fake.clock);
    let r = creds(&agent, &t).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v = r.json();
    let obj = v.as_object().unwrap();
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "AccessKeyId",
            "AccountId",
            "Expiration",
            "SecretAccessKey",
            "Token"
        ]
    );
    assert_eq!(v["AccessKeyId"], "ASIA00000001");
    assert_eq!(v["SecretAccessKey"], "secret-1");
    assert_eq!(v["Token"], "session-token-1");
    assert_eq!(v["AccountId"], "111122223333");
    let exp = v["Expiration"].as_str().unwrap();
    assert_eq!(exp.len(), 20, "{exp}");
    assert!(exp.ends_with('Z') && exp.as_bytes()[10] == b'T', "{exp}");
    let parsed =
        time::OffsetDateTime::parse(exp, &time::format_description::well_known::Rfc3339).unwrap();
    let expected = fake.clock.now_secs() + 3600;
    assert!((parsed.unix_timestamp() - expected).abs() <= 2);
    // The upstream call was signed by the node credentials for eks-auth in the region.
    assert_eq!(
        fake.bad_signatures
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    assert_eq!(fake.signers.lock()[0], (NODE_AKID.to_owned(), None));
    assert_eq!(fake.tokens.lock()[0], t);
    // Any method is accepted, like the real agent.
    let addr = agent.credential_addrs()[0];
    let r = raw(
        addr,
        "POST",
        "/v1/credentials",
        Some(&addr.to_string()),
        Some(&t),
    )
    .await;
    assert_eq!(r.status, 200);
    agent.shutdown().await;
}

#[tokio::test]
async fn session_token_is_signed_and_sent() {
    let fake = fake_eks_auth(Clock::system()).await;
    fake.secrets.lock().insert("ASIANODE".into(), "s".into());
    let agent = agent(&fake, |c| {
        c.static_credentials = Some(podiam_agent::AwsCredentials {
            session_token: Some("node-session".into()),
            ..podiam_agent::AwsCredentials::new("ASIANODE", "s")
        });
    })
    .await;
    assert_eq!(creds(&agent, &token(&fake.clock)).await.status, 200);
    assert_eq!(
        fake.signers.lock()[0],
        ("ASIANODE".to_owned(), Some("node-session".to_owned()))
    );
}

#[tokio::test]
async fn cache_hit_makes_no_upstream_call() {
    let fake = fake_eks_auth(Clock::system()).await;
    let agent = agent(&fake, |_| {}).await;
    let t = token(&fake.clock);
    let first = creds(&agent, &t).await;
    let second = creds(&agent, &t).await;
    assert_eq!(second.status, 200);
    assert_eq!(first.body, second.body);
    assert_eq!(fake.calls(), 1);
    assert_eq!(agent.cache_len(), 1);
    assert_eq!(agent.metrics().cache_counts(), (1, 1, 0));
    // Another token is another entry.
    assert_eq!(creds(&agent, &token(&fake.clock)).await.status, 200);
    assert_eq!(fake.calls(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_are_coalesced_into_one_call() {
    let fake = fake_eks_auth(Clock::system()).await;
    *fake.delay.lock() = Duration::from_millis(300);
    let agent = agent(&fake, |_| {}).await;
    let t = token(&fake.clock);
    let url = format!("http://{}/v1/credentials", agent.credential_addrs()[0]);
    let client = reqwest::Client::new();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..500 {
        let (client, url, t) = (client.clone(), url.clone(), t.clone());
        set.spawn(async move {
            let r = client
                .get(&url)
                .header("authorization", t)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        });
    }
    let mut bodies = std::collections::HashSet::new();
    while let Some(r) = set.join_next().await {
        let (status, body) = r.unwrap();
        assert_eq!(status, 200, "{body}");
        bodies.insert(body);
    }
    assert_eq!(fake.calls(), 1);
    assert_eq!(bodies.len(), 1);
}

#[tokio::test]
async fn coalesced_waiters_share_an_error() {
    let fake = fake_eks_auth(Clock::system()).await;
    *fake.delay.lock() = Duration::from_millis(200);
    fake.set_mode(Mode::Fail {
        status: 404,
        code: "ResourceNotFoundException",
        message: "no association",
    });
    let agent = agent(&fake, |_| {}).await;
    let t = token(&fake.clock);
    let rs = futures_join(&agent, &t, 20).await;
    assert!(rs.iter().all(|r| r.status == 404));
    assert_eq!(fake.calls(), 1);
}

async fn futures_join(agent: &podiam_agent::Agent, t: &str, n: usize) -> Vec<Raw> {
    let mut set = tokio::task::JoinSet::new();
    let addr = agent.credential_addrs()[0];
    for _ in 0..n {
        let t = t.to_owned();
        set.spawn(async move {
            raw(
                addr,
                "GET",
                "/v1/credentials",
                Some(&addr.to_string()),
                Some(&t),
            )
            .await
        });
    }
    let mut out = Vec::new();
    while let Some(r) = set.join_next().await {
        out.push(r.unwrap());
    }
    out
}

#[tokio::test]
async fn wrong_host_is_forbidden() {
    let fake = fake_eks_auth(Clock::system()).await;
    let agent = agent(&fake, |_| {}).await;
    let addr = agent.credential_addrs()[0];
    let t = token(&fake.clock);
    let r = raw(
        addr,
        "GET",
        "/v1/credentials",
        Some("evil.example:80"),
        Some(&t),
    )
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(
        r.body,
        "Access Denied. Called agent through invalid address, please use either [127.0.0.1] address not evil.example\n"
    );
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    let r = raw(addr, "GET", "/v1/credentials", Some("[::1]:80"), Some(&t)).await;
    assert_eq!(r.status, 403);
    assert!(r.body.ends_with("address not ::1\n"), "{}", r.body);
    // HTTP/1.1 without Host is refused by hyper itself or by the check; never served.
    let r = raw(addr, "GET", "/v1/credentials", None, Some(&t)).await;
    assert_ne!(r.status, 200);
    // Host without a port is accepted.
    let r = raw(addr, "GET", "/v1/credentials", Some("127.0.0.1"), Some(&t)).await;
    assert_eq!(r.status, 200);
    assert_eq!(fake.calls(), 1);
}

#[tokio::test]
async fn bad_tokens_are_400_with_the_reason() {
    let fake = fake_eks_auth(Clock::system()).await;
    let agent = agent(&fake, |_| {}).await;
    let addr = agent.credential_addrs()[0];
    let host = addr.to_string();
    let r = raw(addr, "GET", "/v1/credentials", Some(&host), None).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (400, "Service account token cannot be empty\n")
    );
    let r = creds(&agent, "garbage").await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body,
        "Service account token cannot be parsed: token is malformed: token contains an invalid number of segments\n"
    );
    let r = creds(&agent, "e30.!!!.x").await;
    assert_eq!(r.status, 400);
    assert!(
        r.body
            .starts_with("Service account token cannot be parsed: "),
        "{}",
        r.body
    );
    let r = creds(&agent, &token_with(&fake.clock, -60, -120)).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body,
        "Service account token failed basic claim validations: token has invalid claims: token is expired\n"
    );
    let r = creds(&agent, &token_with(&fake.clock, 3600, 600)).await;
    assert_eq!(r.status, 400);
    assert!(r.body.ends_with("token is not valid yet\n"), "{}", r.body);
    assert_eq!(fake.calls(), 0);
}

#[tokio::test]
async fn upstream_access_denied_passes_through_and_is_not_cached() {
    let fake = fake_eks_auth(Clock::system()).await;
    fake.set_mode(Mode::Fail {
        status: 400,
        code: "AccessDeniedException",
        message: "not allowed",
    });
    let agent = agent(&fake, |_| {}).await;
    let t = token(&fake.clock);
    let r = creds(&agent, &t).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body,
        "[req-1]: (AccessDeniedException): not allowed, fault: client\n"
    );
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    assert_eq!(agent.cache_len(), 0);
    let r = creds(&agent, &t).await;
    assert_eq!(r.status, 400);
    assert_eq!(fake.calls(), 2, "errors are not cached");
    // Once allowed, the same token is served.
    fake.ok();
    assert_eq!(creds(&agent, &t).await.status, 200);
}

#[tokio::test]
async fn upstream_statuses_pass_through_and_5xx_is_retried() {
    let fake = fake_eks_auth(Clock::system()).await;
    fake.set_mode(Mode::Fail {
        status: 404,
        code: "ResourceNotFoundException",
        message: "no association",
    });
    let agent = agent(&fake, |_| {}).await;
    let r = creds(&agent, &token(&fake.clock)).await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.body,
        "[req-1]: (ResourceNotFoundException): no association, fault: client\n"
    );
    assert_eq!(fake.calls(), 1, "4xx is not retried");

    fake.set_mode(Mode::Fail {
        status: 503,
        code: "ServiceUnavailableException",
        message: "later",
    });
    let r = creds(&agent, &token(&fake.clock)).await;
    assert_eq!(r.status, 503);
    assert_eq!(
        r.body,
        "[req-4]: (ServiceUnavailableException): later, fault: server\n"
    );
    assert_eq!(fake.calls(), 4, "1 + 2 retries");

    fake.set_mode(Mode::Fail {
        status: 429,
        code: "ThrottlingException",
        message: "slow down",
    });
    let r = creds(&agent, &token(&fake.clock)).await;
    assert_eq!(r.status, 429);
    assert_eq!(fake.calls(), 5, "throttling is not retried");
}

#[tokio::test]
async fn unreachable_upstream_is_500() {
    let fake = fake_eks_auth(Clock::system()).await;
    // A port nobody listens on.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", l.local_addr().unwrap());
    drop(l);
    let agent = agent(&fake, |c| c.endpoint = Some(dead)).await;
    let r = creds(&agent, &token(&fake.clock)).await;
    assert_eq!(r.status, 500);
    assert!(r.body.starts_with("[]: (RequestError): "), "{}", r.body);
    assert!(r.body.ends_with(", fault: server\n"));
    assert_eq!(agent.metrics().upstream_calls(), 3);
}

#[tokio::test]
async fn recoverable_refresh_failure_keeps_serving_the_cached_credentials() {
    let fake = fake_eks_auth(Clock::system()).await;
    let agent = agent(&fake, |_| {}).await;
    let t = token(&fake.clock);
    let first = creds(&agent, &t).await;
    assert_eq!(first.status, 200);
    // Credentials live 1 h; the refresh is due after at most 44 min.
    fake.clock.advance(Duration::from_secs(50 * 60));
    fake.set_mode(Mode::Fail {
        status: 500,
        code: "InternalServerException",
        message: "boom",
    });
    agent.refresh_now().await;
    assert_eq!(fake.calls(), 4, "the refresh was attempted (with retries)");
    let r = creds(&agent, &t).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body, first.body,
        "the cached credentials are still served"
    );
    assert_eq!(fake.calls(), 4);
    assert_eq!(agent.cache_len(), 1);
    let m = agent.render_metrics();
    assert!(
        m.contains(
            "pod_identity_cache_errors{type=\"Recoverable\",code=\"InternalServerException\"} 1"
        ),
        "{m}"
    );
    // Not retried before its jittered retry time...
    agent.refresh_now().await;
    assert_eq!(fake.calls(), 4);
    // ...then retried; success replaces the credentials.
    fake.ok();
    fake.clock.advance(Duration::from_secs(5 * 60));
    agent.refresh_now().await;
    assert_eq!(fake.calls(), 5);
    let r = creds(&agent, &t).await;
    assert_eq!(r.json()["AccessKeyId"], "ASIA00000005");
    assert_eq!(fake.calls(), 5);
}

#[tokio::test]
async fn recoverable_failure_stops_serving_at_expiry() {
    let fake = fake_eks_auth(Clock::system()).await;
    let agent = agent(&fake, |_| {}).await;
    let t = token(&fake.clock);
    assert_eq!(creds(&agent, &t).await.status, 200);
    fake.set_mode(Mode::Fail {
        status: 500,
        code: "InternalServerException",
        message: "boom",
    });
    // 50 s before expiry the entry is still served; at 10 s before, it is not.
    fake.clock.advance(Duration::from_secs(3600 - 50));
    let calls = fake.calls();
    assert_eq!(creds(&agent, &t).await.status, 200);
    assert_eq!(fake.calls(), calls);
    fake.clock.advance(Duration::from_secs(40));
    let r = creds(&agent, &t).await;
    assert_eq!(r.status, 500, "{}", r.body);
    assert!(fake.calls() > calls);
}

#[tokio::test]
async fn non_recoverable_refresh_failure_evicts() {
    let fake = fake_eks_auth(Clock::system()).await;
    let agent = agent(&fake, |_| {}).await;
    let t = token(&fake.clock);
    let other = token(&fake.clock);
    assert_eq!(creds(&agent, &t).await.status, 200);
    fake.clock.advance(Duration::from_secs(50 * 60));
    assert_eq!(
        creds(&agent, &other).await.status,
        200,
        "fresh entry, not due yet"
    );
    fake.deny.lock().insert(t.clone());
    agent.refresh_now().await;
    assert_eq!(
        agent.cache_len(),
        1,
        "only the denied token's entry is evicted"
    );
    let m = agent.render_metrics();
    assert!(
        m.contains("pod_identity_cache_state{state=\"evicted\"} 1"),
        "{m}"
    );
    assert!(
        m.contains(
            "pod_identity_cache_errors{type=\"NonRecoverable\",code=\"AccessDeniedException\"} 1"
        ),
        "{m}"
    );
    let calls = fake.calls();
    let r = creds(&agent, &t).await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("(AccessDeniedException)"));
    assert_eq!(
        fake.calls(),
        calls + 1,
        "the evicted token goes upstream again"
    );
    let r = creds(&agent, &other).await;
    assert_eq!(r.status, 200);
    assert_eq!(fake.calls(), calls + 1);
}

#[tokio::test]
async fn background_refresh_replaces_due_credentials() {
    let fake = fake_eks_auth(Clock::system()).await;
    let agent = agent(&fake, |c| c.refresh_interval = Duration::from_millis(20)).await;
    let t = token(&fake.clock);
    assert_eq!(
        creds(&agent, &t).await.json()["AccessKeyId"],
        "ASIA00000001"
    );
    fake.clock.advance(Duration::from_secs(50 * 60));
    assert!(
        eventually(|| fake.calls() >= 2).await,
        "the janitor refreshed the entry"
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    let r = creds(&agent, &t).await;
    assert_eq!(r.json()["AccessKeyId"], "ASIA00000002");
    assert_eq!(fake.calls(), 2);
    assert!(
        agent
            .render_metrics()
            .contains("podiam_agent_cache_refreshes_total 1")
    );
}

#[tokio::test]
async fn bad_requests_never_evict_another_tokens_entry() {
    let fake = fake_eks_auth(Clock::system()).await;
    let agent = agent(&fake, |_| {}).await;
    let good = token(&fake.clock);
    assert_eq!(creds(&agent, &good).await.status, 200);
    // Garbage, expired, and a token EKS Auth rejects as invalid.
    assert_eq!(creds(&agent, "x.y").await.status, 400);
    assert_eq!(
        creds(&agent, &token_with(&fake.clock, -5, -10))
            .await
            .status,
        400
    );
    let bad = token(&fake.clock);
    fake.deny.lock().insert(bad.clone());
    assert_eq!(creds(&agent, &bad).await.status, 400);
    assert_eq!(agent.cache_len(), 1);
    let calls = fake.calls();
    assert_eq!(creds(&agent, &good).await.status, 200);
    assert_eq!(fake.calls(), calls, "still a hit");
}

#[tokio::test]
async fn cached_entry_of_an_expired_token_is_refused() {
    let fake = fake_eks_auth(Clock::system()).await;
    let agent = agent(&fake, |_| {}).await;
    let t = token_with(&fake.clock, 600, -10);
    assert_eq!(creds(&agent, &t).await.status, 200);
    fake.clock.advance(Duration::from_secs(601));
    let r = creds(&agent, &t).await;
    assert_eq!(r.status, 400);
    assert!(r.body.ends_with("token is expired\n"));
    assert_eq!(fake.calls(), 1);
    agent.refresh_now().await;
    assert_eq!(
        agent.cache_len(),
        0,
        "the janitor drops entries of expired tokens"
    );
    assert_eq!(fake.calls(), 1);
}

#[tokio::test]
async fn short_lived_credentials_are_not_served_in_their_last_15_seconds() {
    let fake = fake_eks_auth(Clock::system()).await;
    fake.set_mode(Mode::Ok {
        lifetime: Duration::from_secs(60),
    });
    let agent = agent(&fake, |_| {}).await;
    let t = token(&fake.clock);
    assert_eq!(creds(&agent, &t).await.status, 200);
    fake.clock.advance(Duration::from_secs(40));
    assert_eq!(creds(&agent, &t).await.status, 200);
    assert_eq!(fake.calls(), 1);
    fake.clock.advance(Duration::from_secs(6));
    let r = creds(&agent, &t).await;
    assert_eq!(r.json()["AccessKeyId"], "ASIA00000002");
    assert_eq!(fake.calls(), 2);
}

#[tokio::test]
async fn inbound_rate_limit_answers_429() {
    let fake = fake_eks_auth(Clock::system()).await;
    let agent = agent(&fake, |c| {
        c.inbound_rps = 1;
        c.inbound_burst = 3;
    })
    .await;
    let t = token(&fake.clock);
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(creds(&agent, &t).await.status);
    }
    assert_eq!(&statuses[..3], &[200, 200, 200]);
    assert!(statuses[3..].iter().all(|s| *s == 429), "{statuses:?}");
    let r = creds(&agent, &t).await;
    assert_eq!(r.body, "Too Many Requests\n");
    assert!(
        agent
            .render_metrics()
            .contains("pod_identity_http_response{code=\"429\"}")
    );
}

#[tokio::test]
async fn lru_bound_evicts_the_least_recently_used() {
    let fake = fake_eks_auth(Clock::system()).await;
    let agent = agent(&fake, |c| c.max_cache_size = 2).await;
    let (a, b, c) = (token(&fake.clock), token(&fake.clock), token(&fake.clock));
    assert_eq!(creds(&agent, &a).await.status, 200);
    assert_eq!(creds(&agent, &b).await.status, 200);
    assert_eq!(creds(&agent, &a).await.status, 200); // a is now the most recent
    assert_eq!(fake.calls(), 2);
    assert_eq!(creds(&agent, &c).await.status, 200); // evicts b
    assert_eq!(fake.calls(), 3);
    assert_eq!(agent.cache_len(), 2);
    assert_eq!(creds(&agent, &a).await.status, 200);
    assert_eq!(creds(&agent, &c).await.status, 200);
    assert_eq!(fake.calls(), 3, "a and c are cached");
    assert_eq!(creds(&agent, &b).await.status, 200);
    assert_eq!(fake.calls(), 4, "b was evicted");
    assert_eq!(agent.cache_len(), 2);
    assert!(
        agent
            .render_metrics()
            .contains("pod_identity_cache_state{state=\"evicted\"} 2")
    );
}

#[tokio::test]
async fn cache_can_be_disabled() {
    let fake = fake_eks_auth(Clock::system()).await;
    let agent = agent(&fake, |c| c.max_cache_size = 0).await;
    let t = token(&fake.clock);
    assert_eq!(creds(&agent, &t).await.status, 200);
    assert_eq!(creds(&agent, &t).await.status, 200);
    assert_eq!(fake.calls(), 2);
    assert_eq!(agent.cache_len(), 0);
}

#[tokio::test]
async fn probes_metrics_and_unknown_paths() {
    let fake = fake_eks_auth(Clock::system()).await;
    let agent = agent(&fake, |_| {}).await;
    let t = token(&fake.clock);
    assert_eq!(creds(&agent, &t).await.status, 200);
    assert_eq!(creds(&agent, &t).await.status, 200);
    assert_eq!(creds(&agent, "bad").await.status, 400);
    let addr = agent.credential_addrs()[0];
    let r = raw(addr, "GET", "/", Some(&addr.to_string()), None).await;
    assert_eq!((r.status, r.body.as_str()), (404, "404 page not found\n"));
    let r = raw(
        addr,
        "GET",
        "/v1/credentials/x",
        Some(&addr.to_string()),
        Some(&t),
    )
    .await;
    assert_eq!(r.status, 404);

    let probe = agent.probe_addr();
    assert!(probe.ip().is_loopback());
    assert_eq!(
        raw(probe, "GET", "/healthz", Some("localhost"), None)
            .await
            .status,
        200
    );
    assert_eq!(
        raw(probe, "GET", "/readyz", Some("localhost"), None)
            .await
            .status,
        200
    );
    assert_eq!(
        raw(probe, "GET", "/metrics", Some("localhost"), None)
            .await
            .status,
        404
    );

    let m = raw(
        agent.metrics_addr().unwrap(),
        "GET",
        "/metrics",
        Some("localhost"),
        None,
    )
    .await;
    assert_eq!(m.status, 200);
    assert!(m.header("content-type").unwrap().starts_with("text/plain"));
    for line in [
        "# TYPE pod_identity_http_response counter",
        "pod_identity_http_response{code=\"200\"} 2",
        "pod_identity_http_response{code=\"400\"} 1",
        "pod_identity_http_response{code=\"404\"} 2",
        "pod_identity_cache_state{state=\"hit\"} 1",
        "pod_identity_cache_state{state=\"miss\"} 1",
        "pod_identity_cache_state{state=\"evicted\"} 0",
        "# TYPE podiam_agent_upstream_latency_seconds histogram",
        "podiam_agent_upstream_latency_seconds_bucket{le=\"+Inf\"} 1",
        "podiam_agent_upstream_latency_seconds_count 1",
        "podiam_agent_upstream_calls_total 1",
        "podiam_agent_cache_entries 1",
        "podiam_agent_ready 1",
    ] {
        assert!(
            m.body.lines().any(|l| l == line),
            "missing {line:?} in\n{}",
            m.body
        );
    }
    let r = raw(
        agent.metrics_addr().unwrap(),
        "GET",
        "/readyz",
        Some("localhost"),
        None,
    )
    .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn not_ready_without_node_credentials() {
    let fake = fake_eks_auth(Clock::system()).await;
    let agent = agent(&fake, |c| {
        c.static_credentials = None;
        c.metrics_port = None;
    })
    .await;
    assert!(agent.metrics_addr().is_none());
    assert!(!agent.is_ready());
    let r = raw(
        agent.probe_addr(),
        "GET",
        "/readyz",
        Some("localhost"),
        None,
    )
    .await;
    assert_eq!(r.status, 503);
    assert_eq!(
        raw(
            agent.probe_addr(),
            "GET",
            "/healthz",
            Some("localhost"),
            None
        )
        .await
        .status,
        200
    );
    let r = creds(&agent, &token(&fake.clock)).await;
    assert_eq!(r.status, 500);
    assert!(
        r.body.starts_with("[]: (NodeCredentialsUnavailable): "),
        "{}",
        r.body
    );
    assert_eq!(fake.calls(), 0);
}

#[tokio::test]
async fn bind_errors_and_config_errors() {
    let fake = fake_eks_auth(Clock::system()).await;
    let mut c = config(&fake);
    c.cluster_name = "bad/name".into();
    assert!(matches!(
        podiam_agent::start(c).await,
        Err(podiam_agent::Error::Config(_))
    ));
    // An IPv6 address this host does not have is skipped; an IPv4 one is an error.
    let mut c = config(&fake);
    c.bind = vec![
        "127.0.0.1".parse().unwrap(),
        "fd00:ec2::23".parse().unwrap(),
    ];
    let a = podiam_agent::start(c).await.unwrap();
    assert_eq!(a.credential_addrs().len(), 1);
    a.shutdown().await;
    let mut c = config(&fake);
    c.bind = vec!["fd00:ec2::23".parse().unwrap()];
    assert!(matches!(
        podiam_agent::start(c).await,
        Err(podiam_agent::Error::NoListener)
    ));
    let mut c = config(&fake);
    c.bind = vec!["192.0.2.77".parse().unwrap()];
    assert!(matches!(
        podiam_agent::start(c).await,
        Err(podiam_agent::Error::Bind { .. })
    ));
    // A CA bundle that cannot be used stops the start, naming it.
    let mut c = config(&fake);
    c.env.set("AWS_CA_BUNDLE", "/nonexistent/ca.pem");
    match podiam_agent::start(c).await {
        Err(podiam_agent::Error::Config(m)) => assert!(
            m.starts_with("cannot read the CA bundle \"/nonexistent/ca.pem\" (from AWS_CA_BUNDLE)"),
            "{m}"
        ),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn shutdown_closes_the_listeners() {
    let fake = fake_eks_auth(Clock::system()).await;
    let agent = agent(&fake, |_| {}).await;
    let addr = agent.credential_addrs()[0];
    agent.shutdown().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

// === Local verification against the cluster's keys, and per-pod inbound limits ===

fn pod_token(
    key: &podiam_jose::SigningKey,
    fake: &FakeEksAuth,
    issuer: &FakeIssuer,
    pod: &str,
) -> String {
    key.sign(&pod_claims(&fake.clock, &issuer.url, "ns", "sa", pod, 3600))
        .unwrap()
}

#[tokio::test]
async fn forged_and_expired_tokens_are_refused_locally_without_an_upstream_call() {
    let fake = fake_eks_auth(Clock::system()).await;
    let key = signing_key();
    let issuer = fake_issuer(&[&key]).await;
    let agent = agent(&fake, |c| with_issuer(c, &issuer)).await;
    let good = pod_token(&key, &fake, &issuer, "uid-good");
    assert_eq!(creds(&agent, &good).await.status, 200);
    assert_eq!(fake.calls(), 1);

    let refused = |body: &str| format!("[]: (InvalidTokenException): {body}, fault: client\n");
    let invalid = |why: &str| {
        refused(&format!(
            "the service account token is not valid for this cluster: {why}"
        ))
    };
    // Forged: the published key's kid, another key's signature, the good pod's claims.
    let evil = signing_key();
    let claims = pod_claims(&fake.clock, &issuer.url, "ns", "sa", "uid-good", 3600);
    let forged = sign_as(&evil, key.kid(), &claims);
    for _ in 0..50 {
        let r = creds(&agent, &forged).await;
        assert_eq!(r.status, 400);
        assert_eq!(r.body, invalid("signature verification failed"));
        assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    }
    // A key the cluster does not publish, under its own kid.
    let r = creds(&agent, &evil.sign(&claims).unwrap()).await;
    assert_eq!(
        (r.status, r.body),
        (
            400,
            invalid("no key in the issuer's key set matches the token")
        )
    );
    // The real key, but the wrong audience, the wrong issuer, or no pod binding.
    let mut c = pod_claims(&fake.clock, &issuer.url, "ns", "sa", "uid-1", 3600);
    c["aud"] = serde_json::json!(["sts.amazonaws.com"]);
    let r = creds(&agent, &key.sign(&c).unwrap()).await;
    assert_eq!(r.body, invalid("token audience does not match"));
    let mut c = pod_claims(&fake.clock, &issuer.url, "ns", "sa", "uid-1", 3600);
    c["iss"] = serde_json::json!("https://oidc.example/id/other");
    let r = creds(&agent, &key.sign(&c).unwrap()).await;
    assert_eq!(r.body, invalid("token issuer does not match"));
    let mut c = pod_claims(&fake.clock, &issuer.url, "ns", "sa", "uid-1", 3600);
    c["kubernetes.io"].as_object_mut().unwrap().remove("pod");
    let r = creds(&agent, &key.sign(&c).unwrap()).await;
    assert_eq!(
        (r.status, r.body),
        (400, refused("the token is not bound to a pod"))
    );
    // Expired (a real signature): refused by the basic claim checks.
    let expired = key
        .sign(&pod_claims(
            &fake.clock,
            &issuer.url,
            "ns",
            "sa",
            "uid-1",
            -120,
        ))
        .unwrap();
    let r = creds(&agent, &expired).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (
            400,
            "Service account token failed basic claim validations: token has invalid claims: token is expired\n"
        )
    );

    assert_eq!(fake.calls(), 1, "no refused token reached EKS Auth");
    assert!(
        agent
            .render_metrics()
            .contains("podiam_agent_local_refusals_total 5\n"),
        "the repeated forgery was checked once"
    );
    // The good pod's entry is untouched and still a hit.
    assert_eq!(agent.cache_len(), 1);
    assert_eq!(creds(&agent, &good).await.status, 200);
    assert_eq!(fake.calls(), 1);
    assert_eq!(issuer.jwks_calls(), 1);
}

#[tokio::test]
async fn signed_token_works_end_to_end_and_a_pods_tokens_share_its_bucket() {
    let fake = fake_eks_auth(Clock::system()).await;
    let key = signing_key();
    let issuer = fake_issuer(&[&key]).await;
    let agent = agent(&fake, |c| {
        with_issuer(c, &issuer);
        c.inbound_pod_rps = 1;
        c.inbound_pod_burst = 3;
    })
    .await;
    let t1 = pod_token(&key, &fake, &issuer, "uid-1");
    let r = creds(&agent, &t1).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["AccessKeyId"], "ASIA00000001");
    assert_eq!(fake.tokens.lock()[0], t1, "the token itself goes upstream");
    assert_eq!(creds(&agent, &t1).await.body, r.body);
    assert_eq!(fake.calls(), 1);
    assert_eq!(agent.inbound_pod_buckets(), 1);
    // The kubelet rotated the pod's token: the new one shares the pod's bucket.
    let t2 = pod_token(&key, &fake, &issuer, "uid-1");
    assert_eq!(creds(&agent, &t2).await.status, 200);
    assert_eq!(agent.inbound_pod_buckets(), 1);
    assert_eq!(agent.verified_tokens(), 2);
    // Charged to the pod so far: t1's first fetch (verified locally, so charged to the pod, not
    // the shared bucket), t1's hit and t2's first fetch: the burst of 3 is spent, then 429.
    let r = creds(&agent, &t2).await;
    assert_eq!((r.status, r.body.as_str()), (429, "Too Many Requests\n"));
    // Another pod has its own bucket.
    let other = pod_token(&key, &fake, &issuer, "uid-2");
    assert_eq!(creds(&agent, &other).await.status, 200);
    assert_eq!(creds(&agent, &other).await.status, 200);
    assert_eq!(agent.inbound_pod_buckets(), 2);
    assert_eq!(fake.calls(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_pod_flooding_does_not_starve_another() {
    let fake = fake_eks_auth(Clock::system()).await;
    // No cluster issuer: pods are identified once EKS Auth accepts their token. A global
    // ceiling the flood alone would exhaust if it were charged first.
    let agent = agent(&fake, |c| {
        c.inbound_rps = 100;
        c.inbound_burst = 100;
        c.inbound_pod_rps = 5;
        c.inbound_pod_burst = 10;
        c.inbound_unverified_rps = 5;
        c.inbound_unverified_burst = 10;
    })
    .await;
    let flooder = token(&fake.clock);
    let victim = token(&fake.clock);
    let newcomer = token(&fake.clock);
    assert_eq!(creds(&agent, &flooder).await.status, 200);
    assert_eq!(creds(&agent, &victim).await.status, 200);
    let addr = agent.credential_addrs()[0];
    let mut flood = tokio::task::JoinSet::new();
    for _ in 0..500 {
        let t = flooder.clone();
        flood.spawn(async move {
            raw(
                addr,
                "GET",
                "/v1/credentials",
                Some(&addr.to_string()),
                Some(&t),
            )
            .await
            .status
        });
    }
    // Amid the flood: the victim's cache hits, a newcomer's first fetch and hit.
    let mut mine = Vec::new();
    for _ in 0..5 {
        mine.push(creds(&agent, &victim).await.status);
    }
    mine.push(creds(&agent, &newcomer).await.status);
    mine.push(creds(&agent, &newcomer).await.status);
    let (mut ok, mut limited) = (0, 0);
    while let Some(s) = flood.join_next().await {
        match s.unwrap() {
            200 => ok += 1,
            429 => limited += 1,
            other => panic!("flood got {other}"),
        }
    }
    assert_eq!(mine, [200; 7], "the other pods were served throughout");
    assert!(
        limited >= 400,
        "the flood was cut at its pod's rate: {ok} served, {limited} limited"
    );
    assert_eq!(fake.calls(), 3, "the flood cost no upstream call");
    // Every token's entry is intact.
    assert_eq!(agent.cache_len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_tokens_racing_requests_do_not_drain_the_unverified_bucket() {
    let fake = fake_eks_auth(Clock::system()).await;
    *fake.delay.lock() = Duration::from_millis(300);
    let agent = agent(&fake, |c| {
        c.inbound_unverified_rps = 1;
        c.inbound_unverified_burst = 10;
        c.inbound_pod_rps = 1000;
        c.inbound_pod_burst = 1000;
    })
    .await;
    let racer = token(&fake.clock);
    let newcomer = token(&fake.clock);
    let addr = agent.credential_addrs()[0];
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let t = racer.clone();
        set.spawn(async move {
            raw(
                addr,
                "GET",
                "/v1/credentials",
                Some(&addr.to_string()),
                Some(&t),
            )
            .await
            .status
        });
    }
    // While the racer's first fetch is under way, its other requests join it uncharged.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let r = creds(&agent, &newcomer).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let mut ok = 0;
    while let Some(s) = set.join_next().await {
        ok += usize::from(s.unwrap() == 200);
    }
    assert!(ok >= 90, "{ok} of the racer's 100 requests served");
    assert_eq!(fake.calls(), 2);
}

#[tokio::test]
async fn garbage_tokens_do_not_grow_the_limiter_beyond_its_bound() {
    let fake = fake_eks_auth(Clock::system()).await;
    let key = signing_key();
    let issuer = fake_issuer(&[&key]).await;
    let agent = agent(&fake, |c| {
        with_issuer(c, &issuer);
        c.inbound_max_pods = 8;
        c.inbound_pod_rps = 100;
        c.inbound_pod_burst = 100;
    })
    .await;
    let good = pod_token(&key, &fake, &issuer, "uid-good");
    assert_eq!(creds(&agent, &good).await.status, 200);
    let evil = signing_key();
    for i in 0..200 {
        // Distinct unparseable garbage, and distinct well-formed forgeries.
        assert_eq!(creds(&agent, &format!("garbage-{i}")).await.status, 400);
        let forged = sign_as(
            &evil,
            key.kid(),
            &pod_claims(&fake.clock, &issuer.url, "ns", "sa", &format!("u{i}"), 3600),
        );
        assert_eq!(creds(&agent, &forged).await.status, 400);
        assert!(agent.refused_tokens() <= 8, "{}", agent.refused_tokens());
    }
    assert_eq!(
        agent.inbound_pod_buckets(),
        1,
        "garbage never gets a bucket"
    );
    assert_eq!(agent.verified_tokens(), 1);
    assert_eq!(fake.calls(), 1);
    // Many real pods: every one is served, the maps stay bounded.
    for i in 0..20 {
        let t = pod_token(&key, &fake, &issuer, &format!("real-{i}"));
        assert_eq!(creds(&agent, &t).await.status, 200);
        assert!(agent.inbound_pod_buckets() <= 8);
        assert!(agent.verified_tokens() <= 8);
    }
    assert_eq!(creds(&agent, &good).await.status, 200);
}

#[tokio::test]
async fn unknown_kid_refetch_is_rate_limited() {
    let fake = fake_eks_auth(Clock::system()).await;
    let old = signing_key();
    let issuer = fake_issuer(&[&old]).await;
    let agent = agent(&fake, |c| with_issuer(c, &issuer)).await;
    assert_eq!(
        creds(&agent, &pod_token(&old, &fake, &issuer, "p0"))
            .await
            .status,
        200
    );
    assert_eq!(issuer.jwks_calls(), 1);
    let addr = agent.credential_addrs()[0];
    let unknown_kids = |n: usize| {
        let mut set = tokio::task::JoinSet::new();
        for i in 0..n {
            let t = sign_as(
                &old,
                &format!("made-up-{i}"),
                &pod_claims(&fake.clock, &issuer.url, "ns", "sa", "p", 3600),
            );
            set.spawn(async move {
                raw(
                    addr,
                    "GET",
                    "/v1/credentials",
                    Some(&addr.to_string()),
                    Some(&t),
                )
                .await
                .status
            });
        }
        set
    };
    // Just fetched: made-up kids cause no fetch at all.
    let mut set = unknown_kids(50);
    while let Some(s) = set.join_next().await {
        assert_eq!(s.unwrap(), 400);
    }
    assert_eq!(issuer.jwks_calls(), 1);
    // Later, 50 at once cause exactly one.
    fake.clock.advance(Duration::from_secs(31));
    let mut set = unknown_kids(50);
    while let Some(s) = set.join_next().await {
        assert_eq!(s.unwrap(), 400);
    }
    assert_eq!(issuer.jwks_calls(), 2);
    // A key the cluster starts to sign with is found by the next allowed refetch.
    let new = signing_key();
    issuer.publish(&new);
    let r = creds(&agent, &pod_token(&new, &fake, &issuer, "p1")).await;
    assert_eq!(r.status, 400, "within the refetch interval: {}", r.body);
    assert_eq!(issuer.jwks_calls(), 2);
    fake.clock.advance(Duration::from_secs(31));
    let r = creds(&agent, &pod_token(&new, &fake, &issuer, "p1")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(issuer.jwks_calls(), 3);
    assert_eq!(fake.calls(), 2, "only the two valid tokens went upstream");
}

#[tokio::test]
async fn cluster_keys_from_a_file_and_issuer_settings() {
    let fake = fake_eks_auth(Clock::system()).await;
    let key = signing_key();
    let issuer = "https://oidc.example/id/FILE";
    let dir = temp_dir("jwks");
    let file = dir.join("jwks.json");
    std::fs::write(&file, podiam_jose::jwks_json(&[&key])).unwrap();
    let agent = agent(&fake, |c| {
        c.cluster_issuer_url = Some(issuer.to_owned());
        c.cluster_jwks_file = Some(file.clone());
    })
    .await;
    let claims = pod_claims(&fake.clock, issuer, "ns", "sa", "u", 3600);
    assert_eq!(creds(&agent, &key.sign(&claims).unwrap()).await.status, 200);
    let forged = sign_as(&signing_key(), key.kid(), &claims);
    assert_eq!(creds(&agent, &forged).await.status, 400);
    assert_eq!(fake.calls(), 1);
    agent.shutdown().await;

    let bad = |f: &dyn Fn(&mut podiam_agent::Config)| {
        let mut c = config(&fake);
        f(&mut c);
        c
    };
    for c in [
        bad(&|c| c.cluster_jwks_file = Some(file.clone())),
        bad(&|c| c.cluster_issuer_url = Some("http://oidc.example/id/1".into())),
        bad(&|c| c.cluster_issuer_url = Some("not a url".into())),
    ] {
        assert!(matches!(
            podiam_agent::start(c).await,
            Err(podiam_agent::Error::Config(_))
        ));
    }
}

#[tokio::test]
async fn a_forged_token_flood_costs_other_pods_new_tokens_nothing() {
    let fake = fake_eks_auth(Clock::system()).await;
    let key = signing_key();
    let forger = signing_key();
    let issuer = fake_issuer(&[&key]).await;
    let agent = agent(&fake, |c| {
        with_issuer(c, &issuer);
        // The shared bucket of unverified tokens holds one request: were forgeries charged to
        // it, the first would empty it.
        c.inbound_unverified_rps = 1;
        c.inbound_unverified_burst = 1;
    })
    .await;
    for i in 0..50 {
        let forged = pod_token(&forger, &fake, &issuer, &format!("forged-{i}"));
        let r = creds(&agent, &forged).await;
        assert_eq!(r.status, 400, "{}", r.body);
        assert!(r.body.contains("InvalidTokenException"), "{}", r.body);
    }
    assert_eq!(fake.calls(), 0, "no forgery reached EKS Auth");
    // Two new pods' first tokens are served: verified locally, each charged to its own pod.
    for uid in ["victim-1", "victim-2"] {
        let t = pod_token(&key, &fake, &issuer, uid);
        assert_eq!(creds(&agent, &t).await.status, 200);
    }
    assert_eq!(fake.calls(), 2);
}
