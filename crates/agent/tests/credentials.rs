//! The node credential chain: environment, shared files with profiles, web identity against a
//! fake STS, periodic re-resolution, and the agent running on IRSA end to end.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use podiam_awsclient::{
    Clock, CredentialSource, CredentialsError, CredentialsProvider, Env, resolve_chain,
};

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

#[tokio::test]
async fn environment_keys_come_first() {
    let dir = temp_dir("env");
    std::fs::write(
        dir.join("credentials"),
        "[default]\naws_access_key_id = FILEKEY\naws_secret_access_key = filesecret\n",
    )
    .unwrap();
    let env = Env::from_pairs([
        ("AWS_ACCESS_KEY_ID", "ENVKEY"),
        ("AWS_SECRET_ACCESS_KEY", "envsecret"),
        ("AWS_SESSION_TOKEN", "envtoken"),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            dir.join("credentials").to_str().unwrap(),
        ),
    ]);
    let r = resolve_chain(&env, "us-east-1", &client(), &Clock::system())
        .await
        .unwrap();
    assert_eq!(r.source, CredentialSource::Environment);
    assert_eq!(r.credentials.access_key_id, "ENVKEY");
    assert_eq!(r.credentials.secret_access_key, "envsecret");
    assert_eq!(r.credentials.session_token.as_deref(), Some("envtoken"));
    let dbg = format!("{:?}", r.credentials);
    assert!(
        !dbg.contains("envsecret") && !dbg.contains("envtoken"),
        "{dbg}"
    );
    // A key id without a secret is a configuration error.
    let env = Env::from_pairs([("AWS_ACCESS_KEY_ID", "ENVKEY"), ("HOME", "/nonexistent")]);
    assert!(matches!(
        resolve_chain(&env, "us-east-1", &client(), &Clock::system()).await,
        Err(CredentialsError::Config(_))
    ));
}

#[tokio::test]
async fn shared_files_honour_the_profile() {
    let dir = temp_dir("files");
    let creds = dir.join("credentials");
    let config = dir.join("config");
    std::fs::write(
        &creds,
        "# comment\n[default]\naws_access_key_id = DEFAULTKEY\naws_secret_access_key = defaultsecret\n\n[dev]\naws_access_key_id=DEVKEY\naws_secret_access_key=devsecret\naws_session_token = devtoken\n",
    )
    .unwrap();
    std::fs::write(
        &config,
        "[default]\nregion = eu-west-3\n[profile cfgonly]\naws_access_key_id = CFGKEY\naws_secret_access_key = cfgsecret\nregion = ap-southeast-2\n",
    )
    .unwrap();
    let base = [
        ("AWS_SHARED_CREDENTIALS_FILE", creds.to_str().unwrap()),
        ("AWS_CONFIG_FILE", config.to_str().unwrap()),
        ("HOME", "/nonexistent"),
    ];
    let env = Env::from_pairs(base);
    let r = resolve_chain(&env, "us-east-1", &client(), &Clock::system())
        .await
        .unwrap();
    assert_eq!(
        (r.source, r.credentials.access_key_id.as_str()),
        (CredentialSource::SharedFiles, "DEFAULTKEY")
    );
    assert_eq!(r.credentials.session_token, None);
    assert_eq!(podiam_awsclient::resolve_region(None, &env), "eu-west-3");

    let mut env = Env::from_pairs(base);
    env.set("AWS_PROFILE", "dev");
    let r = resolve_chain(&env, "us-east-1", &client(), &Clock::system())
        .await
        .unwrap();
    assert_eq!(r.credentials.access_key_id, "DEVKEY");
    assert_eq!(r.credentials.secret_access_key, "devsecret");
    assert_eq!(r.credentials.session_token.as_deref(), Some("devtoken"));

    let mut env = Env::from_pairs(base);
    env.set("AWS_PROFILE", "cfgonly");
    let r = resolve_chain(&env, "us-east-1", &client(), &Clock::system())
        .await
        .unwrap();
    assert_eq!(r.credentials.access_key_id, "CFGKEY");
    assert_eq!(
        podiam_awsclient::resolve_region(None, &env),
        "ap-southeast-2"
    );
    env.set("AWS_REGION", "us-west-1");
    assert_eq!(podiam_awsclient::resolve_region(None, &env), "us-west-1");

    // HOME/.aws/credentials is the default location.
    let home = temp_dir("home");
    std::fs::create_dir_all(home.join(".aws")).unwrap();
    std::fs::copy(&creds, home.join(".aws/credentials")).unwrap();
    let env = Env::from_pairs([("HOME", home.to_str().unwrap()), ("AWS_PROFILE", "dev")]);
    let r = resolve_chain(&env, "us-east-1", &client(), &Clock::system())
        .await
        .unwrap();
    assert_eq!(r.credentials.access_key_id, "DEVKEY");
}

