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
}

#[tokio::test]
async fn shutdown_closes_the_listeners() {
    let fake = fake_eks_auth(Clock::system()).await;
    let agent = agent(&fake, |_| {}).await;
    let addr = agent.credential_addrs()[0];
    agent.shutdown().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}
