//! IAM: OIDC providers, roles and their policies, managed policies, users and access keys.
//!
//! Every operation is authorized as `iam:<Action>` on the entity's ARN, inside the caller's
//! account. Inputs are validated to the AWS limits before anything is written; a batch of
//! changes is committed whole or not at all.
//!
//! What roles and users share (lookup, inline and attached policies, boundaries, tags) is
//! written once in `principal`, over the `Principal` trait both implement.

mod access_keys;
pub mod limits;
mod page;
mod policies;
mod principal;
mod principal_policies;
mod providers;
mod roles;
mod trust;
mod users;
mod validate;

pub use page::{Page, PageReq};
pub use principal_policies::AttachedPolicy;
pub use providers::provider_key;
pub use roles::CreateRole;
pub use validate::{policy_chars, validate_policy};

pub use crate::names::{policy_arn, provider_arn, role_arn, user_arn};

#[cfg(test)]
mod tests;
