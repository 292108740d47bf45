//! Who is calling, and may they? SigV4 authentication of signed requests and authorization of
//! every action by the policy engine.
//!
//! The root of an account may do anything inside its own account and nothing elsewhere; every
//! other principal needs an Allow from its identity policies (and, where present, its permissions
//! boundary and session policies) and no explicit Deny.

mod authenticate;
mod authorize;
mod caller;
#[cfg(test)]
mod fail_closed_tests;

#[cfg(test)]
pub(crate) use authorize::record;
pub(crate) use authorize::{Outcome, PolicyCache, principal_of, resource_context_for};
pub use caller::{Caller, RequestMeta, SigningScope, iso8601};