#[tokio::test]
async fn nothing_configured_is_not_found() {
    let env = Env::from_pairs([("HOME", "/nonexistent")]);
    let e = resolve_chain(&env, "us-east-1", &client(), &Clock::system())
        .await
        .unwrap_err();
    assert!(matches!(e, CredentialsError::NotFound(_)), "{e}");
    let env = Env::from_pairs([
        ("HOME", "/nonexistent"),
        ("AWS_WEB_IDENTITY_TOKEN_FILE", "/x"),
    ]);
    let e = resolve_chain(&env, "us-east-1", &client(), &Clock::system())
        .await
        .unwrap_err();
    assert!(matches!(e, CredentialsError::Config(_)), "{e}");
}

#[tokio::test]
async fn web_identity_from_the_environment() {
    let clock = Clock::system();
    let sts = fake_sts(clock.clone()).await;
    let dir = temp_dir("webid");
    let token_file = dir.join("token");
    std::fs::write(&token_file, "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln\n").unwrap();
    let env = Env::from_pairs([
        ("HOME", "/nonexistent"),
        ("AWS_WEB_IDENTITY_TOKEN_FILE", token_file.to_str().unwrap()),
        ("AWS_ROLE_ARN", "arn:aws:iam::111122223333:role/node"),
        ("AWS_ROLE_SESSION_NAME", "my-node"),
        ("AWS_ENDPOINT_URL_STS", sts.url.as_str()),
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:1"),
    ]);
    let r = resolve_chain(&env, "us-east-1", &client(), &clock)
        .await
        .unwrap();
    assert_eq!(r.source, CredentialSource::WebIdentity);
    assert_eq!(r.credentials.access_key_id, "ASIASTS0001");
    assert_eq!(r.credentials.secret_access_key, "sts-secret-1");
    assert_eq!(
        r.credentials.session_token.as_deref(),
        Some("sts-session-token-1")
    );
    let exp = r.credentials.expiration.unwrap();
    assert!((exp - (clock.now_secs() + 3600)).abs() <= 2);
    assert_eq!(
        sts.authorization_seen.load(Ordering::SeqCst),
        0,
        "the call is unsigned"
    );
    let form = sts.forms.lock()[0].clone();
    assert_eq!(form["Action"], "AssumeRoleWithWebIdentity");
    assert_eq!(form["Version"], "2011-06-15");
    assert_eq!(form["RoleArn"], "arn:aws:iam::111122223333:role/node");
    assert_eq!(form["RoleSessionName"], "my-node");
    assert_eq!(
        form["WebIdentityToken"],
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"
    );

    // STS errors are reported with their code.
    *sts.fail.lock() = true;
    let e = resolve_chain(&env, "us-east-1", &client(), &clock)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, CredentialsError::WebIdentity(m) if m.contains("InvalidIdentityToken")),
        "{e}"
    );
    // A missing token file too.
    let mut env2 = env.clone();
    env2.set(
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        dir.join("missing").to_str().unwrap(),
    );
    assert!(matches!(
        resolve_chain(&env2, "us-east-1", &client(), &clock).await,
        Err(CredentialsError::WebIdentity(_))
    ));
}

#[tokio::test]
async fn web_identity_from_the_profile_with_a_default_session_name() {
    let clock = Clock::system();
    let sts = fake_sts(clock.clone()).await;
    let dir = temp_dir("webidprofile");
    std::fs::write(dir.join("token"), "a.b.c").unwrap();
    std::fs::write(
        dir.join("config"),
        format!(
            "[profile irsa]\nweb_identity_token_file = {}\nrole_arn = arn:aws:iam::111122223333:role/p\n",
            dir.join("token").display()
        ),
    )
    .unwrap();
    let env = Env::from_pairs([
        ("HOME", "/nonexistent"),
        ("AWS_CONFIG_FILE", dir.join("config").to_str().unwrap()),
        ("AWS_PROFILE", "irsa"),
        ("AWS_ENDPOINT_URL", sts.url.as_str()),
    ]);
    let r = resolve_chain(&env, "us-east-1", &client(), &clock)
        .await
        .unwrap();
    assert_eq!(r.source, CredentialSource::WebIdentity);
    let form = sts.forms.lock()[0].clone();
    assert_eq!(form["RoleArn"], "arn:aws:iam::111122223333:role/p");
    assert!(form["RoleSessionName"].starts_with("podiam-agent-"));
    assert_eq!(form["WebIdentityToken"], "a.b.c");
}

