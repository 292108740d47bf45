//! `podiam-sdk-e2e`: an end-to-end client of podiam built on the unmodified aws-sdk-rust.
//!
//! Driven by `tests/sdk-rust/run.sh`; every scenario prints `ARN=<arn>` on stdout on success,
//! and the error (with its full source chain) on stderr plus a non-zero exit on failure.
//!
//! Scenarios:
//! - `web-identity`: credentials from the standard default chain only (the environment supplies
//!   `AWS_ROLE_ARN`, `AWS_WEB_IDENTITY_TOKEN_FILE`, `AWS_ENDPOINT_URL[_STS]`, `AWS_REGION`), then
//!   `GetCallerIdentity`.
//! - `default-chain`: the same default chain, used with `AWS_CONTAINER_CREDENTIALS_FULL_URI` and
//!   `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` (EKS Pod Identity through the node agent).
//! - `static`: credentials from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` /
//!   `AWS_SESSION_TOKEN`, endpoint from `AWS_ENDPOINT_URL`, then `GetCallerIdentity`.
//! - `assume-role`: static credentials as above, `AssumeRole` of `PODIAM_E2E_ROLE_ARN` (session
//!   `rust-sdk`, one session tag, `ExternalId` from `PODIAM_E2E_EXTERNAL_ID` if set), then
//!   `GetCallerIdentity` with a new client on the returned credentials.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::ExitCode;
use std::time::SystemTime;

use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::meta::region::RegionProviderChain;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_sts::config::Credentials;
use aws_sdk_sts::error::DisplayErrorContext;
use aws_sdk_sts::types::Tag;

type Result<T> = std::result::Result<T, String>;

/// Format an SDK error with its whole source chain.
fn ctx<E: std::error::Error>(what: &str) -> impl FnOnce(E) -> String + '_ {
    move |e| format!("{what}: {}", DisplayErrorContext(&e))
}

/// `GetCallerIdentity` with `client`; the caller's ARN.
async fn caller_arn(client: &aws_sdk_sts::Client) -> Result<String> {
    let out = client
        .get_caller_identity()
        .send()
        .await
        .map_err(ctx("GetCallerIdentity"))?;
    let arn = out
        .arn()
        .ok_or("GetCallerIdentity: no Arn in the response")?;
    if out.account().is_none() || out.user_id().is_none() {
        return Err(format!(
            "GetCallerIdentity: Account or UserId missing in the response: {out:?}"
        ));
    }
    Ok(arn.to_owned())
}

/// Only the standard default chain: environment, profile, web identity, ... .
async fn web_identity() -> Result<String> {
    let conf = aws_config::defaults(BehaviorVersion::latest()).load().await;
    caller_arn(&aws_sdk_sts::Client::new(&conf)).await
}

/// Configuration with credentials only from the `AWS_*` environment variables (endpoint from
/// `AWS_ENDPOINT_URL[_STS]`, region from `AWS_REGION`, else us-east-1).
async fn static_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(RegionProviderChain::default_provider().or_else("us-east-1"))
        .credentials_provider(EnvironmentVariableCredentialsProvider::new())
        .load()
        .await
}

async fn static_creds() -> Result<String> {
    let conf = static_config().await;
    caller_arn(&aws_sdk_sts::Client::new(&conf)).await
}

async fn assume_role() -> Result<String> {
    let role_arn = std::env::var("PODIAM_E2E_ROLE_ARN")
        .map_err(|_| "PODIAM_E2E_ROLE_ARN is not set".to_owned())?;
    let external_id = std::env::var("PODIAM_E2E_EXTERNAL_ID")
        .ok()
        .filter(|v| !v.is_empty());
    let conf = static_config().await;
    let sts = aws_sdk_sts::Client::new(&conf);
    let tag = Tag::builder()
        .key("team")
        .value("rust-sdk")
        .build()
        .map_err(ctx("building the tag"))?;
    let out = sts
        .assume_role()
        .role_arn(&role_arn)
        .role_session_name("rust-sdk")
        .tags(tag)
        .set_external_id(external_id)
        .duration_seconds(900)
        .send()
        .await
        .map_err(ctx("AssumeRole"))?;
    let c = out
        .credentials()
        .ok_or("AssumeRole: no Credentials in the response")?;
    let user = out
        .assumed_role_user()
        .ok_or("AssumeRole: no AssumedRoleUser in the response")?;
    let expiry = SystemTime::try_from(*c.expiration()).map_err(ctx("AssumeRole: Expiration"))?;
    if expiry <= SystemTime::now() {
        return Err(format!(
            "AssumeRole: Expiration {} is not in the future",
            c.expiration()
        ));
    }
    eprintln!(
        "assumed {} ({}), expires {}",
        user.arn(),
        user.assumed_role_id(),
        c.expiration()
    );
    let creds = Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().to_owned()),
        Some(expiry),
        "AssumeRole",
    );
    let assumed = aws_sdk_sts::config::Builder::from(&conf)
        .credentials_provider(creds)
        .build();
    let arn = caller_arn(&aws_sdk_sts::Client::from_conf(assumed)).await?;
    if arn != user.arn() {
        return Err(format!(
            "GetCallerIdentity Arn {arn} differs from AssumeRole's AssumedRoleUser Arn {}",
            user.arn()
        ));
    }
    Ok(arn)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let scenario = std::env::args().nth(1).unwrap_or_default();
    let res = match scenario.as_str() {
        // The default chain: web identity, or the container provider (Pod Identity) when the
        // environment names AWS_CONTAINER_CREDENTIALS_FULL_URI instead.
        "web-identity" | "default-chain" => web_identity().await,
        "static" => static_creds().await,
        "assume-role" => assume_role().await,
        other => {
            eprintln!("usage: podiam-sdk-e2e web-identity|static|assume-role (got {other:?})");
            return ExitCode::from(2);
        }
    };
    match res {
        Ok(arn) => {
            println!("ARN={arn}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("podiam-sdk-e2e {scenario}: {e}");
            ExitCode::FAILURE
        }
    }
}
