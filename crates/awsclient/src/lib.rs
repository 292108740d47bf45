//! podiam's AWS client side, shared by the node agent, the admission webhook and the `podiam`
//! tools: everything needed to call an AWS-style API as the AWS SDKs would, and nothing about
//! what is called.
//!
//! - [`config`]: the environment snapshot and the shared `config`/`credentials` files
//!   (profiles, `services` sections), the region.
//! - [`endpoint`]: a service's endpoint URL by the SDKs' rules (`AWS_ENDPOINT_URL_<SERVICE>`,
//!   `AWS_ENDPOINT_URL`, the profile's `services` section and `endpoint_url`, the default;
//!   `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS`).
//! - [`tls`]: the HTTP client's trust, from `AWS_CA_BUNDLE` or the profile's `ca_bundle`.
//! - [`credentials`]: the credential chain (environment keys, profile keys, web identity) and
//!   a caching provider that re-resolves it when due.
//! - [`signing`]: SigV4-signed JSON requests.
//! - [`retry`]: exponential backoff with jitter for throttling, 5xx and connection errors,
//!   with a bounded attempt count.
//! - [`ratelimit`]: a lock-free token bucket; [`clock`]: wall-clock time tests can move.
//!
//! Nothing here reads the process environment except [`Env::from_process`]: callers take one
//! snapshot and pass it down, so tests run side by side with different settings.

pub mod clock;
pub mod config;
pub mod credentials;
pub mod endpoint;
pub mod ratelimit;
pub mod retry;
pub mod signing;
pub mod tls;

pub use clock::Clock;
pub use config::{Env, resolve_region};
pub use credentials::{
    AwsCredentials, CredentialSource, CredentialsError, CredentialsProvider, Resolved,
    resolve_chain,
};
pub use endpoint::{Service, configured_endpoint, resolve_endpoint};
pub use ratelimit::TokenBucket;
pub use retry::{Attempt, RetryPolicy, SendError, retry};
pub use signing::{host_header, signed_request};
pub use tls::{TlsError, http_client_builder};