#[tokio::test]
async fn provider_refreshes_web_identity_five_minutes_before_expiry() {
    let clock = Clock::system();
    let sts = fake_sts(clock.clone()).await;
    let dir = temp_dir("refresh");
    std::fs::write(dir.join("token"), "a.b.c").unwrap();
    let env = Env::from_pairs([
        ("HOME", "/nonexistent"),
        (
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            dir.join("token").to_str().unwrap(),
        ),
        ("AWS_ROLE_ARN", "arn:aws:iam::111122223333:role/node"),
        ("AWS_ENDPOINT_URL_STS", sts.url.as_str()),
    ]);
    let p = CredentialsProvider::new(
        None,
        env,
        "us-east-1".into(),
        client(),
        clock.clone(),
        Duration::from_secs(60),
        Duration::from_secs(5),
    );
    assert!(!p.is_resolved());
    assert_eq!(p.get().await.unwrap().access_key_id, "ASIASTS0001");
    assert!(p.is_resolved());
    assert_eq!(p.source(), Some(CredentialSource::WebIdentity));
    clock.advance(Duration::from_secs(54 * 60));
    assert_eq!(p.get().await.unwrap().access_key_id, "ASIASTS0001");
    assert_eq!(sts.calls.load(Ordering::SeqCst), 1);
    clock.advance(Duration::from_secs(2 * 60));
    assert_eq!(p.get().await.unwrap().access_key_id, "ASIASTS0002");
    // A failing refresh keeps the held credentials while they are valid.
    *sts.fail.lock() = true;
    clock.advance(Duration::from_secs(56 * 60));
    assert_eq!(p.get().await.unwrap().access_key_id, "ASIASTS0002");
    assert_eq!(sts.calls.load(Ordering::SeqCst), 3);
    // ...and does not retry before the retry delay.
    assert_eq!(p.get().await.unwrap().access_key_id, "ASIASTS0002");
    assert_eq!(sts.calls.load(Ordering::SeqCst), 3);
    // Once they expired, the error shows.
    clock.advance(Duration::from_secs(5 * 60));
    assert!(p.get().await.is_err());
    assert!(!p.is_resolved());
}

#[tokio::test]
async fn provider_rereads_rotated_shared_files() {
    let clock = Clock::system();
    let dir = temp_dir("rotate");
    let file = dir.join("credentials");
    std::fs::write(
        &file,
        "[default]\naws_access_key_id = OLDKEY\naws_secret_access_key = old\n",
    )
    .unwrap();
    let env = Env::from_pairs([
        ("HOME", "/nonexistent"),
        ("AWS_SHARED_CREDENTIALS_FILE", file.to_str().unwrap()),
    ]);
    let p = CredentialsProvider::new(
        None,
        env,
        "us-east-1".into(),
        client(),
        clock.clone(),
        Duration::from_secs(60),
        Duration::from_secs(5),
    );
    assert_eq!(p.get().await.unwrap().access_key_id, "OLDKEY");
    std::fs::write(
        &file,
        "[default]\naws_access_key_id = NEWKEY\naws_secret_access_key = new\n",
    )
    .unwrap();
    assert_eq!(
        p.get().await.unwrap().access_key_id,
        "OLDKEY",
        "not re-read before the interval"
    );
    clock.advance(Duration::from_secs(61));
    assert_eq!(p.get().await.unwrap().access_key_id, "NEWKEY");
    // A file that disappears keeps the last good keys (they do not expire).
    std::fs::remove_file(&file).unwrap();
    clock.advance(Duration::from_secs(61));
    assert_eq!(p.get().await.unwrap().access_key_id, "NEWKEY");
}

#[tokio::test]
async fn agent_runs_on_irsa_end_to_end() {
    let clock = Clock::system();
    let sts = fake_sts(clock.clone()).await;
    let fake = fake_eks_auth(clock.clone()).await;
    fake.secrets
        .lock()
        .insert("ASIASTS0001".into(), "sts-secret-1".into());
    let dir = temp_dir("irsa");
    std::fs::write(dir.join("token"), "a.b.c").unwrap();
    let agent = agent(&fake, |c| {
        c.static_credentials = None;
        c.region = None;
        c.endpoint = None;
        c.env = Env::from_pairs([
            ("HOME", "/nonexistent"),
            ("AWS_REGION", REGION),
            (
                "AWS_WEB_IDENTITY_TOKEN_FILE",
                dir.join("token").to_str().unwrap(),
            ),
            ("AWS_ROLE_ARN", "arn:aws:iam::111122223333:role/node"),
            ("AWS_ENDPOINT_URL_STS", sts.url.as_str()),
            ("AWS_ENDPOINT_URL_EKS_AUTH", fake.url.as_str()),
        ]);
    })
    .await;
    assert!(agent.is_ready());
    assert_eq!(agent.region(), REGION);
    assert!(agent.upstream_url().starts_with(&fake.url));
    let r = creds(&agent, &token(&clock)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        fake.signers.lock()[0],
        (
            "ASIASTS0001".to_owned(),
            Some("sts-session-token-1".to_owned())
        )
    );
}
